//! What the `criguard serve` tests share: a registry with a signed and an
//! unsigned image, the files a node would have (policy, per-namespace
//! policies, registries.d, registries.conf) and CRI requests as the
//! kubelet builds them, from the upstream CRI definition.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use criguard_testutil::cri::v1;
use criguard_testutil::{
    CriguardDaemon, Pushed, Registry, cosign_generate_key_pair, cosign_sign,
    insecure_registries_conf, push_test_image, sigstore_registries_d, test_image,
};
use serde_json::json;

pub const PASSWORD: &str = "test-password";
pub const PULL_IMAGE: &str = "/runtime.v1.ImageService/PullImage";
pub const CREATE_CONTAINER: &str = "/runtime.v1.RuntimeService/CreateContainer";
pub const IMAGE_STATUS: &str = "/runtime.v1.ImageService/ImageStatus";

pub struct Node {
    pub registry: Registry,
    pub dir: tempfile::TempDir,
    pub cosign_pub: PathBuf,
    pub cosign_key: PathBuf,
    pub signed: Pushed,
    pub unsigned: Pushed,
    /// The image IDs (config digests) a runtime reports for them.
    pub signed_id: String,
    pub unsigned_id: String,
}

impl Node {
    /// A registry holding `test/signed:v1` (cosign-signed) and
    /// `test/unsigned:v1`, and a global policy that accepts anything.
    pub fn new() -> Node {
        let registry = Registry::start();
        let dir = tempfile::tempdir().unwrap();
        sigstore_registries_d(&dir.path().join("registries.d"), &registry.host());
        insecure_registries_conf(&dir.path().join("registries.conf"), &registry.host());
        std::fs::create_dir(dir.path().join("policies")).unwrap();
        let keys = dir.path().join("keys");
        std::fs::create_dir(&keys).unwrap();
        let (cosign_key, cosign_pub) = cosign_generate_key_pair(&keys, PASSWORD);
        let signed = push_test_image(&registry, "test/signed", "v1", "signed content");
        cosign_sign(&cosign_key, PASSWORD, &signed.by_digest());
        let unsigned = push_test_image(&registry, "test/unsigned", "v1", "unsigned content");
        let node = Node {
            registry,
            dir,
            cosign_pub,
            cosign_key,
            signed,
            unsigned,
            signed_id: test_image("signed content").config.digest,
            unsigned_id: test_image("unsigned content").config.digest,
        };
        node.write_global(&node.accept_anything());
        node
    }

    pub fn accept_anything(&self) -> serde_json::Value {
        json!({"default": [{"type": "insecureAcceptAnything"}]})
    }

    /// Signatures by our cosign key required in the test registry, every
    /// other image rejected.
    pub fn signed_only(&self) -> serde_json::Value {
        json!({
            "default": [{"type": "reject"}],
            "transports": {"docker": {self.registry.host(): [{
                "type": "sigstoreSigned",
                "keyPath": self.cosign_pub,
                "signedIdentity": {"type": "matchRepository"},
            }]}},
        })
    }

    pub fn global_policy(&self) -> PathBuf {
        self.dir.path().join("policy.json")
    }

    pub fn write_global(&self, policy: &serde_json::Value) {
        write_atomically(&self.global_policy(), policy.to_string().as_bytes());
    }

    pub fn write_namespace(&self, namespace: &str, policy: &serde_json::Value) {
        write_atomically(
            &self
                .dir
                .path()
                .join("policies")
                .join(format!("{namespace}.json")),
            policy.to_string().as_bytes(),
        );
    }

    /// The config lines that point the daemon at this node's files.
    pub fn config(&self) -> String {
        let d = self.dir.path();
        format!(
            "policy = \"{}\"\npolicy_dir = \"{}\"\nregistries_d = \"{}\"\n\
             registries_conf = \"{}\"\npolicy_poll_seconds = 1\n",
            self.global_policy().display(),
            d.join("policies").display(),
            d.join("registries.d").display(),
            d.join("registries.conf").display()
        )
    }

