//! Which calls `criguard serve` checks, forwards or refuses, decided by
//! method (issue 12, item 1): the `v1alpha2` services are checked as `v1`
//! is, every `:path` grpc-go would route to a checked method is that
//! method, a method criguard does not know goes through only when the
//! config lists it, and restoring from a checkpoint is refused. Raw HTTP/2
//! requests against the fake runtime, which records what reaches it.

#![allow(clippy::unwrap_used)]

mod serve_support;

use std::path::Path;

use criguard_testutil::cri::v1;
use criguard_testutil::grpc::{RawStreamEnd, encode, frame, h2_call_raw_path_blocking};
use criguard_testutil::{CriguardDaemon, FakeRuntime, RawResponse, grpc_call_raw_blocking};
use serde_json::json;
use serve_support::*;

const UNKNOWN: i32 = 2;
const UNIMPLEMENTED: i32 = 12;
const ALPHA_PULL_IMAGE: &str = "/runtime.v1alpha2.ImageService/PullImage";
const ALPHA_CREATE_CONTAINER: &str = "/runtime.v1alpha2.RuntimeService/CreateContainer";
/// An image ID as runtimes report them.
const IMAGE_ID: &str = "sha256:abababababababababababababababababababababababababababababababab";
const FUTURE: &str = "/runtime.v1.ImageService/SomeFutureMethod";

/// The methods of `runtime.v1` that only read or manage what is already on
/// the node, from the upstream api.proto (independently of criguard's own
/// table): each must reach the runtime as sent.
const V1_FORWARDED: &[&str] = &[
    "RuntimeService/Version",
    "RuntimeService/RunPodSandbox",
    "RuntimeService/StopPodSandbox",
    "RuntimeService/RemovePodSandbox",
    "RuntimeService/PodSandboxStatus",
    "RuntimeService/ListPodSandbox",
    "RuntimeService/StreamPodSandboxes",
    "RuntimeService/StartContainer",
    "RuntimeService/StopContainer",
    "RuntimeService/RemoveContainer",
    "RuntimeService/ListContainers",
    "RuntimeService/StreamContainers",
    "RuntimeService/ContainerStatus",
    "RuntimeService/UpdateContainerResources",
    "RuntimeService/ReopenContainerLog",
    "RuntimeService/ExecSync",
    "RuntimeService/Exec",
    "RuntimeService/Attach",
    "RuntimeService/PortForward",
    "RuntimeService/ContainerStats",
    "RuntimeService/ListContainerStats",
    "RuntimeService/StreamContainerStats",
    "RuntimeService/PodSandboxStats",
    "RuntimeService/ListPodSandboxStats",
    "RuntimeService/StreamPodSandboxStats",
    "RuntimeService/UpdateRuntimeConfig",
    "RuntimeService/Status",
    "RuntimeService/CheckpointContainer",
    "RuntimeService/CheckpointPod",
    "RuntimeService/GetContainerEvents",
    "RuntimeService/ListMetricDescriptors",
    "RuntimeService/ListPodSandboxMetrics",
    "RuntimeService/StreamPodSandboxMetrics",
    "RuntimeService/RuntimeConfig",
    "RuntimeService/UpdatePodSandboxResources",
    "ImageService/ListImages",
    "ImageService/StreamImages",
    "ImageService/ImageStatus",
    "ImageService/RemoveImage",
    "ImageService/ImageFsInfo",
];

/// The same for `runtime.v1alpha2`, which has fewer methods.
const V1ALPHA2_FORWARDED: &[&str] = &[
    "RuntimeService/Version",
    "RuntimeService/RunPodSandbox",
    "RuntimeService/StopPodSandbox",
    "RuntimeService/RemovePodSandbox",
    "RuntimeService/PodSandboxStatus",
    "RuntimeService/ListPodSandbox",
    "RuntimeService/StartContainer",
    "RuntimeService/StopContainer",
    "RuntimeService/RemoveContainer",
    "RuntimeService/ListContainers",
    "RuntimeService/ContainerStatus",
    "RuntimeService/UpdateContainerResources",
    "RuntimeService/ReopenContainerLog",
    "RuntimeService/ExecSync",
    "RuntimeService/Exec",
    "RuntimeService/Attach",
    "RuntimeService/PortForward",
    "RuntimeService/ContainerStats",
    "RuntimeService/ListContainerStats",
    "RuntimeService/PodSandboxStats",
    "RuntimeService/ListPodSandboxStats",
    "RuntimeService/UpdateRuntimeConfig",
    "RuntimeService/Status",
    "ImageService/ListImages",
    "ImageService/ImageStatus",
    "ImageService/RemoveImage",
    "ImageService/ImageFsInfo",
];

