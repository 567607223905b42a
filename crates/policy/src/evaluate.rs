//! The sans-IO evaluator: an image (reference, manifest digest, the
//! signatures found) and a policy in, a verdict out.
//!
//! Cryptography is plugged in through [`SimpleSigningVerifier`] and
//! [`SigstoreVerifier`] so that this crate decides *what* must hold while the
//! signature crates decide whether bytes were signed by a key. Everything
//! after the cryptographic check (payload, digest, `signedIdentity`) happens
//! here, for both signature formats. Any error while deciding is a
//! rejection.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use criguard_reference::Digest;
use serde::Serialize;

use crate::lookup::MatchedScope;
use crate::model::{
    GpgKeys, KeyType, Policy, ReferenceMatch, Requirement, SignedBy, SigstoreSigned,
};
use crate::payload::{
    COSIGN_SIGNATURE_MIME_TYPE, PayloadFormat, SIGSTORE_BUNDLE_MIME_TYPE, parse_payload,
};
use crate::transport::ImageReference;
use crate::trust_files::{ReadOnce, TrustFiles};

/// A signature found for an image, tagged with its format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signature {
    /// A GPG "simple signing" blob (an OpenPGP signed message).
    SimpleSigning(Vec<u8>),
    /// A sigstore attachment (one layer of a cosign `.sig` manifest).
    Sigstore(SigstoreSignature),
}

impl Signature {
    fn format_name(&self) -> &'static str {
        match self {
            Self::SimpleSigning(_) => "simple-signing",
            Self::Sigstore(s) if s.is_bundle() => "sigstore bundle",
            Self::Sigstore(_) => "sigstore",
        }
    }
}

/// A sigstore attachment: the layer's media type, its bytes (the payload)
/// and its annotations (signature, certificate, chain, Rekor bundle).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigstoreSignature {
    pub mime_type: String,
    pub payload: Vec<u8>,
    pub annotations: BTreeMap<String, String>,
}

impl SigstoreSignature {
    /// A sigstore bundle (cosign 3) rather than a `.sig` attachment: its
    /// `payload` is the bundle's JSON, and it names no image.
    pub fn is_bundle(&self) -> bool {
        self.mime_type == SIGSTORE_BUNDLE_MIME_TYPE
    }

    /// What `sigstoreSigned` reads: `.sig` signature layers and bundles.
    fn is_signature(&self) -> bool {
        self.mime_type == COSIGN_SIGNATURE_MIME_TYPE || self.is_bundle()
    }
}

/// Starts every reason a bundle is refused for, so that reports and audit
/// lines say which kind of signature it was and that it names a digest,
/// not an image.
pub const BUNDLE_REASON_PREFIX: &str = "bundle (digest-bound): ";

/// How containers/image classifies a failure. CRI-O reports the first two
/// kinds as `SignatureValidationFailed`; the third covers I/O and
/// configuration errors met while deciding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RejectionKind {
    PolicyRequirement,
    InvalidSignature,
    Other,
}

/// Why one signature, or one requirement, was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureRejection {
    pub kind: RejectionKind,
    pub message: String,
}

impl SignatureRejection {
    pub fn policy(message: impl Into<String>) -> Self {
        Self {
            kind: RejectionKind::PolicyRequirement,
            message: message.into(),
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self {
            kind: RejectionKind::InvalidSignature,
            message: message.into(),
        }
    }

    pub fn other(message: impl Into<String>) -> Self {
        Self {
            kind: RejectionKind::Other,
            message: message.into(),
        }
    }
}

/// Verifies GPG simple-signing blobs.
pub trait SimpleSigningVerifier {
    /// Checks that `blob` is a valid signed message by one of the keys in
    /// `keyrings` (each a binary or armoured keyring), and returns the
    /// signed payload. "No public keys imported" and every cryptographic or
    /// key-validity failure are the implementation's to report.
    fn verify(&self, keyrings: &[Vec<u8>], blob: &[u8]) -> Result<Vec<u8>, SignatureRejection>;
}

/// Verifies the cryptography of sigstore signatures.
pub trait SigstoreVerifier {
    /// Checks that `signature.payload` is signed as `requirement` demands
    /// (public keys, Fulcio certificate and Rekor SET, or PKI), loading its
    /// trust material through `files`.
    fn verify(
        &self,
        requirement: &SigstoreSigned,
        files: &dyn TrustFiles,
        signature: &SigstoreSignature,
    ) -> Result<(), SignatureRejection>;

