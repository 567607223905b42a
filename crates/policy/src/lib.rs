//! containers-policy.json(5) with containers/image's verdicts.
//!
//! The crate is a sans-IO core: it takes policy bytes, an image reference,
//! a manifest digest and the signatures found, and returns a verdict. File
//! reading, registry access and cryptography are supplied by the caller
//! through small traits ([`TrustFiles`], [`SimpleSigningVerifier`],
//! [`SigstoreVerifier`]), so the same engine serves the CLI, the CRI proxy and
//! the tests.
//!
//! A policy that fails to load is an error, never a policy: callers must
//! reject every image when they have none.

mod blob;
mod evaluate;
mod identity;
mod json;
mod lookup;
mod model;
mod parse;
pub mod payload;
mod transport;
mod trust_files;

pub use blob::MAX_SIGNATURE_SIZE;
pub use evaluate::{
    BUNDLE_REASON_PREFIX, Decision, Evaluator, Image, Rejection, RejectionKind, Signature,
    SignatureOutcome, SignatureRejection, SigstoreSignature, SigstoreVerifier,
    SimpleSigningVerifier, Verdict,
};
pub use json::Problem;
pub use lookup::{Candidate, Explanation, MatchedScope};
pub use model::{
    FileOrData, Fulcio, GpgKeys, KeySet, KeyType, Pki, Policy, ReferenceMatch, Requirement,
    RequirementEntry, Requirements, SignedBy, SigstoreSigned, SigstoreTrust, TransportScopes,
};
pub use parse::{DEFAULT_POLICY, MAX_POLICY_SIZE};
pub use transport::{ImageName, ImageNameError, ImageReference, Transport};
pub use trust_files::{InMemoryTrustFiles, TrustFiles};

/// Why a policy could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// The text is not a valid policy; every problem found is listed.
    #[error("invalid policy in {origin:?}: {}", first_message(.problems))]
    Invalid {
        origin: String,
        problems: Vec<Problem>,
    },
}

fn first_message(problems: &[Problem]) -> String {
    match problems {
        [] => "unknown problem".to_owned(),
        [only] => only.to_string(),
        [first, rest @ ..] => format!("{first} (and {} more)", rest.len()),
    }
}

impl PolicyError {
    pub fn problems(&self) -> &[Problem] {
        match self {
            Self::Invalid { problems, .. } => problems,
        }
    }
}

impl Policy {
    /// Parses policy.json bytes; `origin` names them in messages (usually the
    /// file path).
    pub fn from_bytes(bytes: &[u8], origin: &str) -> Result<Self, PolicyError> {
        let invalid = |problems| PolicyError::Invalid {
            origin: origin.to_owned(),
            problems,
        };
        let text = std::str::from_utf8(bytes).map_err(|e| {
            invalid(vec![Problem {
                line: 1,
                column: 1,
                path: String::new(),
                message: format!("policy is not UTF-8 text: {e}"),
            }])
        })?;
        parse::parse_policy(text).map_err(invalid)
    }
}
