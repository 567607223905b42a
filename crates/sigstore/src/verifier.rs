//! The `sigstoreSigned` check for one signature, in containers/image's
//! order: load the trust material, find the annotations, establish which
//! key may have signed (directly, through Rekor, or through a certificate),
//! then check the signature over the payload.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use criguard_policy::payload::decode_go_base64;
use criguard_policy::{
    FileOrData, Fulcio, KeySet, Pki, SignatureRejection, SigstoreSignature, SigstoreSigned,
    SigstoreTrust, SigstoreVerifier, TrustFiles,
};
use rustls_pki_types::UnixTime;

use crate::certificate::{self, PkiIdentity};
use crate::public_key::{KeyAlgorithm, PublicKey};
use crate::rekor;
use crate::trust_cache::TrustCache;
use crate::trusted_root::TrustedRoot;

/// The base64 signature over the payload.
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// The Rekor SET ("bundle").
pub const BUNDLE_ANNOTATION: &str = "dev.sigstore.cosign/bundle";
/// The signing certificate (PEM).
pub const CERTIFICATE_ANNOTATION: &str = "dev.sigstore.cosign/certificate";
/// Intermediates and root (PEM), last one ignored.
pub const CHAIN_ANNOTATION: &str = "dev.sigstore.cosign/chain";

/// Verifies sigstore signatures. PKI certificates are checked at the
/// verifier's clock, which is the system clock unless a test fixes it.
/// Clones share one memo of parsed trust material ([`TrustCache`]), so a
/// key or CA pool is parsed once however many signatures it checks.
#[derive(Debug, Clone, Default)]
pub struct Verifier {
    now: Option<SystemTime>,
    pub(crate) trust: TrustCache,
    /// The operator's trusted root, when configured: what lets bundles with
    /// Rekor v2 entries and RFC 3161 timestamps be verified. Without it they
    /// are refused, and nothing else changes.
    trusted_root: Option<Arc<TrustedRoot>>,
}

impl Verifier {
    pub fn new() -> Self {
        Self::default()
    }

    /// A verifier whose clock is fixed, so certificate validity can be
    /// tested at chosen times.
    pub fn at(now: SystemTime) -> Self {
        Self {
            now: Some(now),
            ..Self::default()
        }
    }

    /// The same verifier, with the operator's trusted root (read once, at
    /// start, from the file criguard's config or `--trusted-root` names).
    #[must_use]
    pub fn with_trusted_root(mut self, root: Arc<TrustedRoot>) -> Self {
        self.trusted_root = Some(root);
        self
    }

    pub(crate) fn trusted_root(&self) -> Option<&TrustedRoot> {
        self.trusted_root.as_deref()
    }

    pub(crate) fn now(&self) -> UnixTime {
        let now = self.now.unwrap_or_else(SystemTime::now);
        UnixTime::since_unix_epoch(
            now.duration_since(SystemTime::UNIX_EPOCH)
                .unwrap_or_default(),
        )
    }
}

/// The trust material of one requirement, loaded for one signature, with
/// the part of the requirement that says what to check it against.
pub(crate) enum TrustRoot<'r> {
    PublicKeys {
        keys: Vec<PublicKey>,
        rekor: Option<Vec<PublicKey>>,
    },
    Fulcio {
        ca: Vec<Vec<u8>>,
        rekor: Vec<PublicKey>,
        fulcio: &'r Fulcio,
    },
    Pki {
        roots: Vec<Vec<u8>>,
        intermediates: Vec<Vec<u8>>,
        pki: &'r Pki,
    },
}

