//! The pipeline's image sources inside the decision service: an image it
//! already resolved, with signatures through the signature cache, and a
//! stored pull, with no registry at all.

use std::sync::Arc;

use criguard_policy::ImageReference;
use criguard_reference::Reference;
use criguard_registry::ImageSignatures;
use criguard_verification::{ImageSource, Resolved, SourceError};

use super::keys::{SignaturesKey, cached};
use super::{DecisionService, Image, RegistryAccess, Verified};

/// Where `verified`'s signatures are cached.
pub(super) fn signatures_key<R: RegistryAccess>(
    reference: &Reference,
    verified: &Verified<R>,
) -> SignaturesKey {
    SignaturesKey {
        source: verified
            .resolved
            .located
            .pulled_from
            .clone()
            .unwrap_or_else(|| reference.name().to_owned()),
        manifest: verified.manifest_digest().clone(),
        generation: verified.generation,
    }
}

/// A stored pull as the pipeline's source: the manifest the runtime
/// confirmed and the signatures kept, no registry.
pub(super) struct Stored {
    pub(super) located: criguard_verification::Located,
    pub(super) signatures: Arc<ImageSignatures>,
}

impl ImageSource for Stored {
    type Image = ();

    async fn resolve(&self, _: &ImageReference) -> Result<Resolved<()>, SourceError> {
        Ok(Resolved {
            located: self.located.clone(),
            image: (),
        })
    }

    async fn signatures(&self, (): &()) -> Result<Arc<ImageSignatures>, SourceError> {
        Ok(Arc::clone(&self.signatures))
    }
}

/// An image the service already resolved, as the pipeline's source: its
/// signatures come through the signature cache, read with the client that
/// resolved it.
pub(super) struct Known<'a, R: RegistryAccess> {
    pub(super) service: &'a DecisionService<R>,
    pub(super) verified: &'a Verified<R>,
    pub(super) key: SignaturesKey,
}

impl<R: RegistryAccess> ImageSource for Known<'_, R> {
    type Image = Image<R>;

    async fn resolve(&self, _: &ImageReference) -> Result<Resolved<Image<R>>, SourceError> {
        Ok((*self.verified.resolved).clone())
    }

    async fn signatures(&self, image: &Image<R>) -> Result<Arc<ImageSignatures>, SourceError> {
        let load = async {
            self.service.metrics.registry_fetch("signatures");
            self.verified.source.signatures(image).await
        };
        cached(
            &self.service.metrics,
            "signatures",
            &self.service.signatures,
            self.key.clone(),
            load,
        )
        .await
        .map(|(found, _)| found)
        .map_err(|e| (*e).clone())
    }
}
