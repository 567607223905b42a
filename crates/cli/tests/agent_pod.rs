//! The agent's image, built by `scripts/image.sh` (an OCI layout written
//! by the script, pushed with skopeo, no container daemon), run as a real
//! pod: containerd 1.6 and runc behind `criguard serve`, a host-network
//! sandbox, the container as the DaemonSet runs it (user 65532, read-only
//! root file system, the rendered folder its one writable mount). It
//! watches a real API server on 127.0.0.1, writes the node's files, and
//! serve enforces them.
//!
//! The bootstrap order of a node is the README's: the rendered folder is
//! created for the agent's user and seeded with the base policy
//! (`criguard agent --seed`), serve starts on it, then pods, the agent's
//! first, can run.

#![allow(clippy::unwrap_used)]

mod kube_support;
mod serve_support;

use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use criguard_kube_policy::ImagePolicy;
use criguard_testutil::containerd::Release;
use criguard_testutil::cri::{self, v1};
use criguard_testutil::grpc::encode;
use criguard_testutil::{
    Containerd, CriguardDaemon, KubeApiServer, grpc_call_raw_blocking, output_text, pause_image,
    push_image, run_ok, run_with_timeout,
};
use kube::api::{Api, PostParams};
use kube_support::*;
use serve_support::{Node, PULL_IMAGE, host_network, host_network_sandbox, pull};

/// The agent's user in deploy/agent/daemonset.yaml.
const AGENT_UID: u32 = 65532;
const UNKNOWN: i32 = 2;

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

/// A folder the agent's user owns, reachable by it from the root.
fn agent_folder(path: &Path) -> PathBuf {
    std::fs::create_dir_all(path).unwrap();
    run_ok(
        Command::new("chown")
            .arg(format!("{AGENT_UID}:{AGENT_UID}"))
            .arg(path),
    );
    path.to_owned()
}

