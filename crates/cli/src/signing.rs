//! `criguard keygen` and `criguard sign`: cosign's key files and cosign's
//! signature attachments, so that images signed here verify with cosign
//! and with containers/image, and cosign's keys sign here.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Args;
use criguard_policy::SigstoreSignature;
use criguard_policy::payload::COSIGN_SIGNATURE_MIME_TYPE;
use criguard_reference::{Digest, Reference};
use criguard_registry::Platform;
use criguard_sigstore::{SIGNATURE_ANNOTATION, SigningKey};

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
pub(crate) struct SignArgs {
    /// `docker://REF` or a bare REF.
    image: String,
    /// The cosign private key (ENCRYPTED SIGSTORE PRIVATE KEY).
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
    /// File holding the key's password (else $COSIGN_PASSWORD).
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

/// cosign's payload: the repository (no tag) and the manifest digest.
fn payload(repository: &Reference, digest: &Digest) -> Vec<u8> {
    serde_json::json!({
        "critical": {
            "identity": {"docker-reference": repository.name()},
            "image": {"docker-manifest-digest": digest.as_str()},
            "type": "cosign container image signature",
        },
        "optional": null,
    })
    .to_string()
    .into_bytes()
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
    let key_pem =
        std::fs::read(&args.key).with_context(|| format!("reading {}", args.key.display()))?;
    let key = SigningKey::from_encrypted_pem(&key_pem, &password(args.password_file.as_deref())?)
        .with_context(|| format!("reading {}", args.key.display()))?;
    let registry = args.registry.registry()?;
    runtime()?.block_on(async {
        let resolved = registry.resolve(&reference, &platform).await?;
        let repository = resolved.reference.repository();
        let mut digests: Vec<Digest> = resolved.index_digest.iter().cloned().collect();
        digests.push(resolved.manifest_digest.clone());
        for digest in digests {
            let payload = payload(&repository, &digest);
            let signature = SigstoreSignature {
                mime_type: COSIGN_SIGNATURE_MIME_TYPE.to_owned(),
                annotations: BTreeMap::from([(
                    SIGNATURE_ANNOTATION.to_owned(),
                    key.sign_base64(&payload)?,
                )]),
                payload,
            };
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
