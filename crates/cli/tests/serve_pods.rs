//! Real pods behind `criguard serve`, on containerd 1.6 (Debian 12) and
//! containerd 2.1 (Debian sid, CRI v1 only, pulls through its transfer
//! service), both with bookworm's runc: pod sandboxes on the host network
//! whose pause image is built here from a `gcc -static` program, and
//! containers of the same program that print what their image holds. What
//! the fake runtime tests show about creates is shown here with containers
//! that really start, or really never exist:
//!
//! - an image pulled for a permissive namespace starts there, and is
//!   refused in a strict one (the create never reaches containerd);
//! - a signed image starts in the strict namespace and is running;
//! - an image volume of an unsigned image is refused beside a signed
//!   container image; on 2.1, which mounts image volumes, a signed one is
//!   let through and the container sees its files.
//!
//! Each test runs one containerd, one criguard and one registry; the two
//! releases run side by side.

#![allow(clippy::unwrap_used)]

mod serve_support;

use std::path::Path;
use std::time::{Duration, Instant};

use criguard_testutil::containerd::Release;
use criguard_testutil::cri::{self, v1};
use criguard_testutil::{
    Containerd, ImageBuilder, Pushed, cosign_sign, pause_image, push_image, runnable_image,
};
use serve_support::{Node, PASSWORD, host_network, host_network_sandbox};
use tonic::Code;
use tonic::transport::Channel;

