use std::path::PathBuf;

/// Why the daemon cannot start (or a configuration cannot be used).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {message}", path.display())]
    Config { path: PathBuf, message: String },
    /// A policy file with problems; each is listed, as `policy lint` does.
    #[error("{}: invalid policy: {}", path.display(), problems.join("; "))]
    InvalidPolicy {
        path: PathBuf,
        problems: Vec<String>,
    },
    #[error(transparent)]
    Registries(#[from] criguard_registries::Error),
    #[error(transparent)]
    Registry(#[from] criguard_registry::Error),
    #[error(transparent)]
    Source(std::sync::Arc<criguard_registry::Error>),
    #[error(transparent)]
    SystemConfig(#[from] criguard_registry::SystemConfigError),
    #[error(transparent)]
    Cri(#[from] criguard_cri::Error),
    #[error("metrics address {address}: {source}")]
    Metrics {
        address: String,
        source: std::io::Error,
    },
}
