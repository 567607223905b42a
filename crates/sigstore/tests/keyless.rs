//! Keyless (Fulcio + Rekor) and PKI verification against a test Fulcio CA,
//! a test Rekor key and certificates made here, so that every way a
//! keyless signature can be wrong is checked on its own.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use criguard_policy::{Decision, InMemoryTrustFiles, SigstoreSignature};
use criguard_reference::Digest;
use criguard_sigstore::Verifier;
use criguard_testutil::keyless::{
    IssuedLeaf, LeafSpec as Leaf, TEST_EMAIL as EMAIL, TEST_ISSUER as ISSUER,
    TEST_LOGGED_AT as LOGGED_AT, TestCa, TestRekor as Rekor, cosign_payload, der_utf8,
    keyless_annotations,
};
use serde_json::json;

use common::{evaluate_one, rejection};

const IMAGE: &str = "registry.test/app";

fn manifest_digest() -> Digest {
    Digest::parse(&format!("sha256:{}", "ab".repeat(32))).unwrap()
}

fn payload() -> Vec<u8> {
    cosign_payload(IMAGE, manifest_digest().as_str())
}

/// Every requirement here carries its keys and certificates inline: no
/// file is read.
fn evaluate(
    requirement: serde_json::Value,
    signature: SigstoreSignature,
    now: SystemTime,
) -> Decision {
    evaluate_one(
        &requirement,
        IMAGE,
        &manifest_digest(),
        signature,
        &Verifier::at(now),
        &InMemoryTrustFiles::new(),
    )
}

fn with_annotations(annotations: BTreeMap<String, String>) -> SigstoreSignature {
    SigstoreSignature {
        mime_type: "application/vnd.dev.cosign.simplesigning.v1+json".into(),
        payload: payload(),
        annotations,
    }
}

fn attachment(annotations: &[(&str, String)]) -> SigstoreSignature {
    SigstoreSignature {
        mime_type: "application/vnd.dev.cosign.simplesigning.v1+json".into(),
        payload: payload(),
        annotations: annotations
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect::<BTreeMap<_, _>>(),
    }
}

struct Keyless {
    ca: TestCa,
    rekor: Rekor,
}

impl Keyless {
    fn new() -> Self {
        Self {
            ca: TestCa::new("test fulcio"),
            rekor: Rekor::new(),
        }
    }

    fn requirement(&self, issuer: &str, email: &str) -> serde_json::Value {
        json!({
            "type": "sigstoreSigned",
            "fulcio": {
                "caData": STANDARD.encode(self.ca.pem()),
                "oidcIssuer": issuer,
                "subjectEmail": email,
            },
            "rekorPublicKeyData": STANDARD.encode(self.rekor.public_pem()),
            "signedIdentity": {"type": "matchRepository"},
        })
    }

    /// A signature by a certificate `leaf` issued by `issuer_ca`, logged by
    /// `log` at `time`.
    fn signature_from(
        &self,
        leaf: &Leaf,
        issuer_ca: &TestCa,
        log: &Rekor,
        time: i64,
    ) -> SigstoreSignature {
        let leaf = leaf.issue(issuer_ca);
        with_annotations(keyless_annotations(&leaf, log, &payload(), time))
    }

    fn signature(&self, leaf: &Leaf) -> SigstoreSignature {
        self.signature_from(leaf, &self.ca, &self.rekor, LOGGED_AT)
    }

    fn decide(&self, signature: SigstoreSignature) -> Decision {
        // The clock is far past the leaf's validity: only the log time counts.
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(2_200_000_000);
        evaluate(self.requirement(ISSUER, EMAIL), signature, now)
    }
}

#[test]
fn valid_keyless_signature_is_allowed() {
    let k = Keyless::new();
    let decision = k.decide(k.signature(&Leaf::default()));
    assert!(decision.is_allowed(), "{decision}");
}

#[test]
fn wrong_email_and_wrong_issuer() {
    let k = Keyless::new();
    let leaf = Leaf {
        emails: vec!["other@example.test"],
        ..Leaf::default()
    };
    assert_eq!(
        rejection(&k.decide(k.signature(&leaf))),
        r#"Required email "dev@example.test" not found (got ["other@example.test"])"#
    );
    let leaf = Leaf {
        issuer_v2: Some(der_utf8("https://evil.test")),
        ..Leaf::default()
    };
    assert_eq!(
        rejection(&k.decide(k.signature(&leaf))),
        r#"Unexpected Fulcio OIDC issuer "https://evil.test""#
    );
}