/// A daemon whose global policy is `global`, with `namespaces` as
/// per-namespace policies and `extra` config lines; no registry is needed
/// for policies that look at no signatures.
fn daemon(
    runtime: &Path,
    global: &serde_json::Value,
    namespaces: &[(&str, serde_json::Value)],
    extra: &str,
) -> Result<(tempfile::TempDir, CriguardDaemon), String> {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.json");
    write_atomically(&policy, global.to_string().as_bytes());
    let policies = dir.path().join("policies");
    std::fs::create_dir(&policies).unwrap();
    for (namespace, policy) in namespaces {
        write_atomically(
            &policies.join(format!("{namespace}.json")),
            policy.to_string().as_bytes(),
        );
    }
    let config = format!(
        "policy = \"{}\"\npolicy_dir = \"{}\"\nregistries_d = \"{}\"\n{extra}\n",
        policy.display(),
        policies.display(),
        dir.path().join("registries.d").display()
    );
    let daemon =
        CriguardDaemon::try_start(Path::new(env!("CARGO_BIN_EXE_criguard")), runtime, &config)?;
    Ok((dir, daemon))
}

fn reject() -> serde_json::Value {
    json!({"default": [{"type": "reject"}]})
}

fn accept() -> serde_json::Value {
    json!({"default": [{"type": "insecureAcceptAnything"}]})
}

fn assert_status(response: &RawResponse, code: i32, prefix: &str) -> String {
    let message = response.grpc_message.clone().unwrap_or_default();
    assert_eq!(response.grpc_status, Some(code), "{message}");
    assert!(
        message.starts_with(prefix),
        "expected {prefix:?}…, got {message:?}"
    );
    message
}

/// The calls that reached the runtime on a checked or refused method, in
/// any version: none may, when criguard refuses them.
fn checked_calls(fake: &FakeRuntime) -> Vec<String> {
    fake.calls()
        .into_iter()
        .map(|c| c.path)
        .filter(|p| {
            ["/PullImage", "/CreateContainer", "/RestorePod"]
                .iter()
                .any(|m| p.ends_with(m))
        })
        .collect()
}

/// `message` with a varint field that no version of the CRI defines, so
/// that forwarding "as sent" is seen to keep it.
fn with_unknown_field(mut message: Vec<u8>) -> Vec<u8> {
    message.extend_from_slice(&[0xf8, 0x06, 42]);
    message
}

