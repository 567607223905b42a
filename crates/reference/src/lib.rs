//! Docker image references, parsed and normalised with the same results as
//! containers/image.
//!
//! Policy scopes and `signedIdentity` rules compare *normalised* references
//! (`busybox` is `docker.io/library/busybox`), and the verdict for an image
//! depends on details such as whether `:latest` was added or whether the name
//! was accepted at all. A general-purpose OCI reference parser differs on
//! exactly those details (it invents `:latest` for name-only references, which
//! cosign identities are), so this crate keeps the four shapes a reference can
//! have: name only, tagged, digested, and tagged and digested.

mod digest;
mod grammar;

use std::fmt;

pub use digest::{Digest, DigestError};

/// The registry used when a reference names none.
pub const DEFAULT_DOMAIN: &str = "docker.io";
const LEGACY_DEFAULT_DOMAIN: &str = "index.docker.io";
const OFFICIAL_REPOSITORY_NAMESPACE: &str = "library";
/// Longest repository name (domain and path) accepted.
pub const NAME_TOTAL_LENGTH_MAX: usize = 255;

/// Why a string is not an acceptable reference. The texts are containers/image's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReferenceError {
    #[error("invalid reference format")]
    InvalidFormat,
    #[error("repository name must be lowercase")]
    NameContainsUppercase,
    #[error("invalid reference format: repository name must be lowercase")]
    RemoteNameContainsUppercase,
    #[error("repository name must have at least one component")]
    NameEmpty,
    #[error("repository name must not be more than {NAME_TOTAL_LENGTH_MAX} characters")]
    NameTooLong,
    #[error("repository name must be canonical")]
    NameNotCanonical,
    #[error("invalid repository name ({0}), cannot specify 64-byte hexadecimal strings")]
    HexadecimalName(String),
    #[error(transparent)]
    Digest(#[from] DigestError),
    #[error("docker: image reference {0} does not start with //")]
    MissingDoubleSlash(String),
    #[error("Docker references with both a tag and digest are currently not supported")]
    TagAndDigest,
    #[error("Docker reference {0} has neither a tag nor a digest")]
    NeitherTagNorDigest(String),
}

