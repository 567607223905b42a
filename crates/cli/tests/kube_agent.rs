//! The node agent and the status writer against a real API server (the
//! CRD half of kube-apiserver with etcd, `../shared/tools/kube-apiserver.sh`),
//! with the committed CRDs, a real registry with cosign-signed images, and
//! a real `criguard serve` reading what the agent writes (in front of a
//! stand-in runtime: the pull checks are what is looked at here).
//!
//! Policies are created, changed and deleted through the API, and each
//! time the files on "the node" (a temp dir) and serve's verdicts follow
//! (an `Audit` policy only in the audit set, counted as `would_reject`);
//! the status writer's conditions carry the generation they describe, and
//! a scope conflict is reported and clears itself. Then the API server
//! stops, and the last good policy stays in force.

#![allow(clippy::unwrap_used)]

mod kube_support;
mod serve_support;

use std::path::Path;

use criguard_kube_policy::{ClusterImagePolicy, ImagePolicy};
use criguard_testutil::grpc::encode;
use criguard_testutil::{CriguardDaemon, FakeRuntime, KubeApiServer, grpc_call_raw_blocking};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube_support::*;
use serde_json::json;
use serve_support::{Node, PULL_IMAGE, pull};

const OK: i32 = 0;
const UNKNOWN: i32 = 2;

/// The gRPC status code and message of a kubelet's pull of `image` for a
/// pod in `namespace`, through criguard.
fn pull_status(daemon: &CriguardDaemon, image: &str, namespace: &str) -> (i32, String) {
    let response = tokio::task::block_in_place(|| {
        grpc_call_raw_blocking(
            daemon.socket(),
            PULL_IMAGE,
            &encode(&pull(image, namespace)),
        )
    });
    (
        response.grpc_status.unwrap_or(-1),
        response.grpc_message.unwrap_or_default(),
    )
}

fn condition<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

async fn namespaced_conditions(
    api: &Api<ImagePolicy>,
    name: &str,
) -> (Option<i64>, Vec<Condition>) {
    let policy = api.get(name).await.unwrap();
    (
        policy.metadata.generation,
        policy.status.map(|s| s.conditions).unwrap_or_default(),
    )
}

