//! `criguard verify` against images signed by the real cosign 3.1
//! (Debian sid's, `$CRIGUARD_COSIGN3`), which attaches sigstore bundles as
//! OCI referrers: through the `sha256-<hex>` fallback tag on Debian's
//! registry 2.8, and through the referrers API on the harness's
//! referrers-capable registry. Signing with a key uses a signing config
//! without Rekor or a TSA (`cosign signing-config create --no-default-…`);
//! keyless signing goes through the harness's test Fulcio, Rekor v1 or
//! Rekor v2 and timestamp authority (`SigstoreServices`) with an unsigned
//! test identity token.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use criguard_testutil::bundles::TestKey;
use criguard_testutil::cosign3::{
    cosign3_import_key, cosign3_keyless_signing_config, cosign3_keyless_signing_config_v2,
    cosign3_sign, cosign3_sign_keyless, cosign3_signing_config, cosign3_verify,
};
use criguard_testutil::image::{Blob, upload_manifest};
use criguard_testutil::keyless::{TestCa, TestRekor};
use criguard_testutil::sigstore_services::{SigstoreServices, test_identity_token};
use criguard_testutil::{
    Pushed, ReferrersRegistry, Registry, cosign_generate_key_pair, cosign_sign,
    insecure_registries_conf, push_test_image, run_with_timeout, skopeo_copy_with_policy,
    test_image,
};
use serde_json::{Value, json};

const PASSWORD: &str = "test-password";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// Files for verifying images of one registry host.
struct Env {
    dir: tempfile::TempDir,
    host: String,
    /// registries.d with `criguard-sigstore-bundles: true` for the host.
    bundles_d: PathBuf,
    /// registries.d without it (attachments only), as CRI-O users have.
    plain_d: PathBuf,
    registries_conf: PathBuf,
    signing_config: PathBuf,
    key: PathBuf,
    public: PathBuf,
}

impl Env {
    fn new(host: &str) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let write_d = |name: &str, extra: &str| {
            let d = dir.path().join(name);
            std::fs::create_dir(&d).unwrap();
            std::fs::write(
                d.join("test.yaml"),
                format!("docker:\n  {host}:\n    use-sigstore-attachments: true\n{extra}"),
            )
            .unwrap();
            d
        };
        let bundles_d = write_d("bundles.d", "    criguard-sigstore-bundles: true\n");
        let plain_d = write_d("plain.d", "");
        let registries_conf = insecure_registries_conf(&dir.path().join("registries.conf"), host);
        let signing_config = cosign3_signing_config(dir.path());
        let keys = dir.path().join("keys");
        std::fs::create_dir(&keys).unwrap();
        let (key, public) = cosign_generate_key_pair(&keys, PASSWORD);
        std::fs::write(dir.path().join("auth.json"), "{}").unwrap();
        Env {
            dir,
            host: host.to_owned(),
            bundles_d,
            plain_d,
            registries_conf,
            signing_config,
            key,
            public,
        }
    }

    fn policy(&self, name: &str, requirement: Value) -> PathBuf {
        let path = self.dir.path().join(format!("{name}.json"));
        let policy = json!({
            "default": [{"type": "reject"}],
            "transports": {"docker": {self.host.clone(): [requirement]}},
        });
        std::fs::write(&path, policy.to_string()).unwrap();
        path
    }

    fn key_policy(&self, public: &Path, identity: Value) -> PathBuf {
        let name = format!(
            "key-{}-{}",
            public.file_stem().unwrap().to_string_lossy(),
            identity["type"].as_str().unwrap()
        );
        self.policy(
            &name,
            json!({"type": "sigstoreSigned", "keyPath": public, "signedIdentity": identity}),
        )
    }

    fn repository_policy(&self, public: &Path) -> PathBuf {
        self.key_policy(public, json!({"type": "matchRepository"}))
    }

    fn verify_with(&self, policy: &Path, registries_d: &Path, image: &str) -> Output {
        self.verify_trusting(policy, registries_d, None, image)
    }

    /// `criguard verify`, with `--trusted-root` when given.
    fn verify_trusting(
        &self,
        policy: &Path,
        registries_d: &Path,
        trusted_root: Option<&Path>,
        image: &str,
    ) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_criguard"));
        cmd.arg("verify");
        if let Some(root) = trusted_root {
            cmd.arg("--trusted-root").arg(root);
        }
        cmd.arg("--policy")
            .arg(policy)
            .arg("--registries.d")
            .arg(registries_d)
            .arg("--registries-conf")
            .arg(&self.registries_conf)
            .arg("--authfile")
            .arg(self.dir.path().join("auth.json"))
            .arg(image);
        run_with_timeout(&mut cmd, Duration::from_secs(120))
    }

    /// criguard's verdict with bundles turned on; the text output.
    fn verify(&self, policy: &Path, image: &str, allowed: bool) -> String {
        self.expect(
            self.verify_with(policy, &self.bundles_d, image),
            image,
            allowed,
        )
    }

    fn expect(&self, out: Output, image: &str, allowed: bool) -> String {
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let expected = if allowed { 0 } else { 1 };
        assert_eq!(out.status.code(), Some(expected), "{image}:\n{text}");
        text
    }

    fn sign(&self, image: &str) {
        cosign3_sign(&self.key, PASSWORD, &self.signing_config, image);
    }
}

