use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::Platform;

/// Everything that can go wrong reaching a registry. Each message names what
/// a person can act on: the host and repository, the HTTP status, the limit
/// or digest involved. Texts that containers/image users may grep for
/// (`unexpected MIME type for sigstore attachment manifest`, `Mirrors also
/// failed`) are containers/image's.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("reading auth file {path}: {source}")]
    AuthFileRead {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("parsing auth file {path}: {message}")]
    AuthFileSyntax { path: PathBuf, message: String },

    #[error("invalid platform {input:?}: expected os/architecture or os/architecture/variant")]
    InvalidPlatform { input: String },

    /// registries.conf refused the reference (a blocked registry, a
    /// rewrite that produces an invalid reference).
    #[error(transparent)]
    Config(#[from] criguard_registries::Error),

    #[error("setting up the HTTP client for {host}: {message}")]
    ClientSetup { host: String, message: String },

    #[error("{host}: connection refused")]
    ConnectionRefused { host: String },

    #[error("{host}: timed out after {}", format_duration(*.timeout))]
    TimedOut { host: String, timeout: Duration },

    #[error("{operation} did not finish within its overall deadline of {}", format_duration(*.deadline))]
    DeadlineExceeded {
        operation: String,
        deadline: Duration,
    },

    /// DNS, TLS, a reset connection: anything below HTTP.
    #[error("{host}: {message}")]
    Transport { host: String, message: String },

    #[error(
        "{host}/{repository}: authentication required (401); no credentials were configured for it"
    )]
    AuthenticationRequired { host: String, repository: String },

    #[error("{host}/{repository}: credentials rejected (401){}", detail_suffix(.detail))]
    CredentialsRejected {
        host: String,
        repository: String,
        detail: String,
    },

    #[error("{host}/{repository}: access denied (403){}", detail_suffix(.detail))]
    AccessDenied {
        host: String,
        repository: String,
        detail: String,
    },

    #[error("{reference}: manifest unknown{}", detail_suffix(.detail))]
    ManifestUnknown { reference: String, detail: String },

    #[error("{host}/{repository}: blob {digest} unknown{}", detail_suffix(.detail))]
    BlobUnknown {
        host: String,
        repository: String,
        digest: String,
        detail: String,
    },

    #[error("{host}/{repository}: HTTP status {status} for {url}{}", detail_suffix(.detail))]
    HttpStatus {
        host: String,
        repository: String,
        url: String,
        status: u16,
        detail: String,
    },

    /// An error the registry or the client library reported in a form
    /// that fits none of the other variants.
    #[error("{host}/{repository}: {message}")]
    Registry {
        host: String,
        repository: String,
        message: String,
    },

    #[error("{what} exceeds 4 MiB limit ({limit} bytes){}", detail_suffix(.detail))]
    TooLarge {
        what: String,
        limit: usize,
        detail: String,
    },

    /// More signatures than criguard reads for one image: a `.sig`
    /// manifest with more layers than [`crate::MAX_SIGSTORE_ATTACHMENTS`],
    /// or a lookaside store that holds
    /// [`criguard_registries::MAX_LOOKASIDE_SIGNATURES`] without an end.
    /// The first words are containers/image's for the lookaside case. The
    /// image is refused rather than judged on some of its signatures: which
    /// ones would be left out is the signer's (or an attacker's) choice.
    #[error(
        "{what}: server provided {count} signatures, assuming that's unreasonable and a server error (criguard reads at most {limit})"
    )]
    TooManySignatures {
        what: String,
        count: usize,
        limit: usize,
    },

    /// The signatures of one image, lookaside and attachments together,
    /// add up to more bytes than [`crate::MAX_SIGNATURE_BYTES_PER_IMAGE`].
    #[error(
        "signatures of {image}: {total} bytes or more in all, more than the {limit} bytes criguard reads per image"
    )]
    SignaturesTooLarge {
        image: String,
        total: u64,
        limit: usize,
    },

    /// containers/image's wording for a lookaside read that failed.
    #[error("reading signature from {url}: {message}")]
    LookasideRead { url: String, message: String },

    #[error("parsing signature {url}: {message}")]
    LookasideParse { url: String, message: String },

    #[error("{what}: digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        what: String,
        expected: String,
        actual: String,
    },

    #[error("{what}: unsupported or invalid digest {digest:?}")]
    InvalidDigest { what: String, digest: String },

    #[error("unexpected MIME type for sigstore attachment manifest {reference}: {mime_type:?}")]
    SigstoreMimeType {
        reference: String,
        mime_type: String,
    },

    #[error(
        "{reference}: Docker schema 1 manifest ({media_type}) is not supported; push the image as Docker schema 2 or OCI"
    )]
    Schema1 {
        reference: String,
        media_type: String,
    },

    #[error("{reference}: unsupported manifest MIME type {media_type:?}")]
    UnsupportedManifestType {
        reference: String,
        media_type: String,
    },

    #[error("{reference}: invalid manifest: {message}")]
    InvalidManifest { reference: String, message: String },

    #[error(
        "{reference}: no image for platform {wanted} in the manifest list; available: {}",
        list_or_none(.available)
    )]
    NoMatchingPlatform {
        reference: String,
        wanted: Platform,
        available: Vec<String>,
    },

    /// Every source of a pull failed; the message lists the mirrors'
    /// errors and ends with the last source's, as containers/image does.
    #[error("(Mirrors also failed: [{}]): {last_reference}: {last}", mirror_list(.mirrors))]
    AllSourcesFailed {
        last_reference: String,
        last: Box<Error>,
        mirrors: Vec<(String, Error)>,
    },
}

