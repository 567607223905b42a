//! `criguard serve` in front of a real containerd (Debian's, private root,
//! state and socket, `native` snapshotter, the test registry as its http
//! mirror), driven by a CRI client generated from the upstream definition,
//! as the kubelet drives it.

#![allow(clippy::unwrap_used)]

mod serve_support;

use std::path::Path;
use std::time::{Duration, Instant};

use criguard_testutil::cri::{self, v1};
use criguard_testutil::grpc::{RawStreamEnd, decode, encode, h2_call_raw_path};
use criguard_testutil::{Containerd, Registry, cosign_sign, grpc_call_raw, push_test_image};
use serve_support::*;
use tonic::Code;

async fn pull_through(
    socket: &Path,
    image: &str,
    namespace: &str,
) -> Result<String, tonic::Status> {
    let mut client = cri::image_client(cri::connect(socket).await);
    client
        .pull_image(pull(image, namespace))
        .await
        .map(|r| r.into_inner().image_ref)
}

fn assert_signature_failure(result: Result<String, tonic::Status>, expected: &str) -> String {
    let status = result.expect_err("the pull must be refused");
    assert_eq!(status.code(), Code::Unknown, "{status:?}");
    let message = status.message().to_owned();
    assert!(
        message.starts_with("SignatureValidationFailed: "),
        "{message}"
    );
    assert!(
        message.contains(expected),
        "expected {expected:?} in {message:?}"
    );
    message
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pulls_are_decided_by_the_namespace_policy() {
    let node = Node::new();
    node.write_global(&node.signed_only());
    node.write_namespace("relaxed", &node.accept_anything());
    node.write_namespace(
        "locked",
        &serde_json::json!({"default": [{"type": "reject"}]}),
    );
    let host = node.registry.host();
    let containerd = Containerd::start(&[(&host, &host)]);
    let daemon = node.daemon(containerd.socket(), "");
    let proxy = daemon.socket();
    let runtime = containerd.socket();
    let signed = Node::name(&node.signed);
    let unsigned = Node::name(&node.unsigned);
    let signed_by_digest = format!("{host}/{}@{}", node.signed.repo, node.signed.digest);
    let unsigned_by_digest = format!("{host}/{}@{}", node.unsigned.repo, node.unsigned.digest);

    // Signed: allowed, and containerd has exactly the verified digest.
    let image_ref = pull_through(proxy, &signed, "default").await.unwrap();
    let present = cri::image_status(runtime, &signed_by_digest)
        .await
        .expect("the signed image is in containerd");
    assert_eq!(present.id, image_ref);
    assert!(
        present.repo_digests.contains(&signed_by_digest),
        "{present:?}"
    );
    // By digest too.
    assert_eq!(
        pull_through(proxy, &signed_by_digest, "default")
            .await
            .unwrap(),
        image_ref
    );

    // Unsigned: refused, with the reason, and never pulled.
    let message = assert_signature_failure(
        pull_through(proxy, &unsigned, "default").await,
        "Source image rejected: A signature was required, but no signature exists",
    );
    assert!(message.contains(&node.unsigned.digest), "{message}");
    assert!(cri::image_status(runtime, &unsigned).await.is_none());
    assert!(
        cri::image_status(runtime, &unsigned_by_digest)
            .await
            .is_none()
    );
    assert_signature_failure(
        pull_through(proxy, &unsigned_by_digest, "default").await,
        "no signature exists",
    );

    // A namespace policy stricter than the global one refuses even the
    // signed image; a looser one lets the unsigned one in.
    let message = assert_signature_failure(
        pull_through(proxy, &signed, "locked").await,
        "is rejected by policy",
    );
    assert!(message.contains("locked.json"), "{message}");
    pull_through(proxy, &unsigned, "relaxed").await.unwrap();
    assert!(cri::image_status(runtime, &unsigned).await.is_some());
    // A namespace without a file is on the global policy.
    assert_signature_failure(
        pull_through(proxy, &unsigned, "other").await,
        "no signature exists",
    );

    let audit = daemon.audit();
    let rejected = audit.iter().filter(|l| l["verdict"] == "rejected").count();
    assert_eq!(rejected, 4, "{audit:?}");
}

/// containerd 1.6 serves `runtime.v1alpha2` beside `v1`, with the same
/// messages: a pull there is checked like a v1 pull, in every path form
/// grpc-go routes to it, and an unsigned image never reaches containerd.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v1alpha2_pulls_are_checked_against_real_containerd() {
    const ALPHA_PULL_IMAGE: &str = "/runtime.v1alpha2.ImageService/PullImage";
    let node = Node::new();
    node.write_global(&node.signed_only());
    let host = node.registry.host();
    let containerd = Containerd::start(&[(&host, &host)]);
    let daemon = node.daemon(containerd.socket(), "");
    let runtime = containerd.socket();
    let unsigned = Node::name(&node.unsigned);
    let unsigned_by_digest = format!("{host}/{}@{}", node.unsigned.repo, node.unsigned.digest);

    // The v1 request's bytes are a v1alpha2 request: same field numbers.
    let request = encode(&pull(&unsigned, "default"));
    let request_unsigned = request.clone();
    for path in [
        ALPHA_PULL_IMAGE,
        "/runtime.v1alpha2.ImageService/PullImage?x=1",
    ] {
        let response = grpc_call_raw(daemon.socket(), path, &request).await;
        let message = response.grpc_message.clone().unwrap_or_default();
        assert_eq!(response.grpc_status, Some(2), "{path}: {message}");
        assert!(
            message.starts_with("SignatureValidationFailed: ")
                && message.contains("no signature exists"),
            "{path}: {message}"
        );
    }
    // Without its leading slash (which grpc-go in containerd 1.6 routes
    // all the same, see below), the call never gets past criguard.
    let end = h2_call_raw_path(daemon.socket(), &ALPHA_PULL_IMAGE[1..], &request).await;
    assert!(
        !matches!(&end, RawStreamEnd::Answered { data } if !data.is_empty()),
        "{end:?}"
    );
    assert!(cri::image_status(runtime, &unsigned).await.is_none());
    assert!(
        cri::image_status(runtime, &unsigned_by_digest)
            .await
            .is_none()
    );
    // Asked through v1alpha2 itself, directly: no trace of it either.
    let listed = grpc_call_raw(runtime, "/runtime.v1alpha2.ImageService/ListImages", &[]).await;
    let listed: v1::ListImagesResponse = decode(&listed.message());
    assert!(
        listed.images.iter().all(|i| !i
            .repo_digests
            .iter()
            .chain(&i.repo_tags)
            .any(|name| name.contains("test/unsigned"))),
        "{listed:?}"
    );

    // The control: containerd does pull through v1alpha2, and a signed
    // image checked there is pinned to its verified digest.
    let signed_by_digest = format!("{host}/{}@{}", node.signed.repo, node.signed.digest);
    let request = encode(&pull(&Node::name(&node.signed), "default"));
    let response = grpc_call_raw(daemon.socket(), ALPHA_PULL_IMAGE, &request).await;
    let answer: v1::PullImageResponse = decode(&response.message());
    let present = cri::image_status(runtime, &signed_by_digest)
        .await
        .expect("the signed image is in containerd");
    assert_eq!(present.id, answer.image_ref);

    // The control for the path form: containerd itself pulls through a
    // path without the leading slash.
    let end = h2_call_raw_path(runtime, &ALPHA_PULL_IMAGE[1..], &request_unsigned).await;
    assert!(
        matches!(&end, RawStreamEnd::Answered { data } if !data.is_empty()),
        "{end:?}"
    );
    assert!(cri::image_status(runtime, &unsigned).await.is_some());
}

