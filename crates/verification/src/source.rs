//! Where an image's manifest and signatures come from.

use std::future::Future;
use std::sync::Arc;

use criguard_policy::ImageReference;
use criguard_registry::ImageSignatures;

use crate::Located;

/// Something that can say which manifest an image name would run, and
/// which signatures that manifest has: a registry (with registries.d and
/// registries.conf), an OCI layout, the daemon's caches in front of a
/// registry, an in-memory fake in tests.
///
/// The pipeline asks for signatures only when a requirement reads them,
/// as containers/image only fetches them then.
pub trait ImageSource: Sync {
    /// The source's own record of a resolved image, handed back to
    /// [`ImageSource::signatures`] (a registry needs to know which mirror
    /// served the manifest; a layout needs nothing).
    type Image: Send + Sync;

    /// The manifest `image` would run: for a multi-arch image the
    /// platform's instance, never the index; every body digest-checked.
    fn resolve(
        &self,
        image: &ImageReference,
    ) -> impl Future<Output = Result<Resolved<Self::Image>, SourceError>> + Send;

    /// Every signature of the resolved manifest, and where they were
    /// looked for.
    fn signatures(
        &self,
        image: &Self::Image,
    ) -> impl Future<Output = Result<Arc<ImageSignatures>, SourceError>> + Send;
}

/// A resolution: the facts the evidence reports, and the source's record.
#[derive(Debug, Clone)]
pub struct Resolved<I> {
    pub located: Located,
    pub image: I,
}

/// Why a source could not answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SourceError {
    /// A registry (or a lookaside store) failed; its kind tells a 401
    /// from a time-out from a 5xx.
    #[error(transparent)]
    Registry(Arc<criguard_registry::Error>),
    /// An OCI layout on disk is missing, unreadable or malformed.
    #[error("{0}")]
    Layout(String),
    /// The source cannot serve this kind of image (an OCI layout name
    /// given to a registry).
    #[error("{0}")]
    Unsupported(String),
}

impl From<criguard_registry::Error> for SourceError {
    fn from(error: criguard_registry::Error) -> SourceError {
        SourceError::Registry(Arc::new(error))
    }
}

/// The kind of a [`SourceError`], for metrics and hints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SourceErrorKind {
    Registry(criguard_registry::ErrorKind),
    Layout,
    Unsupported,
}

impl SourceErrorKind {
    /// A fixed label for metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            SourceErrorKind::Registry(kind) => kind.as_str(),
            SourceErrorKind::Layout => "layout",
            SourceErrorKind::Unsupported => "unsupported",
        }
    }
}

impl SourceError {
    pub fn kind(&self) -> SourceErrorKind {
        match self {
            SourceError::Registry(e) => SourceErrorKind::Registry(e.kind()),
            SourceError::Layout(_) => SourceErrorKind::Layout,
            SourceError::Unsupported(_) => SourceErrorKind::Unsupported,
        }
    }
}
