//! The meaning of a policy.json, once it has been read and validated.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use criguard_reference::Reference;

use crate::transport::Transport;

/// A whole policy: the global default and per-transport scopes.
#[derive(Debug, Clone)]
pub struct Policy {
    pub(crate) default: Requirements,
    pub(crate) transports: HashMap<String, TransportScopes>,
}

/// The scopes configured for one transport. Lookup is by exact key, so it
/// costs one hash lookup per candidate scope, never a scan of all scopes.
#[derive(Debug, Clone, Default)]
pub struct TransportScopes {
    pub(crate) scopes: HashMap<String, Requirements>,
}

/// A non-empty list of requirements that must all hold.
#[derive(Debug, Clone)]
pub struct Requirements {
    pub(crate) items: Vec<RequirementEntry>,
}

/// One requirement and the JSON it was written as, which `policy explain`
/// shows unchanged.
#[derive(Debug, Clone)]
pub struct RequirementEntry {
    pub requirement: Requirement,
    pub json: serde_json::Value,
}

/// One policy requirement (`type` in policy.json).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Requirement {
    InsecureAcceptAnything,
    Reject,
    SignedBy(SignedBy),
    SigstoreSigned(SigstoreSigned),
    /// Parses, but containers/image never implemented it: it always rejects.
    SignedBaseLayer {
        base_layer_identity: ReferenceMatch,
    },
}

impl Requirement {
    fn push_trust_files<'a>(&'a self, files: &mut Vec<&'a Path>) {
        let key_set = |set: &'a KeySet, files: &mut Vec<&'a Path>| match set {
            KeySet::Path(path) => files.push(path),
            KeySet::Paths(paths) => files.extend(paths.iter().map(PathBuf::as_path)),
            KeySet::Data(_) | KeySet::Datas(_) => {}
        };
        let file = |source: &'a FileOrData, files: &mut Vec<&'a Path>| {
            if let FileOrData::Path(path) = source {
                files.push(path);
            }
        };
        match self {
            Self::SignedBy(signed_by) => match &signed_by.keys {
                GpgKeys::Path(path) => files.push(path),
                GpgKeys::Paths(paths) => files.extend(paths.iter().map(PathBuf::as_path)),
                GpgKeys::Data(_) => {}
            },
            Self::SigstoreSigned(sigstore) => {
                match &sigstore.trust {
                    SigstoreTrust::PublicKeys(set) => key_set(set, files),
                    SigstoreTrust::Fulcio(fulcio) => file(&fulcio.ca, files),
                    SigstoreTrust::Pki(pki) => {
                        file(&pki.ca_roots, files);
                        if let Some(intermediates) = &pki.ca_intermediates {
                            file(intermediates, files);
                        }
                    }
                }
                if let Some(rekor) = &sigstore.rekor_public_keys {
                    key_set(rekor, files);
                }
            }
            Self::InsecureAcceptAnything | Self::Reject | Self::SignedBaseLayer { .. } => {}
        }
    }

    /// The `type` value this requirement is written with.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::InsecureAcceptAnything => "insecureAcceptAnything",
            Self::Reject => "reject",
            Self::SignedBy(_) => "signedBy",
            Self::SigstoreSigned(_) => "sigstoreSigned",
            Self::SignedBaseLayer { .. } => "signedBaseLayer",
        }
    }
}

/// GPG "simple signing" (`signedBy`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedBy {
    pub key_type: KeyType,
    pub keys: GpgKeys,
    pub signed_identity: ReferenceMatch,
}

/// `keyType` of `signedBy`; only `GPGKeys` is implemented by
/// containers/image, the others always reject at evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    GpgKeys,
    SignedByGpgKeys,
    X509Certificates,
    SignedByX509Cas,
}

impl KeyType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::GpgKeys => "GPGKeys",
            Self::SignedByGpgKeys => "signedByGPGKeys",
            Self::X509Certificates => "X509Certificates",
            Self::SignedByX509Cas => "signedByX509CAs",
        }
    }

    pub(crate) fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "GPGKeys" => Self::GpgKeys,
            "signedByGPGKeys" => Self::SignedByGpgKeys,
            "X509Certificates" => Self::X509Certificates,
            "signedByX509CAs" => Self::SignedByX509Cas,
            _ => return None,
        })
    }
}

/// Where a `signedBy` requirement finds its keyrings. Files are read when an
/// image is evaluated, not when the policy is loaded, as in containers/image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GpgKeys {
    Path(PathBuf),
    Paths(Vec<PathBuf>),
    Data(Vec<u8>),
}

/// Sigstore (cosign) signatures (`sigstoreSigned`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigstoreSigned {
    pub trust: SigstoreTrust,
    /// Rekor public keys; required with Fulcio, optional with keys, refused
    /// with PKI.
    pub rekor_public_keys: Option<KeySet>,
    pub signed_identity: ReferenceMatch,
}

/// What a sigstore signature must chain to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SigstoreTrust {
    PublicKeys(KeySet),
    Fulcio(Fulcio),
    Pki(Pki),
}

/// Public keys given as one or several files or inline PEM blobs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySet {
    Path(PathBuf),
    Paths(Vec<PathBuf>),
    Data(Vec<u8>),
    Datas(Vec<Vec<u8>>),
}

