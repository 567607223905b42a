//! Bundles with Rekor v2 entries and RFC 3161 timestamps, verified against
//! an operator's trusted root made here (a test log, a test TSA): allowed
//! only when the root, the policy and the bundle agree, and refused, with a
//! reason, when any one part is wrong.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::SystemTime;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use criguard_policy::{Decision, InMemoryTrustFiles, SigstoreSignature};
use criguard_reference::Digest;
use criguard_sigstore::{TrustedRoot, Verifier};
use criguard_testutil::bundles::{
    IN_TOTO, TestKey, bundle_json, certificate_material, cosign_statement, key_material, pae,
};
use criguard_testutil::keyless::{LeafSpec, TEST_EMAIL, TEST_ISSUER, TEST_LOGGED_AT, TestCa};
use criguard_testutil::openssl_tsa::OpensslTsa;
use criguard_testutil::rekor_v2::{
    LOG_ORIGIN, TestLogV2, dsse_body, hashedrekord_body, trusted_root_json,
};
use criguard_testutil::tsa::{TestTsa, TsaSpec, timestamp_data};
use serde_json::{Value, json};

use common::{evaluate_one, rejection};

const IMAGE: &str = "registry.test/app:v1";

fn digest() -> Digest {
    Digest::parse(&format!("sha256:{}", "ab".repeat(32))).unwrap()
}

fn evaluate(requirement: &Value, bytes: Vec<u8>, root: Option<&[u8]>) -> Decision {
    let mut verifier = Verifier::at(SystemTime::now());
    if let Some(root) = root {
        verifier = verifier.with_trusted_root(Arc::new(TrustedRoot::from_json(root).unwrap()));
    }
    evaluate_one(
        requirement,
        IMAGE,
        &digest(),
        SigstoreSignature {
            mime_type: criguard_policy::payload::SIGSTORE_BUNDLE_MIME_TYPE.to_owned(),
            payload: bytes,
            annotations: Default::default(),
        },
        &verifier,
        &InMemoryTrustFiles::new(),
    )
}

/// A bundle with `material`, one tlog entry and timestamp tokens.
fn bundle(
    material: Value,
    entry: Value,
    tokens: &[Vec<u8>],
    statement: &[u8],
    signature: &[u8],
) -> Vec<u8> {
    let bytes = bundle_json(
        material,
        vec![entry],
        IN_TOTO,
        statement,
        &[signature.to_vec()],
    );
    let mut value: Value = serde_json::from_slice(&bytes).unwrap();
    if !tokens.is_empty() {
        value["verificationMaterial"]["timestampVerificationData"] = timestamp_data(tokens);
    }
    value.to_string().into_bytes()
}

/// A key-signed image, logged in a Rekor v2 log and timestamped.
struct KeyCase {
    key: TestKey,
    log: TestLogV2,
    tsa: TestTsa,
    statement: Vec<u8>,
    signature: Vec<u8>,
}

impl KeyCase {
    fn new() -> KeyCase {
        let key = TestKey::p256();
        let statement = cosign_statement(digest().as_str());
        let signature = key.sign(&pae(IN_TOTO, &statement));
        KeyCase {
            key,
            log: TestLogV2::new(),
            tsa: TestTsa::default(),
            statement,
            signature,
        }
    }

    fn requirement(&self, rekor_pem: &str) -> Value {
        json!({
            "type": "sigstoreSigned",
            "keyData": STANDARD.encode(self.key.public_pem()),
            "rekorPublicKeyData": STANDARD.encode(rekor_pem),
            "signedIdentity": {"type": "matchRepository"},
        })
    }

    fn root(&self) -> Vec<u8> {
        trusted_root_json(
            vec![self.log.trusted_root_entry("2025-01-01T00:00:00Z")],
            vec![self.tsa.trusted_root_entry()],
        )
    }

