//! The two files, besides registries.d ([`crate::sigstore_registries_d`]),
//! that `criguard verify` and `skopeo copy` need to judge an image in the
//! test registry: a registries.conf that lets them speak plain HTTP to it,
//! and a policy that trusts one cosign key there and rejects everything else.
//! Shared so that the demo and the benchmark set up exactly what the
//! interoperability tests do.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::json;

/// Writes a registries.conf at `path` marking `host` ("127.0.0.1:PORT")
/// insecure, since the test registry has no TLS. Returns `path`.
pub fn insecure_registries_conf(path: &Path, host: &str) -> PathBuf {
    fs::write(
        path,
        format!("[[registry]]\nlocation = \"{host}\"\ninsecure = true\n"),
    )
    .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    path.to_path_buf()
}

/// Writes a policy at `path` that requires, for every image in `host`, a
/// sigstore signature by `public_key` (a cosign public key) whose identity
/// names the image's repository (`matchRepository`: cosign signs the
/// repository, not the tag), and rejects every other image. Pretty-printed,
/// because people read it. Returns `path`.
pub fn sigstore_key_policy(path: &Path, host: &str, public_key: &Path) -> PathBuf {
    let policy = json!({
        "default": [{"type": "reject"}],
        "transports": {"docker": {host: [{
            "type": "sigstoreSigned",
            "keyPath": public_key,
            "signedIdentity": {"type": "matchRepository"},
        }]}},
    });
    let text = serde_json::to_vec_pretty(&policy).expect("serialising a policy built in memory");
    fs::write(path, text).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    path.to_path_buf()
}
