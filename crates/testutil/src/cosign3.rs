//! The real cosign 3.1 (Debian sid's, unpacked by `scripts/fetch-cosign3.sh`
//! and named by `$CRIGUARD_COSIGN3`), kept offline like cosign 2.5 (see
//! `peer::hermetic`): keys are local files, and signing uses a signing
//! config without Fulcio, Rekor or a TSA, so a signature is a sigstore
//! bundle with the key and the envelope only; keyless signing uses a
//! signing config naming the harness's own services on 127.0.0.1
//! (`sigstore_services`) and an unsigned test token. Without `$CRIGUARD_COSIGN3`
//! the tests that need it fail; they are never skipped.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::cosign::COSIGN_REGISTRY_FLAGS;
use crate::peer::hermetic;
use crate::process::{DEFAULT_TIMEOUT, assert_success, run_with_timeout};

/// The environment variable naming the cosign 3 binary.
pub const COSIGN3_ENV: &str = "CRIGUARD_COSIGN3";

/// The cosign 3 binary; panics, naming the fix, when it is not there.
pub fn cosign3_binary() -> PathBuf {
    let path = std::env::var_os(COSIGN3_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            panic!(
                "{COSIGN3_ENV} is not set: run scripts/fetch-cosign3.sh and export \
             {COSIGN3_ENV}=$PWD/target/peer-tools/cosign3/usr/bin/cosign (scripts/test.sh does)"
            )
        });
    assert!(
        path.is_file(),
        "{COSIGN3_ENV}={} is not a file: run scripts/fetch-cosign3.sh",
        path.display()
    );
    path
}

/// Runs cosign 3 with `args` in the hermetic environment; panics unless it
/// succeeds.
pub fn cosign3(args: &[&str], password: Option<&str>, cwd: Option<&Path>) -> Output {
    let (cmd, out) = run(args, password, cwd);
    assert_success(&cmd, &out);
    out
}

/// Like [`cosign3`], whatever the exit status.
pub fn cosign3_output(args: &[&str], password: Option<&str>, cwd: Option<&Path>) -> Output {
    run(args, password, cwd).1
}

