//! Parsed trust material, remembered by the bytes it was parsed from.
//!
//! containers/image reads a requirement's key and certificate files for
//! every signature it checks, so criguard does too: a file changed on disk
//! is seen by the next signature, and a missing one rejects only the
//! images that need it. Reading is cheap; parsing PEM, SPKI and
//! certificates on every pull is not. Keying the parsed values by a
//! SHA-256 of their bytes keeps both properties: the same bytes are
//! parsed once (for as long as a policy names them), and different bytes,
//! such as a rotated key, are parsed afresh, with no invalidation to get
//! wrong.
//!
//! The memo is bounded in entries and in bytes held; when an insertion
//! would pass either bound it starts again empty, which costs a re-parse
//! and never a wrong answer.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aws_lc_rs::digest::{SHA256, digest};

use crate::certificate;
use crate::public_key::PublicKey;

/// More distinct keys and bundles than any policy names.
const MAX_ENTRIES: usize = 1024;
/// Trust files are at most 16 MiB each; a few of them is all a node uses.
const MAX_BYTES: usize = 32 << 20;

/// What a memo entry was parsed as; the same bytes parse differently as
/// a key and as a certificate pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    PublicKey,
    LenientPool,
    StrictList,
}

#[derive(Debug, Clone)]
enum Parsed {
    PublicKey(Result<PublicKey, String>),
    Certificates(Result<Arc<Vec<Vec<u8>>>, String>),
}

impl Parsed {
    /// Roughly what the entry keeps alive, for the byte bound.
    fn size(&self) -> usize {
        match self {
            Parsed::PublicKey(Ok(key)) => key.spki_der().len() * 2,
            Parsed::Certificates(Ok(list)) => list.iter().map(Vec::len).sum(),
            Parsed::PublicKey(Err(e)) | Parsed::Certificates(Err(e)) => e.len(),
        }
    }
}

#[derive(Default)]
struct Entries {
    parsed: HashMap<(Kind, [u8; 32]), Parsed>,
    bytes: usize,
}

/// The memo a [`crate::Verifier`] and its clones share.
#[derive(Default, Clone)]
pub(crate) struct TrustCache {
    entries: Arc<Mutex<Entries>>,
}

impl std::fmt::Debug for TrustCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (entries, bytes) = self.usage();
        f.debug_struct("TrustCache")
            .field("entries", &entries)
            .field("bytes", &bytes)
            .finish()
    }
}

impl TrustCache {
    /// `bytes` as one PEM public key (see [`PublicKey::from_pem`]).
    pub(crate) fn public_key(&self, bytes: &[u8]) -> Result<PublicKey, String> {
        match self.get_or_parse(Kind::PublicKey, bytes, || {
            Parsed::PublicKey(PublicKey::from_pem(bytes))
        }) {
            Parsed::PublicKey(result) => result,
            Parsed::Certificates(_) => Err("internal error: a key memo holds certificates".into()),
        }
    }

    /// `bytes` as a CA pool read leniently (see [`certificate::lenient_pool`]).
    pub(crate) fn lenient_pool(&self, bytes: &[u8]) -> Vec<Vec<u8>> {
        self.certificates(Kind::LenientPool, bytes, || {
            Ok(certificate::lenient_pool(bytes))
        })
        .unwrap_or_default()
    }

    /// `bytes` as a strict certificate list (see [`certificate::strict_list`]).
    pub(crate) fn strict_list(&self, bytes: &[u8]) -> Result<Vec<Vec<u8>>, String> {
        self.certificates(Kind::StrictList, bytes, || certificate::strict_list(bytes))
    }

    fn certificates(
        &self,
        kind: Kind,
        bytes: &[u8],
        parse: impl FnOnce() -> Result<Vec<Vec<u8>>, String>,
    ) -> Result<Vec<Vec<u8>>, String> {
        match self.get_or_parse(kind, bytes, || Parsed::Certificates(parse().map(Arc::new))) {
            Parsed::Certificates(result) => result.map(|list| list.as_ref().clone()),
            Parsed::PublicKey(_) => Err("internal error: a certificate memo holds a key".into()),
        }
    }

    /// Entries and bytes held, for tests and debugging.
    pub(crate) fn usage(&self) -> (usize, usize) {
        let entries = self.lock();
        (entries.parsed.len(), entries.bytes)
    }

    fn get_or_parse(&self, kind: Kind, bytes: &[u8], parse: impl FnOnce() -> Parsed) -> Parsed {
        let mut hash = [0u8; 32];
        hash.copy_from_slice(digest(&SHA256, bytes).as_ref());
        let key = (kind, hash);
        if let Some(parsed) = self.lock().parsed.get(&key) {
            return parsed.clone();
        }
        // Parsed without the lock held: two threads may parse the same
        // bytes once each, which is cheaper than serialising all parsing.
        let parsed = parse();
        let size = parsed.size() + bytes.len().min(64);
        let mut entries = self.lock();
        if entries.parsed.len() >= MAX_ENTRIES || entries.bytes + size > MAX_BYTES {
            entries.parsed.clear();
            entries.bytes = 0;
        }
        if size <= MAX_BYTES && entries.parsed.insert(key, parsed.clone()).is_none() {
            entries.bytes += size;
        }
        parsed
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        // A panic while holding the lock cannot leave a half-made entry
        // (insertions are single calls), so a poisoned memo is still sound.
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_pem() -> Vec<u8> {
        criguard_testutil::bundles::TestKey::p256()
            .public_pem()
            .into_bytes()
    }

    #[test]
    fn the_same_bytes_are_parsed_once_and_other_bytes_again() {
        let cache = TrustCache::default();
        let pem = key_pem();
        let first = cache.public_key(&pem).unwrap();
        assert_eq!(cache.usage().0, 1);
        assert_eq!(cache.public_key(&pem).unwrap(), first);
        assert_eq!(cache.usage().0, 1);
        // The same bytes as another kind are a separate entry.
        assert!(cache.lenient_pool(&pem).is_empty());
        assert_eq!(cache.usage().0, 2);
        let other = key_pem();
        assert_ne!(other, pem);
        assert_ne!(cache.public_key(&other).unwrap(), first);
        assert_eq!(cache.usage().0, 3);
    }

    #[test]
    fn errors_are_remembered_with_their_message() {
        let cache = TrustCache::default();
        let error = cache.public_key(b"not a key").unwrap_err();
        assert_eq!(error, "PEM decoding failed");
        assert_eq!(cache.public_key(b"not a key").unwrap_err(), error);
        assert!(cache.strict_list(b"-----BEGIN X-----\n").is_err());
    }

    #[test]
    fn the_memo_stays_within_its_entry_bound() {
        let cache = TrustCache::default();
        for i in 0..(MAX_ENTRIES + 10) {
            let _ = cache.public_key(format!("junk {i}").as_bytes());
        }
        let (entries, bytes) = cache.usage();
        assert!(entries <= MAX_ENTRIES, "{entries}");
        assert!(bytes <= MAX_BYTES, "{bytes}");
        assert!(entries > 0);
    }
}
