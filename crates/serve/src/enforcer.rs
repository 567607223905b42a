//! The decisions behind the proxy: which pulls and which containers may go
//! on.
//!
//! A pull whose policy looks at signatures is resolved to the manifest
//! that would run (the platform's, for a multi-arch image), that digest's
//! signatures are checked, and the runtime is told to pull exactly that
//! digest, so a tag that moves in between changes nothing. A create is
//! checked against the pod's namespace policy with what the pull learnt
//! (manifest digest, signatures), so an image pulled for a permissive
//! namespace does not start in a strict one. A policy that looks at no
//! signatures is decided without contacting any registry.
//!
//! Fail closed: anything that stops a decision (a registry that does not
//! answer, a policy file that never parsed, a request that names no image)
//! refuses the call, with a reason that says which.

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use criguard_cri::v1::{
    AuthConfig, CreateContainerRequest, ImageSpec, PullImageRequest, PullImageResponse,
};
use criguard_cri::{ForwardOutcome, Gate, PullPlan, Runtime};
use criguard_policy::{Decision, Evaluator, Image, ImageReference, Signature};
use criguard_reference::{Digest, Reference};
use criguard_registries::RegistriesD;
use criguard_registry::digest::sha256;
use criguard_registry::{
    Credentials, ImageSignatures, Platform, Registry, RegistryConfig, ResolvedImage,
};
use moka::Expiry;
use tonic::Status;

use crate::{FsTrustFiles, LoadedPolicy, Metrics, Policies};

/// A rejection is reused for at most this long, so that a signature
/// published after it is seen soon (denials are not cached for the full
/// TTL; peers that did so delayed recovery).
const MAX_REJECTION_TTL: Duration = Duration::from_secs(30);
/// Registry clients (connection pools, tokens) for kubelet-supplied
/// credentials are dropped after this long unused.
const CREDENTIALS_IDLE: Duration = Duration::from_secs(3600);
/// How many image IDs the node's pulls are remembered for.
const PULL_RECORDS_IDLE: Duration = Duration::from_secs(24 * 3600);

/// What a decision depends on: the namespace, the policy's content, the
/// reference as asked (scope and identity) and the manifest digest.
#[derive(Debug, Clone, Hash, PartialEq, Eq)]
struct DecisionKey {
    namespace: String,
    policy: Digest,
    reference: String,
    manifest: Digest,
}

/// A decision and what it was made from.
#[derive(Debug)]
struct Decided {
    decision: Decision,
    /// How many signatures were looked at, for the audit line.
    signatures: usize,
    notes: Vec<String>,
    /// Time spent reading the signatures and checking them, so that the
    /// audit line tells a slow registry from slow cryptography.
    fetch: Duration,
    check: Duration,
}

/// An image a pull verified, remembered under the image ID the runtime
/// returned, for the creates that name it.
#[derive(Clone)]
pub struct PullRecord {
    repository: String,
    image: Arc<ResolvedImage>,
    registry: Arc<Registry>,
}

/// Why a call is refused.
enum Refusal {
    /// The policy rejected the image.
    Policy {
        decided: Arc<Decided>,
        policy: Arc<LoadedPolicy>,
        digest: Option<Digest>,
    },
    /// A namespace policy that never parsed, or an image that cannot be
    /// tied to a repository.
    Unverifiable(String),
    /// The request itself is wrong.
    Request(String),
    /// A registry could not tell us what we need.
    Registry(String),
    /// The runtime could not be asked.
    Runtime(Status),
}

