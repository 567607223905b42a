//! `criguard serve`: the node daemon.
//!
//! It puts the policy engine on the CRI proxy (`criguard-cri`): a pull is
//! resolved to the manifest that would run, its signatures are checked
//! against the pod's namespace policy, and the runtime is told to pull
//! exactly that digest; a container is checked again when it is created,
//! from what was learnt at pull time. Around that: the decision and
//! signature caches, policy files that reload without a restart, the
//! configuration file, metrics and audit logs.

mod config;
mod daemon;
mod enforcer;
mod error;
mod files;
mod metrics;
mod policies;

pub use config::{
    ConfigFile, DEFAULT_CONFIG, DEFAULT_POLICY, DEFAULT_REGISTRIES_D, LogFormat, Settings,
};
pub use daemon::{registry_config, run};
pub use enforcer::{CacheSettings, Enforcer, PullRecord, cri_reference};
pub use error::Error;
pub use files::{FsTrustFiles, MAX_TRUST_FILE_SIZE, read_limited};
pub use metrics::{Metrics, serve_metrics};
pub use policies::{LoadedPolicy, Policies, ReloadOutcome};