/// What kind of trouble an [`Error`] is, for callers that branch on it
/// (metrics, retries, hints) rather than on each variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// No credentials, rejected ones, or access denied (401, 403).
    Authentication,
    /// A request or a whole operation ran out of time.
    Timeout,
    /// The registry could not be reached (refused, DNS, TLS, a reset).
    Unreachable,
    /// The manifest or blob does not exist.
    NotFound,
    /// The registry answered with an error status (5xx, or a 4xx other
    /// than the ones above).
    Server,
    /// What the registry served is unusable: too large, wrong digest,
    /// an unsupported or malformed manifest, no instance for the platform.
    Content,
    /// Local configuration: auth files, registries.conf, the HTTP client.
    Configuration,
}

impl ErrorKind {
    /// A fixed label for metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Authentication => "authentication",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Unreachable => "unreachable",
            ErrorKind::NotFound => "not-found",
            ErrorKind::Server => "server",
            ErrorKind::Content => "content",
            ErrorKind::Configuration => "configuration",
        }
    }
}

impl Error {
    /// The kind of trouble; for a pull that tried several sources, the
    /// kind of the last source's error, which is the one reported last.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::AuthFileRead { .. }
            | Self::AuthFileSyntax { .. }
            | Self::InvalidPlatform { .. }
            | Self::Config(_)
            | Self::ClientSetup { .. } => ErrorKind::Configuration,
            Self::ConnectionRefused { .. } | Self::Transport { .. } => ErrorKind::Unreachable,
            Self::TimedOut { .. } | Self::DeadlineExceeded { .. } => ErrorKind::Timeout,
            Self::AuthenticationRequired { .. }
            | Self::CredentialsRejected { .. }
            | Self::AccessDenied { .. } => ErrorKind::Authentication,
            Self::ManifestUnknown { .. } | Self::BlobUnknown { .. } => ErrorKind::NotFound,
            Self::HttpStatus { .. } | Self::Registry { .. } | Self::LookasideRead { .. } => {
                ErrorKind::Server
            }
            Self::TooLarge { .. }
            | Self::TooManySignatures { .. }
            | Self::SignaturesTooLarge { .. }
            | Self::LookasideParse { .. }
            | Self::DigestMismatch { .. }
            | Self::InvalidDigest { .. }
            | Self::SigstoreMimeType { .. }
            | Self::Schema1 { .. }
            | Self::UnsupportedManifestType { .. }
            | Self::InvalidManifest { .. }
            | Self::NoMatchingPlatform { .. } => ErrorKind::Content,
            Self::AllSourcesFailed { last, .. } => last.kind(),
        }
    }

    /// Whether the registry said the thing asked for does not exist, which
    /// for a sigstore attachment means "no signatures" rather than a failure.
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            Self::ManifestUnknown { .. } | Self::BlobUnknown { .. }
        )
    }
}

