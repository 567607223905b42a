//! The policy engine with its cryptography plugged in.

use std::sync::Arc;

use criguard_policy::{Decision, Evaluator, Image, ImageReference, Policy, Signature, TrustFiles};
use criguard_reference::Digest;

use crate::FsTrustFiles;

/// The sigstore and GPG verifiers and the trust files, made once and
/// shared by every evaluation (the GPG verifier keeps its last keyring
/// import, so reuse saves the import).
pub struct Verifiers {
    sigstore: criguard_sigstore::Verifier,
    gpg: criguard_simple_signing::Verifier,
    files: Arc<dyn TrustFiles + Send + Sync>,
}

impl Verifiers {
    /// Verifiers that read trust files with `files`.
    pub fn new(files: Arc<dyn TrustFiles + Send + Sync>) -> Verifiers {
        Verifiers {
            sigstore: criguard_sigstore::Verifier::new(),
            gpg: criguard_simple_signing::Verifier::new(),
            files,
        }
    }

    /// Verifiers that read trust files from disk, as CRI-O does.
    pub fn from_disk() -> Verifiers {
        Verifiers::new(Arc::new(FsTrustFiles))
    }

    /// The policy engine's verdict. CPU work (a keyring import takes
    /// milliseconds): async callers run it on a blocking thread.
    pub fn evaluate(
        &self,
        policy: &Policy,
        reference: &ImageReference,
        manifest_digest: &Digest,
        signatures: &[Signature],
    ) -> Decision {
        Evaluator {
            files: self.files.as_ref(),
            simple_signing: Some(&self.gpg),
            sigstore: Some(&self.sigstore),
        }
        .evaluate(
            policy,
            &Image {
                reference,
                manifest_digest,
                signatures,
            },
        )
    }
}