impl Refusal {
    /// The `reason` label: a fixed set.
    fn reason_class(&self) -> &'static str {
        match self {
            Refusal::Policy { decided, .. } => match decided.decision.rejection() {
                Some(r) if !r.requirement_type.is_empty() => r.requirement_type,
                _ => "empty-requirements",
            },
            Refusal::Unverifiable(_) => "unverifiable",
            Refusal::Request(_) => "bad-request",
            Refusal::Registry(_) => "registry",
            Refusal::Runtime(_) => "runtime",
        }
    }

    fn describe(&self, namespace: &str) -> String {
        match self {
            Refusal::Policy {
                decided,
                policy,
                digest,
            } => {
                let decision = &decided.decision;
                let mut text = match decision.rejection() {
                    Some(r) => format!(
                        "{} (policy {} for namespace {namespace:?}, {}, requirement {} of {}: {}",
                        r.message,
                        policy.path.display(),
                        decision.scope,
                        r.requirement_index,
                        r.requirement_count,
                        r.requirement_type
                    ),
                    None => format!("{decision}"),
                };
                if let Some(digest) = digest {
                    text.push_str(&format!("; manifest {digest}"));
                }
                for note in &decided.notes {
                    text.push_str("; ");
                    text.push_str(note);
                }
                text.push(')');
                text
            }
            Refusal::Unverifiable(why) | Refusal::Request(why) | Refusal::Registry(why) => {
                why.clone()
            }
            Refusal::Runtime(status) => status.message().to_owned(),
        }
    }

    /// The status for the kubelet. Policy rejections start with
    /// `SignatureValidationFailed`, code Unknown: that is what the kubelet
    /// turns into the pod status of that name. Registry trouble is not a
    /// signature verdict, and is reported as the pull error it is.
    fn status(&self, subject: &str, namespace: &str) -> Status {
        let reason = self.describe(namespace);
        match self {
            Refusal::Policy { .. } | Refusal::Unverifiable(_) => {
                Status::unknown(format!("SignatureValidationFailed: {subject}{reason}"))
            }
            Refusal::Request(_) => Status::invalid_argument(format!("criguard: {subject}{reason}")),
            Refusal::Registry(_) => Status::unknown(format!(
                "criguard: cannot verify the signatures: {subject}{reason}"
            )),
            Refusal::Runtime(status) => {
                Status::new(status.code(), format!("criguard: {subject}{reason}"))
            }
        }
    }
}

/// Per-entry lifetimes: rejections and tag resolutions are reused for less
/// long than allowances and digest resolutions.
struct Lifetimes {
    allowed: Duration,
    rejected: Duration,
    by_tag: Duration,
}

impl Expiry<DecisionKey, Arc<Decided>> for Lifetimes {
    fn expire_after_create(
        &self,
        _: &DecisionKey,
        decided: &Arc<Decided>,
        _: std::time::Instant,
    ) -> Option<Duration> {
        Some(if decided.decision.is_allowed() {
            self.allowed
        } else {
            self.rejected
        })
    }
}

impl Expiry<(Digest, String), Arc<ResolvedImage>> for Lifetimes {
    fn expire_after_create(
        &self,
        _: &(Digest, String),
        image: &Arc<ResolvedImage>,
        _: std::time::Instant,
    ) -> Option<Duration> {
        Some(if image.reference.digest().is_some() {
            self.allowed
        } else {
            self.by_tag
        })
    }
}

/// How the daemon's caches are sized.
#[derive(Debug, Clone, Copy)]
pub struct CacheSettings {
    pub ttl: Duration,
    pub size: u64,
    pub resolve_ttl: Duration,
}

/// The daemon's [`Gate`].
pub struct Enforcer {
    policies: Arc<Policies>,
    registries_d: RegistriesD,
    base: RegistryConfig,
    default_registry: Arc<Registry>,
    default_key: Digest,
    registries: moka::future::Cache<Digest, Arc<Registry>>,
    resolutions: moka::future::Cache<(Digest, String), Arc<ResolvedImage>>,
    signatures: moka::future::Cache<(String, Digest), Arc<ImageSignatures>>,
    decisions: moka::future::Cache<DecisionKey, Arc<Decided>>,
    pulls: moka::sync::Cache<(String, String), PullRecord>,
    platform: Platform,
    sigstore: Arc<criguard_sigstore::Verifier>,
    gpg: Arc<criguard_simple_signing::Verifier>,
    metrics: Arc<Metrics>,
}