/// The one referrer a fallback tag lists: (its manifest, the index).
fn fallback_referrer(registry: &Registry, repo: &str, digest: &str) -> (Value, Value) {
    let tag = digest.replace(':', "-");
    let index = registry.get_manifest(repo, &tag);
    assert_eq!(index.status, 200, "no fallback tag {tag}");
    let index: Value = serde_json::from_slice(&index.body).unwrap();
    let entries = index["manifests"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{index}");
    let referrer = registry.get_manifest(repo, entries[0]["digest"].as_str().unwrap());
    (serde_json::from_slice(&referrer.body).unwrap(), index)
}

fn put_json(
    registry: &Registry,
    repo: &str,
    reference: &str,
    media_type: &str,
    value: &Value,
) -> Blob {
    let blob = Blob::new(media_type, value.to_string().into_bytes());
    upload_manifest(registry, repo, reference, &blob);
    blob
}

#[test]
fn cosign3_key_signatures_through_the_fallback_tag() {
    let registry = Registry::start();
    let env = Env::new(&registry.host());
    let signed = push_test_image(&registry, "test/app", "v1", "signed by cosign 3");
    env.sign(&signed.by_digest());
    // cosign 3 wrote the fallback tag, no `.sig`.
    let tags = String::from_utf8(registry.get("/v2/test/app/tags/list").body).unwrap();
    let hex = signed.digest.strip_prefix("sha256:").unwrap();
    assert!(tags.contains(&format!("\"sha256-{hex}\"")), "{tags}");
    assert!(!tags.contains(".sig"), "{tags}");

    let policy = env.repository_policy(&env.public);
    env.verify(&policy, &signed.by_digest(), true);
    env.verify(&policy, &signed.by_tag(), true);
    assert!(
        cosign3_verify(&env.public, &signed.by_digest())
            .status
            .success()
    );

    // Unsigned.
    let unsigned = push_test_image(&registry, "test/app", "unsigned", "nobody signed this");
    let text = env.verify(&policy, &unsigned.by_tag(), false);
    assert!(
        text.contains("A signature was required, but no signature exists"),
        "{text}"
    );

    // Another key.
    let other = env.dir.path().join("other");
    std::fs::create_dir(&other).unwrap();
    let (_, other_public) = cosign_generate_key_pair(&other, PASSWORD);
    let text = env.verify(
        &env.repository_policy(&other_public),
        &signed.by_tag(),
        false,
    );
    assert!(
        text.contains("cryptographic signature verification of the bundle failed"),
        "{text}"
    );
    assert!(
        text.contains("(sigstore bundle): bundle (digest-bound): "),
        "{text}"
    );
}

/// Without `criguard-sigstore-bundles` nothing changes: bundles are not
/// looked for, and the verdict is containers/image's (skopeo 1.18's).
#[test]
fn without_the_opt_in_bundles_are_not_read() {
    let registry = Registry::start();
    let env = Env::new(&registry.host());
    let signed = push_test_image(&registry, "test/app", "v1", "bundle only");
    env.sign(&signed.by_digest());
    let policy = env.repository_policy(&env.public);
    let text = env.expect(
        env.verify_with(&policy, &env.plain_d, &signed.by_tag()),
        &signed.by_tag(),
        false,
    );
    assert!(text.contains("no signature exists"), "{text}");
    let dest = tempfile::tempdir().unwrap();
    let skopeo = skopeo_copy_with_policy(&policy, &env.plain_d, &signed.by_tag(), dest.path());
    assert!(
        !skopeo.status.success(),
        "skopeo accepted a bundle-only image"
    );
    // containers/image ignores criguard's key: same verdict with it.
    let dest = tempfile::tempdir().unwrap();
    let skopeo = skopeo_copy_with_policy(&policy, &env.bundles_d, &signed.by_tag(), dest.path());
    assert!(!skopeo.status.success());
    assert!(
        String::from_utf8_lossy(&skopeo.stderr).contains("no signature exists"),
        "{}",
        String::from_utf8_lossy(&skopeo.stderr)
    );
}

/// A bundle moved to another image: listed by the other digest's fallback
/// tag (the referrer still names its own subject), or re-wrapped in a
/// referrer whose subject is the other image.
#[test]
fn a_bundle_moved_to_another_digest_is_refused() {
    let registry = Registry::start();
    let env = Env::new(&registry.host());
    let signed = push_test_image(&registry, "test/app", "v1", "the signed one");
    let victim = push_test_image(&registry, "test/app", "v2", "another image");
    env.sign(&signed.by_digest());
    let policy = env.repository_policy(&env.public);
    let (referrer, index) = fallback_referrer(&registry, "test/app", &signed.digest);

    // The same index under the other digest's fallback tag.
    let victim_tag = victim.digest.replace(':', "-");
    put_json(&registry, "test/app", &victim_tag, OCI_INDEX, &index);
    let text = env.verify(&policy, &victim.by_tag(), false);
    assert!(text.contains("no signature exists"), "{text}");

    // A referrer of the other image holding the signed image's bundle.
    let mut moved = referrer.clone();
    moved["subject"]["digest"] = json!(victim.digest);
    let moved_blob = put_json(&registry, "test/app", "moved", OCI_MANIFEST, &moved);
    let moved_index = json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": moved_blob.digest, "size": moved_blob.data.len()}],
    });
    put_json(&registry, "test/app", &victim_tag, OCI_INDEX, &moved_index);
    let text = env.verify(&policy, &victim.by_tag(), false);
    assert!(
        text.contains(&format!(
            "Signature for digest {} does not match",
            signed.digest
        )),
        "{text}"
    );
    // The signed image itself is still fine.
    env.verify(&policy, &signed.by_tag(), true);
}

