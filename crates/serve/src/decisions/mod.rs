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
mod registries;
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
use crate::{LoadedPolicy, Metrics, Policies, Refusal, RuntimeView};
use keys::{
    CREDENTIALS_IDLE, CredentialsKey, DecisionKey, Lifetimes, PULL_RECORDS_IDLE, PullRecordKey,
    ResolutionKey, Resolutions, ResolvedByDigest, SIGNATURE_CACHE_BYTES, SignaturesKey, cached,
    signatures_weight,
};

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
                .max_capacity(cache.size)
                .expire_after(Lifetimes::new(cache.ttl, cache.resolve_ttl))
                .build(),
            pulls: moka::sync::Cache::builder()
                .max_capacity(cache.size)
                .time_to_idle(PULL_RECORDS_IDLE)
                .build(),
            store: Arc::new(store::NoStore),
            metrics,
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
        let generation = self.current_generation();
        let policy = self
            .policies
            .for_namespace(namespace)
            .map_err(Refusal::Unverifiable)?;
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

    /// The signatures an allowed pull was decided with, for the store:
    /// from the signature cache (they were just read), read again if it
    /// dropped them. `None`, logged, if they cannot be had: the pull goes
    /// on, only not remembered across restarts.
    async fn evidence(
        &self,
        reference: &Reference,
        verified: &Verified<R>,
    ) -> Option<Arc<ImageSignatures>> {
        let known = Known {
            service: self,
            verified,
            key: signatures_key(reference, verified),
        };
        known
            .signatures(&verified.resolved.image)
            .await
            .inspect_err(|e| {
                tracing::warn!(error = %e, "the verified signatures cannot be kept for restarts");
            })
            .ok()
    }

    /// Decides a create on the stored evidence of its pull, offline:
    /// `None` when there is no usable record (none, corrupt, or the
    /// runtime no longer holds that image under that repository digest),
    /// so that the caller goes to the registry.
    ///
    /// Records carry no registry-configuration generation, and one read
    /// under an older registries.d is used all the same: registries.d only
    /// says where signatures are looked for, not which ones count. Every
    /// stored signature is verified again, cryptographically, against the
    /// manifest digest the runtime confirms, under the current policy (its
    /// keys, identities, scopes); a signature read from elsewhere than
    /// today's configuration would look proves no less. What the policy
    /// rejects here is retried at the registry.
    async fn decide_stored<T: RuntimeView>(
        &self,
        runtime: &T,
        image_id: &str,
        reference: &Reference,
        policy: &Arc<LoadedPolicy>,
        image: &ImageReference,
        trace: &mut Trace,
    ) -> Option<Result<(), Refusal>> {
        let repository = reference.name().to_owned();
        let store = Arc::clone(&self.store);
        let id = image_id.to_owned();
        // File reads (up to MAX_RECORD_BYTES) off the async threads.
        let stored = tokio::task::spawn_blocking(move || store.get(&id, &repository)).await;
        let stored = match stored {
            Ok(Ok(stored)) => stored,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "the store of verified pulls cannot be read");
                None
            }
            Err(e) => {
                tracing::warn!(error = %e, "reading the store of verified pulls failed");
                None
            }
        };
        self.metrics.cache("stored-pull", stored.is_some());
        let stored = stored?;
        // The runtime (local) confirms the image is still the one whose
        // pull was verified: same ID, and the repository digest recorded
        // for this repository is the stored manifest's (or its index's).
        let held = runtime.image(image_id).await.ok().flatten()?;
        let located = &stored.located;
        let recorded = held
            .repo_digests
            .iter()
            .filter_map(|d| d.split_once('@'))
            .filter(|(name, _)| {
                Reference::parse_normalized(name).is_ok_and(|r| r.name() == reference.name())
            })
            .filter_map(|(_, digest)| Digest::parse(digest).ok())
            .any(|d| d == located.manifest_digest || located.index_digest.as_ref() == Some(&d));
        if !recorded || !located.is_image(&held.id) {
            tracing::info!(
                image_id,
                repository = reference.name(),
                "the runtime's image no longer matches its stored pull; asking the registry"
            );
            return None;
        }
        trace.digest = Some(located.manifest_digest.clone());
        let source = Stored {
            located: located.clone(),
            signatures: Arc::new(ImageSignatures {
                signatures: stored.signatures,
                lookaside_url: None,
                lookaside_count: 0,
                sigstore_attachments: true,
            }),
        };
        let decided = verify(
            &source,
            &policy.policy,
            image,
            &self.verifiers,
            Lookup::Always,
        )
        .await;
        trace.signatures = decided.signatures_found;
        trace.check = decided.timings.check;
        match &decided.outcome {
            Err(VerifyError::Source(e)) => return Some(Err(Refusal::Source(e.clone()))),
            Err(other) => return Some(Err(Refusal::Unverifiable(other.to_string()))),
            Ok(_) => {}
        }
        if !decided.is_allowed() {
            return Some(Err(refusal(Arc::new(decided), Arc::clone(policy))));
        }
        trace.reason = "signature";
        Some(Ok(()))
    }

    /// Remembers what a pull verified under the image ID the runtime
    /// returned, for the creates that name it. An ID that is not the
    /// verified manifest's image is not remembered (a create then asks the
    /// runtime, and is refused unless the image turns out to be verified).
    pub(crate) fn remember_pull(
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
        self.pulls.insert(
            PullRecordKey {
                image_id: image_id.to_owned(),
                repository: repository.to_owned(),
                generation: verified.generation,
            },
            verified,
        );
        let Some(signatures) = signatures else {
            return;
        };
        let stored = StoredPull {
            image_id: image_id.to_owned(),
            repository: repository.to_owned(),
            located,
            signatures: signatures.signatures.clone(),
        };
        // One small file, written and fsynced once per pull (which took
        // far longer): done here, so a create right after finds it.
        if let Err(e) = self.store.put(&stored) {
            self.metrics.state_store("write-error");
            tracing::warn!(
                error = %e,
                image_id,
                "the verified pull cannot be kept for restarts"
            );
        }
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

    /// For an image criguard did not see being pulled (pulled before it
    /// started, or by someone else): the runtime says which digest of the
    /// repository it is, and the registry serves that digest's signatures.
    async fn locate<T: RuntimeView>(
        &self,
        runtime: &T,
        id: &str,
        reference: &Reference,
        generation: u64,
    ) -> Result<Verified<R>, Refusal> {
        let image = runtime.image(id).await.map_err(|status| {
            if status.code() == tonic::Code::Unavailable {
                self.metrics.runtime_unavailable();
            }
            Refusal::Runtime(status)
        })?;
        let Some(image) = image else {
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
        let (key, source) = self.source_for(None, generation).await?;
        let resolved = self
            .resolve(&key, &source, &reference.with_digest(digest.clone()))
            .await?;
        // The repository digest may name an index, and the runtime may
        // have picked another instance of it than criguard would: the
        // manifest verified must be the image that runs.
        if !resolved.located.is_image(&image.id) {
            return Err(Refusal::Unverifiable(format!(
                "the runtime's image {:?} is not the manifest criguard resolved for {} ({}, \
                 config {}): the runtime runs a different instance of the image, so its \
                 signatures cannot be checked",
                image.id,
                reference.with_digest(digest),
                resolved.located.manifest_digest,
                resolved
                    .located
                    .config_digest
                    .as_ref()
                    .map_or_else(|| "unknown".to_owned(), ToString::to_string),
            )));
        }
        Ok(Verified {
            resolved,
            source,
            generation,
            signatures: None,
        })
    }
}

/// Where `verified`'s signatures are cached.
fn signatures_key<R: RegistryAccess>(
    reference: &Reference,
    verified: &Verified<R>,
) -> SignaturesKey {
    SignaturesKey {
        source: verified
            .resolved
            .located
            .pulled_from
            .clone()
            .unwrap_or_else(|| reference.name().to_owned()),
        manifest: verified.manifest_digest().clone(),
        generation: verified.generation,
    }
}

/// A stored pull as the pipeline's source: the manifest the runtime
/// confirmed and the signatures kept, no registry.
struct Stored {
    located: criguard_verification::Located,
    signatures: Arc<ImageSignatures>,
}

impl ImageSource for Stored {
    type Image = ();

    async fn resolve(&self, _: &ImageReference) -> Result<Resolved<()>, SourceError> {
        Ok(Resolved {
            located: self.located.clone(),
            image: (),
        })
    }

    async fn signatures(&self, (): &()) -> Result<Arc<ImageSignatures>, SourceError> {
        Ok(Arc::clone(&self.signatures))
    }
}

fn refusal(verification: Arc<Verification>, policy: Arc<LoadedPolicy>) -> Refusal {
    Refusal::Policy {
        verification,
        policy,
    }
}

/// An image the service already resolved, as the pipeline's source: its
/// signatures come through the signature cache, read with the client that
/// resolved it.
struct Known<'a, R: RegistryAccess> {
    service: &'a DecisionService<R>,
    verified: &'a Verified<R>,
    key: SignaturesKey,
}

impl<R: RegistryAccess> ImageSource for Known<'_, R> {
    type Image = Image<R>;

    async fn resolve(&self, _: &ImageReference) -> Result<Resolved<Image<R>>, SourceError> {
        Ok((*self.verified.resolved).clone())
    }

    async fn signatures(&self, image: &Image<R>) -> Result<Arc<ImageSignatures>, SourceError> {
        let load = async {
            self.service.metrics.registry_fetch("signatures");
            self.verified.source.signatures(image).await
        };
        cached(
            &self.service.metrics,
            "signatures",
            &self.service.signatures,
            self.key.clone(),
            load,
        )
        .await
        .map(|(found, _)| found)
        .map_err(|e| (*e).clone())
    }
}
