//! The decision service: which images may be pulled and started, with the
//! caches that make a node's repeated questions cheap.
//!
//! It knows nothing of CRI messages: it is asked about a namespace and a
//! reference, with either the kubelet's credentials (a pull) or the image
//! ID the runtime holds (a create), and answers with the verified image or
//! a [`Refusal`]. The verdict itself is the pipeline's
//! ([`criguard_verification::verify`]); this service decides what to feed
//! it and what to remember:
//!
//! - a policy that reads no signatures is decided without a registry;
//! - otherwise the reference is resolved with a client for the credentials
//!   (one per set), cached per tag for `resolve_ttl`, per digest for the
//!   TTL;
//! - decisions are cached per namespace, policy content, reference and
//!   manifest digest; allowances for the TTL, rejections for at most 30 s,
//!   and a rejection drops the cached signatures so a newly published one
//!   is seen; concurrent misses of a key share one load; errors are never
//!   cached;
//! - a create finds the manifest in the record of its pull; failing that
//!   (criguard restarted, or the registry configuration changed), in the
//!   on-disk store of verified pulls (`store.rs`), whose signatures are
//!   checked again offline under the current policy once the runtime
//!   confirms the image; failing that, it asks the runtime which digest of
//!   the repository the image ID is and reads its signatures again.

mod keys;
mod locate;
mod offline;
mod registries;
mod sources;
mod store;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::{Duration, Instant};

use criguard_policy::ImageReference;
use criguard_reference::{Digest, Reference};
use criguard_registry::digest::sha256;
use criguard_registry::{Credentials, ImageSignatures};
use criguard_verification::{
    ImageSource, Lookup, Resolved, SourceError, Verification, Verifiers, VerifyError, verify,
};

pub use registries::{Registries, RegistryAccess};
#[cfg(test)]
pub(crate) use store::StoreError;
pub(crate) use store::{PullStore, StoredPull};

use crate::credentials::credentials_key;
use crate::{AuditPolicies, LoadedPolicy, Metrics, Policies, Refusal, RuntimeView};
use keys::{
    CREDENTIALS_IDLE, CredentialsKey, DecisionKey, Lifetimes, PULL_RECORDS_IDLE, PullRecordKey,
    ResolutionKey, Resolutions, ResolvedByDigest, SIGNATURE_CACHE_BYTES, SignaturesKey, cached,
    decision_weight, pull_weight, signatures_weight, unit_budget,
};
use sources::{Known, signatures_key};

/// How the daemon's caches are sized.
#[derive(Debug, Clone, Copy)]
pub struct CacheSettings {
    pub ttl: Duration,
    pub size: u64,
    pub resolve_ttl: Duration,
}

type Image<R> = <<R as RegistryAccess>::Source as ImageSource>::Image;

/// An image whose manifest was resolved, and the client that resolved it
/// (its signatures are read with the same credentials).
pub struct Verified<R: RegistryAccess> {
    pub(crate) resolved: Arc<Resolved<Image<R>>>,
    source: Arc<R::Source>,
    /// The registry configuration's generation it was resolved with.
    generation: u64,
    /// The signatures an allowed pull was decided with, kept on disk by
    /// [`DecisionService::remember_pull`]; `None` for a create.
    signatures: Option<Arc<ImageSignatures>>,
}

impl<R: RegistryAccess> Clone for Verified<R> {
    fn clone(&self) -> Self {
        Verified {
            resolved: Arc::clone(&self.resolved),
            source: Arc::clone(&self.source),
            generation: self.generation,
            signatures: self.signatures.clone(),
        }
    }
}

impl<R: RegistryAccess> std::fmt::Debug for Verified<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verified")
            .field("located", &self.resolved.located)
            .finish_non_exhaustive()
    }
}

impl<R: RegistryAccess> Verified<R> {
    pub(crate) fn manifest_digest(&self) -> &Digest {
        &self.resolved.located.manifest_digest
    }
}

/// How to find the image a check is about.
pub(crate) enum Locate<'a, T> {
    /// A pull: resolve the reference with these credentials (`None`: the
    /// node's auth file).
    Pull { credentials: Option<Credentials> },
    /// A create: the image the runtime holds under `image_id`.
    Create { image_id: &'a str, runtime: &'a T },
}

/// What one check found, for the audit line; filled in as it goes, so a
/// refusal still reports how far it got.
#[derive(Debug, Default)]
pub(crate) struct Trace {
    pub(crate) digest: Option<Digest>,
    /// Why an allowance was given: `signature` or
    /// `accepted-without-signatures`.
    pub(crate) reason: &'static str,
    pub(crate) cached: bool,
    pub(crate) signatures: usize,
    pub(crate) resolve: Duration,
    pub(crate) fetch: Duration,
    pub(crate) check: Duration,
}

