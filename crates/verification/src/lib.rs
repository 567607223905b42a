//! The one verification pipeline behind `criguard verify` and
//! `criguard serve`: an image source, a policy and the trust files it names
//! in; a decision with its evidence out.
//!
//! [`verify`] is where a verdict is made. It looks up the requirements the
//! policy applies to the image, resolves the image to the manifest that
//! would run through an [`ImageSource`] (a registry, an OCI layout, or the
//! daemon's record of a pull), reads the signatures registries.d lets it
//! look for when a requirement reads signatures, and runs the policy engine
//! with the real sigstore and GPG verifiers ([`Verifiers`]). Everything it
//! learnt on the way is one [`Verification`], which the CLI prints and the
//! daemon logs and turns into its refusals, so the two cannot tell a
//! different story about the same image.
//!
//! Fail closed: an error anywhere (a registry that does not answer, a
//! layout that does not parse, an evaluation that could not run) is a
//! [`Verification`] that is not allowed, with the error as its reason.

mod evidence;
mod oci_layout;
mod registry_source;
mod source;
mod trust_files;
mod verifiers;
mod verify;

pub use evidence::{Located, Timings, Verification, VerifyError};
pub use oci_layout::OciLayout;
pub use registry_source::RegistrySource;
pub use source::{ImageSource, Resolved, SourceError, SourceErrorKind};
pub use trust_files::{FsTrustFiles, MAX_TRUST_FILE_SIZE};
pub use verifiers::{TrustedRootFileError, Verifiers, read_trusted_root};
pub use verify::{Lookup, verify};
