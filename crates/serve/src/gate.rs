//! The CRI side of the daemon: what a PullImage or CreateContainer request
//! asks the decision service, and how its answer goes back to the kubelet.
//!
//! Here live the namespace (from the request's sandbox config), the
//! kubelet's credentials, the image names of a container and its image
//! volumes, the refusal's gRPC status, the audit line and the decision
//! metrics. The decisions themselves are [`DecisionService`]'s.

use std::sync::Arc;
use std::time::Duration;

use criguard_cri::v1::{
    CreateContainerRequest, ImageSpec, PodSandboxConfig, PullImageRequest, PullImageResponse,
};
use criguard_cri::{ForwardOutcome, Gate, PullPlan, Runtime, TagTarget};
use tonic::Status;

use crate::audit::Audit;
use crate::credentials::credentials;
use crate::decisions::{DecisionService, Locate, Registries, RegistryAccess, Verified};
use crate::names::{cri_reference, is_image_id, is_short_name};
use crate::pinned_tags::{PinnedTags, TagPinnedPulls};
use crate::{Metrics, Mode, Modes, Refusal, RuntimeView};

/// An image a pull verified, remembered under the image ID the runtime
/// returns, for the creates that name it.
pub struct PullRecord<R: RegistryAccess> {
    repository: String,
    verified: Verified<R>,
    /// The name the kubelet pulled, normalised, when it is a tag: it is
    /// written into the runtime for the verified digest ([`PinnedTags`]).
    tag: Option<String>,
}

/// How many pod sandboxes' namespaces are remembered. A sandbox's
/// namespace never changes, so an entry is only dropped for room, or when
/// unused for a day (the sandbox is most likely gone).
const SANDBOXES_CACHED: u64 = 16_384;
const SANDBOX_IDLE: Duration = Duration::from_secs(24 * 3600);

/// The daemon's [`Gate`]: CRI requests in, decisions out.
pub struct Enforcer<R: RegistryAccess = Registries> {
    decisions: DecisionService<R>,
    modes: Arc<Modes>,
    /// Pod sandbox ID -> its namespace, as the runtime recorded it.
    sandboxes: moka::sync::Cache<String, String>,
    metrics: Arc<Metrics>,
    pinned_tags: PinnedTags,
}

impl<R: RegistryAccess> Enforcer<R> {
    pub fn new(
        decisions: DecisionService<R>,
        modes: Arc<Modes>,
        metrics: Arc<Metrics>,
    ) -> Enforcer<R> {
        Enforcer {
            decisions,
            modes,
            sandboxes: moka::sync::Cache::builder()
                .max_capacity(SANDBOXES_CACHED)
                .time_to_idle(SANDBOX_IDLE)
                .build(),
            metrics,
            pinned_tags: PinnedTags::new(TagPinnedPulls::default()),
        }
    }

    /// `self`, naming pinned pulls in the runtime as `setting` says.
    pub fn with_tag_pinned_pulls(self, setting: TagPinnedPulls) -> Enforcer<R> {
        Enforcer {
            pinned_tags: PinnedTags::new(setting),
            ..self
        }
    }

    /// The namespace a create is judged in: its pod sandbox's, as the
    /// runtime recorded it when the sandbox was run. The request states a
    /// namespace too (`sandbox_config`); a request that states none, or
    /// another one, is refused, since it would otherwise pick its own
    /// policy.
    async fn sandbox_namespace<T: RuntimeView>(
        &self,
        request: &CreateContainerRequest,
        runtime: &T,
    ) -> Result<String, Refusal> {
        let Some(claimed) = request
            .sandbox_config
            .as_ref()
            .and_then(|c| c.metadata.as_ref())
            .map(|m| m.namespace.as_str())
        else {
            return Err(Refusal::Request(
                "CreateContainer carries no sandbox config, so its pod's namespace cannot be \
                 checked"
                    .to_owned(),
            ));
        };
        let id = &request.pod_sandbox_id;
        if id.is_empty() {
            return Err(Refusal::Request(
                "CreateContainer names no pod sandbox".to_owned(),
            ));
        }
        let actual = match self.sandboxes.get(id) {
            Some(namespace) => namespace,
            None => match runtime.sandbox_namespace(id).await {
                Ok(Some(namespace)) => {
                    self.sandboxes.insert(id.clone(), namespace.clone());
                    namespace
                }
                Ok(None) => {
                    return Err(Refusal::Binding(format!(
                        "the runtime has no pod sandbox {id:?}"
                    )));
                }
                Err(status) => {
                    if status.code() == tonic::Code::Unavailable {
                        self.metrics.runtime_unavailable();
                    }
                    return Err(Refusal::Runtime(status));
                }
            },
        };
        if actual != claimed {
            return Err(Refusal::Binding(format!(
                "the request says namespace {claimed:?}, but pod sandbox {id:?} is in \
                 namespace {actual:?}"
            )));
        }
        Ok(actual)
    }

