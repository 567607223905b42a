//! A real containerd with its CRI plugin, private to one test, so the proxy
//! is tested against the runtime kubelet actually talks to: pulls, image
//! status, the runtime restarting under the proxy, and real pods. Two
//! releases ([`Release`]): Debian 12's containerd 1.6 (CRI `v1` and
//! `v1alpha2`, pulls in the CRI plugin) and Debian sid's 2.1 (CRI `v1`
//! only, pulls through the transfer service), which is what most clusters
//! run; `scripts/fetch-containerd-sid.sh` unpacks it beside the peer tools.
//!
//! Everything it keeps is in its own temp dir: root, state, sockets, the
//! opt dir, CNI dirs, runc's state and the registry hosts dir (`certs.d`).
//! It never reads /etc/containerd, never writes /var/lib/containerd or
//! /opt/containerd, opens no debug or metrics listener, runs no NRI socket,
//! and only reaches registries on loopback, over plain HTTP, through
//! `hosts.toml`. Pods use the host network, so no CNI plugin runs and
//! nothing in /etc/cni or /var/run/netns is touched.
//!
//! What a real container unavoidably leaves outside the temp dir: each
//! shim's socket, `/run/containerd/s/<sha256>` (containerd hard-codes that
//! directory; the hash covers this containerd's socket path, so tests never
//! share one; the shim removes it when it exits), and the containers'
//! cgroups (`/k8s.io/<id>` under each controller, removed with the
//! container). Dropping a [`Containerd`] first stops and removes every pod
//! sandbox it still has, through its own CRI, so its shims and containers
//! end with it even when a test fails half-way.

use std::fs::{self, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::cri;
use crate::peer::{PeerTools, hermetic};
use crate::process::{terminate, wait_with_deadline};

/// Where Debian 12's containerd 1.6 and its shim are installed.
const BOOKWORM_BIN: &str = "/usr/bin";

/// Bookworm's runc 1.1, the OCI runtime for both releases: the issue that
/// asked for 2.1 asks for it on Debian 12 as it is, not with sid's runc.
const RUNC: &str = "/usr/sbin/runc";

/// The sandbox image when a test runs no pods: a loopback name, so that a
/// pull of it could never reach the internet.
const NO_SANDBOX_IMAGE: &str = "127.0.0.1:9/pause:never";

/// Which containerd runs. The two differ where criguard must not care:
/// config format, CRI versions served, how pulls are done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Release {
    /// Debian 12's containerd 1.6 from /usr/bin (config version 2).
    V1_6,
    /// Debian sid's containerd 2.1, unpacked by
    /// `scripts/fetch-containerd-sid.sh` (fetched on first use, like the
    /// peer tools), config version 3.
    V2_1,
}

impl Release {
    /// Every release the tests run against.
    pub const ALL: [Release; 2] = [Release::V1_6, Release::V2_1];

    /// What the CRI `Version` call's `runtime_version` starts with.
    pub fn version_prefix(self) -> &'static str {
        match self {
            Release::V1_6 => "1.6.",
            Release::V2_1 => "2.1.",
        }
    }

    /// The directory with `containerd` and the matching
    /// `containerd-shim-runc-v2`.
    fn bin_dir(self) -> PathBuf {
        match self {
            Release::V1_6 => PathBuf::from(BOOKWORM_BIN),
            Release::V2_1 => PeerTools::get().containerd_sid_bin(),
        }
    }
}

impl std::fmt::Display for Release {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Release::V1_6 => "containerd 1.6",
            Release::V2_1 => "containerd 2.1",
        })
    }
}

/// Start-up is well under a second when idle; a loaded 2-core machine
/// running other tests in parallel needs much more.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a SIGTERM'd containerd may take to shut down before SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);

/// A running containerd. Dropping it removes its pod sandboxes, then stops
/// exactly that process, by PID.
#[derive(Debug)]
pub struct Containerd {
    child: Option<Child>,
    socket: PathBuf,
    release: Release,
    bin_dir: PathBuf,
    sandbox_image: String,
    runtime_version: String,
    dir: TempDir,
}

