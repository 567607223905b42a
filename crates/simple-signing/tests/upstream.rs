//! containers/image's GPG mechanism cases on its own fixtures
//! (`../shared/fixtures/containers-image`, read in place): which keys a
//! keyring blob imports, and which signed messages verify, with gpg's
//! verdict for each.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, UNIX_EPOCH};

use criguard_policy::{RejectionKind, SimpleSigningVerifier};
use criguard_simple_signing::{Keyring, Verifier, verify_message};

const KEY: &str = "08CD26E446E2E95249B7A405E932F44B23E8DD43";
const KEY_2: &str = "F2B501009F78B0B340221A12A3CD242DA6028093";
const WITH_SUBKEY: &str = "B9F4CDB9FD8C475BFA340AC38D54A947EE396F36";
const SIGNING_SUBKEY: &str = "57D1D95BBC53BA0EAFF0718CD75B3109B3BAAEAF";
const WITH_REVOKED_SUBKEY: &str = "6D88C5A1993648A17B2BB0DC6B8499AF63388D63";

mod fixtures;

use fixtures::{NOW, now_time, read};

fn identities(blobs: &[Vec<u8>]) -> Vec<String> {
    Keyring::import(blobs).identities().to_vec()
}

#[test]
fn keyring_import_lists_primary_fingerprints() {
    assert!(identities(&[Vec::new()]).is_empty());
    assert!(identities(&[b"This is invalid".to_vec()]).is_empty());
    assert_eq!(identities(&[read("public-key.gpg")]), [KEY]);
    assert_eq!(identities(&[read("public-key-1.gpg")]), [KEY]);
    assert_eq!(
        identities(&[read("public-key-with-subkey.gpg")]),
        [WITH_SUBKEY]
    );
    assert_eq!(
        identities(&[read("public-key-with-revoked-subkey.gpg")]),
        [WITH_REVOKED_SUBKEY]
    );
    let pubring = read("pubring.gpg");
    let twice = [pubring.clone(), pubring].concat();
    let four = [KEY_2, KEY, WITH_SUBKEY, WITH_REVOKED_SUBKEY];
    assert_eq!(identities(&[twice]), [four, four].concat());
    assert_eq!(
        identities(&[read("public-key-1.gpg"), read("public-key-2.gpg")]),
        [KEY, KEY_2]
    );
}

#[test]
fn two_armoured_blocks_in_one_blob_both_import() {
    let armoured = [read("public-key.gpg"), read("public-key-with-subkey.gpg")].concat();
    assert_eq!(identities(&[armoured]), [KEY, WITH_SUBKEY]);
}

fn verify(signature: &str) -> Result<criguard_simple_signing::VerifiedMessage, String> {
    let keyring = Keyring::import(&[read("pubring.gpg")]);
    verify_message(&keyring, &read(signature), NOW).map_err(|r| r.message)
}

#[test]
fn good_signatures_verify_and_name_their_primary_key() {
    for name in ["invalid-blob.signature", "invalid-blob.signature-v3"] {
        let verified = verify(name).unwrap();
        assert_eq!(verified.payload, b"This is not JSON\n", "{name}");
        assert_eq!(verified.signer, KEY, "{name}");
        assert_eq!(verified.primary, KEY, "{name}");
    }
    for name in ["subkey.signature", "subkey.signature-v3"] {
        let verified = verify(name).unwrap();
        assert_eq!(verified.signer, SIGNING_SUBKEY, "{name}");
        assert_eq!(verified.primary, WITH_SUBKEY, "{name}");
    }
    let valid = verify("dir-img-valid/signature-1").unwrap();
    let payload: serde_json::Value = serde_json::from_slice(&valid.payload).unwrap();
    assert_eq!(
        payload["critical"]["identity"]["docker-reference"],
        "testing/manifest:latest"
    );
}

