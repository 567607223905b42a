//! `criguard verify --trusted-root`: an image whose cosign 3 bundle is
//! logged in a Rekor v2 log and timestamped (a test log and a test TSA),
//! served as an OCI referrer by the harness's referrers-capable registry.
//! Allowed with the trusted root, refused without it saying what to do, and
//! an unreadable trusted root is an error naming the file.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use criguard_testutil::bundles::{
    BUNDLE_MEDIA_TYPE, IN_TOTO, TestKey, bundle_json, cosign_statement, key_material, pae,
};
use criguard_testutil::keyless::TEST_LOGGED_AT;
use criguard_testutil::rekor_v2::{TestLogV2, dsse_body, trusted_root_json};
use criguard_testutil::tsa::{TestTsa, timestamp_data};
use criguard_testutil::{
    ReferrersRegistry, insecure_registries_conf, run_with_timeout, test_image,
};
use serde_json::{Value, json};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const EMPTY: &str = "application/vnd.oci.empty.v1+json";

fn write(dir: &Path, name: &str, data: impl AsRef<[u8]>) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, data).unwrap();
    path
}

fn verify(dir: &Path, policy: &Path, image: &str, trusted_root: Option<&Path>) -> (i32, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_criguard"));
    cmd.arg("verify")
        .arg("--policy")
        .arg(policy)
        .arg("--registries.d")
        .arg(dir.join("registries.d"))
        .arg("--registries-conf")
        .arg(dir.join("registries.conf"))
        .arg("--authfile")
        .arg(dir.join("auth.json"));
    if let Some(root) = trusted_root {
        cmd.arg("--trusted-root").arg(root);
    }
    cmd.arg(image);
    let out: Output = run_with_timeout(&mut cmd, Duration::from_secs(120));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn verify_with_a_trusted_root_accepts_a_rekor_v2_bundle() {
    let registry = ReferrersRegistry::start();
    let host = registry.host();
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    std::fs::create_dir(dir.join("registries.d")).unwrap();
    write(
        &dir.join("registries.d"),
        "test.yaml",
        format!(
            "docker:\n  {host}:\n    use-sigstore-attachments: true\n    criguard-sigstore-bundles: true\n"
        ),
    );
    insecure_registries_conf(&dir.join("registries.conf"), &host);
    write(dir, "auth.json", "{}");

    let image = test_image("rekor v2");
    let reference = registry.push_image("test/app", "v1", &image);
    let manifest_digest = image.digest();

    // The bundle: a key signature, logged in a Rekor v2 log, timestamped.
    let key = TestKey::p256();
    let log = TestLogV2::new();
    let tsa = TestTsa::default();
    let statement = cosign_statement(manifest_digest);
    let signature = key.sign(&pae(IN_TOTO, &statement));
    let entry = log.entry(
        "dsse",
        &dsse_body(&key.spki_der(), false, &signature, &statement),
    );
    let mut bundle: Value = serde_json::from_slice(&bundle_json(
        key_material(&key.spki_der()),
        vec![entry],
        IN_TOTO,
        &statement,
        std::slice::from_ref(&signature),
    ))
    .unwrap();
    bundle["verificationMaterial"]["timestampVerificationData"] =
        timestamp_data(&[tsa.token(&signature, TEST_LOGGED_AT)]);
    let bundle = bundle.to_string().into_bytes();

    // Pushed as cosign 3 pushes it: a referrer of the image.
    let bundle_digest = registry.put_blob("test/app", &bundle);
    let config_digest = registry.put_blob("test/app", b"{}");
    let referrer = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": BUNDLE_MEDIA_TYPE,
        "config": {"mediaType": EMPTY, "digest": config_digest, "size": 2},
        "layers": [{"mediaType": BUNDLE_MEDIA_TYPE, "digest": bundle_digest, "size": bundle.len()}],
        "subject": {
            "mediaType": image.manifest.media_type,
            "digest": manifest_digest,
            "size": image.manifest.data.len(),
        },
    })
    .to_string()
    .into_bytes();
    // (A blob elsewhere only to learn the manifest's digest.)
    let referrer_digest = registry.put_blob("scratch", &referrer);
    registry.put_manifest("test/app", &referrer_digest, OCI_MANIFEST, &referrer);

    let public = write(dir, "cosign.pub", key.public_pem());
    let rekor = write(dir, "rekor.pub", log.public_pem());
    let policy = write(
        dir,
        "policy.json",
        json!({
            "default": [{"type": "reject"}],
            "transports": {"docker": {host.clone(): [{
                "type": "sigstoreSigned",
                "keyPath": public,
                "rekorPublicKeyPath": rekor,
                "signedIdentity": {"type": "matchRepository"},
            }]}},
        })
        .to_string(),
    );
    let root = write(
        dir,
        "trusted_root.json",
        trusted_root_json(
            vec![log.trusted_root_entry("2025-01-01T00:00:00Z")],
            vec![tsa.trusted_root_entry()],
        ),
    );

    let (code, text) = verify(dir, &policy, &reference, Some(&root));
    assert_eq!(code, 0, "{text}");
    assert!(text.starts_with("allowed"), "{text}");

    let (code, text) = verify(dir, &policy, &reference, None);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains(
            "needs a trusted root: set trusted_root in criguard's config or pass --trusted-root"
        ),
        "{text}"
    );

    let missing = dir.join("missing.json");
    let (code, text) = verify(dir, &policy, &reference, Some(&missing));
    assert_ne!(code, 0, "{text}");
    assert!(text.contains("missing.json"), "{text}");
}

/// `trusted_root` in config.toml is read at start: a file that cannot be
/// used stops `criguard serve` before it listens, naming the file.
#[test]
fn serve_refuses_to_start_with_an_unusable_trusted_root() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let policy = write(dir, "policy.json", r#"{"default":[{"type":"reject"}]}"#);
    std::fs::create_dir(dir.join("policies")).unwrap();
    std::fs::create_dir(dir.join("registries.d")).unwrap();
    let bad_root = write(dir, "trusted_root.json", r#"{"mediaType":"text/plain"}"#);
    for (root, expected) in [
        (dir.join("missing.json"), "missing.json"),
        (bad_root, "unsupported trusted root media type"),
    ] {
        let config = write(
            dir,
            "config.toml",
            format!(
                "listen = \"{listen}\"\nruntime_endpoint = \"{runtime}\"\npolicy = \"{policy}\"\n\
                 policy_dir = \"{policies}\"\nregistries_d = \"{registries_d}\"\n\
                 state_dir = \"{state}\"\nmetrics_address = \"\"\ntrusted_root = \"{root}\"\n",
                listen = dir.join("criguard.sock").display(),
                runtime = dir.join("runtime.sock").display(),
                policy = policy.display(),
                policies = dir.join("policies").display(),
                registries_d = dir.join("registries.d").display(),
                state = dir.join("state").display(),
                root = root.display(),
            ),
        );
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_criguard"));
        cmd.arg("serve").arg("--config").arg(&config);
        let out = run_with_timeout(&mut cmd, Duration::from_secs(60));
        let text = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{text}");
        assert!(text.contains(expected), "{text}");
        assert!(!dir.join("criguard.sock").exists(), "it listened: {text}");
    }
}
