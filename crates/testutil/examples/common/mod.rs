//! What the demo and the verify benchmark share: a registry on 127.0.0.1
//! with the registries.d, registries.conf and scratch HOME that
//! `criguard verify`, cosign and skopeo need to judge images in it, set up
//! with the same testutil helpers the interoperability tests use.

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use criguard_testutil::{
    Registry, hermetic, insecure_registries_conf, sigstore_key_policy, sigstore_registries_d,
};
use tempfile::TempDir;

/// A running registry and the files around it. Dropping it stops the
/// registry (by its PID) and removes the files.
pub(crate) struct Setup {
    // Declared first so it is dropped (killed) before its files go.
    pub(crate) registry: Registry,
    pub(crate) dir: TempDir,
    pub(crate) registries_d: PathBuf,
    pub(crate) registries_conf: PathBuf,
    /// The private HOME and empty registries.conf of [`hermetic`].
    scratch: PathBuf,
}

impl Setup {
    /// Starts a registry on a free loopback port and writes the files;
    /// `prefix` names the temp dir (e.g. "criguard-demo-").
    pub(crate) fn start(prefix: &str) -> Setup {
        let registry = Registry::start();
        let dir = tempfile::Builder::new()
            .prefix(prefix)
            .tempdir()
            .expect("creating a temp dir");
        let host = registry.host();
        let registries_d = sigstore_registries_d(&dir.path().join("registries.d"), &host);
        let registries_conf = insecure_registries_conf(&dir.path().join("registries.conf"), &host);
        let scratch = dir.path().join("env");
        fs::create_dir(&scratch).expect("creating the scratch dir");
        Setup {
            registry,
            dir,
            registries_d,
            registries_conf,
            scratch,
        }
    }

    /// A file or directory name inside the temp dir.
    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The policy trusting `public_key` for this registry, at `policy.json`.
    pub(crate) fn policy(&self, public_key: &Path) -> PathBuf {
        sigstore_key_policy(&self.path("policy.json"), &self.registry.host(), public_key)
    }

    /// `program` in the environment the peer tools get in the tests (private
    /// HOME, empty default registries.conf, proxies that only let loopback
    /// through), so neither the host's configuration nor its network takes
    /// part. criguard runs in it too: the same rules for every program.
    pub(crate) fn command(&self, program: &Path) -> Command {
        let mut cmd = Command::new(program);
        hermetic(&mut cmd, &self.scratch);
        cmd
    }
}

/// The one positional argument both examples take: the criguard binary to
/// run. Passed in rather than built here because an example cannot depend
/// on the `criguard` binary crate; the scripts build it first.
pub(crate) fn criguard_binary(args: &mut impl Iterator<Item = OsString>) -> PathBuf {
    let path = PathBuf::from(args.next().expect(
        "usage: EXAMPLE PATH/TO/criguard [...] (scripts/demo.sh and bench/verify.sh pass it)",
    ));
    assert!(
        path.is_file(),
        "{} is not a file: build criguard first (cargo build --release -p criguard)",
        path.display()
    );
    path
}

/// The first line `program ARG` prints, e.g. "skopeo version 1.18.0".
#[allow(dead_code)]
pub(crate) fn version(program: &Path, arg: &str) -> String {
    let out = criguard_testutil::run_with_timeout(
        Command::new(program).arg(arg),
        std::time::Duration::from_secs(60),
    );
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    text.lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("?")
        .trim()
        .to_owned()
}

/// The machine's 1, 5 and 15 minute load averages, for the report.
#[allow(dead_code)]
pub(crate) fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".to_owned())
}
