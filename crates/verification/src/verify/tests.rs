//! The pipeline with an in-memory image source and real cryptography.

#![allow(clippy::unwrap_used)]

use std::sync::Mutex;

use criguard_policy::ImageName;
use criguard_registry::digest::sha256;
use criguard_sigstore::SigningKey;

use super::*;
use crate::{Located, Resolved, SourceError};

/// One image: its manifest digest, its signatures, and what was asked.
struct OneImage {
    digest: Digest,
    signatures: Vec<Signature>,
    /// registries.d's `use-sigstore-attachments` for it.
    attachments: bool,
    fail_resolve: bool,
    fail_signatures: bool,
    calls: Mutex<Vec<&'static str>>,
}

impl OneImage {
    fn new(signatures: Vec<Signature>) -> OneImage {
        OneImage {
            digest: sha256(b"manifest"),
            signatures,
            attachments: true,
            fail_resolve: false,
            fail_signatures: false,
            calls: Mutex::new(Vec::new()),
        }
    }

    fn calls(&self) -> Vec<&'static str> {
        self.calls.lock().unwrap().clone()
    }
}

fn unavailable() -> SourceError {
    criguard_registry::Error::ConnectionRefused {
        host: "registry.example".to_owned(),
    }
    .into()
}

impl ImageSource for OneImage {
    type Image = ();

    async fn resolve(&self, _: &ImageReference) -> Result<Resolved<()>, SourceError> {
        self.calls.lock().unwrap().push("resolve");
        if self.fail_resolve {
            return Err(unavailable());
        }
        Ok(Resolved {
            located: Located::digest(self.digest.clone()),
            image: (),
        })
    }

    async fn signatures(&self, _: &()) -> Result<Arc<ImageSignatures>, SourceError> {
        self.calls.lock().unwrap().push("signatures");
        if self.fail_signatures {
            return Err(unavailable());
        }
        Ok(Arc::new(ImageSignatures {
            signatures: self.signatures.clone(),
            lookaside_url: None,
            lookaside_count: 0,
            sigstore_attachments: self.attachments,
        }))
    }
}

const APP: &str = "registry.example/app";

fn image() -> ImageReference {
    match ImageName::parse(&format!("{APP}:v1")).unwrap() {
        ImageName::Docker(reference) => ImageReference::Docker(reference),
        ImageName::Oci { .. } => unreachable!(),
    }
}

fn policy(json: serde_json::Value) -> Arc<Policy> {
    Arc::new(Policy::from_bytes(json.to_string().as_bytes(), "test").unwrap())
}

/// A key on disk, a policy requiring it, and a signature by it over
/// `digest`.
struct Signed {
    _dir: tempfile::TempDir,
    policy: Arc<Policy>,
    signature: Signature,
}

fn signed(digest: &Digest) -> Signed {
    let dir = tempfile::tempdir().unwrap();
    let key = SigningKey::generate().unwrap();
    let path = dir.path().join("key.pub");
    std::fs::write(&path, key.public_key().unwrap().to_pem()).unwrap();
    let policy = policy(serde_json::json!({"default": [{
        "type": "sigstoreSigned",
        "keyPath": path,
        "signedIdentity": {"type": "matchRepository"},
    }]}));
    let signature = Signature::Sigstore(key.sign_image(APP, digest.as_str()).unwrap());
    Signed {
        _dir: dir,
        policy,
        signature,
    }
}

fn verifiers() -> Arc<Verifiers> {
    Arc::new(Verifiers::from_disk())
}

