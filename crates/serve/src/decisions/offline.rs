//! Creates decided offline, from the stored evidence of their pulls.

use std::sync::Arc;

use criguard_policy::ImageReference;
use criguard_reference::{Digest, Reference};
use criguard_registry::ImageSignatures;
use criguard_verification::{ImageSource, Lookup, VerifyError, verify};

use super::sources::{Known, Stored, signatures_key};
use super::{DecisionService, RegistryAccess, Trace, Verified, refusal};
use crate::{LoadedPolicy, Refusal, RuntimeView};

impl<R: RegistryAccess> DecisionService<R> {
    /// The signatures an allowed pull was decided with, for the store:
    /// from the signature cache (they were just read), read again if it
    /// dropped them. `None`, logged, if they cannot be had: the pull goes
    /// on, only not remembered across restarts.
    pub(super) async fn evidence(
        &self,
        reference: &Reference,
        verified: &Verified<R>,
    ) -> Option<Arc<ImageSignatures>> {
        let known = Known {
            service: self,
            verified,
            key: signatures_key(reference, verified),
        };
        known
            .signatures(&verified.resolved.image)
            .await
            .inspect_err(|e| {
                tracing::warn!(error = %e, "the verified signatures cannot be kept for restarts");
            })
            .ok()
    }

    /// Decides a create on the stored evidence of its pull, offline:
    /// `None` when there is no usable record (none, corrupt, or the
    /// runtime no longer holds that image under that repository digest),
    /// so that the caller goes to the registry.
    ///
    /// Records carry no registry-configuration generation, and one read
    /// under an older registries.d is used all the same: registries.d only
    /// says where signatures are looked for, not which ones count. Every
    /// stored signature is verified again, cryptographically, against the
    /// manifest digest the runtime confirms, under the current policy (its
    /// keys, identities, scopes); a signature read from elsewhere than
    /// today's configuration would look proves no less. What the policy
    /// rejects here is retried at the registry.
    pub(super) async fn decide_stored<T: RuntimeView>(
        &self,
        runtime: &T,
        image_id: &str,
        reference: &Reference,
        policy: &Arc<LoadedPolicy>,
        image: &ImageReference,
        trace: &mut Trace,
    ) -> Option<Result<(), Refusal>> {
        let repository = reference.name().to_owned();
        let store = Arc::clone(&self.store);
        let id = image_id.to_owned();
        // File reads (up to MAX_RECORD_BYTES) off the async threads.
        let stored = tokio::task::spawn_blocking(move || store.get(&id, &repository)).await;
        let stored = match stored {
            Ok(Ok(stored)) => stored,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "the store of verified pulls cannot be read");
                None
            }
            Err(e) => {
                tracing::warn!(error = %e, "reading the store of verified pulls failed");
                None
            }
        };
        self.metrics.cache("stored-pull", stored.is_some());
        let stored = stored?;
        // The runtime (local) confirms the image is still the one whose
        // pull was verified: same ID, and the repository digest recorded
        // for this repository is the stored manifest's (or its index's).
        let held = runtime.image(image_id).await.ok().flatten()?;
        let located = &stored.located;
        let recorded = held
            .repo_digests
            .iter()
            .filter_map(|d| d.split_once('@'))
            .filter(|(name, _)| {
                Reference::parse_normalized(name).is_ok_and(|r| r.name() == reference.name())
            })
            .filter_map(|(_, digest)| Digest::parse(digest).ok())
            .any(|d| d == located.manifest_digest || located.index_digest.as_ref() == Some(&d));
        if !recorded || !located.is_image(&held.id) {
            tracing::info!(
                image_id,
                repository = reference.name(),
                "the runtime's image no longer matches its stored pull; asking the registry"
            );
            return None;
        }
        trace.digest = Some(located.manifest_digest.clone());
        let source = Stored {
            located: located.clone(),
            signatures: Arc::new(ImageSignatures {
                signatures: stored.signatures,
                lookaside_url: None,
                lookaside_count: 0,
                sigstore_attachments: true,
            }),
        };
        let decided = verify(
            &source,
            &policy.policy,
            image,
            &self.verifiers,
            Lookup::Always,
        )
        .await;
        trace.signatures = decided.signatures_found;
        trace.check = decided.timings.check;
        match &decided.outcome {
            Err(VerifyError::Source(e)) => return Some(Err(Refusal::Source(e.clone()))),
            Err(other) => return Some(Err(Refusal::Unverifiable(other.to_string()))),
            Ok(_) => {}
        }
        if !decided.is_allowed() {
            return Some(Err(refusal(Arc::new(decided), Arc::clone(policy))));
        }
        trace.reason = "signature";
        Some(Ok(()))
    }
}