/// The daemon's decisions and their caches.
pub struct DecisionService<R: RegistryAccess> {
    policies: Arc<Policies>,
    registries: R,
    /// The registry configuration's generation last seen; when it moves,
    /// every cache is emptied.
    generation: std::sync::atomic::AtomicU64,
    verifiers: Arc<Verifiers>,
    clients: moka::future::Cache<CredentialsKey, Arc<R::Source>>,
    resolutions: Resolutions<Image<R>>,
    signatures: moka::future::Cache<SignaturesKey, Arc<ImageSignatures>>,
    decisions: moka::future::Cache<DecisionKey, Arc<Verification>>,
    pulls: moka::sync::Cache<PullRecordKey, Verified<R>>,
    /// Verified pulls across restarts; nothing by default.
    store: Arc<dyn PullStore>,
    metrics: Arc<Metrics>,
    /// Policies evaluated after an allowance and never enforced
    /// (`audit_policies.rs`); none by default.
    audit_policies: Option<Arc<AuditPolicies>>,
}

impl<R: RegistryAccess> DecisionService<R> {
    pub fn new(
        policies: Arc<Policies>,
        registries: R,
        verifiers: Arc<Verifiers>,
        cache: CacheSettings,
        metrics: Arc<Metrics>,
    ) -> Result<DecisionService<R>, SourceError> {
        // A configuration that cannot make a client fails the start.
        registries.source(None)?;
        let generation = std::sync::atomic::AtomicU64::new(registries.generation());
        Ok(DecisionService {
            policies,
            registries,
            generation,
            verifiers,
            clients: moka::future::Cache::builder()
                .max_capacity(1024)
                .time_to_idle(CREDENTIALS_IDLE)
                .build(),
            resolutions: moka::future::Cache::builder()
                .max_capacity(cache.size)
                .expire_after(Lifetimes::new(cache.ttl, cache.resolve_ttl))
                .build(),
            signatures: moka::future::Cache::builder()
                .max_capacity(SIGNATURE_CACHE_BYTES)
                .weigher(signatures_weight)
                .time_to_live(cache.ttl)
                .build(),
            decisions: moka::future::Cache::builder()
                .max_capacity(unit_budget(cache.size))
                .weigher(decision_weight)
                .expire_after(Lifetimes::new(cache.ttl, cache.resolve_ttl))
                .build(),
            pulls: moka::sync::Cache::builder()
                .max_capacity(unit_budget(cache.size))
                .weigher(|key, verified: &Verified<R>| {
                    pull_weight(key, verified.signatures.as_ref())
                })
                .time_to_idle(PULL_RECORDS_IDLE)
                .build(),
            store: Arc::new(store::NoStore),
            metrics,
            audit_policies: None,
        })
    }

    /// Keeps verified pulls in `state_dir` (see `store.rs`), so that
    /// creates after a restart can be decided without the registry. A
    /// store that cannot be used is logged and left out.
    pub fn with_state_dir(self, state_dir: &std::path::Path) -> DecisionService<R> {
        let store = store::open(state_dir, &self.metrics);
        self.with_store(store)
    }

    pub(crate) fn with_store(mut self, store: Arc<dyn PullStore>) -> DecisionService<R> {
        self.store = store;
        self
    }

    /// Judges what the enforced policies allow again by `audit` (see
    /// [`DecisionService::audit`]).
    pub fn with_audit_policies(mut self, audit: Arc<AuditPolicies>) -> DecisionService<R> {
        self.audit_policies = Some(audit);
        self
    }

    /// Why the audit policies would refuse an image the enforced ones
    /// allowed, decided as [`DecisionService::check`] decides (same caches,
    /// keyed by the audit policy's digest); `None` when they allow it, or
    /// when no audit set is configured or loaded.
    pub(crate) async fn audit<T: RuntimeView>(
        &self,
        namespace: &str,
        reference: &Reference,
        locate: Locate<'_, T>,
    ) -> Option<Refusal> {
        let policy = match self.audit_policies.as_ref()?.for_namespace(namespace)? {
            Ok(policy) => policy,
            Err(reason) => return Some(Refusal::Unverifiable(reason)),
        };
        let mut trace = Trace::default();
        self.check_with(policy, namespace, reference, locate, &mut trace)
            .await
            .err()
    }

