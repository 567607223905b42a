//! Transports: which scopes each accepts in policy.json, and how an image of
//! each is named for scope lookup.

use std::fmt;
use std::sync::LazyLock;

use criguard_reference::{Digest, Reference, ReferenceError};

/// The transports containers/image registers. A policy may name others; they
/// are accepted and never validated, as upstream does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    Docker,
    Atomic,
    DockerDaemon,
    ContainersStorage,
    Dir,
    Oci,
    OciArchive,
    Sif,
    DockerArchive,
    Tarball,
}

impl Transport {
    pub const ALL: [Transport; 10] = [
        Self::Docker,
        Self::Atomic,
        Self::DockerDaemon,
        Self::ContainersStorage,
        Self::Dir,
        Self::Oci,
        Self::OciArchive,
        Self::Sif,
        Self::DockerArchive,
        Self::Tarball,
    ];

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.name() == name)
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Docker => "docker",
            Self::Atomic => "atomic",
            Self::DockerDaemon => "docker-daemon",
            Self::ContainersStorage => "containers-storage",
            Self::Dir => "dir",
            Self::Oci => "oci",
            Self::OciArchive => "oci-archive",
            Self::Sif => "sif",
            Self::DockerArchive => "docker-archive",
            Self::Tarball => "tarball",
        }
    }

    /// Checks a non-empty scope of this transport; the error says why it is
    /// not one.
    pub fn validate_scope(self, scope: &str) -> Result<(), String> {
        match self {
            // Docker scopes are never validated: `example*.*.com` is accepted
            // and simply never matches.
            Self::Docker => Ok(()),
            Self::Atomic => {
                if ATOMIC_SCOPE.is_match(scope) {
                    Ok(())
                } else {
                    Err(format!("Invalid scope name {scope}"))
                }
            }
            Self::DockerDaemon => match Digest::parse(scope) {
                Ok(_) => Err(format!(
                    "docker-daemon: can not use algo:digest value {scope} as a namespace"
                )),
                Err(_) => Ok(()),
            },
            Self::ContainersStorage => validate_storage_scope(scope),
            Self::Dir | Self::Sif => validate_path_scope(scope, "Must be an absolute path"),
            Self::Oci | Self::OciArchive => validate_path_scope(scope, "must be an absolute path"),
            Self::DockerArchive | Self::Tarball => Err(format!(
                "{}: does not support any scopes except the default \"\" one",
                self.name()
            )),
        }
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

static ATOMIC_SCOPE: LazyLock<regex::Regex> = LazyLock::new(|| {
    regex::Regex::new(r"^[^/]*(/[^:/]*(/[^:/]*(:[^:/]*)?)?)?$")
        .unwrap_or_else(|e| panic!("atomic scope pattern does not compile: {e}"))
});

static OCI_IMAGE_NAME: LazyLock<regex::Regex> = LazyLock::new(|| {
    let component = "[A-Za-z0-9]+(?:(?:[-._:@+]|--)[A-Za-z0-9]+)*";
    regex::Regex::new(&format!("^{component}(?:/{component})*$"))
        .unwrap_or_else(|e| panic!("OCI image name pattern does not compile: {e}"))
});

/// Scopes of path-based transports are absolute, clean and not `/`, so that
/// the path matching of namespaces is unambiguous.
fn validate_path_scope(scope: &str, not_absolute: &str) -> Result<(), String> {
    if !scope.starts_with('/') {
        return Err(format!("Invalid scope {scope}: {not_absolute}"));
    }
    if scope == "/" {
        return Err("Invalid scope \"/\": Use the generic default scope \"\"".to_owned());
    }
    let cleaned = clean_path(scope);
    if cleaned != scope {
        return Err(format!(
            "Invalid scope {scope}: Uses non-canonical path format, perhaps try with path {cleaned}"
        ));
    }
    Ok(())
}

/// Lexical path cleaning with the results of Go's `filepath.Clean` for
/// absolute paths: no `.`, no `..`, no repeated or trailing slashes.
fn clean_path(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    format!("/{}", parts.join("/"))
}

fn validate_storage_scope(scope: &str) -> Result<(), String> {
    let invalid = || "invalid reference".to_owned();
    let rest = scope.strip_prefix('[').ok_or_else(invalid)?;
    let close = rest.find(']').ok_or_else(invalid)?;
    let (store, image) = (&rest[..close], &rest[close + 1..]);
    let root = match store.split_once('@') {
        None if !store.is_empty() => store,
        Some((driver, root)) if !driver.is_empty() && !root.is_empty() => root,
        _ => return Err(invalid()),
    };
    if !root.starts_with('/') {
        return Err("path is not absolute".to_owned());
    }
    let fields: Vec<&str> = image.splitn(3, '@').collect();
    match fields.as_slice() {
        [_] => Ok(()),
        [_, id_or_digest] => {
            if is_image_id(id_or_digest) || Digest::parse(id_or_digest).is_ok() {
                Ok(())
            } else {
                Err(format!(
                    "{id_or_digest} is neither a valid digest nor a valid ID"
                ))
            }
        }
        [_, digest, id] => {
            if !is_image_id(id) {
                return Err(format!("{id} is not a valid image ID"));
            }
            Digest::parse(digest).map(|_| ()).map_err(|e| e.to_string())
        }
        _ => Err(invalid()),
    }
}

fn is_image_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// An image as the policy sees it: its transport and its identity there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageReference {
    /// A registry image; always has a tag or a digest (never both).
    Docker(Reference),
    /// An OCI layout directory. `resolved_dir` is the absolute path with
    /// symlinks resolved, which the caller (an IO edge) computes.
    Oci {
        dir: String,
        image: String,
        resolved_dir: String,
    },
}