impl Enforcer {
    pub fn new(
        policies: Arc<Policies>,
        registries_d: RegistriesD,
        base: RegistryConfig,
        cache: CacheSettings,
        metrics: Arc<Metrics>,
    ) -> Result<Enforcer, criguard_registry::Error> {
        let default_registry = Arc::new(Registry::new(base.clone())?);
        let lifetimes = || Lifetimes {
            allowed: cache.ttl,
            rejected: cache.ttl.min(MAX_REJECTION_TTL),
            by_tag: cache.resolve_ttl,
        };
        Ok(Enforcer {
            policies,
            registries_d,
            base,
            default_registry,
            default_key: sha256(b""),
            registries: moka::future::Cache::builder()
                .max_capacity(1024)
                .time_to_idle(CREDENTIALS_IDLE)
                .build(),
            resolutions: moka::future::Cache::builder()
                .max_capacity(cache.size)
                .expire_after(lifetimes())
                .build(),
            signatures: moka::future::Cache::builder()
                .max_capacity(cache.size)
                .time_to_live(cache.ttl)
                .build(),
            decisions: moka::future::Cache::builder()
                .max_capacity(cache.size)
                .expire_after(lifetimes())
                .build(),
            pulls: moka::sync::Cache::builder()
                .max_capacity(cache.size)
                .time_to_idle(PULL_RECORDS_IDLE)
                .build(),
            platform: Platform::host(),
            sigstore: Arc::new(criguard_sigstore::Verifier::new()),
            gpg: Arc::new(criguard_simple_signing::Verifier::new()),
            metrics,
        })
    }

    /// A client for the kubelet's credentials (`None`: the auth file's).
    async fn registry_for(
        &self,
        auth: Option<&AuthConfig>,
    ) -> Result<(Digest, Arc<Registry>), Refusal> {
        let Some(credentials) = credentials(auth).map_err(Refusal::Request)? else {
            return Ok((self.default_key.clone(), Arc::clone(&self.default_registry)));
        };
        let key = credentials_key(&credentials);
        let config = RegistryConfig {
            credentials: Some(credentials),
            ..self.base.clone()
        };
        let registry = self
            .registries
            .try_get_with(
                key.clone(),
                async move { Registry::new(config).map(Arc::new) },
            )
            .await
            .map_err(|e| Refusal::Registry(e.to_string()))?;
        Ok((key, registry))
    }

    async fn resolve(
        &self,
        key: &Digest,
        registry: &Arc<Registry>,
        reference: &Reference,
    ) -> Result<Arc<ResolvedImage>, Refusal> {
        let load = async {
            self.metrics.registry_fetch("resolve");
            registry
                .resolve(reference, &self.platform)
                .await
                .map(Arc::new)
        };
        let cache_key = (key.clone(), reference.to_string());
        cached(
            &self.metrics,
            "resolution",
            &self.resolutions,
            cache_key,
            load,
        )
        .await
        .map(|(image, _)| image)
        .map_err(|e| Refusal::Registry(e.to_string()))
    }

    async fn signatures_of(
        &self,
        registry: &Registry,
        image: &ResolvedImage,
    ) -> Result<Arc<ImageSignatures>, Arc<criguard_registry::Error>> {
        let key = (
            image.source.name().to_owned(),
            image.manifest_digest.clone(),
        );
        let load = async {
            self.metrics.registry_fetch("signatures");
            registry
                .signatures(&self.registries_d, image)
                .await
                .map(Arc::new)
        };
        cached(&self.metrics, "signatures", &self.signatures, key, load)
            .await
            .map(|(found, _)| found)
    }