impl SigstoreVerifier for Verifier {
    fn verify(
        &self,
        requirement: &SigstoreSigned,
        files: &dyn TrustFiles,
        signature: &SigstoreSignature,
    ) -> Result<(), SignatureRejection> {
        let trust = load_trust_root(&self.trust, requirement, files, false)?;
        let signature_base64 = annotation(signature, SIGNATURE_ANNOTATION)?;
        let payload = &signature.payload;
        let keys = match trust {
            TrustRoot::PublicKeys { keys, rekor: None } => keys,
            TrustRoot::PublicKeys {
                keys,
                rekor: Some(rekor_keys),
            } => vec![logged_key(keys, &rekor_keys, signature, signature_base64)?],
            TrustRoot::Fulcio { ca, rekor, fulcio } => {
                vec![verify_keyless(
                    &ca,
                    &rekor,
                    fulcio,
                    signature,
                    signature_base64,
                )?]
            }
            TrustRoot::Pki {
                roots,
                intermediates,
                pki,
            } => {
                let certificate = annotation(signature, CERTIFICATE_ANNOTATION)?;
                let chain = signature.annotations.get(CHAIN_ANNOTATION);
                let identity = PkiIdentity {
                    subject_email: pki.subject_email.as_deref(),
                    subject_hostname: pki.subject_hostname.as_deref(),
                };
                let key = certificate::verify_pki(
                    &roots,
                    &intermediates,
                    &identity,
                    self.now(),
                    certificate.as_bytes(),
                    chain.map(|c| c.as_bytes()),
                )
                .map_err(SignatureRejection::invalid)?;
                vec![key]
            }
        };
        verify_payload(&keys, payload, signature_base64)
    }

    fn verify_bundle(
        &self,
        requirement: &SigstoreSigned,
        files: &dyn TrustFiles,
        bundle: &[u8],
    ) -> Result<Vec<String>, SignatureRejection> {
        crate::bundle_verifier::verify(self, requirement, files, bundle)
    }
}

/// Keys with Rekor keys: the first configured key whose SET verifies and
/// names it is the only key the payload may be signed with.
fn logged_key(
    keys: Vec<PublicKey>,
    rekor_keys: &[PublicKey],
    signature: &SigstoreSignature,
    signature_base64: &str,
) -> Result<PublicKey, SignatureRejection> {
    let set = annotation(signature, BUNDLE_ANNOTATION)?;
    let mut failures = Vec::new();
    for key in keys {
        match rekor::verify_set(
            rekor_keys,
            set,
            key.to_pem().as_bytes(),
            signature_base64,
            &signature.payload,
        ) {
            Ok(_) => return Ok(key),
            Err(e) => failures.push(e),
        }
    }
    Err(SignatureRejection::invalid(format!(
        "No public key verified against the RekorSET: {}",
        failures.join(", ")
    )))
}

/// Fulcio: the SET binds certificate, signature and payload and gives the
/// time at which the certificate must have been valid.
fn verify_keyless(
    ca: &[Vec<u8>],
    rekor_keys: &[PublicKey],
    fulcio: &Fulcio,
    signature: &SigstoreSignature,
    signature_base64: &str,
) -> Result<PublicKey, SignatureRejection> {
    let set = annotation(signature, BUNDLE_ANNOTATION)?;
    let certificate = annotation(signature, CERTIFICATE_ANNOTATION)?;
    let chain = signature.annotations.get(CHAIN_ANNOTATION);
    let entry = rekor::verify_set(
        rekor_keys,
        set,
        certificate.as_bytes(),
        signature_base64,
        &signature.payload,
    )
    .map_err(SignatureRejection::invalid)?;
    let integrated_time = u64::try_from(entry.integrated_time).map_err(|_| {
        SignatureRejection::invalid(format!(
            "Rekor SET integratedTime {} is before 1970",
            entry.integrated_time
        ))
    })?;
    certificate::verify_fulcio(
        ca,
        &fulcio.oidc_issuer,
        &fulcio.subject_email,
        UnixTime::since_unix_epoch(Duration::from_secs(integrated_time)),
        certificate.as_bytes(),
        chain.map(|c| c.as_bytes()),
    )
    .map_err(SignatureRejection::invalid)
}

