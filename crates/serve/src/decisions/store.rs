//! What pulls verified, kept on disk so that a create after criguard
//! restarts can be decided again without the registry.
//!
//! A record is evidence, never a verdict: the image ID, the manifest (and
//! index and config) digests, the repository, where the manifest was read
//! from, and the signature blobs, each with its sha256. A create that
//! finds one has the runtime confirm the image ID and repository digest,
//! and the stored signatures are checked again by the real verifiers
//! under the policy in force now.
//!
//! **Why plain files, not an embedded database.** `redb` (pure Rust, ACID,
//! well kept) was the other candidate. A record here is written once per
//! pull, read back only after a restart, and never updated in place, so
//! there are no transactions across records to protect; one file per
//! record, written aside, fsynced and renamed over (then the directory
//! fsynced), is crash-safe with std alone, and damage stays in the one
//! record it hits, which the digests catch on read. A damaged redb file
//! would be all or nothing, and redb 5 asks for a newer compiler and one
//! more dependency to audit for what `rename(2)` already gives.
//!
//! Layout, under `state_dir`:
//!
//! ```text
//! verified-pulls/FORMAT             "criguard verified-pulls 1"
//! verified-pulls/pulls/<hex>        one JSON record; <hex> = sha256(image ID NUL repository)
//! verified-pulls.corrupt-<seconds>  a store that could not be read, moved aside
//! ```
//!
//! Bounds: [`MAX_ENTRIES`] records and [`MAX_BYTES`] bytes; past either,
//! the records least recently written or used are deleted first (their
//! images then need the registry at their next create, as before). A
//! record larger than [`MAX_RECORD_BYTES`] is not kept.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use criguard_policy::Signature;
use criguard_reference::Digest;
use criguard_registry::digest::sha256;
use criguard_verification::Located;
use serde::{Deserialize, Serialize};

use crate::Metrics;

/// At most this many records are kept.
pub(crate) const MAX_ENTRIES: usize = 4096;
/// At most this many bytes of records are kept.
pub(crate) const MAX_BYTES: u64 = 256 << 20;
/// One record: the registry edge reads at most 16 MiB of signatures per
/// image; base64 adds a third.
pub(crate) const MAX_RECORD_BYTES: u64 = 24 << 20;

const FORMAT: &str = "criguard verified-pulls 1\n";

/// What one pull verified, as stored.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StoredPull {
    pub(crate) image_id: String,
    /// The repository asked for (`Reference::name`).
    pub(crate) repository: String,
    /// The manifest, its index, config and source (no platform).
    pub(crate) located: Located,
    pub(crate) signatures: Vec<Signature>,
}

/// Why the store could not be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StoreError {
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> StoreError {
    let path = path.to_owned();
    move |source| StoreError::Io {
        action,
        path,
        source,
    }
}

/// Where verified pulls are kept: on disk for the daemon, in memory in
/// unit tests, nowhere when the state directory cannot be used.
pub(crate) trait PullStore: Send + Sync {
    fn put(&self, pull: &StoredPull) -> Result<(), StoreError>;
    /// The record of `image_id` pulled from `repository`; `None` when
    /// there is none, or it was corrupt and has been dropped.
    fn get(&self, image_id: &str, repository: &str) -> Result<Option<StoredPull>, StoreError>;
}

/// Keeps nothing: persistence turned off because the state directory is
/// unusable (creates then need the registry after a restart, as before).
pub(crate) struct NoStore;

impl PullStore for NoStore {
    fn put(&self, _: &StoredPull) -> Result<(), StoreError> {
        Ok(())
    }

    fn get(&self, _: &str, _: &str) -> Result<Option<StoredPull>, StoreError> {
        Ok(None)
    }
}

/// The store under `state_dir`, or, if it cannot be opened even after
/// being rebuilt, [`NoStore`] with an error logged: losing the store only
/// costs registry round trips, never lets an image through.
pub(crate) fn open(state_dir: &Path, metrics: &Arc<Metrics>) -> Arc<dyn PullStore> {
    match FileStore::open(state_dir, MAX_ENTRIES, MAX_BYTES, Arc::clone(metrics)) {
        Ok(store) => Arc::new(store),
        Err(e) => {
            metrics.state_store("unavailable");
            tracing::error!(
                error = %e,
                "the state directory cannot be used; verified pulls are not kept across restarts"
            );
            Arc::new(NoStore)
        }
    }
}

/// One record per file; see the module documentation.
pub(crate) struct FileStore {
    pulls: PathBuf,
    max_entries: usize,
    max_bytes: u64,
    index: Mutex<Index>,
    metrics: Arc<Metrics>,
}

/// Every record's size and last use, to enforce the bounds without
/// reading the directory at each write.
#[derive(Default)]
struct Index {
    entries: HashMap<String, (u64, SystemTime)>,
    bytes: u64,
}

impl Index {
    fn insert(&mut self, name: String, size: u64, used: SystemTime) {
        if let Some((old, _)) = self.entries.insert(name, (size, used)) {
            self.bytes = self.bytes.saturating_sub(old);
        }
        self.bytes = self.bytes.saturating_add(size);
    }

