//! `signedIdentity`: does the reference a signature claims fit the image?
//!
//! The claimed reference comes from an authenticated payload, but is still
//! just a string: it is parsed with Docker normalisation, and anything that
//! does not parse matches nothing.

use criguard_reference::Reference;

use crate::model::ReferenceMatch;

impl ReferenceMatch {
    /// Whether a signature claiming `signed` is acceptable for an image whose
    /// reference is `image` (`None` for images with no Docker reference).
    pub fn matches(&self, image: Option<&Reference>, signed: &str) -> bool {
        let Ok(signed) = Reference::parse_normalized(signed) else {
            return false;
        };
        match self {
            Self::MatchExact => image.is_some_and(|image| exact(image, &signed)),
            Self::MatchRepoDigestOrExact => {
                image.is_some_and(|image| repo_digest_or_exact(image, &signed))
            }
            Self::MatchRepository => image.is_some_and(|image| image.name() == signed.name()),
            Self::ExactReference(intended) => exact(intended, &signed),
            Self::ExactRepository(intended) => intended.name() == signed.name(),
            Self::RemapIdentity {
                prefix,
                signed_prefix,
            } => {
                let Some(image) = image else { return false };
                if !name_has_prefix(image.name(), prefix) {
                    return repo_digest_or_exact(image, &signed);
                }
                match remap(image, prefix, signed_prefix) {
                    Some(remapped) => repo_digest_or_exact(&remapped, &signed),
                    None => false,
                }
            }
        }
    }
}

/// Same tag and digest exactly; a name-only reference on either side never
/// matches, since there would be nothing to compare.
fn exact(intended: &Reference, signed: &Reference) -> bool {
    !intended.is_name_only() && !signed.is_name_only() && intended == signed
}

/// A tagged image needs the exact reference signed; a digest-only image
/// needs the repository only (its digest is checked against the manifest
/// separately).
fn repo_digest_or_exact(image: &Reference, signed: &Reference) -> bool {
    if signed.is_name_only() {
        return false;
    }
    if image.tag().is_some() {
        image == signed
    } else if image.digest().is_some() {
        image.name() == signed.name()
    } else {
        false
    }
}

/// `prefix` covers `name` if it is the whole name or ends at a `/` of it.
pub(crate) fn name_has_prefix(name: &str, prefix: &str) -> bool {
    match name.strip_prefix(prefix) {
        Some("") => true,
        Some(rest) => rest.starts_with('/'),
        None => false,
    }
}

/// Rewrites the first occurrence of `prefix` in the full reference; the
/// result must already be canonical, or there is no match.
pub(crate) fn remap(image: &Reference, prefix: &str, signed_prefix: &str) -> Option<Reference> {
    let rewritten = image.to_string().replacen(prefix, signed_prefix, 1);
    Reference::parse_canonical(&rewritten).ok()
}

#[cfg(test)]
mod tests;