    /// The decision for `image` under `policy`, from the cache or made
    /// once however many callers ask at the same time.
    async fn decide(
        &self,
        namespace: &str,
        policy: &Arc<LoadedPolicy>,
        reference: &Reference,
        image: &Arc<ResolvedImage>,
        registry: &Arc<Registry>,
    ) -> Result<(Arc<Decided>, bool), Refusal> {
        let key = DecisionKey {
            namespace: namespace.to_owned(),
            policy: policy.digest.clone(),
            reference: reference.to_string(),
            manifest: image.manifest_digest.clone(),
        };
        let load = async {
            let started = Instant::now();
            let found = self.signatures_of(registry, image).await?;
            let fetched = Instant::now();
            let mut decided = self
                .evaluate_blocking(policy, reference, &image.manifest_digest, &found)
                .await;
            decided.fetch = fetched - started;
            decided.check = fetched.elapsed();
            if !decided.decision.is_allowed() {
                // Fetch again next time: a signature may be published.
                self.signatures
                    .invalidate(&(
                        image.source.name().to_owned(),
                        image.manifest_digest.clone(),
                    ))
                    .await;
            }
            Ok::<_, Arc<criguard_registry::Error>>(Arc::new(decided))
        };
        cached(&self.metrics, "decision", &self.decisions, key, load)
            .await
            .map_err(|e| Refusal::Registry(e.to_string()))
    }

    /// Signature checks are CPU work (a GPG keyring import takes
    /// milliseconds); they run off the threads that forward calls.
    async fn evaluate_blocking(
        &self,
        policy: &Arc<LoadedPolicy>,
        reference: &Reference,
        digest: &Digest,
        found: &Arc<ImageSignatures>,
    ) -> Decided {
        let policy = Arc::clone(policy);
        let reference = ImageReference::Docker(reference.clone());
        let digest = digest.clone();
        let found_for_task = Arc::clone(found);
        let sigstore = Arc::clone(&self.sigstore);
        let gpg = Arc::clone(&self.gpg);
        let evaluated = tokio::task::spawn_blocking(move || {
            evaluate(
                &policy,
                &reference,
                &digest,
                &found_for_task.signatures,
                &sigstore,
                &gpg,
            )
        })
        .await;
        match evaluated {
            Ok(decision) => Decided {
                notes: decision
                    .rejection()
                    .map(|r| found.notes(r.requirement_type))
                    .unwrap_or_default(),
                signatures: found.signatures.len(),
                decision,
                fetch: Duration::ZERO,
                check: Duration::ZERO,
            },
            // The evaluator does not panic on input; if it ever did, the
            // image is not allowed.
            Err(e) => Decided {
                decision: Decision {
                    scope: criguard_policy::MatchedScope::Default,
                    verdict: criguard_policy::Verdict::Rejected(criguard_policy::Rejection {
                        requirement_index: 0,
                        requirement_count: 0,
                        requirement_type: "",
                        kind: criguard_policy::RejectionKind::Other,
                        message: format!("the signature check failed: {e}"),
                        signatures: Vec::new(),
                    }),
                },
                signatures: found.signatures.len(),
                notes: Vec::new(),
                fetch: Duration::ZERO,
                check: Duration::ZERO,
            },
        }
    }

    /// Decides a pull; returns the digest to pin it to, if signatures were
    /// checked, and what to remember about it.
    async fn decide_pull(
        &self,
        namespace: &str,
        request: &PullImageRequest,
        audit: &mut Audit,
    ) -> Result<(Option<Arc<ResolvedImage>>, Option<PullRecord>), Refusal> {
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
        let verified = self
            .check_image(namespace, &reference, audit, async {
                let (key, registry) = self.registry_for(request.auth.as_ref()).await?;
                let resolving = Instant::now();
                let image = self.resolve(&key, &registry, &reference).await?;
                Ok((image, registry, resolving.elapsed()))
            })
            .await?;
        Ok(match verified {
            None => (None, None),
            Some((image, registry)) => {
                let record = PullRecord {
                    repository: reference.name().to_owned(),
                    image: Arc::clone(&image),
                    registry,
                };
                (Some(image), Some(record))
            }
        })
    }