    /// Checks `reference` against `namespace`'s policy. When the
    /// requirements read signatures, the image is located as `locate` says
    /// and its signatures are checked, and the verified image is returned;
    /// otherwise no registry is contacted and `None` is returned. A create
    /// allowed on the stored evidence of its pull returns `None` too:
    /// there is nothing to pin or remember.
    pub(crate) async fn check<T: RuntimeView>(
        &self,
        namespace: &str,
        reference: &Reference,
        locate: Locate<'_, T>,
        trace: &mut Trace,
    ) -> Result<Option<Verified<R>>, Refusal> {
        let policy = self
            .policies
            .for_namespace(namespace)
            .map_err(Refusal::Unverifiable)?;
        self.check_with(policy, namespace, reference, locate, trace)
            .await
    }

    /// [`DecisionService::check`] under `policy`.
    async fn check_with<T: RuntimeView>(
        &self,
        policy: Arc<LoadedPolicy>,
        namespace: &str,
        reference: &Reference,
        locate: Locate<'_, T>,
        trace: &mut Trace,
    ) -> Result<Option<Verified<R>>, Refusal> {
        let generation = self.current_generation();
        let image = ImageReference::Docker(reference.clone());
        if !policy.policy.requirements_for(&image).1.verify_signatures() {
            // Never asked: these requirements read no signatures.
            let (_, unused) = self.source_for(None, generation).await?;
            let decided = verify(
                unused.as_ref(),
                &policy.policy,
                &image,
                &self.verifiers,
                Lookup::WhenSignaturesAreRead,
            )
            .await;
            if decided.is_allowed() {
                trace.reason = "accepted-without-signatures";
                return Ok(None);
            }
            return Err(refusal(Arc::new(decided), policy));
        }
        let is_pull = matches!(locate, Locate::Pull { .. });
        let mut verified = match locate {
            Locate::Pull { credentials } => {
                let (key, source) = self.source_for(credentials, generation).await?;
                let resolving = Instant::now();
                let resolved = self.resolve(&key, &source, reference).await?;
                trace.resolve = resolving.elapsed();
                Verified {
                    resolved,
                    source,
                    generation,
                    signatures: None,
                }
            }
            Locate::Create { image_id, runtime } => {
                let record = self.pulls.get(&PullRecordKey {
                    image_id: image_id.to_owned(),
                    repository: reference.name().to_owned(),
                    generation,
                });
                self.metrics.cache("pull-record", record.is_some());
                match record {
                    Some(record) => record,
                    None => match self
                        .decide_stored(runtime, image_id, reference, &policy, &image, trace)
                        .await
                    {
                        Some(Ok(())) => return Ok(None),
                        // The stored signatures do not satisfy the policy
                        // now; the registry may have newer ones. If it
                        // cannot be asked, the stored verdict is the more
                        // telling refusal.
                        Some(Err(stored)) => self
                            .locate(runtime, image_id, reference, generation)
                            .await
                            .map_err(|_| stored)?,
                        None => {
                            self.locate(runtime, image_id, reference, generation)
                                .await?
                        }
                    },
                }
            }
        };
        trace.digest = Some(verified.manifest_digest().clone());
        let (decided, cached) = self
            .decide(namespace, &policy, reference, &image, &verified)
            .await?;
        trace.cached = cached;
        trace.signatures = decided.signatures_found;
        if !cached {
            trace.fetch = decided.timings.signatures;
            trace.check = decided.timings.check;
        }
        if !decided.is_allowed() {
            return Err(refusal(decided, policy));
        }
        trace.reason = "signature";
        if is_pull {
            verified.signatures = self.evidence(reference, &verified).await;
        }
        Ok(Some(verified))
    }

    /// Remembers what a pull verified under the image ID the runtime
    /// returned, for the creates that name it. An ID that is not the
    /// verified manifest's image is not remembered (a create then asks the
    /// runtime, and is refused unless the image turns out to be verified).
    pub(crate) async fn remember_pull(
        &self,
        image_id: &str,
        repository: &str,
        mut verified: Verified<R>,
    ) {
        if !verified.resolved.located.is_image(image_id) {
            tracing::warn!(
                image_id,
                repository,
                manifest = %verified.manifest_digest(),
                "the runtime pulled an image that is not the verified manifest's; not remembered"
            );
            return;
        }
        // The in-memory record needs no signatures (its creates read them
        // through the signature cache); only the store keeps them.
        let signatures = verified.signatures.take();
        let located = verified.resolved.located.clone();
        let key = PullRecordKey {
            image_id: image_id.to_owned(),
            repository: repository.to_owned(),
            generation: verified.generation,
        };
        // A pull of an image already remembered (every pull after the
        // first, with IfNotPresent or not) was written to the store then.
        let known = self
            .pulls
            .get(&key)
            .is_some_and(|record| record.manifest_digest() == verified.manifest_digest());
        self.pulls.insert(key, verified);
        let Some(signatures) = signatures.filter(|_| !known) else {
            return;
        };
        let stored = StoredPull {
            image_id: image_id.to_owned(),
            repository: repository.to_owned(),
            located,
            signatures: signatures.signatures.clone(),
        };
        // One small file, written and fsynced once per pull (which took
        // far longer), on a blocking thread: an fsync must not hold up the
        // threads that forward the kubelet's other calls. Awaited, so the
        // record is on disk before the kubelet hears of the pull.
        let store = Arc::clone(&self.store);
        let written = tokio::task::spawn_blocking(move || store.put(&stored)).await;
        let error = match written {
            Ok(Ok(())) => return,
            Ok(Err(e)) => e.to_string(),
            Err(e) => e.to_string(),
        };
        self.metrics.state_store("write-error");
        tracing::warn!(
            error = %error,
            image_id,
            "the verified pull cannot be kept for restarts"
        );
    }

