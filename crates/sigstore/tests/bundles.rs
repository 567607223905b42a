//! Sigstore bundles (cosign 3) under `sigstoreSigned`, with keys,
//! certificates and a Rekor log made here: every check a bundle must pass
//! is broken on its own, and each must refuse it.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, SystemTime};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use criguard_policy::{Decision, InMemoryTrustFiles, SigstoreSignature};
use criguard_reference::Digest;
use criguard_sigstore::Verifier;
use criguard_testutil::bundles::{
    IN_TOTO, TestKey, TestLog, bundle_json, certificate_material, chain_material, cosign_statement,
    key_bundle, key_material, pae,
};
use criguard_testutil::keyless::{LeafSpec, TEST_EMAIL, TEST_ISSUER, TEST_LOGGED_AT, TestCa};
use serde_json::{Value, json};

use common::{evaluate_one, rejection};

const IMAGE: &str = "registry.test/app:v1";

fn digest() -> Digest {
    Digest::parse(&format!("sha256:{}", "ab".repeat(32))).unwrap()
}

fn other_digest() -> String {
    format!("sha256:{}", "cd".repeat(32))
}

fn bundle(bytes: Vec<u8>) -> SigstoreSignature {
    SigstoreSignature {
        mime_type: criguard_policy::payload::SIGSTORE_BUNDLE_MIME_TYPE.to_owned(),
        payload: bytes,
        annotations: Default::default(),
    }
}

fn evaluate(requirement: Value, bytes: Vec<u8>) -> Decision {
    evaluate_at(requirement, bytes, SystemTime::now())
}

fn evaluate_at(requirement: Value, bytes: Vec<u8>, now: SystemTime) -> Decision {
    evaluate_one(
        &requirement,
        IMAGE,
        &digest(),
        bundle(bytes),
        &Verifier::at(now),
        &InMemoryTrustFiles::new(),
    )
}

fn key_requirement(key: &TestKey) -> Value {
    json!({
        "type": "sigstoreSigned",
        "keyData": STANDARD.encode(key.public_pem()),
        "signedIdentity": {"type": "matchRepository"},
    })
}

#[test]
fn key_bundles_of_every_key_type_verify() {
    for key in [TestKey::p256(), TestKey::ed25519(), TestKey::rsa()] {
        let decision = evaluate(key_requirement(&key), key_bundle(&key, digest().as_str()));
        assert!(decision.is_allowed(), "{decision}");
    }
}

#[test]
fn a_bundle_by_another_key_is_refused() {
    let signer = TestKey::p256();
    let trusted = TestKey::p256();
    let message = rejection(&evaluate(
        key_requirement(&trusted),
        key_bundle(&signer, digest().as_str()),
    ));
    assert!(
        message.starts_with(
            "bundle (digest-bound): cryptographic signature verification of the bundle failed"
        ),
        "{message}"
    );
}

#[test]
fn a_bundle_for_another_digest_is_refused() {
    let key = TestKey::ed25519();
    let message = rejection(&evaluate(
        key_requirement(&key),
        key_bundle(&key, &other_digest()),
    ));
    assert_eq!(
        message,
        format!(
            "bundle (digest-bound): Signature for digest {} does not match",
            other_digest()
        )
    );
}

/// The envelope is what is signed: changing the payload, its type, or the
/// encoding the signature covers, breaks it.
#[test]
fn the_signature_covers_the_pae_not_the_payload() {
    let key = TestKey::p256();
    let statement = cosign_statement(digest().as_str());
    let requirement = key_requirement(&key);
    let material = key_material(&key.spki_der());

    // Signed over the bare payload, as a legacy cosign signature would be.
    let bare = bundle_json(
        material.clone(),
        vec![],
        IN_TOTO,
        &statement,
        &[key.sign(&statement)],
    );
    assert!(rejection(&evaluate(requirement.clone(), bare)).contains("signature verification"));
    // A valid signature for another payload type.
    let other_type = "application/json";
    let retyped = bundle_json(
        material.clone(),
        vec![],
        other_type,
        &statement,
        &[key.sign(&pae(other_type, &statement))],
    );
    assert!(rejection(&evaluate(requirement.clone(), retyped)).contains("payload type"));
    // A payload swapped after signing.
    let signature = key.sign(&pae(IN_TOTO, &statement));
    let swapped = bundle_json(
        material.clone(),
        vec![],
        IN_TOTO,
        &cosign_statement(&other_digest()),
        std::slice::from_ref(&signature),
    );
    assert!(rejection(&evaluate(requirement.clone(), swapped)).contains("signature verification"));
    // Exactly one signature.
    let twice = bundle_json(
        material.clone(),
        vec![],
        IN_TOTO,
        &statement,
        &[signature.clone(), signature],
    );
    assert!(rejection(&evaluate(requirement.clone(), twice)).contains("exactly one is required"));
    let none = bundle_json(material, vec![], IN_TOTO, &statement, &[]);
    assert!(rejection(&evaluate(requirement, none)).contains("no signature"));
}

