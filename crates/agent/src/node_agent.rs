//! The node agent: renders the cached objects and writes the node's files
//! through [`Sink`]s, one for `serve` and optionally one for CRI-O.
//!
//! Whatever fails, the files in force stay: a render error (an invalid
//! object the API server let through, an invalid base policy) writes
//! nothing and waits for the next change; a write error is retried; the
//! sinks only ever swap in complete sets.

use std::sync::Arc;

use criguard_kube_policy::{ClusterImagePolicy, ImagePolicy, Rendered, Target};

use crate::fileset::FileSet;
use crate::metrics::Metrics;
use crate::render::{crio_files, render, serve_files};
use crate::watch::{Handled, Handler};
use crate::writer::{Sink, WriteOutcome};

/// One output: a sink, the target it is rendered for, and how its set is
/// made from the render.
pub struct Output<S> {
    pub name: &'static str,
    pub sink: S,
    pub target: Target,
    pub files: fn(&Rendered) -> Result<FileSet, String>,
}

impl<S: Sink> Output<S> {
    /// `serve`'s folder: policy.json, policies/, registries.d/, audit/.
    pub fn serve(sink: S) -> Output<S> {
        Output {
            name: "serve",
            sink,
            target: Target::Criguard,
            files: serve_files,
        }
    }

    /// CRI-O's `signature_policy_dir`: `<namespace>.json`, enforced
    /// objects only.
    pub fn crio(sink: S) -> Output<S> {
        Output {
            name: "crio",
            sink,
            target: Target::Crio,
            files: crio_files,
        }
    }
}

/// Renders and writes on each call of the watch loop.
pub struct NodeAgent<S> {
    base: Vec<u8>,
    outputs: Vec<Output<S>>,
    metrics: Arc<Metrics>,
}

impl<S: Sink> NodeAgent<S> {
    /// `base`: the base policy.json's bytes (read once at start).
    pub fn new(base: Vec<u8>, outputs: Vec<Output<S>>, metrics: Arc<Metrics>) -> NodeAgent<S> {
        NodeAgent {
            base,
            outputs,
            metrics,
        }
    }

    /// Renders and writes every output; [`Handled::Retry`] when a write
    /// failed.
    pub fn apply(
        &mut self,
        cluster: &[Arc<ClusterImagePolicy>],
        namespaced: &[Arc<ImagePolicy>],
    ) -> Handled {
        let mut handled = Handled::Done;
        for output in &mut self.outputs {
            let set = render(&self.base, output.target, cluster, namespaced)
                .map_err(|e| e.to_string())
                .and_then(|rendered| (output.files)(&rendered));
            let set = match set {
                Ok(set) => {
                    self.metrics.render("ok");
                    set
                }
                Err(problem) => {
                    self.metrics.render("failed");
                    tracing::error!(output = output.name, %problem, "the policy objects do not render; the last good files stay in force");
                    continue;
                }
            };
            match output.sink.write(&set) {
                Ok(WriteOutcome::Written { generation }) => {
                    self.metrics.write("written");
                    tracing::info!(
                        output = output.name,
                        %generation,
                        cluster_policies = cluster.len(),
                        namespace_policies = namespaced.len(),
                        files = set.files().len(),
                        "wrote the rendered policies"
                    );
                }
                Ok(WriteOutcome::Unchanged { .. }) => self.metrics.write("unchanged"),
                Err(e) => {
                    self.metrics.write("failed");
                    tracing::error!(output = output.name, error = %e, "cannot write the rendered policies; the last good files stay in force");
                    handled = Handled::Retry;
                }
            }
        }
        handled
    }
}

impl<S: Sink> Handler<ClusterImagePolicy, ImagePolicy> for NodeAgent<S> {
    async fn handle(
        &mut self,
        cluster: Vec<Arc<ClusterImagePolicy>>,
        namespaced: Vec<Arc<ImagePolicy>>,
    ) -> Handled {
        self.apply(&cluster, &namespaced)
    }
}