/// The test's admin credentials, readable by the agent's user, and a
/// kubeconfig naming them where the pod mounts them.
fn pod_kubeconfig(api: &KubeApiServer, dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let pki = api.kubeconfig().parent().unwrap().join("pki");
    for file in ["admin.crt", "admin.key"] {
        std::fs::copy(pki.join(file), dir.join(file)).unwrap();
        run_ok(Command::new("chmod").arg("0644").arg(dir.join(file)));
    }
    std::fs::write(
        dir.join("kubeconfig"),
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster: {{server: \"{}\", insecure-skip-tls-verify: true}}\n\
             users:\n- name: admin\n  user: {{client-certificate: /etc/criguard/kube/admin.crt, client-key: /etc/criguard/kube/admin.key}}\n\
             contexts:\n- name: test\n  context: {{cluster: test, user: admin}}\ncurrent-context: test\n",
            api.server()
        ),
    )
    .unwrap();
}

fn mount(container: &str, host: &Path, readonly: bool) -> v1::Mount {
    v1::Mount {
        container_path: container.to_owned(),
        host_path: host.to_str().unwrap().to_owned(),
        readonly,
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_image_runs_as_a_pod_and_serve_enforces_what_it_writes() {
    let node = Node::new();
    let host = node.registry.host();
    let pause = push_image(&node.registry, "test/pause", "1", &pause_image());

    // The image, from the criguard binary under test.
    let dir = node.dir.path();
    let layout = dir.join("agent-image");
    let agent_image = format!("{host}/criguard/agent:test");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/image.sh");
    let out = run_with_timeout(
        Command::new("bash")
            .arg(&script)
            .arg("--binary")
            .arg(env!("CARGO_BIN_EXE_criguard"))
            .arg("--tag")
            .arg("test")
            .arg(&layout)
            .arg(format!("docker://{agent_image}")),
        std::time::Duration::from_secs(600),
    );
    assert!(out.status.success(), "{}", output_text(&out));
    assert!(layout.join("oci-layout").is_file());
    assert!(layout.join("index.json").is_file());

    let mut api = KubeApiServer::start();
    let client = client(&api).await;
    apply_crds(&client).await;

    // The node, in the README's order: the rendered folder for the agent's
    // user, seeded with the base policy; serve on it; then pods.
    std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let rendered = agent_folder(&dir.join("rendered"));
    let base_dir = dir.join("base");
    std::fs::create_dir(&base_dir).unwrap();
    std::fs::write(
        base_dir.join("policy.json"),
        r#"{"default":[{"type":"insecureAcceptAnything"}]}"#,
    )
    .unwrap();
    run_ok(
        Command::new("setpriv")
            .arg(format!("--reuid={AGENT_UID}"))
            .arg(format!("--regid={AGENT_UID}"))
            .arg("--clear-groups")
            .arg(env!("CARGO_BIN_EXE_criguard"))
            .arg("agent")
            .arg("--seed")
            .arg(format!("--base={}", base_dir.join("policy.json").display()))
            .arg(format!("--output={}", rendered.display())),
    );
    let seeded = std::fs::read_link(rendered.join("..data")).unwrap();
    let kube_dir = dir.join("kube");
    pod_kubeconfig(&api, &kube_dir);

    let containerd =
        Containerd::start_release(Release::V1_6, &[(&host, &host)], Some(&pause.by_tag()));
    let daemon = CriguardDaemon::start(
        Path::new(env!("CARGO_BIN_EXE_criguard")),
        containerd.socket(),
        &format!(
            "policy = \"{r}/policy.json\"\npolicy_dir = \"{r}/policies\"\n\
             registries_d = \"{r}/registries.d\"\nregistries_conf = \"{d}/registries.conf\"\n",
            r = rendered.display(),
            d = dir.display()
        ),
    );

    // The agent's pod, through criguard, as the kubelet would run it.
    let channel = cri::connect(daemon.socket()).await;
    let mut runtime = cri::runtime_client(channel.clone());
    let mut images = cri::image_client(channel);
    let logs = tempfile::tempdir().unwrap();
    let sandbox = host_network_sandbox("criguard-system", logs.path());
    let sandbox_id = runtime
        .run_pod_sandbox(v1::RunPodSandboxRequest {
            config: Some(sandbox.clone()),
            runtime_handler: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .pod_sandbox_id;
    let image_id = images
        .pull_image(v1::PullImageRequest {
            image: Some(cri::image_spec(&agent_image)),
            auth: None,
            sandbox_config: Some(sandbox.clone()),
        })
        .await
        .unwrap()
        .into_inner()
        .image_ref;
    let config = v1::ContainerConfig {
        metadata: Some(v1::ContainerMetadata {
            name: "agent".to_owned(),
            attempt: 0,
        }),
        image: Some(v1::ImageSpec {
            image: image_id,
            user_specified_image: agent_image.clone(),
            ..Default::default()
        }),
        args: [
            "agent",
            "--base=/etc/criguard/base/policy.json",
            "--output=/etc/criguard/rendered",
            "--kubeconfig=/etc/criguard/kube/kubeconfig",
            "--debounce-ms=200",
        ]
        .map(str::to_owned)
        .to_vec(),
        log_path: "agent.log".to_owned(),
        mounts: vec![
            mount("/etc/criguard/rendered", &rendered, false),
            mount("/etc/criguard/base", &base_dir, true),
            mount("/etc/criguard/kube", &kube_dir, true),
        ],
        linux: Some(v1::LinuxContainerConfig {
            security_context: Some(v1::LinuxContainerSecurityContext {
                namespace_options: Some(host_network()),
                run_as_user: Some(v1::Int64Value {
                    value: i64::from(AGENT_UID),
                }),
                run_as_group: Some(v1::Int64Value {
                    value: i64::from(AGENT_UID),
                }),
                readonly_rootfs: true,
                no_new_privs: true,
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    let container = runtime
        .create_container(v1::CreateContainerRequest {
            pod_sandbox_id: sandbox_id.clone(),
            config: Some(config),
            sandbox_config: Some(sandbox),
        })
        .await
        .unwrap()
        .into_inner()
        .container_id;
    runtime
        .start_container(v1::StartContainerRequest {
            container_id: container.clone(),
        })
        .await
        .unwrap();
    let pod_log = || std::fs::read_to_string(logs.path().join("agent.log")).unwrap_or_default();

    // A policy object: the pod renders it, and serve enforces it.
    let policies: Api<ImagePolicy> = Api::namespaced(client.clone(), "team");
    let spec = public_key_spec(&[format!("{host}/test")], &node.cosign_pub);
    policies
        .create(
            &PostParams::default(),
            &image_policy("team", "signed", spec),
        )
        .await
        .unwrap();
    let team = rendered.join("policies/team.json");
    let deadline = std::time::Instant::now() + PATIENCE;
    while !team.is_file() {
        assert!(
            std::time::Instant::now() < deadline,
            "the agent pod wrote no team.json; its log:\n{}",
            pod_log()
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let generation = std::fs::read_link(rendered.join("..data")).unwrap();
    assert_ne!(generation, seeded);
    // Written by the pod, as its user.
    assert_eq!(
        std::fs::metadata(rendered.join(&generation)).unwrap().uid(),
        AGENT_UID
    );
    let unsigned = Node::name(&node.unsigned);
    eventually("serve to refuse the unsigned image in team", || async {
        pull_status(&daemon, &unsigned, "team").0 == UNKNOWN
    })
    .await;
    let (code, message) = pull_status(&daemon, &Node::name(&node.signed), "team");
    assert_eq!(code, 0, "{message}");
    assert_eq!(pull_status(&daemon, &unsigned, "other").0, 0);

    // The pod is still running; stop it as the kubelet would.
    let status = runtime
        .container_status(v1::ContainerStatusRequest {
            container_id: container.clone(),
            verbose: false,
        })
        .await
        .unwrap()
        .into_inner()
        .status
        .unwrap();
    assert_eq!(
        status.state(),
        v1::ContainerState::ContainerRunning,
        "{status:?}\n{}",
        pod_log()
    );
    runtime
        .stop_container(v1::StopContainerRequest {
            container_id: container.clone(),
            timeout: 10,
        })
        .await
        .unwrap();
    runtime
        .stop_pod_sandbox(v1::StopPodSandboxRequest {
            pod_sandbox_id: sandbox_id.clone(),
        })
        .await
        .unwrap();
    runtime
        .remove_pod_sandbox(v1::RemovePodSandboxRequest {
            pod_sandbox_id: sandbox_id,
        })
        .await
        .unwrap();
    // With no agent running, serve goes on enforcing its last files.
    assert_eq!(pull_status(&daemon, &unsigned, "team").0, UNKNOWN);
    api.stop();
}
