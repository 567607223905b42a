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
//! Reads are made here (see `transport`): one ping per registry chooses the
//! scheme and says how to authenticate (`challenge`), the token exchange
//! follows it, and manifests and blobs are read with a size limit and their
//! Content-Type, which oci-client does not give. Every request of a
//! `Registry` goes through one shared HTTP client per TLS policy
//! (`clients`), so the system trust store is read only when a certificate
//! is to be checked. A token exchange's outcome is reused for a short while
//! per repository. Pushes are oci-client's, from a client made on the first
//! push.
//!
//! Plain HTTP is used only for registries that registries.conf marks
//! `insecure = true`, and only after HTTPS (with certificate checks off, as
//! `insecure` also means) failed for a reason other than a time-out.

mod auth;
mod challenge;
mod clients;
pub mod digest;
mod error;
mod lookaside;
mod manifest;
mod platform;
mod referrers;
mod registry;
mod signatures;
mod system;
mod transport;

pub use auth::{AuthFile, Credentials, default_paths as default_auth_file_paths};
pub use error::{Error, ErrorKind};
pub use manifest::{
    DOCKER_LIST, DOCKER_V2S1, DOCKER_V2S1_SIGNED, DOCKER_V2S2, OCI_CONFIG, OCI_INDEX, OCI_MANIFEST,
};
pub use platform::Platform;
pub use referrers::referrers_tag;
pub use registry::{DEADLINE_TIMEOUTS, DEFAULT_TIMEOUT, Registry, RegistryConfig, ResolvedImage};
pub use signatures::ImageSignatures;
pub use system::SystemConfigError;

/// containers/image's `iolimits.MaxManifestBodySize`, also applied to `.sig`
/// manifests.
pub const MAX_MANIFEST_SIZE: usize = 4 << 20;
/// containers/image's `iolimits.MaxSignatureBodySize`, for each attachment
/// (the policy engine's limit for a stored signature blob).
pub use criguard_policy::MAX_SIGNATURE_SIZE;
/// The most layers of a `.sig` manifest read for one image: the bound
/// containers/image puts on lookaside signatures, so that each place
/// signatures come from yields at most 128. containers/image itself reads
/// every layer a `.sig` manifest lists (only the 4 MiB manifest limit bounds
/// them, at some 20,000 layers of 4 MiB each); criguard refuses a manifest
/// that lists more, before reading any of them, so that a registry cannot
/// make one check fetch and verify thousands of blobs. cosign adds one layer
/// per signing, and no signing practice comes near 128.
pub const MAX_SIGSTORE_ATTACHMENTS: usize = criguard_registries::MAX_LOOKASIDE_SIGNATURES;

/// The most bytes of signatures read for one image, lookaside and
/// attachments together. Each may be 4 MiB ([`MAX_SIGNATURE_SIZE`]), so
/// without a total, 127 lookaside files and 128 attachments could hold a
/// gigabyte in memory for a single check. Real signatures are small (a
/// cosign payload is a few hundred bytes, a GPG signature about one KiB), so
/// even 255 of them stay under a MiB; 16 MiB still admits four signatures
/// of the largest size any one may have. An image over it is refused, not
/// judged on the signatures read so far.
pub const MAX_SIGNATURE_BYTES_PER_IMAGE: usize = 16 << 20;