    /// Checks `reference` against the namespace's policy. When the
    /// requirements look at signatures, `locate` finds the image (and the
    /// time it took to resolve, if it did) and its signatures are checked;
    /// the verified image and the registry client it came from are
    /// returned. Otherwise no registry is contacted and `None` is returned.
    async fn check_image(
        &self,
        namespace: &str,
        reference: &Reference,
        audit: &mut Audit,
        locate: impl std::future::Future<
            Output = Result<(Arc<ResolvedImage>, Arc<Registry>, Duration), Refusal>,
        >,
    ) -> Result<Option<(Arc<ResolvedImage>, Arc<Registry>)>, Refusal> {
        let policy = self
            .policies
            .for_namespace(namespace)
            .map_err(Refusal::Unverifiable)?;
        if let Some(decided) = self.decide_without_signatures(&policy, reference) {
            return if decided.decision.is_allowed() {
                audit.reason = "accepted-without-signatures";
                Ok(None)
            } else {
                Err(Refusal::Policy {
                    decided: Arc::new(decided),
                    policy,
                    digest: None,
                })
            };
        }
        let (image, registry, resolving) = Box::pin(locate).await?;
        audit.resolve = resolving;
        audit.digest = Some(image.manifest_digest.clone());
        let (decided, cached) = self
            .decide(namespace, &policy, reference, &image, &registry)
            .await?;
        audit.cached = cached;
        audit.signatures = decided.signatures;
        if !cached {
            audit.fetch = decided.fetch;
            audit.check = decided.check;
        }
        if !decided.decision.is_allowed() {
            return Err(Refusal::Policy {
                decided,
                policy,
                digest: Some(image.manifest_digest.clone()),
            });
        }
        audit.reason = "signature";
        Ok(Some((image, registry)))
    }

    /// The decision when the requirements look at no signatures
    /// (`insecureAcceptAnything`, `reject`): no registry is needed.
    fn decide_without_signatures(
        &self,
        policy: &LoadedPolicy,
        reference: &Reference,
    ) -> Option<Decided> {
        let image = ImageReference::Docker(reference.clone());
        let (_, requirements) = policy.policy.requirements_for(&image);
        if requirements.verify_signatures() {
            return None;
        }
        // These requirements never read the digest; the evaluator's
        // signature needs one.
        let unread = sha256(b"");
        Some(Decided {
            decision: evaluate(policy, &image, &unread, &[], &self.sigstore, &self.gpg),
            signatures: 0,
            notes: Vec::new(),
            fetch: Duration::ZERO,
            check: Duration::ZERO,
        })
    }

    /// Checks one image of a container (its own, or an image volume's).
    async fn decide_create(
        &self,
        namespace: &str,
        spec: &ImageSpec,
        runtime: &Runtime,
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
        let id = [&spec.image, &spec.image_ref]
            .into_iter()
            .find(|id| !id.is_empty())
            .map_or(name, String::as_str);
        self.check_image(namespace, &reference, audit, async {
            let record = self
                .pulls
                .get(&(id.to_owned(), reference.name().to_owned()));
            self.metrics.cache("pull-record", record.is_some());
            let (image, registry) = match record {
                Some(record) => (record.image, record.registry),
                None => self.locate(runtime, id, &reference).await?,
            };
            Ok((image, registry, Duration::ZERO))
        })
        .await
        .map(drop)
    }

    /// For an image criguard did not see being pulled (pulled before it
    /// started, or by someone else): the runtime says which digest of the
    /// repository it is, and the registry serves that digest's signatures.
    async fn locate(
        &self,
        runtime: &Runtime,
        id: &str,
        reference: &Reference,
    ) -> Result<(Arc<ResolvedImage>, Arc<Registry>), Refusal> {
        let status = runtime.image_status(id).await.map_err(|status| {
            if status.code() == tonic::Code::Unavailable {
                self.metrics.runtime_unavailable();
            }
            Refusal::Runtime(status)
        })?;
        let Some(image) = status else {
            return Err(Refusal::Unverifiable(format!(
                "the runtime has no image {id:?}"
            )));
        };
        let repository = reference.name();
        let digest = image
            .repo_digests
            .iter()
            .filter_map(|d| d.split_once('@'))
            .filter(|(name, _)| {
                Reference::parse_normalized(name).is_ok_and(|r| r.name() == repository)
            })
            .find_map(|(_, digest)| Digest::parse(digest).ok());
        let Some(digest) = digest else {
            return Err(Refusal::Unverifiable(format!(
                "the runtime does not record image {id:?} as coming from {repository} (its \
                 repository digests: {}), so its signatures cannot be found",
                image.repo_digests.join(", ")
            )));
        };
        let registry = Arc::clone(&self.default_registry);
        let resolved = self
            .resolve(&self.default_key, &registry, &reference.with_digest(digest))
            .await?;
        Ok((resolved, registry))
    }

