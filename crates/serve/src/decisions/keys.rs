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
    u32::try_from(signatures_weight_bytes(found).saturating_add(256)).unwrap_or(u32::MAX)
}

fn signatures_weight_bytes(found: &ImageSignatures) -> usize {
    found
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
        .sum()
}

/// The bytes each entry of the decision and pull caches is counted as at
/// least. Those caches hold `cache_size` entries of up to this size; an
/// entry that keeps more alive (a decision with many reasons, a pull
/// record holding its signatures) counts as several, so the caches are
/// bounded in bytes (`cache_size` KiB each) as well as in entries.
pub(crate) const ENTRY_UNIT_BYTES: u64 = 1024;

/// The byte budget of a cache holding `entries` entries of the unit size.
pub(crate) fn unit_budget(entries: u64) -> u64 {
    entries.saturating_mul(ENTRY_UNIT_BYTES)
}

fn weight(bytes: usize) -> u32 {
    let bytes = u64::try_from(bytes).unwrap_or(u64::MAX);
    u32::try_from(bytes.max(ENTRY_UNIT_BYTES)).unwrap_or(u32::MAX)
}

/// A decision's weight: its reasons and notes, as they are printed (the
/// outcome's strings are most of what it holds), and its key.
pub(crate) fn decision_weight(key: &DecisionKey, decided: &Arc<Verification>) -> u32 {
    let notes: usize = decided.notes.iter().map(String::len).sum();
    let outcome = format!("{:?}{:?}", decided.outcome, decided.located).len();
    weight(key.namespace.len() + key.reference.len() + notes + outcome + 256)
}

/// A pull record's weight: the signatures it keeps alive for the store,
/// which outlive their eviction from the signature cache.
pub(crate) fn pull_weight(key: &PullRecordKey, signatures: Option<&Arc<ImageSignatures>>) -> u32 {
    let held = signatures
        .map(|found| signatures_weight_bytes(found))
        .unwrap_or(0);
    weight(key.image_id.len() + key.repository.len() + held + 256)
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

#[cfg(test)]
mod tests {
    use criguard_policy::SigstoreSignature;
    use criguard_verification::VerifyError;

    use super::*;

    fn decision_key() -> DecisionKey {
        DecisionKey {
            namespace: "default".to_owned(),
            policy: Digest::sha256_from_bytes(&[1; 32]),
            reference: "registry.example/app:1".to_owned(),
            manifest: Digest::sha256_from_bytes(&[2; 32]),
            generation: 0,
        }
    }

    fn signatures(count: usize, payload_bytes: usize) -> Arc<ImageSignatures> {
        let signature = Signature::Sigstore(SigstoreSignature {
            mime_type: "application/vnd.dev.cosign.simplesigning.v1+json".to_owned(),
            payload: vec![b'x'; payload_bytes],
            annotations: Default::default(),
        });
        Arc::new(ImageSignatures {
            signatures: vec![signature; count],
            lookaside_url: None,
            lookaside_count: 0,
            sigstore_attachments: true,
        })
    }

    #[test]
    fn a_small_entry_counts_as_one_unit_and_a_large_one_as_its_bytes() {
        let small = Arc::new(Verification::failed(VerifyError::Configuration(
            "bad".to_owned(),
        )));
        assert_eq!(
            u64::from(decision_weight(&decision_key(), &small)),
            ENTRY_UNIT_BYTES
        );
        let mut large = Verification::failed(VerifyError::Configuration("bad".to_owned()));
        large.notes = vec!["a note a person can act on".repeat(10); 100];
        let weight = u64::from(decision_weight(&decision_key(), &Arc::new(large)));
        assert!(weight > 26_000, "{weight}");
    }

    #[test]
    fn pull_records_weigh_the_signatures_they_keep_alive() {
        let key = PullRecordKey {
            image_id: "sha256:".to_owned() + &"3".repeat(64),
            repository: "registry.example/app".to_owned(),
            generation: 0,
        };
        assert_eq!(u64::from(pull_weight(&key, None)), ENTRY_UNIT_BYTES);
        let held = signatures(16, 64 << 10);
        assert!(u64::from(pull_weight(&key, Some(&held))) >= 16 * (64 << 10));
    }

    /// The bound the weights exist for: however large the entries, the
    /// cache's weighted size stays within `cache_size` units.
    #[test]
    fn a_cache_of_large_pull_records_stays_within_its_byte_budget() {
        let entries = 100;
        let cache = moka::sync::Cache::builder()
            .max_capacity(unit_budget(entries))
            .weigher(|key: &PullRecordKey, held: &Arc<ImageSignatures>| {
                pull_weight(key, Some(held))
            })
            .build();
        for i in 0..50 {
            let key = PullRecordKey {
                image_id: format!("sha256:{i:064}"),
                repository: "registry.example/app".to_owned(),
                generation: 0,
            };
            cache.insert(key, signatures(4, 16 << 10));
        }
        cache.run_pending_tasks();
        assert!(
            cache.weighted_size() <= unit_budget(entries),
            "{} > {}",
            cache.weighted_size(),
            unit_budget(entries)
        );
        assert!(cache.entry_count() < 50);
    }
}