    fn remove(&mut self, name: &str) {
        if let Some((old, _)) = self.entries.remove(name) {
            self.bytes = self.bytes.saturating_sub(old);
        }
    }
}

impl FileStore {
    /// Opens (or creates) the store; one whose format marker or directory
    /// cannot be read is moved aside, logged, counted and rebuilt empty.
    pub(crate) fn open(
        state_dir: &Path,
        max_entries: usize,
        max_bytes: u64,
        metrics: Arc<Metrics>,
    ) -> Result<FileStore, StoreError> {
        let root = state_dir.join("verified-pulls");
        std::fs::create_dir_all(state_dir).map_err(io("creating", state_dir))?;
        let index = match scan(&root) {
            Ok(index) => index,
            Err(problem) => {
                if std::fs::symlink_metadata(&root).is_ok() {
                    let seconds = SystemTime::now()
                        .duration_since(SystemTime::UNIX_EPOCH)
                        .map_or(0, |d| d.as_secs());
                    let aside = state_dir.join(format!("verified-pulls.corrupt-{seconds}"));
                    tracing::warn!(
                        store = %root.display(),
                        aside = %aside.display(),
                        problem,
                        "the store of verified pulls is unreadable; moved aside, starting empty"
                    );
                    metrics.state_store("rebuilt");
                    std::fs::rename(&root, &aside).map_err(io("moving aside", &root))?;
                }
                create(&root)?;
                Index::default()
            }
        };
        let store = FileStore {
            pulls: root.join("pulls"),
            max_entries,
            max_bytes,
            index: Mutex::new(index),
            metrics,
        };
        store.evict(&mut store.lock(), None);
        Ok(store)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Index> {
        // A panic while holding it left at worst a stale size: go on.
        self.index
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Deletes the least recently used records until within bounds,
    /// sparing `keep` (the record just written).
    fn evict(&self, index: &mut Index, keep: Option<&str>) {
        while index.entries.len() > self.max_entries || index.bytes > self.max_bytes {
            let oldest = index
                .entries
                .iter()
                .filter(|(name, _)| Some(name.as_str()) != keep)
                .min_by_key(|(_, (_, used))| *used)
                .map(|(name, _)| name.clone());
            let Some(oldest) = oldest else { break };
            self.delete(index, &oldest, "evicted");
        }
    }

    fn delete(&self, index: &mut Index, name: &str, why: &'static str) {
        index.remove(name);
        self.metrics.state_store(why);
        if let Err(e) = std::fs::remove_file(self.pulls.join(name))
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(record = name, error = %e, "cannot delete a stored pull");
        }
    }
}

/// Creates an empty store at `root`.
fn create(root: &Path) -> Result<(), StoreError> {
    let pulls = root.join("pulls");
    std::fs::create_dir_all(&pulls).map_err(io("creating", &pulls))?;
    write_atomically(root, "FORMAT", FORMAT.as_bytes())
}

/// The records of the store at `root`; `Err` when it exists but is not a
/// store of this format. Stray files (a write cut short) are deleted.
fn scan(root: &Path) -> Result<Index, String> {
    let format = std::fs::read(root.join("FORMAT")).map_err(|e| format!("FORMAT: {e}"))?;
    if format != FORMAT.as_bytes() {
        return Err("FORMAT: not a store of this version".to_owned());
    }
    let pulls = root.join("pulls");
    let mut index = Index::default();
    let entries = std::fs::read_dir(&pulls).map_err(|e| format!("pulls: {e}"))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("pulls: {e}"))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let metadata = entry.metadata().map_err(|e| format!("{name}: {e}"))?;
        if !is_record_name(&name) || !metadata.is_file() || metadata.len() > MAX_RECORD_BYTES {
            let _ = std::fs::remove_file(entry.path());
            continue;
        }
        let used = metadata.modified().unwrap_or(SystemTime::UNIX_EPOCH);
        index.insert(name, metadata.len(), used);
    }
    Ok(index)
}

fn is_record_name(name: &str) -> bool {
    name.len() == 64 && name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The file name of the record of `image_id` pulled from `repository`.
fn record_name(image_id: &str, repository: &str) -> String {
    let mut key = Vec::with_capacity(image_id.len() + repository.len() + 1);
    key.extend_from_slice(image_id.as_bytes());
    key.push(0);
    key.extend_from_slice(repository.as_bytes());
    sha256(&key).encoded().to_owned()
}

/// Writes `dir/name` so that a crash leaves the old file or the new one:
/// aside, fsynced, renamed over, the directory fsynced.
fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), StoreError> {
    let aside = dir.join(format!(".{name}.tmp"));
    let target = dir.join(name);
    let mut file = std::fs::File::create(&aside).map_err(io("creating", &aside))?;
    file.write_all(bytes).map_err(io("writing", &aside))?;
    file.sync_all().map_err(io("syncing", &aside))?;
    drop(file);
    std::fs::rename(&aside, &target).map_err(io("renaming", &aside))?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io("syncing", dir))
}

