//! Real GnuPG keys and signatures for the "simple signing" tests: keys made
//! by `gpg` in a private GNUPGHOME, served by a `gpg-agent` we own.
//!
//! gpg 2.2's `gpg-agent --daemon` forks even with `--no-detach`, so its PID
//! would not be ours to kill and reap. The agent runs `--supervised`
//! instead, in the foreground, on a listening socket we bind and hand it as
//! fd 3 (systemd's convention): the child we spawn is the agent itself.
//! containers/image's gpgme runs plain `gpg` with `GNUPGHOME`, which finds
//! that socket, so skopeo signs through the same agent.

use std::fs::{self, File, Permissions};
use std::os::fd::OwnedFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use tempfile::TempDir;

use crate::process::{
    DEFAULT_TIMEOUT, assert_success, run_ok, run_with_timeout, wait_with_deadline,
};

/// A temporary GNUPGHOME with its own `gpg-agent`. Dropping it kills and
/// reaps exactly that agent and deletes the home.
#[derive(Debug)]
pub struct GpgHome {
    agent: Option<Child>,
    /// Set when gpg puts the sockets under /run/user/UID instead of the
    /// home, which must then be removed again.
    created_socket_dir: bool,
    dir: TempDir,
}

impl GpgHome {
    /// A fresh home (mode 0700) whose agent is answering. The agent never
    /// caches passphrases, so a protected key stays protected for every
    /// later command, and allows loopback pinentry, so passphrases come
    /// from `--passphrase` and no pinentry window can open.
    pub fn new() -> GpgHome {
        let dir = tempfile::Builder::new()
            .prefix("criguard-gnupg-")
            .tempdir()
            .expect("creating a temp GNUPGHOME");
        fs::set_permissions(dir.path(), Permissions::from_mode(0o700))
            .expect("making GNUPGHOME private");
        let mut home = GpgHome {
            agent: None,
            created_socket_dir: false,
            dir,
        };
        home.start_agent();
        home
    }

    /// The GNUPGHOME directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The agent's PID, for tests that check Drop stops it.
    pub fn agent_pid(&self) -> u32 {
        self.agent
            .as_ref()
            .map(Child::id)
            .expect("the agent runs for the life of a GpgHome")
    }

    /// A `gpg` command for this home: `--batch --no-tty`, `--no-autostart`
    /// (it must use our agent, never start its own) and `--pinentry-mode
    /// loopback` (a missing passphrase fails at once instead of prompting).
    /// Run it with [`run_with_timeout`] or [`run_ok`].
    pub fn gpg(&self) -> Command {
        let mut cmd = Command::new("gpg");
        cmd.env("GNUPGHOME", self.path())
            .arg("--homedir")
            .arg(self.path())
            .args([
                "--batch",
                "--no-tty",
                "--no-autostart",
                "--pinentry-mode",
                "loopback",
            ]);
        cmd
    }

    /// `--quick-generate-key UID ALGO USAGE EXPIRE` without a passphrase;
    /// returns the primary key's fingerprint (40 uppercase hex). `usage` is
    /// gpg's: "sign", "cert" (certify-only primary, no subkey), "sign,cert",
    /// "default"...; `expire` e.g. "never", "1d".
    pub fn generate_key(&self, uid: &str, algo: &str, usage: &str, expire: &str) -> String {
        self.quick_generate(uid, algo, usage, expire, "", None)
    }

    /// A signing key protected by `passphrase`.
    pub fn generate_key_with_passphrase(&self, uid: &str, algo: &str, passphrase: &str) -> String {
        assert!(
            !passphrase.is_empty(),
            "an empty passphrase means no protection"
        );
        self.quick_generate(uid, algo, "sign", "never", passphrase, None)
    }

    /// An ed25519 signing key that expired nine days ago: made with
    /// `--faked-system-time` ten days back and a one-day expiry, so its
    /// self-signatures are valid and gpg imports it, shown as expired. It
    /// could sign at [`GpgHome::expired_key_valid_at`].
    pub fn generate_expired_key(&self, uid: &str) -> String {
        self.generate_key_at(uid, "ed25519", "sign", "1d", unix_now() - 10 * 86_400)
    }

