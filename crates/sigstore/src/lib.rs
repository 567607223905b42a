//! Sans-IO verification of sigstore (cosign) signatures, with
//! containers/image's verdicts and wording.
//!
//! [`Verifier`] plugs into the policy engine as its
//! [`criguard_policy::SigstoreVerifier`]: given a `sigstoreSigned`
//! requirement, a way to read the files it names, and one signature
//! attachment, it decides whether the payload was signed by a trusted key:
//! a configured public key (optionally logged in Rekor), a Fulcio
//! certificate logged in Rekor, or a certificate from the user's own CA.
//! The payload's contents (digest, identity) are the engine's to check.
//!
//! The same requirement also verifies sigstore bundles, cosign 3's
//! signatures ([`bundle`], [`dsse`], [`statement`]): a DSSE envelope over an
//! in-toto statement naming the image's digest.
//!
//! [`cosign_key`] reads and writes cosign's encrypted private keys, for
//! `criguard keygen` and `criguard sign`.

pub mod bundle;
mod bundle_verifier;
pub mod bundle_writer;
mod certificate;
pub mod cosign_key;
pub mod dsse;
mod pem;
mod proto_json;
mod public_key;
mod rekor;
mod rekor_v2;
pub mod statement;
pub mod timestamp;
mod trust_cache;
pub mod trusted_root;
mod verifier;

pub use cosign_key::{CosignKeyError, SigningKey, cosign_payload};
pub use public_key::{KeyAlgorithm, PublicKey};
pub use rekor::{SetEntry, verify_set};
pub use trusted_root::{TrustedRoot, TrustedRootError};
pub use verifier::{
    BUNDLE_ANNOTATION, CERTIFICATE_ANNOTATION, CHAIN_ANNOTATION, SIGNATURE_ANNOTATION, Verifier,
};