    fn record(&self, operation: &'static str, audit: &Audit, refusal: Option<&Refusal>) {
        let elapsed = audit.started.elapsed();
        let (verdict, reason) = match refusal {
            None => ("allowed", audit.reason),
            Some(r @ (Refusal::Policy { .. } | Refusal::Unverifiable(_))) => {
                ("rejected", r.reason_class())
            }
            Some(r) => ("error", r.reason_class()),
        };
        self.metrics.decision(operation, verdict, reason, elapsed);
        let digest = audit
            .digest
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default();
        let detail = refusal
            .map(|r| r.describe(&audit.namespace))
            .unwrap_or_default();
        tracing::info!(
            target: "criguard::audit",
            operation,
            namespace = %audit.namespace,
            container = %audit.container,
            image = %audit.image,
            digest = %digest,
            verdict,
            reason,
            detail = %detail,
            cached = audit.cached,
            signatures = audit.signatures,
            elapsed_ms = elapsed.as_secs_f64() * 1000.0,
            resolve_ms = audit.resolve.as_secs_f64() * 1000.0,
            signatures_ms = audit.fetch.as_secs_f64() * 1000.0,
            check_ms = audit.check.as_secs_f64() * 1000.0,
            "decision"
        );
    }
}

/// What the audit line of one decision says.
struct Audit {
    started: Instant,
    namespace: String,
    container: String,
    image: String,
    digest: Option<Digest>,
    reason: &'static str,
    cached: bool,
    signatures: usize,
    resolve: Duration,
    fetch: Duration,
    check: Duration,
}

impl Audit {
    fn new(namespace: &str) -> Audit {
        Audit {
            started: Instant::now(),
            namespace: namespace.to_owned(),
            container: String::new(),
            image: String::new(),
            digest: None,
            reason: "",
            cached: false,
            signatures: 0,
            resolve: Duration::ZERO,
            fetch: Duration::ZERO,
            check: Duration::ZERO,
        }
    }
}

impl Gate for Enforcer {
    type Pull = Option<PullRecord>;

    async fn check_pull(
        &self,
        request: PullImageRequest,
        _runtime: &Runtime,
    ) -> Result<PullPlan<Self::Pull>, Status> {
        let namespace = request
            .sandbox_config
            .as_ref()
            .and_then(|c| c.metadata.as_ref())
            .map(|m| m.namespace.clone())
            .unwrap_or_default();
        let mut audit = Audit::new(&namespace);
        match Box::pin(self.decide_pull(&namespace, &request, &mut audit)).await {
            Ok((image, record)) => {
                self.record("pull", &audit, None);
                Ok(PullPlan {
                    pin: image.map(|image| {
                        format!("{}@{}", image.reference.name(), image.manifest_digest)
                    }),
                    pull: record,
                })
            }
            Err(refusal) => {
                self.record("pull", &audit, Some(&refusal));
                let subject = match &refusal {
                    Refusal::Policy { .. } => "Source image rejected: ".to_owned(),
                    _ => format!("pulling {}: ", audit.image),
                };
                Err(refusal.status(&subject, &namespace))
            }
        }
    }

    fn pulled(&self, pull: Self::Pull, response: &PullImageResponse) {
        if let Some(record) = pull
            && !response.image_ref.is_empty()
        {
            self.pulls.insert(
                (response.image_ref.clone(), record.repository.clone()),
                record,
            );
        }
    }

