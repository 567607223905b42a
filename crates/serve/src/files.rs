//! Bounded reads of the files a policy or the daemon is pointed at.

use std::io::Read as _;
use std::path::Path;

use criguard_policy::TrustFiles;

/// Key, certificate and keyring files a policy names are small; a larger
/// file is a mistake (or an attack), not trust material.
pub const MAX_TRUST_FILE_SIZE: usize = 16 << 20;

/// Reads `path`, refusing a file larger than `limit` without reading more
/// than that: a wrong path must not make criguard read a huge file into
/// memory.
pub fn read_limited(path: &Path, limit: usize) -> std::io::Result<Vec<u8>> {
    let file = std::fs::File::open(path)?;
    let mut bytes = Vec::new();
    file.take(limit as u64 + 1).read_to_end(&mut bytes)?;
    if bytes.len() > limit {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("more than the {limit} bytes accepted"),
        ));
    }
    Ok(bytes)
}

/// Reads policy-named files from the file system, bounded in size.
pub struct FsTrustFiles;

impl TrustFiles for FsTrustFiles {
    fn read(&self, path: &Path) -> Result<Vec<u8>, String> {
        read_limited(path, MAX_TRUST_FILE_SIZE)
            .map_err(|e| format!("reading {}: {e}", path.display()))
    }
}