    /// Decides a pull; returns the name the runtime is to pull (the
    /// verified digest when signatures were checked, else the fully
    /// qualified name that was evaluated, if the request's differs) and
    /// what to remember.
    async fn decide_pull(
        &self,
        namespace: &str,
        request: &PullImageRequest,
        audit: &mut Audit,
    ) -> Result<(Option<String>, Option<PullRecord<R>>), Refusal> {
        let name = request
            .image
            .as_ref()
            .map(|spec| spec.image.as_str())
            .unwrap_or_default();
        audit.image = name.to_owned();
        if name.is_empty() {
            return Err(Refusal::Request("the request names no image".to_owned()));
        }
        let reference = cri_reference(name).map_err(Refusal::Request)?;
        let credentials = credentials(request.auth.as_ref()).map_err(Refusal::Request)?;
        let verified = self
            .decisions
            .check::<Runtime>(
                namespace,
                &reference,
                Locate::Pull { credentials },
                &mut audit.trace,
            )
            .await?;
        let Some(verified) = verified else {
            // The runtime pulls exactly the name that was evaluated: a short
            // name could resolve elsewhere in a runtime with its own search
            // list (CRI-O's unqualified-search-registries).
            let qualified = reference.to_string();
            return Ok(((qualified != name).then_some(qualified), None));
        };
        let pin = format!("{}@{}", reference.name(), verified.manifest_digest());
        let record = PullRecord {
            repository: reference.name().to_owned(),
            verified,
            tag: (reference.digest().is_none() && reference.tag().is_some())
                .then(|| reference.to_string()),
        };
        Ok((Some(pin), Some(record)))
    }

    /// Checks one image of a container (its own, or an image volume's).
    async fn decide_create<T: RuntimeView>(
        &self,
        namespace: &str,
        spec: &ImageSpec,
        runtime: &T,
        audit: &mut Audit,
    ) -> Result<(), Refusal> {
        let name = [&spec.user_specified_image, &spec.image, &spec.image_ref]
            .into_iter()
            .find(|name| !name.is_empty())
            .map_or("", String::as_str);
        audit.image = name.to_owned();
        if name.is_empty() {
            return Err(Refusal::Request("no image is named".to_owned()));
        }
        if is_image_id(name) {
            // As CRI-O: without the name there is no scope to look up.
            return Err(Refusal::Unverifiable(
                "the request names the image only by its ID; without \
                 ImageSpec.user_specified_image (sent by kubelets since 1.28) its policy \
                 cannot be found"
                    .to_owned(),
            ));
        }
        let reference = cri_reference(name).map_err(|e| {
            Refusal::Unverifiable(format!(
                "{e}; without the image's name (ImageSpec.user_specified_image) its policy \
                 cannot be found"
            ))
        })?;
        let image_id = [&spec.image, &spec.image_ref]
            .into_iter()
            .find(|id| !id.is_empty())
            .map_or(name, String::as_str);
        if !is_image_id(image_id) && is_short_name(image_id) {
            // The runtime resolves the name it is given; a short one may
            // resolve to another registry than the one evaluated.
            return Err(Refusal::Request(format!(
                "the image to run is named {image_id:?}, a short name the runtime may resolve \
                 to another registry than the one the policy was applied to; name it by its \
                 image ID or in full"
            )));
        }
        self.decisions
            .check(
                namespace,
                &reference,
                Locate::Create { image_id, runtime },
                &mut audit.trace,
            )
            .await
            .map(drop)
    }

