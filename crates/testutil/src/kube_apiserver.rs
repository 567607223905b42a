//! A real Kubernetes API server on 127.0.0.1: the CRD half of
//! kube-apiserver (apiextensions-apiserver) in front of etcd, started by
//! the team's `../shared/tools/kube-apiserver.sh` (`up DIR`, `down DIR`).
//!
//! What it lacks matters to the tests that use it: no core API (no
//! Namespace, Secret, Lease or Event objects) and `/api`, `/apis`
//! discovery answer 404, so clients address resources by their known
//! group and version; readiness is `/livez`. Custom resources, their
//! OpenAPI and CEL checks, status subresources, server-side apply and
//! watches are the real thing.
//!
//! The script records the PIDs it started in the directory; `down` stops
//! exactly those, and [`KubeApiServer`] calls it on drop.

use std::fs;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use tempfile::TempDir;

use crate::process::{assert_success, run_with_timeout};

/// `up` builds on first use (minutes, cached) and then waits up to a
/// minute for `/livez`; `scripts/test.sh` builds ahead of the tests.
const UP_TIMEOUT: Duration = Duration::from_secs(900);
const DOWN_TIMEOUT: Duration = Duration::from_secs(60);

/// A running API server and its etcd, in a temp dir of their own.
pub struct KubeApiServer {
    /// Holds the parent of the script's directory; removed on drop after
    /// `down` removed the directory itself.
    _parent: TempDir,
    dir: PathBuf,
    server: String,
    running: bool,
}

impl KubeApiServer {
    /// Starts etcd and the API server on free loopback ports. Panics, with
    /// the script's output and logs, if they do not come up.
    pub fn start() -> KubeApiServer {
        let parent = tempfile::Builder::new()
            .prefix("criguard-kube-")
            .tempdir()
            .expect("creating the API server's temp dir");
        let dir = parent.path().join("apiserver");
        let mut cmd = Command::new("bash");
        cmd.arg(script()).arg("up").arg(&dir);
        let out = run_with_timeout(&mut cmd, UP_TIMEOUT);
        if !out.status.success() {
            let logs = ["etcd.log", "apiserver.log"]
                .iter()
                .map(|name| {
                    let text = fs::read_to_string(dir.join("logs").join(name)).unwrap_or_default();
                    format!("--- {name}\n{}", tail(&text, 4000))
                })
                .collect::<String>();
            assert_success(&cmd, &out);
            panic!("{logs}");
        }
        let env = fs::read_to_string(dir.join("env")).expect("reading the script's env file");
        let server = env
            .lines()
            .find_map(|line| line.strip_prefix("KUBE_API="))
            .expect("KUBE_API in the env file")
            .to_owned();
        KubeApiServer {
            _parent: parent,
            dir,
            server,
            running: true,
        }
    }

    /// The kubeconfig `up` wrote: the server (its certificate is not
    /// checked) and an admin client certificate in `system:masters`.
    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.join("kubeconfig")
    }

    /// `https://127.0.0.1:PORT`.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// The API server's log so far, for failure messages.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("logs").join("apiserver.log")).unwrap_or_default()
    }

    /// Stops etcd and the API server by the PIDs `up` recorded, and
    /// removes their directory (so the kubeconfig is gone too). Clients
    /// then see connection refused, as for an API server that is down.
    pub fn stop(&mut self) {
        if !self.running {
            return;
        }
        self.running = false;
        let mut cmd = Command::new("bash");
        cmd.arg(script()).arg("down").arg(&self.dir);
        let out = run_with_timeout(&mut cmd, DOWN_TIMEOUT);
        if !std::thread::panicking() {
            assert_success(&cmd, &out);
        }
    }
}

impl Drop for KubeApiServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `kube-apiserver.sh` in the team's shared directory (`CRIGUARD_SHARED`,
/// else `../shared` beside the repository).
pub fn script() -> PathBuf {
    let shared = match std::env::var_os("CRIGUARD_SHARED") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => crate::peer::workspace_root().join("../shared"),
    };
    shared.join("tools").join("kube-apiserver.sh")
}

fn tail(text: &str, max: usize) -> &str {
    let mut start = text.len().saturating_sub(max);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}
