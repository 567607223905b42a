//! A plain HTTP file server on 127.0.0.1, for lookaside signature storage
//! read over `http://` as production lookasides are.

use std::fs::{self, File};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::http;
use crate::process::wait_with_deadline;

/// `python3 -m http.server` serving a directory. Dropping it kills and
/// reaps exactly that child process.
#[derive(Debug)]
pub struct StaticHttpServer {
    child: Option<Child>,
    addr: SocketAddr,
    /// Holds the server's log.
    scratch: TempDir,
}

impl StaticHttpServer {
    /// Serves `dir` (which must outlive the server). The server binds port
    /// 0 and prints the port the kernel chose, so unlike a probed free port
    /// no other process can take it first.
    pub fn start(dir: &Path) -> StaticHttpServer {
        assert!(
            dir.is_dir(),
            "{} is not a directory to serve",
            dir.display()
        );
        let scratch = tempfile::Builder::new()
            .prefix("criguard-http-")
            .tempdir()
            .expect("creating the HTTP server's temp dir");
        let log_path = scratch.path().join("server.log");
        let log = File::create(&log_path).expect("creating the server log");
        let log2 = log.try_clone().expect("cloning the server log");
        let mut cmd = Command::new("python3");
        // -u: the "Serving HTTP on" line must reach the log at once.
        cmd.args([
            "-u",
            "-m",
            "http.server",
            "--bind",
            "127.0.0.1",
            "--directory",
        ])
        .arg(dir)
        .arg("0")
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log2);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start python3 -m http.server: {e}"));
        let mut server = StaticHttpServer {
            child: Some(child),
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            scratch,
        };
        server.wait_until_serving();
        server
    }

    /// "http://127.0.0.1:PORT"
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The PID of the server, for tests that check it is gone.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The server's output, including its access log, for failure messages.
    pub fn log(&self) -> String {
        fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn log_path(&self) -> PathBuf {
        self.scratch.path().join("server.log")
    }

    fn wait_until_serving(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let child = self.child.as_mut().expect("the server was just started");
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                panic!("http.server exited ({status}) at start:\n{}", self.log());
            }
            if let Some(port) = serving_port(&self.log()) {
                self.addr.set_port(port);
                if http::request(self.addr, "HEAD", "/", &[], &[]).is_ok() {
                    return;
                }
            }
            if Instant::now() >= deadline {
                let log = self.log();
                if let Some(mut child) = self.child.take() {
                    let _ = wait_with_deadline(&mut child, Duration::ZERO);
                }
                panic!("http.server did not serve within 30 s:\n{log}");
            }
            thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for StaticHttpServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Errors mean it already exited; wait still reaps it.
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The port in "Serving HTTP on 127.0.0.1 port 40123 (http://...) ...".
fn serving_port(log: &str) -> Option<u16> {
    log.lines().find_map(|l| {
        l.strip_prefix("Serving HTTP on 127.0.0.1 port ")?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    })
}
