//! skopeo as the conformance oracle: containers/image itself deciding
//! whether a policy accepts an image, and signing the way CRI-O users do.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::gpg::GpgHome;
use crate::image::INSECURE_POLICY;
use crate::peer::{PeerTools, hermetic};
use crate::process::{DEFAULT_TIMEOUT, assert_success, run_with_timeout};

/// Writes `DIR/criguard-test.yaml` telling containers/image to read and
/// write sigstore attachments for `host` (e.g. "127.0.0.1:PORT"), and
/// returns `DIR`, for `--registries.d`.
pub fn sigstore_registries_d(dir: &Path, host: &str) -> PathBuf {
    fs::create_dir_all(dir).expect("creating the registries.d dir");
    fs::write(
        dir.join("criguard-test.yaml"),
        format!("docker:\n  {host}:\n    use-sigstore-attachments: true\n"),
    )
    .expect("writing registries.d yaml");
    dir.to_path_buf()
}

/// Copies `src` to `dest` with skopeo 1.18, signing the copy with a
/// sigstore private key (cosign's key format) and attaching the signature
/// at the destination. Plain `REF`s mean `docker://REF`. Returns the
/// digest of the manifest written (the one the signature covers).
///
/// The signature's identity is the destination reference exactly as given
/// (tag included), unlike cosign, which signs the repository only.
pub fn skopeo_sign_sigstore(
    private_key: &Path,
    passphrase_file: &Path,
    src: &str,
    dest: &str,
) -> String {
    signing_copy(
        &PeerTools::get().skopeo(),
        src,
        dest,
        sigstore_registries_d,
        |cmd| {
            cmd.arg("--sign-by-sigstore-private-key")
                .arg(private_key)
                .arg("--sign-passphrase-file")
                .arg(passphrase_file);
        },
    )
}

/// `skopeo copy --preserve-digests` of `src` to `dest` (plain `REF`s mean
/// `docker://REF`) under an accept-anything policy, with the registries.d
/// `write_registries_d(dir, dest host)` writes and the signing options
/// `sign` adds. Returns the digest of the manifest written.
fn signing_copy(
    skopeo: &Path,
    src: &str,
    dest: &str,
    write_registries_d: impl FnOnce(&Path, &str) -> PathBuf,
    sign: impl FnOnce(&mut Command),
) -> String {
    let scratch = tempfile::tempdir().expect("temp dir for skopeo");
    let policy = scratch.path().join("policy.json");
    fs::write(&policy, INSECURE_POLICY).expect("writing the signing policy");
    let dest = with_transport(dest);
    let host = docker_host(&dest).expect("signing copies go to a docker reference");
    let registries_d = write_registries_d(&scratch.path().join("registries.d"), host);
    let digest_file = scratch.path().join("digest");
    let mut cmd = skopeo_command(skopeo, scratch.path());
    cmd.arg("--policy")
        .arg(&policy)
        .arg("--registries.d")
        .arg(&registries_d)
        .args([
            "copy",
            "--quiet",
            "--preserve-digests",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
        ]);
    sign(&mut cmd);
    cmd.arg("--digestfile")
        .arg(&digest_file)
        .arg(with_transport(src))
        .arg(&dest);
    let out = run_with_timeout(&mut cmd, DEFAULT_TIMEOUT);
    assert_success(&cmd, &out);
    fs::read_to_string(&digest_file)
        .expect("skopeo wrote no --digestfile")
        .trim()
        .to_string()
}

/// `skopeo copy --policy P --registries.d D docker://IMAGE dir:DEST` with
/// skopeo 1.18: containers/image's verdict on `image` under `policy`.
/// Exit 0 means accepted; a rejection says why on stderr ("Source image
/// rejected: ..."). Not asserted.
pub fn skopeo_copy_with_policy(
    policy: &Path,
    registries_d: &Path,
    image: &str,
    dest_dir: &Path,
) -> Output {
    skopeo_copy_with_policy_using(
        &PeerTools::get().skopeo(),
        policy,
        registries_d,
        image,
        dest_dir,
    )
}

/// [`skopeo_copy_with_policy`] with another skopeo, e.g.
/// [`PeerTools::skopeo_bookworm`] for GPG simple signing.
pub fn skopeo_copy_with_policy_using(
    skopeo: &Path,
    policy: &Path,
    registries_d: &Path,
    image: &str,
    dest_dir: &Path,
) -> Output {
    let scratch = tempfile::tempdir().expect("temp dir for skopeo");
    let mut cmd = skopeo_command(skopeo, scratch.path());
    cmd.arg("--policy")
        .arg(policy)
        .arg("--registries.d")
        .arg(registries_d)
        .args(["copy", "--quiet", "--src-tls-verify=false"])
        .arg(with_transport(image))
        .arg(format!("dir:{}", dest_dir.display()));
    run_with_timeout(&mut cmd, DEFAULT_TIMEOUT)
}