#[test]
fn v1alpha2_pulls_and_creates_are_checked_as_v1_ones_are() {
    let fake = FakeRuntime::start();
    let (_dir, daemon) = daemon(fake.socket(), &reject(), &[("dev", accept())], "").unwrap();
    let socket = daemon.socket();
    let image = "127.0.0.1:9/x/y:v1";

    // The namespace's policy rejects: neither call reaches the runtime.
    let response = grpc_call_raw_blocking(socket, ALPHA_PULL_IMAGE, &encode(&pull(image, "prod")));
    assert_status(
        &response,
        UNKNOWN,
        "SignatureValidationFailed: Source image rejected: Running image docker://127.0.0.1:9/x/y:v1 is rejected by policy.",
    );
    let request = encode(&create("app", "prod", IMAGE_ID, image, &[]));
    let response = grpc_call_raw_blocking(socket, ALPHA_CREATE_CONTAINER, &request);
    assert_status(
        &response,
        UNKNOWN,
        "SignatureValidationFailed: container \"app\" in namespace \"prod\"",
    );
    assert_eq!(checked_calls(&fake), Vec::<String>::new());

    // Where the policy allows them, they go on to the v1alpha2 service,
    // as sent.
    fake.respond(
        ALPHA_PULL_IMAGE,
        vec![encode(&v1::PullImageResponse {
            image_ref: IMAGE_ID.into(),
        })],
    );
    let pull_bytes = with_unknown_field(encode(&pull(image, "dev")));
    let response = grpc_call_raw_blocking(socket, ALPHA_PULL_IMAGE, &pull_bytes);
    assert_eq!(response.grpc_status, Some(0), "{:?}", response.grpc_message);
    assert_eq!(fake.calls_to(ALPHA_PULL_IMAGE)[0].body, frame(&pull_bytes));
    let create_bytes = with_unknown_field(encode(&create("app", "dev", IMAGE_ID, image, &[])));
    let response = grpc_call_raw_blocking(socket, ALPHA_CREATE_CONTAINER, &create_bytes);
    assert_eq!(response.grpc_status, Some(0), "{:?}", response.grpc_message);
    assert_eq!(
        fake.calls_to(ALPHA_CREATE_CONTAINER)[0].body,
        frame(&create_bytes)
    );
    assert_eq!(checked_calls(&fake).len(), 2);
    assert_eq!(
        daemon.metric("criguard_decisions_total{operation=\"pull\",verdict=\"rejected\""),
        1.0
    );
}

#[test]
fn every_path_that_names_a_checked_method_is_checked() {
    let fake = FakeRuntime::start();
    let (_dir, daemon) = daemon(fake.socket(), &reject(), &[], "").unwrap();
    let socket = daemon.socket();
    let pull_bytes = encode(&pull("127.0.0.1:9/x/y:v1", "prod"));
    let create_bytes = encode(&create("app", "prod", IMAGE_ID, "127.0.0.1:9/x/y:v1", &[]));
    for service in ["runtime.v1", "runtime.v1alpha2"] {
        for form in ["/{}?x=1", "/{}?", "/{}?/runtime.v1.RuntimeService/Version"] {
            let path = |method: &str| form.replace("{}", &format!("{service}.{method}"));
            let response =
                grpc_call_raw_blocking(socket, &path("ImageService/PullImage"), &pull_bytes);
            assert_status(
                &response,
                UNKNOWN,
                "SignatureValidationFailed: Source image rejected",
            );
            let response = grpc_call_raw_blocking(
                socket,
                &path("RuntimeService/CreateContainer"),
                &create_bytes,
            );
            assert_status(
                &response,
                UNKNOWN,
                "SignatureValidationFailed: container \"app\"",
            );
            // No leading slash: grpc-go before 1.7x routes it to the
            // method, hyper's client cannot send it, and criguard's HTTP/2
            // layer refuses it (a stream reset) before the proxy sees it;
            // were it ever let through, the proxy reads it as the method.
            for method in ["ImageService/PullImage", "RuntimeService/CreateContainer"] {
                let path = format!("{service}.{method}");
                let end = h2_call_raw_path_blocking(socket, &path, &create_bytes);
                assert!(
                    matches!(&end, RawStreamEnd::Reset(_) | RawStreamEnd::GoAway(_))
                        || end == RawStreamEnd::Answered { data: Vec::new() },
                    "{path}: {end:?}"
                );
            }
        }
    }
    assert_eq!(checked_calls(&fake), Vec::<String>::new());
    // The frame-level client itself works: a proper path is answered.
    fake.respond("/runtime.v1.RuntimeService/Status", vec![vec![0x08, 0x07]]);
    assert_eq!(
        h2_call_raw_path_blocking(socket, "/runtime.v1.RuntimeService/Status", &[]),
        RawStreamEnd::Answered {
            data: frame(&[0x08, 0x07])
        }
    );

    // Paths that name no method are refused, not forwarded (grpc-go would
    // answer them Unimplemented too, or route them nowhere).
    let before = fake.calls().len();
    for path in [
        "/",
        "?/runtime.v1.ImageService/PullImage",
        "/runtime.v1.ImageService",
        "/runtime.v1.ImageService/",
        "//PullImage",
        "/runtime.v1.ImageService//PullImage",
        "//runtime.v1.ImageService/PullImage",
        "/runtime.v1.ImageService/PullImage/",
        "/runtime.v1.imageservice/pullimage",
        "/runtime.v1.ImageService/Pull%49mage",
    ] {
        let response = grpc_call_raw_blocking(socket, path, &pull_bytes);
        assert_status(&response, UNIMPLEMENTED, "criguard: ");
    }
    assert_eq!(checked_calls(&fake), Vec::<String>::new());
    assert_eq!(fake.calls().len(), before, "{:?}", fake.calls());

    // A forwarded method in another form reaches the runtime under its
    // own name, the one criguard decided on, and nothing else.
    let version = "/runtime.v1.RuntimeService/Version";
    for path in [
        "/runtime.v1.RuntimeService/Version?x=1",
        "/runtime.v1.RuntimeService/Version?/runtime.v1.ImageService/PullImage",
    ] {
        let response = grpc_call_raw_blocking(socket, path, &[0x0a, 0x01, 0x31]);
        assert_eq!(
            response.grpc_status,
            Some(0),
            "{path}: {:?}",
            response.grpc_message
        );
    }
    let calls = fake.calls_to(version);
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert!(
        calls.iter().all(|c| c.path_and_query == version),
        "{calls:?}"
    );
    assert!(calls.iter().all(|c| c.body == frame(&[0x0a, 0x01, 0x31])));
}

