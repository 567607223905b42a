//! What each cache is keyed by, how long its entries live, and the one
//! load per key that every cache shares.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criguard_policy::Signature;
use criguard_reference::Digest;
use criguard_registry::ImageSignatures;
use criguard_verification::{Resolved, Verification};
use moka::Expiry;

use crate::Metrics;

/// A rejection is reused for at most this long, so that a signature
/// published after it is seen soon (denials are not cached for the full
/// TTL; peers that did so delayed recovery).
pub(crate) const MAX_REJECTION_TTL: Duration = Duration::from_secs(30);
/// Registry clients (connection pools, tokens) for kubelet-supplied
/// credentials are dropped after this long unused.
pub(crate) const CREDENTIALS_IDLE: Duration = Duration::from_secs(3600);
/// How many bytes of signatures the signature cache holds at most. Each
/// image's are bounded by the registry edge; this bounds them all, so that
/// many images with many large signatures cannot grow the daemon without
/// end.
pub(crate) const SIGNATURE_CACHE_BYTES: u64 = 64 << 20;

/// An entry's weight in the signature cache: the bytes of its signatures,
/// and a little for the entry itself.
pub(crate) fn signatures_weight(_: &SignaturesKey, found: &Arc<ImageSignatures>) -> u32 {
    let bytes: usize = found
        .signatures
        .iter()
        .map(|signature| match signature {
            Signature::SimpleSigning(blob) => blob.len(),
            Signature::Sigstore(s) => {
                s.payload.len()
                    + s.mime_type.len()
                    + s.annotations
                        .iter()
                        .map(|(k, v)| k.len() + v.len())
                        .sum::<usize>()
            }
        })
        .sum();
    u32::try_from(bytes.saturating_add(256)).unwrap_or(u32::MAX)
}

/// How long the node's pulls are remembered for the creates that follow.
pub(crate) const PULL_RECORDS_IDLE: Duration = Duration::from_secs(24 * 3600);

/// Which registry client: a digest of the kubelet's credentials, so that
/// they are not kept as a key in the clear (the node's own, auth file,
/// client has the digest of nothing), made with which generation of the
/// registry configuration. Every key below holds a generation, through
/// this or directly, so nothing made with an older registries.d or
/// registries.conf is found after a reload.
#[derive(Debug, Clone, Hash, PartialEq, Eq)]
pub(crate) struct CredentialsKey {
    pub(crate) credentials: Digest,
    pub(crate) generation: u64,
}

/// A tag or digest resolved with one client.
#[derive(Debug, Clone, Hash, PartialEq, Eq)]
pub(crate) struct ResolutionKey {
    pub(crate) credentials: CredentialsKey,
    pub(crate) reference: String,
}

/// The signatures of one manifest, where its source keeps them.
#[derive(Debug, Clone, Hash, PartialEq, Eq)]
pub(crate) struct SignaturesKey {
    /// The repository the manifest was read from (a mirror, maybe).
    pub(crate) source: String,
    pub(crate) manifest: Digest,
    pub(crate) generation: u64,
}

/// What a decision depends on: the namespace, the policy's content (and
/// its trust files'), the reference as asked (scope and identity) and the
/// manifest digest.
#[derive(Debug, Clone, Hash, PartialEq, Eq)]
pub(crate) struct DecisionKey {
    pub(crate) namespace: String,
    pub(crate) policy: Digest,
    pub(crate) reference: String,
    pub(crate) manifest: Digest,
    pub(crate) generation: u64,
}

/// An image ID the runtime reported for a pull of a repository.
#[derive(Debug, Clone, Hash, PartialEq, Eq)]
pub(crate) struct PullRecordKey {
    pub(crate) image_id: String,
    pub(crate) repository: String,
    pub(crate) generation: u64,
}

/// Per-entry lifetimes: rejections and tag resolutions are reused for less
/// long than allowances and digest resolutions.
pub(crate) struct Lifetimes {
    pub(crate) allowed: Duration,
    pub(crate) rejected: Duration,
    pub(crate) by_tag: Duration,
}

impl Lifetimes {
    pub(crate) fn new(ttl: Duration, resolve_ttl: Duration) -> Lifetimes {
        Lifetimes {
            allowed: ttl,
            rejected: ttl.min(MAX_REJECTION_TTL),
            by_tag: resolve_ttl,
        }
    }
}

impl Expiry<DecisionKey, Arc<Verification>> for Lifetimes {
    fn expire_after_create(
        &self,
        _: &DecisionKey,
        decided: &Arc<Verification>,
        _: Instant,
    ) -> Option<Duration> {
        Some(if decided.is_allowed() {
            self.allowed
        } else {
            self.rejected
        })
    }
}

/// Resolutions, and whether each was made by digest.
pub(crate) type Resolutions<I> =
    moka::future::Cache<ResolutionKey, (Arc<Resolved<I>>, ResolvedByDigest)>;

/// A resolution by digest cannot change; one by tag can, when the tag
/// moves.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ResolvedByDigest(pub(crate) bool);

impl<I> Expiry<ResolutionKey, (Arc<Resolved<I>>, ResolvedByDigest)> for Lifetimes {
    fn expire_after_create(
        &self,
        _: &ResolutionKey,
        (_, by_digest): &(Arc<Resolved<I>>, ResolvedByDigest),
        _: Instant,
    ) -> Option<Duration> {
        Some(if by_digest.0 {
            self.allowed
        } else {
            self.by_tag
        })
    }
}

/// `cache[key]`, counted as a hit or a miss of `name`, and whether it was
/// there already. On a miss `load` runs once, however many callers ask for
/// the key meanwhile; they all get its result, and an error is not kept.
pub(crate) async fn cached<K, V, E>(
    metrics: &Metrics,
    name: &'static str,
    cache: &moka::future::Cache<K, V>,
    key: K,
    load: impl Future<Output = Result<V, E>>,
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