/// Whether every one of `wanted` (type, status) is there, with the
/// object's current generation as its `observedGeneration`.
fn says(generation: Option<i64>, conditions: &[Condition], wanted: &[(&str, &str)]) -> bool {
    wanted.iter().all(|(type_, status)| {
        condition(conditions, type_)
            .is_some_and(|c| c.status == *status && c.observed_generation == generation)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_and_the_status_writer_follow_a_real_api_server() {
    let node = Node::new();
    let host = node.registry.host();
    let signed = Node::name(&node.signed);
    let unsigned = Node::name(&node.unsigned);
    let mut api = KubeApiServer::start();
    let client = client(&api).await;
    apply_crds(&client).await;

    // The node: a base policy that accepts anything, the agent writing
    // into `rendered/`, and serve reading from there.
    let dir = node.dir.path();
    let base = dir.join("base.json");
    std::fs::write(&base, r#"{"default":[{"type":"insecureAcceptAnything"}]}"#).unwrap();
    let out = dir.join("rendered");
    let kubeconfig = api.kubeconfig();
    let common = |command: &str| {
        vec![
            command.to_owned(),
            format!("--base={}", base.display()),
            format!("--kubeconfig={}", kubeconfig.display()),
            "--debounce-ms=200".to_owned(),
        ]
    };
    let mut agent_args = common("agent");
    agent_args.push(format!("--output={}", out.display()));
    let crio = dir.join("crio");
    agent_args.push(format!("--crio-policy-dir={}", crio.display()));
    let mut agent = Running::start(&agent_args, dir.join("agent.log"));
    let mut status_writer = Running::start(&common("status-writer"), dir.join("status-writer.log"));
    eventually("the agent's first set", || async {
        out.join("policy.json").is_file()
    })
    .await;
    assert!(out.join("policies").is_dir(), "{}", agent.log());

    // Polled once a minute only: serve must follow the agent's swaps
    // through its change notifications, within seconds.
    let fake = FakeRuntime::start();
    let daemon = CriguardDaemon::start(
        Path::new(env!("CARGO_BIN_EXE_criguard")),
        fake.socket(),
        &format!(
            "policy = \"{o}/policy.json\"\npolicy_dir = \"{o}/policies\"\n\
             registries_d = \"{o}/registries.d\"\nregistries_conf = \"{d}/registries.conf\"\n\
             audit_policy = \"{o}/audit/policy.json\"\naudit_policy_dir = \"{o}/audit/policies\"\n\
             policy_poll_seconds = 60\n",
            o = out.display(),
            d = dir.display()
        ),
    );
    assert_eq!(pull_status(&daemon, &unsigned, "team").0, OK);

    // An ImagePolicy in "team": signatures by our key for the test
    // registry's `test/` repositories.
    let policies: Api<ImagePolicy> = Api::namespaced(client.clone(), "team");
    let spec = public_key_spec(&[format!("{host}/test")], &node.cosign_pub);
    let created = std::time::Instant::now();
    policies
        .create(
            &PostParams::default(),
            &image_policy("team", "signed", spec),
        )
        .await
        .unwrap();
    eventually("team.json", || async {
        out.join("policies/team.json").is_file()
    })
    .await;
    let on_disk = created.elapsed();
    eventually("serve to refuse the unsigned image in team", || async {
        pull_status(&daemon, &unsigned, "team").0 == UNKNOWN
    })
    .await;
    // For the record (no assertion on timing): how long a change takes
    // to reach the node's files and serve's verdicts (200 ms debounce).
    eprintln!(
        "measured: ImagePolicy created -> files {on_disk:?} -> enforced {:?}",
        created.elapsed()
    );
    let (code, message) = pull_status(&daemon, &unsigned, "team");
    assert_eq!(code, UNKNOWN);
    assert!(
        message.starts_with("SignatureValidationFailed: "),
        "{message}"
    );
    assert!(message.contains("team.json"), "{message}");
    assert_eq!(pull_status(&daemon, &signed, "team").0, OK);
    assert_eq!(pull_status(&daemon, &unsigned, "other").0, OK);
    // CRI-O's signature_policy_dir got the same namespace policy.
    let for_crio = std::fs::read(crio.join("team.json")).unwrap();
    assert_eq!(
        for_crio,
        std::fs::read(out.join("policies/team.json")).unwrap()
    );
    eventually("Ready and Applied for generation 1", || async {
        let (generation, conditions) = namespaced_conditions(&policies, "signed").await;
        generation == Some(1)
            && says(
                generation,
                &conditions,
                &[
                    ("Ready", "True"),
                    ("Applied", "True"),
                    ("ScopeConflict", "False"),
                ],
            )
    })
    .await;

    // An Audit policy in "watch": never in the enforced files, only in the
    // audit set serve decides again with, so the unsigned image runs and
    // is counted as one that would have been refused.
    let watch: Api<ImagePolicy> = Api::namespaced(client.clone(), "watch");
    let mut audit = public_key_spec(&[format!("{host}/test")], &node.cosign_pub);
    audit["mode"] = json!("Audit");
    watch
        .create(
            &PostParams::default(),
            &image_policy("watch", "audit", audit),
        )
        .await
        .unwrap();
    eventually("the audit set to hold the watch namespace", || async {
        std::fs::read_to_string(out.join("audit/policies/watch.json"))
            .is_ok_and(|text| text.contains(&format!("{host}/test")))
    })
    .await;
    let enforced = std::fs::read_to_string(out.join("policies/watch.json")).unwrap_or_default();
    assert!(!enforced.contains(&format!("{host}/test")), "{enforced}");
    let for_crio = std::fs::read_to_string(crio.join("watch.json")).unwrap_or_default();
    assert!(!for_crio.contains(&format!("{host}/test")), "{for_crio}");
    let would_reject = "criguard_decisions_total{operation=\"pull\",verdict=\"would_reject\"";
    eventually("serve to count the unsigned image in watch", || async {
        pull_status(&daemon, &unsigned, "watch").0 == OK && daemon.metric(would_reject) >= 1.0
    })
    .await;
    watch
        .delete("audit", &DeleteParams::default())
        .await
        .unwrap();

    // A changed spec: only `test/unsigned` now needs the signature (so
    // still refused), generation 2, and the conditions say so.
    let narrower = public_key_spec(&[format!("{host}/test/unsigned")], &node.cosign_pub);
    policies
        .patch(
            "signed",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": narrower})),
        )
        .await
        .unwrap();
    eventually("team.json to name only test/unsigned", || async {
        let text = std::fs::read_to_string(out.join("policies/team.json")).unwrap_or_default();
        text.contains(&format!("{host}/test/unsigned"))
            && !text.contains(&format!("\"{host}/test\""))
    })
    .await;
    eventually("the conditions to observe generation 2", || async {
        let (generation, conditions) = namespaced_conditions(&policies, "signed").await;
        generation == Some(2)
            && says(
                generation,
                &conditions,
                &[("Ready", "True"), ("Applied", "True")],
            )
    })
    .await;
    assert_eq!(pull_status(&daemon, &unsigned, "team").0, UNKNOWN);

    // A ClusterImagePolicy for the whole registry: every namespace needs
    // signatures, and team's scope inside it is a conflict.
    let cluster: Api<ClusterImagePolicy> = Api::all(client.clone());
    let whole = public_key_spec(std::slice::from_ref(&host), &node.cosign_pub);
    cluster
        .create(
            &PostParams::default(),
            &cluster_image_policy("registry", whole),
        )
        .await
        .unwrap();
    eventually("serve to refuse the unsigned image in other", || async {
        pull_status(&daemon, &unsigned, "other").0 == UNKNOWN
    })
    .await;
    assert_eq!(pull_status(&daemon, &signed, "other").0, OK);
    eventually("ScopeConflict on the ImagePolicy", || async {
        let (generation, conditions) = namespaced_conditions(&policies, "signed").await;
        says(
            generation,
            &conditions,
            &[("ScopeConflict", "True"), ("Applied", "False")],
        )
    })
    .await;
    let (_, conditions) = namespaced_conditions(&policies, "signed").await;
    let conflict = condition(&conditions, "ScopeConflict").unwrap();
    assert!(
        conflict.message.contains("registry") && conflict.message.contains("test/unsigned"),
        "{conflict:?}"
    );
    eventually("Ready and Applied on the ClusterImagePolicy", || async {
        let policy = cluster.get("registry").await.unwrap();
        let conditions = policy.status.map(|s| s.conditions).unwrap_or_default();
        says(
            policy.metadata.generation,
            &conditions,
            &[("Ready", "True"), ("Applied", "True")],
        )
    })
    .await;

    // The ClusterImagePolicy goes: the conflict clears itself, and other
    // namespaces are back on the base policy.
    cluster
        .delete("registry", &DeleteParams::default())
        .await
        .unwrap();
    eventually("the conflict to clear", || async {
        let (generation, conditions) = namespaced_conditions(&policies, "signed").await;
        says(
            generation,
            &conditions,
            &[("ScopeConflict", "False"), ("Applied", "True")],
        )
    })
    .await;
    eventually(
        "serve to allow the unsigned image in other again",
        || async { pull_status(&daemon, &unsigned, "other").0 == OK },
    )
    .await;

    // The ImagePolicy goes: its namespace file goes, the image passes.
    policies
        .delete("signed", &DeleteParams::default())
        .await
        .unwrap();
    eventually("team.json to go", || async {
        !out.join("policies/team.json").exists()
    })
    .await;
    eventually(
        "serve to allow the unsigned image in team again",
        || async { pull_status(&daemon, &unsigned, "team").0 == OK },
    )
    .await;

    // A strict policy again, then the API server goes away: the agent
    // keeps running and keeps the files, serve keeps enforcing them.
    let spec = public_key_spec(&[format!("{host}/test")], &node.cosign_pub);
    policies
        .create(
            &PostParams::default(),
            &image_policy("team", "signed", spec),
        )
        .await
        .unwrap();
    eventually("serve to refuse the unsigned image in team", || async {
        pull_status(&daemon, &unsigned, "team").0 == UNKNOWN
    })
    .await;
    let before = std::fs::read(out.join("policies/team.json")).unwrap();
    let generation = std::fs::read_link(out.join("..data")).unwrap();
    api.stop();
    eventually("the agent to notice the API server is gone", || async {
        agent.log().contains("cannot watch the policy objects")
    })
    .await;
    assert!(agent.is_running(), "{}", agent.log());
    assert!(status_writer.is_running(), "{}", status_writer.log());
    assert_eq!(std::fs::read_link(out.join("..data")).unwrap(), generation);
    assert_eq!(
        std::fs::read(out.join("policies/team.json")).unwrap(),
        before
    );
    assert_eq!(pull_status(&daemon, &unsigned, "team").0, UNKNOWN);
    assert_eq!(pull_status(&daemon, &signed, "team").0, OK);
    // Nothing the agent wrote was ever refused by serve.
    assert_eq!(
        daemon.metric("criguard_policy_reloads_total{result=\"refused\"}"),
        0.0,
        "{}",
        daemon.log()
    );
    agent.stop();
    status_writer.stop();
}