    fn body(&self) -> Vec<u8> {
        dsse_body(
            &self.key.spki_der(),
            false,
            &self.signature,
            &self.statement,
        )
    }

    fn bundle_with(&self, entry: Value, tokens: &[Vec<u8>]) -> Vec<u8> {
        bundle(
            key_material(&self.key.spki_der()),
            entry,
            tokens,
            &self.statement,
            &self.signature,
        )
    }

    /// With the TSA's whole response, as sigstore clients store it.
    fn good_bundle(&self) -> Vec<u8> {
        self.bundle_with(
            self.log.entry("dsse", &self.body()),
            &[self.tsa.response(&self.signature, TEST_LOGGED_AT, 0)],
        )
    }
}

#[test]
fn a_key_bundle_with_a_rekor_v2_entry_verifies_against_the_trusted_root() {
    let case = KeyCase::new();
    let requirement = case.requirement(&case.log.public_pem());
    let decision = evaluate(&requirement, case.good_bundle(), Some(&case.root()));
    assert!(decision.is_allowed(), "{decision}");

    // Logged as hashedrekord over the PAE, as Rekor v2 now asks.
    let body = hashedrekord_body(
        &case.key.spki_der(),
        false,
        &case.signature,
        &pae(IN_TOTO, &case.statement),
    );
    let hashed = case.bundle_with(
        case.log.entry("hashedrekord", &body),
        &[case.tsa.token(&case.signature, TEST_LOGGED_AT)],
    );
    let decision = evaluate(&requirement, hashed, Some(&case.root()));
    assert!(decision.is_allowed(), "{decision}");
}

#[test]
fn a_log_with_an_ecdsa_key_verifies_too() {
    let mut case = KeyCase::new();
    case.log = TestLogV2::with_key(TestKey::p256());
    let requirement = case.requirement(&case.log.public_pem());
    let decision = evaluate(&requirement, case.good_bundle(), Some(&case.root()));
    assert!(decision.is_allowed(), "{decision}");
    // Its key hash is not the Ed25519 one: a checkpoint from another P-256
    // key over the same tree is refused.
    let forger = TestLogV2::with_key(TestKey::p256());
    let mut entry = case.log.entry("dsse", &case.body());
    let root_hash = STANDARD
        .decode(entry["inclusionProof"]["rootHash"].as_str().unwrap())
        .unwrap();
    entry["inclusionProof"]["checkpoint"]["envelope"] =
        json!(forger.checkpoint(LOG_ORIGIN, 6, &root_hash));
    let message = rejection(&evaluate(
        &requirement,
        case.bundle_with(entry, &[case.tsa.token(&case.signature, TEST_LOGGED_AT)]),
        Some(&case.root()),
    ));
    assert!(
        message.contains("no valid signature by the log"),
        "{message}"
    );
}

#[test]
fn without_a_trusted_root_a_rekor_v2_entry_is_refused_with_what_to_do() {
    let case = KeyCase::new();
    let requirement = case.requirement(&case.log.public_pem());
    let message = rejection(&evaluate(&requirement, case.good_bundle(), None));
    assert!(
        message.contains(
            "needs a trusted root: set trusted_root in criguard's config or pass --trusted-root"
        ),
        "{message}"
    );
}