    /// The registry configuration's generation now. When it has moved
    /// since the last check, every cache is emptied: their keys hold the
    /// generation, so nothing older is found anyway; this frees the room.
    fn current_generation(&self) -> u64 {
        let now = self.registries.generation();
        let seen = self
            .generation
            .swap(now, std::sync::atomic::Ordering::AcqRel);
        if seen != now {
            tracing::info!(
                generation = now,
                "registry configuration changed; caches emptied"
            );
            self.clients.invalidate_all();
            self.resolutions.invalidate_all();
            self.signatures.invalidate_all();
            self.decisions.invalidate_all();
            self.pulls.invalidate_all();
        }
        now
    }

    /// The client for `credentials` (`None`: the node's auth file), made
    /// once per set and generation.
    async fn source_for(
        &self,
        credentials: Option<Credentials>,
        generation: u64,
    ) -> Result<(CredentialsKey, Arc<R::Source>), Refusal> {
        let key = CredentialsKey {
            credentials: credentials
                .as_ref()
                .map_or_else(|| sha256(b""), credentials_key),
            generation,
        };
        let source = self
            .clients
            .try_get_with(key.clone(), async {
                self.registries.source(credentials).map(Arc::new)
            })
            .await
            .map_err(|e| Refusal::Source((*e).clone()))?;
        Ok((key, source))
    }

    async fn resolve(
        &self,
        key: &CredentialsKey,
        source: &R::Source,
        reference: &Reference,
    ) -> Result<Arc<Resolved<Image<R>>>, Refusal> {
        let load = async {
            self.metrics.registry_fetch("resolve");
            let resolved = source
                .resolve(&ImageReference::Docker(reference.clone()))
                .await?;
            Ok::<_, SourceError>((
                Arc::new(resolved),
                ResolvedByDigest(reference.digest().is_some()),
            ))
        };
        let key = ResolutionKey {
            credentials: key.clone(),
            reference: reference.to_string(),
        };
        cached(&self.metrics, "resolution", &self.resolutions, key, load)
            .await
            .map(|((resolved, _), _)| resolved)
            .map_err(|e| Refusal::Source((*e).clone()))
    }

    /// The decision for `verified` under `policy`, from the cache or made
    /// once however many callers ask at the same time.
    async fn decide(
        &self,
        namespace: &str,
        policy: &Arc<LoadedPolicy>,
        reference: &Reference,
        image: &ImageReference,
        verified: &Verified<R>,
    ) -> Result<(Arc<Verification>, bool), Refusal> {
        let key = DecisionKey {
            namespace: namespace.to_owned(),
            policy: policy.digest.clone(),
            reference: reference.to_string(),
            manifest: verified.manifest_digest().clone(),
            generation: verified.generation,
        };
        let signatures = signatures_key(reference, verified);
        let load = async {
            let known = Known {
                service: self,
                verified,
                key: signatures.clone(),
            };
            let decided = verify(
                &known,
                &policy.policy,
                image,
                &self.verifiers,
                Lookup::Always,
            )
            .await;
            if let Err(e) = &decided.outcome {
                // Not a verdict: not cached, so the next call tries again.
                return Err(e.clone());
            }
            if !decided.is_allowed() {
                // Fetch again next time: a signature may be published.
                self.signatures.invalidate(&signatures).await;
            }
            Ok(Arc::new(decided))
        };
        cached(&self.metrics, "decision", &self.decisions, key, load)
            .await
            .map_err(|e| match &*e {
                VerifyError::Source(e) => Refusal::Source(e.clone()),
                other => Refusal::Unverifiable(other.to_string()),
            })
    }
}

fn refusal(verification: Arc<Verification>, policy: Arc<LoadedPolicy>) -> Refusal {
    Refusal::Policy {
        verification,
        policy,
    }
}