#[test]
fn email_is_matched_exactly_among_several() {
    let k = Keyless::new();
    let leaf = Leaf {
        emails: vec!["a@example.test", EMAIL, "b@example.test"],
        ..Leaf::default()
    };
    assert!(k.decide(k.signature(&leaf)).is_allowed());
    let leaf = Leaf {
        emails: vec!["DEV@example.test"],
        ..Leaf::default()
    };
    assert!(!k.decide(k.signature(&leaf)).is_allowed(), "case-sensitive");
}

#[test]
fn certificate_from_another_ca() {
    let k = Keyless::new();
    let other = TestCa::new("other ca");
    let signature = k.signature_from(&Leaf::default(), &other, &k.rekor, LOGGED_AT);
    assert_eq!(
        rejection(&k.decide(signature)),
        "veryfing leaf certificate failed: x509: certificate signed by unknown authority"
    );
}

#[test]
fn certificate_expired_or_not_yet_valid_at_integration_time() {
    let k = Keyless::new();
    for time in [LOGGED_AT - 86_400, LOGGED_AT + 2 * 86_400] {
        let signature = k.signature_from(&Leaf::default(), &k.ca, &k.rekor, time);
        assert_eq!(
            rejection(&k.decide(signature)),
            "veryfing leaf certificate failed: x509: certificate has expired or is not yet valid",
            "logged at {time}"
        );
    }
}

#[test]
fn set_signed_by_another_log() {
    let k = Keyless::new();
    let other = Rekor::new();
    let signature = k.signature_from(&Leaf::default(), &k.ca, &other, LOGGED_AT);
    assert_eq!(
        rejection(&k.decide(signature)),
        "cryptographic signature verification of Rekor SET failed"
    );
}

#[test]
fn entry_body_for_another_signature_or_payload() {
    let k = Keyless::new();
    let leaf: IssuedLeaf = Leaf::default().issue(&k.ca);
    let cert_pem = leaf.cert_pem.clone();
    let signature = leaf.sign(&payload());
    let other_signature = leaf.sign(b"something else");
    // The log entry is for another signature by the same certificate.
    let set = k
        .rekor
        .set(&cert_pem, &other_signature, &payload(), LOGGED_AT);
    let attached = attachment(&[
        (
            "dev.cosignproject.cosign/signature",
            STANDARD.encode(&signature),
        ),
        ("dev.sigstore.cosign/certificate", cert_pem.clone()),
        ("dev.sigstore.cosign/bundle", set),
    ]);
    assert!(rejection(&k.decide(attached)).starts_with("signature in Rekor SET does not match"));
    // The log entry is for another payload.
    let set = k
        .rekor
        .set(&cert_pem, &signature, b"another payload", LOGGED_AT);
    let attached = attachment(&[
        (
            "dev.cosignproject.cosign/signature",
            STANDARD.encode(&signature),
        ),
        ("dev.sigstore.cosign/certificate", cert_pem),
        ("dev.sigstore.cosign/bundle", set),
    ]);
    assert_eq!(
        rejection(&k.decide(attached)),
        "payload in Rekor SET does not match"
    );
    // The log entry is for another certificate.
    let other_cert = Leaf::default().issue(&k.ca).cert_pem;
    let mut attached = k.signature(&Leaf::default());
    attached
        .annotations
        .insert("dev.sigstore.cosign/certificate".into(), other_cert);
    assert_eq!(
        rejection(&k.decide(attached)),
        "publicKey in Rekor SET does not match"
    );
}

#[test]
fn issuer_extension_variants() {
    let k = Keyless::new();
    let cases: Vec<(Leaf, Result<(), &str>)> = vec![
        (
            Leaf {
                issuer_v1: Some(ISSUER),
                issuer_v2: None,
                ..Leaf::default()
            },
            Ok(()),
        ),
        (
            Leaf {
                issuer_v1: Some(ISSUER),
                ..Leaf::default()
            },
            Ok(()),
        ),
        (
            Leaf {
                issuer_v1: Some("https://other.test"),
                ..Leaf::default()
            },
            Err(
                r#"inconsistent OIDC issuer extension values: v1 "https://other.test", v2 "https://accounts.test""#,
            ),
        ),
        (
            Leaf {
                issuer_v2: None,
                ..Leaf::default()
            },
            Err("Fulcio certificate is missing the issuer extension"),
        ),
        (
            Leaf {
                issuer_v2: Some(vec![0x02, 0x01, 0x01]),
                ..Leaf::default()
            },
            Err("invalid ASN.1 in OIDC issuer v2 extension: asn1: structure error"),
        ),
        (
            Leaf {
                issuer_v2: Some([der_utf8(ISSUER), vec![0x00]].concat()),
                ..Leaf::default()
            },
            Err("invalid ASN.1 in OIDC issuer v2 extension, trailing data"),
        ),
    ];
    for (i, (leaf, want)) in cases.into_iter().enumerate() {
        let decision = k.decide(k.signature(&leaf));
        match want {
            Ok(()) => assert!(decision.is_allowed(), "case {i}: {decision}"),
            Err(prefix) => assert!(
                rejection(&decision).starts_with(prefix),
                "case {i}: {decision}"
            ),
        }
    }
}

