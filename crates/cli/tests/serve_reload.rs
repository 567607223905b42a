//! `criguard serve` while its configuration changes under it: with the
//! default `on_invalid_policy = "reject"`, a namespace policy that becomes
//! invalid rejects its namespace (the last valid version could be looser
//! than what the file now tries to say), and registries.d, registries.conf
//! and the auth file reload like policies. A stand-in runtime
//! (`FakeRuntime`), a real registry and real cosign signatures.

#![allow(clippy::unwrap_used)]

mod serve_support;

use std::time::{Duration, Instant};

use criguard_testutil::grpc::encode;
use criguard_testutil::{CriguardDaemon, FakeRuntime, grpc_call_raw_blocking};
use serve_support::*;

const UNKNOWN: i32 = 2;

/// Polls `condition` for up to 15 s.
fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The status code and message of a pull of `image` for `namespace`.
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

fn registry_reloads(daemon: &CriguardDaemon, file: &str, result: &str) -> f64 {
    daemon.metric(&format!(
        "criguard_registry_config_reloads_total{{file=\"{file}\",result=\"{result}\"}}"
    ))
}

#[test]
fn a_namespace_policy_rewritten_with_garbage_rejects_its_namespace() {
    let node = Node::new();
    node.write_namespace("strict", &node.signed_only());
    let fake = FakeRuntime::start();
    let daemon = node.daemon(fake.socket(), "");
    let signed = Node::name(&node.signed);
    assert_eq!(pull_status(&daemon, &signed, "strict").0, 0);

    let file = node.dir.path().join("policies").join("strict.json");
    write_atomically(
        &file,
        b"{\"default\": [{\"type\": \"reject\"}], \"transports\": 7}",
    );
    eventually("the garbage to be refused", || {
        daemon.metric("criguard_policy_reloads_total{result=\"refused\"}") >= 1.0
    });
    // The signed image was allowed a moment ago (and the allowance is
    // cached): the namespace is rejected now, and the kubelet is told
    // which file is wrong and why.
    let (code, message) = pull_status(&daemon, &signed, "strict");
    assert_eq!(code, UNKNOWN, "{message}");
    assert!(
        message.starts_with("SignatureValidationFailed: ")
            && message.contains(&file.display().to_string())
            && message.contains("invalid policy")
            && message.contains("transports"),
        "{message}"
    );
    assert!(daemon.log().contains("policy change refused"));
    // Other namespaces are on the global policy, which is fine.
    assert_eq!(pull_status(&daemon, &signed, "dev").0, 0);
    assert_eq!(fake.calls_to(PULL_IMAGE).len(), 2);

    // Fixed, the namespace is served again.
    node.write_namespace("strict", &node.signed_only());
    eventually("the fixed policy to apply", || {
        pull_status(&daemon, &signed, "strict").0 == 0
    });

    // The policy folder disappears: strict does not fall back to the
    // (accept-anything) global policy.
    std::fs::remove_dir_all(node.dir.path().join("policies")).unwrap();
    let unsigned = Node::name(&node.unsigned);
    eventually("the vanished folder to be refused", || {
        daemon.metric("criguard_policy_reloads_total{result=\"refused\"}") >= 2.0
    });
    let (code, message) = pull_status(&daemon, &unsigned, "strict");
    assert_eq!(code, UNKNOWN, "{message}");
    assert!(message.contains("policies"), "{message}");
}

#[test]
fn registry_configuration_reloads_like_policies() {
    let node = Node::new();
    node.write_global(&node.signed_only());
    let fake = FakeRuntime::start();
    let daemon = node.daemon(fake.socket(), "");
    let signed = Node::name(&node.signed);
    assert_eq!(pull_status(&daemon, &signed, "default").0, 0);
    let registries_d = node
        .dir
        .path()
        .join("registries.d")
        .join("criguard-test.yaml");
    let host = node.registry.host();

    // Invalid registries.d and registries.conf: refused, counted, logged;
    // the last valid ones stay, so the signed image is still found.
    write_atomically(&registries_d, b"docker: [not, a, map");
    eventually("the registries.d garbage to be refused", || {
        registry_reloads(&daemon, "registries-d", "refused") >= 1.0
    });
    write_atomically(&node.dir.path().join("registries.conf"), b"[[registry]\n");
    eventually("the registries.conf garbage to be refused", || {
        registry_reloads(&daemon, "registries-conf", "refused") >= 1.0
    });
    assert!(
        daemon
            .log()
            .contains("registry configuration change refused"),
        "{}",
        daemon.log()
    );
    let (code, message) = pull_status(&daemon, &signed, "default");
    assert_eq!(code, 0, "{message}");
    insecure_registries_conf(&node, &host);

    // A valid change applies without a restart, cached allowances
    // included: without sigstore attachments there is no signature.
    write_atomically(
        &registries_d,
        format!("docker:\n  {host}:\n    use-sigstore-attachments: false\n").as_bytes(),
    );
    eventually("the registries.d change to apply", || {
        registry_reloads(&daemon, "registries-d", "applied") >= 1.0
    });
    let (code, message) = pull_status(&daemon, &signed, "default");
    assert_eq!(code, UNKNOWN, "{message}");
    assert!(
        message.contains("registries.d does not set use-sigstore-attachments"),
        "{message}"
    );
}

fn insecure_registries_conf(node: &Node, host: &str) {
    write_atomically(
        &node.dir.path().join("registries.conf"),
        format!("[[registry]]\nlocation = \"{host}\"\ninsecure = true\n").as_bytes(),
    );
}
