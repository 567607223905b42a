//! The peer tools are real and offline: cosign signs and verifies against
//! the loopback registry, skopeo 1.18 (containers/image 5.34) gives the
//! verdicts criguard is compared with, and the two agree on each other's
//! signatures.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use criguard_testutil::cosign::cosign_output;
use criguard_testutil::{
    PeerTools, Registry, cosign_generate_key_pair, cosign_sign, cosign_verify, push_test_image,
    run_with_timeout, sha256_digest, sigstore_registries_d, skopeo_copy_with_policy,
    skopeo_sign_sigstore,
};

use criguard_testutil::output_text as text;

fn sigstore_policy(dir: &Path, public_key: &Path, host: &str) -> std::path::PathBuf {
    let policy = serde_json::json!({
        "default": [{"type": "reject"}],
        "transports": {"docker": {host: [{
            "type": "sigstoreSigned",
            "keyPath": public_key,
            "signedIdentity": {"type": "matchRepository"},
        }]}},
    });
    let path = dir.join("policy.json");
    fs::write(&path, serde_json::to_vec_pretty(&policy).unwrap()).unwrap();
    path
}

#[test]
fn peer_tool_versions() {
    let tools = PeerTools::get();
    let out = run_with_timeout(
        Command::new(tools.skopeo()).arg("--version"),
        Duration::from_secs(60),
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "skopeo version 1.18.0"
    );
    let out = run_with_timeout(
        Command::new(tools.skopeo_bookworm()).arg("--version"),
        Duration::from_secs(60),
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "skopeo version 1.9.3"
    );
    let out = run_with_timeout(
        Command::new(tools.cosign()).arg("version"),
        Duration::from_secs(60),
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("GoVersion:"));
    assert!(tools.package_version("cosign").starts_with("2.5."));
    assert!(tools.package_version("skopeo").starts_with("1.18."));
}

#[test]
fn cosign_signs_and_verifies_offline() {
    let registry = Registry::start();
    let keys = tempfile::tempdir().unwrap();
    let (key, public) = cosign_generate_key_pair(keys.path(), "pw");
    assert!(
        fs::read_to_string(&key)
            .unwrap()
            .contains("ENCRYPTED SIGSTORE PRIVATE KEY")
    );
    assert!(fs::read_to_string(&public).unwrap().contains("PUBLIC KEY"));

    let signed = push_test_image(&registry, "test/app", "signed", "signed");
    let unsigned = push_test_image(&registry, "test/app", "unsigned", "unsigned");
    cosign_sign(&key, "pw", &signed.by_digest());

    // The signature is a sigstore attachment under the digest's tag.
    let sig_tag = signed.digest.replace(':', "-") + ".sig";
    let sig = registry.get_manifest("test/app", &sig_tag);
    assert_eq!(sig.status, 200, "no {sig_tag} in the registry");

    let ok = cosign_verify(&public, &signed.by_digest());
    assert!(ok.status.success(), "{}", text(&ok));
    let payloads: serde_json::Value = serde_json::from_slice(&ok.stdout).unwrap();
    assert_eq!(
        payloads[0]["critical"]["image"]["docker-manifest-digest"],
        signed.digest.as_str()
    );
    assert_eq!(
        payloads[0]["critical"]["identity"]["docker-reference"],
        signed.name().as_str()
    );

    let none = cosign_verify(&public, &unsigned.by_digest());
    assert!(!none.status.success(), "{}", text(&none));
    assert!(String::from_utf8_lossy(&none.stderr).contains("no signatures found"));

    let other_keys = tempfile::tempdir().unwrap();
    let (_, other_public) = cosign_generate_key_pair(other_keys.path(), "other");
    let wrong = cosign_verify(&other_public, &signed.by_digest());
    assert!(!wrong.status.success(), "{}", text(&wrong));
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("no matching signatures"));
}

#[test]
fn cosign_cannot_reach_beyond_loopback() {
    // Verifying WITH the transparency log needs Sigstore's TUF root from the
    // internet; the harness environment must make that fail at once, naming
    // the dead loopback proxy, rather than fetch it or hang.
    let registry = Registry::start();
    let keys = tempfile::tempdir().unwrap();
    let (key, public) = cosign_generate_key_pair(keys.path(), "pw");
    let image = push_test_image(&registry, "test/app", "v1", "tlog");
    cosign_sign(&key, "pw", &image.by_digest());
    let public = public.to_str().unwrap();
    let by_digest = image.by_digest();
    let out = cosign_output(
        &[
            "verify",
            "--key",
            public,
            "--allow-http-registry",
            &by_digest,
        ],
        None,
        None,
    );
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("127.0.0.1:9"),
        "{}",
        text(&out)
    );
}

