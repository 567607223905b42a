//! `criguard verify`, `keygen` and `sign` against real peers: a Debian
//! `docker-registry` on 127.0.0.1, real cosign 2.5 and sigstore-enabled
//! skopeo 1.18. Where skopeo can judge the same image under the same policy
//! (`skopeo copy --policy`, which is what CRI-O does on a pull), its
//! verdict is the expected one.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use criguard_testutil::{
    Registry, cosign_generate_key_pair, cosign_sign, cosign_verify, insecure_registries_conf,
    push_test_image, push_test_multiarch, run_with_timeout, sigstore_registries_d,
    skopeo_copy_with_policy, skopeo_sign_sigstore,
};
use serde_json::json;

const PASSWORD: &str = "test-password";

/// A registry plus the files a verification needs.
struct Env {
    registry: Registry,
    dir: tempfile::TempDir,
    registries_d: PathBuf,
    registries_conf: PathBuf,
    cosign_key: PathBuf,
    cosign_pub: PathBuf,
}

impl Env {
    fn new() -> Self {
        let registry = Registry::start();
        let dir = tempfile::tempdir().unwrap();
        let registries_d =
            sigstore_registries_d(&dir.path().join("registries.d"), &registry.host());
        let registries_conf =
            insecure_registries_conf(&dir.path().join("registries.conf"), &registry.host());
        let keys = dir.path().join("keys");
        std::fs::create_dir(&keys).unwrap();
        let (cosign_key, cosign_pub) = cosign_generate_key_pair(&keys, PASSWORD);
        Self {
            registry,
            dir,
            registries_d,
            registries_conf,
            cosign_key,
            cosign_pub,
        }
    }

    /// A policy rejecting everything but `requirement` for this registry.
    fn policy(&self, name: &str, requirement: serde_json::Value) -> PathBuf {
        let path = self.dir.path().join(format!("{name}.json"));
        let policy = json!({
            "default": [{"type": "reject"}],
            "transports": {"docker": {self.registry.host(): [requirement]}},
        });
        std::fs::write(&path, policy.to_string()).unwrap();
        path
    }

    fn key_policy(&self, public: &Path, identity: &str) -> PathBuf {
        self.policy(
            &format!("key-{identity}"),
            json!({
                "type": "sigstoreSigned",
                "keyPath": public,
                "signedIdentity": {"type": identity},
            }),
        )
    }

    fn verify(&self, policy: &Path, image: &str, extra: &[&str]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_criguard"));
        cmd.arg("verify")
            .arg("--policy")
            .arg(policy)
            .arg("--registries.d")
            .arg(&self.registries_d)
            .arg("--registries-conf")
            .arg(&self.registries_conf)
            .arg("--authfile")
            .arg(self.dir.path().join("no-auth.json"))
            .args(extra)
            .arg(image);
        std::fs::write(self.dir.path().join("no-auth.json"), "{}").unwrap();
        run_with_timeout(&mut cmd, Duration::from_secs(120))
    }

    /// containers/image's verdict, from skopeo 1.18.
    fn oracle(&self, policy: &Path, image: &str) -> bool {
        let dest = tempfile::tempdir().unwrap();
        let out = skopeo_copy_with_policy(policy, &self.registries_d, image, dest.path());
        out.status.success()
    }