#[test]
fn the_trusted_root_never_widens_the_policy() {
    let case = KeyCase::new();
    // The policy names another Rekor key (ECDSA, as today's policies do);
    // the trusted root's log is not one the policy trusts.
    let other = TestKey::p256();
    let message = rejection(&evaluate(
        &case.requirement(&other.public_pem()),
        case.good_bundle(),
        Some(&case.root()),
    ));
    assert!(
        message.contains(
            "no transparency log of the trusted root has one of the policy's Rekor public keys"
        ),
        "{message}"
    );
    // The policy names the log, but the trusted root does not.
    let stranger = TestLogV2::new();
    let root = trusted_root_json(
        vec![stranger.trusted_root_entry("2025-01-01T00:00:00Z")],
        vec![case.tsa.trusted_root_entry()],
    );
    let message = rejection(&evaluate(
        &case.requirement(&case.log.public_pem()),
        case.good_bundle(),
        Some(&root),
    ));
    assert!(message.contains("no transparency log"), "{message}");
    // The log became valid only after the timestamp.
    let late = trusted_root_json(
        vec![case.log.trusted_root_entry("2031-01-01T00:00:00Z")],
        vec![case.tsa.trusted_root_entry()],
    );
    let message = rejection(&evaluate(
        &case.requirement(&case.log.public_pem()),
        case.good_bundle(),
        Some(&late),
    ));
    assert!(
        message.contains("was not valid at the timestamp's time"),
        "{message}"
    );
}

#[test]
fn a_tampered_inclusion_proof_or_a_foreign_checkpoint_is_refused() {
    let case = KeyCase::new();
    let requirement = case.requirement(&case.log.public_pem());
    let token = case.tsa.token(&case.signature, TEST_LOGGED_AT);
    let good = case.log.entry("dsse", &case.body());

    let mut tampered = good.clone();
    let hash = tampered["inclusionProof"]["hashes"][0].as_str().unwrap();
    let mut bytes = STANDARD.decode(hash).unwrap();
    bytes[0] ^= 1;
    tampered["inclusionProof"]["hashes"][0] = json!(STANDARD.encode(bytes));
    let message = rejection(&evaluate(
        &requirement,
        case.bundle_with(tampered, std::slice::from_ref(&token)),
        Some(&case.root()),
    ));
    assert!(
        message.contains("does not lead to the checkpoint's root hash"),
        "{message}"
    );

    // Another entry's index.
    let mut moved = good.clone();
    moved["inclusionProof"]["logIndex"] = json!("2");
    let message = rejection(&evaluate(
        &requirement,
        case.bundle_with(moved, std::slice::from_ref(&token)),
        Some(&case.root()),
    ));
    assert!(
        message.contains("does not lead to the checkpoint's root hash"),
        "{message}"
    );

    // A checkpoint over the same tree signed by another key.
    let forger = TestLogV2::new();
    let mut forged = good.clone();
    let root_hash = STANDARD
        .decode(good["inclusionProof"]["rootHash"].as_str().unwrap())
        .unwrap();
    forged["inclusionProof"]["checkpoint"]["envelope"] =
        json!(forger.checkpoint(LOG_ORIGIN, 6, &root_hash));
    let message = rejection(&evaluate(
        &requirement,
        case.bundle_with(forged, std::slice::from_ref(&token)),
        Some(&case.root()),
    ));
    assert!(
        message.contains("no valid signature by the log"),
        "{message}"
    );

    // A checkpoint of another size than the proof's.
    let mut resized = good.clone();
    resized["inclusionProof"]["checkpoint"]["envelope"] =
        json!(case.log.checkpoint(LOG_ORIGIN, 7, &root_hash));
    let message = rejection(&evaluate(
        &requirement,
        case.bundle_with(resized, std::slice::from_ref(&token)),
        Some(&case.root()),
    ));
    assert!(
        message.contains("for another tree than its checkpoint"),
        "{message}"
    );
}

