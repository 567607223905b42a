//! The real cosign 2.5, kept offline: keys are local files, nothing goes to
//! a transparency log, no TUF root is fetched, and the private HOME plus a
//! dead proxy (see `peer::hermetic`) make any other network access fail
//! at once instead of hanging.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::peer::{PeerTools, hermetic};
use crate::process::{DEFAULT_TIMEOUT, assert_success, run_with_timeout};

/// Flags that let cosign talk plain HTTP to the loopback registry.
pub const COSIGN_REGISTRY_FLAGS: [&str; 2] = ["--allow-http-registry", "--allow-insecure-registry"];

/// Generates an encrypted cosign key pair (`cosign.key`, `cosign.pub`) in
/// `dir`, which must not hold one already (cosign would ask to overwrite).
/// The key is the same sigstore private-key format skopeo signs with.
pub fn cosign_generate_key_pair(dir: &Path, password: &str) -> (PathBuf, PathBuf) {
    let key = dir.join("cosign.key");
    let public = dir.join("cosign.pub");
    assert!(
        !key.exists() && !public.exists(),
        "{} already holds a cosign key pair",
        dir.display()
    );
    let out = cosign(&["generate-key-pair"], Some(password), Some(dir));
    assert!(
        key.is_file() && public.is_file(),
        "cosign generate-key-pair wrote no key pair in {}:\n{}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    (key, public)
}

/// Signs `image` (`HOST/REPO@sha256:...`) with `key` and pushes the
/// signature as a sigstore attachment (`sha256-<hex>.sig` tag). Panics if
/// cosign fails.
pub fn cosign_sign(key: &Path, password: &str, image: &str) {
    cosign_sign_with(key, password, image, &[]);
}

/// [`cosign_sign`] with extra `cosign sign` flags, e.g. `["-a", "k=v"]`
/// for an annotation in the signed payload.
pub fn cosign_sign_with(key: &Path, password: &str, image: &str, extra: &[&str]) {
    let key = key.to_str().expect("key path is UTF-8");
    let mut args = vec!["sign", "--key", key, "--tlog-upload=false", "--yes"];
    args.extend(COSIGN_REGISTRY_FLAGS);
    args.extend(extra);
    args.push(image);
    cosign(&args, Some(password), None);
}

/// `cosign verify --key public image` without the transparency log. Not
/// asserted: the caller checks `status` (0: a signature verified; 10: no
/// signatures; 12: none matched) and the payloads on stdout.
pub fn cosign_verify(public: &Path, image: &str) -> Output {
    let public = public.to_str().expect("public key path is UTF-8");
    let mut args = vec!["verify", "--key", public, "--insecure-ignore-tlog=true"];
    args.extend(COSIGN_REGISTRY_FLAGS);
    args.push(image);
    cosign_output(&args, None, None)
}

/// Runs cosign with `args` in the hermetic environment and panics unless
/// it succeeds.
pub fn cosign(args: &[&str], password: Option<&str>, cwd: Option<&Path>) -> Output {
    let (cmd, out) = cosign_run(args, password, cwd);
    assert_success(&cmd, &out);
    out
}

/// Like [`cosign`], returning the output whatever the exit status.
pub fn cosign_output(args: &[&str], password: Option<&str>, cwd: Option<&Path>) -> Output {
    cosign_run(args, password, cwd).1
}

fn cosign_run(args: &[&str], password: Option<&str>, cwd: Option<&Path>) -> (Command, Output) {
    let scratch = tempfile::tempdir().expect("temp dir for cosign's HOME");
    let mut cmd = Command::new(PeerTools::get().cosign());
    hermetic(&mut cmd, scratch.path());
    // An empty COSIGN_PASSWORD still stops cosign prompting on a terminal.
    cmd.env("COSIGN_PASSWORD", password.unwrap_or(""))
        .env_remove("COSIGN_EXPERIMENTAL")
        .env_remove("SIGSTORE_REKOR_PUBLIC_KEY")
        .env_remove("SIGSTORE_ROOT_FILE")
        .args(args);
    if let Some(cwd) = cwd {
        cmd.current_dir(cwd);
    }
    let out = run_with_timeout(&mut cmd, DEFAULT_TIMEOUT);
    (cmd, out)
}