/// The signature over the payload must verify with one of `keys`.
fn verify_payload(
    keys: &[PublicKey],
    payload: &[u8],
    signature_base64: &str,
) -> Result<(), SignatureRejection> {
    if keys.is_empty() {
        return Err(SignatureRejection::other(
            "Need at least one public key to verify the sigstore payload, but got 0",
        ));
    }
    let signature = decode_go_base64(signature_base64)
        .map_err(|e| SignatureRejection::invalid(format!("base64 decoding: {e}")))?;
    let mut failures = Vec::new();
    for key in keys {
        match key.verify(payload, &signature) {
            Ok(()) => return Ok(()),
            Err(e) => failures.push(e),
        }
    }
    Err(SignatureRejection::invalid(format!(
        "cryptographic signature verification failed: {}",
        failures.join(", ")
    )))
}

fn annotation<'s>(
    signature: &'s SigstoreSignature,
    key: &str,
) -> Result<&'s str, SignatureRejection> {
    signature
        .annotations
        .get(key)
        .map(String::as_str)
        .ok_or_else(|| SignatureRejection::other(format!("missing {key} annotation")))
}

/// The requirement's keys, CA pools and Rekor keys, read through `files`
/// as containers/image reads them (for every signature) and parsed through
/// `parsed`, which parses each distinct file content once.
/// `rekor_ed25519` lets Rekor keys be Ed25519 (Rekor v2 checkpoint keys)
/// for bundles, where such a key can only count through a checkpoint of
/// the operator's trusted root; for `.sig` signatures they must be ECDSA,
/// as containers/image requires.
pub(crate) fn load_trust_root<'r>(
    parsed: &TrustCache,
    requirement: &'r SigstoreSigned,
    files: &dyn TrustFiles,
    rekor_ed25519: bool,
) -> Result<TrustRoot<'r>, SignatureRejection> {
    if let SigstoreTrust::Pki(pki) = &requirement.trust {
        // The policy parser refuses both; a requirement built in code must
        // not slip past it into accepting any certificate that chains, or
        // one without the SET it was given Rekor keys for.
        if requirement.rekor_public_keys.is_some() {
            return Err(SignatureRejection::other(
                "Internal inconsistency: PKI specified with a Rekor public key",
            ));
        }
        if pki.subject_email.is_none() && pki.subject_hostname.is_none() {
            return Err(SignatureRejection::other(
                "Internal inconsistency: PKI specified without subjectEmail or subjectHostname",
            ));
        }
    }
    let rekor = requirement
        .rekor_public_keys
        .as_ref()
        .map(|set| load_rekor_keys(parsed, set, files, rekor_ed25519))
        .transpose()?;
    match &requirement.trust {
        SigstoreTrust::PublicKeys(set) => {
            let keys = load_keys(parsed, set, files, "public key", |_, _| Ok(()))?;
            Ok(TrustRoot::PublicKeys { keys, rekor })
        }
        SigstoreTrust::Fulcio(fulcio) => {
            let ca = parsed.lenient_pool(&load_file_or_data(&fulcio.ca, files)?);
            if ca.is_empty() {
                return Err(SignatureRejection::other(
                    "error loading Fulcio CA certificates",
                ));
            }
            let rekor = rekor.ok_or_else(|| {
                SignatureRejection::other(
                    "Internal inconsistency: Fulcio CA specified without a Rekor public key",
                )
            })?;
            Ok(TrustRoot::Fulcio { ca, rekor, fulcio })
        }
        SigstoreTrust::Pki(pki) => {
            let roots = parsed.lenient_pool(&load_file_or_data(&pki.ca_roots, files)?);
            if roots.is_empty() {
                return Err(SignatureRejection::other(
                    "error loading PKI CA Roots certificates",
                ));
            }
            let intermediates = match &pki.ca_intermediates {
                Some(source) => parsed
                    .strict_list(&load_file_or_data(source, files)?)
                    .map_err(|e| {
                        SignatureRejection::other(format!(
                            "loading trusted intermediate certificates: {e}"
                        ))
                    })?,
                None => Vec::new(),
            };
            Ok(TrustRoot::Pki {
                roots,
                intermediates,
                pki,
            })
        }
    }
}

