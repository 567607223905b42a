//! A CRI client on grpcio, gRPC's C core as Python uses it
//! (`crates/testutil/python/cri_client.py`), to check `criguard serve`
//! with a client that is not grpc-go: over a unix socket the C core sends
//! the socket path, percent-encoded, as `:authority`, which containerd
//! takes and which an HTTP/2 server that reads `:authority` as a URI
//! authority refuses.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use crate::peer::workspace_root;
use crate::process::{DEFAULT_TIMEOUT, assert_success, run_with_timeout};

/// Where the virtualenv lives; unset means `<workspace>/target/python-grpc`.
pub const PYTHON_GRPC_ENV: &str = "CRIGUARD_PYTHON_GRPC";

static PYTHON_GRPC: OnceLock<PathBuf> = OnceLock::new();

/// A virtualenv with grpcio and grpcio-tools, made by
/// `scripts/fetch-python-grpc.sh`.
#[derive(Debug, Clone)]
pub struct PythonGrpc {
    dir: PathBuf,
}

impl PythonGrpc {
    /// Finds the virtualenv, running `scripts/fetch-python-grpc.sh` (which
    /// does nothing when it is in place) on first use in a process, so that
    /// a bare `cargo test` works. Panics when it cannot be had: a test that
    /// needs this client must not pass without it.
    pub fn get() -> PythonGrpc {
        let dir = PYTHON_GRPC.get_or_init(|| {
            let dir = match std::env::var_os(PYTHON_GRPC_ENV) {
                Some(d) if !d.is_empty() => PathBuf::from(d),
                _ => workspace_root().join("target/python-grpc"),
            };
            let mut cmd = Command::new(workspace_root().join("scripts/fetch-python-grpc.sh"));
            cmd.arg(&dir);
            let out = run_with_timeout(&mut cmd, Duration::from_secs(600));
            assert_success(&cmd, &out);
            dir
        });
        PythonGrpc { dir: dir.clone() }
    }

    /// The virtualenv's interpreter.
    pub fn python(&self) -> PathBuf {
        self.dir.join("bin/python")
    }

    /// Makes `calls` (a JSON list, see `cri_client.py`) on the CRI socket
    /// `socket` with a grpcio channel made with default options, and
    /// returns what the client printed: `{"grpcio": VERSION, "results":
    /// [...]}`. Every call is bounded by the client; the process itself is
    /// killed, by its PID, after [`DEFAULT_TIMEOUT`]. Panics when the client
    /// fails rather than reporting a gRPC status.
    pub fn cri_calls(&self, socket: &Path, calls: &serde_json::Value) -> serde_json::Value {
        let script = workspace_root().join("crates/testutil/python/cri_client.py");
        let mut cmd = Command::new(self.python());
        cmd.arg(&script)
            .arg(socket)
            .arg(cri_proto_dir())
            .arg(calls.to_string())
            // Only the virtualenv's packages, no bytecode left in the tree,
            // and no proxy: gRPC's C core reads these variables.
            .env("PYTHONNOUSERSITE", "1")
            .env("PYTHONDONTWRITEBYTECODE", "1");
        for var in ["grpc_proxy", "http_proxy", "https_proxy", "no_proxy"] {
            cmd.env_remove(var).env_remove(var.to_ascii_uppercase());
        }
        let out = run_with_timeout(&mut cmd, DEFAULT_TIMEOUT);
        assert_success(&cmd, &out);
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "the grpcio client printed no JSON ({e}):\n{}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }
}

/// The directory of the upstream CRI `api.proto`, found as the build
/// script of this crate finds it (`CRIGUARD_SHARED`, else `../shared`
/// beside the repository).
pub fn cri_proto_dir() -> PathBuf {
    let shared = match std::env::var_os("CRIGUARD_SHARED") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => workspace_root().join("../shared"),
    };
    shared.join("cri-api")
}
