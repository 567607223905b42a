//! A real containerd (Debian's 1.6) with its CRI plugin, private to one test,
//! so the proxy is tested against the runtime kubelet actually talks to:
//! pulls, image status and the runtime restarting under the proxy.
//!
//! Everything it touches is in its own temp dir: root, state, sockets, the
//! opt dir, CNI dirs and the registry hosts dir (`certs.d`). It never reads
//! /etc/containerd, never writes /var/lib/containerd, /run/containerd,
//! /opt/containerd or /etc/cni, opens no debug or metrics listener, and only
//! reaches registries on loopback, over plain HTTP, through `hosts.toml`.
//! Only images are used: there is no CNI plugin and no sandbox is run.

use std::fs::{self, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::cri;
use crate::peer::hermetic;
use crate::process::{terminate, wait_with_deadline};

const CONTAINERD_BIN: &str = "/usr/bin/containerd";

/// Start-up is well under a second when idle; a loaded 2-core machine
/// running other tests in parallel needs much more.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a SIGTERM'd containerd may take to shut down before SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);

/// A running containerd. Dropping it stops exactly that process, by PID.
#[derive(Debug)]
pub struct Containerd {
    child: Option<Child>,
    socket: PathBuf,
    dir: TempDir,
}

impl Containerd {
    /// Starts containerd with a registry hosts entry for each
    /// `(host, endpoint)` pair: images named `host/...` (`127.0.0.1:PORT`,
    /// as in the image reference) are pulled over plain HTTP from
    /// `endpoint` (`127.0.0.1:PORT` or `http://127.0.0.1:PORT`), which need
    /// not be the same registry: that is how a test makes a tag "move"
    /// between verification and pull. Returns once the CRI `Version` call
    /// answers; panics with containerd's log otherwise.
    pub fn start(mirrors: &[(&str, &str)]) -> Containerd {
        assert!(
            Path::new(CONTAINERD_BIN).exists(),
            "{CONTAINERD_BIN} is missing: install Debian's containerd (scripts/test.sh does)"
        );
        let dir = tempfile::Builder::new()
            .prefix("criguard-containerd-")
            .tempdir()
            .expect("creating containerd's temp dir");
        for sub in [
            "root",
            "state",
            "tmp",
            "opt",
            "cni/bin",
            "cni/net.d",
            "certs.d",
        ] {
            fs::create_dir_all(dir.path().join(sub))
                .unwrap_or_else(|e| panic!("creating {sub} in containerd's temp dir: {e}"));
        }
        let containerd = Containerd {
            child: None,
            socket: dir.path().join("containerd.sock"),
            dir,
        };
        // A unix socket path is limited to 107 bytes.
        assert!(
            containerd.socket.as_os_str().len() < 100,
            "containerd's socket path {} is too long for a unix socket; use a shorter TMPDIR",
            containerd.socket.display()
        );
        for (host, endpoint) in mirrors {
            containerd.mirror(host, endpoint);
        }
        fs::write(containerd.config_path(), containerd.config_toml())
            .expect("writing containerd's config.toml");
        let mut containerd = containerd;
        containerd.spawn();
        containerd
    }

    /// Makes pulls of `host/...` go to `endpoint` from now on (containerd
    /// reads the hosts dir on every pull, so no restart is needed).
    pub fn mirror(&self, host: &str, endpoint: &str) {
        assert!(
            !host.contains('/') && !host.is_empty(),
            "{host:?} is not a registry host"
        );
        let endpoint = if endpoint.contains("://") {
            endpoint.to_string()
        } else {
            format!("http://{endpoint}")
        };
        assert!(
            endpoint.starts_with("http://127.0.0.1:") || endpoint.starts_with("http://[::1]:"),
            "{endpoint} is not a plain-HTTP loopback endpoint; the tests stay on loopback"
        );
        let hosts_dir = self.dir.path().join("certs.d").join(host);
        fs::create_dir_all(&hosts_dir).expect("creating a certs.d host dir");
        // `server` is where containerd falls back when every [host] entry
        // fails; pointing it at the endpoint too means a miss never reaches
        // the registry the reference names.
        let hosts = format!(
            "server = {endpoint:?}\n\n[host.{endpoint:?}]\n  capabilities = [\"pull\", \"resolve\"]\n"
        );
        fs::write(hosts_dir.join("hosts.toml"), hosts).expect("writing hosts.toml");
    }

    /// The CRI (and containerd API) socket.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The PID of the running containerd.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// containerd's stdout and stderr, every start so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// containerd's private root (content store, metadata, snapshots).
    pub fn root_dir(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    /// Sends SIGTERM to containerd's PID and waits for it to exit, then
    /// SIGKILL after a time-out. A no-op when not running. Directories,
    /// images and the socket path are kept for [`Containerd::start_again`].
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if terminate(&mut child, STOP_TIMEOUT).is_none() && !thread::panicking() {
            panic!(
                "containerd {} ignored SIGTERM for {STOP_TIMEOUT:?} and was killed:\n{}",
                child.id(),
                self.log()
            );
        }
    }

    /// Starts containerd again with the same config, dirs and socket, as a
    /// runtime restart under a running proxy would look.
    pub fn start_again(&mut self) {
        self.stop();
        self.spawn();
    }

    fn config_path(&self) -> PathBuf {
        self.dir.path().join("config.toml")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("containerd.log")
    }

    fn spawn(&mut self) {
        // containerd removes a stale socket itself; removing it here makes
        // "the socket exists" mean "this containerd created it".
        let _ = fs::remove_file(&self.socket);
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("opening containerd's log");
        writeln!(log, "--- criguard-testutil: starting containerd ---")
            .expect("writing containerd's log");
        let log2 = log.try_clone().expect("cloning containerd's log handle");
        let mut cmd = Command::new(CONTAINERD_BIN);
        cmd.arg("--config").arg(self.config_path());
        hermetic(&mut cmd, &self.dir.path().join("env"));
        cmd.env("TMPDIR", self.dir.path().join("tmp"))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2);
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {CONTAINERD_BIN}: {e}"));
        let deadline = Instant::now() + READY_TIMEOUT;
        let mut last_error = String::from("the socket never appeared");
        loop {
            match child.try_wait() {
                Ok(Some(status)) => {
                    panic!(
                        "containerd exited ({status}) during start-up:\n{}",
                        self.log()
                    )
                }
                Ok(None) => {}
                Err(e) => panic!("waiting for containerd {}: {e}", child.id()),
            }
            if self.socket.exists() {
                match cri_version(&self.socket) {
                    Ok(name) if name == "containerd" => break,
                    Ok(name) => last_error = format!("Version answered runtime name {name:?}"),
                    Err(e) => last_error = e,
                }
            }
            if Instant::now() >= deadline {
                let _ = wait_with_deadline(&mut child, Duration::ZERO);
                panic!(
                    "containerd did not answer CRI Version on {} within {READY_TIMEOUT:?} \
                     ({last_error}):\n{}",
                    self.socket.display(),
                    self.log()
                );
            }
            thread::sleep(Duration::from_millis(100));
        }
        self.child = Some(child);
    }

    fn config_toml(&self) -> String {
        let d = self.dir.path();
        let p = |sub: &str| toml_path(&d.join(sub));
        format!(
            r#"version = 2
root = {root}
state = {state}
temp = {tmp}
# The private sockets; never /run/containerd.
[grpc]
  address = {socket}
[ttrpc]
  address = {ttrpc}
[debug]
  address = ""
[metrics]
  address = ""

# Snapshotters that need kernel or filesystem support this machine may lack
# would only add noise; images are unpacked with "native".
disabled_plugins = [
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.overlayfs",
  "io.containerd.snapshotter.v1.zfs",
]
# Without the CRI plugin this harness is useless: fail at start-up.
required_plugins = ["io.containerd.grpc.v1.cri"]

[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = {opt}
  [plugins."io.containerd.grpc.v1.cri"]
    stream_server_address = "127.0.0.1"
    stream_server_port = "0"
    # Only pulled to run a sandbox, which these tests never do; a
    # loopback name makes sure it could never reach the internet.
    sandbox_image = "127.0.0.1:9/pause:never"
    [plugins."io.containerd.grpc.v1.cri".containerd]
      snapshotter = "native"
    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = {cni_bin}
      conf_dir = {cni_conf}
    [plugins."io.containerd.grpc.v1.cri".registry]
      config_path = {certs}
"#,
            root = p("root"),
            state = p("state"),
            tmp = p("tmp"),
            socket = toml_path(&self.socket),
            ttrpc = p("containerd.sock.ttrpc"),
            opt = p("opt"),
            cni_bin = p("cni/bin"),
            cni_conf = p("cni/net.d"),
            certs = p("certs.d"),
        )
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A TOML basic string for `path` (Rust's escaping is TOML's for the
/// characters a temp dir path has).
fn toml_path(path: &Path) -> String {
    let s = path
        .to_str()
        .unwrap_or_else(|| panic!("{} is not UTF-8", path.display()));
    format!("{s:?}")
}

/// One CRI `Version` call through the generated client, on a thread of its
/// own so the harness works from sync and async tests alike.
fn cri_version(socket: &Path) -> Result<String, String> {
    let socket = socket.to_path_buf();
    thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("building a tokio runtime: {e}"))?;
        runtime.block_on(async {
            let call = async {
                let channel = cri::try_connect(&socket)
                    .await
                    .map_err(|e| format!("connecting: {e}"))?;
                cri::runtime_client(channel)
                    .version(cri::v1::VersionRequest::default())
                    .await
                    .map(|r| r.into_inner().runtime_name)
                    .map_err(|e| format!("Version: {e}"))
            };
            tokio::time::timeout(Duration::from_secs(5), call)
                .await
                .map_err(|_| "Version took longer than 5 s".to_string())?
        })
    })
    .join()
    .unwrap_or_else(|_| Err("the Version probe panicked".to_string()))
}
