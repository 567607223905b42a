//! `criguard serve` restarted while the registry is gone: what a pull
//! verified is kept in `state_dir`, so a create of that image is decided
//! again, under the policy in force now, without the registry.

#![allow(clippy::unwrap_used)]

mod serve_support;

use std::time::{Duration, Instant};

use criguard_testutil::cri::v1;
use criguard_testutil::grpc::encode;
use criguard_testutil::{FakeRuntime, grpc_call_raw_blocking};
use serde_json::json;
use serve_support::*;

#[test]
fn a_pulled_image_is_created_after_a_restart_without_the_registry() {
    let mut node = Node::new();
    node.write_namespace("prod", &node.signed_only());
    let fake = FakeRuntime::start();
    let state = tempfile::tempdir().unwrap();
    let extra = format!("state_dir = \"{}\"\n", state.path().display());
    let signed = Node::name(&node.signed);

    // A signed pull through criguard, verified at the registry.
    let mut daemon = node.daemon(fake.socket(), &extra);
    fake.respond(
        PULL_IMAGE,
        vec![encode(&v1::PullImageResponse {
            image_ref: node.signed_id.clone(),
        })],
    );
    let response =
        grpc_call_raw_blocking(daemon.socket(), PULL_IMAGE, &encode(&pull(&signed, "prod")));
    assert_eq!(response.grpc_status, Some(0), "{:?}", response.grpc_message);

    // criguard and the registry go away; criguard comes back alone.
    daemon.stop();
    node.registry.stop();
    let daemon = node.daemon(fake.socket(), &extra);
    // The runtime (local) still holds the image under its pinned digest.
    fake.respond(
        IMAGE_STATUS,
        vec![encode(&v1::ImageStatusResponse {
            image: Some(v1::Image {
                id: node.signed_id.clone(),
                repo_digests: vec![format!(
                    "{}/{}@{}",
                    node.signed.host, node.signed.repo, node.signed.digest
                )],
                ..Default::default()
            }),
            ..Default::default()
        })],
    );
    let request = encode(&create("app", "prod", &node.signed_id, &signed, &[]));
    let response = grpc_call_raw_blocking(daemon.socket(), CREATE_CONTAINER, &request);
    assert_eq!(
        response.grpc_status,
        Some(0),
        "{:?}\n{}",
        response.grpc_message,
        daemon.log()
    );
    assert_eq!(fake.calls_to(CREATE_CONTAINER).len(), 1);
    assert_eq!(
        daemon.metric("criguard_cache_lookups_total{cache=\"stored-pull\",result=\"hit\"}"),
        1.0,
        "decided from the stored pull"
    );

    // The policy now wants the signature to name another image: the
    // stored signature no longer satisfies it, and the registry cannot be
    // asked for others.
    let mut strict = node.signed_only();
    strict["transports"]["docker"][node.registry.host()][0]["signedIdentity"] = json!({
        "type": "exactReference",
        "dockerReference": format!("{}/test/other:v1", node.registry.host()),
    });
    node.write_namespace("prod", &strict);
    let deadline = Instant::now() + Duration::from_secs(20);
    let refused = loop {
        let response = grpc_call_raw_blocking(daemon.socket(), CREATE_CONTAINER, &request);
        if response.grpc_status != Some(0) {
            break response;
        }
        assert!(
            Instant::now() < deadline,
            "the changed policy was not applied"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let message = refused.grpc_message.clone().unwrap_or_default();
    assert_eq!(refused.grpc_status, Some(2), "{message}");
    assert!(
        message.starts_with("SignatureValidationFailed: "),
        "{message}"
    );
    assert!(message.contains("is not accepted"), "{message}");
}
