//! Images criguard did not see pulled: the runtime says which digest of
//! the repository an image ID is, and the registry serves that digest.

use criguard_reference::{Digest, Reference};

use super::{DecisionService, RegistryAccess, Verified};
use crate::{Refusal, RuntimeView};

impl<R: RegistryAccess> DecisionService<R> {
    /// For an image criguard did not see being pulled (pulled before it
    /// started, or by someone else): the runtime says which digest of the
    /// repository it is, and the registry serves that digest's signatures.
    pub(super) async fn locate<T: RuntimeView>(
        &self,
        runtime: &T,
        id: &str,
        reference: &Reference,
        generation: u64,
    ) -> Result<Verified<R>, Refusal> {
        let image = runtime.image(id).await.map_err(|status| {
            if status.code() == tonic::Code::Unavailable {
                self.metrics.runtime_unavailable();
            }
            Refusal::Runtime(status)
        })?;
        let Some(image) = image else {
            return Err(Refusal::Unverifiable(format!(
                "the runtime has no image {id:?}"
            )));
        };
        let repository = reference.name();
        let digest = image
            .repo_digests
            .iter()
            .filter_map(|d| d.split_once('@'))
            .filter(|(name, _)| {
                Reference::parse_normalized(name).is_ok_and(|r| r.name() == repository)
            })
            .find_map(|(_, digest)| Digest::parse(digest).ok());
        let Some(digest) = digest else {
            return Err(Refusal::Unverifiable(format!(
                "the runtime does not record image {id:?} as coming from {repository} (its \
                 repository digests: {}), so its signatures cannot be found",
                image.repo_digests.join(", ")
            )));
        };
        let (key, source) = self.source_for(None, generation).await?;
        let resolved = self
            .resolve(&key, &source, &reference.with_digest(digest.clone()))
            .await?;
        // The repository digest may name an index, and the runtime may
        // have picked another instance of it than criguard would: the
        // manifest verified must be the image that runs.
        if !resolved.located.is_image(&image.id) {
            return Err(Refusal::Unverifiable(format!(
                "the runtime's image {:?} is not the manifest criguard resolved for {} ({}, \
                 config {}): the runtime runs a different instance of the image, so its \
                 signatures cannot be checked",
                image.id,
                reference.with_digest(digest),
                resolved.located.manifest_digest,
                resolved
                    .located
                    .config_digest
                    .as_ref()
                    .map_or_else(|| "unknown".to_owned(), ToString::to_string),
            )));
        }
        Ok(Verified {
            resolved,
            source,
            generation,
            signatures: None,
        })
    }
}
