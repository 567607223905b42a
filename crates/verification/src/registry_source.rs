//! A registry, as containers/image reaches it, as an [`ImageSource`].

use std::sync::Arc;

use criguard_policy::ImageReference;
use criguard_registries::RegistriesD;
use criguard_registry::{ImageSignatures, Platform, Registry, ResolvedImage};

use crate::{ImageSource, Located, Resolved, SourceError};

/// Images in registries: registries.conf decides where the manifest is
/// read from (mirrors, rewrites), registries.d where the signatures are
/// (lookaside stores, sigstore attachments next to the manifest's source).
#[derive(Clone)]
pub struct RegistrySource {
    registry: Arc<Registry>,
    registries_d: Arc<RegistriesD>,
    platform: Platform,
}

impl RegistrySource {
    /// Resolves multi-arch images to `platform`'s instance.
    pub fn new(
        registry: Arc<Registry>,
        registries_d: Arc<RegistriesD>,
        platform: Platform,
    ) -> RegistrySource {
        RegistrySource {
            registry,
            registries_d,
            platform,
        }
    }

    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }
}

/// What a registry resolution reports.
pub(crate) fn located(image: &ResolvedImage) -> Located {
    Located {
        manifest_digest: image.manifest_digest.clone(),
        index_digest: image.index_digest.clone(),
        platform: image.platform.clone(),
        pulled_from: (image.source != image.reference).then(|| image.source.to_string()),
        config_digest: image.config_digest(),
        media_type: Some(image.media_type.clone()),
        size: u64::try_from(image.manifest.len()).ok(),
    }
}

impl ImageSource for RegistrySource {
    type Image = Arc<ResolvedImage>;

    async fn resolve(
        &self,
        image: &ImageReference,
    ) -> Result<Resolved<Arc<ResolvedImage>>, SourceError> {
        let ImageReference::Docker(reference) = image else {
            return Err(SourceError::Unsupported(format!(
                "{image} is not a registry image"
            )));
        };
        let resolved = self.registry.resolve(reference, &self.platform).await?;
        Ok(Resolved {
            located: located(&resolved),
            image: Arc::new(resolved),
        })
    }

    async fn signatures(
        &self,
        image: &Arc<ResolvedImage>,
    ) -> Result<Arc<ImageSignatures>, SourceError> {
        Ok(Arc::new(
            self.registry.signatures(&self.registries_d, image).await?,
        ))
    }
}