impl Containerd {
    /// Starts containerd 1.6 with a registry hosts entry for each
    /// `(host, endpoint)` pair: images named `host/...` (`127.0.0.1:PORT`,
    /// as in the image reference) are pulled over plain HTTP from
    /// `endpoint` (`127.0.0.1:PORT` or `http://127.0.0.1:PORT`), which need
    /// not be the same registry: that is how a test makes a tag "move"
    /// between verification and pull. Returns once the CRI `Version` call
    /// answers; panics with containerd's log otherwise.
    pub fn start(mirrors: &[(&str, &str)]) -> Containerd {
        Containerd::start_release(Release::V1_6, mirrors, None)
    }

    /// Like [`Containerd::start`], for `release`, and ready to run pods when
    /// `sandbox_image` is given: the image of every sandbox's pause
    /// container, which containerd pulls itself (through the same hosts
    /// entries) on the first RunPodSandbox. Sandboxes must use the host
    /// network: there is no CNI plugin.
    pub fn start_release(
        release: Release,
        mirrors: &[(&str, &str)],
        sandbox_image: Option<&str>,
    ) -> Containerd {
        let bin_dir = release.bin_dir();
        for binary in ["containerd", "containerd-shim-runc-v2"] {
            assert!(
                bin_dir.join(binary).is_file(),
                "{} is missing: {}",
                bin_dir.join(binary).display(),
                match release {
                    Release::V1_6 => "install Debian's containerd (scripts/test.sh does)",
                    Release::V2_1 => "run scripts/fetch-peer-tools.sh (scripts/test.sh does)",
                }
            );
        }
        assert!(
            Path::new(RUNC).is_file(),
            "{RUNC} is missing: install Debian's runc (containerd depends on it)"
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
            "runc",
            "cdi",
            "image-verifier",
        ] {
            fs::create_dir_all(dir.path().join(sub))
                .unwrap_or_else(|e| panic!("creating {sub} in containerd's temp dir: {e}"));
        }
        let containerd = Containerd {
            child: None,
            socket: dir.path().join("containerd.sock"),
            release,
            bin_dir,
            sandbox_image: sandbox_image.unwrap_or(NO_SANDBOX_IMAGE).to_owned(),
            runtime_version: String::new(),
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

    /// Which containerd this is.
    pub fn release(&self) -> Release {
        self.release
    }

    /// The `runtime_version` its CRI `Version` call answered at start-up
    /// (e.g. `1.6.20~ds1`, `2.1.9+unknown`).
    pub fn runtime_version(&self) -> &str {
        &self.runtime_version
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
        let binary = self.bin_dir.join("containerd");
        let mut cmd = Command::new(&binary);
        cmd.arg("--config").arg(self.config_path());
        hermetic(&mut cmd, &self.dir.path().join("env"));
        // The config names the shim and runc by path; PATH puts this
        // release's own binaries first all the same, for anything
        // containerd runs by name.
        let path = format!("{}:/usr/sbin:/usr/bin:/sbin:/bin", self.bin_dir.display());
        cmd.env("TMPDIR", self.dir.path().join("tmp"))
            .env("PATH", path)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2);
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", binary.display()));
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
                    Ok((name, version)) if name == "containerd" => {
                        let version = version.trim_start_matches('v').to_owned();
                        if !version.starts_with(self.release.version_prefix()) {
                            let _ = terminate(&mut child, STOP_TIMEOUT);
                            panic!(
                                "{} was asked for, but {} answers CRI Version with {version}",
                                self.release,
                                binary.display()
                            );
                        }
                        self.runtime_version = version;
                        break;
                    }
                    Ok((name, _)) => last_error = format!("Version answered runtime name {name:?}"),
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
        match self.release {
            Release::V1_6 => self.config_v2(),
            Release::V2_1 => self.config_v3(),
        }
    }

    /// The top of both configs: paths, sockets, no listeners, and the
    /// snapshotters this machine may lack disabled (they would only add
    /// noise; images are unpacked with "native").
    fn config_common(&self, version: u8) -> String {
        let p = |sub: &str| toml_path(&self.dir.path().join(sub));
        format!(
            r#"version = {version}
root = {root}
state = {state}
temp = {tmp}
# Top-level keys, so before the first table (after one, TOML would put
# them in it and containerd would ignore them).
disabled_plugins = [
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.blockfile",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.erofs",
  "io.containerd.snapshotter.v1.overlayfs",
  "io.containerd.snapshotter.v1.zfs",
]
# Without the CRI plugin this harness is useless: fail at start-up.
required_plugins = ["io.containerd.grpc.v1.cri"]

# The private sockets; never /run/containerd/containerd.sock.
[grpc]
  address = {socket}
[ttrpc]
  address = {ttrpc}
[debug]
  address = ""
  level = "{level}"
[metrics]
  address = ""
"#,
            root = p("root"),
            state = p("state"),
            tmp = p("tmp"),
            socket = toml_path(&self.socket),
            ttrpc = p("containerd.sock.ttrpc"),
            // 2.1 says at debug level which way a CRI pull went (the
            // transfer service or the client's own pull); tests check it.
            level = match self.release {
                Release::V1_6 => "info",
                Release::V2_1 => "debug",
            },
        )
    }

    /// containerd 1.6: everything CRI is one plugin, config version 2.
    fn config_v2(&self) -> String {
        let p = |sub: &str| toml_path(&self.dir.path().join(sub));
        let cri = r#"plugins."io.containerd.grpc.v1.cri""#;
        format!(
            r#"{common}
[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = {opt}
  [{cri}]
    stream_server_address = "127.0.0.1"
    stream_server_port = "0"
    sandbox_image = {sandbox_image:?}
    # containerd may not lower oom_score_adj below its own on these
    # machines; without this every sandbox start fails.
    restrict_oom_score_adj = true
    [{cri}.containerd]
      snapshotter = "native"
      default_runtime_name = "runc"
      [{cri}.containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"
        runtime_path = {shim}
        [{cri}.containerd.runtimes.runc.options]
          BinaryName = {runc}
          Root = {runc_root}
    [{cri}.cni]
      bin_dir = {cni_bin}
      conf_dir = {cni_conf}
    [{cri}.registry]
      config_path = {certs}
"#,
            common = self.config_common(2),
            opt = p("opt"),
            sandbox_image = self.sandbox_image,
            shim = toml_path(&self.bin_dir.join("containerd-shim-runc-v2")),
            runc = toml_path(Path::new(RUNC)),
            runc_root = p("runc"),
            cni_bin = p("cni/bin"),
            cni_conf = p("cni/net.d"),
            certs = p("certs.d"),
        )
    }

    /// containerd 2.x: the CRI plugin is split into images, runtime and the
    /// gRPC service, config version 3. Pulls go through the transfer
    /// service, which unpacks for the snapshotters its `unpack_config`
    /// names: without a "native" entry it would default to the disabled
    /// overlayfs and fail to load. NRI and CDI, on by default in 2.x, would
    /// open /var/run/nri/nri.sock and read /etc/cdi: off.
    fn config_v3(&self) -> String {
        let p = |sub: &str| toml_path(&self.dir.path().join(sub));
        let images = "plugins.'io.containerd.cri.v1.images'";
        let runtime = "plugins.'io.containerd.cri.v1.runtime'";
        let transfer = "plugins.'io.containerd.transfer.v1.local'";
        format!(
            r#"{common}
[plugins]
  [plugins.'io.containerd.internal.v1.opt']
    path = {opt}
  [plugins.'io.containerd.grpc.v1.cri']
    stream_server_address = "127.0.0.1"
    stream_server_port = "0"
  [plugins.'io.containerd.nri.v1.nri']
    disable = true
  [plugins.'io.containerd.image-verifier.v1.bindir']
    bin_dir = {verifiers}
  [{images}]
    snapshotter = "native"
    [{images}.pinned_images]
      sandbox = {sandbox_image:?}
    [{images}.registry]
      config_path = {certs}
  [{runtime}]
    # containerd may not lower oom_score_adj below its own on these
    # machines; without this every sandbox start fails.
    restrict_oom_score_adj = true
    enable_cdi = false
    cdi_spec_dirs = [{cdi}]
    [{runtime}.containerd]
      default_runtime_name = "runc"
      [{runtime}.containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"
        runtime_path = {shim}
        [{runtime}.containerd.runtimes.runc.options]
          BinaryName = {runc}
          Root = {runc_root}
    [{runtime}.cni]
      bin_dirs = [{cni_bin}]
      conf_dir = {cni_conf}
  [{transfer}]
    config_path = {certs}
    [[{transfer}.unpack_config]]
      platform = "linux/amd64"
      snapshotter = "native"
"#,
            common = self.config_common(3),
            opt = p("opt"),
            verifiers = p("image-verifier"),
            sandbox_image = self.sandbox_image,
            certs = p("certs.d"),
            cdi = p("cdi"),
            shim = toml_path(&self.bin_dir.join("containerd-shim-runc-v2")),
            runc = toml_path(Path::new(RUNC)),
            runc_root = p("runc"),
            cni_bin = p("cni/bin"),
            cni_conf = p("cni/net.d"),
        )
    }

    /// Stops and removes every pod sandbox (and so every container) this
    /// containerd has, through its CRI: the shims and containers it
    /// started end with it. Errors are returned, not raised: this runs
    /// from `drop`, possibly while a failed test unwinds.
    fn remove_all_pods(&self) -> Result<(), String> {
        let socket = self.socket.clone();
        on_own_thread(move || async move {
            let mut client = cri::runtime_client(
                cri::try_connect(&socket)
                    .await
                    .map_err(|e| format!("connecting: {e}"))?,
            );
            let sandboxes = client
                .list_pod_sandbox(cri::v1::ListPodSandboxRequest::default())
                .await
                .map_err(|e| format!("ListPodSandbox: {e}"))?
                .into_inner()
                .items;
            for sandbox in sandboxes {
                let id = sandbox.id;
                client
                    .stop_pod_sandbox(cri::v1::StopPodSandboxRequest {
                        pod_sandbox_id: id.clone(),
                    })
                    .await
                    .map_err(|e| format!("StopPodSandbox {id}: {e}"))?;
                client
                    .remove_pod_sandbox(cri::v1::RemovePodSandboxRequest {
                        pod_sandbox_id: id.clone(),
                    })
                    .await
                    .map_err(|e| format!("RemovePodSandbox {id}: {e}"))?;
            }
            Ok(())
        })
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        if self.child.is_some()
            && let Err(e) = self.remove_all_pods()
        {
            eprintln!(
                "criguard-testutil: removing the pods of containerd {:?} failed: {e}",
                self.pid()
            );
        }
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

/// Runs an async CRI exchange on a thread and a runtime of its own, so the
/// harness works from sync and async tests (and from `drop`) alike; the
/// whole exchange has 60 s.
fn on_own_thread<T, F, Fut>(call: F) -> Result<T, String>
where
    T: Send + 'static,
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("building a tokio runtime: {e}"))?;
        runtime.block_on(async {
            tokio::time::timeout(Duration::from_secs(60), call())
                .await
                .map_err(|_| "the CRI calls took longer than 60 s".to_string())?
        })
    })
    .join()
    .unwrap_or_else(|_| Err("the CRI calls panicked".to_string()))
}

/// One CRI `Version` call through the generated client: the runtime's name
/// and version.
fn cri_version(socket: &Path) -> Result<(String, String), String> {
    let socket = socket.to_path_buf();
    on_own_thread(move || async move {
        let call = async {
            let channel = cri::try_connect(&socket)
                .await
                .map_err(|e| format!("connecting: {e}"))?;
            cri::runtime_client(channel)
                .version(cri::v1::VersionRequest::default())
                .await
                .map(|r| {
                    let r = r.into_inner();
                    (r.runtime_name, r.runtime_version)
                })
                .map_err(|e| format!("Version: {e}"))
        };
        tokio::time::timeout(Duration::from_secs(5), call)
            .await
            .map_err(|_| "Version took longer than 5 s".to_string())?
    })
}