#[test]
fn a_method_criguard_does_not_know_is_refused_unless_the_config_lists_it() {
    let fake = FakeRuntime::start();
    let (_dir, daemon_a) = daemon(fake.socket(), &accept(), &[], "").unwrap();
    for path in [
        FUTURE,
        "/runtime.v1alpha2.RuntimeService/RestorePod",
        // The services containerd serves on the same socket: an image
        // pulled through them would never pass a check.
        "/containerd.services.images.v1.Images/Create",
        "/containerd.services.transfer.v1.Transfer/Transfer",
        "/grpc.health.v1.Health/Check",
    ] {
        let response = grpc_call_raw_blocking(daemon_a.socket(), path, &[0x08, 0x01]);
        let message = assert_status(&response, UNIMPLEMENTED, "criguard: ");
        assert!(message.contains(path), "{message}");
        assert!(message.contains("forward_methods"), "{message}");
    }
    assert!(fake.calls().is_empty(), "{:?}", fake.calls());

    // Listed, it is forwarded as sent, whichever form names it, and the
    // answer comes back as the runtime gave it.
    let listed = format!("forward_methods = [\"{FUTURE}\"]");
    let (_dir, daemon_b) = daemon(fake.socket(), &accept(), &[], &listed).unwrap();
    let request = with_unknown_field(vec![0x08, 0x01]);
    let answer = with_unknown_field(vec![0x10, 0x02]);
    fake.respond(FUTURE, vec![answer.clone()]);
    for path in [FUTURE, &format!("{FUTURE}?q")] {
        let response = grpc_call_raw_blocking(daemon_b.socket(), path, &request);
        assert_eq!(response.message(), answer);
    }
    let calls = fake.calls();
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert!(
        calls
            .iter()
            .all(|c| c.path_and_query == FUTURE && c.body == frame(&request))
    );
    // Only what is listed.
    let other = "/runtime.v1.ImageService/AnotherFutureMethod";
    let response = grpc_call_raw_blocking(daemon_b.socket(), other, &request);
    assert_status(&response, UNIMPLEMENTED, "criguard: ");

    // A checked or refused method cannot be listed past its check; a
    // listing that is not a method name is a mistake too.
    for bad in [
        PULL_IMAGE,
        ALPHA_CREATE_CONTAINER,
        "/runtime.v1.RuntimeService/RestorePod",
        "runtime.v1.ImageService/NoSlash",
        "/runtime.v1.ImageService/",
        "/runtime.v1.ImageService/X?y=1",
    ] {
        let config = format!("forward_methods = [\"{bad}\"]");
        let log = daemon(fake.socket(), &accept(), &[], &config)
            .err()
            .unwrap();
        assert!(log.contains("forward_methods"), "{bad}: {log}");
    }
}

