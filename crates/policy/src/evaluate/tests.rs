use criguard_reference::{Digest, Reference};

use super::*;
use crate::transport::ImageReference;
use crate::trust_files::InMemoryTrustFiles;

const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const OTHER_DIGEST: &str =
    "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

/// A test double for the GPG mechanism: a "signed" blob is
/// `key-name\npayload`, and a keyring is the key name. It lets these tests
/// exercise everything the engine does after the cryptography.
struct NamedKeys;
impl SimpleSigningVerifier for NamedKeys {
    fn verify(&self, keyrings: &[Vec<u8>], blob: &[u8]) -> Result<Vec<u8>, SignatureRejection> {
        if keyrings.iter().all(|k| k.is_empty()) {
            return Err(SignatureRejection::policy("No public keys imported"));
        }
        let text = std::str::from_utf8(blob).map_err(|_| SignatureRejection::other("garbage"))?;
        let (key, payload) = text
            .split_once('\n')
            .ok_or_else(|| SignatureRejection::other("garbage"))?;
        if keyrings.iter().any(|k| k == key.as_bytes()) {
            Ok(payload.as_bytes().to_vec())
        } else {
            Err(SignatureRejection::invalid(format!(
                "signature by key {key} is not accepted"
            )))
        }
    }
}

fn payload(reference: &str, digest: &str) -> String {
    format!(
        r#"{{"critical":{{"identity":{{"docker-reference":"{reference}"}},"image":{{"docker-manifest-digest":"{digest}"}},"type":"atomic container signature"}},"optional":{{}}}}"#
    )
}

fn gpg(key: &str, reference: &str, digest: &str) -> Signature {
    Signature::SimpleSigning(format!("{key}\n{}", payload(reference, digest)).into_bytes())
}

fn policy(docker_scopes: &str) -> Policy {
    let text = format!(
        r#"{{"default":[{{"type":"reject"}}],"transports":{{"docker":{{{docker_scopes}}}}}}}"#
    );
    Policy::from_bytes(text.as_bytes(), "test").unwrap()
}

fn decide(policy: &Policy, image: &str, signatures: &[Signature]) -> Decision {
    let reference =
        ImageReference::Docker(Reference::parse_docker_transport(&format!("//{image}")).unwrap());
    let digest = Digest::parse(DIGEST).unwrap();
    Evaluator {
        files: &InMemoryTrustFiles::new(),
        simple_signing: Some(&NamedKeys),
        sigstore: None,
    }
    .evaluate(
        policy,
        &Image {
            reference: &reference,
            manifest_digest: &digest,
            signatures,
        },
    )
}

fn message(decision: &Decision) -> &str {
    &decision.rejection().expect("rejected").message
}