#[test]
fn bad_signatures_are_rejected_with_the_reason() {
    let cases = [
        ("expired.signature", "expired at"),
        ("corrupt.signature", "bad signature by key"),
        ("corrupt.signature-v3", "bad signature by key"),
        ("unknown-key.signature", "no public key 5F9470E3BC6C3B55"),
        ("unknown-key.signature-v3", "no public key 5F9470E3BC6C3B55"),
        ("subkey-revoked.signature", "the subkey is revoked"),
        ("subkey-revoked.signature-v3", "the subkey is revoked"),
        (
            "unsigned-literal.signature",
            "Unexpected GPG signature count 0",
        ),
        ("unsigned-encrypted.signature", "encrypted"),
    ];
    for (name, expected) in cases {
        let error = verify(name).unwrap_err();
        assert!(error.contains(expected), "{name}: {error}");
    }
}

#[test]
fn garbage_is_an_error_not_a_crash() {
    let keyring = Keyring::import(&[read("pubring.gpg")]);
    for blob in [
        &b""[..],
        b"This is not a signature",
        b"\xa3\x01\x02",
        b"\x90",
    ] {
        let error = verify_message(&keyring, blob, NOW).unwrap_err();
        assert_eq!(
            error.kind,
            RejectionKind::Other,
            "{blob:?}: {}",
            error.message
        );
    }
}

/// gpgme verifies a cleartext-signed message, but containers/image never
/// hands one to it from a lookaside store (its blob sniffing refuses a
/// leading `-`); criguard refuses it in both places.
#[test]
fn cleartext_signatures_are_refused() {
    assert!(verify("invalid-cleartext.signature").is_err());
}

#[test]
fn an_empty_keyring_is_no_public_keys_imported() {
    let verifier = Verifier::at(now_time());
    let error = verifier
        .verify(&[b"nonsense".to_vec()], &read("dir-img-valid/signature-1"))
        .unwrap_err();
    assert_eq!(error.message, "No public keys imported");
    assert_eq!(error.kind, RejectionKind::PolicyRequirement);
    let payload = verifier
        .verify(
            &[read("public-key-2.gpg"), read("public-key-1.gpg")],
            &read("dir-img-valid/signature-1"),
        )
        .unwrap();
    assert!(payload.starts_with(b"{"));
}

/// The secret keys of containers/image's signing tests sign, and what they
/// sign verifies with the public keyring.
#[test]
fn fixture_secret_keys_sign_verifiable_messages() {
    let key = criguard_simple_signing::SigningKey::from_bytes(&read("secring.gpg")).unwrap();
    let passphrase = if key.primary_fingerprint() == KEY_2 {
        "WithPassphrase123"
    } else {
        ""
    };
    let blob = key.sign(b"{\"payload\": 1}", passphrase).unwrap();
    let keyring = Keyring::import(&[read("pubring.gpg")]);
    let verified = verify_message(&keyring, &blob, NOW).unwrap();
    assert_eq!(verified.payload, b"{\"payload\": 1}");
    assert_eq!(verified.primary, key.primary_fingerprint());
    assert!(key.sign(b"x", "wrong passphrase").is_err() || passphrase.is_empty());
}

/// One verifier checks many signatures; the keys it imported for one
/// requirement must never stand in for another requirement's.
#[test]
fn a_verifier_reuses_an_import_only_for_the_same_keys() {
    let verifier = Verifier::at(now_time());
    let signature = read("dir-img-valid/signature-1");
    assert!(
        verifier
            .verify(&[read("public-key.gpg")], &signature)
            .is_ok()
    );
    assert!(
        verifier
            .verify(&[read("public-key.gpg")], &signature)
            .is_ok()
    );
    let other = verifier
        .verify(&[read("public-key-2.gpg")], &signature)
        .unwrap_err();
    assert!(other.message.contains("no public key"), "{}", other.message);
    assert!(
        verifier
            .verify(&[read("public-key.gpg")], &signature)
            .is_ok()
    );
}

/// With a clock before 1970 no expiry can be judged: every check rejects.
#[test]
fn a_clock_before_1970_rejects() {
    let verifier = Verifier::at(UNIX_EPOCH - Duration::from_secs(1));
    let error = verifier
        .verify(
            &[read("public-key.gpg")],
            &read("dir-img-valid/signature-1"),
        )
        .unwrap_err();
    assert!(error.message.contains("before 1970"), "{}", error.message);
}