    /// criguard's verdict, which must equal skopeo's; returns criguard's
    /// output for further checks.
    fn verify_like_skopeo(&self, policy: &Path, image: &str, expect_allowed: bool) -> String {
        let out = self.verify(policy, image, &[]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let allowed = out.status.code() == Some(0);
        assert!(
            out.status.code() == Some(0) || out.status.code() == Some(1),
            "{image}: exit {:?}\n{text}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(allowed, expect_allowed, "{image}: criguard says\n{text}");
        assert_eq!(
            self.oracle(policy, image),
            expect_allowed,
            "{image}: skopeo disagrees with the expected verdict"
        );
        text
    }
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn cosign_signed_allowed_unsigned_rejected_like_skopeo() {
    let env = Env::new();
    let signed = push_test_image(&env.registry, "app/signed", "v1", "signed");
    let unsigned = push_test_image(&env.registry, "app/unsigned", "v1", "unsigned");
    cosign_sign(&env.cosign_key, PASSWORD, &signed.by_digest());
    let policy = env.key_policy(&env.cosign_pub, "matchRepository");

    let text = env.verify_like_skopeo(&policy, &signed.by_tag(), true);
    assert!(text.starts_with("allowed: "), "{text}");
    assert!(text.contains(&signed.digest), "{text}");
    let text = env.verify_like_skopeo(&policy, &unsigned.by_tag(), false);
    assert!(
        text.contains("A signature was required, but no signature exists"),
        "{text}"
    );
    // By digest too.
    env.verify_like_skopeo(&policy, &signed.by_digest(), true);

    // cosign signs the repository only, so the default identity rule
    // (matchRepoDigestOrExact) refuses a tag, as containers/image does.
    let exact = env.key_policy(&env.cosign_pub, "matchRepoDigestOrExact");
    let text = env.verify_like_skopeo(&exact, &signed.by_tag(), false);
    assert!(text.contains("is not accepted"), "{text}");

    // Another key.
    let other = env.dir.path().join("other");
    std::fs::create_dir(&other).unwrap();
    let (_, other_pub) = cosign_generate_key_pair(&other, PASSWORD);
    let wrong_key = env.key_policy(&other_pub, "matchRepository");
    let text = env.verify_like_skopeo(&wrong_key, &signed.by_tag(), false);
    assert!(
        text.contains("cryptographic signature verification failed"),
        "{text}"
    );
}

#[test]
fn without_use_sigstore_attachments_no_signature_is_read() {
    let env = Env::new();
    let signed = push_test_image(&env.registry, "app/signed", "v1", "signed");
    cosign_sign(&env.cosign_key, PASSWORD, &signed.by_digest());
    let policy = env.key_policy(&env.cosign_pub, "matchRepository");
    let empty = env.dir.path().join("empty.d");
    std::fs::create_dir(&empty).unwrap();
    let out = {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_criguard"));
        cmd.args(["verify", "--policy"])
            .arg(&policy)
            .arg("--registries.d")
            .arg(&empty)
            .arg("--registries-conf")
            .arg(&env.registries_conf)
            .arg(signed.by_tag());
        run_with_timeout(&mut cmd, Duration::from_secs(120))
    };
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("does not set use-sigstore-attachments"),
        "{}",
        stdout(&out)
    );
    let dest = tempfile::tempdir().unwrap();
    let oracle = skopeo_copy_with_policy(&policy, &empty, &signed.by_tag(), dest.path());
    assert!(
        !oracle.status.success(),
        "skopeo read signatures it should not"
    );
}

#[test]
fn signature_for_another_digest_is_rejected() {
    let env = Env::new();
    let signed = push_test_image(&env.registry, "app/a", "v1", "first");
    cosign_sign(&env.cosign_key, PASSWORD, &signed.by_digest());
    // Move the tag to other content: the signature does not follow it.
    let moved = push_test_image(&env.registry, "app/a", "v1", "second");
    assert_ne!(moved.digest, signed.digest);
    let policy = env.key_policy(&env.cosign_pub, "matchRepository");
    env.verify_like_skopeo(&policy, &moved.by_tag(), false);

    // Transplant the first image's .sig onto the second digest.
    let sig_tag = |d: &str| d.replacen(':', "-", 1) + ".sig";
    let manifest = env.registry.get_manifest("app/a", &sig_tag(&signed.digest));
    assert_eq!(manifest.status, 200);
    criguard_testutil::image::upload_manifest(
        &env.registry,
        "app/a",
        &sig_tag(&moved.digest),
        &criguard_testutil::Blob::new(criguard_testutil::image::OCI_MANIFEST, manifest.body),
    );
    let text = env.verify_like_skopeo(&policy, &moved.by_tag(), false);
    assert!(
        text.contains(&format!(
            "Signature for digest {} does not match",
            signed.digest
        )),
        "{text}"
    );
}

#[test]
fn criguard_keys_and_signatures_work_with_cosign_and_skopeo() {
    let env = Env::new();
    let image = push_test_image(&env.registry, "app/ours", "v1", "ours");
    let keys = env.dir.path().join("ours");
    std::fs::create_dir(&keys).unwrap();
    let password_file = env.dir.path().join("password");
    std::fs::write(&password_file, format!("{PASSWORD}\n")).unwrap();

    let keygen = run_with_timeout(
        Command::new(env!("CARGO_BIN_EXE_criguard"))
            .args(["keygen", "--output-dir"])
            .arg(&keys)
            .arg("--password-file")
            .arg(&password_file),
        Duration::from_secs(60),
    );
    assert!(keygen.status.success(), "{keygen:?}");
    let (key, public) = (keys.join("cosign.key"), keys.join("cosign.pub"));

    let sign = run_with_timeout(
        Command::new(env!("CARGO_BIN_EXE_criguard"))
            .args(["sign", "--key"])
            .arg(&key)
            .arg("--password-file")
            .arg(&password_file)
            .arg("--registries-conf")
            .arg(&env.registries_conf)
            .arg(image.by_tag()),
        Duration::from_secs(60),
    );
    assert!(sign.status.success(), "{sign:?}");

    // Real cosign accepts what criguard signed, with criguard's public key.
    let verified = cosign_verify(&public, &image.by_tag());
    assert!(verified.status.success(), "{verified:?}");
    // And skopeo (containers/image) and criguard agree.
    let policy = env.key_policy(&public, "matchRepository");
    env.verify_like_skopeo(&policy, &image.by_tag(), true);

    // criguard signs with cosign's key, cosign verifies it.
    let second = push_test_image(&env.registry, "app/second", "v1", "second");
    let sign = run_with_timeout(
        Command::new(env!("CARGO_BIN_EXE_criguard"))
            .args(["sign", "--key"])
            .arg(&env.cosign_key)
            .arg("--registries-conf")
            .arg(&env.registries_conf)
            .arg(second.by_tag())
            .env("COSIGN_PASSWORD", PASSWORD),
        Duration::from_secs(60),
    );
    assert!(sign.status.success(), "{sign:?}");
    assert!(
        cosign_verify(&env.cosign_pub, &second.by_tag())
            .status
            .success()
    );
    // A wrong password is refused, not guessed around.
    let wrong = run_with_timeout(
        Command::new(env!("CARGO_BIN_EXE_criguard"))
            .args(["sign", "--key"])
            .arg(&env.cosign_key)
            .arg(second.by_tag())
            .env("COSIGN_PASSWORD", "wrong"),
        Duration::from_secs(60),
    );
    assert!(!wrong.status.success());
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("decryption failed"));
}

#[test]
fn skopeo_sigstore_signature_with_tag_identity() {
    let env = Env::new();
    let source = push_test_image(&env.registry, "app/src", "v1", "skopeo");
    let passphrase = env.dir.path().join("passphrase");
    std::fs::write(&passphrase, PASSWORD).unwrap();
    let dest = format!("{}/app/skopeo-signed:v1", env.registry.host());
    skopeo_sign_sigstore(&env.cosign_key, &passphrase, &source.by_tag(), &dest);
    // containers/image puts the tag in the identity, so matchExact holds.
    let exact = env.key_policy(&env.cosign_pub, "matchExact");
    env.verify_like_skopeo(&exact, &dest, true);
    let other_tag = format!("{}/app/skopeo-signed:v2", env.registry.host());
    push_test_image(&env.registry, "app/skopeo-signed", "v2", "skopeo");
    env.verify_like_skopeo(&exact, &other_tag, false);
}

#[test]
fn multi_arch_signature_must_be_on_the_platform_manifest() {
    let env = Env::new();
    let pushed = push_test_multiarch(&env.registry, "app/multi", "v1", "multi");
    // cosign signs the index only (no --recursive).
    cosign_sign(&env.cosign_key, PASSWORD, &pushed.index.by_digest());
    let policy = env.key_policy(&env.cosign_pub, "matchRepository");
    let image = pushed.index.by_tag();
    let amd64 = ["--platform", "linux/amd64"];
    let out = env.verify(&policy, &image, &amd64);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stdout(&out).contains(pushed.platform_digest("linux", "amd64")),
        "{}",
        stdout(&out)
    );
    assert!(
        !env.oracle(&policy, &image),
        "skopeo accepted an index-only signature"
    );