/// Why an image name cannot be evaluated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ImageNameError {
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    #[error("Invalid image {0}")]
    InvalidOciImage(String),
    #[error("transport {0:?} is not supported here (use docker:// or oci:)")]
    UnsupportedTransport(String),
}

/// An image name as written on a command line, before any IO.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageName {
    Docker(Reference),
    /// `oci:DIR[:IMAGE]`; the directory still has to be resolved.
    Oci {
        dir: String,
        image: String,
    },
}

impl ImageName {
    /// Parses `docker://REF`, `oci:DIR[:IMAGE]` or a bare reference, which
    /// means the docker transport as it does for CRI-O and skopeo users.
    pub fn parse(input: &str) -> Result<Self, ImageNameError> {
        if let Some(rest) = input.strip_prefix("docker:") {
            return Ok(Self::Docker(Reference::parse_docker_transport(rest)?));
        }
        if let Some(rest) = input.strip_prefix("oci:") {
            let (dir, image) = rest.split_once(':').unwrap_or((rest, ""));
            if !image.is_empty() && !OCI_IMAGE_NAME.is_match(image) {
                return Err(ImageNameError::InvalidOciImage(image.to_owned()));
            }
            return Ok(Self::Oci {
                dir: dir.to_owned(),
                image: image.to_owned(),
            });
        }
        if let Some((transport, _)) = input.split_once(':')
            && Transport::from_name(transport).is_some()
        {
            return Err(ImageNameError::UnsupportedTransport(transport.to_owned()));
        }
        Ok(Self::Docker(
            Reference::parse_normalized(input)?.into_docker_transport()?,
        ))
    }
}

impl ImageReference {
    pub fn transport(&self) -> Transport {
        match self {
            Self::Docker(_) => Transport::Docker,
            Self::Oci { .. } => Transport::Oci,
        }
    }

    /// The reference a signature's claimed identity is compared with; OCI
    /// layouts have none, so identity rules never match them.
    pub fn docker_reference(&self) -> Option<&Reference> {
        match self {
            Self::Docker(r) => Some(r),
            Self::Oci { .. } => None,
        }
    }

    /// The most specific scope this image can match.
    pub fn policy_identity(&self) -> String {
        match self {
            // A docker-transport reference always has exactly one of tag and
            // digest, so its identity is its full string.
            Self::Docker(r) => r.to_string(),
            Self::Oci { resolved_dir, .. } => resolved_dir.clone(),
        }
    }

    /// Less specific scopes that contain this image, most specific first.
    pub fn policy_namespaces(&self) -> Vec<String> {
        match self {
            Self::Docker(r) => r.policy_namespaces(),
            Self::Oci { resolved_dir, .. } => {
                let mut out = Vec::new();
                let mut path = resolved_dir.as_str();
                while path != "/" {
                    let Some(slash) = path.rfind('/') else { break };
                    out.push(path.to_owned());
                    path = &path[..slash];
                }
                out
            }
        }
    }