#[test]
fn skopeo_oracle_accepts_cosign_signed_and_rejects_unsigned() {
    let registry = Registry::start();
    let work = tempfile::tempdir().unwrap();
    let (key, public) = cosign_generate_key_pair(work.path(), "pw");
    let signed = push_test_image(&registry, "test/app", "signed", "oracle signed");
    let unsigned = push_test_image(&registry, "test/app", "unsigned", "oracle unsigned");
    cosign_sign(&key, "pw", &signed.by_digest());

    let policy = sigstore_policy(work.path(), &public, &registry.host());
    let registries_d = sigstore_registries_d(&work.path().join("registries.d"), &registry.host());

    let dest = work.path().join("accepted");
    let ok = skopeo_copy_with_policy(&policy, &registries_d, &signed.by_tag(), &dest);
    assert!(ok.status.success(), "{}", text(&ok));
    let manifest = fs::read(dest.join("manifest.json")).unwrap();
    assert_eq!(sha256_digest(&manifest), signed.digest);

    let out = skopeo_copy_with_policy(
        &policy,
        &registries_d,
        &unsigned.by_tag(),
        &work.path().join("unsigned"),
    );
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("Source image rejected: A signature was required, but no signature exists"),
        "{}",
        text(&out)
    );

    // Another key: the signature exists but does not verify.
    let other = tempfile::tempdir().unwrap();
    let (_, other_public) = cosign_generate_key_pair(other.path(), "x");
    let wrong_policy = sigstore_policy(other.path(), &other_public, &registry.host());
    let out = skopeo_copy_with_policy(
        &wrong_policy,
        &registries_d,
        &signed.by_tag(),
        &work.path().join("wrong"),
    );
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Source image rejected"),
        "{}",
        text(&out)
    );

    // Without use-sigstore-attachments the signature is never looked up.
    let empty_d = work.path().join("empty.d");
    fs::create_dir(&empty_d).unwrap();
    let out = skopeo_copy_with_policy(&policy, &empty_d, &signed.by_tag(), &work.path().join("n"));
    assert!(!out.status.success(), "{}", text(&out));
}

#[test]
fn skopeo_signs_with_a_cosign_key_and_cosign_verifies_it() {
    let registry = Registry::start();
    let work = tempfile::tempdir().unwrap();
    let (key, public) = cosign_generate_key_pair(work.path(), "skopeo pw");
    let passphrase = work.path().join("passphrase");
    fs::write(&passphrase, "skopeo pw").unwrap();
    let source = push_test_image(&registry, "test/src", "v1", "signed by skopeo");
    let dest = format!("{}/test/signed:v1", registry.host());

    let digest = skopeo_sign_sigstore(&key, &passphrase, &source.by_tag(), &dest);
    assert_eq!(digest, source.digest, "skopeo changed the manifest");

    let by_digest = format!("{}/test/signed@{digest}", registry.host());
    let ok = cosign_verify(&public, &by_digest);
    assert!(ok.status.success(), "{}", text(&ok));
    let payloads: serde_json::Value = serde_json::from_slice(&ok.stdout).unwrap();
    // skopeo signs the destination reference as given, tag included.
    assert_eq!(
        payloads[0]["critical"]["identity"]["docker-reference"],
        dest.as_str()
    );
    assert_eq!(
        payloads[0]["critical"]["image"]["docker-manifest-digest"],
        digest.as_str()
    );

    let policy = sigstore_policy(work.path(), &public, &registry.host());
    let registries_d = sigstore_registries_d(&work.path().join("registries.d"), &registry.host());
    let out = skopeo_copy_with_policy(&policy, &registries_d, &dest, &work.path().join("out"));
    assert!(out.status.success(), "{}", text(&out));

    // The unsigned source repository stays unsigned.
    let out = cosign_verify(&public, &source.by_digest());
    assert!(!out.status.success(), "{}", text(&out));
}

#[test]
fn timeout_kills_the_child() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("pid");
    let script = format!("echo $$ > '{}'; exec sleep 60", pid_file.display());
    let result = std::panic::catch_unwind(|| {
        run_with_timeout(
            Command::new("sh").arg("-c").arg(&script),
            Duration::from_millis(500),
        )
    });
    let message = *result.unwrap_err().downcast::<String>().unwrap();
    assert!(message.contains("was killed"), "{message}");
    let pid = fs::read_to_string(&pid_file).unwrap();
    assert!(
        !Path::new(&format!("/proc/{}", pid.trim())).exists(),
        "the timed-out child {pid} is still there"
    );
}