#[test]
fn the_entry_body_must_be_bound_to_this_envelope_and_signer() {
    let case = KeyCase::new();
    let requirement = case.requirement(&case.log.public_pem());
    let token = case.tsa.token(&case.signature, TEST_LOGGED_AT);
    let other_statement = cosign_statement(&format!("sha256:{}", "cd".repeat(32)));
    for (body, expected) in [
        (
            dsse_body(
                &case.key.spki_der(),
                false,
                &case.signature,
                &other_statement,
            ),
            "payload in the bundle's Rekor v2 entry does not match",
        ),
        (
            dsse_body(
                &case.key.spki_der(),
                false,
                &case.key.sign(b"x"),
                &case.statement,
            ),
            "signature in the bundle's Rekor v2 entry does not match",
        ),
        (
            dsse_body(
                &TestKey::p256().spki_der(),
                false,
                &case.signature,
                &case.statement,
            ),
            "verifier in the bundle's Rekor v2 entry does not match",
        ),
    ] {
        let message = rejection(&evaluate(
            &requirement,
            case.bundle_with(case.log.entry("dsse", &body), std::slice::from_ref(&token)),
            Some(&case.root()),
        ));
        assert!(message.contains(expected), "{message}");
    }
    // A body of another kind than the bundle says.
    let message = rejection(&evaluate(
        &requirement,
        case.bundle_with(
            case.log.entry("hashedrekord", &case.body()),
            std::slice::from_ref(&token),
        ),
        Some(&case.root()),
    ));
    assert!(message.contains("but the bundle says"), "{message}");
}

#[test]
fn the_timestamp_must_be_over_this_signature_from_a_trusted_authority() {
    let case = KeyCase::new();
    let requirement = case.requirement(&case.log.public_pem());
    let entry = case.log.entry("dsse", &case.body());
    let root = case.root();
    // No timestamp at all.
    let message = rejection(&evaluate(
        &requirement,
        case.bundle_with(entry.clone(), &[]),
        Some(&root),
    ));
    assert!(message.contains("no RFC 3161 timestamp"), "{message}");
    // A timestamp over another signature.
    let message = rejection(&evaluate(
        &requirement,
        case.bundle_with(entry.clone(), &[case.tsa.token(b"another", TEST_LOGGED_AT)]),
        Some(&root),
    ));
    assert!(message.contains("over another signature"), "{message}");
    // From an authority the trusted root does not name.
    let stranger = TestTsa::default();
    let message = rejection(&evaluate(
        &requirement,
        case.bundle_with(
            entry.clone(),
            &[stranger.token(&case.signature, TEST_LOGGED_AT)],
        ),
        Some(&root),
    ));
    assert!(
        message.contains("not from a timestamp authority of the trusted root"),
        "{message}"
    );
    // From an authority whose certificate is not for time-stamping only.
    for spec in [
        TsaSpec {
            critical_eku: false,
            time_stamping: true,
            ..TsaSpec::default()
        },
        TsaSpec {
            critical_eku: true,
            time_stamping: false,
            ..TsaSpec::default()
        },
    ] {
        let tsa = TestTsa::new(spec);
        let root = trusted_root_json(
            vec![case.log.trusted_root_entry("2025-01-01T00:00:00Z")],
            vec![tsa.trusted_root_entry()],
        );
        let message = rejection(&evaluate(
            &requirement,
            case.bundle_with(entry.clone(), &[tsa.token(&case.signature, TEST_LOGGED_AT)]),
            Some(&root),
        ));
        assert!(message.contains("not for time-stamping only"), "{message}");
    }
    // From an authority whose root had expired at genTime (2030), though
    // its leaf had not: the root's own validity counts, as in Go's x509.
    let expired = TestTsa::new(TsaSpec {
        root_not_after: (2025, 1, 1),
        ..TsaSpec::default()
    });
    let expired_root = trusted_root_json(
        vec![case.log.trusted_root_entry("2025-01-01T00:00:00Z")],
        vec![expired.trusted_root_entry()],
    );
    let message = rejection(&evaluate(
        &requirement,
        case.bundle_with(
            entry.clone(),
            &[expired.token(&case.signature, TEST_LOGGED_AT)],
        ),
        Some(&expired_root),
    ));
    assert!(
        message.contains("root is not valid at genTime"),
        "{message}"
    );
    // A response that refuses to grant a timestamp.
    let message = rejection(&evaluate(
        &requirement,
        case.bundle_with(
            entry.clone(),
            &[case.tsa.response(&case.signature, TEST_LOGGED_AT, 2)],
        ),
        Some(&root),
    ));
    assert!(message.contains("does not grant a timestamp"), "{message}");
    // A garbage token is a reason, not a panic.
    let message = rejection(&evaluate(
        &requirement,
        case.bundle_with(entry, &[b"\x30\x03\x02\x01\x01".to_vec()]),
        Some(&root),
    ));
    assert!(message.contains("RFC 3161"), "{message}");
}