    pub fn daemon(&self, runtime: &Path, extra: &str) -> CriguardDaemon {
        CriguardDaemon::start(
            Path::new(env!("CARGO_BIN_EXE_criguard")),
            runtime,
            &format!("{}{extra}", self.config()),
        )
    }

    /// `HOST/REPO:TAG`, as a pod spec names it.
    pub fn name(pushed: &Pushed) -> String {
        format!("{}/{}:{}", pushed.host, pushed.repo, pushed.tag)
    }
}

/// Replaces a file the way `kubectl`-managed config maps and careful
/// admins do (write aside, rename), so the daemon never reads half a file.
pub fn write_atomically(path: &Path, bytes: &[u8]) {
    let aside = path.with_extension("tmp~");
    std::fs::write(&aside, bytes).unwrap();
    std::fs::rename(&aside, path).unwrap();
}

pub fn sandbox(namespace: &str) -> v1::PodSandboxConfig {
    v1::PodSandboxConfig {
        metadata: Some(v1::PodSandboxMetadata {
            name: "pod".to_owned(),
            uid: "uid-1".to_owned(),
            namespace: namespace.to_owned(),
            attempt: 0,
        }),
        ..Default::default()
    }
}

pub fn pull(image: &str, namespace: &str) -> v1::PullImageRequest {
    v1::PullImageRequest {
        image: Some(criguard_testutil::cri::image_spec(image)),
        auth: None,
        sandbox_config: Some(sandbox(namespace)),
    }
}

/// What the kubelet sends: the image ID the pull returned as `image`, the
/// pod spec's name as `user_specified_image`, and image volumes as mounts.
pub fn create(
    container: &str,
    namespace: &str,
    image_id: &str,
    user_image: &str,
    volumes: &[(&str, &str, &str)],
) -> v1::CreateContainerRequest {
    v1::CreateContainerRequest {
        // The fake runtime has a sandbox in `namespace` under this ID.
        pod_sandbox_id: format!("sandbox-{namespace}"),
        config: Some(v1::ContainerConfig {
            metadata: Some(v1::ContainerMetadata {
                name: container.to_owned(),
                attempt: 0,
            }),
            image: Some(v1::ImageSpec {
                image: image_id.to_owned(),
                user_specified_image: user_image.to_owned(),
                ..Default::default()
            }),
            mounts: volumes
                .iter()
                .map(|(path, id, user)| v1::Mount {
                    container_path: (*path).to_owned(),
                    image: Some(v1::ImageSpec {
                        image: (*id).to_owned(),
                        user_specified_image: (*user).to_owned(),
                        ..Default::default()
                    }),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }),
        sandbox_config: Some(sandbox(namespace)),
    }
}

/// A host-network pod's sandbox config, as the kubelet writes it (no CNI
/// here): its namespace, its log directory, its own PID namespace per
/// container.
pub fn host_network_sandbox(namespace: &str, log_directory: &Path) -> v1::PodSandboxConfig {
    v1::PodSandboxConfig {
        metadata: Some(v1::PodSandboxMetadata {
            name: format!("pod-{namespace}"),
            uid: format!("uid-{namespace}"),
            namespace: namespace.to_owned(),
            attempt: 0,
        }),
        log_directory: log_directory.to_str().unwrap().to_owned(),
        linux: Some(v1::LinuxPodSandboxConfig {
            security_context: Some(v1::LinuxSandboxSecurityContext {
                namespace_options: Some(host_network()),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The pod shares the node's network, each container has its own PID
/// namespace, as the kubelet asks for a `hostNetwork: true` pod.
pub fn host_network() -> v1::NamespaceOption {
    v1::NamespaceOption {
        network: v1::NamespaceMode::Node as i32,
        pid: v1::NamespaceMode::Container as i32,
        ipc: v1::NamespaceMode::Pod as i32,
        ..Default::default()
    }
}
