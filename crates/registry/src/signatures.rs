//! All the signatures of one image, from where registries.d says they are.

use criguard_policy::Signature;
use criguard_registries::{LookasideAccess, RegistriesD};

use crate::registry::{Registry, ResolvedImage};
use crate::{Error, MAX_SIGNATURE_BYTES_PER_IMAGE};

/// The signatures found for an image, and where they were looked for, so
/// that a rejection for "no signature" can say where none was.
#[derive(Debug, Clone)]
pub struct ImageSignatures {
    /// Lookaside signatures first, then sigstore attachments: the order
    /// containers/image numbers them in.
    pub signatures: Vec<Signature>,
    /// The URL of the first lookaside signature (password redacted).
    pub lookaside_url: Option<String>,
    /// How many of `signatures` came from the lookaside store.
    pub lookaside_count: usize,
    /// Whether registries.d let sigstore attachments be looked for.
    pub sigstore_attachments: bool,
}

impl ImageSignatures {
    /// Hints for the two usual causes of "no signature exists" under a
    /// requirement of `requirement_type`: sigstore attachments that
    /// registries.d does not turn on (containers/image only looks for them
    /// where it does, and so does criguard), and GPG signatures that are not
    /// where registries.d's `lookaside` says.
    pub fn notes(&self, requirement_type: &str) -> Vec<String> {
        let mut notes = Vec::new();
        if requirement_type == "sigstoreSigned" && !self.sigstore_attachments {
            notes.push(
                "registries.d does not set use-sigstore-attachments for this image, so its \
                 sigstore signatures were not looked for"
                    .to_owned(),
            );
        }
        if requirement_type == "signedBy"
            && self.lookaside_count == 0
            && let Some(url) = &self.lookaside_url
        {
            notes.push(format!(
                "no GPG signature at {url} (registries.d's lookaside for this image decides \
                 where they are read from)"
            ));
        }
        notes
    }
}

/// The bytes of signatures one image may still bring in: lookaside files
/// and attachments are counted against one total,
/// [`MAX_SIGNATURE_BYTES_PER_IMAGE`], so that the memory a check holds does
/// not grow with how many signatures a store or registry serves.
#[derive(Debug)]
pub(crate) struct SignatureBudget {
    /// The image, as the error names it.
    image: String,
    used: u64,
}

impl SignatureBudget {
    pub(crate) fn new(image: String) -> SignatureBudget {
        SignatureBudget { image, used: 0 }
    }

    /// Refuses, before anything is fetched, signatures whose sizes (as a
    /// manifest declares them) would not fit. A manifest that overstates
    /// them is refused too: fail closed, the sizes are the signer's.
    pub(crate) fn check_declared(&self, declared: u64) -> Result<(), Error> {
        self.check(self.used.saturating_add(declared))
    }

    /// Counts `bytes` that were read and are kept.
    pub(crate) fn charge(&mut self, bytes: usize) -> Result<(), Error> {
        self.used = self
            .used
            .saturating_add(u64::try_from(bytes).unwrap_or(u64::MAX));
        self.check(self.used)
    }

    fn check(&self, total: u64) -> Result<(), Error> {
        if total > MAX_SIGNATURE_BYTES_PER_IMAGE as u64 {
            return Err(Error::SignaturesTooLarge {
                image: self.image.clone(),
                total,
                limit: MAX_SIGNATURE_BYTES_PER_IMAGE,
            });
        }
        Ok(())
    }
}

impl Registry {
    /// Reads the lookaside store registries.d names for the repository the
    /// image came from (its mirror, maybe), then, where registries.d turns
    /// them on, the sigstore attachments next to it, and where
    /// `criguard-sigstore-bundles` turns them on, the sigstore bundles that
    /// refer to it. All count against one [`MAX_SIGNATURE_BYTES_PER_IMAGE`].
    pub async fn signatures(
        &self,
        registries_d: &RegistriesD,
        image: &ResolvedImage,
    ) -> Result<ImageSignatures, Error> {
        let lookaside = registries_d.lookaside_base(&image.source, LookasideAccess::Read)?;
        let lookaside_url = lookaside
            .signature_url(&image.manifest_digest, 1)
            .ok()
            .map(|u| u.to_string());
        let mut budget = SignatureBudget::new(image.pinned().to_string());
        let mut signatures = self
            .lookaside_signatures_within(&lookaside, &image.manifest_digest, &mut budget)
            .await?;
        let lookaside_count = signatures.len();
        let sigstore_attachments = registries_d.use_sigstore_attachments(&image.source);
        if sigstore_attachments {
            signatures.extend(
                self.sigstore_attachments_within(image, &mut budget)
                    .await?
                    .into_iter()
                    .map(Signature::Sigstore),
            );
        }
        // criguard's extension, opt-in per scope: cosign 3's bundles.
        if registries_d.sigstore_bundles(&image.source) {
            signatures.extend(
                self.sigstore_bundles_within(image, &mut budget)
                    .await?
                    .into_iter()
                    .map(Signature::Sigstore),
            );
        }
        Ok(ImageSignatures {
            signatures,
            lookaside_url,
            lookaside_count,
            sigstore_attachments,
        })
    }
}