/// A `.sig` from cosign 2.5 and a bundle from cosign 3 on one image: either
/// satisfies a requirement for its own key; neither, a requirement for a
/// third key, and the reasons name both.
#[test]
fn legacy_signatures_and_bundles_side_by_side() {
    let registry = Registry::start();
    let env = Env::new(&registry.host());
    let image = push_test_image(&registry, "test/app", "v1", "signed twice");
    env.sign(&image.by_digest());
    let legacy_dir = env.dir.path().join("legacy");
    std::fs::create_dir(&legacy_dir).unwrap();
    let (legacy_key, legacy_public) = cosign_generate_key_pair(&legacy_dir, PASSWORD);
    cosign_sign(&legacy_key, PASSWORD, &image.by_digest());

    env.verify(&env.repository_policy(&env.public), &image.by_tag(), true);
    env.verify(
        &env.repository_policy(&legacy_public),
        &image.by_tag(),
        true,
    );
    let third = env.dir.path().join("third");
    std::fs::create_dir(&third).unwrap();
    let (_, third_public) = cosign_generate_key_pair(&third, PASSWORD);
    let text = env.verify(
        &env.repository_policy(&third_public),
        &image.by_tag(),
        false,
    );
    assert!(
        text.contains("None of the signatures were accepted"),
        "{text}"
    );
    assert!(
        text.contains("(sigstore)") && text.contains("(sigstore bundle)"),
        "{text}"
    );
    // With bundles off, the legacy signature alone decides, as for CRI-O.
    env.expect(
        env.verify_with(
            &env.repository_policy(&legacy_public),
            &env.plain_d,
            &image.by_tag(),
        ),
        "legacy only",
        true,
    );
    env.expect(
        env.verify_with(
            &env.repository_policy(&env.public),
            &env.plain_d,
            &image.by_tag(),
        ),
        "bundle ignored",
        false,
    );
}