/// How long a started container may take to print its first lines.
const OUTPUT_TIMEOUT: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_pods_on_containerd_1_6() {
    real_pods(Release::V1_6).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_pods_on_containerd_2_1() {
    real_pods(Release::V2_1).await;
}

/// The images of one test, pushed to the node's registry.
struct Images {
    pause: Pushed,
    signed: Pushed,
    unsigned: Pushed,
    signed_volume: Pushed,
    unsigned_volume: Pushed,
}

impl Images {
    fn push(node: &Node) -> Images {
        let registry = &node.registry;
        let volume = |content: &str| {
            ImageBuilder::new()
                .file("etc/criguard-test", content)
                .build()
        };
        let images = Images {
            // Unsigned on purpose: containerd pulls the sandbox image
            // itself, criguard never sees that pull.
            pause: push_image(registry, "test/pause", "1", &pause_image()),
            signed: push_image(
                registry,
                "test/app",
                "signed",
                &runnable_image("signed app"),
            ),
            unsigned: push_image(
                registry,
                "test/app",
                "unsigned",
                &runnable_image("unsigned app"),
            ),
            signed_volume: push_image(registry, "test/data", "signed", &volume("signed volume")),
            unsigned_volume: push_image(
                registry,
                "test/data",
                "unsigned",
                &volume("unsigned volume"),
            ),
        };
        cosign_sign(&node.cosign_key, PASSWORD, &images.signed.by_digest());
        cosign_sign(
            &node.cosign_key,
            PASSWORD,
            &images.signed_volume.by_digest(),
        );
        images
    }
}

/// The CRI as the kubelet uses it, through criguard's socket.
struct Kubelet {
    runtime: cri::RuntimeServiceClient<Channel>,
    images: cri::ImageServiceClient<Channel>,
    logs: tempfile::TempDir,
}

impl Kubelet {
    async fn connect(socket: &Path) -> Kubelet {
        let channel = cri::connect(socket).await;
        Kubelet {
            runtime: cri::runtime_client(channel.clone()),
            images: cri::image_client(channel),
            logs: tempfile::tempdir().unwrap(),
        }
    }

    /// A sandbox config as the kubelet writes it for a host-network pod:
    /// the pod's log directory, its own PID namespace per container.
    fn sandbox_config(&self, namespace: &str) -> v1::PodSandboxConfig {
        let log_directory = self.logs.path().join(namespace);
        std::fs::create_dir_all(&log_directory).unwrap();
        host_network_sandbox(namespace, &log_directory)
    }

    async fn run_pod(&mut self, namespace: &str) -> (String, v1::PodSandboxConfig) {
        let config = self.sandbox_config(namespace);
        let id = self
            .runtime
            .run_pod_sandbox(v1::RunPodSandboxRequest {
                config: Some(config.clone()),
                runtime_handler: String::new(),
            })
            .await
            .unwrap_or_else(|e| panic!("RunPodSandbox in {namespace}: {e:?}"))
            .into_inner()
            .pod_sandbox_id;
        (id, config)
    }

    async fn pull(&mut self, image: &Pushed, sandbox: &v1::PodSandboxConfig) -> String {
        self.images
            .pull_image(v1::PullImageRequest {
                image: Some(cri::image_spec(&Node::name(image))),
                auth: None,
                sandbox_config: Some(sandbox.clone()),
            })
            .await
            .unwrap_or_else(|e| panic!("PullImage {}: {e:?}", Node::name(image)))
            .into_inner()
            .image_ref
    }

    /// CreateContainer as the kubelet sends it: the image by the ID its
    /// pull returned and by the pod spec's name; image volumes likewise,
    /// mounted at `/vol`.
    async fn create(
        &mut self,
        (sandbox_id, sandbox): &(String, v1::PodSandboxConfig),
        name: &str,
        image: (&str, &Pushed),
        volume: Option<(&str, &Pushed)>,
        args: &[&str],
    ) -> Result<String, tonic::Status> {
        let spec = |(id, pushed): (&str, &Pushed)| v1::ImageSpec {
            image: id.to_owned(),
            user_specified_image: Node::name(pushed),
            ..Default::default()
        };
        let config = v1::ContainerConfig {
            metadata: Some(v1::ContainerMetadata {
                name: name.to_owned(),
                attempt: 0,
            }),
            image: Some(spec(image)),
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            log_path: format!("{name}.log"),
            mounts: volume
                .map(|v| v1::Mount {
                    container_path: "/vol".to_owned(),
                    readonly: true,
                    image: Some(spec(v)),
                    ..Default::default()
                })
                .into_iter()
                .collect(),
            linux: Some(v1::LinuxContainerConfig {
                security_context: Some(v1::LinuxContainerSecurityContext {
                    namespace_options: Some(host_network()),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        self.runtime
            .create_container(v1::CreateContainerRequest {
                pod_sandbox_id: sandbox_id.clone(),
                config: Some(config),
                sandbox_config: Some(sandbox.clone()),
            })
            .await
            .map(|r| r.into_inner().container_id)
    }

    async fn start(&mut self, id: &str) {
        self.runtime
            .start_container(v1::StartContainerRequest {
                container_id: id.to_owned(),
            })
            .await
            .unwrap_or_else(|e| panic!("StartContainer {id}: {e:?}"));
    }

    async fn status(&mut self, id: &str) -> v1::ContainerStatus {
        self.runtime
            .container_status(v1::ContainerStatusRequest {
                container_id: id.to_owned(),
                verbose: false,
            })
            .await
            .unwrap_or_else(|e| panic!("ContainerStatus {id}: {e:?}"))
            .into_inner()
            .status
            .unwrap()
    }

    /// Waits until the container's log (written by containerd from its
    /// stdout) holds every one of `lines`; returns the log.
    async fn output(&self, namespace: &str, name: &str, lines: &[&str]) -> String {
        let path = self.logs.path().join(namespace).join(format!("{name}.log"));
        let deadline = Instant::now() + OUTPUT_TIMEOUT;
        loop {
            let log = std::fs::read_to_string(&path).unwrap_or_default();
            // CRI log lines: "<time> stdout F <text>".
            let printed: Vec<&str> = log
                .lines()
                .filter_map(|l| l.split_once(" stdout F ").map(|(_, text)| text))
                .collect();
            if lines.iter().all(|want| printed.contains(want)) {
                return log;
            }
            assert!(
                Instant::now() < deadline,
                "{name} did not print {lines:?} within {OUTPUT_TIMEOUT:?}; its log:\n{log}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn stop_and_remove_container(&mut self, id: &str) {
        self.runtime
            .stop_container(v1::StopContainerRequest {
                container_id: id.to_owned(),
                timeout: 10,
            })
            .await
            .unwrap_or_else(|e| panic!("StopContainer {id}: {e:?}"));
        let status = self.status(id).await;
        assert_eq!(
            status.state(),
            v1::ContainerState::ContainerExited,
            "{status:?}"
        );
        // The program exits 0 on SIGTERM: it was stopped, not killed.
        assert_eq!(status.exit_code, 0, "{status:?}");
        self.runtime
            .remove_container(v1::RemoveContainerRequest {
                container_id: id.to_owned(),
            })
            .await
            .unwrap_or_else(|e| panic!("RemoveContainer {id}: {e:?}"));
    }

    async fn stop_and_remove_pod(&mut self, id: &str) {
        self.runtime
            .stop_pod_sandbox(v1::StopPodSandboxRequest {
                pod_sandbox_id: id.to_owned(),
            })
            .await
            .unwrap_or_else(|e| panic!("StopPodSandbox {id}: {e:?}"));
        self.runtime
            .remove_pod_sandbox(v1::RemovePodSandboxRequest {
                pod_sandbox_id: id.to_owned(),
            })
            .await
            .unwrap_or_else(|e| panic!("RemovePodSandbox {id}: {e:?}"));
    }
}

/// The names of the containers containerd itself has in `sandbox`.
async fn containers_in(containerd: &Containerd, sandbox: &str) -> Vec<String> {
    let mut direct = cri::runtime_client(cri::connect(containerd.socket()).await);
    direct
        .list_containers(v1::ListContainersRequest {
            filter: Some(v1::ContainerFilter {
                pod_sandbox_id: sandbox.to_owned(),
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .containers
        .into_iter()
        .map(|c| c.metadata.unwrap().name)
        .collect()
}

fn assert_refused(result: Result<String, tonic::Status>, expected: &[&str]) -> String {
    let status = result.expect_err("the create must be refused");
    assert_eq!(status.code(), Code::Unknown, "{status:?}");
    let message = status.message().to_owned();
    assert!(
        message.starts_with("SignatureValidationFailed: "),
        "{message}"
    );
    for want in expected {
        assert!(message.contains(want), "expected {want:?} in {message:?}");
    }
    message
}

async fn real_pods(release: Release) {
    let started = Instant::now();
    let node = Node::new();
    // Strict: every image of the test registry needs our signature.
    // Relaxed: anything goes.
    node.write_global(&node.signed_only());
    node.write_namespace("relaxed", &node.accept_anything());
    let images = Images::push(&node);
    let host = node.registry.host();
    let containerd =
        Containerd::start_release(release, &[(&host, &host)], Some(&images.pause.by_tag()));
    assert!(
        containerd
            .runtime_version()
            .starts_with(release.version_prefix()),
        "{}",
        containerd.runtime_version()
    );
    let daemon = node.daemon(containerd.socket(), "");
    let mut kubelet = Kubelet::connect(daemon.socket()).await;

    // Two real sandboxes, made through criguard; containerd pulls the
    // pause image for the first one itself.
    let relaxed = kubelet.run_pod("relaxed").await;
    let strict = kubelet.run_pod("strict").await;
    let mut direct = cri::runtime_client(cri::connect(containerd.socket()).await);
    for (id, config) in [&relaxed, &strict] {
        let status = direct
            .pod_sandbox_status(v1::PodSandboxStatusRequest {
                pod_sandbox_id: id.clone(),
                verbose: false,
            })
            .await
            .unwrap()
            .into_inner()
            .status
            .unwrap();
        assert_eq!(
            status.state(),
            v1::PodSandboxState::SandboxReady,
            "{status:?}"
        );
        assert_eq!(status.metadata, config.metadata, "{status:?}");
        let network = status.linux.unwrap().namespaces.unwrap().options.unwrap();
        assert_eq!(network.network(), v1::NamespaceMode::Node);
    }
    let pause = cri::image_status(containerd.socket(), &images.pause.by_tag()).await;
    assert!(pause.is_some(), "containerd pulled no sandbox image");

    // Pulls through criguard, each for the namespace that will use it.
    let unsigned_id = kubelet.pull(&images.unsigned, &relaxed.1).await;
    let unsigned_volume_id = kubelet.pull(&images.unsigned_volume, &relaxed.1).await;
    let signed_id = kubelet.pull(&images.signed, &strict.1).await;
    let signed_volume_id = kubelet.pull(&images.signed_volume, &strict.1).await;
    if release == Release::V2_1 {
        // The pinned pull went through 2.1's transfer service, the way
        // most clusters pull, not the CRI plugin's own client pull.
        let pinned = format!("{}@{}", images.signed.name(), images.signed.digest);
        let log = containerd.log();
        assert!(
            log.lines()
                .any(|l| l.contains(&pinned) && l.contains("using transfer service")),
            "containerd 2.1 did not pull {pinned} through its transfer service:\n{log}"
        );
    }

    // The control: the unsigned image runs where its policy allows it, so
    // a refusal below is the policy's doing, not a broken image.
    let unsigned = (unsigned_id.as_str(), &images.unsigned);
    let relaxed_app = kubelet
        .create(&relaxed, "app", unsigned, None, &[])
        .await
        .unwrap();
    kubelet.start(&relaxed_app).await;
    kubelet.output("relaxed", "app", &["unsigned app"]).await;

    // The same image, already on the node, in the strict namespace:
    // refused, and containerd never hears of the container.
    assert_refused(
        kubelet
            .create(&strict, "unsigned", unsigned, None, &[])
            .await,
        &["no signature exists", &images.unsigned.digest],
    );
    assert!(containers_in(&containerd, &strict.0).await.is_empty());

    // The signed image starts there and runs, from its own image.
    let signed = (signed_id.as_str(), &images.signed);
    let app = kubelet
        .create(&strict, "app", signed, None, &[])
        .await
        .unwrap();
    kubelet.start(&app).await;
    let status = kubelet.status(&app).await;
    assert_eq!(
        status.state(),
        v1::ContainerState::ContainerRunning,
        "{status:?}"
    );
    // It runs the image criguard verified: that digest, that image ID
    // (the status names the image as containerd chooses to, by ID or by a
    // tag it holds; either way it is that image).
    assert_eq!(status.image_ref, images.signed.by_digest(), "{status:?}");
    let shown = &status.image.as_ref().unwrap().image;
    let running = cri::image_status(containerd.socket(), shown).await.unwrap();
    assert_eq!(running.id, signed_id, "{running:?}");
    kubelet.output("strict", "app", &["signed app"]).await;

    // An unsigned image volume beside the signed image: refused for the
    // volume (criguard checks it even where containerd 1.6 would not
    // mount it), and never created.
    let unsigned_volume = (unsigned_volume_id.as_str(), &images.unsigned_volume);
    assert_refused(
        kubelet
            .create(
                &strict,
                "with-unsigned-volume",
                signed,
                Some(unsigned_volume),
                &[],
            )
            .await,
        &["no signature exists", &images.unsigned_volume.digest],
    );
    assert_eq!(containers_in(&containerd, &strict.0).await, vec!["app"]);

    // Neither refused create reached containerd at all: it logs every
    // CreateContainer it receives with the container's metadata (the
    // control: the created ones are there).
    let log = containerd.log();
    assert!(log.contains("ContainerMetadata{Name:app,"), "{log}");
    for refused in ["unsigned", "with-unsigned-volume"] {
        let create = format!("ContainerMetadata{{Name:{refused},");
        assert!(!log.contains(&create), "containerd saw {refused}:\n{log}");
    }

    let mut with_volume = None;
    if release == Release::V2_1 {
        // A signed image volume is let through, and containerd 2.1 mounts
        // it: the container prints its own file and the volume's.
        let signed_volume = (signed_volume_id.as_str(), &images.signed_volume);
        let args = ["@/etc/criguard-test", "@/vol/etc/criguard-test"];
        let id = kubelet
            .create(&strict, "with-volume", signed, Some(signed_volume), &args)
            .await
            .unwrap_or_else(|e| panic!("the signed image volume was refused: {e:?}"));
        kubelet.start(&id).await;
        kubelet
            .output("strict", "with-volume", &["signed app", "signed volume"])
            .await;
        with_volume = Some(id);
    }

    // Every decision was audited, in the namespace of the real sandbox.
    let audit = daemon.audit();
    let rejected: Vec<_> = audit
        .iter()
        .filter(|l| l["verdict"] == "rejected")
        .collect();
    assert_eq!(rejected.len(), 2, "{audit:?}");
    assert!(
        rejected.iter().all(|l| l["namespace"] == "strict"),
        "{rejected:?}"
    );

    // Stopped and removed through criguard, as the kubelet would.
    for id in [&relaxed_app, &app].into_iter().chain(with_volume.as_ref()) {
        kubelet.stop_and_remove_container(id).await;
    }
    for (id, _) in [&relaxed, &strict] {
        kubelet.stop_and_remove_pod(id).await;
    }
    let left = direct
        .list_pod_sandbox(v1::ListPodSandboxRequest::default())
        .await
        .unwrap()
        .into_inner()
        .items;
    assert!(left.is_empty(), "{left:?}");
    let left = direct
        .list_containers(v1::ListContainersRequest::default())
        .await
        .unwrap()
        .into_inner()
        .containers;
    assert!(left.is_empty(), "{left:?}");
    eprintln!(
        "{release} ({}): real pods checked in {:?}",
        containerd.runtime_version(),
        started.elapsed()
    );
}
