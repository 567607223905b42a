//! The key, certificate and keyring files a policy names, read from disk.

use std::path::Path;

use criguard_policy::TrustFiles;

/// Key, certificate and keyring files a policy names are small; a larger
/// file is a mistake (or an attack), not trust material.
pub const MAX_TRUST_FILE_SIZE: u64 = 16 << 20;

/// Reads policy-named files from the file system, bounded in size. The
/// error text is what the evaluator puts in its rejection.
#[derive(Debug, Clone, Copy, Default)]
pub struct FsTrustFiles;

impl TrustFiles for FsTrustFiles {
    fn read(&self, path: &Path) -> Result<Vec<u8>, String> {
        criguard_files::read_limited(path, MAX_TRUST_FILE_SIZE)
            .map_err(|e| format!("reading {}: {e}", path.display()))
    }
}