/// A normalised Docker reference: `domain/path[:tag][@digest]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference {
    /// `domain/path`; the domain is `name[..domain_len]`.
    name: String,
    domain_len: usize,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl Reference {
    /// Parses a reference the way users write it (`busybox`, `quay.io/x/y:1`),
    /// filling in `docker.io` and `library/` (containers/image's
    /// `ParseNormalizedNamed`). No tag is added.
    pub fn parse_normalized(input: &str) -> Result<Self, ReferenceError> {
        if grammar::is_anchored_identifier(input) {
            return Err(ReferenceError::HexadecimalName(input.to_owned()));
        }
        let (domain, remainder) = split_docker_domain(input);
        let remote_name = remainder.split(':').next().unwrap_or_default();
        if remote_name.to_lowercase() != remote_name {
            return Err(ReferenceError::RemoteNameContainsUppercase);
        }
        Self::parse_full(&format!("{domain}/{remainder}"))
    }

    /// Parses a reference that must already be in its canonical, fully
    /// expanded form (containers/image's `ParseNamed`).
    pub fn parse_canonical(input: &str) -> Result<Self, ReferenceError> {
        let reference = Self::parse_normalized(input)?;
        if reference.to_string() != input {
            return Err(ReferenceError::NameNotCanonical);
        }
        Ok(reference)
    }

    /// Parses the part of a `docker://…` image name after `docker:`; like the
    /// docker transport it adds `:latest` to a name-only reference and refuses
    /// one with both a tag and a digest.
    pub fn parse_docker_transport(within_transport: &str) -> Result<Self, ReferenceError> {
        let Some(rest) = within_transport.strip_prefix("//") else {
            return Err(ReferenceError::MissingDoubleSlash(
                within_transport.to_owned(),
            ));
        };
        Self::parse_normalized(rest)?.into_docker_transport()
    }

    /// Turns a parsed reference into what the docker transport evaluates:
    /// `:latest` added where there is neither tag nor digest, tag plus digest
    /// refused.
    pub fn into_docker_transport(self) -> Result<Self, ReferenceError> {
        let reference = self.with_default_tag();
        if reference.tag.is_some() && reference.digest.is_some() {
            return Err(ReferenceError::TagAndDigest);
        }
        Ok(reference)
    }

    /// Parses a complete `domain/path[:tag][@digest]` string (the grammar's
    /// `Parse`, after domain defaulting).
    fn parse_full(input: &str) -> Result<Self, ReferenceError> {
        let Some(parts) = grammar::split_reference(input) else {
            if input.is_empty() {
                return Err(ReferenceError::NameEmpty);
            }
            if grammar::split_reference(&input.to_lowercase()).is_some() {
                return Err(ReferenceError::NameContainsUppercase);
            }
            return Err(ReferenceError::InvalidFormat);
        };
        if parts.name.len() > NAME_TOTAL_LENGTH_MAX {
            return Err(ReferenceError::NameTooLong);
        }
        let (domain, _path) =
            grammar::split_name(parts.name).ok_or(ReferenceError::InvalidFormat)?;
        let digest = parts.digest.map(Digest::parse).transpose()?;
        Ok(Self {
            name: parts.name.to_owned(),
            domain_len: domain.len(),
            tag: parts.tag.map(str::to_owned),
            digest,
        })
    }

    /// `domain/path`, without tag or digest.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The registry host, with its port if one was given.
    pub fn domain(&self) -> &str {
        &self.name[..self.domain_len]
    }

    /// The repository path within the registry (`library/busybox`).
    pub fn path(&self) -> &str {
        if self.domain_len == 0 {
            &self.name
        } else {
            &self.name[self.domain_len + 1..]
        }
    }

    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// A reference with neither tag nor digest: what cosign signs.
    pub fn is_name_only(&self) -> bool {
        self.tag.is_none() && self.digest.is_none()
    }

    /// Adds `:latest` to a name-only reference (containers/image's `TagNameOnly`).
    pub fn with_default_tag(mut self) -> Self {
        if self.is_name_only() {
            self.tag = Some("latest".to_owned());
        }
        self
    }

    /// The same reference without its tag; CRI-O drops the tag of
    /// `name:tag@digest` before evaluating it.
    pub fn without_tag(&self) -> Self {
        Self {
            tag: None,
            ..self.clone()
        }
    }

    /// The same repository with another digest and no tag: what is pulled
    /// once a tag has been resolved and verified.
    pub fn with_digest(&self, digest: Digest) -> Self {
        Self {
            tag: None,
            digest: Some(digest),
            ..self.clone()
        }
    }

    /// The same repository name with nothing else.
    pub fn repository(&self) -> Self {
        Self {
            tag: None,
            digest: None,
            ..self.clone()
        }
    }

    /// The short form people type (`busybox:latest`, `quay.io/x/y@sha256:…`).
    pub fn familiar(&self) -> String {
        let mut out = String::new();
        if self.domain() == DEFAULT_DOMAIN {
            let path = self.path();
            match path.split_once('/') {
                Some((OFFICIAL_REPOSITORY_NAMESPACE, rest)) if !rest.contains('/') => {
                    out.push_str(rest)
                }
                _ => out.push_str(path),
            }
        } else {
            out.push_str(&self.name);
        }
        self.push_tag_and_digest(&mut out);
        out
    }

    fn push_tag_and_digest(&self, out: &mut String) {
        if let Some(tag) = &self.tag {
            out.push(':');
            out.push_str(tag);
        }
        if let Some(digest) = &self.digest {
            out.push('@');
            out.push_str(digest.as_str());
        }
    }

    /// The policy identity of an image in the docker transport:
    /// `name:tag` or `name@digest`. A reference must have exactly one of them.
    pub fn policy_identity(&self) -> Result<String, ReferenceError> {
        match (&self.tag, &self.digest) {
            (Some(_), Some(_)) => Err(ReferenceError::TagAndDigest),
            (None, None) => Err(ReferenceError::NeitherTagNorDigest(self.to_string())),
            _ => Ok(self.to_string()),
        }
    }

    /// The scopes that contain this image, most specific first: the
    /// repository, each parent namespace down to `host[:port]`, then `*.`
    /// wildcards for each parent domain of the host (port removed).
    ///
    /// `example.com:8443/ns/repo` gives `example.com:8443/ns/repo`,
    /// `example.com:8443/ns`, `example.com:8443`, `*.com`.
    pub fn policy_namespaces(&self) -> Vec<String> {
        let mut namespaces = Vec::new();
        let mut name = self.name.as_str();
        loop {
            namespaces.push(name.to_owned());
            match name.rfind('/') {
                Some(slash) => name = &name[..slash],
                None => break,
            }
        }
        let mut host = name.split(':').next().unwrap_or_default();
        while let Some(dot) = host.find('.') {
            host = &host[dot + 1..];
            namespaces.push(format!("*.{host}"));
        }
        namespaces
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = self.name.clone();
        self.push_tag_and_digest(&mut out);
        f.write_str(&out)
    }
}

/// Splits `input` into a registry and the rest, applying Docker's defaults:
/// the first component is a registry only if it looks like a host name.
fn split_docker_domain(input: &str) -> (&str, String) {
    let (mut domain, mut remainder) = match input.split_once('/') {
        Some((first, rest)) if first.contains(['.', ':']) || first == "localhost" => {
            (first, rest.to_owned())
        }
        _ => (DEFAULT_DOMAIN, input.to_owned()),
    };
    if domain == LEGACY_DEFAULT_DOMAIN {
        domain = DEFAULT_DOMAIN;
    }
    if domain == DEFAULT_DOMAIN && !remainder.contains('/') {
        remainder = format!("{OFFICIAL_REPOSITORY_NAMESPACE}/{remainder}");
    }
    (domain, remainder)
}

/// Checks a `remapIdentity` prefix: a bare domain, or a repository name that
/// starts with an explicit domain.
pub fn is_valid_identity_prefix(prefix: &str) -> bool {
    grammar::is_anchored_domain(prefix)
        || (grammar::is_anchored_name(prefix) && grammar::starts_with_domain(prefix))
}

#[cfg(test)]
mod tests;
