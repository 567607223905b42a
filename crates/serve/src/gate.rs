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
                Locate::Pull {
                    credentials: credentials.clone(),
                },
                &mut audit.trace,
            )
            .await?;
        audit.audit_set = self
            .decisions
            .audit::<Runtime>(namespace, &reference, Locate::Pull { credentials })
            .await;
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
            .await?;
        audit.audit_set = self
            .decisions
            .audit(namespace, &reference, Locate::Create { image_id, runtime })
            .await;
        Ok(())
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
            .remember_pull(&response.image_ref, &record.repository, record.verified)
            .await;
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
mod tests;
