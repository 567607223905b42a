//! `criguard serve` run as the node would run it: its own process, a
//! config file, a socket and a metrics port of its own, stopped by PID.

use std::fs::{self, OpenOptions};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::process::terminate;
use crate::registry::free_loopback_port;

/// How long the daemon may take to open its socket.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a SIGTERM'd daemon may take to exit.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);

/// A running `criguard serve`.
pub struct CriguardDaemon {
    /// Where the daemon tells systemd it is ready ($NOTIFY_SOCKET), as
    /// systemd's Type=notify would see it.
    notify: std::os::unix::net::UnixDatagram,
    dir: TempDir,
    binary: PathBuf,
    socket: PathBuf,
    metrics: SocketAddr,
    child: Option<Child>,
}

impl CriguardDaemon {
    /// Starts `binary serve --config <dir>/config.toml` in front of
    /// `runtime`. `config` adds TOML lines (policy, policy_dir,
    /// registries_d, …); the socket, the metrics port and JSON logs are set
    /// here. Panics, with the daemon's log, if it does not come up.
    pub fn start(binary: &Path, runtime: &Path, config: &str) -> CriguardDaemon {
        match Self::try_start(binary, runtime, config) {
            Ok(daemon) => daemon,
            Err(log) => panic!("criguard serve did not start:\n{log}"),
        }
    }

    /// Like [`CriguardDaemon::start`], but a daemon that exits instead of
    /// serving is an `Err` with its log (for configurations it must refuse).
    pub fn try_start(
        binary: &Path,
        runtime: &Path,
        config: &str,
    ) -> Result<CriguardDaemon, String> {
        let dir = tempfile::tempdir().expect("creating the daemon's temp dir");
        let socket = dir.path().join("criguard.sock");
        let metrics = free_loopback_port();
        // Verified pulls are kept in the daemon's own directory, not the
        // node's /var/lib/criguard, unless `config` names one (to start
        // again on the same state).
        let state = if config.contains("state_dir") {
            String::new()
        } else {
            format!("state_dir = \"{}\"\n", dir.path().join("state").display())
        };
        let text = format!(
            "listen = \"unix://{}\"\nruntime_endpoint = \"{}\"\nmetrics_address = \"{metrics}\"\n\
             log_format = \"json\"\n{state}{config}\n",
            socket.display(),
            runtime.display()
        );
        fs::write(dir.path().join("config.toml"), text).expect("writing config.toml");
        let notify = std::os::unix::net::UnixDatagram::bind(dir.path().join("notify.sock"))
            .expect("binding the notify socket");
        notify
            .set_nonblocking(true)
            .expect("making the notify socket non-blocking");
        let mut daemon = CriguardDaemon {
            notify,
            dir,
            binary: binary.to_owned(),
            socket,
            metrics,
            child: None,
        };
        daemon.spawn()?;
        Ok(daemon)
    }

    fn spawn(&mut self) -> Result<(), String> {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("opening the daemon's log");
        let mut child = Command::new(&self.binary)
            .arg("serve")
            .arg("--config")
            .arg(self.dir.path().join("config.toml"))
            .env("RUST_LOG", "info")
            .env("NOTIFY_SOCKET", self.dir.path().join("notify.sock"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("cloning the log handle"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.binary.display()));
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!("exited with {status}:\n{}", self.log()));
            }
            if self.socket.exists() && std::os::unix::net::UnixStream::connect(&self.socket).is_ok()
            {
                break;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "no socket after {START_TIMEOUT:?}:\n{}",
                    self.log()
                ));
            }
            thread::sleep(Duration::from_millis(20));
        }
        self.child = Some(child);
        Ok(())
    }

    /// The systemd notifications the daemon sent since the last call
    /// (`READY=1`, `STOPPING=1`).
    pub fn notifications(&self) -> Vec<String> {
        let mut received = Vec::new();
        let mut buffer = [0u8; 4096];
        while let Ok(n) = self.notify.recv(&mut buffer) {
            received.push(String::from_utf8_lossy(&buffer[..n]).into_owned());
        }
        received
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn config_dir(&self) -> &Path {
        self.dir.path()
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("criguard.log")
    }

    /// Everything the daemon logged (JSON lines).
    pub fn log(&self) -> String {
        fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// The audit lines (`criguard::audit`), parsed.
    pub fn audit(&self) -> Vec<serde_json::Value> {
        self.log()
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter(|v| v["target"] == "criguard::audit")
            .collect()
    }

    /// The `/metrics` page.
    pub fn metrics(&self) -> String {
        let response = crate::http::request(self.metrics, "GET", "/metrics", &[], b"")
            .expect("fetching /metrics");
        assert_eq!(response.status, 200, "GET /metrics");
        String::from_utf8(response.body).expect("/metrics is UTF-8")
    }

    /// A sample's value on the `/metrics` page (the sum over every series
    /// whose name and labels start with `series`), 0 when absent.
    pub fn metric(&self, series: &str) -> f64 {
        self.metrics()
            .lines()
            .filter(|line| line.starts_with(series))
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    /// `(VmRSS, VmHWM)` in KiB: resident and peak resident memory.
    pub fn memory_kib(&self) -> (u64, u64) {
        let pid = self.pid().expect("the daemon is running");
        let status =
            fs::read_to_string(format!("/proc/{pid}/status")).expect("reading /proc status");
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
                .unwrap_or(0)
        };
        (field("VmRSS:"), field("VmHWM:"))
    }

    /// SIGTERM by PID, then wait; the socket file must be gone after.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if terminate(&mut child, STOP_TIMEOUT).is_none() && !thread::panicking() {
            panic!(
                "criguard {} ignored SIGTERM for {STOP_TIMEOUT:?} and was killed:\n{}",
                child.id(),
                self.log()
            );
        }
    }
}

impl Drop for CriguardDaemon {
    fn drop(&mut self) {
        self.stop();
    }
}