#[cfg(test)]
mod tests {
    use criguard_kube_policy::{ImagePolicySpec, Mode, Policy, PolicyType, PublicKey, RootOfTrust};

    use super::*;
    use crate::writer::MemorySink;

    const BASE: &[u8] = br#"{"default":[{"type":"insecureAcceptAnything"}]}"#;

    fn key_data() -> String {
        use base64::Engine as _;
        let pem = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEBRIyF/J3q3stc1+Y0zPm9I+XUlaf\nIlqCGIScrJXPkV6L2qRoyfN0n5JoC0bMa8/fB9NnRGcc4eoM2Q9+acLT4Q==\n-----END PUBLIC KEY-----\n";
        base64::engine::general_purpose::STANDARD.encode(pem)
    }

    fn spec(scope: &str, key: String) -> ImagePolicySpec {
        ImagePolicySpec {
            scopes: vec![scope.into()],
            policy: Policy {
                root_of_trust: RootOfTrust {
                    policy_type: PolicyType::PublicKey,
                    public_key: Some(PublicKey {
                        key_data: key,
                        rekor_key_data: None,
                    }),
                    fulcio_ca_with_rekor: None,
                    pki: None,
                },
                signed_identity: None,
            },
            mode: Mode::Enforce,
        }
    }

    fn namespaced(ns: &str, scope: &str, key: String) -> Arc<ImagePolicy> {
        let mut policy = ImagePolicy::new("app", spec(scope, key));
        policy.metadata.namespace = Some(ns.into());
        Arc::new(policy)
    }

    #[test]
    fn a_render_error_keeps_the_last_good_set() {
        let metrics = Arc::new(Metrics::new());
        let mut agent = NodeAgent::new(
            BASE.to_vec(),
            vec![Output::serve(MemorySink::default())],
            Arc::clone(&metrics),
        );
        let good = namespaced("team", "quay.io/team/app", key_data());
        assert_eq!(agent.apply(&[], &[good]), Handled::Done);
        let bad = namespaced("team", "quay.io/team/app", "not base64 of a PEM key".into());
        assert_eq!(agent.apply(&[], &[bad]), Handled::Done);
        let written = &agent.outputs[0].sink.written;
        assert_eq!(written.len(), 1);
        assert!(
            written[0]
                .files()
                .contains_key(std::path::Path::new("policies/team.json"))
        );
        assert!(
            metrics
                .encode()
                .contains("criguard_agent_renders_total{result=\"failed\"} 1")
        );
    }

    #[test]
    fn a_write_error_asks_for_a_retry() {
        let metrics = Arc::new(Metrics::new());
        let sink = MemorySink {
            fail: Some("disk full".into()),
            ..MemorySink::default()
        };
        let mut agent = NodeAgent::new(BASE.to_vec(), vec![Output::serve(sink)], metrics);
        assert_eq!(agent.apply(&[], &[]), Handled::Retry);
    }

    #[test]
    fn crio_gets_namespace_files_at_the_top_and_no_audit_objects() {
        let metrics = Arc::new(Metrics::new());
        let mut agent = NodeAgent::new(
            BASE.to_vec(),
            vec![Output::crio(MemorySink::default())],
            metrics,
        );
        let enforce = namespaced("team", "quay.io/team/app", key_data());
        let mut audit = (*namespaced("other", "quay.io/other", key_data())).clone();
        audit.spec.mode = Mode::Audit;
        agent.apply(&[], &[enforce, Arc::new(audit)]);
        let written = &agent.outputs[0].sink.written;
        let files = written[0].files();
        let team = String::from_utf8_lossy(&files[std::path::Path::new("team.json")]);
        assert!(team.contains("quay.io/team/app"), "{team}");
        // The audit object's namespace gets no requirement of it.
        let other = files
            .get(std::path::Path::new("other.json"))
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default();
        assert!(!other.contains("quay.io/other"), "{other}");
        assert!(
            files.keys().all(|p| p.components().count() == 1),
            "{files:?}"
        );
    }
}