    async fn check_create(
        &self,
        request: CreateContainerRequest,
        runtime: &Runtime,
    ) -> Result<(), Status> {
        let namespace = request
            .sandbox_config
            .as_ref()
            .and_then(|c| c.metadata.as_ref())
            .map(|m| m.namespace.clone())
            .unwrap_or_default();
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
        for (what, spec) in images {
            let mut audit = Audit::new(&namespace);
            audit.container = container.clone();
            let decided =
                Box::pin(self.decide_create(&namespace, &spec, runtime, &mut audit)).await;
            self.record("create", &audit, decided.as_ref().err());
            if let Err(refusal) = decided {
                let subject = format!(
                    "container {container:?} in namespace {namespace:?}, {what} {:?}: ",
                    audit.image
                );
                return Err(refusal.status(&subject, &namespace));
            }
        }
        Ok(())
    }

    fn forwarded(&self, method: &str, elapsed: Duration, outcome: ForwardOutcome) {
        self.metrics
            .passthrough(method, elapsed, outcome == ForwardOutcome::Unavailable);
    }
}

/// `cache[key]`, counted as a hit or a miss of `name`, and whether it was
/// there already. On a miss `load` runs once, however many callers ask for
/// the key meanwhile; they all get its result, and an error is not kept.
async fn cached<K, V, E>(
    metrics: &Metrics,
    name: &'static str,
    cache: &moka::future::Cache<K, V>,
    key: K,
    load: impl std::future::Future<Output = Result<V, E>>,
) -> Result<(V, bool), Arc<E>>
where
    K: std::hash::Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    E: Send + Sync + 'static,
{
    if let Some(value) = cache.get(&key).await {
        metrics.cache(name, true);
        return Ok((value, true));
    }
    metrics.cache(name, false);
    cache
        .try_get_with(key, load)
        .await
        .map(|value| (value, false))
}

fn evaluate(
    policy: &LoadedPolicy,
    reference: &ImageReference,
    digest: &Digest,
    signatures: &[Signature],
    sigstore: &criguard_sigstore::Verifier,
    gpg: &criguard_simple_signing::Verifier,
) -> Decision {
    Evaluator {
        files: &FsTrustFiles,
        simple_signing: Some(gpg),
        sigstore: Some(sigstore),
    }
    .evaluate(
        &policy.policy,
        &Image {
            reference,
            manifest_digest: digest,
            signatures,
        },
    )
}

/// An image name as the kubelet sends it, parsed as the docker transport
/// evaluates it: `docker.io/library/` filled in, `:latest` added to a bare
/// name, and the tag of `name:tag@digest` dropped (the digest decides what
/// runs, as in CRI-O and containerd).
pub fn cri_reference(name: &str) -> Result<Reference, String> {
    let reference = Reference::parse_normalized(name)
        .map_err(|e| format!("{name:?} is not an image reference: {e}"))?;
    let reference = if reference.tag().is_some() && reference.digest().is_some() {
        reference.without_tag()
    } else {
        reference
    };
    reference
        .into_docker_transport()
        .map_err(|e| format!("{name:?} is not an image reference: {e}"))
}

