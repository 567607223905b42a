//! Running peer tools with a hard time-out, so that a tool that waits for the
//! network or a terminal fails the test instead of hanging the whole run.

use std::io::Read;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// Long enough for a cold skopeo or cosign start on a loaded 2-core machine,
/// short enough that a hung tool still fails the run in reasonable time.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// Runs `cmd` with no stdin and captured output, killing it (by its own PID,
/// nothing else) after `timeout`. Panics on time-out or when it cannot start,
/// with the command and whatever it printed: both are test failures.
pub fn run_with_timeout(cmd: &mut Command, timeout: Duration) -> Output {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let status = wait_with_deadline(&mut child, timeout);
    let stdout = stdout.join().expect("stdout reader thread panicked");
    let stderr = stderr.join().expect("stderr reader thread panicked");
    match status {
        Some(status) => Output {
            status,
            stdout,
            stderr,
        },
        None => panic!(
            "{cmd:?} did not finish within {timeout:?} and was killed\nstdout:\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&stdout),
            String::from_utf8_lossy(&stderr)
        ),
    }
}

/// Like [`run_with_timeout`] with [`DEFAULT_TIMEOUT`], and panics unless the
/// command exits 0. Returns its stdout.
pub fn run_ok(cmd: &mut Command) -> Vec<u8> {
    let out = run_with_timeout(cmd, DEFAULT_TIMEOUT);
    assert_success(cmd, &out);
    out.stdout
}

/// Panics with the command and its output unless it exited 0.
pub fn assert_success(cmd: &Command, out: &Output) {
    assert!(
        out.status.success(),
        "{cmd:?} failed ({})\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Waits for `child` until `timeout`; on time-out kills and reaps it and
/// returns `None`. Reaping matters: an unreaped child stays a zombie PID.
pub(crate) fn wait_with_deadline(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) => {}
            Err(e) => panic!("waiting for child {}: {e}", child.id()),
        }
        if Instant::now() >= deadline {
            // The child may have exited just now; kill then fails harmlessly.
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// A finished command's status and both outputs, for assertion messages.
pub fn output_text(out: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Sends SIGTERM to `child` (its PID, nothing else) and waits up to
/// `timeout` for it to exit; then kills and reaps it and returns `None`.
/// The shell's built-in kill does the sending: procps's /bin/kill is not
/// essential in Debian, and std can only send SIGKILL. A failure to send
/// means it already exited; the wait reaps it.
pub(crate) fn terminate(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let _ = std::process::Command::new("/bin/sh")
        .args(["-c", "kill -TERM \"$1\"", "sh"])
        .arg(child.id().to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    wait_with_deadline(child, timeout)
}

fn drain<R: Read + Send + 'static>(pipe: Option<R>) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut pipe) = pipe {
            // A read error only truncates what the failure message shows.
            let _ = pipe.read_to_end(&mut buf);
        }
        buf
    })
}