#[test]
fn attestations_are_not_signatures() {
    let key = TestKey::p256();
    let statement = json!({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"digest": {"sha256": "ab".repeat(32)}}],
        "predicateType": "https://slsa.dev/provenance/v1",
        "predicate": {},
    })
    .to_string()
    .into_bytes();
    let signed = bundle_json(
        key_material(&key.spki_der()),
        vec![],
        IN_TOTO,
        &statement,
        &[key.sign(&pae(IN_TOTO, &statement))],
    );
    let message = rejection(&evaluate(key_requirement(&key), signed));
    assert!(message.contains("attestation"), "{message}");
}

#[test]
fn garbage_is_an_invalid_signature_not_a_panic() {
    let key = TestKey::p256();
    for bytes in [
        b"".to_vec(),
        b"{".to_vec(),
        b"[]".to_vec(),
        br#"{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json"}"#.to_vec(),
    ] {
        let decision = evaluate(key_requirement(&key), bytes);
        assert!(!decision.is_allowed());
    }
}

/// Keys with Rekor keys: the bundle's log entry must verify and be bound
/// to this envelope and this key.
#[test]
fn keys_with_rekor_need_a_bound_log_entry() {
    let key = TestKey::p256();
    let log = TestLog::new();
    let statement = cosign_statement(digest().as_str());
    let signature = key.sign(&pae(IN_TOTO, &statement));
    let requirement = json!({
        "type": "sigstoreSigned",
        "keyData": STANDARD.encode(key.public_pem()),
        "rekorPublicKeyData": STANDARD.encode(log.public_pem()),
        "signedIdentity": {"type": "matchRepository"},
    });
    let with_entry = |body: Vec<u8>, log: &TestLog| {
        bundle_json(
            key_material(&key.spki_der()),
            vec![log.entry(&body, TEST_LOGGED_AT)],
            IN_TOTO,
            &statement,
            std::slice::from_ref(&signature),
        )
    };
    let good_body = TestLog::dsse_body(&key.public_pem(), &signature, &statement);
    assert!(evaluate(requirement.clone(), with_entry(good_body.clone(), &log)).is_allowed());

    // No entry at all.
    let unlogged = bundle_json(
        key_material(&key.spki_der()),
        vec![],
        IN_TOTO,
        &statement,
        std::slice::from_ref(&signature),
    );
    assert!(
        rejection(&evaluate(requirement.clone(), unlogged)).contains("no transparency log entry")
    );
    // Signed by another log.
    let message = rejection(&evaluate(
        requirement.clone(),
        with_entry(good_body, &TestLog::new()),
    ));
    assert!(message.contains("Rekor SET failed"), "{message}");
    // A logged entry of another payload, another signature, another key.
    let other = cosign_statement(&other_digest());
    for (body, expected) in [
        (
            TestLog::dsse_body(&key.public_pem(), &signature, &other),
            "payload in the bundle's Rekor entry does not match",
        ),
        (
            TestLog::dsse_body(&key.public_pem(), &key.sign(b"x"), &statement),
            "signature in the bundle's Rekor entry does not match",
        ),
        (
            TestLog::dsse_body(&TestKey::p256().public_pem(), &signature, &statement),
            "verifier in the bundle's Rekor entry does not match",
        ),
    ] {
        let message = rejection(&evaluate(requirement.clone(), with_entry(body, &log)));
        assert!(message.contains(expected), "{message}");
    }
    // A Rekor v2 entry (no promise) needs a trusted root.
    let mut v2 = log.entry(
        &TestLog::dsse_body(&key.public_pem(), &signature, &statement),
        0,
    );
    v2.as_object_mut().unwrap().remove("inclusionPromise");
    v2["kindVersion"]["version"] = json!("0.0.2");
    let v2_bundle = bundle_json(
        key_material(&key.spki_der()),
        vec![v2],
        IN_TOTO,
        &statement,
        &[signature],
    );
    let message = rejection(&evaluate(requirement, v2_bundle));
    assert!(message.contains("needs a trusted root"), "{message}");
}