/// `sha256:<64 hex>`, or the bare 64 hex: an image ID, which parses as a
/// (meaningless) name `docker.io/library/sha256:<hex>` otherwise.
fn is_image_id(name: &str) -> bool {
    let hex = name.strip_prefix("sha256:").unwrap_or(name);
    hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The kubelet's credentials, as a registry client takes them. A request
/// without any means "use the auth file".
fn credentials(auth: Option<&AuthConfig>) -> Result<Option<Credentials>, String> {
    let Some(auth) = auth else {
        return Ok(None);
    };
    if !auth.registry_token.is_empty() {
        return Ok(Some(Credentials::Bearer(auth.registry_token.clone())));
    }
    if !auth.username.is_empty() {
        return Ok(Some(Credentials::Basic {
            username: auth.username.clone(),
            password: auth.password.clone(),
        }));
    }
    if !auth.auth.is_empty() {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(auth.auth.trim())
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .ok_or("the credentials' auth field is not base64 of USER:PASSWORD")?;
        let Some((username, password)) = decoded.split_once(':') else {
            return Err("the credentials' auth field is not USER:PASSWORD".to_owned());
        };
        return Ok(Some(Credentials::Basic {
            username: username.to_owned(),
            password: password.to_owned(),
        }));
    }
    if !auth.identity_token.is_empty() {
        return Err(
            "identity-token credentials are not supported for signature fetches".to_owned(),
        );
    }
    Ok(None)
}

/// Tells credentials apart without keeping them as a key in the clear.
fn credentials_key(credentials: &Credentials) -> Digest {
    let text = match credentials {
        Credentials::Anonymous => "anonymous".to_owned(),
        Credentials::Basic { username, password } => format!("basic\0{username}\0{password}"),
        Credentials::Bearer(token) => format!("bearer\0{token}"),
    };
    sha256(text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cri_names() {
        let digest = format!("sha256:{}", "a".repeat(64));
        for (name, expected) in [
            ("busybox", "docker.io/library/busybox:latest".to_owned()),
            ("quay.io/x/y:1", "quay.io/x/y:1".to_owned()),
            (
                &format!("quay.io/x/y:1@{digest}"),
                format!("quay.io/x/y@{digest}"),
            ),
        ] {
            assert_eq!(cri_reference(name).unwrap().to_string(), expected);
        }
        for bad in ["", "UPPER/case", &"a".repeat(64)] {
            assert!(cri_reference(bad).is_err(), "{bad}");
        }
        assert!(is_image_id(&format!("sha256:{}", "0f".repeat(32))));
        assert!(!is_image_id("sha256:abc"));
        assert!(!is_image_id("busybox"));
    }

    /// The daemon once died of a stack overflow in a debug build: a pull's
    /// future nests resolving, fetching and deciding, each with cache
    /// loads, and all of it sat on the worker's stack. The parts are boxed
    /// now; this keeps what a task holds on its stack small.
    #[tokio::test]
    async fn the_futures_a_task_holds_stay_small() {
        let dir = tempfile::tempdir().unwrap();
        let policy = dir.path().join("policy.json");
        std::fs::write(
            &policy,
            r#"{"default":[{"type":"insecureAcceptAnything"}]}"#,
        )
        .unwrap();
        let policies = Arc::new(Policies::load(&policy, dir.path()).unwrap());
        let enforcer = Enforcer::new(
            policies,
            RegistriesD::default(),
            RegistryConfig::default(),
            CacheSettings {
                ttl: Duration::from_secs(1),
                size: 10,
                resolve_ttl: Duration::from_secs(1),
            },
            Arc::new(Metrics::new()),
        )
        .unwrap();
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

    #[test]
    fn kubelet_credentials() {
        let basic = |u: &str, p: &str| Credentials::Basic {
            username: u.to_owned(),
            password: p.to_owned(),
        };
        assert_eq!(credentials(None).unwrap(), None);
        assert_eq!(credentials(Some(&AuthConfig::default())).unwrap(), None);
        let auth = AuthConfig {
            auth: base64::engine::general_purpose::STANDARD.encode("u:p:q"),
            ..AuthConfig::default()
        };
        assert_eq!(credentials(Some(&auth)).unwrap(), Some(basic("u", "p:q")));
        let both = AuthConfig {
            username: "a".to_owned(),
            password: "b".to_owned(),
            auth: "ignored".to_owned(),
            ..AuthConfig::default()
        };
        assert_eq!(credentials(Some(&both)).unwrap(), Some(basic("a", "b")));
        let token = AuthConfig {
            registry_token: "t".to_owned(),
            ..AuthConfig::default()
        };
        assert_eq!(
            credentials(Some(&token)).unwrap(),
            Some(Credentials::Bearer("t".to_owned()))
        );
        for bad in [
            AuthConfig {
                auth: "!!".to_owned(),
                ..AuthConfig::default()
            },
            AuthConfig {
                identity_token: "x".to_owned(),
                ..AuthConfig::default()
            },
        ] {
            assert!(credentials(Some(&bad)).is_err());
        }
        assert_ne!(
            credentials_key(&basic("a", "b")),
            credentials_key(&basic("a", "c"))
        );
    }
}
