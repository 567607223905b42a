//! `criguard serve` on files from `criguard policy render`: the enforced
//! set decides, the audit set only counts (`audit_policy`,
//! `audit_policy_dir`), and a new render swapped in is followed. A real
//! registry and cosign signatures, a stand-in runtime.

#![allow(clippy::unwrap_used)]

mod serve_support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use criguard_testutil::grpc::encode;
use criguard_testutil::{CriguardDaemon, FakeRuntime, grpc_call_raw_blocking, run_with_timeout};
use serve_support::*;

const UNKNOWN: i32 = 2;

fn pull_status(daemon: &CriguardDaemon, image: &str, namespace: &str) -> (i32, String) {
    let response = grpc_call_raw_blocking(
        daemon.socket(),
        PULL_IMAGE,
        &encode(&pull(image, namespace)),
    );
    (
        response.grpc_status.unwrap_or(-1),
        response.grpc_message.unwrap_or_default(),
    )
}

fn cluster_policy(name: &str, mode: &str, scope: &str, key: &str) -> String {
    format!(
        "apiVersion: criguard.dev/v1alpha1\nkind: ClusterImagePolicy\nmetadata: {{name: {name}}}\n\
         spec:\n  mode: {mode}\n  scopes: [\"{scope}\"]\n  policy:\n    rootOfTrust:\n      \
         policyType: PublicKey\n      publicKey: {{keyData: {key}}}\n    signedIdentity: \
         {{matchPolicy: MatchRepository}}\n---\n"
    )
}

fn render(base: &Path, input: &Path, output: &Path) {
    let out = run_with_timeout(
        Command::new(env!("CARGO_BIN_EXE_criguard"))
            .args(["policy", "render", "--base"])
            .arg(base)
            .arg("--input")
            .arg(input)
            .arg("--output")
            .arg(output),
        Duration::from_secs(60),
    );
    assert!(out.status.success(), "{out:?}");
}

#[test]
fn serve_enforces_the_enforced_set_and_counts_what_the_audit_set_would_reject() {
    let node = Node::new();
    let host = node.registry.host();
    let key = STANDARD.encode(std::fs::read(&node.cosign_pub).unwrap());
    let dir = node.dir.path();
    let objects = dir.join("objects.yaml");
    let write_objects = |trial_mode: &str| {
        std::fs::write(
            &objects,
            cluster_policy("apps", "Enforce", &format!("{host}/test/signed"), &key)
                + &cluster_policy("trial", trial_mode, &format!("{host}/test/unsigned"), &key),
        )
        .unwrap();
    };
    write_objects("Audit");
    let rendered = dir.join("rendered");
    render(&node.global_policy(), &objects, &rendered);

    let fake = FakeRuntime::start();
    let config = format!(
        "policy = \"{r}/policy.json\"\npolicy_dir = \"{r}/policies\"\nregistries_d = \"{r}/registries.d\"\n\
         registries_conf = \"{}\"\npolicy_poll_seconds = 1\n\
         audit_policy = \"{r}/audit/policy.json\"\naudit_policy_dir = \"{r}/audit/policies\"\n",
        dir.join("registries.conf").display(),
        r = rendered.display(),
    );
    let daemon = CriguardDaemon::start(
        Path::new(env!("CARGO_BIN_EXE_criguard")),
        fake.socket(),
        &config,
    );
    let signed = Node::name(&node.signed);
    let unsigned = Node::name(&node.unsigned);
    assert_eq!(pull_status(&daemon, &signed, "dev").0, 0);
    let (code, message) = pull_status(&daemon, &unsigned, "dev");
    assert_eq!(code, 0, "Audit only counts: {message}");
    let would_reject = r#"criguard_decisions_total{operation="pull",verdict="would_reject",reason="sigstoreSigned"}"#;
    assert_eq!(daemon.metric(would_reject), 1.0, "{}", daemon.log());
    assert!(
        daemon.log().contains("audit/policy.json"),
        "the audit line names the audit file"
    );
    assert_eq!(fake.calls_to(PULL_IMAGE).len(), 2);

    // The trial policy is enforced now: a new render is swapped in and
    // serve follows it.
    write_objects("Enforce");
    render(&node.global_policy(), &objects, &rendered);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (code, message) = pull_status(&daemon, &unsigned, "dev");
        if code == UNKNOWN {
            assert!(
                message.starts_with("SignatureValidationFailed: "),
                "{message}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the new render was not followed: {message}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(pull_status(&daemon, &signed, "dev").0, 0);
}
