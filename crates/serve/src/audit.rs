//! One audit line and one metric increment per decision.

use std::time::Instant;

use crate::decisions::Trace;
use crate::{Metrics, Mode, Refusal};

/// What the audit line of one decision says: who asked, about what, and
/// what the decision service found.
pub(crate) struct Audit {
    pub(crate) started: Instant,
    pub(crate) namespace: String,
    pub(crate) container: String,
    pub(crate) image: String,
    pub(crate) trace: Trace,
    /// The namespace's mode: in audit mode a refusal is logged and counted
    /// as `would_reject`, and not enforced.
    pub(crate) mode: Mode,
    /// Why the audit policy set would refuse what the enforced policies
    /// allowed (`audit_policies.rs`): logged and counted as `would_reject`.
    pub(crate) audit_set: Option<Refusal>,
}

impl Audit {
    pub(crate) fn new(namespace: &str) -> Audit {
        Audit {
            started: Instant::now(),
            namespace: namespace.to_owned(),
            container: String::new(),
            image: String::new(),
            trace: Trace::default(),
            mode: Mode::Enforce,
            audit_set: None,
        }
    }

    /// Logs the decision on the `criguard::audit` target and counts it.
    pub(crate) fn record(
        &self,
        metrics: &Metrics,
        operation: &'static str,
        refusal: Option<&Refusal>,
    ) {
        let elapsed = self.started.elapsed();
        let trace = &self.trace;
        // An allowance the audit set would refuse is that refusal, audited.
        let (refusal, mode) = match (refusal, &self.audit_set) {
            (None, Some(would)) => (Some(would), Mode::Audit),
            _ => (refusal, self.mode),
        };
        let (verdict, reason) = match refusal {
            None => ("allowed", trace.reason),
            Some(r) if mode == Mode::Audit && r.is_auditable() => {
                ("would_reject", r.reason_class())
            }
            Some(r) if r.is_rejection() => ("rejected", r.reason_class()),
            Some(r) => ("error", r.reason_class()),
        };
        metrics.decision(operation, verdict, reason, elapsed);
        if let Some(Refusal::Source(e)) = refusal {
            metrics.source_error(e.kind().as_str());
        }
        let digest = trace
            .digest
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default();
        let detail = refusal
            .map(|r| r.describe(&self.namespace))
            .unwrap_or_default();
        tracing::info!(
            target: "criguard::audit",
            operation,
            namespace = %self.namespace,
            container = %self.container,
            image = %self.image,
            digest = %digest,
            verdict,
            mode = mode.label(),
            reason,
            detail = %detail,
            cached = trace.cached,
            signatures = trace.signatures,
            elapsed_ms = elapsed.as_secs_f64() * 1000.0,
            resolve_ms = trace.resolve.as_secs_f64() * 1000.0,
            signatures_ms = trace.fetch.as_secs_f64() * 1000.0,
            check_ms = trace.check.as_secs_f64() * 1000.0,
            "decision"
        );
    }
}
