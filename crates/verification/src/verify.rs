//! The pipeline: requirements, resolution, signatures, verdict.

use std::sync::Arc;
use std::time::Instant;

use criguard_policy::{Decision, ImageReference, Policy, Signature};
use criguard_reference::Digest;
use criguard_registry::ImageSignatures;

use crate::{ImageSource, Timings, Verification, Verifiers, VerifyError};

/// When the image is resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// Always: `criguard verify` reports the manifest, and an image that
    /// cannot be resolved is rejected as a pull of it would fail.
    Always,
    /// Only when a requirement reads signatures: the daemon decides
    /// `insecureAcceptAnything` and `reject` without contacting a registry
    /// (the runtime's own pull follows anyway).
    WhenSignaturesAreRead,
}

/// Decides whether `image` may run under `policy`, with the manifest and
/// signatures `source` gives, and says how it got there.
///
/// Signatures are only read when the requirements that apply read them, as
/// containers/image only fetches them then. The evaluation runs on a
/// blocking thread: GPG keyring imports and RSA take milliseconds, and
/// async callers forward other calls meanwhile.
pub async fn verify<S: ImageSource>(
    source: &S,
    policy: &Arc<Policy>,
    image: &ImageReference,
    verifiers: &Arc<Verifiers>,
    lookup: Lookup,
) -> Verification {
    let reads_signatures = policy.requirements_for(image).1.verify_signatures();
    let mut timings = Timings::default();
    let evidence = |located, outcome, timings| Verification {
        located,
        signatures_found: 0,
        notes: Vec::new(),
        outcome,
        timings,
    };
    if !reads_signatures && lookup == Lookup::WhenSignaturesAreRead {
        // These requirements never read the digest; the evaluator's
        // signature needs one.
        let unread = criguard_registry::digest::sha256(b"");
        let decision = verifiers.evaluate(policy, image, &unread, &[]);
        return evidence(None, Ok(decision), timings);
    }
    let started = Instant::now();
    let resolved = source.resolve(image).await;
    timings.resolve = started.elapsed();
    let resolved = match resolved {
        Ok(resolved) => resolved,
        Err(e) => return evidence(None, Err(e.into()), timings),
    };
    let located = resolved.located;
    let found = if reads_signatures {
        let fetching = Instant::now();
        let found = source.signatures(&resolved.image).await;
        timings.signatures = fetching.elapsed();
        match found {
            Ok(found) => Some(found),
            Err(e) => return evidence(Some(located), Err(e.into()), timings),
        }
    } else {
        None
    };
    let checking = Instant::now();
    let digest = located.manifest_digest.clone();
    let outcome = evaluate_blocking(verifiers, policy, image, digest, found.clone()).await;
    timings.check = checking.elapsed();
    let mut verification = evidence(Some(located), outcome, timings);
    if let Some(found) = found {
        verification.signatures_found = found.signatures.len();
        if let Some(rejection) = verification.decision().and_then(|d| d.rejection()) {
            verification.notes = found.notes(rejection.requirement_type);
        }
    }
    verification
}

async fn evaluate_blocking(
    verifiers: &Arc<Verifiers>,
    policy: &Arc<Policy>,
    image: &ImageReference,
    digest: Digest,
    found: Option<Arc<ImageSignatures>>,
) -> Result<Decision, VerifyError> {
    let verifiers = Arc::clone(verifiers);
    let policy = Arc::clone(policy);
    let image = image.clone();
    tokio::task::spawn_blocking(move || {
        let signatures: &[Signature] = found.as_deref().map_or(&[], |f| &f.signatures);
        verifiers.evaluate(&policy, &image, &digest, signatures)
    })
    .await
    .map_err(|e| VerifyError::Evaluation(e.to_string()))
}

#[cfg(test)]
mod tests;