/// The tag is moved to an unsigned image after criguard verified it and
/// before containerd pulls: containerd is pointed at a second registry
/// where the tag already names the unsigned image, while criguard reads the
/// first. Because the pull is pinned to the verified digest, the signed
/// image is what lands on the node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tag_moved_after_verification_does_not_change_what_is_pulled() {
    let node = Node::new();
    node.write_global(&node.signed_only());
    let host = node.registry.host();
    // The registry containerd actually pulls from: the signed image by
    // digest (same content, same digest), and the tag on unsigned content.
    let moved = Registry::start();
    let same = push_test_image(&moved, "test/signed", "old", "signed content");
    assert_eq!(same.digest, node.signed.digest);
    let unsigned = push_test_image(&moved, "test/signed", "v1", "unsigned content");
    assert_ne!(unsigned.digest, node.signed.digest);

    let containerd = Containerd::start(&[(&host, &moved.host())]);
    let daemon = node.daemon(containerd.socket(), "");
    let signed = Node::name(&node.signed);
    let image_ref = pull_through(daemon.socket(), &signed, "default")
        .await
        .unwrap();
    let present = cri::image_status(containerd.socket(), &image_ref)
        .await
        .unwrap();
    let verified = format!("{host}/test/signed@{}", node.signed.digest);
    assert_eq!(present.repo_digests, vec![verified]);

    // Control: without criguard the same name gives the moved tag's image.
    let direct = pull_through(containerd.socket(), &signed, "default")
        .await
        .unwrap();
    let moved_image = cri::image_status(containerd.socket(), &direct)
        .await
        .unwrap();
    assert_eq!(
        moved_image.repo_digests,
        vec![format!("{host}/test/signed@{}", unsigned.digest)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn containerd_restarts_under_the_proxy() {
    let node = Node::new();
    node.write_global(&node.signed_only());
    let host = node.registry.host();
    let mut containerd = Containerd::start(&[(&host, &host)]);
    let daemon = node.daemon(containerd.socket(), "");
    let proxy = daemon.socket().to_owned();
    let signed = Node::name(&node.signed);
    pull_through(&proxy, &signed, "default").await.unwrap();

    containerd.stop();
    let mut client = cri::image_client(cri::connect(&proxy).await);
    let status = client
        .list_images(v1::ListImagesRequest::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    // Policy decisions still come back while the runtime is away.
    assert_signature_failure(
        pull_through(&proxy, &Node::name(&node.unsigned), "default").await,
        "no signature exists",
    );

    containerd.start_again();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match client.list_images(v1::ListImagesRequest::default()).await {
            Ok(images) => {
                let images = images.into_inner().images;
                assert!(images.iter().any(|i| {
                    i.repo_digests
                        .iter()
                        .any(|d| d.contains(&node.signed.digest))
                }));
                break;
            }
            Err(status) => {
                assert_eq!(status.code(), Code::Unavailable, "{status:?}");
                assert!(
                    Instant::now() < deadline,
                    "the proxy did not reconnect: {status:?}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    // A new signed image is pulled through the same proxy process.
    let again = push_test_image(&node.registry, "test/signed", "v2", "more signed content");
    cosign_sign(&node.cosign_key, PASSWORD, &again.by_digest());
    pull_through(&proxy, &Node::name(&again), "default")
        .await
        .unwrap();
}