fn fulcio_requirement(ca: &TestCa, log: &TestLog) -> Value {
    json!({
        "type": "sigstoreSigned",
        "fulcio": {
            "caData": STANDARD.encode(ca.pem()),
            "oidcIssuer": TEST_ISSUER,
            "subjectEmail": TEST_EMAIL,
        },
        "rekorPublicKeyData": STANDARD.encode(log.public_pem()),
        "signedIdentity": {"type": "matchRepository"},
    })
}

#[test]
fn keyless_bundles_chain_to_fulcio_at_the_logged_time() {
    let ca = TestCa::new("test fulcio");
    let log = TestLog::new();
    let leaf = LeafSpec::default().issue(&ca);
    let statement = cosign_statement(digest().as_str());
    let signature = leaf.sign(&pae(IN_TOTO, &statement));
    let body = TestLog::dsse_body(&leaf.cert_pem, &signature, &statement);
    let make = |time: i64| {
        bundle_json(
            certificate_material(&leaf.cert_pem),
            vec![log.entry(&body, time)],
            IN_TOTO,
            &statement,
            std::slice::from_ref(&signature),
        )
    };
    let requirement = fulcio_requirement(&ca, &log);
    assert!(evaluate(requirement.clone(), make(TEST_LOGGED_AT)).is_allowed());
    // Logged after the ten-minute certificate had expired.
    let late = rejection(&evaluate(
        requirement.clone(),
        make(TEST_LOGGED_AT + 2 * 86_400),
    ));
    assert!(late.contains("veryfing leaf certificate failed"), "{late}");
    // Another CA's certificate.
    let stranger = fulcio_requirement(&TestCa::new("another CA"), &log);
    assert!(!evaluate(stranger, make(TEST_LOGGED_AT)).is_allowed());
    // Another email.
    let mut other_email = requirement.clone();
    other_email["fulcio"]["subjectEmail"] = json!("someone@example.test");
    assert!(rejection(&evaluate(other_email, make(TEST_LOGGED_AT))).contains("email"));
    // A key bundle under a Fulcio requirement.
    let key = TestKey::p256();
    let message = rejection(&evaluate(requirement, key_bundle(&key, digest().as_str())));
    assert!(message.contains("needs a certificate"), "{message}");
}

#[test]
fn pki_bundles_chain_to_the_users_ca_now() {
    let ca = TestCa::new("my CA");
    let leaf = LeafSpec::default().issue(&ca);
    let statement = cosign_statement(digest().as_str());
    let signature = leaf.sign(&pae(IN_TOTO, &statement));
    let requirement = json!({
        "type": "sigstoreSigned",
        "pki": {"caRootsData": STANDARD.encode(ca.pem()), "subjectEmail": TEST_EMAIL},
        "signedIdentity": {"type": "matchRepository"},
    });
    let in_validity = SystemTime::UNIX_EPOCH + Duration::from_secs(TEST_LOGGED_AT as u64);
    for material in [
        certificate_material(&leaf.cert_pem),
        chain_material(&[&leaf.cert_pem]),
    ] {
        let bytes = bundle_json(
            material,
            vec![],
            IN_TOTO,
            &statement,
            std::slice::from_ref(&signature),
        );
        let decision = evaluate_at(requirement.clone(), bytes.clone(), in_validity);
        assert!(decision.is_allowed(), "{decision}");
        // Today the 2030 certificate is not yet valid.
        assert!(!evaluate(requirement.clone(), bytes).is_allowed());
    }
    // A key bundle where the policy names a CA.
    let key = TestKey::p256();
    assert!(!evaluate(requirement, key_bundle(&key, digest().as_str())).is_allowed());
}

#[test]
fn certificate_bundles_do_not_satisfy_key_requirements() {
    let ca = TestCa::new("my CA");
    let leaf = LeafSpec::default().issue(&ca);
    let statement = cosign_statement(digest().as_str());
    let signature = leaf.sign(&pae(IN_TOTO, &statement));
    let bytes = bundle_json(
        certificate_material(&leaf.cert_pem),
        vec![],
        IN_TOTO,
        &statement,
        &[signature],
    );
    let message = rejection(&evaluate(key_requirement(&TestKey::p256()), bytes));
    assert!(message.contains("trusts public keys"), "{message}");
}
