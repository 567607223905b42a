//! In-memory stand-ins for the registry and the runtime, and a node built
//! on them, for the decision service's and the gate's unit tests.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use criguard_policy::{ImageReference, Signature};
use criguard_reference::{Digest, Reference};
use criguard_registry::digest::sha256;
use criguard_registry::{Credentials, ImageSignatures};
use criguard_sigstore::SigningKey;
use criguard_verification::{ImageSource, Located, Resolved, SourceError, Verifiers};
use tonic::Status;

use crate::decisions::{Locate, PullStore, StoredPull, Trace};
use crate::{
    CacheSettings, DecisionService, Metrics, Policies, Refusal, RegistryAccess, RuntimeImage,
    RuntimeView, Verified,
};

pub(crate) const APP: &str = "registry.example/team/app";

/// The registry's content and what was asked of it.
#[derive(Default)]
pub(crate) struct RegistryState {
    /// Reference (`repo:tag` or `repo@digest`) -> manifest digest.
    pub(crate) manifests: HashMap<String, Digest>,
    pub(crate) signatures: HashMap<Digest, Vec<Signature>>,
    /// When set, only these credentials are let in.
    pub(crate) required: Option<Credentials>,
    /// The next this many operations fail as a 503 would.
    pub(crate) failures: usize,
    /// Every resolution, with the credentials used.
    pub(crate) resolves: Vec<(String, Option<Credentials>)>,
    pub(crate) signature_reads: usize,
    pub(crate) clients: Vec<Option<Credentials>>,
    /// The configuration's generation: a reload of registries.d bumps it.
    pub(crate) generation: u64,
}

#[derive(Clone, Default)]
pub(crate) struct FakeRegistries(Arc<Mutex<RegistryState>>);

impl FakeRegistries {
    pub(crate) fn state(&self) -> std::sync::MutexGuard<'_, RegistryState> {
        self.0.lock().unwrap()
    }

    pub(crate) fn publish(&self, reference: &str, digest: &Digest) {
        self.state()
            .manifests
            .insert(reference.to_owned(), digest.clone());
    }

    pub(crate) fn sign(&self, key: &SigningKey, repository: &str, digest: &Digest) {
        let signature = Signature::Sigstore(key.sign_image(repository, digest.as_str()).unwrap());
        self.state()
            .signatures
            .entry(digest.clone())
            .or_default()
            .push(signature);
    }

    pub(crate) fn resolves(&self) -> usize {
        self.state().resolves.len()
    }

    pub(crate) fn signature_reads(&self) -> usize {
        self.state().signature_reads
    }
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct FakeImage {
    digest: Digest,
}

pub(crate) struct FakeSource {
    pub(crate) registry: FakeRegistries,
    credentials: Option<Credentials>,
}

impl FakeSource {
    fn admit(&self, state: &mut RegistryState) -> Result<(), SourceError> {
        if state.failures > 0 {
            state.failures -= 1;
            return Err(criguard_registry::Error::HttpStatus {
                host: "registry.example".to_owned(),
                repository: "team/app".to_owned(),
                url: "https://registry.example/v2/".to_owned(),
                status: 503,
                detail: String::new(),
            }
            .into());
        }
        if state.required.is_some() && state.required != self.credentials {
            return Err(criguard_registry::Error::AuthenticationRequired {
                host: "registry.example".to_owned(),
                repository: "team/app".to_owned(),
            }
            .into());
        }
        Ok(())
    }
}

impl ImageSource for FakeSource {
    type Image = FakeImage;

    async fn resolve(&self, image: &ImageReference) -> Result<Resolved<FakeImage>, SourceError> {
        let mut state = self.registry.state();
        state
            .resolves
            .push((image.to_string(), self.credentials.clone()));
        self.admit(&mut state)?;
        let ImageReference::Docker(reference) = image else {
            return Err(SourceError::Unsupported("not a registry image".to_owned()));
        };
        let digest = match reference.digest() {
            Some(digest) if state.manifests.values().any(|d| d == digest) => digest.clone(),
            _ => state
                .manifests
                .get(&reference.to_string())
                .cloned()
                .ok_or_else(|| {
                    SourceError::from(criguard_registry::Error::ManifestUnknown {
                        reference: reference.to_string(),
                        detail: String::new(),
                    })
                })?,
        };
        Ok(Resolved {
            located: Located {
                config_digest: Some(config_of(&digest)),
                ..Located::digest(digest.clone())
            },
            image: FakeImage { digest },
        })
    }