#[test]
fn scope_lookup_order() {
    let scopes = [
        "",
        "unmatched",
        "deep.com",
        "*.very.deep.com",
        "*.deep.com",
        "deep.com/n1",
        "deep.com/n1/n2",
        "deep.com/n1/n2/n3",
        "deep.com/n1/n2/n3/repo",
        "deep.com/n1/n2/n3/repo:tag2",
    ];
    let body: Vec<String> = scopes
        .iter()
        .map(|s| format!(r#""{s}":[{{"type":"reject"}}]"#))
        .collect();
    let text = format!(
        r#"{{"default":[{{"type":"reject"}}],"transports":{{"docker":{{{}}},"atomic":{{"unmatched":[{{"type":"reject"}}]}}}}}}"#,
        body.join(",")
    );
    let policy = Policy::from_bytes(text.as_bytes(), "t").unwrap();
    let rows = [
        (
            "deep.com/n1/n2/n3/repo:tag2",
            Some("deep.com/n1/n2/n3/repo:tag2"),
        ),
        (
            "deep.com/n1/n2/n3/repo:nottag2",
            Some("deep.com/n1/n2/n3/repo"),
        ),
        ("deep.com/n1/n2/n3/notrepo:tag2", Some("deep.com/n1/n2/n3")),
        ("deep.com/n1/n2/notn3/repo:tag2", Some("deep.com/n1/n2")),
        ("deep.com/n1/notn2/n3/repo:tag2", Some("deep.com/n1")),
        ("deep.com/notn1/n2/n3/repo:tag2", Some("deep.com")),
        ("very.deep.com/n1/n2/n3/repo:tag2", Some("*.deep.com")),
        (
            "not.very.deep.com/n1/n2/n3/repo:tag2",
            Some("*.very.deep.com"),
        ),
        ("this.does-not/match:anything", Some("")),
    ];
    for (image, want) in rows {
        let reference = ImageReference::Docker(
            Reference::parse_docker_transport(&format!("//{image}")).unwrap(),
        );
        let (scope, _) = policy.requirements_for(&reference);
        assert_eq!(scope.scope(), want, "{image}");
        let explanation = policy.explain(&reference);
        assert_eq!(explanation.matched, scope);
        assert!(explanation.candidates.last().unwrap().matched);
        assert_eq!(
            explanation.candidates.iter().filter(|c| c.matched).count(),
            1
        );
    }
    let oci = ImageReference::Oci {
        dir: "/x".into(),
        image: String::new(),
        resolved_dir: "/x".into(),
    };
    assert_eq!(policy.requirements_for(&oci).0, MatchedScope::Default);
}

#[test]
fn simple_requirements() {
    let p = policy(
        r#""a.com/ok":[{"type":"insecureAcceptAnything"}],"a.com/base":[{"type":"signedBaseLayer","baseLayerIdentity":{"type":"matchRepository"}}]"#,
    );
    assert!(decide(&p, "a.com/ok:1", &[]).is_allowed());
    let rejected = decide(&p, "busybox", &[]);
    assert_eq!(
        message(&rejected),
        "Running image docker://busybox:latest is rejected by policy."
    );
    assert_eq!(rejected.scope, MatchedScope::Default);
    assert_eq!(
        message(&decide(&p, "a.com/base:1", &[])),
        "signedBaseLayer not implemented yet!"
    );
}

#[test]
fn signed_by_outcomes() {
    let p = policy(
        r#""a.com/app":[{"type":"signedBy","keyType":"GPGKeys","keyData":"a2V5MQ==","signedIdentity":{"type":"matchExact"}}],
           "a.com/both":[{"type":"insecureAcceptAnything"},{"type":"reject"}],
           "a.com/empty":[{"type":"signedBy","keyType":"GPGKeys","keyData":""}],
           "a.com/x509":[{"type":"signedBy","keyType":"X509Certificates","keyData":"a2V5MQ=="}],
           "a.com/file":[{"type":"signedBy","keyType":"GPGKeys","keyPath":"/missing/key"}]"#,
    );
    let good = gpg("key1", "a.com/app:1", DIGEST);
    assert!(decide(&p, "a.com/app:1", std::slice::from_ref(&good)).is_allowed());
    assert_eq!(
        message(&decide(&p, "a.com/app:1", &[])),
        "A signature was required, but no signature exists"
    );
    assert_eq!(
        message(&decide(&p, "a.com/app:2", std::slice::from_ref(&good))),
        "Signature for identity \"a.com/app:1\" is not accepted"
    );
    let wrong_digest = gpg("key1", "a.com/app:1", OTHER_DIGEST);
    assert_eq!(
        message(&decide(
            &p,
            "a.com/app:1",
            std::slice::from_ref(&wrong_digest)
        )),
        format!("Signature for digest {OTHER_DIGEST} does not match")
    );
    let other_key = gpg("key2", "a.com/app:1", DIGEST);
    let two = decide(&p, "a.com/app:1", &[other_key.clone(), wrong_digest]);
    assert_eq!(
        message(&two),
        format!(
            "None of the signatures were accepted, reasons: signature by key key2 is not accepted; Signature for digest {OTHER_DIGEST} does not match"
        )
    );
    assert_eq!(two.rejection().unwrap().signatures.len(), 2);
    assert!(decide(&p, "a.com/app:1", &[other_key, good.clone()]).is_allowed());
    let both = decide(&p, "a.com/both:1", &[]);
    assert_eq!(both.rejection().unwrap().requirement_index, 2);
    assert_eq!(
        message(&decide(&p, "a.com/empty:1", std::slice::from_ref(&good))),
        "No public keys imported"
    );
    let x509 = decide(&p, "a.com/x509:1", std::slice::from_ref(&good));
    assert_eq!(
        message(&x509),
        "Unimplemented \"keyType\" value \"X509Certificates\""
    );
    assert_eq!(x509.rejection().unwrap().kind, RejectionKind::Other);
    assert_eq!(
        message(&decide(&p, "a.com/file:1", std::slice::from_ref(&good))),
        "open /missing/key: no such file or directory"
    );
    let invalid_payload = Signature::SimpleSigning(b"key1\nThis is not JSON".to_vec());
    let bad = decide(&p, "a.com/app:1", &[invalid_payload]);
    assert_eq!(
        bad.rejection().unwrap().kind,
        RejectionKind::InvalidSignature
    );
    // Sigstore attachments are invisible to signedBy.
    let attachment = Signature::Sigstore(SigstoreSignature {
        mime_type: crate::payload::COSIGN_SIGNATURE_MIME_TYPE.into(),
        payload: Vec::new(),
        annotations: Default::default(),
    });
    assert_eq!(
        message(&decide(&p, "a.com/app:1", &[attachment])),
        "A signature was required, but no signature exists"
    );
}

#[test]
fn sigstore_without_a_mechanism_fails_closed() {
    let p = policy(
        r#""a.com/app":[{"type":"sigstoreSigned","keyData":"YWJj","signedIdentity":{"type":"matchRepository"}}]"#,
    );
    let attachment = |mime: &str| {
        Signature::Sigstore(SigstoreSignature {
            mime_type: mime.into(),
            payload: Vec::new(),
            annotations: Default::default(),
        })
    };
    let signature = attachment(crate::payload::COSIGN_SIGNATURE_MIME_TYPE);
    let d = decide(&p, "a.com/app:1", &[signature]);
    assert_eq!(
        message(&d),
        "sigstore signature verification is not available in this build"
    );
    let d = decide(
        &p,
        "a.com/app:1",
        &[attachment("text/plain"), gpg("k", "a", DIGEST)],
    );
    assert_eq!(
        message(&d),
        "A signature was required, but no signature exists (1 non-sigstore signatures, 1 sigstore non-signature attachments)"
    );
}

#[test]
fn decisions_read_as_a_chain() {
    let p = policy(
        r#""a.com":[{"type":"insecureAcceptAnything"},{"type":"signedBy","keyType":"GPGKeys","keyData":"a2V5MQ=="}]"#,
    );
    let d = decide(&p, "a.com/app:1", &[]);
    assert_eq!(
        d.to_string(),
        "rejected by docker scope \"a.com\", requirement 2 of 2 (signedBy): A signature was required, but no signature exists"
    );
}

#[test]
fn key_files_are_read_once_per_evaluation() {
    let policy = policy(
        r#""example.com":[{"type":"signedBy","keyType":"GPGKeys","keyPath":"/keys/k1","signedIdentity":{"type":"matchRepository"}}]"#,
    );
    let reference =
        ImageReference::Docker(Reference::parse_docker_transport("//example.com/app:v1").unwrap());
    let digest = Digest::parse(DIGEST).unwrap();
    // Two signatures by another key, then one by /keys/k1: three checks.
    let signatures = [
        gpg("/keys/other", "example.com/app:v1", DIGEST),
        gpg("/keys/other", "example.com/app:v1", DIGEST),
        gpg("/keys/k1", "example.com/app:v1", DIGEST),
    ];
    // The key file holds its own name, which is what NamedKeys signs with.
    let files = InMemoryTrustFiles::new().with("/keys/k1", "/keys/k1");
    let evaluator = Evaluator {
        files: &files,
        simple_signing: Some(&NamedKeys),
        sigstore: None,
    };
    let image = Image {
        reference: &reference,
        manifest_digest: &digest,
        signatures: &signatures,
    };
    assert!(evaluator.evaluate(&policy, &image).is_allowed());
    assert_eq!(files.reads(), 1);
    // A new evaluation reads again: the file may have changed.
    assert!(evaluator.evaluate(&policy, &image).is_allowed());
    assert_eq!(files.reads(), 2);
}

/// A test double for bundles: a "bundle" is `key\ndigest`, accepted when
/// the requirement's keyData is that key; the legacy path is not used.
struct NamedBundles;
impl SigstoreVerifier for NamedBundles {
    fn verify(
        &self,
        _: &SigstoreSigned,
        _: &dyn TrustFiles,
        _: &SigstoreSignature,
    ) -> Result<(), SignatureRejection> {
        Err(SignatureRejection::invalid("legacy signature refused"))
    }

    fn verify_bundle(
        &self,
        requirement: &SigstoreSigned,
        _: &dyn TrustFiles,
        bundle: &[u8],
    ) -> Result<Vec<String>, SignatureRejection> {
        let text = std::str::from_utf8(bundle).map_err(|_| SignatureRejection::other("garbage"))?;
        let (key, digest) = text.split_once('\n').unwrap_or_default();
        match &requirement.trust {
            crate::SigstoreTrust::PublicKeys(crate::KeySet::Data(k)) if k == key.as_bytes() => {
                Ok(vec![digest.to_owned()])
            }
            _ => Err(SignatureRejection::invalid("wrong key")),
        }
    }
}

fn bundle(key: &str, digest: &str) -> Signature {
    Signature::Sigstore(SigstoreSignature {
        mime_type: crate::payload::SIGSTORE_BUNDLE_MIME_TYPE.into(),
        payload: format!("{key}\n{digest}").into_bytes(),
        annotations: Default::default(),
    })
}

fn decide_bundles(policy: &Policy, image: &str, signatures: &[Signature]) -> Decision {
    let reference =
        ImageReference::Docker(Reference::parse_docker_transport(&format!("//{image}")).unwrap());
    let digest = Digest::parse(DIGEST).unwrap();
    Evaluator {
        files: &InMemoryTrustFiles::new(),
        simple_signing: None,
        sigstore: Some(&NamedBundles),
    }
    .evaluate(
        policy,
        &Image {
            reference: &reference,
            manifest_digest: &digest,
            signatures,
        },
    )
}

/// keyData "abc" is `YWJj`.
fn bundle_policy(identity: &str) -> Policy {
    policy(&format!(
        r#""a.com":[{{"type":"sigstoreSigned","keyData":"YWJj","signedIdentity":{identity}}}]"#
    ))
}

#[test]
fn bundles_are_digest_bound_signatures_of_the_pulled_repository() {
    let good = bundle("abc", DIGEST);
    let repository = bundle_policy(r#"{"type":"matchRepository"}"#);
    assert!(decide_bundles(&repository, "a.com/app:1", std::slice::from_ref(&good)).is_allowed());
    assert!(
        decide_bundles(
            &repository,
            &format!("a.com/app@{DIGEST}"),
            std::slice::from_ref(&good)
        )
        .is_allowed()
    );

    let moved = decide_bundles(&repository, "a.com/app:1", &[bundle("abc", OTHER_DIGEST)]);
    assert_eq!(
        message(&moved),
        format!("bundle (digest-bound): Signature for digest {OTHER_DIGEST} does not match")
    );
    let wrong_key = decide_bundles(&repository, "a.com/app:1", &[bundle("xyz", DIGEST)]);
    assert_eq!(message(&wrong_key), "bundle (digest-bound): wrong key");
    let outcome = &wrong_key.rejection().unwrap().signatures[0];
    assert_eq!(outcome.format, "sigstore bundle");

    // One good signature of either kind is enough; a legacy one that fails
    // does not spoil a good bundle.
    let legacy = Signature::Sigstore(SigstoreSignature {
        mime_type: crate::payload::COSIGN_SIGNATURE_MIME_TYPE.into(),
        payload: Vec::new(),
        annotations: Default::default(),
    });
    assert!(
        decide_bundles(&repository, "a.com/app:1", &[legacy.clone(), good.clone()]).is_allowed()
    );
    let both_bad = decide_bundles(&repository, "a.com/app:1", &[legacy, bundle("xyz", DIGEST)]);
    assert!(message(&both_bad).starts_with("None of the signatures were accepted"));
}

#[test]
fn bundle_identity_follows_each_signed_identity_rule() {
    let good = [bundle("abc", DIGEST)];
    let cases = [
        (r#"{"type":"matchRepository"}"#, "a.com/app:1", true),
        (
            r#"{"type":"exactRepository","dockerRepository":"a.com/app"}"#,
            "a.com/app:1",
            true,
        ),
        (
            r#"{"type":"exactRepository","dockerRepository":"a.com/other"}"#,
            "a.com/app:1",
            false,
        ),
        (r#"{"type":"matchRepoDigestOrExact"}"#, "a.com/app:1", false),
        (
            r#"{"type":"matchRepoDigestOrExact"}"#,
            &format!("a.com/app@{DIGEST}"),
            false,
        ),
        (r#"{"type":"matchExact"}"#, "a.com/app:1", false),
        (
            r#"{"type":"exactReference","dockerReference":"a.com/app:1"}"#,
            "a.com/app:1",
            false,
        ),
        (
            r#"{"type":"remapIdentity","prefix":"a.com","signedPrefix":"b.com"}"#,
            "a.com/app:1",
            false,
        ),
    ];
    for (identity, image, allowed) in cases {
        let decision = decide_bundles(&bundle_policy(identity), image, &good);
        assert_eq!(
            decision.is_allowed(),
            allowed,
            "{identity} {image}: {decision}"
        );
        if !allowed {
            assert!(
                message(&decision).starts_with(
                    "bundle (digest-bound): Signature for identity \"a.com/app\" is not accepted"
                ),
                "{}",
                message(&decision)
            );
        }
    }
    // The default identity rule refuses a bundle too, as it refuses
    // cosign's repository-only payloads.
    let default = policy(r#""a.com":[{"type":"sigstoreSigned","keyData":"YWJj"}]"#);
    assert!(!decide_bundles(&default, "a.com/app:1", &good).is_allowed());
}

#[test]
fn a_verifier_without_bundle_support_fails_closed() {
    struct LegacyOnly;
    impl SigstoreVerifier for LegacyOnly {
        fn verify(
            &self,
            _: &SigstoreSigned,
            _: &dyn TrustFiles,
            _: &SigstoreSignature,
        ) -> Result<(), SignatureRejection> {
            Ok(())
        }
    }
    let reference =
        ImageReference::Docker(Reference::parse_docker_transport("//a.com/app:1").unwrap());
    let digest = Digest::parse(DIGEST).unwrap();
    let signatures = [bundle("abc", DIGEST)];
    let decision = Evaluator {
        files: &InMemoryTrustFiles::new(),
        simple_signing: None,
        sigstore: Some(&LegacyOnly),
    }
    .evaluate(
        &bundle_policy(r#"{"type":"matchRepository"}"#),
        &Image {
            reference: &reference,
            manifest_digest: &digest,
            signatures: &signatures,
        },
    );
    assert_eq!(
        message(&decision),
        "bundle (digest-bound): sigstore bundles cannot be verified by this build"
    );
}
