//! What the sigstore integration tests share: one signature judged by the
//! policy engine with criguard's sigstore verifier, as a pull is once its
//! signatures are fetched.

use criguard_policy::{
    Decision, Evaluator, Image, ImageReference, Policy, Signature, SigstoreSignature, TrustFiles,
};
use criguard_reference::{Digest, Reference};
use criguard_sigstore::Verifier;
use serde_json::json;

/// Evaluates an image `reference` with `manifest_digest` whose only
/// signature is `signature`, under a policy whose default is `requirement`
/// alone; `files` holds the trust files the requirement names by path.
pub(crate) fn evaluate_one(
    requirement: &serde_json::Value,
    reference: &str,
    manifest_digest: &Digest,
    signature: SigstoreSignature,
    verifier: &Verifier,
    files: &dyn TrustFiles,
) -> Decision {
    let policy = json!({ "default": [requirement] }).to_string();
    let policy = Policy::from_bytes(policy.as_bytes(), "test").unwrap();
    let reference = ImageReference::Docker(Reference::parse_normalized(reference).unwrap());
    Evaluator {
        files,
        simple_signing: None,
        sigstore: Some(verifier),
    }
    .evaluate(
        &policy,
        &Image {
            reference: &reference,
            manifest_digest,
            signatures: &[Signature::Sigstore(signature)],
        },
    )
}

/// The rejection's message; an allowed image fails the test.
pub(crate) fn rejection(decision: &Decision) -> String {
    decision
        .rejection()
        .unwrap_or_else(|| panic!("allowed: {decision}"))
        .message
        .clone()
}