    async fn signatures(&self, image: &FakeImage) -> Result<Arc<ImageSignatures>, SourceError> {
        let mut state = self.registry.state();
        state.signature_reads += 1;
        self.admit(&mut state)?;
        Ok(Arc::new(ImageSignatures {
            signatures: state
                .signatures
                .get(&image.digest)
                .cloned()
                .unwrap_or_default(),
            lookaside_url: None,
            lookaside_count: 0,
            sigstore_attachments: true,
        }))
    }
}

impl RegistryAccess for FakeRegistries {
    type Source = FakeSource;

    fn generation(&self) -> u64 {
        self.state().generation
    }

    fn source(&self, credentials: Option<Credentials>) -> Result<FakeSource, SourceError> {
        self.state().clients.push(credentials.clone());
        Ok(FakeSource {
            registry: self.clone(),
            credentials,
        })
    }
}

/// The runtime's images: image ID -> repository digests; `None` when the
/// runtime cannot be reached. Its pod sandboxes: every ID
/// `sandbox-<namespace>` is a sandbox in that namespace.
#[derive(Default)]
pub(crate) struct FakeRuntime {
    pub(crate) images: Option<HashMap<String, Vec<String>>>,
    pub(crate) asked: Mutex<usize>,
}

impl FakeRuntime {
    pub(crate) fn with(id: &str, repo_digests: &[String]) -> FakeRuntime {
        FakeRuntime {
            images: Some(HashMap::from([(id.to_owned(), repo_digests.to_vec())])),
            asked: Mutex::new(0),
        }
    }

    pub(crate) fn asked(&self) -> usize {
        *self.asked.lock().unwrap()
    }
}

impl RuntimeView for FakeRuntime {
    async fn image(&self, id: &str) -> Result<Option<RuntimeImage>, Status> {
        *self.asked.lock().unwrap() += 1;
        match &self.images {
            None => Err(Status::unavailable("the runtime is down")),
            Some(images) => Ok(images.get(id).map(|repo_digests| RuntimeImage {
                id: id.to_owned(),
                repo_digests: repo_digests.clone(),
            })),
        }
    }

    async fn sandbox_namespace(&self, id: &str) -> Result<Option<String>, Status> {
        match &self.images {
            None => Err(Status::unavailable("the runtime is down")),
            Some(_) => Ok(id.strip_prefix("sandbox-").map(str::to_owned)),
        }
    }
}

/// The image ID (config digest) of the fake registry's manifest `digest`.
pub(crate) fn config_of(digest: &Digest) -> Digest {
    sha256(format!("config of {digest}").as_bytes())
}

/// The image ID a runtime reports for `digest(n)`.
pub(crate) fn image_id(n: u8) -> String {
    config_of(&digest(n)).to_string()
}

/// A node: a key, a global policy requiring it, namespace files, the
/// fake registry, and the service over them.
pub(crate) struct Node {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) key: SigningKey,
    pub(crate) registry: FakeRegistries,
    pub(crate) service: DecisionService<FakeRegistries>,
    pub(crate) metrics: Arc<Metrics>,
}

pub(crate) fn digest(n: u8) -> Digest {
    sha256(&[n])
}

pub(crate) fn signed_by(key_path: &std::path::Path) -> serde_json::Value {
    serde_json::json!({"default": [{
        "type": "sigstoreSigned",
        "keyPath": key_path,
        "signedIdentity": {"type": "matchRepository"},
    }]})
}