/// `1s`, `1.5s`, `250ms`: how people write time-outs.
pub(crate) fn format_duration(duration: Duration) -> String {
    if duration.subsec_nanos() == 0 {
        format!("{}s", duration.as_secs())
    } else if duration < Duration::from_secs(1) {
        format!("{}ms", duration.as_millis())
    } else {
        format!("{}s", duration.as_secs_f64())
    }
}

fn detail_suffix(detail: &str) -> String {
    if detail.is_empty() {
        String::new()
    } else {
        format!(": {detail}")
    }
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "none".to_owned()
    } else {
        items.join(", ")
    }
}

fn mirror_list(mirrors: &[(String, Error)]) -> String {
    struct Line<'a>(&'a str, &'a Error);
    impl fmt::Display for Line<'_> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "{}: {}", self.0, self.1)
        }
    }
    mirrors
        .iter()
        .map(|(reference, err)| Line(reference, err).to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_tell_credentials_from_outages_from_server_errors() {
        let host = || "r.example".to_owned();
        let repository = || "team/app".to_owned();
        let cases = [
            (
                Error::AuthenticationRequired {
                    host: host(),
                    repository: repository(),
                },
                ErrorKind::Authentication,
            ),
            (
                Error::TimedOut {
                    host: host(),
                    timeout: Duration::from_secs(1),
                },
                ErrorKind::Timeout,
            ),
            (
                Error::ConnectionRefused { host: host() },
                ErrorKind::Unreachable,
            ),
            (
                Error::HttpStatus {
                    host: host(),
                    repository: repository(),
                    url: "https://r.example/v2/".to_owned(),
                    status: 503,
                    detail: String::new(),
                },
                ErrorKind::Server,
            ),
            (
                Error::TooManySignatures {
                    what: "sigstore attachment manifest r.example/team/app:sha256-ab.sig"
                        .to_owned(),
                    count: 2000,
                    limit: 128,
                },
                ErrorKind::Content,
            ),
            (
                Error::SignaturesTooLarge {
                    image: "r.example/team/app@sha256:ab".to_owned(),
                    total: 20 << 20,
                    limit: 16 << 20,
                },
                ErrorKind::Content,
            ),
            (
                Error::DigestMismatch {
                    what: "manifest".to_owned(),
                    expected: "a".to_owned(),
                    actual: "b".to_owned(),
                },
                ErrorKind::Content,
            ),
        ];
        for (error, kind) in cases {
            assert_eq!(error.kind(), kind, "{error}");
        }
        // A pull that tried mirrors reports its last source's kind.
        let all = Error::AllSourcesFailed {
            last_reference: "r.example/team/app:v1".to_owned(),
            last: Box::new(Error::ConnectionRefused { host: host() }),
            mirrors: vec![(
                "mirror.example/team/app:v1".to_owned(),
                Error::TimedOut {
                    host: "mirror.example".to_owned(),
                    timeout: Duration::from_secs(1),
                },
            )],
        };
        assert_eq!(all.kind(), ErrorKind::Unreachable);
        assert_eq!(ErrorKind::NotFound.as_str(), "not-found");
    }
}