/// A skopeo command in the hermetic environment (private HOME and auth
/// file, empty registries.conf, no network beyond loopback). `scratch` must
/// outlive the run. Pass `--policy` and `--registries.d` yourself: without
/// them skopeo reads the host's /etc/containers.
pub fn skopeo_command(skopeo: &Path, scratch: &Path) -> Command {
    let mut cmd = Command::new(skopeo);
    hermetic(&mut cmd, scratch);
    cmd
}

fn with_transport(image: &str) -> String {
    const TRANSPORTS: [&str; 7] = [
        "docker://",
        "oci:",
        "dir:",
        "oci-archive:",
        "docker-archive:",
        "docker-daemon:",
        "containers-storage:",
    ];
    if TRANSPORTS.iter().any(|t| image.starts_with(t)) {
        image.to_string()
    } else {
        format!("docker://{image}")
    }
}

/// The registry host of a `docker://HOST/...` reference.
fn docker_host(reference: &str) -> Option<&str> {
    reference
        .strip_prefix("docker://")
        .and_then(|r| r.split('/').next())
}

/// Writes `DIR/criguard-lookaside.yaml` telling containers/image to read
/// and write GPG simple signatures for `host` ("127.0.0.1:PORT") at
/// `lookaside_url` (`file:///...` or `http://...`), and returns `DIR`, for
/// `--registries.d`. containers/image 5.23 reads these key names; older
/// releases called them `sigstore`/`sigstore-staging`.
pub fn lookaside_registries_d(dir: &Path, host: &str, lookaside_url: &str) -> PathBuf {
    fs::create_dir_all(dir).expect("creating the registries.d dir");
    // JSON strings are YAML double-quoted scalars.
    let quote = |s: &str| serde_json::to_string(s).expect("quoting a string");
    fs::write(
        dir.join("criguard-lookaside.yaml"),
        format!(
            "docker:\n  {host}:\n    lookaside: {url}\n    lookaside-staging: {url}\n",
            host = quote(host),
            url = quote(lookaside_url),
        ),
    )
    .expect("writing registries.d yaml");
    dir.to_path_buf()
}

/// Copies `src` to `dest` with bookworm's skopeo 1.9.3 (containers/image
/// 5.23, gpgme), signing with the key `fingerprint` in `gpg`, and writes
/// the signature to the lookaside `lookaside_dir`
/// (`<dir>/<repo>@sha256=<hex>/signature-N`). Plain `REF`s mean
/// `docker://REF`. Returns the digest of the manifest signed. Signatures
/// the source already has in that lookaside are kept (so signing in place
/// again adds `signature-2`).
pub fn skopeo_sign_gpg(
    gpg: &GpgHome,
    fingerprint: &str,
    src: &str,
    dest: &str,
    lookaside_dir: &Path,
) -> String {
    skopeo_sign_gpg_copy(gpg, fingerprint, src, dest, lookaside_dir, false)
}

/// [`skopeo_sign_gpg`] with `--all`, for an index and all its images.
/// containers/image 5.23 then signs every manifest it writes: the index
/// and each platform manifest get a `signature-1` of their own digest, all
/// with the destination reference (tag) as identity. Returns the index
/// digest.
pub fn skopeo_sign_gpg_all(
    gpg: &GpgHome,
    fingerprint: &str,
    src: &str,
    dest: &str,
    lookaside_dir: &Path,
) -> String {
    skopeo_sign_gpg_copy(gpg, fingerprint, src, dest, lookaside_dir, true)
}

fn skopeo_sign_gpg_copy(
    gpg: &GpgHome,
    fingerprint: &str,
    src: &str,
    dest: &str,
    lookaside_dir: &Path,
    all: bool,
) -> String {
    fs::create_dir_all(lookaside_dir).expect("creating the lookaside dir");
    let lookaside = format!("file://{}", lookaside_dir.display());
    signing_copy(
        &PeerTools::get().skopeo_bookworm(),
        src,
        dest,
        |dir, host| lookaside_registries_d(dir, host, &lookaside),
        |cmd| {
            cmd.env("GNUPGHOME", gpg.path());
            if all {
                cmd.arg("--all");
            }
            cmd.args(["--sign-by", fingerprint]);
        },
    )
}

/// `skopeo standalone-sign MANIFEST REF FPR -o OUT` with skopeo 1.9.3: a
/// simple signature of the manifest file's digest for `docker_reference`,
/// made without any registry. Returns the signature bytes.
pub fn skopeo_standalone_sign(
    gpg: &GpgHome,
    manifest: &Path,
    docker_reference: &str,
    fingerprint: &str,
) -> Vec<u8> {
    let scratch = tempfile::tempdir().expect("temp dir for skopeo");
    let output = scratch.path().join("signature");
    let mut cmd = skopeo_command(&PeerTools::get().skopeo_bookworm(), scratch.path());
    cmd.env("GNUPGHOME", gpg.path())
        .arg("standalone-sign")
        .arg(manifest)
        .args([docker_reference, fingerprint])
        .arg("--output")
        .arg(&output);
    let out = run_with_timeout(&mut cmd, DEFAULT_TIMEOUT);
    assert_success(&cmd, &out);
    fs::read(&output).expect("skopeo standalone-sign wrote no signature")
}
