//! `criguard serve`: the node daemon.
//!
//! It puts the verification pipeline (`criguard-verification`) on the CRI
//! proxy (`criguard-cri`): a pull is resolved to the manifest that would
//! run, its signatures are checked against the pod's namespace policy, and
//! the runtime is told to pull exactly that digest; a container is checked
//! again when it is created, from what was learnt at pull time.
//!
//! Two layers: the [`DecisionService`] (`decisions/`) decides, with its
//! caches, behind the [`RegistryAccess`] and [`RuntimeView`] traits; the
//! [`Enforcer`] (`gate.rs`) adapts CRI requests to it and its answers to
//! gRPC statuses, audit lines and metrics. Around them: policy files that
//! reload without a restart, the configuration file, the wiring.

mod audit;
mod audit_policies;
mod config;
mod credentials;
mod daemon;
mod decisions;
mod error;
mod gate;
mod metrics;
mod modes;
mod names;
mod pinned_tags;
mod policies;
mod refusal;
mod reload;
mod runtime_view;
#[cfg(test)]
mod testing;

pub use audit_policies::AuditPolicies;
pub use config::{ConfigFile, DEFAULT_CONFIG, LogFormat, Settings};
pub use daemon::run;
pub use decisions::{CacheSettings, DecisionService, Registries, RegistryAccess, Verified};
pub use error::Error;
pub use gate::{Enforcer, PullRecord};
pub use metrics::{Metrics, serve_metrics};
pub use modes::{Mode, Modes};
pub use names::cri_reference;
pub use pinned_tags::TagPinnedPulls;
pub use policies::{LoadedPolicy, OnInvalidPolicy, Policies};
pub use refusal::Refusal;
pub use reload::{ConfigKind, ReloadOutcome, Reloadable, watch};
pub use runtime_view::{RuntimeImage, RuntimeView};
