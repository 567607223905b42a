//! `criguard verify` on GPG simple-signing signatures, with containers/image
//! as the judge: every case is also decided by Debian bookworm's skopeo
//! 1.9.3 (gpgme) with `skopeo copy --policy` on the same policy, keys,
//! registries.d and image, and the two verdicts must agree. Keys are made by
//! real `gpg` in a temporary GNUPGHOME; images are signed by skopeo itself
//! (`copy --sign-by`, `standalone-sign`) or by `criguard sign --gpg-key`,
//! into file lookaside stores and served over http by `python3 -m
//! http.server` on 127.0.0.1.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use criguard_reference::{Digest, Reference};
use criguard_registries::signature_path;
use criguard_testutil::skopeo::{
    lookaside_registries_d, skopeo_command, skopeo_sign_gpg, skopeo_standalone_sign,
};
use criguard_testutil::{
    GpgHome, PeerTools, Registry, StaticHttpServer, cosign_generate_key_pair, cosign_sign,
    insecure_registries_conf, push_test_image, push_test_multiarch, run_ok, run_with_timeout,
    skopeo_copy_with_policy_using,
};
use serde_json::json;

/// A registry, a GNUPGHOME, a file lookaside store and the files around them.
struct Env {
    registry: Registry,
    gpg: GpgHome,
    dir: tempfile::TempDir,
    lookaside: PathBuf,
    registries_d: PathBuf,
    registries_conf: PathBuf,
}

impl Env {
    fn new() -> Env {
        let registry = Registry::start();
        let gpg = GpgHome::new();
        let dir = tempfile::tempdir().unwrap();
        let lookaside = dir.path().join("lookaside");
        std::fs::create_dir_all(&lookaside).unwrap();
        let registries_d = lookaside_registries_d(
            &dir.path().join("registries.d"),
            &registry.host(),
            &format!("file://{}", lookaside.display()),
        );
        let registries_conf =
            insecure_registries_conf(&dir.path().join("registries.conf"), &registry.host());
        std::fs::write(dir.path().join("no-auth.json"), "{}").unwrap();
        Env {
            registry,
            gpg,
            dir,
            lookaside,
            registries_d,
            registries_conf,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// An exported public keyring of `fingerprints`, as a file.
    fn keyring(&self, name: &str, fingerprints: &[&str], armor: bool) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, self.gpg.export_public(fingerprints, armor)).unwrap();
        path
    }

    /// A policy rejecting everything but `requirements` for this registry.
    fn policy(&self, name: &str, requirements: serde_json::Value) -> PathBuf {
        let path = self.path(&format!("{name}.json"));
        let policy = json!({
            "default": [{"type": "reject"}],
            "transports": {"docker": {self.registry.host(): requirements}},
        });
        std::fs::write(&path, policy.to_string()).unwrap();
        path
    }

    fn signed_by(&self, name: &str, keyring: &Path, identity: serde_json::Value) -> PathBuf {
        self.policy(
            name,
            json!([{
                "type": "signedBy",
                "keyType": "GPGKeys",
                "keyPath": keyring,
                "signedIdentity": identity,
            }]),
        )
    }

    /// A test image pushed to `repo:v1`, copied and signed by skopeo
    /// (`--sign-by fingerprint`) to `signed/<repo>:v1`. Returns the signed
    /// reference and its digest.
    fn skopeo_signed(&self, repo: &str, fingerprint: &str) -> (String, String) {
        let source = push_test_image(&self.registry, repo, "v1", repo);
        let dest = format!("{}/signed/{repo}:v1", self.registry.host());
        let digest = skopeo_sign_gpg(
            &self.gpg,
            fingerprint,
            &source.by_tag(),
            &dest,
            &self.lookaside,
        );
        (dest, digest)
    }