/// Rekor keys: parsed like public keys, and each must be ECDSA, checked
/// key by key in order as containers/image does.
fn load_rekor_keys(
    parsed: &TrustCache,
    set: &KeySet,
    files: &dyn TrustFiles,
    ed25519: bool,
) -> Result<Vec<PublicKey>, SignatureRejection> {
    load_keys(parsed, set, files, "Rekor public key", |i, key| {
        if key.algorithm().is_ecdsa() || (ed25519 && key.algorithm() == KeyAlgorithm::Ed25519) {
            Ok(())
        } else {
            Err(SignatureRejection::other(format!(
                "Rekor public key {i} is not using ECDSA"
            )))
        }
    })
}

/// Every key of `set`, each parsed and then `check`ed in order; the first
/// failure fails the requirement, naming the key by its 1-based position as
/// containers/image does.
fn load_keys(
    parsed: &TrustCache,
    set: &KeySet,
    files: &dyn TrustFiles,
    what: &str,
    check: impl Fn(usize, &PublicKey) -> Result<(), SignatureRejection>,
) -> Result<Vec<PublicKey>, SignatureRejection> {
    load_key_set(set, files)?
        .iter()
        .zip(1..)
        .map(|(bytes, i)| {
            let key = parsed
                .public_key(bytes)
                .map_err(|e| SignatureRejection::other(format!("parsing {what} {i}: {e}")))?;
            check(i, &key)?;
            Ok(key)
        })
        .collect()
}

fn load_key_set(set: &KeySet, files: &dyn TrustFiles) -> Result<Vec<Vec<u8>>, SignatureRejection> {
    match set {
        KeySet::Path(path) => Ok(vec![read(files, path)?]),
        KeySet::Paths(paths) => paths.iter().map(|p| read(files, p)).collect(),
        KeySet::Data(data) => Ok(vec![data.clone()]),
        KeySet::Datas(datas) => Ok(datas.clone()),
    }
}

fn load_file_or_data(
    source: &FileOrData,
    files: &dyn TrustFiles,
) -> Result<Vec<u8>, SignatureRejection> {
    match source {
        FileOrData::Path(path) => read(files, path),
        FileOrData::Data(data) => Ok(data.clone()),
    }
}

fn read(files: &dyn TrustFiles, path: &Path) -> Result<Vec<u8>, SignatureRejection> {
    files.read(path).map_err(SignatureRejection::other)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use criguard_policy::{FileOrData, InMemoryTrustFiles, KeySet, Pki, ReferenceMatch};

    use super::*;

    /// The parser refuses these PKI requirements; built in code they must
    /// be refused too, before any certificate is looked at.
    #[test]
    fn inconsistent_pki_requirements_are_refused() {
        let pki = |email: Option<&str>| Pki {
            ca_roots: FileOrData::Data(b"not read".to_vec()),
            ca_intermediates: None,
            subject_email: email.map(str::to_owned),
            subject_hostname: None,
        };
        let signature = SigstoreSignature {
            mime_type: "application/vnd.dev.cosign.simplesigning.v1+json".to_owned(),
            payload: Vec::new(),
            annotations: BTreeMap::new(),
        };
        for (requirement, expected) in [
            (
                SigstoreSigned {
                    trust: SigstoreTrust::Pki(pki(Some("a@example.com"))),
                    rekor_public_keys: Some(KeySet::Data(b"rekor".to_vec())),
                    signed_identity: ReferenceMatch::MatchRepository,
                },
                "with a Rekor public key",
            ),
            (
                SigstoreSigned {
                    trust: SigstoreTrust::Pki(pki(None)),
                    rekor_public_keys: None,
                    signed_identity: ReferenceMatch::MatchRepository,
                },
                "without subjectEmail or subjectHostname",
            ),
        ] {
            let rejection = Verifier::new()
                .verify(&requirement, &InMemoryTrustFiles::new(), &signature)
                .unwrap_err();
            assert!(rejection.message.contains(expected), "{rejection:?}");
        }
    }
}