    /// Decides every image of a container, its own first, then each image
    /// volume; the first refusal refuses the create.
    pub(crate) async fn check_container<T: RuntimeView>(
        &self,
        request: CreateContainerRequest,
        runtime: &T,
    ) -> Result<(), Status> {
        let namespace = match self.sandbox_namespace(&request, runtime).await {
            Ok(namespace) => namespace,
            Err(refusal) => {
                let claimed = namespace(request.sandbox_config.as_ref());
                let mut audit = Audit::new(&claimed);
                audit.container = container_name(&request);
                audit.record(&self.metrics, "create", Some(&refusal));
                let subject = format!("container {:?}: ", audit.container);
                return Err(refusal.status(&subject, &claimed));
            }
        };
        let Some(config) = request.config else {
            return Err(Status::invalid_argument(
                "criguard: CreateContainer carries no container config",
            ));
        };
        let container = config
            .metadata
            .as_ref()
            .map(|m| m.name.clone())
            .unwrap_or_default();
        let mut images = vec![("image".to_owned(), config.image.unwrap_or_default())];
        // Every image volume is checked; one that names no image the check
        // can read is refused rather than passed over.
        for mount in config.mounts {
            if let Some(spec) = mount.image {
                images.push((format!("image volume at {}", mount.container_path), spec));
            }
        }
        let mode = self.modes.of(&namespace);
        for (what, spec) in images {
            let mut audit = Audit::new(&namespace);
            audit.container = container.clone();
            audit.mode = mode;
            let decided =
                Box::pin(self.decide_create(&namespace, &spec, runtime, &mut audit)).await;
            audit.record(&self.metrics, "create", decided.as_ref().err());
            if let Err(refusal) = decided
                && !(mode == Mode::Audit && refusal.is_auditable())
            {
                let subject = format!(
                    "container {container:?} in namespace {namespace:?}, {what} {:?}: ",
                    audit.image
                );
                return Err(refusal.status(&subject, &namespace));
            }
        }
        Ok(())
    }
}

/// The verified manifest as a descriptor; `None` when the source could not
/// tell its media type or size (then no name is written).
fn tag_target<R: RegistryAccess>(verified: &Verified<R>) -> Option<TagTarget> {
    let located = &verified.resolved.located;
    Some(TagTarget {
        media_type: located.media_type.clone()?,
        digest: located.manifest_digest.to_string(),
        size: located.size.filter(|size| *size > 0)?,
    })
}

/// The container's name, as the request states it.
fn container_name(request: &CreateContainerRequest) -> String {
    request
        .config
        .as_ref()
        .and_then(|c| c.metadata.as_ref())
        .map(|m| m.name.clone())
        .unwrap_or_default()
}

/// The pod's namespace, as the request states it.
fn namespace(sandbox: Option<&PodSandboxConfig>) -> String {
    sandbox
        .and_then(|c| c.metadata.as_ref())
        .map(|m| m.namespace.clone())
        .unwrap_or_default()
}

impl<R: RegistryAccess> Gate for Enforcer<R> {
    type Pull = Option<PullRecord<R>>;

    async fn check_pull(
        &self,
        request: PullImageRequest,
        _runtime: &Runtime,
    ) -> Result<PullPlan<Self::Pull>, Status> {
        let namespace = namespace(request.sandbox_config.as_ref());
        let mut audit = Audit::new(&namespace);
        audit.mode = self.modes.of(&namespace);
        match Box::pin(self.decide_pull(&namespace, &request, &mut audit)).await {
            Ok((pin, record)) => {
                audit.record(&self.metrics, "pull", None);
                Ok(PullPlan { pin, pull: record })
            }
            Err(refusal) if audit.mode == Mode::Audit && refusal.is_auditable() => {
                // Logged and counted as would_reject; the pull goes on as
                // the kubelet sent it.
                audit.record(&self.metrics, "pull", Some(&refusal));
                Ok(PullPlan {
                    pin: None,
                    pull: None,
                })
            }
            Err(refusal) => {
                audit.record(&self.metrics, "pull", Some(&refusal));
                let subject = match &refusal {
                    Refusal::Policy { .. } => "Source image rejected: ".to_owned(),
                    _ => format!("pulling {}: ", audit.image),
                };
                Err(refusal.status(&subject, &namespace))
            }
        }
    }

    async fn pulled(&self, pull: Self::Pull, response: &PullImageResponse, runtime: &Runtime) {
        let Some(record) = pull else { return };
        if response.image_ref.is_empty() {
            return;
        }
        let target = tag_target(&record.verified);
        self.decisions
            .remember_pull(&response.image_ref, &record.repository, record.verified);
        if let (Some(tag), Some(target)) = (record.tag, target) {
            self.pinned_tags
                .write(runtime, &tag, &target, &response.image_ref, &self.metrics)
                .await;
        }
    }