fn run(args: &[&str], password: Option<&str>, cwd: Option<&Path>) -> (Command, Output) {
    let scratch = tempfile::tempdir().expect("temp dir for cosign's HOME");
    let mut cmd = Command::new(cosign3_binary());
    hermetic(&mut cmd, scratch.path());
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

/// A signing config with no Fulcio, Rekor, TSA or OIDC service, written
/// by `cosign signing-config create` into `dir`.
pub fn cosign3_signing_config(dir: &Path) -> PathBuf {
    let path = dir.join("signing-config.json");
    let out = path.to_str().expect("UTF-8 path");
    cosign3(
        &[
            "signing-config",
            "create",
            "--no-default-fulcio",
            "--no-default-rekor",
            "--no-default-tsa",
            "--no-default-oidc",
            "--out",
            out,
        ],
        None,
        None,
    );
    path
}

/// `cosign import-key-pair` of a PKCS #8 PEM private key into `dir`
/// (`import-cosign.key`, `import-cosign.pub`), encrypted with `password`.
pub fn cosign3_import_key(dir: &Path, private_pem: &str, password: &str) -> (PathBuf, PathBuf) {
    let source = dir.join("private.pem");
    std::fs::write(&source, private_pem).expect("writing the private key");
    cosign3(
        &["import-key-pair", "--key", source.to_str().expect("UTF-8")],
        Some(password),
        Some(dir),
    );
    (dir.join("import-cosign.key"), dir.join("import-cosign.pub"))
}

/// `cosign sign --key` with `signing_config`: pushes a sigstore bundle as
/// a referrer of `image` (the referrers API where the registry has it,
/// else the `sha256-<hex>` fallback tag). Panics if cosign fails.
pub fn cosign3_sign(key: &Path, password: &str, signing_config: &Path, image: &str) {
    let mut args = vec![
        "sign",
        "--key",
        key.to_str().expect("UTF-8"),
        "--signing-config",
        signing_config.to_str().expect("UTF-8"),
        "--yes",
    ];
    args.extend(COSIGN_REGISTRY_FLAGS);
    args.push(image);
    cosign3(&args, Some(password), None);
}

/// `cosign verify --key public image` without the transparency log; the
/// caller checks the status.
pub fn cosign3_verify(public: &Path, image: &str) -> Output {
    let mut args = vec![
        "verify",
        "--key",
        public.to_str().expect("UTF-8"),
        "--insecure-ignore-tlog=true",
    ];
    args.extend(COSIGN_REGISTRY_FLAGS);
    args.push(image);
    cosign3_output(&args, None, None)
}

/// A signing config naming a Fulcio and a Rekor v1 (both `api-version=1`,
/// as cosign spells Fulcio v2's and Rekor v1's major versions), no TSA and
/// no OIDC provider, written by `cosign signing-config create` into `dir`:
/// `cosign sign --identity-token` then signs keyless through them.
pub fn cosign3_keyless_signing_config(dir: &Path, fulcio_url: &str, rekor_url: &str) -> PathBuf {
    keyless_signing_config(dir, fulcio_url, rekor_url, 1, None)
}

/// Like [`cosign3_keyless_signing_config`] with a Rekor v2 log
/// (`api-version=2`) and the timestamp authority at `tsa_url`, which
/// cosign requires for a certificate logged in Rekor v2.
pub fn cosign3_keyless_signing_config_v2(
    dir: &Path,
    fulcio_url: &str,
    rekor_url: &str,
    tsa_url: &str,
) -> PathBuf {
    keyless_signing_config(dir, fulcio_url, rekor_url, 2, Some(tsa_url))
}

fn keyless_signing_config(
    dir: &Path,
    fulcio_url: &str,
    rekor_url: &str,
    rekor_version: u8,
    tsa_url: Option<&str>,
) -> PathBuf {
    let path = dir.join(format!("keyless-signing-config-v{rekor_version}.json"));
    let out = path.to_str().expect("UTF-8 path");
    let service = |url: &str, version: u8| {
        format!("url={url},api-version={version},start-time=2024-01-01T00:00:00Z,operator=test")
    };
    let fulcio = service(fulcio_url, 1);
    let rekor = service(rekor_url, rekor_version);
    let mut args = vec![
        "signing-config",
        "create",
        "--fulcio",
        &fulcio,
        "--rekor",
        &rekor,
        "--rekor-config",
        "ANY",
        "--no-default-oidc",
        "--out",
        out,
    ];
    let tsa = tsa_url.map(|url| service(url, 1));
    match &tsa {
        Some(tsa) => args.extend(["--tsa", tsa, "--tsa-config", "ANY"]),
        None => args.push("--no-default-tsa"),
    }
    cosign3(&args, None, None);
    path
}

/// `cosign sign --identity-token token` with `signing_config` (see
/// [`cosign3_keyless_signing_config`]): an ephemeral key, a Fulcio
/// certificate, a Rekor entry, the bundle pushed as a referrer of `image`.
/// With `trusted_root`, sigstore-go also verifies the bundle before
/// pushing it. The caller checks the status.
pub fn cosign3_sign_keyless(
    token: &str,
    signing_config: &Path,
    trusted_root: Option<&Path>,
    image: &str,
) -> Output {
    let mut args = vec![
        "sign",
        "--identity-token",
        token,
        "--signing-config",
        signing_config.to_str().expect("UTF-8"),
        "--yes",
    ];
    if let Some(root) = trusted_root {
        args.extend(["--trusted-root", root.to_str().expect("UTF-8")]);
    }
    args.extend(COSIGN_REGISTRY_FLAGS);
    args.push(image);
    cosign3_output(&args, None, None)
}