/// Keys of other types, imported into cosign. cosign 3.1 signs Ed25519
/// bundles that its own `verify` refuses ("accepted signatures do not
/// match threshold"); criguard refuses them too, so the two agree.
#[test]
fn rsa_and_ed25519_keys() {
    let registry = Registry::start();
    let env = Env::new(&registry.host());
    for (name, key, cosign_accepts) in [
        ("rsa", TestKey::rsa(), true),
        ("ed25519", TestKey::ed25519(), false),
    ] {
        let dir = env.dir.path().join(name);
        std::fs::create_dir(&dir).unwrap();
        let (private, public) = cosign3_import_key(&dir, &key.private_pkcs8_pem(), PASSWORD);
        let image = push_test_image(&registry, &format!("test/{name}"), "v1", name);
        cosign3_sign(&private, PASSWORD, &env.signing_config, &image.by_digest());
        let cosign = cosign3_verify(&public, &image.by_digest());
        assert_eq!(
            cosign.status.success(),
            cosign_accepts,
            "{name}: {}",
            String::from_utf8_lossy(&cosign.stderr)
        );
        env.verify(
            &env.repository_policy(&public),
            &image.by_tag(),
            cosign_accepts,
        );
    }
}

/// A bundle names no image: it is read as a signature of the pulled
/// repository, and each identity rule judges it as it judges cosign's
/// repository-only payloads.
#[test]
fn identity_rules() {
    let registry = Registry::start();
    let env = Env::new(&registry.host());
    let image = push_test_image(&registry, "test/app", "v1", "identity");
    env.sign(&image.by_digest());
    let host = registry.host();
    for (identity, allowed) in [
        (json!({"type": "matchRepository"}), true),
        (
            json!({"type": "exactRepository", "dockerRepository": format!("{host}/test/app")}),
            true,
        ),
        (
            json!({"type": "exactRepository", "dockerRepository": format!("{host}/test/other")}),
            false,
        ),
        (json!({"type": "matchRepoDigestOrExact"}), false),
        (json!({"type": "matchExact"}), false),
        (
            json!({"type": "remapIdentity", "prefix": host, "signedPrefix": "mirror.example"}),
            false,
        ),
    ] {
        let policy = env.key_policy(&env.public, identity.clone());
        for reference in [image.by_tag(), image.by_digest()] {
            let text = env.verify(&policy, &reference, allowed);
            if !allowed {
                assert!(
                    text.contains(&format!(
                        "Signature for identity \"{host}/test/app\" is not accepted"
                    )),
                    "{identity} {reference}: {text}"
                );
            }
        }
    }
}

/// The referrers API: cosign 3 pushes the referrer without a fallback tag
/// (the registry answers `OCI-Subject`), criguard finds it through
/// `GET /v2/<name>/referrers/<digest>`.
#[test]
fn cosign3_key_signatures_through_the_referrers_api() {
    let registry = ReferrersRegistry::start();
    let env = Env::new(&registry.host());
    let image = test_image("referrers API");
    let reference = registry.push_image("test/app", "v1", &image);
    let unsigned = registry.push_image("test/app", "v2", &test_image("unsigned"));
    env.sign(&reference);
    assert_eq!(
        registry.tags("test/app"),
        vec!["v1", "v2"],
        "a fallback tag was written"
    );
    assert!(cosign3_verify(&env.public, &reference).status.success());

    let policy = env.repository_policy(&env.public);
    let before = registry.referrers_requests();
    env.verify(&policy, &format!("{}/test/app:v1", registry.host()), true);
    assert!(
        registry.referrers_requests() > before,
        "the referrers API was not asked"
    );
    let text = env.verify(&policy, &unsigned, false);
    assert!(text.contains("no signature exists"), "{text}");
    let other = env.dir.path().join("other");
    std::fs::create_dir(&other).unwrap();
    let (_, other_public) = cosign_generate_key_pair(&other, PASSWORD);
    env.verify(&env.repository_policy(&other_public), &reference, false);
}

