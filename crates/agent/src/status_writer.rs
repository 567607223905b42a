//! The status writer: renders the cached objects as the agents do and
//! writes each object's conditions ([`crate::conditions`]) through the
//! status subresource, with a JSON merge patch of `status.conditions`
//! only, and only when they differ from what the object already says.
//!
//! One runs per cluster (a one-replica Deployment). Its patches depend
//! only on the objects, so a second writer for a moment writes the same
//! thing; the patch carries no resourceVersion, and the next watch event
//! corrects whatever a race left.

use std::sync::Arc;

use criguard_kube_policy::{ClusterImagePolicy, ImagePolicy, ImagePolicyStatus, ObjectRef, Target};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::api::{Patch, PatchParams};
use kube::{Api, Client, Resource, ResourceExt as _};

use crate::conditions::{next_conditions, wanted};
use crate::metrics::Metrics;
use crate::render::render;
use crate::watch::{Handled, Handler};

/// Writes conditions for every object on each call of the watch loop.
pub struct StatusWriter {
    client: Client,
    base: Vec<u8>,
    metrics: Arc<Metrics>,
}

impl StatusWriter {
    pub fn new(client: Client, base: Vec<u8>, metrics: Arc<Metrics>) -> StatusWriter {
        StatusWriter {
            client,
            base,
            metrics,
        }
    }

    async fn patch<K>(
        &self,
        api: Api<K>,
        object: &K,
        conditions: Vec<Condition>,
    ) -> Result<(), kube::Error>
    where
        K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    {
        let patch = Patch::Merge(serde_json::json!({
            "status": ImagePolicyStatus { conditions },
        }));
        api.patch_status(&object.name_any(), &PatchParams::default(), &patch)
            .await
            .map(|_| ())
    }

    fn record(&self, object: &ObjectRef, result: Result<(), kube::Error>, handled: &mut Handled) {
        match result {
            Ok(()) => {
                self.metrics.status_patch("patched");
                tracing::info!(%object, "status conditions written");
            }
            Err(e) => {
                self.metrics.status_patch("failed");
                tracing::warn!(%object, error = %e, "cannot write the status conditions; retrying");
                *handled = Handled::Retry;
            }
        }
    }
}

impl Handler<ClusterImagePolicy, ImagePolicy> for StatusWriter {
    async fn handle(
        &mut self,
        cluster: Vec<Arc<ClusterImagePolicy>>,
        namespaced: Vec<Arc<ImagePolicy>>,
    ) -> Handled {
        let result = render(&self.base, Target::Criguard, &cluster, &namespaced);
        if let Err(errors) = &result {
            tracing::warn!(%errors, "the policy objects do not render");
        }
        let objects: Vec<ObjectRef> = cluster
            .iter()
            .map(|p| ObjectRef::cluster(p))
            .chain(namespaced.iter().map(|p| ObjectRef::namespaced(p)))
            .collect();
        let all = wanted(&objects, &result);
        let now = Time(k8s_openapi::jiff::Timestamp::now());
        let mut handled = Handled::Done;
        for policy in &cluster {
            let object = ObjectRef::cluster(policy);
            let current = policy
                .status
                .as_ref()
                .map_or(&[][..], |s| &s.conditions[..]);
            let Some(want) = all.get(&object) else {
                continue;
            };
            if let Some(next) =
                next_conditions(current, want, policy.metadata.generation, now.clone())
            {
                let api: Api<ClusterImagePolicy> = Api::all(self.client.clone());
                let result = self.patch(api, policy, next).await;
                self.record(&object, result, &mut handled);
            }
        }
        for policy in &namespaced {
            let object = ObjectRef::namespaced(policy);
            let current = policy
                .status
                .as_ref()
                .map_or(&[][..], |s| &s.conditions[..]);
            let Some(want) = all.get(&object) else {
                continue;
            };
            if let Some(next) =
                next_conditions(current, want, policy.metadata.generation, now.clone())
            {
                let namespace = object.namespace.clone().unwrap_or_default();
                let api: Api<ImagePolicy> = Api::namespaced(self.client.clone(), &namespace);
                let result = self.patch(api, policy, next).await;
                self.record(&object, result, &mut handled);
            }
        }
        handled
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use criguard_kube_policy::ImagePolicySpec;
    use http::{Request, Response};
    use kube::client::Body;

    use super::*;

    const BASE: &[u8] = br#"{"default":[{"type":"insecureAcceptAnything"}]}"#;

    fn policy() -> Arc<ImagePolicy> {
        let spec: ImagePolicySpec = serde_json::from_value(serde_json::json!({
            "scopes": ["quay.io/team"],
            "policy": {"rootOfTrust": {"policyType": "PublicKey", "publicKey": {"keyData":
                "LS0tLS1CRUdJTiBQVUJMSUMgS0VZLS0tLS0KTUZrd0V3WUhLb1pJemowQ0FRWUlLb1pJemowREFRY0RRZ0FFQlJJeUYvSjNxM3N0YzErWTB6UG05SStYVWxhZgpJbHFDR0lTY3JKWFBrVjZMMnFSb3lmTjBuNUpvQzBiTWE4L2ZCOU5uUkdjYzRlb00yUTkrYWNMVDRRPT0KLS0tLS1FTkQgUFVCTElDIEtFWS0tLS0tCg=="}}},
        }))
        .unwrap();
        let mut policy = ImagePolicy::new("app", spec);
        policy.metadata.namespace = Some("team".into());
        policy.metadata.generation = Some(3);
        Arc::new(policy)
    }

    /// The API server failing the status patch (a 500 from an overloaded
    /// etcd, which the real test server cannot be made to answer): the
    /// failure is counted and the loop is asked to retry.
    #[tokio::test]
    async fn a_failed_status_patch_is_counted_and_retried() {
        let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let server = tokio::spawn(async move {
            let (request, respond) = handle.next_request().await.unwrap();
            let seen = (request.method().clone(), request.uri().path().to_owned());
            let body = request.into_body().collect_bytes().await.unwrap();
            let status = serde_json::json!({"kind": "Status", "apiVersion": "v1",
                "status": "Failure", "message": "etcdserver: request timed out",
                "reason": "InternalError", "code": 500});
            respond.send_response(
                Response::builder()
                    .status(500)
                    .body(Body::from(serde_json::to_vec(&status).unwrap()))
                    .unwrap(),
            );
            (seen, body)
        });
        let metrics = Arc::new(Metrics::new());
        let mut writer = StatusWriter::new(
            Client::new(service, "default"),
            BASE.to_vec(),
            Arc::clone(&metrics),
        );
        let handled = writer.handle(Vec::new(), vec![policy()]).await;
        assert_eq!(handled, Handled::Retry);
        let ((method, path), body) = server.await.unwrap();
        assert_eq!(method, http::Method::PATCH);
        assert_eq!(
            path,
            "/apis/criguard.dev/v1alpha1/namespaces/team/imagepolicies/app/status"
        );
        let sent: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let conditions: BTreeMap<String, (String, i64)> = sent["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["type"].as_str().unwrap().to_owned(),
                    (
                        c["status"].as_str().unwrap().to_owned(),
                        c["observedGeneration"].as_i64().unwrap(),
                    ),
                )
            })
            .collect();
        assert_eq!(conditions["Ready"], ("True".to_owned(), 3));
        assert_eq!(conditions["Applied"], ("True".to_owned(), 3));
        assert_eq!(conditions["ScopeConflict"], ("False".to_owned(), 3));
        assert!(
            metrics
                .encode()
                .contains("criguard_agent_status_patches_total{result=\"failed\"} 1")
        );
    }
}
