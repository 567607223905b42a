//! Access to the key, certificate and keyring files a policy names: the
//! trait callers implement, the once-per-evaluation memo the evaluator puts
//! in front of it, and an in-memory implementation.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Reads the key, certificate and keyring files a policy names. Files are
/// read when a signature is checked, as containers/image does, so a policy
/// naming a missing file still loads and only its images are rejected;
/// within one evaluation each file is read once.
pub trait TrustFiles {
    fn read(&self, path: &Path) -> Result<Vec<u8>, String>;
}

/// Reads each file once per evaluation. containers/image reads a
/// requirement's key files again for every signature; the bytes (or the
/// error) are the same, so the verdict and every message are too.
pub(crate) struct ReadOnce<'f> {
    files: &'f dyn TrustFiles,
    read: RefCell<HashMap<PathBuf, Result<Vec<u8>, String>>>,
}

impl<'f> ReadOnce<'f> {
    pub(crate) fn new(files: &'f dyn TrustFiles) -> Self {
        Self {
            files,
            read: RefCell::new(HashMap::new()),
        }
    }
}

impl TrustFiles for ReadOnce<'_> {
    fn read(&self, path: &Path) -> Result<Vec<u8>, String> {
        if let Some(result) = self.read.borrow().get(path) {
            return result.clone();
        }
        let result = self.files.read(path);
        self.read
            .borrow_mut()
            .insert(path.to_path_buf(), result.clone());
        result
    }
}

/// Trust files held in memory, found by the path the policy names as
/// [`Path`] compares them: nothing is resolved against a directory.
///
/// This crate does no I/O, so it has no file-system implementation; this
/// one is for tests, benches and callers that already hold the bytes. A
/// path it does not hold fails as a missing file does in containers/image
/// (`open PATH: no such file or directory`), so a verdict's message is the
/// one a node without that file would give. Every read is counted, hits
/// and misses alike, which is how a test sees that the evaluator reads a
/// file once per evaluation.
///
/// ```
/// use std::path::Path;
///
/// use criguard_policy::{InMemoryTrustFiles, TrustFiles};
///
/// let files = InMemoryTrustFiles::new().with("/etc/keys/cosign.pub", "PEM");
/// assert_eq!(files.read(Path::new("/etc/keys/cosign.pub")).unwrap(), b"PEM");
/// assert_eq!(
///     files.read(Path::new("/etc/keys/other.pub")).unwrap_err(),
///     "open /etc/keys/other.pub: no such file or directory"
/// );
/// assert_eq!(files.reads(), 2);
/// ```
#[derive(Debug, Default)]
pub struct InMemoryTrustFiles {
    files: HashMap<PathBuf, Vec<u8>>,
    // Atomic rather than a `Cell`, so the files can be shared between
    // threads like a file-system implementation.
    reads: AtomicUsize,
}

impl InMemoryTrustFiles {
    /// No files: every read fails as a missing file.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) the file at `path`, for building in one
    /// expression.
    #[must_use]
    pub fn with(mut self, path: impl Into<PathBuf>, bytes: impl Into<Vec<u8>>) -> Self {
        self.insert(path, bytes);
        self
    }

    /// Adds the file at `path`, returning the bytes it replaces, if any.
    pub fn insert(
        &mut self,
        path: impl Into<PathBuf>,
        bytes: impl Into<Vec<u8>>,
    ) -> Option<Vec<u8>> {
        self.files.insert(path.into(), bytes.into())
    }

    /// How many reads were asked for so far, including those of missing
    /// files.
    pub fn reads(&self) -> usize {
        self.reads.load(Ordering::Relaxed)
    }
}

impl TrustFiles for InMemoryTrustFiles {
    fn read(&self, path: &Path) -> Result<Vec<u8>, String> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        self.files
            .get(path)
            .cloned()
            .ok_or_else(|| format!("open {}: no such file or directory", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_once_asks_each_path_once_and_keeps_errors() {
        let files = InMemoryTrustFiles::new().with("/k", "key");
        let once = ReadOnce::new(&files);
        for _ in 0..3 {
            assert_eq!(once.read(Path::new("/k")).unwrap(), b"key");
            assert_eq!(
                once.read(Path::new("/missing")).unwrap_err(),
                "open /missing: no such file or directory"
            );
        }
        assert_eq!(files.reads(), 2);
    }

    #[test]
    fn paths_are_matched_exactly_and_later_bytes_replace_earlier() {
        let mut files = InMemoryTrustFiles::new().with("keys/a.pub", "old");
        assert_eq!(files.insert("keys/a.pub", "new"), Some(b"old".to_vec()));
        assert_eq!(files.read(Path::new("keys/a.pub")).unwrap(), b"new");
        assert!(files.read(Path::new("./keys/a.pub")).is_err());
        assert!(files.read(Path::new("/keys/a.pub")).is_err());
    }
}
