//! A real registry (Debian's `docker-registry`, i.e. distribution 2.8) on
//! 127.0.0.1, so registry code is tested against the server CRI runtimes
//! actually pull from, not a mock that agrees with our own assumptions.

use std::fs::{self, File};
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use base64::Engine as _;
use tempfile::TempDir;

use crate::http::{self, HttpResponse};
use crate::process::wait_with_deadline;

const REGISTRY_BIN: &str = "/usr/bin/docker-registry";
const IDENTITY_HEADER: &str = "X-Criguard-Test-Registry";

/// Every manifest type the tests push, so the registry never converts or
/// refuses because of an Accept header.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, \
    application/vnd.oci.image.index.v1+json, \
    application/vnd.docker.distribution.manifest.v2+json, \
    application/vnd.docker.distribution.manifest.list.v2+json";

/// A running `docker-registry serve` with filesystem storage in its own temp
/// dir. Dropping it kills and reaps exactly that child process.
#[derive(Debug)]
pub struct Registry {
    child: Option<Child>,
    addr: SocketAddr,
    dir: TempDir,
    auth: Option<(String, String)>,
}

impl Registry {
    /// Starts an anonymous registry on a free loopback port.
    pub fn start() -> Registry {
        Self::launch(None)
    }

    /// Starts a registry that requires HTTP basic auth (htpasswd, bcrypt)
    /// for `user`/`pass`, for tests of credential handling.
    pub fn start_with_auth(user: &str, pass: &str) -> Registry {
        assert!(
            !user.contains(':'),
            "htpasswd user names cannot contain ':'"
        );
        Self::launch(Some((user.to_string(), pass.to_string())))
    }

    fn launch(auth: Option<(String, String)>) -> Registry {
        assert!(
            Path::new(REGISTRY_BIN).exists(),
            "{REGISTRY_BIN} is missing: install Debian's docker-registry (scripts/test.sh does)"
        );
        let dir = tempfile::Builder::new()
            .prefix("criguard-registry-")
            .tempdir()
            .expect("creating the registry's temp dir");
        fs::create_dir(dir.path().join("storage")).expect("creating the storage dir");
        if let Some((user, pass)) = &auth {
            // Cost 5 keeps start-up quick; the registry accepts any bcrypt cost.
            let hash = bcrypt::hash(pass, 5).expect("bcrypt hashing the test password");
            fs::write(dir.path().join("htpasswd"), format!("{user}:{hash}\n"))
                .expect("writing htpasswd");
        }
        let mut registry = Registry {
            child: None,
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            dir,
            auth,
        };
        // The free port is found by binding and releasing it, so another
        // process may take it before the registry binds: then try another.
        let mut last_error = String::new();
        for _ in 0..5 {
            registry.addr = free_loopback_port();
            match registry.spawn() {
                Ok(()) => return registry,
                Err(e) => last_error = e,
            }
        }
        panic!("docker-registry did not start: {last_error}");
    }

    /// "127.0.0.1:PORT", the registry part of an image reference.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// "http://127.0.0.1:PORT" (plain HTTP: the registry has no TLS).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The PID of the running registry, for tests that check it is gone.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The user and password of [`Registry::start_with_auth`].
    pub fn credentials(&self) -> Option<(&str, &str)> {
        self.auth.as_ref().map(|(u, p)| (u.as_str(), p.as_str()))
    }

    /// Where the registry keeps its blobs and manifests (survives restarts).
    pub fn storage_dir(&self) -> PathBuf {
        self.dir.path().join("storage")
    }

    /// The registry's own log (stdout and stderr), for failure messages.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// Kills and reaps the registry; a no-op when it is not running. The
    /// port and storage are kept for [`Registry::restart`].
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Errors mean it already exited; wait still reaps it.
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops the registry and starts it again on the same port with the
    /// same storage, for tests of clients that see a registry go away.
    pub fn restart(&mut self) {
        self.stop();
        let mut last_error = String::new();
        // The old socket may linger briefly; the same port is the point here.
        for _ in 0..20 {
            match self.spawn() {
                Ok(()) => return,
                Err(e) => last_error = e,
            }
            thread::sleep(Duration::from_millis(250));
        }
        panic!(
            "docker-registry did not restart on {}: {last_error}",
            self.addr
        );
    }

