//! What the tests against a real API server share: a kube-rs client for
//! the harness's kubeconfig, the committed CRDs applied and established,
//! policy objects built from JSON, and `criguard agent` /
//! `criguard status-writer` run as processes of their own.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::panic)]

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use criguard_testutil::KubeApiServer;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use serde::Deserialize as _;

/// How long anything the tests wait for may take: generous for a loaded
/// 2-core machine; the tests poll, they never assert on timing.
pub const PATIENCE: Duration = Duration::from_secs(60);

pub async fn client(api: &KubeApiServer) -> Client {
    let kubeconfig = Kubeconfig::read_from(api.kubeconfig()).unwrap();
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .unwrap();
    Client::try_from(config).unwrap()
}

/// `deploy/crds/*.yaml` as committed.
pub fn committed_crds() -> Vec<CustomResourceDefinition> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/crds");
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    let mut crds = Vec::new();
    for file in files {
        let text = fs::read_to_string(&file).unwrap();
        for document in yaml_serde::Deserializer::from_str(&text) {
            let value = serde_json::Value::deserialize(document).unwrap();
            if value.is_null() {
                continue;
            }
            crds.push(serde_json::from_value(value).unwrap());
        }
    }
    assert_eq!(crds.len(), 2, "two CRDs in {}", dir.display());
    crds
}

/// Creates the committed CRDs and waits until both are established and
/// their resources are served.
pub async fn apply_crds(client: &Client) {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in committed_crds() {
        let name = crd.metadata.name.clone().unwrap();
        api.create(&PostParams::default(), &crd)
            .await
            .unwrap_or_else(|e| panic!("creating CRD {name}: {e}"));
        let deadline = Instant::now() + PATIENCE;
        loop {
            let got = api.get(&name).await.unwrap();
            let established = got
                .status
                .and_then(|s| s.conditions)
                .unwrap_or_default()
                .iter()
                .any(|c| c.type_ == "Established" && c.status == "True");
            if established {
                break;
            }
            assert!(Instant::now() < deadline, "CRD {name} not established");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    // Established comes a moment before the resource is served.
    let policies: Api<criguard_kube_policy::ImagePolicy> = Api::all(client.clone());
    let cluster: Api<criguard_kube_policy::ClusterImagePolicy> = Api::all(client.clone());
    let deadline = Instant::now() + PATIENCE;
    while policies.list(&Default::default()).await.is_err()
        || cluster.list(&Default::default()).await.is_err()
    {
        assert!(Instant::now() < deadline, "custom resources not served");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Base64 of a PEM file, as `[]byte` fields are written in Kubernetes JSON.
pub fn base64_of(path: &Path) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(fs::read(path).unwrap())
}

/// The spec of a policy trusting the cosign public key at `key` for
/// `scopes`, matching signatures by repository (cosign signs the
/// repository, and the tests pull tags).
pub fn public_key_spec(scopes: &[String], key: &Path) -> serde_json::Value {
    serde_json::json!({
        "scopes": scopes,
        "policy": {
            "rootOfTrust": {
                "policyType": "PublicKey",
                "publicKey": {"keyData": base64_of(key)},
            },
            "signedIdentity": {"matchPolicy": "MatchRepository"},
        },
    })
}

pub fn image_policy(
    namespace: &str,
    name: &str,
    spec: serde_json::Value,
) -> criguard_kube_policy::ImagePolicy {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "criguard.dev/v1alpha1",
        "kind": "ImagePolicy",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }))
    .unwrap()
}

pub fn cluster_image_policy(
    name: &str,
    spec: serde_json::Value,
) -> criguard_kube_policy::ClusterImagePolicy {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "criguard.dev/v1alpha1",
        "kind": "ClusterImagePolicy",
        "metadata": {"name": name},
        "spec": spec,
    }))
    .unwrap()
}

/// A criguard subcommand running in the background, logging to a file;
/// killed by its PID when dropped.
pub struct Running {
    child: Option<Child>,
    log: PathBuf,
}

impl Running {
    pub fn start<A: AsRef<std::ffi::OsStr>>(args: &[A], log: PathBuf) -> Running {
        let file = File::create(&log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_criguard"))
            .args(args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .unwrap();
        Running {
            child: Some(child),
            log,
        }
    }

    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Whether it is still running (it must not exit on its own).
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().unwrap().is_none())
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Polls `condition` until it holds or [`PATIENCE`] runs out.
pub async fn eventually<F, Fut>(what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + PATIENCE;
    while !condition().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