#[tokio::test]
async fn a_policy_that_reads_no_signatures_needs_no_source_unless_asked() {
    let accept = policy(serde_json::json!({"default": [{"type": "insecureAcceptAnything"}]}));
    let source = OneImage::new(Vec::new());
    let lazy = verify(
        &source,
        &accept,
        &image(),
        &verifiers(),
        Lookup::WhenSignaturesAreRead,
    )
    .await;
    assert!(lazy.is_allowed());
    assert!(lazy.located.is_none());
    assert!(source.calls().is_empty());
    let eager = verify(&source, &accept, &image(), &verifiers(), Lookup::Always).await;
    assert!(eager.is_allowed());
    assert_eq!(eager.manifest_digest(), Some(&source.digest));
    assert_eq!(source.calls(), ["resolve"], "no signatures are read");
    let reject = policy(serde_json::json!({"default": [{"type": "reject"}]}));
    let rejected = verify(&source, &reject, &image(), &verifiers(), Lookup::Always).await;
    assert!(!rejected.is_allowed());
    assert_eq!(
        rejected.to_text("docker://registry.example/app:v1"),
        format!(
            "rejected: docker://registry.example/app:v1\n  reason:    Running image \
             docker://registry.example/app:v1 is rejected by policy.\n  manifest:  {}\n  \
             signatures found: 0\n  policy:    global default\n  failed:    requirement 1 of 1 \
             (reject)\n",
            source.digest
        )
    );
}

#[tokio::test]
async fn a_good_signature_allows_and_its_absence_rejects_with_hints() {
    let digest = sha256(b"manifest");
    let signed = signed(&digest);
    let source = OneImage::new(vec![signed.signature.clone()]);
    let allowed = verify(
        &source,
        &signed.policy,
        &image(),
        &verifiers(),
        Lookup::WhenSignaturesAreRead,
    )
    .await;
    assert!(allowed.is_allowed(), "{allowed:?}");
    assert_eq!(allowed.signatures_found, 1);
    assert!(allowed.notes.is_empty());
    assert_eq!(source.calls(), ["resolve", "signatures"]);
    let json = allowed.to_json("docker://registry.example/app:v1");
    assert_eq!(json["verdict"], "allowed");
    assert_eq!(json["digest"], digest.as_str());
    assert_eq!(json["signatures"], serde_json::json!([]));

    let mut unsigned = OneImage::new(Vec::new());
    unsigned.attachments = false;
    let rejected = verify(
        &unsigned,
        &signed.policy,
        &image(),
        &verifiers(),
        Lookup::Always,
    )
    .await;
    assert!(!rejected.is_allowed());
    let rejection = rejected.decision().unwrap().rejection().unwrap();
    assert_eq!(
        rejection.message,
        "A signature was required, but no signature exists"
    );
    assert_eq!(rejected.notes.len(), 1);
    assert!(rejected.notes[0].contains("use-sigstore-attachments"));
    let json = rejected.to_json("x");
    assert_eq!(json["notes"], serde_json::json!(rejected.notes));
    assert_eq!(json["requirement"]["type"], "sigstoreSigned");
    assert!(rejected.to_text("x").contains("  note:      registries.d"));

    // The signature of another manifest does not count.
    let moved = OneImage {
        digest: sha256(b"another manifest"),
        ..OneImage::new(vec![signed.signature])
    };
    let rejected = verify(
        &moved,
        &signed.policy,
        &image(),
        &verifiers(),
        Lookup::Always,
    )
    .await;
    let text = rejected.to_text("x");
    assert!(text.contains("signature 1 (sigstore): "), "{text}");
    assert!(!rejected.is_allowed());
}

#[tokio::test]
async fn a_source_that_fails_is_a_rejection_that_keeps_what_was_learnt() {
    let signed = signed(&sha256(b"manifest"));
    let down = OneImage {
        fail_resolve: true,
        ..OneImage::new(Vec::new())
    };
    let failed = verify(
        &down,
        &signed.policy,
        &image(),
        &verifiers(),
        Lookup::Always,
    )
    .await;
    assert!(!failed.is_allowed());
    assert!(failed.located.is_none());
    assert!(matches!(&failed.outcome, Err(VerifyError::Source(_))));
    assert_eq!(
        failed.to_text("x"),
        "rejected: x\n  reason:    registry.example: connection refused\n"
    );
    let json = failed.to_json("x");
    assert_eq!(json["kind"], "error");
    assert_eq!(json["reason"], "registry.example: connection refused");

    let half = OneImage {
        fail_signatures: true,
        ..OneImage::new(Vec::new())
    };
    let failed = verify(
        &half,
        &signed.policy,
        &image(),
        &verifiers(),
        Lookup::Always,
    )
    .await;
    assert!(!failed.is_allowed());
    assert_eq!(failed.manifest_digest(), Some(&half.digest));
    assert!(failed.to_text("x").contains("  manifest:  sha256:"));
}