#[test]
fn restoring_from_a_checkpoint_is_refused() {
    let fake = FakeRuntime::start();
    let (_dir, daemon) = daemon(fake.socket(), &accept(), &[], "").unwrap();
    let socket = daemon.socket();
    let restore = encode(&v1::RestorePodRequest {
        checkpoint_path: "/var/lib/kubelet/checkpoints/pod".into(),
        config: Some(sandbox("dev")),
        container_configs: vec![v1::ContainerConfig {
            image: Some(criguard_testutil::cri::image_spec(
                "127.0.0.1:9/x/unsigned:v1",
            )),
            ..Default::default()
        }],
        ..Default::default()
    });
    for path in [
        "/runtime.v1.RuntimeService/RestorePod",
        "/runtime.v1.RuntimeService/RestorePod?x=1",
    ] {
        let response = grpc_call_raw_blocking(socket, path, &restore);
        let message = assert_status(&response, UNIMPLEMENTED, "criguard: ");
        assert!(message.contains("RestorePod"), "{message}");
        assert!(message.contains("checkpoint"), "{message}");
    }

    // A create whose image is a file is a restore from a checkpoint
    // archive: the runtime would read (and may pull) the image it is based
    // on, which criguard never sees. Even a permissive policy does not let
    // that through.
    for archive in [
        "/var/lib/kubelet/checkpoints/checkpoint-pod_dev-app.tar",
        "./checkpoint.tar",
    ] {
        let mut request = create("app", "dev", archive, "127.0.0.1:9/x/y:v1", &[]);
        let response = grpc_call_raw_blocking(socket, CREATE_CONTAINER, &encode(&request));
        let message = assert_status(&response, UNIMPLEMENTED, "criguard: container \"app\"");
        assert!(message.contains(archive), "{message}");
        assert!(message.contains("checkpoint"), "{message}");
        // ... whichever of the two image fields names it.
        let spec = request.config.as_mut().unwrap().image.as_mut().unwrap();
        spec.image = IMAGE_ID.into();
        spec.user_specified_image = archive.into();
        let response = grpc_call_raw_blocking(socket, CREATE_CONTAINER, &encode(&request));
        assert_status(&response, UNIMPLEMENTED, "criguard: container \"app\"");
    }
    assert_eq!(checked_calls(&fake), Vec::<String>::new());

    // Checkpointing brings nothing onto the node: forwarded.
    let checkpoint = "/runtime.v1.RuntimeService/CheckpointPod";
    let response = grpc_call_raw_blocking(socket, checkpoint, &[0x0a, 0x01, 0x70]);
    assert_eq!(response.grpc_status, Some(0), "{:?}", response.grpc_message);
    assert_eq!(fake.calls_to(checkpoint).len(), 1);
}

#[test]
fn every_known_method_is_forwarded_byte_for_byte() {
    let fake = FakeRuntime::start();
    let (_dir, daemon) = daemon(fake.socket(), &reject(), &[], "").unwrap();
    let forwarded = V1_FORWARDED
        .iter()
        .map(|m| format!("/runtime.v1.{m}"))
        .chain(
            V1ALPHA2_FORWARDED
                .iter()
                .map(|m| format!("/runtime.v1alpha2.{m}")),
        );
    for (i, path) in forwarded.enumerate() {
        let request = with_unknown_field(path.as_bytes().to_vec());
        // Several messages: the server-streaming methods' answers.
        let answer = vec![with_unknown_field(vec![0x08, i as u8]), vec![0x10, 0x01]];
        fake.respond(&path, answer.clone());
        let response = grpc_call_raw_blocking(daemon.socket(), &path, &request);
        assert_eq!(
            response.grpc_status,
            Some(0),
            "{path}: {:?}",
            response.grpc_message
        );
        assert_eq!(response.messages(), answer, "{path}");
        let calls = fake.calls_to(&path);
        assert_eq!(calls.len(), 1, "{path}");
        assert_eq!(calls[0].body, frame(&request), "{path}");
    }
    assert_eq!(
        fake.calls().len(),
        V1_FORWARDED.len() + V1ALPHA2_FORWARDED.len()
    );
}