    /// Sends a request to the registry, with the basic-auth credentials
    /// when it has any. `path` starts with `/v2/`.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> HttpResponse {
        let auth = self.basic_auth();
        let mut all: Vec<(&str, &str)> = headers.to_vec();
        if let Some(auth) = &auth {
            all.push(("Authorization", auth));
        }
        http::request(self.addr, method, path, &all, body)
            .unwrap_or_else(|e| panic!("{method} {} {path}: {e}", self.url()))
    }

    /// `GET path`, authenticated when the registry needs it.
    pub fn get(&self, path: &str) -> HttpResponse {
        self.request("GET", path, &[], &[])
    }

    /// `GET /v2/<repo>/manifests/<reference>` accepting every manifest type:
    /// the exact bytes and `Docker-Content-Digest` the registry serves.
    pub fn get_manifest(&self, repo: &str, reference: &str) -> HttpResponse {
        self.request(
            "GET",
            &format!("/v2/{repo}/manifests/{reference}"),
            &[("Accept", MANIFEST_ACCEPT)],
            &[],
        )
    }

    /// The value for an `Authorization` header, when the registry has auth.
    pub fn basic_auth(&self) -> Option<String> {
        self.auth.as_ref().map(|(u, p)| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
            )
        })
    }

    fn spawn(&mut self) -> Result<(), String> {
        let config = self.dir.path().join("config.yml");
        fs::write(&config, self.config_yaml()).map_err(|e| format!("writing config: {e}"))?;
        let log_path = self.dir.path().join("registry.log");
        let log = File::create(&log_path).map_err(|e| format!("creating log: {e}"))?;
        let log2 = log.try_clone().map_err(|e| format!("cloning log: {e}"))?;
        let mut cmd = Command::new(REGISTRY_BIN);
        cmd.arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2);
        // REGISTRY_* variables override the config file: none may leak in.
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("REGISTRY_") {
                cmd.env_remove(name);
            }
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot run {REGISTRY_BIN}: {e}"))?;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
                return Err(format!(
                    "docker-registry exited ({status}) on {}:\n{}",
                    self.addr,
                    self.log()
                ));
            }
            // Anonymous: 200; with auth: 401 before credentials. Either way
            // the registry is serving the API.
            // The identity header tells our registry from another process
            // that grabbed the same port between our probe and its bind.
            if let Ok(resp) = http::request(self.addr, "GET", "/v2/", &[], &[])
                && (resp.status == 200 || (self.auth.is_some() && resp.status == 401))
                && resp.header(IDENTITY_HEADER) == Some(self.identity().as_str())
            {
                self.child = Some(child);
                return Ok(());
            }
            if Instant::now() >= deadline {
                let _ = wait_with_deadline(&mut child, Duration::ZERO);
                return Err(format!(
                    "docker-registry on {} did not answer GET /v2/ within 30 s:\n{}",
                    self.addr,
                    self.log()
                ));
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Unique per registry (its temp dir), sent back on every response.
    fn identity(&self) -> String {
        self.dir.path().display().to_string()
    }

    fn config_yaml(&self) -> String {
        let storage = self.storage_dir();
        let mut yaml = format!(
            "version: 0.1\n\
             log:\n  level: warn\n  accesslog:\n    disabled: true\n\
             storage:\n  filesystem:\n    rootdirectory: {storage:?}\n  delete:\n    enabled: true\n  \
             maintenance:\n    uploadpurging:\n      enabled: false\n\
             http:\n  addr: {addr}\n  headers:\n    {IDENTITY_HEADER}: [{identity:?}]\n",
            addr = self.addr,
            identity = self.identity(),
        );
        if self.auth.is_some() {
            let htpasswd = self.dir.path().join("htpasswd");
            yaml.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: criguard-test\n    path: {htpasswd:?}\n"
            ));
        }
        yaml
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
    }
}

pub(crate) fn free_loopback_port() -> SocketAddr {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("binding 127.0.0.1:0");
    listener.local_addr().expect("local address of 127.0.0.1:0")
}
