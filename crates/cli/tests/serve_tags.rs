//! A verified pull keeps the name the kubelet asked for, on a real
//! containerd (1.6 and 2.1): criguard pins the pull to `repo@sha256:<verified>`, and
//! then points the tag at that digest itself (containerd's images service),
//! so that `ImageStatus(tag)` finds the image and `IfNotPresent` does not
//! turn into `Always`. A tag moved on the node behind criguard's back (an
//! unsigned image pulled directly on containerd) is still refused at
//! create, in a real pod sandbox.

#![allow(clippy::unwrap_used)]

mod serve_support;

use criguard_testutil::containerd::Release;
use criguard_testutil::cri::{self, v1};
use criguard_testutil::grpc::encode;
use criguard_testutil::{
    Containerd, FakeRuntime, cosign_sign, grpc_call_raw_blocking, pause_image, push_image,
    runnable_image,
};
use serve_support::{
    IMAGE_STATUS, Node, PASSWORD, PULL_IMAGE, host_network, host_network_sandbox, pull,
};
use tonic::Code;

/// CreateContainer as the kubelet sends it after `ImageStatus(tag)`: the
/// image by the ID that call reported, and by the pod spec's name.
fn create(
    sandbox_id: &str,
    sandbox: &v1::PodSandboxConfig,
    name: &str,
    image_id: &str,
    tag: &str,
) -> v1::CreateContainerRequest {
    v1::CreateContainerRequest {
        pod_sandbox_id: sandbox_id.to_owned(),
        config: Some(v1::ContainerConfig {
            metadata: Some(v1::ContainerMetadata {
                name: name.to_owned(),
                attempt: 0,
            }),
            image: Some(v1::ImageSpec {
                image: image_id.to_owned(),
                user_specified_image: tag.to_owned(),
                ..Default::default()
            }),
            log_path: format!("{name}.log"),
            linux: Some(v1::LinuxContainerConfig {
                security_context: Some(v1::LinuxContainerSecurityContext {
                    namespace_options: Some(host_network()),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
        sandbox_config: Some(sandbox.clone()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tags_on_containerd_1_6() {
    a_verified_pull_keeps_its_tag_and_a_tag_moved_on_the_node_is_refused(Release::V1_6).await;
}

/// 2.1 pulls through its transfer service and keeps its CRI image cache
/// the same way, from the image events of `k8s.io`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tags_on_containerd_2_1() {
    a_verified_pull_keeps_its_tag_and_a_tag_moved_on_the_node_is_refused(Release::V2_1).await;
}

async fn a_verified_pull_keeps_its_tag_and_a_tag_moved_on_the_node_is_refused(release: Release) {
    let mut node = Node::new();
    node.write_global(&node.signed_only());
    let host = node.registry.host();
    // Unsigned: containerd pulls the sandbox image itself.
    let pause = push_image(&node.registry, "test/pause", "1", &pause_image());
    let signed = push_image(
        &node.registry,
        "test/app",
        "v1",
        &runnable_image("signed app"),
    );
    cosign_sign(&node.cosign_key, PASSWORD, &signed.by_digest());
    let containerd = Containerd::start_release(release, &[(&host, &host)], Some(&pause.by_tag()));
    // criguard's state outlives the daemon: it is restarted below.
    let state = tempfile::tempdir().unwrap();
    let state_config = format!("state_dir = \"{}\"\n", state.path().display());
    let mut daemon = node.daemon(containerd.socket(), &state_config);
    let tag = signed.by_tag();
    let verified = signed.by_digest();

    let channel = cri::connect(daemon.socket()).await;
    let mut images = cri::image_client(channel.clone());
    let mut runtime = cri::runtime_client(channel);
    let image_ref = images
        .pull_image(pull(&tag, "default"))
        .await
        .unwrap()
        .into_inner()
        .image_ref;

    // The tag names the verified digest, through criguard and directly,
    // as soon as the pull is answered (the kubelet asks right away).
    for socket in [daemon.socket(), containerd.socket()] {
        let image = cri::image_status(socket, &tag)
            .await
            .unwrap_or_else(|| panic!("ImageStatus({tag}) through {socket:?}: not found"));
        assert_eq!(image.id, image_ref);
        assert_eq!(image.repo_tags, vec![tag.clone()], "{image:?}");
        assert_eq!(image.repo_digests, vec![verified.clone()], "{image:?}");
    }
    let listed = images
        .list_images(v1::ListImagesRequest::default())
        .await
        .unwrap()
        .into_inner()
        .images;
    assert!(
        listed
            .iter()
            .any(|i| i.id == image_ref && i.repo_tags.contains(&tag)),
        "{listed:?}"
    );
    // A second pull of the same tag (the tag now exists) keeps it.
    let again = images
        .pull_image(pull(&tag, "default"))
        .await
        .unwrap()
        .into_inner()
        .image_ref;
    assert_eq!(again, image_ref);
    let image = cri::image_status(containerd.socket(), &tag).await.unwrap();
    assert_eq!(image.id, image_ref);

    // The control: in a real pod, the verified image is created.
    let logs = tempfile::tempdir().unwrap();
    let config = host_network_sandbox("default", logs.path());
    let sandbox_id = runtime
        .run_pod_sandbox(v1::RunPodSandboxRequest {
            config: Some(config.clone()),
            runtime_handler: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .pod_sandbox_id;
    let first = runtime
        .create_container(create(&sandbox_id, &config, "signed", &image_ref, &tag))
        .await
        .unwrap()
        .into_inner()
        .container_id;
    runtime
        .start_container(v1::StartContainerRequest {
            container_id: first.clone(),
        })
        .await
        .unwrap();

    // The registry goes away, and criguard restarts. The kubelet restarts
    // the container as it would with IfNotPresent: ImageStatus(tag), then
    // create and start. None of it needs the registry: the tag is on the
    // node, and what criguard verified was kept.
    drop((images, runtime));
    daemon.stop();
    node.registry.stop();
    let daemon = node.daemon(containerd.socket(), &state_config);
    let channel = cri::connect(daemon.socket()).await;
    let mut runtime = cri::runtime_client(channel);
    let image = cri::image_status(daemon.socket(), &tag)
        .await
        .expect("the tag is still on the node");
    assert_eq!(image.id, image_ref);
    let restarted = runtime
        .create_container(create(&sandbox_id, &config, "restarted", &image.id, &tag))
        .await
        .unwrap_or_else(|status| panic!("create while the registry is down: {status:?}"))
        .into_inner()
        .container_id;
    runtime
        .start_container(v1::StartContainerRequest {
            container_id: restarted.clone(),
        })
        .await
        .unwrap();
    let state = runtime
        .container_status(v1::ContainerStatusRequest {
            container_id: restarted,
            verbose: false,
        })
        .await
        .unwrap()
        .into_inner()
        .status
        .unwrap()
        .state;
    assert_eq!(state, v1::ContainerState::ContainerRunning as i32);
    assert_eq!(
        daemon.metric("criguard_decisions_total{operation=\"create\",verdict=\"allowed\""),
        1.0
    );
    node.registry.restart();

    // The tag moves, at the registry, to an unsigned image, which is
    // pulled directly on containerd, bypassing criguard: the node's tag
    // now names it.
    let unsigned = push_image(
        &node.registry,
        "test/app",
        "v1",
        &runnable_image("unsigned app"),
    );
    assert_ne!(unsigned.digest, signed.digest);
    let mut direct = cri::image_client(cri::connect(containerd.socket()).await);
    let moved_id = direct
        .pull_image(pull(&tag, "default"))
        .await
        .unwrap()
        .into_inner()
        .image_ref;
    assert_ne!(moved_id, image_ref);
    let moved = cri::image_status(daemon.socket(), &tag).await.unwrap();
    assert_eq!(moved.id, moved_id);

    // The kubelet creates from what ImageStatus(tag) says: refused, by the
    // signature check, before containerd sees the request.
    let status = runtime
        .create_container(create(&sandbox_id, &config, "moved", &moved_id, &tag))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unknown, "{status:?}");
    assert!(
        status.message().starts_with("SignatureValidationFailed: ")
            && status.message().contains("no signature exists"),
        "{}",
        status.message()
    );
    let containers = cri::runtime_client(cri::connect(containerd.socket()).await)
        .list_containers(v1::ListContainersRequest::default())
        .await
        .unwrap()
        .into_inner()
        .containers;
    let mut names: Vec<_> = containers
        .iter()
        .map(|c| c.metadata.as_ref().unwrap().name.as_str())
        .collect();
    names.sort();
    assert_eq!(names, ["restarted", "signed"], "{containers:?}");
}

/// With `tag_pinned_pulls = "off"` the runtime keeps only the digest, as
/// before: the setting is what names the tag.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tagging_can_be_turned_off() {
    let node = Node::new();
    node.write_global(&node.signed_only());
    let host = node.registry.host();
    let containerd = Containerd::start(&[(&host, &host)]);
    let daemon = node.daemon(containerd.socket(), "tag_pinned_pulls = \"off\"\n");
    let tag = Node::name(&node.signed);
    let image_ref = cri::image_client(cri::connect(daemon.socket()).await)
        .pull_image(pull(&tag, "default"))
        .await
        .unwrap()
        .into_inner()
        .image_ref;
    let pinned = cri::image_status(containerd.socket(), &node.signed.by_digest())
        .await
        .unwrap();
    assert_eq!(pinned.id, image_ref);
    assert!(pinned.repo_tags.is_empty(), "{pinned:?}");
    assert!(cri::image_status(containerd.socket(), &tag).await.is_none());
}

/// A runtime without containerd's images service (CRI-O answers
/// Unimplemented): the first verified pull finds out, criguard warns once
/// and stops trying; the pulls themselves succeed.
#[test]
fn a_runtime_without_the_images_service_is_left_alone() {
    const CREATE_IMAGE: &str = "/containerd.services.images.v1.Images/Create";
    let node = Node::new();
    node.write_global(&node.signed_only());
    let fake = FakeRuntime::start();
    fake.respond(
        PULL_IMAGE,
        vec![encode(&v1::PullImageResponse {
            image_ref: node.signed_id.clone(),
        })],
    );
    fake.fail(
        CREATE_IMAGE,
        12,
        "unknown service containerd.services.images.v1.Images",
    );
    let daemon = node.daemon(fake.socket(), "");
    let request = encode(&pull(&Node::name(&node.signed), "default"));
    for _ in 0..2 {
        let response = grpc_call_raw_blocking(daemon.socket(), PULL_IMAGE, &request);
        assert_eq!(response.grpc_status, Some(0), "{:?}", response.grpc_message);
    }
    assert_eq!(fake.calls_to(PULL_IMAGE).len(), 2);
    let creates = fake.calls_to(CREATE_IMAGE);
    assert_eq!(creates.len(), 1, "tried once");
    assert_eq!(creates[0].headers["containerd-namespace"], "k8s.io");
    assert!(fake.calls_to(IMAGE_STATUS).is_empty());
    assert_eq!(
        daemon.metric("criguard_pinned_tags_total{result=\"unsupported\"}"),
        1.0,
        "{}",
        daemon.metrics()
    );
    let log = daemon.log();
    assert_eq!(
        log.matches("the runtime has no containerd images service")
            .count(),
        1,
        "{log}"
    );
}