    fn verify_with(&self, policy: &Path, registries_d: &Path, image: &str) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_criguard"));
        cmd.arg("verify")
            .arg("--policy")
            .arg(policy)
            .arg("--registries.d")
            .arg(registries_d)
            .arg("--registries-conf")
            .arg(&self.registries_conf)
            .arg("--authfile")
            .arg(self.path("no-auth.json"))
            .arg(image);
        run_with_timeout(&mut cmd, Duration::from_secs(120))
    }

    /// Asserts that criguard and skopeo 1.9.3 both reach `expect_allowed`
    /// for `image`; returns criguard's report.
    fn check(&self, policy: &Path, image: &str, expect_allowed: bool) -> String {
        self.check_with(policy, &self.registries_d, image, expect_allowed)
    }

    fn check_with(
        &self,
        policy: &Path,
        registries_d: &Path,
        image: &str,
        expect_allowed: bool,
    ) -> String {
        let out = self.verify_with(policy, registries_d, image);
        let report = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            matches!(out.status.code(), Some(0 | 1)),
            "{image}: exit {:?}\n{report}",
            out.status
        );
        let dest = tempfile::tempdir().unwrap();
        let oracle = skopeo_copy_with_policy_using(
            &PeerTools::get().skopeo_bookworm(),
            policy,
            registries_d,
            image,
            dest.path(),
        );
        let oracle_allowed = oracle.status.success();
        assert_eq!(
            oracle_allowed,
            expect_allowed,
            "{image}: skopeo 1.9.3 disagrees with the test's expectation: {}",
            String::from_utf8_lossy(&oracle.stderr)
        );
        assert_eq!(
            out.status.code() == Some(0),
            expect_allowed,
            "{image}: criguard disagrees with skopeo 1.9.3 ({})\ncriguard: {report}",
            String::from_utf8_lossy(&oracle.stderr).trim()
        );
        report
    }

    /// Where signature `number` of `image` (`HOST/REPO:TAG`) at `digest`
    /// lives in the file lookaside store (skopeo writes it there).
    fn lookaside_file(&self, image: &str, digest: &str, number: usize) -> PathBuf {
        let reference = Reference::parse_normalized(image).unwrap();
        let digest = Digest::parse(digest).unwrap();
        self.lookaside
            .join(signature_path(reference.path(), &digest, number).unwrap())
    }

    /// Stores `signature` as signature 1 of `image` at `digest`.
    fn put_signature(&self, image: &str, digest: &str, signature: &[u8]) {
        let file = self.lookaside_file(image, digest, 1);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, signature).unwrap();
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn atomic_payload(identity: &str, digest: &str) -> Vec<u8> {
    json!({
        "critical": {
            "identity": {"docker-reference": identity},
            "image": {"docker-manifest-digest": digest},
            "type": "atomic container signature",
        },
        "optional": {"creator": "criguard test", "timestamp": now()},
    })
    .to_string()
    .into_bytes()
}

fn default_identity() -> serde_json::Value {
    json!({"type": "matchRepoDigestOrExact"})
}

