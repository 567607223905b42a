//! containers/image's sigstore evaluation cases on its own fixtures
//! (`../shared/fixtures/containers-image`, read in place): variations of the
//! valid key, key+Rekor, Fulcio and PKI signatures with annotations removed,
//! replaced or transplanted, each with upstream's verdict.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};

use aws_lc_rs::digest;
use criguard_policy::{Decision, Signature, SigstoreSignature, TrustFiles};
use criguard_reference::Digest;
use criguard_sigstore::{
    BUNDLE_ANNOTATION, CERTIFICATE_ANNOTATION, CHAIN_ANNOTATION, PublicKey, SIGNATURE_ANNOTATION,
    Verifier, verify_set,
};
use serde_json::json;

use common::{evaluate_one, rejection};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/fixtures/containers-image/signature/fixtures")
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read(fixtures().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn text(name: &str) -> String {
    String::from_utf8(read(name)).unwrap()
}

struct FixtureFiles;
impl TrustFiles for FixtureFiles {
    fn read(&self, path: &Path) -> Result<Vec<u8>, String> {
        std::fs::read(fixtures().join(path)).map_err(|e| format!("open {}: {e}", path.display()))
    }
}

fn sigstore(dir: &str, n: usize) -> SigstoreSignature {
    match Signature::from_blob(&read(&format!("{dir}/signature-{n}"))).unwrap() {
        Signature::Sigstore(s) => s,
        Signature::SimpleSigning(_) => panic!("{dir}: not a sigstore signature"),
    }
}

/// Evaluates one requirement (matchRepository unless it says otherwise)
/// on a fixture image whose signature `edit` may change.
fn evaluate(
    dir: &str,
    reference: &str,
    mut requirement: serde_json::Value,
    edit: impl FnOnce(&mut SigstoreSignature),
) -> Decision {
    requirement["type"] = json!("sigstoreSigned");
    if requirement.get("signedIdentity").is_none() {
        requirement["signedIdentity"] = json!({"type": "matchRepository"});
    }
    let manifest = read(&format!("{dir}/manifest.json"));
    let manifest_digest = Digest::sha256_from_bytes(
        &digest::digest(&digest::SHA256, &manifest)
            .as_ref()
            .try_into()
            .unwrap(),
    );
    let mut signature = sigstore(dir, 1);
    edit(&mut signature);
    evaluate_one(
        &requirement,
        reference,
        &manifest_digest,
        signature,
        &Verifier::new(),
        &FixtureFiles,
    )
}

const KEY_REKOR: (&str, &str) = (
    "dir-img-cosign-key-rekor-valid",
    "192.168.64.2:5000/cosign-signed/key-1",
);
const FULCIO: (&str, &str) = (
    "dir-img-cosign-fulcio-rekor-valid",
    "192.168.64.2:5000/cosign-signed/fulcio-rekor-1",
);
const PKI: (&str, &str) = ("dir-img-cosign-pki-valid", "localhost:5000/test");
const VALID: (&str, &str) = (
    "dir-img-cosign-valid",
    "192.168.64.2:5000/cosign-signed-single-sample",
);

fn fulcio_requirement() -> serde_json::Value {
    json!({
        "fulcio": {
            "caPath": "fulcio_v1.crt.pem",
            "oidcIssuer": "https://github.com/login/oauth",
            "subjectEmail": "mitr@redhat.com",
        },
        "rekorPublicKeyPath": "rekor.pub",
    })
}

fn pki_requirement() -> serde_json::Value {
    json!({
        "pki": {
            "caRootsPath": "pki_root_crts.pem",
            "caIntermediatesPath": "pki_intermediate_crts.pem",
            "subjectEmail": "qiwan@redhat.com",
            "subjectHostname": "myhost.example.com",
        },
    })
}

#[test]
fn key_with_rekor_accepts_every_key_order() {
    let (dir, reference) = KEY_REKOR;
    for keys in [
        json!(["cosign2.pub"]),
        json!(["cosign2.pub", "cosign.pub"]),
        json!(["cosign.pub", "cosign2.pub"]),
    ] {
        for rekor in [
            json!(["rekor.pub"]),
            json!(["rekor.pub", "cosign.pub"]),
            json!(["cosign.pub", "rekor.pub"]),
        ] {
            let requirement = json!({"keyPaths": keys, "rekorPublicKeyPaths": rekor});
            let decision = evaluate(dir, reference, requirement, |_| {});
            assert!(decision.is_allowed(), "{keys} {rekor}: {decision}");
        }
    }
}

#[test]
fn key_with_rekor_rejections() {
    let (dir, reference) = KEY_REKOR;
    let requirement = json!({"keyPath": "cosign2.pub", "rekorPublicKeyPath": "rekor.pub"});

    let removed = evaluate(dir, reference, requirement.clone(), |s| {
        s.annotations.remove(BUNDLE_ANNOTATION);
    });
    assert_eq!(
        rejection(&removed),
        "missing dev.sigstore.cosign/bundle annotation"
    );

    let invalid = evaluate(dir, reference, requirement.clone(), |s| {
        s.annotations
            .insert(BUNDLE_ANNOTATION.into(), "this is not a valid SET".into());
    });
    assert!(
        rejection(&invalid).starts_with("No public key verified against the RekorSET: "),
        "{}",
        rejection(&invalid)
    );

    let wrong_log = evaluate(
        dir,
        reference,
        json!({"keyPath": "cosign2.pub", "rekorPublicKeyPath": "cosign.pub"}),
        |_| {},
    );
    assert_eq!(
        rejection(&wrong_log),
        "No public key verified against the RekorSET: cryptographic signature verification of Rekor SET failed"
    );

    // The Rekor key is trusted only for ECDSA.
    let rsa_log = evaluate(
        dir,
        reference,
        json!({"keyPath": "cosign2.pub", "rekorPublicKeyPath": "some-rsa-key.pub"}),
        |_| {},
    );
    assert_eq!(rejection(&rsa_log), "Rekor public key 1 is not using ECDSA");
}

#[test]
fn transplanted_set_does_not_vouch_for_another_signature() {
    let bundle = sigstore(KEY_REKOR.0, 1).annotations[BUNDLE_ANNOTATION].clone();
    let (dir, reference) = VALID;
    let decision = evaluate(
        dir,
        reference,
        json!({"keyPaths": ["cosign.pub", "cosign2.pub"], "rekorPublicKeyPath": "rekor.pub"}),
        |s| {
            s.annotations.insert(BUNDLE_ANNOTATION.into(), bundle);
        },
    );
    let message = rejection(&decision);
    assert!(message.starts_with("No public key verified against the RekorSET: "));
    assert!(
        message.contains("signature in Rekor SET does not match"),
        "{message}"
    );
}

#[test]
fn fulcio_accepts_with_either_rekor_key_order() {
    let (dir, reference) = FULCIO;
    for rekor in [
        json!(["rekor.pub"]),
        json!(["rekor.pub", "cosign.pub"]),
        json!(["cosign.pub", "rekor.pub"]),
    ] {
        let mut requirement = fulcio_requirement();
        requirement
            .as_object_mut()
            .unwrap()
            .remove("rekorPublicKeyPath");
        requirement["rekorPublicKeyPaths"] = rekor.clone();
        let decision = evaluate(dir, reference, requirement, |_| {});
        assert!(decision.is_allowed(), "{rekor}: {decision}");
    }
}

#[test]
fn fulcio_rejections() {
    let (dir, reference) = FULCIO;
    type Edit = Box<dyn FnOnce(&mut SigstoreSignature)>;
    let cases: Vec<(&str, Edit, &str)> = vec![
        (
            "bundle removed",
            Box::new(|s| {
                s.annotations.remove(BUNDLE_ANNOTATION);
            }),
            "missing dev.sigstore.cosign/bundle annotation",
        ),
        (
            "certificate removed",
            Box::new(|s| {
                s.annotations.remove(CERTIFICATE_ANNOTATION);
            }),
            "missing dev.sigstore.cosign/certificate annotation",
        ),
        (
            "chain removed",
            Box::new(|s| {
                s.annotations.remove(CHAIN_ANNOTATION);
            }),
            "veryfing leaf certificate failed: x509: certificate signed by unknown authority",
        ),
        (
            "certificate not a certificate",
            Box::new(|s| {
                s.annotations.insert(
                    CERTIFICATE_ANNOTATION.into(),
                    "this is not a valid certificate".into(),
                );
            }),
            // The SET names the real certificate, so the log check fails first.
            "public key or cert to be matched against publicKey in Rekor SET is not in PEM format",
        ),
        (
            "invalid SET",
            Box::new(|s| {
                s.annotations
                    .insert(BUNDLE_ANNOTATION.into(), "this is not a valid SET".into());
            }),
            "invalid format of the Rekor SET",
        ),
    ];
    for (name, edit, want) in cases {
        let decision = evaluate(dir, reference, fulcio_requirement(), edit);
        let message = rejection(&decision);
        assert!(message.starts_with(want), "{name}: {message}");
    }

    let mut wrong_log = fulcio_requirement();
    wrong_log["rekorPublicKeyPath"] = json!("cosign.pub");
    assert_eq!(
        rejection(&evaluate(dir, reference, wrong_log, |_| {})),
        "cryptographic signature verification of Rekor SET failed"
    );
}

#[test]
fn fulcio_chain_may_come_from_the_policy() {
    let (dir, reference) = FULCIO;
    let chain = sigstore(dir, 1).annotations[CHAIN_ANNOTATION].clone();
    let mut requirement = fulcio_requirement();
    requirement["fulcio"]
        .as_object_mut()
        .unwrap()
        .remove("caPath");
    requirement["fulcio"]["caData"] = json!(base64_std(chain.as_bytes()));
    let decision = evaluate(dir, reference, requirement, |s| {
        s.annotations.remove(CHAIN_ANNOTATION);
    });
    assert!(decision.is_allowed(), "{decision}");
}

#[test]
fn pki_cases() {
    let (dir, reference) = PKI;
    assert!(evaluate(dir, reference, pki_requirement(), |_| {}).is_allowed());
    // Intermediates from the policy replace the chain annotation.
    assert!(
        evaluate(dir, reference, pki_requirement(), |s| {
            s.annotations.remove(CHAIN_ANNOTATION);
        })
        .is_allowed()
    );
    let mut roots_only = pki_requirement();
    roots_only["pki"]
        .as_object_mut()
        .unwrap()
        .remove("caIntermediatesPath");
    assert!(evaluate(dir, reference, roots_only.clone(), |_| {}).is_allowed());
    let no_chain = evaluate(dir, reference, roots_only, |s| {
        s.annotations.remove(CHAIN_ANNOTATION);
    });
    assert_eq!(
        rejection(&no_chain),
        "veryfing leaf certificate failed: x509: certificate signed by unknown authority"
    );
    let no_certificate = evaluate(dir, reference, pki_requirement(), |s| {
        s.annotations.remove(CERTIFICATE_ANNOTATION);
    });
    assert_eq!(
        rejection(&no_certificate),
        "missing dev.sigstore.cosign/certificate annotation"
    );
    let mut wrong_email = pki_requirement();
    wrong_email["pki"]["subjectEmail"] = json!("qiwan@example.com");
    assert_eq!(
        rejection(&evaluate(dir, reference, wrong_email, |_| {})),
        r#"Required email "qiwan@example.com" not found (got ["qiwan@redhat.com"])"#
    );
}

#[test]
fn key_signature_annotation_cases() {
    let (dir, reference) = VALID;
    let requirement = json!({"keyPath": "cosign.pub"});
    assert!(evaluate(dir, reference, requirement.clone(), |_| {}).is_allowed());
    let bad = evaluate(dir, reference, requirement.clone(), |s| {
        s.annotations.insert(
            SIGNATURE_ANNOTATION.into(),
            base64_std(b"invalid signature"),
        );
    });
    assert_eq!(
        rejection(&bad),
        "cryptographic signature verification failed: invalid signature when validating ASN.1 encoded signature"
    );
    let not_base64 = evaluate(dir, reference, requirement.clone(), |s| {
        s.annotations
            .insert(SIGNATURE_ANNOTATION.into(), "&".into());
    });
    assert!(rejection(&not_base64).starts_with("base64 decoding: illegal base64 data"));
    let none = evaluate(dir, reference, requirement.clone(), |s| {
        s.annotations.clear()
    });
    assert_eq!(
        rejection(&none),
        "missing dev.cosignproject.cosign/signature annotation"
    );
    // One unusable key fails the requirement even if another would verify.
    let with_rsa = evaluate(
        dir,
        reference,
        json!({"keyPaths": ["cosign.pub", "fulcio_v1.crt.pem"]}),
        |_| {},
    );
    assert!(
        rejection(&with_rsa)
            .starts_with("parsing public key 2: unknown Public key PEM file type: CERTIFICATE"),
        "{}",
        rejection(&with_rsa)
    );
    let unknown = evaluate("dir-img-cosign-mixed", reference, requirement, |_| {});
    assert!(rejection(&unknown).starts_with("cryptographic signature verification failed"));
}

#[test]
fn rekor_set_unit_cases() {
    let rekor = PublicKey::from_pem(&read("rekor.pub")).unwrap();
    let other = PublicKey::from_pem(&read("cosign.pub")).unwrap();
    let set = text("rekor-set");
    let cert = read("fulcio-cert");
    let sig = text("rekor-sig");
    let payload = read("rekor-payload");
    for keys in [
        vec![rekor.clone()],
        vec![rekor.clone(), other.clone()],
        vec![other.clone(), rekor.clone()],
    ] {
        let entry = verify_set(&keys, &set, &cert, &sig, &payload).unwrap();
        assert_eq!(entry.integrated_time, 1670870899);
    }
    assert_eq!(
        verify_set(std::slice::from_ref(&other), &set, &cert, &sig, &payload).unwrap_err(),
        "cryptographic signature verification of Rekor SET failed"
    );
    assert!(verify_set(std::slice::from_ref(&rekor), "", &cert, &sig, &payload).is_err());
    assert_eq!(
        verify_set(
            std::slice::from_ref(&rekor),
            &set,
            &cert,
            &sig,
            b"other payload"
        )
        .unwrap_err(),
        "payload in Rekor SET does not match"
    );
    assert_eq!(
        verify_set(
            std::slice::from_ref(&rekor),
            &set,
            &read("cosign.pub"),
            &sig,
            &payload
        )
        .unwrap_err(),
        "publicKey in Rekor SET does not match"
    );
    let two_blocks = [cert.clone(), cert.clone()].concat();
    assert_eq!(
        verify_set(
            std::slice::from_ref(&rekor),
            &set,
            &two_blocks,
            &sig,
            &payload
        )
        .unwrap_err(),
        "public key or cert to be matched against publicKey in Rekor SET has trailing data"
    );
    // A duplicate key in the signed payload makes canonicalisation fail.
    let parsed: serde_json::Value = serde_json::from_str(&set).unwrap();
    let log_id = parsed["Payload"]["logID"].as_str().unwrap();
    let duplicated = set.replacen(
        &format!("\"logID\":\"{log_id}\""),
        &format!("\"logID\":\"{log_id}\",\"logID\":\"{log_id}\""),
        1,
    );
    assert_ne!(duplicated, set, "the fixture's layout changed");
    assert!(
        verify_set(
            std::slice::from_ref(&rekor),
            &duplicated,
            &cert,
            &sig,
            &payload
        )
        .unwrap_err()
        .starts_with("canonicalizing Rekor SET JSON")
    );
    // Any key outside the two fields is refused before anything else.
    let extra = set.replacen('{', "{\"extra\":1,", 1);
    assert!(
        verify_set(&[rekor], &extra, &cert, &sig, &payload)
            .unwrap_err()
            .starts_with("invalid format of the Rekor SET")
    );
}

fn base64_std(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
