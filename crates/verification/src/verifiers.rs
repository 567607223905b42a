//! The policy engine with its cryptography plugged in.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use criguard_policy::{Decision, Evaluator, Image, ImageReference, Policy, Signature, TrustFiles};
use criguard_reference::Digest;
use criguard_sigstore::{TrustedRoot, TrustedRootError};

use crate::FsTrustFiles;

/// The sigstore and GPG verifiers and the trust files, made once and
/// shared by every evaluation (the GPG verifier keeps its last keyring
/// import, so reuse saves the import).
pub struct Verifiers {
    sigstore: criguard_sigstore::Verifier,
    gpg: criguard_simple_signing::Verifier,
    files: Arc<dyn TrustFiles + Send + Sync>,
}

impl Verifiers {
    /// Verifiers that read trust files with `files`.
    pub fn new(files: Arc<dyn TrustFiles + Send + Sync>) -> Verifiers {
        Verifiers {
            sigstore: criguard_sigstore::Verifier::new(),
            gpg: criguard_simple_signing::Verifier::new(),
            files,
        }
    }

    /// Verifiers that read trust files from disk, as CRI-O does.
    pub fn from_disk() -> Verifiers {
        Verifiers::new(Arc::new(FsTrustFiles))
    }

    /// Verifiers that read trust files from disk, with the sigstore
    /// trusted root at `trusted_root` when one is named (read now, once).
    pub fn from_disk_with_trusted_root(
        trusted_root: Option<&Path>,
    ) -> Result<Verifiers, TrustedRootFileError> {
        let verifiers = Verifiers::from_disk();
        Ok(match trusted_root {
            None => verifiers,
            Some(path) => verifiers.with_trusted_root(read_trusted_root(path)?),
        })
    }

    /// The same verifiers, with the operator's sigstore trusted root, which
    /// lets bundles with Rekor v2 entries and RFC 3161 timestamps verify.
    #[must_use]
    pub fn with_trusted_root(mut self, root: Arc<TrustedRoot>) -> Verifiers {
        self.sigstore = self.sigstore.with_trusted_root(root);
        self
    }

    /// The policy engine's verdict. CPU work (a keyring import takes
    /// milliseconds): async callers run it on a blocking thread.
    pub fn evaluate(
        &self,
        policy: &Policy,
        reference: &ImageReference,
        manifest_digest: &Digest,
        signatures: &[Signature],
    ) -> Decision {
        Evaluator {
            files: self.files.as_ref(),
            simple_signing: Some(&self.gpg),
            sigstore: Some(&self.sigstore),
        }
        .evaluate(
            policy,
            &Image {
                reference,
                manifest_digest,
                signatures,
            },
        )
    }
}

/// Why the trusted root named in the config or by `--trusted-root` cannot
/// be used. Start-up stops on it: running without the file the operator
/// named would refuse, for a reason nobody sees, what they meant to allow.
#[derive(Debug, thiserror::Error)]
pub enum TrustedRootFileError {
    #[error("reading the trusted root {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: criguard_files::ReadError,
    },
    #[error("{}: {source}", path.display())]
    Invalid {
        path: PathBuf,
        source: TrustedRootError,
    },
}

/// Reads a sigstore `trusted_root.json`, once, from a local file (never
/// from the network).
pub fn read_trusted_root(path: &Path) -> Result<Arc<TrustedRoot>, TrustedRootFileError> {
    let bytes = criguard_files::read_limited(
        path,
        criguard_sigstore::trusted_root::MAX_TRUSTED_ROOT_BYTES as u64,
    )
    .map_err(|source| TrustedRootFileError::Read {
        path: path.to_owned(),
        source,
    })?;
    TrustedRoot::from_json(&bytes)
        .map(Arc::new)
        .map_err(|source| TrustedRootFileError::Invalid {
            path: path.to_owned(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trusted_root_file_is_read_or_refused_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("trusted_root.json");
        let missing = read_trusted_root(&path).unwrap_err();
        assert!(matches!(missing, TrustedRootFileError::Read { .. }));
        assert!(
            missing.to_string().contains("trusted_root.json"),
            "{missing}"
        );

        std::fs::write(&path, br#"{"mediaType":"text/plain"}"#).unwrap();
        let invalid = read_trusted_root(&path).unwrap_err().to_string();
        assert!(
            invalid.contains("unsupported trusted root media type"),
            "{invalid}"
        );

        std::fs::write(
            &path,
            br#"{"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1","tlogs":[],"timestampAuthorities":[]}"#,
        )
        .unwrap();
        let root = read_trusted_root(&path).unwrap();
        assert!(root.tlogs.is_empty() && root.timestamp_authorities.is_empty());
        let _verifiers = Verifiers::from_disk().with_trusted_root(root);
    }
}