fn criguard_sign_bundle(env: &Env, image: &str) -> String {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_criguard"));
    cmd.env("COSIGN_PASSWORD", PASSWORD)
        .arg("sign")
        .arg("--bundle")
        .arg("--key")
        .arg(&env.key)
        .arg("--registries-conf")
        .arg(&env.registries_conf)
        .arg("--authfile")
        .arg(env.dir.path().join("auth.json"))
        .arg(image);
    let out = run_with_timeout(&mut cmd, Duration::from_secs(120));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "criguard sign --bundle {image}:\n{text}"
    );
    text
}

/// `criguard sign --bundle` writes what cosign 3 writes: cosign 3.1's
/// `verify` accepts it, through the fallback tag and the referrers API, and
/// so does criguard.
#[test]
fn cosign3_verifies_what_criguard_sign_bundle_writes() {
    let registry = Registry::start();
    let env = Env::new(&registry.host());
    let image = push_test_image(&registry, "test/app", "v1", "signed by criguard");
    let text = criguard_sign_bundle(&env, &image.by_tag());
    assert!(text.contains("sigstore bundle"), "{text}");
    let tags = String::from_utf8(registry.get("/v2/test/app/tags/list").body).unwrap();
    assert!(
        tags.contains(&format!("\"{}\"", image.digest.replace(':', "-"))),
        "{tags}"
    );
    let cosign = cosign3_verify(&env.public, &image.by_digest());
    assert!(
        cosign.status.success(),
        "{}",
        String::from_utf8_lossy(&cosign.stderr)
    );
    let policy = env.repository_policy(&env.public);
    env.verify(&policy, &image.by_tag(), true);
    // Signing again (a new ECDSA signature, so a new bundle) adds a second
    // entry to the fallback index and keeps the first, as cosign does.
    let tag = image.digest.replace(':', "-");
    let first: Value =
        serde_json::from_slice(&registry.get_manifest("test/app", &tag).body).unwrap();
    criguard_sign_bundle(&env, &image.by_tag());
    let both: Value =
        serde_json::from_slice(&registry.get_manifest("test/app", &tag).body).unwrap();
    assert_eq!(both["manifests"].as_array().unwrap().len(), 2, "{both}");
    assert_eq!(both["manifests"][0], first["manifests"][0]);
    env.verify(&policy, &image.by_tag(), true);

    let referrers = ReferrersRegistry::start();
    let env = Env::new(&referrers.host());
    let reference = referrers.push_image("test/app", "v1", &test_image("referrers"));
    criguard_sign_bundle(&env, &reference);
    assert_eq!(
        referrers.tags("test/app"),
        vec!["v1"],
        "a fallback tag was written"
    );
    let cosign = cosign3_verify(&env.public, &reference);
    assert!(
        cosign.status.success(),
        "{}",
        String::from_utf8_lossy(&cosign.stderr)
    );
    env.verify(&env.repository_policy(&env.public), &reference, true);
}

const KEYLESS_ISSUER: &str = "https://oidc.test";
const KEYLESS_EMAIL: &str = "signer@example.test";

/// A `sigstoreSigned` requirement for keyless signatures: Fulcio's CA,
/// the OIDC issuer and email, and the Rekor key, given inline.
fn keyless_requirement(ca_pem: &str, issuer: &str, email: &str, rekor_pem: &str) -> Value {
    json!({
        "type": "sigstoreSigned",
        "fulcio": {
            "caData": STANDARD.encode(ca_pem),
            "oidcIssuer": issuer,
            "subjectEmail": email,
        },
        "rekorPublicKeyData": STANDARD.encode(rekor_pem),
        "signedIdentity": {"type": "matchRepository"},
    })
}

/// Signs `image` keyless with the real cosign 3 through `services` (a
/// test identity token), trusting them, so that sigstore-go verifies its
/// own bundle before pushing it. Returns that trusted root's path and the
/// bundle cosign pushed (through the fallback tag); panics, with what the
/// services refused, unless cosign succeeded and the services refused
/// nothing.
fn sign_keyless(
    env: &Env,
    registry: &Registry,
    services: &SigstoreServices,
    signing_config: &Path,
    image: &Pushed,
) -> (PathBuf, Value) {
    let trusted_root = env.dir.path().join("trusted_root.json");
    std::fs::write(&trusted_root, services.trusted_root_json()).unwrap();
    let token = test_identity_token(KEYLESS_ISSUER, KEYLESS_EMAIL);
    let out = cosign3_sign_keyless(
        &token,
        signing_config,
        Some(&trusted_root),
        &image.by_digest(),
    );
    assert!(
        out.status.success(),
        "cosign sign keyless: {}\nrefused by the services: {:?}",
        String::from_utf8_lossy(&out.stderr),
        services.refusals()
    );
    assert_eq!(services.refusals(), Vec::<String>::new());
    let (referrer, _) = fallback_referrer(registry, "test/app", &image.digest);
    let layer = referrer["layers"][0]["digest"].as_str().unwrap();
    let blob = registry.get(&format!("/v2/test/app/blobs/{layer}"));
    (trusted_root, serde_json::from_slice(&blob.body).unwrap())
}

