//! `criguard keygen` and `criguard sign`: cosign's key files and cosign's
//! signature attachments, so that images signed here verify with cosign
//! and with containers/image, and cosign's keys sign here.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Args;
use criguard_policy::payload::ATOMIC_SIGNATURE_TYPE;
use criguard_reference::{Digest, Reference};
use criguard_registries::{MAX_LOOKASIDE_SIGNATURES, signature_path};
use criguard_registry::Platform;
use criguard_sigstore::SigningKey;
use criguard_simple_signing::{MAX_KEYRING_SIZE, SigningKey as GpgSigningKey};

use crate::policy_cmd;
use crate::registry_args::{RegistryArgs, runtime};
use criguard_policy::ImageReference;

/// The variable cosign reads the key password from.
const PASSWORD_VARIABLE: &str = "COSIGN_PASSWORD";

#[derive(Args, Debug)]
pub(crate) struct KeygenArgs {
    /// Where to write cosign.key and cosign.pub.
    #[arg(long, value_name = "DIR", default_value = ".")]
    output_dir: PathBuf,
    /// File holding the password (else $COSIGN_PASSWORD).
    #[arg(long, value_name = "FILE")]
    password_file: Option<PathBuf>,
    /// Replace existing key files.
    #[arg(long)]
    force: bool,
}

#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("signing-key").required(true).args(["key", "gpg_key"])))]
pub(crate) struct SignArgs {
    /// `docker://REF` or a bare REF.
    image: String,
    /// The cosign private key (ENCRYPTED SIGSTORE PRIVATE KEY): the
    /// signature is attached in the registry.
    #[arg(long, value_name = "FILE")]
    key: Option<PathBuf>,
    /// With --key: sign as cosign 3 does, a sigstore bundle attached as an
    /// OCI referrer (the referrers API where the registry has it, else the
    /// `sha256-<hex>` fallback tag), instead of a `.sig` attachment. Read by
    /// cosign 3 and by criguard with `criguard-sigstore-bundles`; not by
    /// containers/image.
    #[arg(long, requires = "key", conflicts_with = "gpg_key")]
    bundle: bool,
    /// A GPG secret key (`gpg --export-secret-keys`, binary or armoured):
    /// a simple-signing signature is written to --lookaside-dir.
    #[arg(long, value_name = "FILE", requires = "lookaside_dir")]
    gpg_key: Option<PathBuf>,
    /// The file lookaside store GPG signatures are written to (what
    /// registries.d's `lookaside` then serves, e.g. file:///DIR).
    #[arg(long, value_name = "DIR", requires = "gpg_key")]
    lookaside_dir: Option<PathBuf>,
    /// File holding the key's password (else $COSIGN_PASSWORD). A GPG key
    /// without a passphrase needs neither.
    #[arg(long, value_name = "FILE")]
    password_file: Option<PathBuf>,
    /// Also sign this platform's manifest when the reference names an
    /// index, since CRI-O checks the platform manifest it pulls.
    /// Default: this machine's.
    #[arg(long)]
    platform: Option<String>,
    #[command(flatten)]
    registry: RegistryArgs,
}

/// The password from a file (one trailing newline dropped) or cosign's
/// variable; never a prompt, so scripts cannot hang.
fn password(file: Option<&Path>) -> Result<Vec<u8>> {
    if let Some(file) = file {
        let mut bytes = std::fs::read(file)
            .with_context(|| format!("reading password file {}", file.display()))?;
        if bytes.ends_with(b"\n") {
            bytes.pop();
            if bytes.ends_with(b"\r") {
                bytes.pop();
            }
        }
        return Ok(bytes);
    }
    match std::env::var_os(PASSWORD_VARIABLE) {
        Some(value) => Ok(value.into_encoded_bytes()),
        None => bail!("no password: set {PASSWORD_VARIABLE} or pass --password-file"),
    }
}

pub(crate) fn keygen(args: &KeygenArgs) -> Result<ExitCode> {
    let password = password(args.password_file.as_deref())?;
    let key = SigningKey::generate()?;
    let private = key.to_encrypted_pem(&password)?;
    let public = key.public_key()?.to_pem();
    let key_path = args.output_dir.join("cosign.key");
    let pub_path = args.output_dir.join("cosign.pub");
    write_new(&key_path, private.as_bytes(), 0o600, args.force)?;
    write_new(&pub_path, public.as_bytes(), 0o644, args.force)?;
    println!("Private key written to {}", key_path.display());
    println!("Public key written to {}", pub_path.display());
    Ok(ExitCode::SUCCESS)
}

fn write_new(path: &Path, contents: &[u8], mode: u32, force: bool) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).mode(mode);
    if force {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("creating {} (use --force to replace it)", path.display()))?;
    file.write_all(contents)
        .with_context(|| format!("writing {}", path.display()))
}