impl PullStore for FileStore {
    fn put(&self, pull: &StoredPull) -> Result<(), StoreError> {
        let name = record_name(&pull.image_id, &pull.repository);
        let bytes = encode(pull);
        let size = bytes.len() as u64;
        if size > MAX_RECORD_BYTES {
            tracing::warn!(
                image_id = pull.image_id,
                bytes = size,
                "a verified pull's signatures are too large to keep"
            );
            return Ok(());
        }
        // Held while writing: writes of one name never interleave.
        let mut index = self.lock();
        write_atomically(&self.pulls, &name, &bytes)?;
        index.insert(name.clone(), size, SystemTime::now());
        self.evict(&mut index, Some(&name));
        Ok(())
    }

    fn get(&self, image_id: &str, repository: &str) -> Result<Option<StoredPull>, StoreError> {
        let name = record_name(image_id, repository);
        let path = self.pulls.join(&name);
        let bytes = match criguard_files::read_limited(&path, MAX_RECORD_BYTES) {
            Ok(bytes) => bytes,
            Err(criguard_files::ReadError::TooLarge { .. }) => {
                self.delete(&mut self.lock(), &name, "corrupt");
                return Ok(None);
            }
            Err(e) => {
                let e = std::io::Error::from(e);
                if e.kind() == std::io::ErrorKind::NotFound {
                    self.lock().remove(&name);
                    return Ok(None);
                }
                return Err(StoreError::Io {
                    action: "reading",
                    path,
                    source: e,
                });
            }
        };
        match decode(&bytes, image_id, repository) {
            Ok(pull) => {
                // Used: the last to be evicted.
                let now = SystemTime::now();
                if let Ok(file) = std::fs::File::options().write(true).open(&path) {
                    let _ = file.set_modified(now);
                }
                self.lock().insert(name, bytes.len() as u64, now);
                Ok(Some(pull))
            }
            Err(problem) => {
                tracing::warn!(
                    record = %path.display(),
                    image_id,
                    repository,
                    problem,
                    "a stored verified pull is corrupt; dropped"
                );
                self.delete(&mut self.lock(), &name, "corrupt");
                Ok(None)
            }
        }
    }
}

/// A record as written: digests as strings, blobs in base64 with the
/// sha256 of their bytes.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Record {
    image_id: String,
    repository: String,
    manifest_digest: String,
    index_digest: Option<String>,
    config_digest: Option<String>,
    pulled_from: Option<String>,
    signatures: Vec<Blob>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Blob {
    sha256: String,
    data: String,
}

/// containers/image's stored signature format, read back by
/// [`Signature::from_blob`].
fn to_blob(signature: &Signature) -> Vec<u8> {
    match signature {
        Signature::SimpleSigning(body) => {
            let mut blob = b"\0simple-signing\n".to_vec();
            blob.extend_from_slice(body);
            blob
        }
        Signature::Sigstore(s) => {
            let mut blob = b"\0sigstore-json\n".to_vec();
            let body = serde_json::json!({
                "mimeType": s.mime_type,
                "payload": STANDARD.encode(&s.payload),
                "annotations": s.annotations,
            });
            blob.extend_from_slice(body.to_string().as_bytes());
            blob
        }
    }
}

fn encode(pull: &StoredPull) -> Vec<u8> {
    let record = Record {
        image_id: pull.image_id.clone(),
        repository: pull.repository.clone(),
        manifest_digest: pull.located.manifest_digest.to_string(),
        index_digest: pull.located.index_digest.as_ref().map(ToString::to_string),
        config_digest: pull.located.config_digest.as_ref().map(ToString::to_string),
        pulled_from: pull.located.pulled_from.clone(),
        signatures: pull
            .signatures
            .iter()
            .map(|signature| {
                let blob = to_blob(signature);
                Blob {
                    sha256: sha256(&blob).to_string(),
                    data: STANDARD.encode(&blob),
                }
            })
            .collect(),
    };
    serde_json::to_vec(&record).unwrap_or_default()
}

/// Reads a record back, every blob re-hashed; any problem is corruption.
fn decode(bytes: &[u8], image_id: &str, repository: &str) -> Result<StoredPull, String> {
    let record: Record = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    if record.image_id != image_id || record.repository != repository {
        return Err("the record is another image's".to_owned());
    }
    let digest = |d: &str| Digest::parse(d).map_err(|e| format!("digest {d:?}: {e}"));
    let optional = |d: &Option<String>| d.as_deref().map(digest).transpose();
    let located = Located {
        config_digest: optional(&record.config_digest)?,
        index_digest: optional(&record.index_digest)?,
        pulled_from: record.pulled_from,
        ..Located::digest(digest(&record.manifest_digest)?)
    };
    let signatures = record
        .signatures
        .iter()
        .enumerate()
        .map(|(n, blob)| {
            let data = STANDARD
                .decode(&blob.data)
                .map_err(|e| format!("signature {n}: {e}"))?;
            if sha256(&data).as_str() != blob.sha256 {
                return Err(format!("signature {n} does not match its digest"));
            }
            Signature::from_blob(&data).map_err(|e| format!("signature {n}: {e}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(StoredPull {
        image_id: record.image_id,
        repository: record.repository,
        located,
        signatures,
    })
}

#[cfg(test)]
mod tests;