/// A file to read at evaluation time, or the bytes themselves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileOrData {
    Path(PathBuf),
    Data(Vec<u8>),
}

/// Keyless signatures: a Fulcio certificate for an exact OIDC identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fulcio {
    pub ca: FileOrData,
    pub oidc_issuer: String,
    pub subject_email: String,
}

/// Certificates from the user's own CA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pki {
    pub ca_roots: FileOrData,
    pub ca_intermediates: Option<FileOrData>,
    pub subject_email: Option<String>,
    pub subject_hostname: Option<String>,
}

/// `signedIdentity`: how the reference inside a signature must relate to the
/// image being evaluated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReferenceMatch {
    MatchExact,
    MatchRepoDigestOrExact,
    MatchRepository,
    ExactReference(Reference),
    ExactRepository(Reference),
    RemapIdentity {
        prefix: String,
        signed_prefix: String,
    },
}

impl ReferenceMatch {
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::MatchExact => "matchExact",
            Self::MatchRepoDigestOrExact => "matchRepoDigestOrExact",
            Self::MatchRepository => "matchRepository",
            Self::ExactReference(_) => "exactReference",
            Self::ExactRepository(_) => "exactRepository",
            Self::RemapIdentity { .. } => "remapIdentity",
        }
    }
}

impl Policy {
    /// The global `default` requirements.
    pub fn default_requirements(&self) -> &Requirements {
        &self.default
    }

    /// The scopes of one transport, if the policy names that transport.
    pub fn transport(&self, name: &str) -> Option<&TransportScopes> {
        self.transports.get(name)
    }

    /// Transport names in the policy, sorted.
    pub fn transport_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.transports.keys().map(String::as_str).collect();
        names.sort_unstable();
        names
    }

    /// Number of scopes over all transports.
    pub fn scope_count(&self) -> usize {
        self.transports.values().map(|t| t.scopes.len()).sum()
    }

    /// Every key, certificate and keyring file the policy names, sorted and
    /// without repeats. The policy holds paths, not contents (files are
    /// read at evaluation, as containers/image reads them), so whoever
    /// caches verdicts must also watch these.
    pub fn trust_files(&self) -> Vec<&Path> {
        let mut files = Vec::new();
        let all = std::iter::once(&self.default)
            .chain(self.transports.values().flat_map(|t| t.scopes.values()));
        for requirements in all {
            for entry in &requirements.items {
                entry.requirement.push_trust_files(&mut files);
            }
        }
        files.sort_unstable();
        files.dedup();
        files
    }

    /// Transport names the process knows nothing about; containers/image
    /// accepts them silently, which hides typos such as `dokcer`.
    pub fn unknown_transports(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self
            .transports
            .keys()
            .filter(|name| Transport::from_name(name).is_none())
            .map(String::as_str)
            .collect();
        names.sort_unstable();
        names
    }
}

impl TransportScopes {
    pub fn get(&self, scope: &str) -> Option<&Requirements> {
        self.scopes.get(scope)
    }

    pub fn len(&self) -> usize {
        self.scopes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.scopes.is_empty()
    }
}

impl Requirements {
    pub fn iter(&self) -> impl Iterator<Item = &RequirementEntry> {
        self.items.iter()
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Never true for a parsed policy; present for API symmetry.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Whether any requirement checks signatures (`signedBy`,
    /// `sigstoreSigned`). containers/image only fetches signatures for
    /// those, so a store that cannot be read must not reject an image whose
    /// requirements never look at signatures.
    pub fn verify_signatures(&self) -> bool {
        self.items.iter().any(|e| {
            matches!(
                e.requirement,
                Requirement::SignedBy(_) | Requirement::SigstoreSigned(_)
            )
        })
    }

    /// The requirements in policy.json's own JSON form.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::Value::Array(self.items.iter().map(|e| e.json.clone()).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trust_files_are_every_named_file_once() {
        let policy = Policy::from_bytes(
            br#"{
                "default": [{"type": "signedBy", "keyType": "GPGKeys", "keyPaths": ["/k/b.gpg", "/k/a.gpg"]}],
                "transports": {"docker": {
                    "a.example": [{"type": "sigstoreSigned", "keyPath": "/k/c.pub",
                                   "signedIdentity": {"type": "matchRepository"}}],
                    "b.example": [{"type": "sigstoreSigned",
                                   "fulcio": {"caPath": "/k/fulcio.pem", "oidcIssuer": "https://i", "subjectEmail": "e@x"},
                                   "rekorPublicKeyPath": "/k/rekor.pub",
                                   "signedIdentity": {"type": "matchRepository"}}],
                    "c.example": [{"type": "signedBy", "keyType": "GPGKeys", "keyPath": "/k/a.gpg"}],
                    "d.example": [{"type": "sigstoreSigned", "keyData": "eA==",
                                   "signedIdentity": {"type": "matchRepository"}}]
                }}
            }"#,
            "test",
        )
        .unwrap();
        let expected = [
            "/k/a.gpg",
            "/k/b.gpg",
            "/k/c.pub",
            "/k/fulcio.pem",
            "/k/rekor.pub",
        ];
        assert_eq!(policy.trust_files(), expected.map(Path::new));
    }
}