    /// A moment (seconds since the epoch) at which a key from
    /// [`GpgHome::generate_expired_key`] was still valid, for
    /// [`GpgHome::sign_at`].
    pub fn expired_key_valid_at() -> u64 {
        unix_now() - 10 * 86_400 + 3_600
    }

    /// [`GpgHome::generate_key`] with the clock set to `time` (seconds since
    /// the epoch), so that the key can sign in the past.
    pub fn generate_key_at(
        &self,
        uid: &str,
        algo: &str,
        usage: &str,
        expire: &str,
        time: u64,
    ) -> String {
        self.quick_generate(uid, algo, usage, expire, "", Some(time))
    }

    /// `--quick-add-key PRIMARY ALGO USAGE EXPIRE` (primary unprotected);
    /// returns the new subkey's fingerprint.
    pub fn add_subkey(&self, primary: &str, algo: &str, usage: &str, expire: &str) -> String {
        let mut cmd = self.gpg();
        cmd.args(["--status-fd", "1", "--passphrase", ""]).args([
            "--quick-add-key",
            primary,
            algo,
            usage,
            expire,
        ]);
        let status = run_ok(&mut cmd);
        created_fingerprint(&cmd, &status, "S")
    }

    /// Revokes the whole key by importing the revocation certificate gpg
    /// wrote at generation (`openpgp-revocs.d/FPR.rev`), with the colon
    /// that guards its armor removed. No reason is given ("0").
    pub fn revoke_key(&self, primary: &str) {
        let cert_path = self
            .path()
            .join("openpgp-revocs.d")
            .join(format!("{}.rev", primary.to_ascii_uppercase()));
        let cert = fs::read_to_string(&cert_path).unwrap_or_else(|e| {
            panic!(
                "no revocation certificate for {primary} at {}: {e} (only keys made in this home have one)",
                cert_path.display()
            )
        });
        let armored: String = cert
            .lines()
            .map(|l| {
                l.strip_prefix(":-----")
                    .map_or(l.to_string(), |r| format!("-----{r}"))
            })
            .collect::<Vec<_>>()
            .join("\n");
        let scratch = self.scratch();
        let file = scratch.path().join("revocation.asc");
        fs::write(&file, armored).expect("writing the revocation certificate");
        run_ok(self.gpg().arg("--import").arg(&file));
        self.assert_validity(primary, "pub", primary, 'r');
    }

    /// Revokes one subkey through `--edit-key` (gpg 2.2 has no quick
    /// command for it): `key FPR`, `revkey`, reason 0, empty text, `save`,
    /// answered from a `--command-file` since the run has no stdin.
    pub fn revoke_subkey(&self, primary: &str, subkey: &str) {
        let scratch = self.scratch();
        let commands = scratch.path().join("commands");
        fs::write(
            &commands,
            format!("key {subkey}\nrevkey\ny\n0\n\ny\nsave\n"),
        )
        .expect("writing the edit-key commands");
        let mut cmd = self.gpg();
        cmd.args(["--status-fd", "2", "--passphrase", "", "--command-file"])
            .arg(&commands)
            .args(["--edit-key", primary]);
        run_ok(&mut cmd);
        self.assert_validity(primary, "sub", subkey, 'r');
    }

    /// `--export` of each key in turn, concatenated in the order given (one
    /// `gpg --export A B` writes keyring order instead). With `armor`, the
    /// whole keyring is one "PGP PUBLIC KEY BLOCK".
    pub fn export_public(&self, fingerprints: &[&str], armor: bool) -> Vec<u8> {
        let mut keyring = Vec::new();
        for fpr in fingerprints {
            let key = run_ok(self.gpg().args(["--export", fpr]));
            assert!(!key.is_empty(), "gpg exported nothing for {fpr}");
            keyring.extend(key);
        }
        if armor {
            armor_block("PGP PUBLIC KEY BLOCK", &keyring)
        } else {
            keyring
        }
    }

