//! Bounded reads of local files: policies, keys, registries.d and
//! registries.conf, auth files, lookaside signatures, OCI layouts.
//!
//! Every file criguard reads is named by configuration, and a wrong path
//! (a device, a log file, a FIFO that never ends) must not make it read
//! without bound. The limit applies to what is read, not to what `stat`
//! says, so a file that grows while it is read is cut off too. Callers map
//! [`ReadError`] into their own error kinds and messages.

use std::io::Read as _;
use std::path::Path;

/// Why a bounded read failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Opening or reading failed; `NotFound` is the usual case callers
    /// branch on.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The file holds more than the limit.
    #[error("more than the {limit} bytes accepted")]
    TooLarge { limit: u64 },
}

impl ReadError {
    /// Whether the file does not exist (a missing optional file).
    pub fn is_not_found(&self) -> bool {
        matches!(self, ReadError::Io(e) if e.kind() == std::io::ErrorKind::NotFound)
    }
}

impl From<ReadError> for std::io::Error {
    fn from(error: ReadError) -> std::io::Error {
        match error {
            ReadError::Io(e) => e,
            too_large @ ReadError::TooLarge { .. } => {
                std::io::Error::new(std::io::ErrorKind::InvalidData, too_large.to_string())
            }
        }
    }
}

/// Reads `path`, refusing a file larger than `limit` bytes without reading
/// more than `limit + 1` of them.
pub fn read_limited(path: &Path, limit: u64) -> Result<Vec<u8>, ReadError> {
    let file = std::fs::File::open(path)?;
    // `take` hides the size from `read_to_end`, which would then start at
    // 32 bytes and double: six reads for a policy file. `stat`'s size is
    // only a hint for the buffer; the limit still governs what is read.
    let hint = file.metadata().map_or(0, |m| m.len()).min(limit);
    let mut bytes = Vec::with_capacity(usize::try_from(hint).unwrap_or(0).saturating_add(1));
    file.take(limit.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(ReadError::TooLarge { limit });
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn reads_up_to_the_limit_and_refuses_more() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"12345").unwrap();
        assert_eq!(read_limited(&path, 5).unwrap(), b"12345");
        let error = read_limited(&path, 4).unwrap_err();
        assert!(matches!(error, ReadError::TooLarge { limit: 4 }), "{error}");
        assert_eq!(error.to_string(), "more than the 4 bytes accepted");
        let missing = read_limited(&dir.path().join("missing"), 4).unwrap_err();
        assert!(missing.is_not_found());
        assert!(!error.is_not_found());
    }

    /// A character device has no end; the limit still ends the read.
    #[test]
    fn an_endless_file_is_cut_off() {
        let error = read_limited(Path::new("/dev/zero"), 1024).unwrap_err();
        assert!(matches!(error, ReadError::TooLarge { limit: 1024 }));
    }
}