    /// The transport-qualified name containers/image prints in messages,
    /// e.g. `docker://busybox:latest`.
    pub fn image_name(&self) -> String {
        match self {
            Self::Docker(r) => format!("docker://{}", r.familiar()),
            Self::Oci { dir, image, .. } => format!("oci:{dir}:{image}"),
        }
    }
}

impl fmt::Display for ImageReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.image_name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_scopes() {
        let t = Transport::Dir;
        assert!(t.validate_scope("/a/b").is_ok());
        assert!(
            t.validate_scope("a/b")
                .unwrap_err()
                .contains("Must be an absolute path")
        );
        assert!(
            t.validate_scope("/")
                .unwrap_err()
                .contains("generic default scope")
        );
        assert!(
            t.validate_scope("/a/../b")
                .unwrap_err()
                .contains("perhaps try with path /b")
        );
        assert!(
            t.validate_scope("/a/b/")
                .unwrap_err()
                .contains("perhaps try with path /a/b")
        );
        assert!(Transport::Oci.validate_scope("/a//b").is_err());
    }

    #[test]
    fn other_scopes() {
        assert!(Transport::Docker.validate_scope("example*.*.com").is_ok());
        assert!(
            Transport::Atomic
                .validate_scope("host/ns/stream:tag")
                .is_ok()
        );
        assert!(
            Transport::Atomic
                .validate_scope("host/ns/stream:tag/x")
                .is_err()
        );
        let digest = format!("sha256:{}", "a".repeat(64));
        assert!(Transport::DockerDaemon.validate_scope(&digest).is_err());
        assert!(Transport::DockerDaemon.validate_scope("busybox").is_ok());
        assert!(Transport::DockerArchive.validate_scope("x").is_err());
        assert!(Transport::Tarball.validate_scope("x").is_err());
        let storage = Transport::ContainersStorage;
        assert!(storage.validate_scope("[/var/lib/containers]").is_ok());
        assert!(
            storage
                .validate_scope("[overlay@/var/lib/c]docker.io/library/busybox:1")
                .is_ok()
        );
        assert!(
            storage
                .validate_scope(&format!("[/r]busybox@{digest}"))
                .is_ok()
        );
        assert!(
            storage
                .validate_scope(&format!("[/r]busybox@{digest}@{}", "b".repeat(64)))
                .is_ok()
        );
        assert!(storage.validate_scope("[relative]x").is_err());
        assert!(storage.validate_scope("[]x").is_err());
        assert!(storage.validate_scope("busybox").is_err());
        assert!(storage.validate_scope("[/r]busybox@nothex").is_err());
    }

    #[test]
    fn oci_namespaces_exclude_root() {
        let image = ImageReference::Oci {
            dir: "x".into(),
            image: String::new(),
            resolved_dir: "/a/b/c".into(),
        };
        assert_eq!(image.policy_identity(), "/a/b/c");
        assert_eq!(image.policy_namespaces(), ["/a/b/c", "/a/b", "/a"]);
        assert_eq!(image.image_name(), "oci:x:");
    }

    #[test]
    fn image_names() {
        assert_eq!(
            ImageName::parse("busybox").unwrap(),
            ImageName::Docker(Reference::parse_normalized("busybox:latest").unwrap())
        );
        assert_eq!(
            ImageName::parse("docker://quay.io/a/b:1").unwrap(),
            ImageName::Docker(Reference::parse_normalized("quay.io/a/b:1").unwrap())
        );
        assert!(ImageName::parse("docker:quay.io/a/b:1").is_err());
        assert_eq!(
            ImageName::parse("oci:/tmp/layout:app:v1").unwrap(),
            ImageName::Oci {
                dir: "/tmp/layout".into(),
                image: "app:v1".into()
            }
        );
        assert!(ImageName::parse("oci:/tmp/layout:-bad").is_err());
        assert!(matches!(
            ImageName::parse("dir:/tmp/x"),
            Err(ImageNameError::UnsupportedTransport(_))
        ));
        // host:port/repo is a reference, not a transport.
        assert!(ImageName::parse("localhost:5000/a").is_ok());
    }
}