    // Sign the amd64 manifest: amd64 is allowed, arm64 still is not.
    let amd64_ref = format!(
        "{}@{}",
        pushed.index.name(),
        pushed.platform_digest("linux", "amd64")
    );
    cosign_sign(&env.cosign_key, PASSWORD, &amd64_ref);
    let out = env.verify(&policy, &image, &amd64);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(
        env.oracle(&policy, &image),
        "skopeo (this host is amd64) disagrees"
    );
    let out = env.verify(
        &policy,
        &image,
        &["--platform", "linux/arm64", "--output", "json"],
    );
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["verdict"], "rejected");
    assert_eq!(report["platform"], "linux/arm64");
    assert_eq!(report["digest"], pushed.platform_digest("linux", "arm64"));
    assert_eq!(report["indexDigest"], pushed.index.digest.as_str());
}

#[test]
fn errors_while_deciding_are_rejections() {
    let env = Env::new();
    let image = push_test_image(&env.registry, "app/x", "v1", "x");
    let policy = env.policy("accept", json!({"type": "insecureAcceptAnything"}));
    let out = env.verify(&policy, &image.by_tag(), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    // Missing tag: rejected, exit 1, reason names the manifest.
    let out = env.verify(&policy, &format!("{}/app/x:nope", env.registry.host()), &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).starts_with("rejected: "), "{}", stdout(&out));
    // A broken policy file rejects everything.
    let broken = env.dir.path().join("broken.json");
    std::fs::write(&broken, "{").unwrap();
    let out = env.verify(&broken, &image.by_tag(), &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("invalid policy"), "{}", stdout(&out));
    // Bad usage is exit 2.
    let out = env.verify(&policy, "docker://UPPER/case", &[]);
    assert_eq!(out.status.code(), Some(2));
    let out = env.verify(&policy, &image.by_tag(), &["--platform", "linux"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn registry_faults_are_rejections_that_name_the_cause() {
    let mut env = Env::new();
    let image = push_test_image(&env.registry, "app/x", "v1", "x");
    let policy = env.policy("accept", json!({"type": "insecureAcceptAnything"}));
    env.registry.stop();
    let out = env.verify(&policy, &image.by_tag(), &["--timeout", "5"]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(text.starts_with("rejected: "), "{text}");
    assert!(text.contains("refused"), "{text}");
    assert!(text.contains(&env.registry.host()), "{text}");
}

#[test]
fn credentials_from_creds_and_authfile() {
    let registry = Registry::start_with_auth("alice", "s3cret");
    let dir = tempfile::tempdir().unwrap();
    let image = push_test_image(&registry, "private/app", "v1", "private");
    let conf = dir.path().join("registries.conf");
    std::fs::write(
        &conf,
        format!(
            "[[registry]]\nlocation = \"{}\"\ninsecure = true\n",
            registry.host()
        ),
    )
    .unwrap();
    let policy = dir.path().join("policy.json");
    std::fs::write(
        &policy,
        r#"{"default":[{"type":"insecureAcceptAnything"}]}"#,
    )
    .unwrap();
    let empty_auth = dir.path().join("empty.json");
    std::fs::write(&empty_auth, "{}").unwrap();
    let auth = dir.path().join("auth.json");
    std::fs::write(
        &auth,
        json!({"auths": {registry.host(): {"auth": "YWxpY2U6czNjcmV0"}}}).to_string(),
    )
    .unwrap();
    let verify = |extra: &[&str]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_criguard"));
        cmd.args(["verify", "--policy"])
            .arg(&policy)
            .arg("--registries-conf")
            .arg(&conf)
            .arg("--registries.d")
            .arg(dir.path())
            .args(extra)
            .arg(image.by_tag());
        run_with_timeout(&mut cmd, Duration::from_secs(120))
    };
    let empty = empty_auth.to_str().unwrap();
    let anonymous = verify(&["--authfile", empty]);
    assert_eq!(anonymous.status.code(), Some(1));
    assert!(
        stdout(&anonymous).contains("authentication required"),
        "{}",
        stdout(&anonymous)
    );
    let wrong = verify(&["--creds", "alice:wrong"]);
    assert_eq!(wrong.status.code(), Some(1));
    assert!(stdout(&wrong).contains("rejected"), "{}", stdout(&wrong));
    assert!(verify(&["--creds", "alice:s3cret"]).status.success());
    assert!(
        verify(&["--authfile", auth.to_str().unwrap()])
            .status
            .success()
    );
}

/// Keyless signatures made by the test CA and test log, judged by criguard
/// and by containers/image (skopeo 1.18) under the same Fulcio policy.
#[test]
fn keyless_verdicts_match_skopeo() {
    use criguard_testutil::keyless::{
        LeafSpec, TEST_EMAIL, TEST_ISSUER, TEST_LOGGED_AT, TestCa, TestRekor, attach_signature,
        cosign_payload, der_utf8, keyless_annotations,
    };

    let env = Env::new();
    let image = push_test_image(&env.registry, "app/keyless", "v1", "keyless");
    let ca = TestCa::new("test fulcio");
    let rekor = TestRekor::new();
    let ca_path = env.dir.path().join("fulcio.pem");
    let rekor_path = env.dir.path().join("rekor.pub");
    std::fs::write(&ca_path, ca.pem()).unwrap();
    std::fs::write(&rekor_path, rekor.public_pem()).unwrap();
    let policy = env.policy(
        "fulcio",
        json!({
            "type": "sigstoreSigned",
            "fulcio": {"caPath": ca_path, "oidcIssuer": TEST_ISSUER, "subjectEmail": TEST_EMAIL},
            "rekorPublicKeyPath": rekor_path,
            "signedIdentity": {"type": "matchRepository"},
        }),
    );
    let payload = cosign_payload(&image.name(), &image.digest);
    let other_ca = TestCa::new("other ca");
    let other_rekor = TestRekor::new();

    let valid = LeafSpec::default().issue(&ca);
    let wrong_email = LeafSpec {
        emails: vec!["other@example.test"],
        ..LeafSpec::default()
    }
    .issue(&ca);
    let wrong_issuer = LeafSpec {
        issuer_v2: Some(der_utf8("https://evil.test")),
        ..LeafSpec::default()
    }
    .issue(&ca);
    let v1_issuer = LeafSpec {
        issuer_v1: Some(TEST_ISSUER),
        issuer_v2: None,
        ..LeafSpec::default()
    }
    .issue(&ca);
    let foreign = LeafSpec::default().issue(&other_ca);
    let mut other_signature = keyless_annotations(&valid, &rekor, &payload, TEST_LOGGED_AT);
    other_signature.insert(
        "dev.sigstore.cosign/bundle".into(),
        rekor.set(
            &valid.cert_pem,
            &valid.sign(b"other"),
            &payload,
            TEST_LOGGED_AT,
        ),
    );

    let cases = [
        (
            "valid",
            keyless_annotations(&valid, &rekor, &payload, TEST_LOGGED_AT),
            true,
        ),
        (
            "v1 issuer",
            keyless_annotations(&v1_issuer, &rekor, &payload, TEST_LOGGED_AT),
            true,
        ),
        (
            "wrong email",
            keyless_annotations(&wrong_email, &rekor, &payload, TEST_LOGGED_AT),
            false,
        ),
        (
            "wrong issuer",
            keyless_annotations(&wrong_issuer, &rekor, &payload, TEST_LOGGED_AT),
            false,
        ),
        (
            "other CA",
            keyless_annotations(&foreign, &rekor, &payload, TEST_LOGGED_AT),
            false,
        ),
        (
            "expired when logged",
            keyless_annotations(&valid, &rekor, &payload, TEST_LOGGED_AT + 2 * 86_400),
            false,
        ),
        (
            "not yet valid when logged",
            keyless_annotations(&valid, &rekor, &payload, TEST_LOGGED_AT - 86_400),
            false,
        ),
        (
            "SET by another log",
            keyless_annotations(&valid, &other_rekor, &payload, TEST_LOGGED_AT),
            false,
        ),
        ("entry for another signature", other_signature, false),
    ];
    for (name, annotations, allowed) in cases {
        attach_signature(
            &env.registry,
            "app/keyless",
            &image.digest,
            &payload,
            &annotations,
        );
        let out = env.verify(&policy, &image.by_tag(), &[]);
        assert_eq!(
            out.status.code() == Some(0),
            allowed,
            "{name}: {}",
            stdout(&out)
        );
        assert_eq!(
            env.oracle(&policy, &image.by_tag()),
            allowed,
            "{name}: skopeo"
        );
    }
}

/// A node without a CA bundle (a minimal image) must reject with a reason,
/// not crash, when a certificate is to be checked; a registry marked
/// `insecure` and reached over plain HTTP needs no trust store at all, as
/// in containers/image.
#[test]
fn no_system_trust_store_is_not_a_crash() {
    let env = Env::new();
    let image = push_test_image(&env.registry, "app/x", "v1", "x");
    let policy = env.policy("accept", json!({"type": "insecureAcceptAnything"}));
    let empty = env.dir.path().join("no-certs");
    std::fs::create_dir(&empty).unwrap();
    let secure_conf = env.dir.path().join("secure.conf");
    std::fs::write(&secure_conf, "").unwrap();
    let verify = |registries_conf: &std::path::Path| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_criguard"));
        cmd.args(["verify", "--policy"])
            .arg(&policy)
            .arg("--registries.d")
            .arg(&env.registries_d)
            .arg("--registries-conf")
            .arg(registries_conf)
            .arg(image.by_tag())
            .env("SSL_CERT_FILE", empty.join("none.pem"))
            .env("SSL_CERT_DIR", &empty);
        run_with_timeout(&mut cmd, Duration::from_secs(120))
    };

    let out = verify(&env.registries_conf);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{}{stderr}", stdout(&out));

    let out = verify(&secure_conf);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // 101 would be a Rust panic exit.
    assert_eq!(out.status.code(), Some(1), "{}{stderr}", stdout(&out));
    assert!(
        stdout(&out).contains("no system CA certificates could be loaded"),
        "{}",
        stdout(&out)
    );
}

/// `oci:DIR:NAME` images: the manifest (or the platform's, from an index)
/// is read from the layout with its digest checked; containers/image keeps
/// no signatures in OCI layouts, so signature requirements reject.
#[test]
fn oci_layouts_single_and_multi_arch() {
    use criguard_testutil::image::{write_oci_layout, write_oci_layout_index};
    let dir = tempfile::tempdir().unwrap();
    let single = criguard_testutil::test_image("layout");
    let multi = criguard_testutil::test_multiarch("layout");
    let single_dir = dir.path().join("single");
    let multi_dir = dir.path().join("multi");
    write_oci_layout(&single_dir, "v1", &single);
    write_oci_layout_index(&multi_dir, "v1", &multi);
    let accept = dir.path().join("accept.json");
    std::fs::write(
        &accept,
        r#"{"default":[{"type":"insecureAcceptAnything"}]}"#,
    )
    .unwrap();
    let signed = dir.path().join("signed.json");
    std::fs::write(
        &signed,
        r#"{"default":[{"type":"sigstoreSigned","keyData":"","signedIdentity":{"type":"matchRepository"}}]}"#,
    )
    .unwrap();
    let verify = |policy: &Path, image: String, extra: &[&str]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_criguard"));
        cmd.args(["verify", "--output", "json", "--policy"])
            .arg(policy)
            .args(extra)
            .arg(image);
        let out = run_with_timeout(&mut cmd, Duration::from_secs(60));
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        (out.status.code(), report)
    };
    let (code, report) = verify(&accept, format!("oci:{}:v1", single_dir.display()), &[]);
    assert_eq!(code, Some(0), "{report}");
    assert_eq!(report["digest"], single.digest());
    let (code, report) = verify(&signed, format!("oci:{}:v1", single_dir.display()), &[]);
    assert_eq!(code, Some(1), "{report}");
    assert_eq!(
        report["reason"],
        "A signature was required, but no signature exists"
    );
    for arch in ["amd64", "arm64"] {
        let platform = format!("linux/{arch}");
        let (code, report) = verify(
            &accept,
            format!("oci:{}:v1", multi_dir.display()),
            &["--platform", &platform],
        );
        assert_eq!(code, Some(0), "{report}");
        assert_eq!(
            report["digest"],
            multi.image("linux", arch).unwrap().digest()
        );
    }
    // A blob that does not match its digest is a rejection.
    let blob = single_dir
        .join("blobs/sha256")
        .join(single.digest().trim_start_matches("sha256:"));
    std::fs::write(&blob, b"{}").unwrap();
    let (code, report) = verify(&accept, format!("oci:{}:v1", single_dir.display()), &[]);
    assert_eq!(code, Some(1), "{report}");
    assert!(
        report["reason"]
            .as_str()
            .unwrap()
            .contains("digest mismatch"),
        "{report}"
    );
}
