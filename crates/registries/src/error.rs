use criguard_reference::ReferenceError;

use crate::go_url::go_quote;
use crate::{MAX_CONFIG_FILE_SIZE, MAX_LOOKASIDE_SIGNATURES};

/// Everything that can go wrong reading registries.d or registries.conf, or
/// using what they say. Texts that containers/image users may grep for are
/// containers/image's; the others name the file and the offending value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("reading {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },

    #[error("parsing {file}: the file is larger than the limit of {MAX_CONFIG_FILE_SIZE} bytes")]
    FileTooLarge { file: String },

    /// Malformed YAML or TOML, or a value of the wrong type.
    #[error("parsing {file}: {message}")]
    Syntax { file: String, message: String },

    #[error(
        "Error parsing signature storage configuration: \"default-docker\" defined both in {} and {}",
        go_quote(.first.as_bytes()),
        go_quote(.second.as_bytes())
    )]
    DuplicateDefaultDocker { first: String, second: String },

    #[error(
        "Error parsing signature storage configuration: \"docker\" namespace {} defined both in {} and {}",
        go_quote(.namespace.as_bytes()),
        go_quote(.first.as_bytes()),
        go_quote(.second.as_bytes())
    )]
    DuplicateDockerNamespace {
        namespace: String,
        first: String,
        second: String,
    },

    #[error("Invalid signature storage URL {url}: {reason}")]
    InvalidLookasideUrl { url: String, reason: String },

    #[error("Unsupported scheme when reading signature from {url}")]
    UnsupportedLookasideScheme { url: String },

    /// `file:relative` and the like: Go would read the signatures from a
    /// path made of the repository name alone, relative to `/`.
    #[error(
        "lookaside URL {url} has no path part; write file:///absolute/path or https://host/path"
    )]
    OpaqueLookasideUrl { url: String },

    #[error("lookaside URL {url} decodes to a file path that is not UTF-8")]
    NonUtf8LookasidePath { url: String },

    #[error("lookaside signatures are numbered from 1")]
    SignatureNumberZero,

    #[error(
        "server provided {MAX_LOOKASIDE_SIGNATURES} signatures, assuming that's unreasonable and a server error"
    )]
    TooManyLookasideSignatures,

    #[error("loading registries configuration {}: {message}", go_quote(.file.as_bytes()))]
    InvalidRegistriesConf { file: String, message: String },

    #[error(
        "loading registries configuration {}: the v1 format ([registries.search], [registries.insecure], [registries.block]) is not supported; use [[registry]] tables",
        go_quote(.file.as_bytes())
    )]
    RegistriesConfV1 { file: String },

    #[error("registry {registry} is blocked in {file}")]
    RegistryBlocked { registry: String, file: String },

    #[error("invalid prefix '{prefix}' for reference '{reference}'")]
    PrefixMismatch { prefix: String, reference: String },

    #[error("rewriting reference {reference} as {rewritten}: {source}")]
    RewriteReference {
        reference: String,
        rewritten: String,
        #[source]
        source: ReferenceError,
    },
}
