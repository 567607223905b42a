//! The peer tools criguard must agree with: cosign 2.5 and skopeo 1.18
//! (containers/image 5.34) from Debian trixie, and bookworm's skopeo 1.9.3
//! (GPG only: Debian disabled sigstore in it); and the runtime it must work
//! in front of besides bookworm's containerd 1.6: containerd 2.1 from sid.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use crate::process::{assert_success, run_with_timeout};

/// Where the tools live; unset means `<workspace>/target/peer-tools`.
pub const PEER_TOOLS_ENV: &str = "CRIGUARD_PEER_TOOLS";

const SKOPEO_BOOKWORM: &str = "/usr/bin/skopeo";

/// Paths of the peer tools, fetched on first use in a process.
#[derive(Debug, Clone)]
pub struct PeerTools {
    dir: PathBuf,
}

static PEER_TOOLS: OnceLock<PathBuf> = OnceLock::new();

impl PeerTools {
    /// Finds the tools, running `scripts/fetch-peer-tools.sh` when they are
    /// not there yet so that a bare `cargo test` works. Panics when they
    /// cannot be had: a test that needs a peer must not pass without it.
    pub fn get() -> PeerTools {
        let dir = PEER_TOOLS.get_or_init(|| {
            let dir = match std::env::var_os(PEER_TOOLS_ENV) {
                Some(d) if !d.is_empty() => PathBuf::from(d),
                _ => workspace_root().join("target/peer-tools"),
            };
            let ready = [
                "bin/cosign",
                "bin/skopeo",
                "versions.txt",
                "containerd-sid/usr/bin/containerd",
                "containerd-sid/usr/bin/containerd-shim-runc-v2",
            ]
            .iter()
            .all(|f| dir.join(f).is_file());
            if !ready {
                let script = workspace_root().join("scripts/fetch-peer-tools.sh");
                let mut cmd = Command::new(&script);
                cmd.arg(&dir);
                let out = run_with_timeout(&mut cmd, Duration::from_secs(900));
                assert_success(&cmd, &out);
            }
            dir
        });
        PeerTools { dir: dir.clone() }
    }

    /// cosign 2.5. Run it through [`crate::cosign`]'s helpers, which keep it
    /// off the network.
    pub fn cosign(&self) -> PathBuf {
        self.dir.join("bin/cosign")
    }

    /// skopeo 1.18 with sigstore support (a wrapper running trixie's binary
    /// with trixie's libc). It reads the host's /etc/containers files unless
    /// told otherwise: always pass `--policy` and `--registries.d`.
    pub fn skopeo(&self) -> PathBuf {
        self.dir.join("bin/skopeo")
    }

    /// Debian sid's containerd 2.1, unpacked (not installed) by
    /// `scripts/fetch-containerd-sid.sh`: the directory holding
    /// `containerd` and its `containerd-shim-runc-v2`. Both run with
    /// bookworm's libc; the shim runs bookworm's runc.
    pub fn containerd_sid_bin(&self) -> PathBuf {
        self.dir.join("containerd-sid/usr/bin")
    }

    /// The Debian version of a fetched package (`cosign`, `skopeo`, `libc6`,
    /// ...), so tests can say which peer they were compared with.
    pub fn package_version(&self, package: &str) -> String {
        let path = self.dir.join("versions.txt");
        let versions =
            fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        versions
            .lines()
            .find_map(|l| l.strip_prefix(package)?.strip_prefix(' '))
            .unwrap_or_else(|| panic!("{package} is not among the fetched peer tools"))
            .to_string()
    }

    /// Debian bookworm's skopeo 1.9.3 (containers/image 5.23): the GPG
    /// "simple signing" oracle. Sigstore is disabled in it.
    pub fn skopeo_bookworm(&self) -> PathBuf {
        assert!(
            Path::new(SKOPEO_BOOKWORM).is_file(),
            "{SKOPEO_BOOKWORM} is missing: apt-get install skopeo (scripts/test.sh does)"
        );
        PathBuf::from(SKOPEO_BOOKWORM)
    }
}

/// The workspace root, known at compile time of this crate.
pub fn workspace_root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = manifest_dir
        .parent()
        .and_then(Path::parent)
        .expect("crates/testutil sits two levels below the workspace root");
    fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf())
}

/// Environment shared by every peer-tool run: a private HOME (no user
/// config, auth files or TUF cache is read), an empty registries.conf, and
/// a proxy on a closed loopback port, so any attempt to reach a host other
/// than loopback (which Go never proxies) fails at once instead of hanging
/// or silently using the network. Public so that programs which run the
/// peers themselves (e.g. a benchmark driver, `bench/src/bin/bench_verify.rs`)
/// give them exactly the environment the tests do.
pub fn hermetic(cmd: &mut Command, scratch: &Path) {
    let home = scratch.join("home");
    fs::create_dir_all(&home).expect("creating the tool's private HOME");
    let registries_conf = scratch.join("registries.conf");
    if !registries_conf.exists() {
        fs::write(&registries_conf, "").expect("writing an empty registries.conf");
    }
    for var in ["http_proxy", "https_proxy", "no_proxy", "all_proxy"] {
        cmd.env_remove(var);
        cmd.env_remove(var.to_ascii_uppercase());
    }
    cmd.env("HOME", &home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("DOCKER_CONFIG", home.join(".docker"))
        .env("REGISTRY_AUTH_FILE", home.join("auth.json"))
        .env("CONTAINERS_REGISTRIES_CONF", &registries_conf)
        .env("TUF_ROOT", home.join(".sigstore/root"))
        .env("HTTP_PROXY", "http://127.0.0.1:9")
        .env("HTTPS_PROXY", "http://127.0.0.1:9")
        .env("NO_PROXY", "127.0.0.1,localhost");
}