    async fn check_create(
        &self,
        request: CreateContainerRequest,
        runtime: &Runtime,
    ) -> Result<(), Status> {
        self.check_container(request, runtime).await
    }

    fn forwarded(&self, method: &str, elapsed: Duration, outcome: ForwardOutcome) {
        self.metrics
            .passthrough(method, elapsed, outcome == ForwardOutcome::Unavailable);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    // criguard's CRI messages hold only the fields it reads; the defaults
    // keep these requests valid as that set grows.
    #![allow(clippy::needless_update)]

    use std::time::Duration;

    use criguard_cri::v1::{ContainerConfig, ContainerMetadata, Mount, PodSandboxMetadata};

    use super::*;
    use crate::testing::{APP, FakeRegistries, FakeRuntime, Node, digest, image_id, node};

    fn enforcer() -> (Node, Enforcer<FakeRegistries>, tempfile::TempDir) {
        enforcer_with(&[])
    }

    fn enforcer_with(
        namespaces: &[(&str, serde_json::Value)],
    ) -> (Node, Enforcer<FakeRegistries>, tempfile::TempDir) {
        let mut node = node(namespaces, Duration::from_secs(600));
        node.signed_app();
        let dir = tempfile::tempdir().unwrap();
        // The node's service moves into the enforcer; a second one keeps
        // the node's registry and key for the test to use.
        let spare = crate::testing::service(&node);
        let service = std::mem::replace(&mut node.service, spare);
        let modes = Arc::new(Modes::load(
            &node.dir.path().join("policies"),
            Mode::Enforce,
        ));
        (
            node,
            Enforcer::new(service, modes, Arc::new(Metrics::new())),
            dir,
        )
    }

    fn image(name: &str, id: &str) -> ImageSpec {
        ImageSpec {
            image: id.to_owned(),
            user_specified_image: name.to_owned(),
            ..ImageSpec::default()
        }
    }

    fn create(image_spec: ImageSpec, mounts: Vec<Mount>) -> CreateContainerRequest {
        CreateContainerRequest {
            pod_sandbox_id: "sandbox-ns".to_owned(),
            config: Some(ContainerConfig {
                metadata: Some(ContainerMetadata {
                    name: "app".to_owned(),
                    ..ContainerMetadata::default()
                }),
                image: Some(image_spec),
                mounts,
                ..ContainerConfig::default()
            }),
            sandbox_config: Some(PodSandboxConfig {
                metadata: Some(PodSandboxMetadata {
                    namespace: "ns".to_owned(),
                    ..PodSandboxMetadata::default()
                }),
                ..PodSandboxConfig::default()
            }),
            ..CreateContainerRequest::default()
        }
    }

    /// The daemon once died of a stack overflow in a debug build: a pull's
    /// future nests resolving, fetching and deciding, each with cache
    /// loads, and all of it sat on the worker's stack. The parts are boxed
    /// now; this keeps what a task holds on its stack small.
    #[tokio::test]
    async fn the_futures_a_task_holds_stay_small() {
        let (_node, enforcer, dir) = enforcer();
        let runtime = Runtime::new(&dir.path().join("runtime.sock"));
        let pull = enforcer.check_pull(PullImageRequest::default(), &runtime);
        assert!(
            std::mem::size_of_val(&pull) < 16 << 10,
            "{}",
            std::mem::size_of_val(&pull)
        );
        let create = enforcer.check_create(CreateContainerRequest::default(), &runtime);
        assert!(
            std::mem::size_of_val(&create) < 16 << 10,
            "{}",
            std::mem::size_of_val(&create)
        );
    }

    #[tokio::test]
    async fn a_verified_pull_is_pinned_and_its_create_needs_no_runtime_call() {
        let (_node, enforcer, dir) = enforcer();
        let runtime = Runtime::new(&dir.path().join("runtime.sock"));
        let request = PullImageRequest {
            image: Some(ImageSpec {
                image: format!("{APP}:v1"),
                ..ImageSpec::default()
            }),
            sandbox_config: create(ImageSpec::default(), Vec::new()).sandbox_config,
            ..PullImageRequest::default()
        };
        let plan = enforcer.check_pull(request, &runtime).await.unwrap();
        assert_eq!(plan.pin, Some(format!("{APP}@{}", digest(1))));
        // The fake registry tells no media type: no name is written, and
        // the runtime (no socket) is not called.
        enforcer
            .pulled(
                plan.pull,
                &PullImageResponse {
                    image_ref: image_id(1),
                },
                &runtime,
            )
            .await;
        let silent = FakeRuntime::with("sha256:none", &[]);
        let signed = image(&format!("{APP}:v1"), &image_id(1));
        enforcer
            .check_container(create(signed, Vec::new()), &silent)
            .await
            .unwrap();
        assert_eq!(silent.asked(), 0, "no image lookup");
    }

    #[tokio::test]
    async fn creates_that_name_no_checkable_image_are_refused() {
        let (_node, enforcer, _dir) = enforcer();
        let runtime = FakeRuntime::with("sha256:none", &[]);
        let id = format!("sha256:{}", "ab".repeat(32));
        let status = enforcer
            .check_container(create(image("", &id), Vec::new()), &runtime)
            .await
            .unwrap_err();
        assert_eq!(status.code(), tonic::Code::Unknown);
        assert!(
            status.message().starts_with(
                "SignatureValidationFailed: container \"app\" in namespace \"ns\", image"
            ),
            "{}",
            status.message()
        );
        assert!(status.message().contains("only by its ID"));
        let nameless = Mount {
            container_path: "/data".to_owned(),
            image: Some(ImageSpec::default()),
            ..Mount::default()
        };
        let signed = image(&format!("{APP}:v1"), &image_id(1));
        let runtime = FakeRuntime::with(&image_id(1), &[format!("{APP}@{}", digest(1))]);
        let status = enforcer
            .check_container(create(signed, vec![nameless]), &runtime)
            .await
            .unwrap_err();
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert!(
            status.message().contains("image volume at /data"),
            "{}",
            status.message()
        );
    }

    /// The runtime pulls the name that was evaluated, and runs no image
    /// named by a short name it could resolve elsewhere.
    #[tokio::test]
    async fn short_names_are_pulled_in_full_and_not_run_by_name() {
        let accept = serde_json::json!({"default": [{"type": "insecureAcceptAnything"}]});
        let (_node, enforcer, dir) = enforcer_with(&[("ns", accept)]);
        let runtime = Runtime::new(&dir.path().join("runtime.sock"));
        let pull = |name: &str| PullImageRequest {
            image: Some(ImageSpec {
                image: name.to_owned(),
                ..ImageSpec::default()
            }),
            sandbox_config: create(ImageSpec::default(), Vec::new()).sandbox_config,
            ..PullImageRequest::default()
        };
        let plan = enforcer
            .check_pull(pull("busybox"), &runtime)
            .await
            .unwrap();
        assert_eq!(
            plan.pin.as_deref(),
            Some("docker.io/library/busybox:latest")
        );
        let plan = enforcer
            .check_pull(pull("docker.io/library/busybox:latest"), &runtime)
            .await
            .unwrap();
        assert_eq!(plan.pin, None, "already in full: sent as it is");
        let fake = FakeRuntime::with("sha256:none", &[]);
        let status = enforcer
            .check_container(create(image("busybox", "busybox"), Vec::new()), &fake)
            .await
            .unwrap_err();
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert!(
            status.message().contains("a short name"),
            "{}",
            status.message()
        );
        enforcer
            .check_container(
                create(
                    image("busybox", "docker.io/library/busybox:latest"),
                    Vec::new(),
                ),
                &fake,
            )
            .await
            .unwrap();
    }

    /// In audit mode a refusal is counted as would_reject and the call
    /// goes on; what audit mode does not waive is still refused.
    #[tokio::test]
    async fn audit_mode_counts_what_it_would_reject_and_lets_it_through() {
        let (node, enforcer, dir) = enforcer();
        node.registry
            .publish("registry.example/unsigned:v1", &digest(6));
        std::fs::write(node.dir.path().join("policies/ns.mode"), "audit").unwrap();
        let _ = crate::Reloadable::reload(enforcer.modes.as_ref());
        let runtime = Runtime::new(&dir.path().join("runtime.sock"));
        let request = PullImageRequest {
            image: Some(ImageSpec {
                image: "registry.example/unsigned:v1".to_owned(),
                ..ImageSpec::default()
            }),
            sandbox_config: create(ImageSpec::default(), Vec::new()).sandbox_config,
            ..PullImageRequest::default()
        };
        let plan = enforcer.check_pull(request, &runtime).await.unwrap();
        assert_eq!(plan.pin, None, "forwarded as the kubelet sent it");
        let fake = FakeRuntime::with(
            &image_id(6),
            &[format!("registry.example/unsigned@{}", digest(6))],
        );
        let unsigned = image("registry.example/unsigned:v1", &image_id(6));
        enforcer
            .check_container(create(unsigned.clone(), Vec::new()), &fake)
            .await
            .unwrap();
        let metrics = enforcer.metrics.encode();
        for operation in ["pull", "create"] {
            let line = format!(
                r#"criguard_decisions_total{{operation="{operation}",verdict="would_reject",reason="sigstoreSigned"}} 1"#
            );
            assert!(metrics.contains(&line), "{line}\n{metrics}");
        }
        // Not waived: a create that lies about its namespace.
        let mut lying = create(unsigned, Vec::new());
        lying.pod_sandbox_id = "sandbox-other".to_owned();
        assert!(enforcer.check_container(lying, &fake).await.is_err());
    }

    /// A create is judged in its sandbox's namespace; a request that claims
    /// another namespace (a looser policy) or none is refused.
    #[tokio::test]
    async fn a_create_cannot_choose_its_namespace() {
        let (_node, enforcer, _dir) = enforcer();
        let runtime = FakeRuntime::with(&image_id(1), &[format!("{APP}@{}", digest(1))]);
        let signed = image(&format!("{APP}:v1"), &image_id(1));
        let mut lying = create(signed.clone(), Vec::new());
        lying.pod_sandbox_id = "sandbox-strict".to_owned();
        let status = enforcer.check_container(lying, &runtime).await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::PermissionDenied);
        assert_eq!(
            status.message(),
            "criguard: container \"app\": the request says namespace \"ns\", but pod sandbox \
             \"sandbox-strict\" is in namespace \"strict\""
        );
        let mut unknown = create(signed.clone(), Vec::new());
        unknown.pod_sandbox_id = "gone".to_owned();
        let status = enforcer
            .check_container(unknown, &runtime)
            .await
            .unwrap_err();
        assert!(
            status.message().contains("no pod sandbox \"gone\""),
            "{}",
            status.message()
        );
        let mut bare = create(signed.clone(), Vec::new());
        bare.sandbox_config = None;
        let status = enforcer.check_container(bare, &runtime).await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        let status = enforcer
            .check_container(create(signed.clone(), Vec::new()), &FakeRuntime::default())
            .await
            .unwrap_err();
        assert_eq!(status.code(), tonic::Code::Unavailable);
        // The honest request passes.
        enforcer
            .check_container(create(signed.clone(), Vec::new()), &runtime)
            .await
            .unwrap();
        let metrics = enforcer.metrics.encode();
        assert!(
            metrics.contains(
                r#"criguard_decisions_total{operation="create",verdict="rejected",reason="sandbox"} 2"#
            ),
            "{metrics}"
        );
    }

    #[tokio::test]
    async fn an_unsigned_image_volume_beside_a_signed_image_is_refused() {
        let (node, enforcer, _dir) = enforcer();
        node.registry
            .publish("registry.example/data:v1", &digest(7));
        let runtime = FakeRuntime {
            images: Some(
                [
                    (image_id(1), vec![format!("{APP}@{}", digest(1))]),
                    (
                        image_id(7),
                        vec![format!("registry.example/data@{}", digest(7))],
                    ),
                ]
                .into(),
            ),
            ..FakeRuntime::default()
        };
        let volume = Mount {
            container_path: "/data".to_owned(),
            image: Some(image("registry.example/data:v1", &image_id(7))),
            ..Mount::default()
        };
        let signed = image(&format!("{APP}:v1"), &image_id(1));
        enforcer
            .check_container(create(signed.clone(), Vec::new()), &runtime)
            .await
            .unwrap();
        let status = enforcer
            .check_container(create(signed, vec![volume]), &runtime)
            .await
            .unwrap_err();
        assert!(
            status.message().starts_with(
                "SignatureValidationFailed: container \"app\" in namespace \"ns\", image volume \
                 at /data \"registry.example/data:v1\": A signature was required"
            ),
            "{}",
            status.message()
        );
    }
}