#[test]
fn valid_wrong_key_keyring_of_three_and_unsigned() {
    let env = Env::new();
    let signer = env
        .gpg
        .generate_key("signer <signer@example.com>", "rsa3072", "sign", "never");
    let other = env
        .gpg
        .generate_key("other <other@example.com>", "ed25519", "sign", "never");
    let third = env
        .gpg
        .generate_key("third <third@example.com>", "ed25519", "sign", "never");
    let (image, digest) = env.skopeo_signed("gpg/app", &signer);
    assert!(env.lookaside_file(&image, &digest, 1).is_file());

    let right = env.keyring("right.gpg", &[&signer], false);
    let armored = env.keyring("right.asc", &[&signer], true);
    let wrong = env.keyring("wrong.gpg", &[&other], false);
    let three = env.keyring("three.gpg", &[&other, &third, &signer], false);
    let by_digest = format!("{}@{digest}", image.rsplit_once(':').unwrap().0);

    // (policy name, keyring, image, allowed, what criguard's report says)
    let cases = [
        ("right", &right, &image, true, "allowed: "),
        ("armored", &armored, &image, true, "allowed: "),
        ("by-digest", &right, &by_digest, true, "allowed: "),
        ("wrong", &wrong, &image, false, "Invalid GPG signature"),
        ("three", &three, &image, true, "allowed: "),
    ];
    for (name, keyring, image, allowed, says) in cases {
        let report = env.check(
            &env.signed_by(name, keyring, default_identity()),
            image,
            allowed,
        );
        assert!(report.contains(says), "{name}: {report}");
    }

    // keyPaths and keyData name the same keys.
    let key_paths = env.policy(
        "key-paths",
        json!([{"type": "signedBy", "keyType": "GPGKeys", "keyPaths": [&wrong, &right]}]),
    );
    env.check(&key_paths, &image, true);
    let key_data = env.policy(
        "key-data",
        json!([{"type": "signedBy", "keyType": "GPGKeys",
                "keyData": base64_encode(&std::fs::read(&right).unwrap())}]),
    );
    env.check(&key_data, &image, true);

    let unsigned = push_test_image(&env.registry, "gpg/unsigned", "v1", "unsigned");
    let report = env.check(
        &env.signed_by("unsigned", &right, default_identity()),
        &unsigned.by_tag(),
        false,
    );
    assert!(report.contains("no signature exists"), "{report}");
    assert!(report.contains("no GPG signature at file://"), "{report}");
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[test]
fn subkeys_expired_and_revoked_keys() {
    let env = Env::new();
    // A certify-only primary with a signing subkey: gpg signs with the subkey.
    let primary = env
        .gpg
        .generate_key("subkeys <sub@example.com>", "ed25519", "cert", "never");
    let subkey = env.gpg.add_subkey(&primary, "ed25519", "sign", "never");
    let (sub_image, _) = env.skopeo_signed("gpg/subkey", &primary);
    let sub_ring = env.keyring("sub.gpg", &[&primary], false);
    let sub_policy = env.signed_by("subkey", &sub_ring, default_identity());
    // Current containers/image maps a signing subkey to its primary key
    // (upstream's `dir-img-valid-subkey` case is allowed), and so does
    // criguard. The containers/image in both skopeo builds here (5.23 and
    // 5.34) predates that mapping: they compare the subkey's own
    // fingerprint with the imported primaries and reject.
    let out = env.verify_with(&sub_policy, &env.registries_d, &sub_image);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    for skopeo in [
        PeerTools::get().skopeo_bookworm(),
        PeerTools::get().skopeo(),
    ] {
        let dest = tempfile::tempdir().unwrap();
        let old = skopeo_copy_with_policy_using(
            &skopeo,
            &sub_policy,
            &env.registries_d,
            &sub_image,
            dest.path(),
        );
        assert!(
            String::from_utf8_lossy(&old.stderr)
                .contains(&format!("Signature by key {subkey} is not accepted")),
            "{}",
            String::from_utf8_lossy(&old.stderr)
        );
    }

    // The same subkey, revoked after signing.
    env.gpg.revoke_subkey(&primary, &subkey);
    let revoked_sub_ring = env.keyring("sub-revoked.gpg", &[&primary], false);
    let report = env.check(
        &env.signed_by("subkey-revoked", &revoked_sub_ring, default_identity()),
        &sub_image,
        false,
    );
    assert!(report.contains("revoked"), "{report}");

    // A key revoked after it signed.
    let revoked = env
        .gpg
        .generate_key("revoked <rev@example.com>", "ed25519", "sign", "never");
    let (revoked_image, _) = env.skopeo_signed("gpg/revoked", &revoked);
    env.gpg.revoke_key(&revoked);
    let revoked_ring = env.keyring("revoked.gpg", &[&revoked], false);
    let report = env.check(
        &env.signed_by("revoked", &revoked_ring, default_identity()),
        &revoked_image,
        false,
    );
    assert!(report.contains("the key is revoked"), "{report}");

    // A key that signed while valid and has expired since: gpg signs with
    // the clock set back, before the expiry.
    let expired = env.gpg.generate_expired_key("expired <exp@example.com>");
    let image = push_test_image(&env.registry, "gpg/expired", "v1", "expired");
    let payload = atomic_payload(&image.by_tag(), &image.digest);
    let signature = env
        .gpg
        .sign_at(&expired, &payload, GpgHome::expired_key_valid_at(), None);
    env.put_signature(&image.by_tag(), &image.digest, &signature);
    let expired_ring = env.keyring("expired.gpg", &[&expired], false);
    let report = env.check(
        &env.signed_by("expired", &expired_ring, default_identity()),
        &image.by_tag(),
        false,
    );
    assert!(report.contains("expired"), "{report}");
}

#[test]
fn transplanted_corrupt_and_unconfigured_signatures() {
    let env = Env::new();
    let signer = env
        .gpg
        .generate_key("signer <signer@example.com>", "ed25519", "sign", "never");
    let ring = env.keyring("ring.gpg", &[&signer], false);
    let policy = env.signed_by("p", &ring, json!({"type": "matchRepository"}));
    let (signed, signed_digest) = env.skopeo_signed("gpg/one", &signer);
    let (_, other_digest) = env.skopeo_signed("gpg/two", &signer);

    // gpg/two's signature put where gpg/one's belongs.
    let (victim, victim_digest) = {
        let image = push_test_image(&env.registry, "signed/gpg/one", "v2", "another image");
        (image.by_tag(), image.digest)
    };
    let transplanted = std::fs::read(env.lookaside_file(&signed, &signed_digest, 1)).unwrap();
    env.put_signature(&victim, &victim_digest, &transplanted);
    let report = env.check(&policy, &victim, false);
    assert!(
        report.contains(&format!(
            "Signature for digest {signed_digest} does not match"
        )),
        "{report}"
    );
    assert_ne!(signed_digest, other_digest);

    // A flipped byte in the middle of a good signature.
    let two = format!("{}/signed/gpg/two:v1", env.registry.host());
    env.check(&policy, &two, true);
    let file = env.lookaside_file(&two, &other_digest, 1);
    let mut bytes = std::fs::read(&file).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x55;
    std::fs::write(&file, bytes).unwrap();
    env.check(&policy, &two, false);

    // No lookaside configured: the built-in default store has nothing.
    let bare = env.path("bare-registries.d");
    std::fs::create_dir_all(&bare).unwrap();
    let report = env.check_with(&policy, &bare, &signed, false);
    assert!(
        report.contains("file:///var/lib/containers/sigstore/"),
        "{report}"
    );
}

#[test]
fn every_signed_identity_rule() {
    let env = Env::new();
    let signer = env
        .gpg
        .generate_key("ids <ids@example.com>", "ed25519", "sign", "never");
    let ring = env.keyring("ring.gpg", &[&signer], false);
    let host = env.registry.host();
    let (tagged, digest) = env.skopeo_signed("gpg/ids", &signer);
    let repository = tagged.rsplit_once(':').unwrap().0.to_owned();
    let by_digest = format!("{repository}@{digest}");
    let other_tag = format!("{repository}:other");
    // The same manifest under another tag: the signature names :v1.
    let mut copy = skopeo_command(&PeerTools::get().skopeo_bookworm(), env.dir.path());
    let insecure = env.path("insecure.json");
    std::fs::write(
        &insecure,
        r#"{"default":[{"type":"insecureAcceptAnything"}]}"#,
    )
    .unwrap();
    run_ok(
        copy.arg("--policy")
            .arg(&insecure)
            .args([
                "copy",
                "--quiet",
                "--preserve-digests",
                "--src-tls-verify=false",
            ])
            .arg("--dest-tls-verify=false")
            .arg(format!("docker://{tagged}"))
            .arg(format!("docker://{other_tag}")),
    );

    let cases: Vec<(&str, serde_json::Value, &str, bool)> = vec![
        ("exact-tag", json!({"type": "matchExact"}), &tagged, true),
        (
            "exact-digest",
            json!({"type": "matchExact"}),
            &by_digest,
            false,
        ),
        (
            "exact-other-tag",
            json!({"type": "matchExact"}),
            &other_tag,
            false,
        ),
        ("rdoe-tag", default_identity(), &tagged, true),
        ("rdoe-digest", default_identity(), &by_digest, true),
        ("rdoe-other-tag", default_identity(), &other_tag, false),
        (
            "repo-other-tag",
            json!({"type": "matchRepository"}),
            &other_tag,
            true,
        ),
        (
            "exact-reference",
            json!({"type": "exactReference", "dockerReference": tagged}),
            &other_tag,
            true,
        ),
        (
            "exact-reference-wrong",
            json!({"type": "exactReference", "dockerReference": format!("{repository}:nope")}),
            &tagged,
            false,
        ),
        (
            "exact-repository",
            json!({"type": "exactRepository", "dockerRepository": repository}),
            &other_tag,
            true,
        ),
        (
            "exact-repository-wrong",
            json!({"type": "exactRepository", "dockerRepository": format!("{host}/elsewhere")}),
            &tagged,
            false,
        ),
        (
            "remap",
            json!({"type": "remapIdentity", "prefix": format!("{host}/signed"),
                   "signedPrefix": format!("{host}/signed")}),
            &tagged,
            true,
        ),
        (
            "remap-elsewhere",
            json!({"type": "remapIdentity", "prefix": format!("{host}/signed"),
                   "signedPrefix": "mirror.example.com/signed"}),
            &tagged,
            false,
        ),
    ];
    for (name, identity, image, allowed) in cases {
        let policy = env.signed_by(name, &ring, identity);
        env.check(&policy, image, allowed);
    }
}

#[test]
fn multi_arch_signed_per_platform_or_only_on_the_index() {
    let env = Env::new();
    let signer = env
        .gpg
        .generate_key("multi <multi@example.com>", "ed25519", "sign", "never");
    let ring = env.keyring("ring.gpg", &[&signer], false);
    let policy = env.signed_by("p", &ring, json!({"type": "matchRepository"}));

    // Signed by criguard: the index and this machine's platform manifest.
    let secret = env.path("secret.gpg");
    std::fs::write(&secret, env.gpg.export_secret(&signer, false, None)).unwrap();
    let per_platform = push_test_multiarch(&env.registry, "gpg/multi", "v1", "multi");
    let out = run_ok(
        Command::new(env!("CARGO_BIN_EXE_criguard"))
            .args(["sign", "--gpg-key"])
            .arg(&secret)
            .arg("--lookaside-dir")
            .arg(&env.lookaside)
            .arg("--registries-conf")
            .arg(&env.registries_conf)
            .arg("--authfile")
            .arg(env.path("no-auth.json"))
            .arg(per_platform.index.by_tag()),
    );
    let out = String::from_utf8_lossy(&out);
    assert_eq!(out.matches("signed ").count(), 2, "{out}");
    env.check(&policy, &per_platform.index.by_tag(), true);

    // Signed by skopeo standalone-sign on the index only: the platform
    // manifest that is pulled has no signature.
    let index_only = push_test_multiarch(&env.registry, "gpg/index-only", "v1", "index only").index;
    let manifest = env.path("index.json");
    std::fs::write(
        &manifest,
        index_bytes(&env, &index_only.repo, &index_only.tag),
    )
    .unwrap();
    let signature = skopeo_standalone_sign(&env.gpg, &manifest, &index_only.by_tag(), &signer);
    env.put_signature(&index_only.by_tag(), &index_only.digest, &signature);
    let report = env.check(&policy, &index_only.by_tag(), false);
    assert!(report.contains("no signature exists"), "{report}");
}

/// The index `repo:tag` names, as the registry serves it.
fn index_bytes(env: &Env, repo: &str, tag: &str) -> Vec<u8> {
    let response = criguard_testutil::http::request(
        env.registry.addr(),
        "GET",
        &format!("/v2/{repo}/manifests/{tag}"),
        &[("Accept", "application/vnd.oci.image.index.v1+json")],
        b"",
    )
    .unwrap();
    assert_eq!(response.status, 200);
    response.body
}

#[test]
fn criguard_signatures_over_http_are_accepted_by_skopeo() {
    let env = Env::new();
    let passphrase = "gpg passphrase";
    let signer =
        env.gpg
            .generate_key_with_passphrase("http <http@example.com>", "rsa3072", passphrase);
    let ring = env.keyring("ring.asc", &[&signer], true);
    let secret = env.path("secret.asc");
    std::fs::write(
        &secret,
        env.gpg.export_secret(&signer, true, Some(passphrase)),
    )
    .unwrap();
    let password_file = env.path("passphrase");
    std::fs::write(&password_file, format!("{passphrase}\n")).unwrap();
    let image = push_test_image(&env.registry, "gpg/http", "v1", "served over http");
    run_ok(
        Command::new(env!("CARGO_BIN_EXE_criguard"))
            .args(["sign", "--gpg-key"])
            .arg(&secret)
            .arg("--password-file")
            .arg(&password_file)
            .arg("--lookaside-dir")
            .arg(&env.lookaside)
            .arg("--registries-conf")
            .arg(&env.registries_conf)
            .arg("--authfile")
            .arg(env.path("no-auth.json"))
            .arg(image.by_tag()),
    );
    let server = StaticHttpServer::start(&env.lookaside);
    let http_registries_d = lookaside_registries_d(
        &env.path("http-registries.d"),
        &env.registry.host(),
        &server.url(),
    );
    let policy = env.signed_by("p", &ring, default_identity());
    env.check_with(&policy, &http_registries_d, &image.by_tag(), true);
    // The wrong passphrase signs nothing.
    let wrong = env.path("wrong-passphrase");
    std::fs::write(&wrong, "not it").unwrap();
    let out = run_with_timeout(
        Command::new(env!("CARGO_BIN_EXE_criguard"))
            .args(["sign", "--gpg-key"])
            .arg(&secret)
            .arg("--password-file")
            .arg(&wrong)
            .arg("--lookaside-dir")
            .arg(&env.lookaside)
            .arg("--registries-conf")
            .arg(&env.registries_conf)
            .arg(image.by_tag()),
        Duration::from_secs(60),
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("passphrase"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A server that fails is an error, not "unsigned".
    drop(server);
    let out = env.verify_with(&policy, &http_registries_d, &image.by_tag());
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("reading signature from http://"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// Both kinds required: skopeo 1.18 (containers/image 5.34, which has both
/// gpgme and sigstore) is the judge here, since bookworm's has sigstore
/// disabled.
#[test]
fn a_policy_needing_gpg_and_sigstore_signatures() {
    let env = Env::new();
    let signer = env
        .gpg
        .generate_key("both <both@example.com>", "ed25519", "sign", "never");
    let ring = env.keyring("ring.gpg", &[&signer], false);
    let keys = env.path("cosign");
    std::fs::create_dir_all(&keys).unwrap();
    let (cosign_key, cosign_pub) = cosign_generate_key_pair(&keys, "pw");
    let registries_d = env.path("both-registries.d");
    std::fs::create_dir_all(&registries_d).unwrap();
    std::fs::write(
        registries_d.join("both.yaml"),
        format!(
            "docker:\n  \"{}\":\n    lookaside: \"file://{}\"\n    use-sigstore-attachments: true\n",
            env.registry.host(),
            env.lookaside.display()
        ),
    )
    .unwrap();
    let policy = env.policy(
        "both",
        json!([
            {"type": "signedBy", "keyType": "GPGKeys", "keyPath": ring,
             "signedIdentity": {"type": "matchRepository"}},
            {"type": "sigstoreSigned", "keyPath": cosign_pub,
             "signedIdentity": {"type": "matchRepository"}},
        ]),
    );
    let (both, _) = env.skopeo_signed("gpg/both", &signer);
    cosign_sign(&cosign_key, "pw", &both);
    let (gpg_only, _) = env.skopeo_signed("gpg/gpg-only", &signer);
    let cosign_only = push_test_image(&env.registry, "gpg/cosign-only", "v1", "cosign only");
    cosign_sign(&cosign_key, "pw", &cosign_only.by_tag());

    for (image, allowed, why) in [
        (both.as_str(), true, ""),
        (
            gpg_only.as_str(),
            false,
            "requirement 2 of 2 (sigstoreSigned)",
        ),
        (
            &cosign_only.by_tag(),
            false,
            "requirement 1 of 2 (signedBy)",
        ),
    ] {
        let out = env.verify_with(&policy, &registries_d, image);
        let report = String::from_utf8_lossy(&out.stdout).into_owned();
        let dest = tempfile::tempdir().unwrap();
        let oracle = skopeo_copy_with_policy_using(
            &PeerTools::get().skopeo(),
            &policy,
            &registries_d,
            image,
            dest.path(),
        );
        assert_eq!(
            oracle.status.success(),
            allowed,
            "{image}: skopeo 1.18: {}",
            String::from_utf8_lossy(&oracle.stderr)
        );
        assert_eq!(out.status.code() == Some(0), allowed, "{image}: {report}");
        assert!(report.contains(why), "{image}: {report}");
    }
}
