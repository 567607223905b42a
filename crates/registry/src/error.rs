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

impl Error {
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