/// `namespaces`: name -> policy JSON, written as `<dir>/<name>.json`.
pub(crate) fn node(namespaces: &[(&str, serde_json::Value)], ttl: Duration) -> Node {
    let dir = tempfile::tempdir().unwrap();
    let key = SigningKey::generate().unwrap();
    let key_path = dir.path().join("cosign.pub");
    std::fs::write(&key_path, key.public_key().unwrap().to_pem()).unwrap();
    let global = dir.path().join("policy.json");
    std::fs::write(&global, signed_by(&key_path).to_string()).unwrap();
    let policy_dir = dir.path().join("policies");
    std::fs::create_dir(&policy_dir).unwrap();
    for (namespace, policy) in namespaces {
        std::fs::write(
            policy_dir.join(format!("{namespace}.json")),
            policy.to_string(),
        )
        .unwrap();
    }
    let registry = FakeRegistries::default();
    let metrics = Arc::new(Metrics::new());
    let service = new_service(&dir, &registry, &metrics, ttl);
    Node {
        dir,
        key,
        registry,
        service,
        metrics,
    }
}

/// A decision service over the node's files and registry.
pub(crate) fn service(node: &Node) -> DecisionService<FakeRegistries> {
    new_service(
        &node.dir,
        &node.registry,
        &node.metrics,
        Duration::from_secs(600),
    )
}

fn new_service(
    dir: &tempfile::TempDir,
    registry: &FakeRegistries,
    metrics: &Arc<Metrics>,
    ttl: Duration,
) -> DecisionService<FakeRegistries> {
    let policies = Arc::new(
        Policies::load(
            &dir.path().join("policy.json"),
            &dir.path().join("policies"),
        )
        .unwrap(),
    );
    DecisionService::new(
        policies,
        registry.clone(),
        Arc::new(Verifiers::from_disk()),
        CacheSettings {
            ttl,
            size: 100,
            resolve_ttl: ttl,
        },
        Arc::clone(metrics),
    )
    .unwrap()
}

/// A decision service like [`service`] that keeps verified pulls in
/// `<dir>/state`: building another one is a restart.
pub(crate) fn stateful_service(node: &Node) -> DecisionService<FakeRegistries> {
    service(node).with_state_dir(&node.dir.path().join("state"))
}

/// The store's record files, `<dir>/state/verified-pulls/pulls/*`.
pub(crate) fn stored_records(node: &Node) -> Vec<std::path::PathBuf> {
    let pulls = node.dir.path().join("state/verified-pulls/pulls");
    let mut found: Vec<_> = std::fs::read_dir(pulls)
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    found.sort();
    found
}

/// The in-memory stand-in for the on-disk store.
#[derive(Default)]
pub(crate) struct MemoryStore(Mutex<HashMap<(String, String), StoredPull>>);

impl PullStore for MemoryStore {
    fn put(&self, pull: &StoredPull) -> Result<(), crate::decisions::StoreError> {
        self.0.lock().unwrap().insert(
            (pull.image_id.clone(), pull.repository.clone()),
            pull.clone(),
        );
        Ok(())
    }

    fn get(
        &self,
        image_id: &str,
        repository: &str,
    ) -> Result<Option<StoredPull>, crate::decisions::StoreError> {
        Ok(self
            .0
            .lock()
            .unwrap()
            .get(&(image_id.to_owned(), repository.to_owned()))
            .cloned())
    }
}

pub(crate) fn reference(name: &str) -> Reference {
    crate::cri_reference(name).unwrap()
}

impl Node {
    /// The app published as `:v1` at `digest(1)`, signed.
    pub(crate) fn signed_app(&self) {
        self.registry.publish(&format!("{APP}:v1"), &digest(1));
        self.registry.sign(&self.key, APP, &digest(1));
    }

    pub(crate) async fn pull(
        &self,
        namespace: &str,
        name: &str,
        credentials: Option<Credentials>,
    ) -> (Result<Option<Verified<FakeRegistries>>, Refusal>, Trace) {
        let mut trace = Trace::default();
        let result = self
            .service
            .check::<FakeRuntime>(
                namespace,
                &reference(name),
                Locate::Pull { credentials },
                &mut trace,
            )
            .await;
        (result, trace)
    }

    pub(crate) async fn create(
        &self,
        namespace: &str,
        name: &str,
        image_id: &str,
        runtime: &FakeRuntime,
    ) -> Result<Option<Verified<FakeRegistries>>, Refusal> {
        self.service
            .check(
                namespace,
                &reference(name),
                Locate::Create { image_id, runtime },
                &mut Trace::default(),
            )
            .await
    }
}
