//! What the demo and the benchmark drivers (`scripts/demo`, `bench`) share:
//! a registry on 127.0.0.1 with the registries.d, registries.conf and
//! scratch HOME that `criguard verify`, cosign and skopeo need to judge
//! images in it, set up with the same helpers the interoperability tests
//! use, and the criguard binary they are given to run.

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use tempfile::TempDir;

use crate::{
    Registry, hermetic, insecure_registries_conf, sigstore_key_policy, sigstore_registries_d,
};

/// A running registry and the files around it. Dropping it stops the
/// registry (by its PID) and removes the files.
pub struct RegistrySetup {
    // Declared first so it is dropped (killed) before its files go.
    pub registry: Registry,
    pub dir: TempDir,
    pub registries_d: PathBuf,
    pub registries_conf: PathBuf,
    /// The private HOME and empty registries.conf of [`hermetic`].
    scratch: PathBuf,
}

impl RegistrySetup {
    /// Starts a registry on a free loopback port and writes the files;
    /// `prefix` names the temp dir (e.g. "criguard-demo-").
    pub fn start(prefix: &str) -> RegistrySetup {
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
        RegistrySetup {
            registry,
            dir,
            registries_d,
            registries_conf,
            scratch,
        }
    }

    /// A file or directory name inside the temp dir.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The policy trusting `public_key` for this registry, at `policy.json`.
    pub fn policy(&self, public_key: &Path) -> PathBuf {
        sigstore_key_policy(&self.path("policy.json"), &self.registry.host(), public_key)
    }

    /// `program` in the environment the peer tools get in the tests (private
    /// HOME, empty default registries.conf, proxies that only let loopback
    /// through), so neither the host's configuration nor its network takes
    /// part. criguard runs in it too: the same rules for every program.
    pub fn command(&self, program: &Path) -> Command {
        let mut cmd = Command::new(program);
        hermetic(&mut cmd, &self.scratch);
        cmd
    }
}

/// The first positional argument of the demo and the bench drivers: the
/// criguard binary to run. Passed in rather than built by them because a
/// package cannot depend on another package's binary; the scripts build it
/// first.
pub fn criguard_binary(args: &mut impl Iterator<Item = OsString>) -> PathBuf {
    let path = PathBuf::from(args.next().expect(
        "usage: DRIVER PATH/TO/criguard [...] (scripts/demo.sh and the bench/*.sh scripts pass it)",
    ));
    assert!(
        path.is_file(),
        "{} is not a file: build criguard first (cargo build --release -p criguard)",
        path.display()
    );
    path
}
