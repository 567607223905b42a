//! The edge that talks to registries: resolving an image to the manifest
//! that would run, fetching its sigstore attachments, and pushing one, with
//! the limits and checks containers/image applies (4 MiB manifests and
//! signatures, digests verified on every body, the exact `.sig` manifest
//! Content-Type).
//!
//! The policy engine never sees a registry: it gets the manifest digest
//! and the signatures this crate returns. What this crate decides is only
//! *which bytes* those are, so every path that could substitute bytes (a
//! mirror, a manifest list, a tag) ends in a digest check.
//!
//! Token authentication and pushes are oci-client's; manifest and blob GETs
//! are made here (see `transport`) because oci-client gives no size limit
//! and no Content-Type for manifests, and repeats its authentication
//! exchange for every blob. A token exchange's outcome is reused for a
//! short while per repository.
//!
//! Plain HTTP is used only for registries that registries.conf marks
//! `insecure = true`, and only after HTTPS (with certificate checks off, as
//! `insecure` also means) failed for a reason other than a time-out.

mod auth;
pub mod digest;
mod error;
mod lookaside;
mod manifest;
mod platform;
mod registry;
mod signatures;
mod transport;

pub use auth::{AuthFile, Credentials, default_paths as default_auth_file_paths};
pub use error::Error;
pub use manifest::{
    DOCKER_LIST, DOCKER_V2S1, DOCKER_V2S1_SIGNED, DOCKER_V2S2, OCI_CONFIG, OCI_INDEX, OCI_MANIFEST,
};
pub use platform::Platform;
pub use registry::{DEADLINE_TIMEOUTS, DEFAULT_TIMEOUT, Registry, RegistryConfig, ResolvedImage};
pub use signatures::ImageSignatures;

/// containers/image's `iolimits.MaxManifestBodySize`, also applied to `.sig`
/// manifests.
pub const MAX_MANIFEST_SIZE: usize = 4 << 20;
/// containers/image's `iolimits.MaxSignatureBodySize`, for each attachment
/// (the policy engine's limit for a stored signature blob).
pub use criguard_policy::MAX_SIGNATURE_SIZE;
