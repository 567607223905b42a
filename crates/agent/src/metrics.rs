//! What the agent and the status writer count, for Prometheus: an agent
//! that keeps its last good files because rendering or the API server
//! fails is only visible here and in its log.

use std::net::SocketAddr;
use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: &'static str,
}

/// The agent's and the status writer's counters.
pub struct Metrics {
    registry: Registry,
    renders: Family<ResultLabel, Counter>,
    writes: Family<ResultLabel, Counter>,
    watch_errors: Family<KindLabel, Counter>,
    status_patches: Family<ResultLabel, Counter>,
    synced: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("criguard_agent");
        let renders = Family::<ResultLabel, Counter>::default();
        registry.register(
            "renders",
            "Renders of the policy objects, by result (ok, failed)",
            renders.clone(),
        );
        let writes = Family::<ResultLabel, Counter>::default();
        registry.register(
            "writes",
            "Rendered sets written, by result (written, unchanged, failed)",
            writes.clone(),
        );
        let watch_errors = Family::<KindLabel, Counter>::default();
        registry.register(
            "watch_errors",
            "Errors listing or watching the policy objects (the last good files stay)",
            watch_errors.clone(),
        );
        let status_patches = Family::<ResultLabel, Counter>::default();
        registry.register(
            "status_patches",
            "Status patches by the status writer, by result (patched, failed)",
            status_patches.clone(),
        );
        let synced = Gauge::default();
        registry.register(
            "synced",
            "1 once both kinds have been listed in full",
            synced.clone(),
        );
        Metrics {
            registry,
            renders,
            writes,
            watch_errors,
            status_patches,
            synced,
        }
    }

    pub fn render(&self, result: &'static str) {
        self.renders.get_or_create(&ResultLabel { result }).inc();
    }

    pub fn write(&self, result: &'static str) {
        self.writes.get_or_create(&ResultLabel { result }).inc();
    }

    pub fn watch_error(&self, kind: &'static str) {
        self.watch_errors.get_or_create(&KindLabel { kind }).inc();
    }

    pub fn status_patch(&self, result: &'static str) {
        self.status_patches
            .get_or_create(&ResultLabel { result })
            .inc();
    }

    pub fn set_synced(&self, synced: bool) {
        self.synced.set(i64::from(synced));
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

/// Binds `address` now (a taken port fails the start) and serves `GET
/// /metrics` from a background task.
pub async fn serve_metrics(address: &str, metrics: Arc<Metrics>) -> std::io::Result<SocketAddr> {
    criguard_metrics_http::serve(address, Arc::new(move || metrics.encode())).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_appear_with_their_labels() {
        let metrics = Metrics::new();
        metrics.render("failed");
        metrics.write("written");
        metrics.watch_error("ImagePolicy");
        metrics.set_synced(true);
        let text = metrics.encode();
        assert!(
            text.contains("criguard_agent_renders_total{result=\"failed\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("criguard_agent_writes_total{result=\"written\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("criguard_agent_watch_errors_total{kind=\"ImagePolicy\"} 1"),
            "{text}"
        );
        assert!(text.contains("criguard_agent_synced 1"), "{text}");
    }
}