/// Keyless with the real cosign 3: `cosign sign --identity-token` through
/// the harness's Fulcio and Rekor v1 (a signing config naming them), with
/// a trusted root naming them too, so that sigstore-go verifies its own
/// bundle before pushing it. criguard accepts the bundle only with the
/// policy's CA, issuer, email and Rekor key, and only with
/// `criguard-sigstore-bundles`.
#[test]
fn cosign3_keyless_signatures_through_test_fulcio_and_rekor() {
    let registry = Registry::start();
    let env = Env::new(&registry.host());
    let services = SigstoreServices::start();
    let signing_config =
        cosign3_keyless_signing_config(env.dir.path(), &services.url(), &services.url());
    let image = push_test_image(&registry, "test/app", "v1", "signed keyless");
    let (_, bundle) = sign_keyless(&env, &registry, &services, &signing_config, &image);
    let token = test_identity_token(KEYLESS_ISSUER, KEYLESS_EMAIL);
    assert_eq!(
        (services.fulcio_requests(), services.rekor_requests()),
        (1, 1)
    );

    // What cosign pushed: a certificate and a Rekor v1 dsse entry.
    let material = &bundle["verificationMaterial"];
    assert!(material["certificate"]["rawBytes"].is_string(), "{bundle}");
    assert_eq!(
        material["tlogEntries"][0]["kindVersion"]["kind"], "dsse",
        "{bundle}"
    );

    let ca = services.ca_pem();
    let rekor = services.rekor_public_pem();
    let policy = |name: &str, ca: &str, issuer: &str, email: &str, rekor: &str| {
        env.policy(name, keyless_requirement(ca, issuer, email, rekor))
    };
    let right = policy("keyless", &ca, KEYLESS_ISSUER, KEYLESS_EMAIL, &rekor);
    env.verify(&right, &image.by_tag(), true);
    env.verify(&right, &image.by_digest(), true);

    let other_ca = TestCa::new("another CA").pem();
    let other_rekor = TestRekor::new().public_pem().to_owned();
    for (name, policy, reason) in [
        (
            "wrong email",
            policy("email", &ca, KEYLESS_ISSUER, "other@example.test", &rekor),
            r#"Required email "other@example.test" not found (got ["signer@example.test"])"#,
        ),
        (
            "wrong issuer",
            policy("issuer", &ca, "https://other.test", KEYLESS_EMAIL, &rekor),
            r#"Unexpected Fulcio OIDC issuer "https://oidc.test""#,
        ),
        (
            "another CA",
            policy("ca", &other_ca, KEYLESS_ISSUER, KEYLESS_EMAIL, &rekor),
            "certificate signed by unknown authority",
        ),
        (
            "another Rekor key",
            policy("rekor", &ca, KEYLESS_ISSUER, KEYLESS_EMAIL, &other_rekor),
            "signature verification of the bundle's Rekor SET failed",
        ),
    ] {
        let text = env.verify(&policy, &image.by_tag(), false);
        assert!(text.contains(reason), "{name}: {text}");
        assert!(text.contains("(sigstore bundle)"), "{name}: {text}");
    }

    // Without the opt-in the bundle is not read, as for CRI-O.
    let text = env.expect(
        env.verify_with(&right, &env.plain_d, &image.by_tag()),
        "keyless without bundles",
        false,
    );
    assert!(text.contains("no signature exists"), "{text}");

    // Unsigned.
    let unsigned = push_test_image(&registry, "test/app", "unsigned", "not signed keyless");
    let text = env.verify(&right, &unsigned.by_tag(), false);
    assert!(text.contains("no signature exists"), "{text}");

    // A bundle names no image: matchExact refuses it.
    let mut exact = keyless_requirement(&ca, KEYLESS_ISSUER, KEYLESS_EMAIL, &rekor);
    exact["signedIdentity"] = json!({"type": "matchExact"});
    let text = env.verify(&env.policy("exact", exact), &image.by_tag(), false);
    assert!(text.contains("is not accepted"), "{text}");

    // Another signature: one more certificate and one more log entry.
    let second = push_test_image(&registry, "test/app", "v2", "signed keyless again");
    let out = cosign3_sign_keyless(&token, &signing_config, None, &second.by_digest());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        (services.fulcio_requests(), services.rekor_requests()),
        (2, 2)
    );
    env.verify(&right, &second.by_tag(), true);
    assert_eq!(services.other_requests(), 0);

    // The trusted root given to cosign is really used: with another CA
    // and log in it, sigstore-go refuses its own bundle and pushes nothing.
    let strangers = SigstoreServices::start();
    let wrong_root = env.dir.path().join("wrong_trusted_root.json");
    std::fs::write(&wrong_root, strangers.trusted_root_json()).unwrap();
    let third = push_test_image(&registry, "test/app", "v3", "refused by cosign");
    let out = cosign3_sign_keyless(
        &token,
        &signing_config,
        Some(&wrong_root),
        &third.by_digest(),
    );
    assert!(
        !out.status.success(),
        "cosign pushed a bundle it cannot verify"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("failed to verify log inclusion"),
        "{stderr}"
    );
    let text = env.verify(&right, &third.by_tag(), false);
    assert!(text.contains("no signature exists"), "{text}");
}

