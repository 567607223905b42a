//! Prometheus metrics, served on a loopback address.
//!
//! Label values come from fixed sets (verdicts, reason classes, CRI method
//! names), never from requests, so no client can grow the series count.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::Error;

/// The CRI v1 methods, for the pass-through latency label. Anything else
/// is counted as `other`.
const CRI_METHODS: &[&str] = &[
    "Version",
    "RunPodSandbox",
    "StopPodSandbox",
    "RemovePodSandbox",
    "PodSandboxStatus",
    "ListPodSandbox",
    "StreamPodSandboxes",
    "CreateContainer",
    "StartContainer",
    "StopContainer",
    "RemoveContainer",
    "ListContainers",
    "StreamContainers",
    "ContainerStatus",
    "UpdateContainerResources",
    "ReopenContainerLog",
    "ExecSync",
    "Exec",
    "Attach",
    "PortForward",
    "ContainerStats",
    "ListContainerStats",
    "StreamContainerStats",
    "PodSandboxStats",
    "ListPodSandboxStats",
    "StreamPodSandboxStats",
    "UpdateRuntimeConfig",
    "Status",
    "CheckpointContainer",
    "CheckpointPod",
    "RestorePod",
    "GetContainerEvents",
    "ListMetricDescriptors",
    "ListPodSandboxMetrics",
    "StreamPodSandboxMetrics",
    "RuntimeConfig",
    "UpdatePodSandboxResources",
    "ListImages",
    "StreamImages",
    "ImageStatus",
    "PullImage",
    "RemoveImage",
    "ImageFsInfo",
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DecisionLabels {
    operation: &'static str,
    verdict: &'static str,
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    operation: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CacheLabels {
    cache: &'static str,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabels {
    method: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

/// Every metric the daemon exports.
pub struct Metrics {
    registry: Registry,
    decisions: Family<DecisionLabels, Counter>,
    verification: Family<OperationLabels, Histogram>,
    cache: Family<CacheLabels, Counter>,
    passthrough: Family<MethodLabels, Histogram>,
    runtime_unavailable: Counter,
    policy_reloads: Family<ResultLabels, Counter>,
    registry_config_reloads: Family<FileResultLabels, Counter>,
    registry_fetches: Family<FetchLabels, Counter>,
    source_errors: Family<KindLabels, Counter>,
    pinned_tags: Family<ResultLabels, Counter>,
    state_store: Family<EventLabels, Counter>,
}

/// What happened to the store of verified pulls: `rebuilt`, `corrupt`,
/// `evicted`, `unavailable`, `write-error`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EventLabels {
    event: &'static str,
}

/// `file`: `registries-d`, `registries-conf` or `auth-file`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FileResultLabels {
    file: &'static str,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FetchLabels {
    fetch: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("criguard");
        let decisions = Family::<DecisionLabels, Counter>::default();
        registry.register(
            "decisions",
            "Pull and create decisions, by verdict and reason class",
            decisions.clone(),
        );
        // 0.5 ms to about 16 s.
        let verification = Family::<OperationLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0005, 2.0, 16))
        });
        registry.register(
            "verification_duration_seconds",
            "Time to decide a pull or a create, cache hits included",
            verification.clone(),
        );
        let cache = Family::<CacheLabels, Counter>::default();
        registry.register(
            "cache_lookups",
            "Decision, signature and resolution cache lookups by result",
            cache.clone(),
        );
        // 20 µs to about 0.65 s.
        let passthrough = Family::<MethodLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.00002, 2.0, 16))
        });
        registry.register(
            "passthrough_duration_seconds",
            "Time from a forwarded call to the runtime's response headers",
            passthrough.clone(),
        );
        let runtime_unavailable = Counter::default();
        registry.register(
            "runtime_unavailable",
            "Calls answered Unavailable because the runtime could not be reached",
            runtime_unavailable.clone(),
        );
        let policy_reloads = Family::<ResultLabels, Counter>::default();
        registry.register(
            "policy_reloads",
            "Policy file changes applied, refused (invalid) or removed",
            policy_reloads.clone(),
        );
        let registry_config_reloads = Family::<FileResultLabels, Counter>::default();
        registry.register(
            "registry_config_reloads",
            "registries.d, registries.conf and auth file changes applied or refused (invalid, \
             unreadable or gone: the last valid version stays)",
            registry_config_reloads.clone(),
        );
        let registry_fetches = Family::<FetchLabels, Counter>::default();
        registry.register(
            "registry_fetches",
            "Registry operations made (manifest resolutions, signature reads); concurrent \
             requests for the same thing share one",
            registry_fetches.clone(),
        );
        let source_errors = Family::<KindLabels, Counter>::default();
        registry.register(
            "registry_errors",
            "Decisions that could not be made because a registry failed, by kind: \
             authentication, timeout, unreachable, not-found, server, content, configuration",
            source_errors.clone(),
        );
        let pinned_tags = Family::<ResultLabels, Counter>::default();
        registry.register(
            "pinned_tags",
            "Names the kubelet pulled, written into the runtime for the digest criguard \
             verified and pinned: written, not-visible (written, not yet in the CRI's answers), \
             failed, unsupported (the runtime has no containerd images service)",
            pinned_tags.clone(),
        );
        let state_store = Family::<EventLabels, Counter>::default();
        registry.register(
            "state_store_events",
            "Events of the on-disk store of verified pulls: rebuilt (unreadable, moved \
             aside), corrupt (a record dropped), evicted, unavailable, write-error",
            state_store.clone(),
        );
        Metrics {
            registry,
            pinned_tags,
            state_store,
            registry_fetches,
            source_errors,
            decisions,
            verification,
            cache,
            passthrough,
            runtime_unavailable,
            policy_reloads,
            registry_config_reloads,
        }
    }

    pub(crate) fn decision(
        &self,
        operation: &'static str,
        verdict: &'static str,
        reason: &'static str,
        elapsed: Duration,
    ) {
        self.decisions
            .get_or_create(&DecisionLabels {
                operation,
                verdict,
                reason,
            })
            .inc();
        self.verification
            .get_or_create(&OperationLabels { operation })
            .observe(elapsed.as_secs_f64());
    }

    pub(crate) fn cache(&self, cache: &'static str, hit: bool) {
        self.cache
            .get_or_create(&CacheLabels {
                cache,
                result: if hit { "hit" } else { "miss" },
            })
            .inc();
    }

    pub(crate) fn passthrough(&self, path: &str, elapsed: Duration, unavailable: bool) {
        let method = path
            .rsplit('/')
            .next()
            .and_then(|m| CRI_METHODS.iter().find(|known| **known == m))
            .copied()
            .unwrap_or("other");
        self.passthrough
            .get_or_create(&MethodLabels { method })
            .observe(elapsed.as_secs_f64());
        if unavailable {
            self.runtime_unavailable.inc();
        }
    }

    pub(crate) fn registry_fetch(&self, fetch: &'static str) {
        self.registry_fetches
            .get_or_create(&FetchLabels { fetch })
            .inc();
    }

    pub(crate) fn source_error(&self, kind: &'static str) {
        self.source_errors.get_or_create(&KindLabels { kind }).inc();
    }

    pub(crate) fn pinned_tag(&self, result: &'static str) {
        self.pinned_tags
            .get_or_create(&ResultLabels { result })
            .inc();
    }

    pub(crate) fn state_store(&self, event: &'static str) {
        self.state_store.get_or_create(&EventLabels { event }).inc();
    }

    pub(crate) fn runtime_unavailable(&self) {
        self.runtime_unavailable.inc();
    }

    pub fn policy_reload(&self, result: &'static str) {
        self.policy_reloads
            .get_or_create(&ResultLabels { result })
            .inc();
    }

    pub fn registry_config_reload(&self, file: &'static str, result: &'static str) {
        self.registry_config_reloads
            .get_or_create(&FileResultLabels { file, result })
            .inc();
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

/// Binds `address` now (a taken port fails the start) and serves
/// `GET /metrics` on it from a background task.
pub async fn serve_metrics(
    address: &str,
    metrics: Arc<Metrics>,
) -> Result<std::net::SocketAddr, Error> {
    criguard_metrics_http::serve(address, Arc::new(move || metrics.encode()))
        .await
        .map_err(|source| Error::Metrics {
            address: address.to_owned(),
            source,
        })
}