    /// Checks a sigstore bundle (the JSON bytes of one) as `requirement`
    /// demands: its DSSE envelope verifies with the requirement's trust and
    /// holds a cosign signature statement. Returns the digests
    /// (`sha256:<hex>`) the statement signs; the engine compares them with
    /// the manifest and applies `signedIdentity`.
    fn verify_bundle(
        &self,
        _requirement: &SigstoreSigned,
        _files: &dyn TrustFiles,
        _bundle: &[u8],
    ) -> Result<Vec<String>, SignatureRejection> {
        Err(SignatureRejection::other(
            "sigstore bundles cannot be verified by this build",
        ))
    }
}

/// An image as the evaluator sees it. The manifest digest is the sha256 of
/// the exact manifest that will be used (for a multi-arch image, the
/// platform's manifest, never the index).
#[derive(Debug, Clone, Copy)]
pub struct Image<'a> {
    pub reference: &'a ImageReference,
    pub manifest_digest: &'a Digest,
    pub signatures: &'a [Signature],
}

/// The cryptographic mechanisms and file access for one evaluation.
#[derive(Clone, Copy)]
pub struct Evaluator<'a> {
    pub files: &'a dyn TrustFiles,
    pub simple_signing: Option<&'a dyn SimpleSigningVerifier>,
    pub sigstore: Option<&'a dyn SigstoreVerifier>,
}

/// What happened to one signature under one requirement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SignatureOutcome {
    /// 1-based position among the image's signatures.
    pub index: usize,
    pub format: &'static str,
    pub accepted: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Why an image was rejected: the scope, the requirement, and each
/// signature's fate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rejection {
    /// 1-based position of the failing requirement in its list.
    pub requirement_index: usize,
    pub requirement_count: usize,
    pub requirement_type: &'static str,
    pub kind: RejectionKind,
    /// containers/image's text for this failure.
    pub message: String,
    pub signatures: Vec<SignatureOutcome>,
}

/// The verdict for an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    Rejected(Rejection),
}

/// A verdict with the scope that selected the requirements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub scope: MatchedScope,
    pub verdict: Verdict,
}

impl Decision {
    pub fn is_allowed(&self) -> bool {
        matches!(self.verdict, Verdict::Allowed)
    }

    pub fn rejection(&self) -> Option<&Rejection> {
        match &self.verdict {
            Verdict::Allowed => None,
            Verdict::Rejected(r) => Some(r),
        }
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.verdict {
            Verdict::Allowed => write!(f, "allowed by {}", self.scope),
            Verdict::Rejected(r) => write!(
                f,
                "rejected by {}, requirement {} of {} ({}): {}",
                self.scope, r.requirement_index, r.requirement_count, r.requirement_type, r.message
            ),
        }
    }
}