#[test]
fn critical_san_with_only_other_name_reaches_the_email_check() {
    let k = Keyless::new();
    let leaf = Leaf {
        other_name_only: true,
        ..Leaf::default()
    };
    assert_eq!(
        rejection(&k.decide(k.signature(&leaf))),
        r#"Required email "dev@example.test" not found (got [])"#
    );
    let leaf = Leaf {
        unknown_critical: true,
        ..Leaf::default()
    };
    assert_eq!(
        rejection(&k.decide(k.signature(&leaf))),
        "veryfing leaf certificate failed: x509: unhandled critical extension"
    );
}

fn pki_requirement(ca: &TestCa, email: Option<&str>, hostname: Option<&str>) -> serde_json::Value {
    let mut pki = json!({"caRootsData": STANDARD.encode(ca.pem())});
    if let Some(email) = email {
        pki["subjectEmail"] = json!(email);
    }
    if let Some(hostname) = hostname {
        pki["subjectHostname"] = json!(hostname);
    }
    json!({"type": "sigstoreSigned", "pki": pki, "signedIdentity": {"type": "matchRepository"}})
}

fn pki_signature(ca: &TestCa, leaf: &Leaf) -> SigstoreSignature {
    let leaf = leaf.issue(ca);
    attachment(&[
        (
            "dev.cosignproject.cosign/signature",
            STANDARD.encode(leaf.sign(&payload())),
        ),
        ("dev.sigstore.cosign/certificate", leaf.cert_pem),
    ])
}

#[test]
fn pki_checks_time_hostname_and_critical_san() {
    let ca = TestCa::new("team ca");
    let during = SystemTime::UNIX_EPOCH + Duration::from_secs(LOGGED_AT as u64);
    let after = during + Duration::from_secs(7 * 86_400);
    let leaf = Leaf {
        dns_names: vec!["a.example.test", "b.example.test"],
        ..Leaf::default()
    };
    let ok = evaluate(
        pki_requirement(&ca, Some(EMAIL), Some("b.example.test")),
        pki_signature(&ca, &leaf),
        during,
    );
    assert!(ok.is_allowed(), "{ok}");
    let expired = evaluate(
        pki_requirement(&ca, Some(EMAIL), None),
        pki_signature(&ca, &leaf),
        after,
    );
    assert_eq!(
        rejection(&expired),
        "veryfing leaf certificate failed: x509: certificate has expired or is not yet valid"
    );
    let wrong_host = evaluate(
        pki_requirement(&ca, None, Some("c.example.test")),
        pki_signature(&ca, &leaf),
        during,
    );
    assert_eq!(
        rejection(&wrong_host),
        "Unexpected subject hostname: x509: certificate is valid for a.example.test, b.example.test, not c.example.test"
    );
    let other_name = Leaf {
        other_name_only: true,
        ..Leaf::default()
    };
    let refused = evaluate(
        pki_requirement(&ca, Some(EMAIL), None),
        pki_signature(&ca, &other_name),
        during,
    );
    assert_eq!(
        rejection(&refused),
        "veryfing leaf certificate failed: x509: unhandled critical extension"
    );
}

#[test]
fn root_must_be_valid_when_the_leaf_is_checked() {
    // A root that expired before the signature was logged: Go refuses it,
    // although webpki alone would not look at the root's dates.
    let k = Keyless {
        ca: TestCa::with_validity("expired root", (2020, 1, 1), (2030, 1, 1)),
        rekor: Rekor::new(),
    };
    assert_eq!(
        rejection(&k.decide(k.signature(&Leaf::default()))),
        "veryfing leaf certificate failed: x509: certificate has expired or is not yet valid"
    );
    let ca = TestCa::with_validity("expired root", (2020, 1, 1), (2030, 1, 1));
    let during = SystemTime::UNIX_EPOCH + Duration::from_secs(LOGGED_AT as u64);
    let refused = evaluate(
        pki_requirement(&ca, Some(EMAIL), None),
        pki_signature(&ca, &Leaf::default()),
        during,
    );
    assert_eq!(
        rejection(&refused),
        "veryfing leaf certificate failed: x509: certificate has expired or is not yet valid"
    );
}