/// OpenSSL's TSA (`openssl ts -reply`, P-384 signer, SHA-256 digest) as
/// an oracle: its responses and bare tokens verify, and bind to the
/// signature the same way the harness's own tokens do.
#[test]
fn a_timestamp_made_by_openssl_verifies_and_binds_to_the_signature() {
    let case = KeyCase::new();
    let requirement = case.requirement(&case.log.public_pem());
    let entry = case.log.entry("dsse", &case.body());
    let openssl = OpensslTsa::new();
    let root = trusted_root_json(
        vec![case.log.trusted_root_entry("2025-01-01T00:00:00Z")],
        vec![openssl.trusted_root_entry()],
    );
    for token in [
        openssl.response(&case.signature),
        openssl.token(&case.signature),
    ] {
        let decision = evaluate(
            &requirement,
            case.bundle_with(entry.clone(), &[token]),
            Some(&root),
        );
        assert!(decision.is_allowed(), "{decision}");
    }
    let message = rejection(&evaluate(
        &requirement,
        case.bundle_with(entry.clone(), &[openssl.token(b"another")]),
        Some(&root),
    ));
    assert!(message.contains("over another signature"), "{message}");
    // A root naming only the harness's own authority.
    let message = rejection(&evaluate(
        &requirement,
        case.bundle_with(entry, &[openssl.token(&case.signature)]),
        Some(&case.root()),
    ));
    assert!(
        message.contains("not from a timestamp authority of the trusted root"),
        "{message}"
    );
}

#[test]
fn keyless_with_rekor_v2_takes_the_certificate_time_from_the_timestamp() {
    let ca = TestCa::new("test fulcio");
    let log = TestLogV2::new();
    let tsa = TestTsa::default();
    let leaf = LeafSpec::default().issue(&ca);
    let leaf_der = pem::parse(&leaf.cert_pem).unwrap().into_contents();
    let statement = cosign_statement(digest().as_str());
    let signature = leaf.sign(&pae(IN_TOTO, &statement));
    let entry = log.entry("dsse", &dsse_body(&leaf_der, true, &signature, &statement));
    let requirement = json!({
        "type": "sigstoreSigned",
        "fulcio": {
            "caData": STANDARD.encode(ca.pem()),
            "oidcIssuer": TEST_ISSUER,
            "subjectEmail": TEST_EMAIL,
        },
        "rekorPublicKeyData": STANDARD.encode(log.public_pem()),
        "signedIdentity": {"type": "matchRepository"},
    });
    let root = trusted_root_json(
        vec![log.trusted_root_entry("2025-01-01T00:00:00Z")],
        vec![tsa.trusted_root_entry()],
    );
    let make = |time: i64| {
        bundle(
            certificate_material(&leaf.cert_pem),
            entry.clone(),
            &[tsa.token(&signature, time)],
            &statement,
            &signature,
        )
    };
    let decision = evaluate(&requirement, make(TEST_LOGGED_AT), Some(&root));
    assert!(decision.is_allowed(), "{decision}");
    // Timestamped after the one-day certificate expired.
    let message = rejection(&evaluate(
        &requirement,
        make(TEST_LOGGED_AT + 2 * 86_400),
        Some(&root),
    ));
    assert!(
        message.contains("veryfing leaf certificate failed"),
        "{message}"
    );
    // And without the trusted root, refused with what to do.
    let message = rejection(&evaluate(&requirement, make(TEST_LOGGED_AT), None));
    assert!(message.contains("needs a trusted root"), "{message}");
}