impl Evaluator<'_> {
    /// Decides whether `image` may run under `policy`. Requirements are
    /// checked in order and all must hold; the first failure is the verdict.
    pub fn evaluate(&self, policy: &Policy, image: &Image<'_>) -> Decision {
        let files = ReadOnce::new(self.files);
        Evaluator {
            files: &files,
            ..*self
        }
        .evaluate_with_files(policy, image)
    }

    fn evaluate_with_files(&self, policy: &Policy, image: &Image<'_>) -> Decision {
        let (scope, requirements) = policy.requirements_for(image.reference);
        let count = requirements.len();
        if count == 0 {
            return Decision {
                scope,
                verdict: Verdict::Rejected(Rejection {
                    requirement_index: 0,
                    requirement_count: 0,
                    requirement_type: "",
                    kind: RejectionKind::PolicyRequirement,
                    message: "List of verification policy requirements must not be empty".into(),
                    signatures: Vec::new(),
                }),
            };
        }
        for (i, entry) in requirements.iter().enumerate() {
            if let Err((failure, signatures)) = self.check(&entry.requirement, image) {
                return Decision {
                    scope,
                    verdict: Verdict::Rejected(Rejection {
                        requirement_index: i + 1,
                        requirement_count: count,
                        requirement_type: entry.requirement.type_name(),
                        kind: failure.kind,
                        message: failure.message,
                        signatures,
                    }),
                };
            }
        }
        Decision {
            scope,
            verdict: Verdict::Allowed,
        }
    }

    fn check(
        &self,
        requirement: &Requirement,
        image: &Image<'_>,
    ) -> Result<(), (SignatureRejection, Vec<SignatureOutcome>)> {
        match requirement {
            Requirement::InsecureAcceptAnything => Ok(()),
            Requirement::Reject => Err((
                SignatureRejection::policy(format!(
                    "Running image {} is rejected by policy.",
                    image.reference.image_name()
                )),
                Vec::new(),
            )),
            Requirement::SignedBaseLayer { .. } => Err((
                SignatureRejection::policy("signedBaseLayer not implemented yet!"),
                Vec::new(),
            )),
            Requirement::SignedBy(signed_by) => {
                let candidates = image
                    .signatures
                    .iter()
                    .enumerate()
                    .filter(|(_, s)| matches!(s, Signature::SimpleSigning(_)));
                decide_over(candidates, 0, 0, |signature| match signature {
                    Signature::SimpleSigning(blob) => self.check_simple(signed_by, image, blob),
                    Signature::Sigstore(_) => Err(SignatureRejection::other("not a GPG signature")),
                })
            }
            Requirement::SigstoreSigned(sigstore) => {
                let non_sigstore = image
                    .signatures
                    .iter()
                    .filter(|s| !matches!(s, Signature::Sigstore(_)))
                    .count();
                let non_signature = image
                    .signatures
                    .iter()
                    .filter(|s| matches!(s, Signature::Sigstore(a) if !a.is_signature()))
                    .count();
                let candidates = image
                    .signatures
                    .iter()
                    .enumerate()
                    .filter(|(_, s)| matches!(s, Signature::Sigstore(a) if a.is_signature()));
                decide_over(
                    candidates,
                    non_sigstore,
                    non_signature,
                    |signature| match signature {
                        Signature::Sigstore(bundle) if bundle.is_bundle() => self
                            .check_bundle(sigstore, image, &bundle.payload)
                            .map_err(|e| SignatureRejection {
                                message: format!("{BUNDLE_REASON_PREFIX}{}", e.message),
                                ..e
                            }),
                        Signature::Sigstore(attachment) => {
                            self.check_sigstore(sigstore, image, attachment)
                        }
                        Signature::SimpleSigning(_) => {
                            Err(SignatureRejection::other("not a sigstore signature"))
                        }
                    },
                )
            }
        }
    }

    fn check_simple(
        &self,
        requirement: &SignedBy,
        image: &Image<'_>,
        blob: &[u8],
    ) -> Result<(), SignatureRejection> {
        if requirement.key_type != KeyType::GpgKeys {
            return Err(SignatureRejection::other(format!(
                "Unimplemented \"keyType\" value {:?}",
                requirement.key_type.as_str()
            )));
        }
        let keyrings = match &requirement.keys {
            GpgKeys::Path(path) => vec![self.read(path)?],
            GpgKeys::Paths(paths) => paths
                .iter()
                .map(|p| self.read(p))
                .collect::<Result<_, _>>()?,
            GpgKeys::Data(data) => vec![data.clone()],
        };
        let verifier = self.simple_signing.ok_or_else(|| {
            SignatureRejection::other("GPG signature verification is not available in this build")
        })?;
        let payload = verifier.verify(&keyrings, blob)?;
        check_payload(
            &payload,
            PayloadFormat::Atomic,
            &requirement.signed_identity,
            image,
        )
    }

    fn check_sigstore(
        &self,
        requirement: &SigstoreSigned,
        image: &Image<'_>,
        signature: &SigstoreSignature,
    ) -> Result<(), SignatureRejection> {
        let verifier = self.sigstore.ok_or_else(|| {
            SignatureRejection::other(
                "sigstore signature verification is not available in this build",
            )
        })?;
        verifier.verify(requirement, self.files, signature)?;
        check_payload(
            &signature.payload,
            PayloadFormat::Cosign,
            &requirement.signed_identity,
            image,
        )
    }

    /// A bundle signs digests, not a reference: it is read as a signature
    /// claiming the pulled image's repository, which is what a legacy
    /// `cosign sign` payload claims, so each `signedIdentity` rule judges it
    /// as it judges those (`matchRepository` accepts it, the exact rules
    /// refuse it, `remapIdentity` rewrites first).
    fn check_bundle(
        &self,
        requirement: &SigstoreSigned,
        image: &Image<'_>,
        bundle: &[u8],
    ) -> Result<(), SignatureRejection> {
        let verifier = self.sigstore.ok_or_else(|| {
            SignatureRejection::other(
                "sigstore signature verification is not available in this build",
            )
        })?;
        let digests = verifier.verify_bundle(requirement, self.files, bundle)?;
        if !digests.iter().any(|d| d == image.manifest_digest.as_str()) {
            return Err(SignatureRejection::policy(format!(
                "Signature for digest {} does not match",
                digests.first().map_or("(none)", String::as_str)
            )));
        }
        let Some(reference) = image.reference.docker_reference() else {
            return Err(SignatureRejection::policy(
                "A sigstore bundle names no image, and this image has no repository to read it as a signature of",
            ));
        };
        let claimed = reference.name();
        if !requirement
            .signed_identity
            .matches(Some(reference), claimed)
        {
            return Err(SignatureRejection::policy(format!(
                "Signature for identity {claimed:?} is not accepted (a sigstore bundle is bound to the digest only and read as claiming the pulled repository)"
            )));
        }
        Ok(())
    }

    fn read(&self, path: &Path) -> Result<Vec<u8>, SignatureRejection> {
        self.files.read(path).map_err(SignatureRejection::other)
    }
}