    /// `--export-secret-keys` of one key and its subkeys. gpg asks the agent
    /// for the passphrase of a protected key even to export it (the export
    /// stays protected with it), hence `passphrase`.
    pub fn export_secret(
        &self,
        fingerprint: &str,
        armor: bool,
        passphrase: Option<&str>,
    ) -> Vec<u8> {
        let mut cmd = self.gpg();
        cmd.args(["--passphrase", passphrase.unwrap_or("")]);
        if armor {
            cmd.arg("--armor");
        }
        cmd.args(["--export-secret-keys", fingerprint]);
        let out = run_with_timeout(&mut cmd, DEFAULT_TIMEOUT);
        assert_success(&cmd, &out);
        assert!(
            !out.stdout.is_empty(),
            "gpg exported no secret key for {fingerprint} (wrong or missing passphrase?)\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// `gpg --sign` of `payload`: an opaque, compressed, binary signed
    /// message, as containers/image makes. `signer` is a fingerprint; end it
    /// with '!' to force that exact (sub)key.
    pub fn sign(&self, signer: &str, payload: &[u8]) -> Vec<u8> {
        self.sign_inner(signer, payload, &[])
    }

    /// [`GpgHome::sign`] with `--digest-algo` ("SHA1", "MD5", "SHA512"...);
    /// weak algorithms are allowed, since rejecting them is under test.
    pub fn sign_with_digest(&self, signer: &str, payload: &[u8], digest: &str) -> Vec<u8> {
        self.sign_inner(
            signer,
            payload,
            &["--allow-weak-digest-algos", "--digest-algo", digest],
        )
    }

    /// [`GpgHome::sign`] with a protected key's passphrase.
    pub fn sign_with_passphrase(&self, signer: &str, payload: &[u8], passphrase: &str) -> Vec<u8> {
        self.sign_inner(signer, payload, &["--passphrase", passphrase])
    }

    /// [`GpgHome::sign`] with the clock set to `time` (seconds since the
    /// epoch), and, when `expire` is given ("1d"...), a signature that
    /// expires that long after it.
    pub fn sign_at(
        &self,
        signer: &str,
        payload: &[u8],
        time: u64,
        expire: Option<&str>,
    ) -> Vec<u8> {
        let time = time.to_string();
        let mut options = vec!["--faked-system-time", &time];
        if let Some(expire) = expire {
            options.extend(["--default-sig-expire", expire]);
        }
        self.sign_inner(signer, payload, &options)
    }

    /// Signs with `options` added to gpg's command line; an unprotected key
    /// unless they pass `--passphrase`.
    fn sign_inner(&self, signer: &str, payload: &[u8], options: &[&str]) -> Vec<u8> {
        let scratch = self.scratch();
        let input = scratch.path().join("payload");
        let output = scratch.path().join("signed");
        fs::write(&input, payload).expect("writing the payload to sign");
        let mut cmd = self.gpg();
        if !options.contains(&"--passphrase") {
            cmd.args(["--passphrase", ""]);
        }
        cmd.args(options);
        // gpgme signs from memory: no file name in the literal packet.
        cmd.args([
            "--set-filename",
            "",
            "--local-user",
            signer,
            "--sign",
            "--output",
        ])
        .arg(&output)
        .arg(&input);
        run_ok(&mut cmd);
        fs::read(&output).expect("gpg --sign wrote no output")
    }

    fn quick_generate(
        &self,
        uid: &str,
        algo: &str,
        usage: &str,
        expire: &str,
        passphrase: &str,
        faked_time: Option<u64>,
    ) -> String {
        let mut cmd = self.gpg();
        // --yes: a second key for the same user ID is fine in tests.
        cmd.args(["--status-fd", "1", "--yes", "--passphrase", passphrase]);
        if let Some(time) = faked_time {
            cmd.args(["--faked-system-time", &time.to_string()]);
        }
        cmd.args(["--quick-generate-key", uid, algo, usage, expire]);
        let status = run_ok(&mut cmd);
        created_fingerprint(&cmd, &status, "P")
    }

    /// Panics unless `--list-keys --with-colons PRIMARY` shows the `record`
    /// ("pub" or "sub") with fingerprint `fpr` with `validity`.
    fn assert_validity(&self, primary: &str, record: &str, fpr: &str, validity: char) {
        let listing = run_ok(self.gpg().args(["--list-keys", "--with-colons", primary]));
        let listing = String::from_utf8_lossy(&listing);
        let found = colon_validities(&listing)
            .into_iter()
            .find(|(r, f, _)| r == record && f.eq_ignore_ascii_case(fpr));
        match found {
            Some((_, _, v)) if v == validity => {}
            _ => panic!("{record} {fpr} is not '{validity}' after the change:\n{listing}"),
        }
    }

    fn scratch(&self) -> TempDir {
        tempfile::Builder::new()
            .prefix("criguard-gpg-")
            .tempdir()
            .expect("creating a scratch dir for gpg")
    }

    fn socket_path(&self) -> PathBuf {
        let out = run_ok(
            Command::new("gpgconf")
                .env("GNUPGHOME", self.path())
                .arg("--homedir")
                .arg(self.path())
                .args(["--list-dirs", "agent-socket"]),
        );
        PathBuf::from(String::from_utf8_lossy(&out).trim())
    }

    fn start_agent(&mut self) {
        let socket = self.socket_path();
        let socket_dir = socket.parent().expect("the agent socket has a directory");
        let in_home = fs::canonicalize(socket_dir).ok() == fs::canonicalize(self.path()).ok();
        if !in_home {
            // /run/user/UID exists: gpg wants the sockets there.
            run_ok(
                Command::new("gpgconf")
                    .arg("--homedir")
                    .arg(self.path())
                    .arg("--create-socketdir"),
            );
            self.created_socket_dir = true;
        }
        let listener = UnixListener::bind(&socket)
            .unwrap_or_else(|e| panic!("binding the agent socket {}: {e}", socket.display()));
        let log_path = self.path().join("agent.log");
        let log = File::create(&log_path).expect("creating the agent log");
        let log2 = log.try_clone().expect("cloning the agent log");
        // The socket arrives as stdin; the shell moves it to fd 3 and execs,
        // so the PID we hold is the agent's. A supervised agent leaves
        // SIGPIPE alone (systemd ignores it for services), and Rust resets
        // it to "terminate" in children: without the trap, a client that
        // hangs up mid-command (a missing passphrase) kills the agent.
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(r#"trap '' PIPE; exec gpg-agent "$@" 3<&0 0</dev/null"#)
            .arg("gpg-agent")
            .arg("--homedir")
            .arg(self.path())
            .args([
                "--supervised",
                "--allow-loopback-pinentry",
                "--disable-scdaemon",
                "--default-cache-ttl",
                "0",
                "--max-cache-ttl",
                "0",
            ])
            .env("GNUPGHOME", self.path())
            .env_remove("LISTEN_FDS")
            .env_remove("LISTEN_PID")
            .env_remove("LISTEN_FDNAMES")
            .stdin(Stdio::from(OwnedFd::from(listener)))
            .stdout(log)
            .stderr(log2);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start gpg-agent: {e}"));
        let pid = child.id();
        self.agent = Some(child);
        // The socket exists already; wait until the agent answers on it, and
        // check it is ours.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let agent = self.agent.as_mut().expect("agent just spawned");
            if let Ok(Some(status)) = agent.try_wait() {
                self.agent = None;
                panic!(
                    "gpg-agent exited ({status}) at start:\n{}",
                    fs::read_to_string(&log_path).unwrap_or_default()
                );
            }
            let mut probe = Command::new("gpg-connect-agent");
            probe
                .env("GNUPGHOME", self.path())
                .arg("--homedir")
                .arg(self.path())
                .args(["--no-autostart", "getinfo pid", "/bye"]);
            let out = run_with_timeout(&mut probe, Duration::from_secs(10));
            if out.status.success() && agent_pid_reply(&out) == Some(pid) {
                return;
            }
            if Instant::now() >= deadline {
                panic!(
                    "gpg-agent {pid} did not answer within 30 s: {}\nlog:\n{}",
                    String::from_utf8_lossy(&out.stderr),
                    fs::read_to_string(&log_path).unwrap_or_default()
                );
            }
            thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Default for GpgHome {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for GpgHome {
    fn drop(&mut self) {
        if let Some(mut agent) = self.agent.take() {
            // Errors mean it already exited; waiting reaps it either way.
            let _ = agent.kill();
            let _ = wait_with_deadline(&mut agent, Duration::from_secs(10));
        }
        if self.created_socket_dir {
            let mut cmd = Command::new("gpgconf");
            cmd.arg("--homedir")
                .arg(self.path())
                .arg("--remove-socketdir");
            // Not asserted: Drop may run while a failed test unwinds.
            let _ = run_with_timeout(&mut cmd, Duration::from_secs(30));
        }
    }
}

/// `(record, fingerprint, validity)` of each pub/sub in a `--with-colons`
/// listing, e.g. `("sub", "ABC...", 'r')`: the validity is field 2 and the
/// fingerprint is on the `fpr` line after the key's.
pub fn colon_validities(listing: &str) -> Vec<(String, String, char)> {
    let mut keys = Vec::new();
    let mut pending: Option<(String, char)> = None;
    for line in listing.lines() {
        let fields: Vec<&str> = line.split(':').collect();
        match fields[0] {
            "pub" | "sub" | "sec" | "ssb" => {
                let validity = fields.get(1).and_then(|v| v.chars().next()).unwrap_or('-');
                pending = Some((fields[0].to_string(), validity));
            }
            "fpr" => {
                if let Some((record, validity)) = pending.take() {
                    let fpr = fields.get(9).copied().unwrap_or_default().to_string();
                    keys.push((record, fpr, validity));
                }
            }
            _ => {}
        }
    }
    keys
}

/// The fingerprint in `[GNUPG:] KEY_CREATED KIND FPR` (KIND P, S or B).
fn created_fingerprint(cmd: &Command, status: &[u8], kind: &str) -> String {
    let status = String::from_utf8_lossy(status);
    status
        .lines()
        .find_map(|l| {
            let mut words = l.strip_prefix("[GNUPG:] KEY_CREATED ")?.split_whitespace();
            let k = words.next()?;
            (k == kind || k == "B").then(|| words.next()).flatten()
        })
        .map(str::to_string)
        .unwrap_or_else(|| panic!("{cmd:?} reported no KEY_CREATED {kind}:\n{status}"))
}

/// The PID in gpg-connect-agent's `D <pid>` reply to `getinfo pid`.
fn agent_pid_reply(out: &Output) -> Option<u32> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("D ")?.trim().parse().ok())
}

/// RFC 4880 ASCII armor of `data`, one block with its CRC-24.
fn armor_block(kind: &str, data: &[u8]) -> Vec<u8> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut text = format!("-----BEGIN {kind}-----\n\n");
    for chunk in data.chunks(48) {
        text.push_str(&b64.encode(chunk));
        text.push('\n');
    }
    let crc = crc24(data).to_be_bytes();
    text.push('=');
    text.push_str(&b64.encode(&crc[1..]));
    text.push_str(&format!("\n-----END {kind}-----\n"));
    text.into_bytes()
}

fn crc24(data: &[u8]) -> u32 {
    let mut crc: u32 = 0x00B7_04CE;
    for &byte in data {
        crc ^= u32::from(byte) << 16;
        for _ in 0..8 {
            crc <<= 1;
            if crc & 0x0100_0000 != 0 {
                crc ^= 0x0186_4CFB;
            }
        }
    }
    crc & 0x00FF_FFFF
}

/// Seconds since the epoch, now.
fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_secs()
}