pub(crate) fn sign(args: &SignArgs) -> Result<ExitCode> {
    let reference = match policy_cmd::image_reference(&args.image)? {
        ImageReference::Docker(reference) => reference,
        ImageReference::Oci { .. } => bail!("sign works on registry images (docker://REF)"),
    };
    let platform = match args.platform.as_deref() {
        Some(p) => p.parse::<Platform>().map_err(anyhow::Error::msg)?,
        None => Platform::host(),
    };
    if let (Some(gpg_key), Some(lookaside_dir)) = (&args.gpg_key, &args.lookaside_dir) {
        return sign_gpg(args, &reference, &platform, gpg_key, lookaside_dir);
    }
    let Some(key_path) = &args.key else {
        bail!("pass --key (cosign) or --gpg-key (GPG simple signing)");
    };
    let key_pem =
        std::fs::read(key_path).with_context(|| format!("reading {}", key_path.display()))?;
    let key = SigningKey::from_encrypted_pem(&key_pem, &password(args.password_file.as_deref())?)
        .with_context(|| format!("reading {}", key_path.display()))?;
    let registry = args.registry.registry()?;
    runtime()?.block_on(async {
        let resolved = registry.resolve(&reference, &platform).await?;
        let repository = resolved.reference.repository();
        let mut digests: Vec<Digest> = resolved.index_digest.iter().cloned().collect();
        digests.push(resolved.manifest_digest.clone());
        for digest in digests {
            if args.bundle {
                let bundle = key.sign_bundle(digest.as_str())?;
                let pushed = registry
                    .push_sigstore_bundle(&repository, &digest, &bundle)
                    .await?;
                println!(
                    "signed {}@{digest} (sigstore bundle, referrer manifest {pushed})",
                    repository.name()
                );
                continue;
            }
            let signature = key.sign_image(repository.name(), digest.as_str())?;
            let pushed = registry
                .push_sigstore_attachment(&repository, &digest, &signature)
                .await?;
            println!(
                "signed {}@{digest} (signature manifest {pushed})",
                repository.name()
            );
        }
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// A GPG simple-signing signature for the image as named (tag or digest
/// included, as `skopeo copy --sign-by` signs its destination), written to
/// the next free `signature-N` of a file lookaside store. For an index, the
/// platform's manifest is signed too: CRI-O checks the manifest it pulls.
fn sign_gpg(
    args: &SignArgs,
    reference: &Reference,
    platform: &Platform,
    key_path: &Path,
    lookaside_dir: &Path,
) -> Result<ExitCode> {
    let key_bytes = crate::policy_cmd::read_limited(key_path, MAX_KEYRING_SIZE)?;
    let key = GpgSigningKey::from_bytes(&key_bytes)
        .with_context(|| format!("reading {}", key_path.display()))?;
    let passphrase = match &args.password_file {
        Some(_) => String::from_utf8(password(args.password_file.as_deref())?)
            .context("the passphrase is not UTF-8")?,
        None => std::env::var(PASSWORD_VARIABLE).unwrap_or_default(),
    };
    let registry = args.registry.registry()?;
    let resolved = runtime()?.block_on(registry.resolve(reference, platform))?;
    let mut digests: Vec<Digest> = resolved.index_digest.iter().cloned().collect();
    digests.push(resolved.manifest_digest.clone());
    let identity = resolved.reference.to_string();
    for digest in digests {
        let payload = atomic_payload(&identity, &digest);
        let signature = key.sign(&payload, &passphrase)?;
        let path = write_lookaside_signature(lookaside_dir, reference, &digest, &signature)?;
        println!(
            "signed {identity} ({digest}) with GPG key {}: {}",
            key.fingerprint(),
            path.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// containers/image's simple-signing payload, as `skopeo copy --sign-by`
/// writes it.
fn atomic_payload(identity: &str, digest: &Digest) -> Vec<u8> {
    let timestamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    serde_json::json!({
        "critical": {
            "identity": {"docker-reference": identity},
            "image": {"docker-manifest-digest": digest.as_str()},
            "type": ATOMIC_SIGNATURE_TYPE,
        },
        "optional": {
            "creator": concat!("criguard ", env!("CARGO_PKG_VERSION")),
            "timestamp": timestamp,
        },
    })
    .to_string()
    .into_bytes()
}

/// `DIR/<repository path>@<algorithm>=<hex>/signature-<N>` with the first
/// free N, the layout containers/image reads. Created exclusively, so two
/// signers never overwrite each other's file. A reader gives up on a store
/// holding [`MAX_LOOKASIDE_SIGNATURES`], so one fewer is the most written.
fn write_lookaside_signature(
    dir: &Path,
    reference: &Reference,
    digest: &Digest,
    signature: &[u8],
) -> Result<PathBuf> {
    for number in 1..MAX_LOOKASIDE_SIGNATURES {
        let path = dir.join(signature_path(reference.path(), digest, number)?);
        if number == 1 {
            let image_dir = path.parent().unwrap_or(dir);
            std::fs::create_dir_all(image_dir)
                .with_context(|| format!("creating {}", image_dir.display()))?;
        }
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path);
        match file {
            Ok(mut file) => {
                file.write_all(signature)
                    .with_context(|| format!("writing {}", path.display()))?;
                return Ok(path);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e).with_context(|| format!("creating {}", path.display())),
        }
    }
    bail!(
        "the lookaside store {} already holds {} signatures for {digest}; containers/image \
         refuses to read {MAX_LOOKASIDE_SIGNATURES}",
        dir.display(),
        MAX_LOOKASIDE_SIGNATURES - 1
    )
}