/// After the cryptography: the payload must parse, name this manifest, and
/// claim an identity the policy accepts, checked in that order.
fn check_payload(
    payload: &[u8],
    format: PayloadFormat,
    signed_identity: &ReferenceMatch,
    image: &Image<'_>,
) -> Result<(), SignatureRejection> {
    let payload = parse_payload(payload, format).map_err(SignatureRejection::invalid)?;
    if payload.docker_manifest_digest.as_str() != image.manifest_digest.as_str() {
        return Err(SignatureRejection::policy(format!(
            "Signature for digest {} does not match",
            payload.docker_manifest_digest
        )));
    }
    if !signed_identity.matches(
        image.reference.docker_reference(),
        &payload.docker_reference,
    ) {
        return Err(SignatureRejection::policy(format!(
            "Signature for identity {:?} is not accepted",
            payload.docker_reference
        )));
    }
    Ok(())
}

/// Any one accepted signature satisfies a requirement. With none, the
/// reason is containers/image's: "no signature exists", the single
/// rejection as it is, or a summary of all of them.
fn decide_over<'s>(
    candidates: impl Iterator<Item = (usize, &'s Signature)>,
    non_sigstore: usize,
    non_signature: usize,
    mut check: impl FnMut(&Signature) -> Result<(), SignatureRejection>,
) -> Result<(), (SignatureRejection, Vec<SignatureOutcome>)> {
    let mut outcomes = Vec::new();
    let mut rejections = Vec::new();
    for (i, signature) in candidates {
        match check(signature) {
            Ok(()) => return Ok(()),
            Err(rejection) => {
                outcomes.push(SignatureOutcome {
                    index: i + 1,
                    format: signature.format_name(),
                    accepted: false,
                    reason: Some(rejection.message.clone()),
                });
                rejections.push(rejection);
            }
        }
    }
    let failure = match rejections.len() {
        0 if non_sigstore + non_signature > 0 => SignatureRejection::policy(format!(
            "A signature was required, but no signature exists ({non_sigstore} non-sigstore signatures, {non_signature} sigstore non-signature attachments)"
        )),
        0 => SignatureRejection::policy("A signature was required, but no signature exists"),
        1 => rejections.remove(0),
        _ => SignatureRejection::policy(format!(
            "None of the signatures were accepted, reasons: {}",
            rejections
                .iter()
                .map(|r| r.message.as_str())
                .collect::<Vec<_>>()
                .join("; ")
        )),
    };
    Err((failure, outcomes))
}

#[cfg(test)]
mod tests;