/// Keyless with Rekor v2: cosign 3 needs a timestamp authority too
/// (`--tsa`), logs a v0.0.2 entry with no SET, and criguard accepts it only
/// with a trusted root naming the log and the authority, and only when the
/// policy's Rekor key is that log's.
#[test]
fn cosign3_keyless_signatures_with_rekor_v2_and_a_timestamp() {
    let registry = Registry::start();
    let env = Env::new(&registry.host());
    let services = SigstoreServices::start();
    let signing_config = cosign3_keyless_signing_config_v2(
        env.dir.path(),
        &services.url(),
        &services.url(),
        &services.tsa_url(),
    );
    let image = push_test_image(&registry, "test/app", "v1", "signed keyless, Rekor v2");
    let (trusted_root, bundle) = sign_keyless(&env, &registry, &services, &signing_config, &image);
    assert_eq!(
        (
            services.fulcio_requests(),
            services.tsa_requests(),
            services.rekor_v2_requests(),
            services.rekor_requests(),
        ),
        (1, 1, 1, 0)
    );
    let material = &bundle["verificationMaterial"];
    assert_eq!(
        material["tlogEntries"][0]["kindVersion"]["version"], "0.0.2",
        "{bundle}"
    );
    assert!(
        material["timestampVerificationData"]["rfc3161Timestamps"][0]["signedTimestamp"]
            .is_string(),
        "{bundle}"
    );

    let ca = services.ca_pem();
    let v2_key = services.rekor_v2_public_pem();
    let policy = env.policy(
        "keyless-v2",
        keyless_requirement(&ca, KEYLESS_ISSUER, KEYLESS_EMAIL, &v2_key),
    );
    let verify = |policy: &Path, root: Option<&Path>, allowed: bool| {
        env.expect(
            env.verify_trusting(policy, &env.bundles_d, root, &image.by_tag()),
            &image.by_tag(),
            allowed,
        )
    };
    verify(&policy, Some(&trusted_root), true);
    let text = verify(&policy, None, false);
    assert!(text.contains("needs a trusted root"), "{text}");
    // The v1 log's key is in the trusted root, but it did not log this.
    let v1_policy = env.policy(
        "keyless-v1-key",
        keyless_requirement(
            &ca,
            KEYLESS_ISSUER,
            KEYLESS_EMAIL,
            &services.rekor_public_pem(),
        ),
    );
    let text = verify(&v1_policy, Some(&trusted_root), false);
    assert!(text.contains("Rekor v2 entry is not proven"), "{text}");
    let email = env.policy(
        "keyless-v2-email",
        keyless_requirement(&ca, KEYLESS_ISSUER, "other@example.test", &v2_key),
    );
    let text = verify(&email, Some(&trusted_root), false);
    assert!(text.contains("Required email"), "{text}");
}
