//! Images a runtime can really run: one tiny C program, compiled with
//! `gcc -static` when a test first asks for it, so the images need no libc,
//! shell or loader of their own and stay a few hundred KiB. The same
//! program is the pod sandbox's pause process and every test container.
//!
//! Building it here rather than pulling `registry.k8s.io/pause` keeps the
//! tests off the internet and lets them decide what each container prints.

use std::fs;
use std::process::Command;
use std::sync::OnceLock;

use crate::image::{ImageBuilder, OciImage};
use crate::process::run_ok;

/// Where the program sits in every image built here.
pub const PROGRAM_PATH: &str = "/criguard-test-program";

/// The program. With no arguments it is a pause process: it waits until
/// SIGTERM or SIGINT and exits 0 (a container's PID 1 has no default signal
/// handlers, so without its own it would ignore StopContainer's SIGTERM
/// and cost every stop its whole grace period). With arguments it first
/// prints each on a line of its own; an argument `@PATH` prints the file
/// at PATH instead (or `cannot open PATH`), so a test can show what a
/// container's root file system, or a volume mounted into it, contains.
const SOURCE: &str = r#"
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

static void stop(int sig) { (void)sig; _exit(0); }

static void put(const char *s, size_t n) {
    while (n > 0) {
        ssize_t w = write(1, s, n);
        if (w <= 0) return;
        s += w;
        n -= (size_t)w;
    }
}

static void line(const char *s) { put(s, strlen(s)); put("\n", 1); }

int main(int argc, char **argv) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = stop;
    sigaction(SIGTERM, &sa, 0);
    sigaction(SIGINT, &sa, 0);
    for (int i = 1; i < argc; i++) {
        if (argv[i][0] != '@') { line(argv[i]); continue; }
        int fd = open(argv[i] + 1, O_RDONLY);
        if (fd < 0) { put("cannot open ", 12); line(argv[i] + 1); continue; }
        char buf[4096];
        ssize_t n;
        while ((n = read(fd, buf, sizeof buf)) > 0) put(buf, (size_t)n);
        close(fd);
        put("\n", 1);
    }
    for (;;) pause();
}
"#;

static PROGRAM: OnceLock<Vec<u8>> = OnceLock::new();

/// The program's bytes: a static, stripped x86-64 ELF executable, built
/// once per test process. Panics when `gcc -static` fails (it needs
/// `libc6-dev`, part of build-essential, which scripts/test.sh installs).
pub fn static_program() -> &'static [u8] {
    PROGRAM.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir for the test program");
        let source = dir.path().join("program.c");
        let binary = dir.path().join("program");
        fs::write(&source, SOURCE).expect("writing the test program's source");
        run_ok(
            Command::new("gcc")
                .args(["-static", "-Os", "-s", "-Wall", "-Werror", "-o"])
                .arg(&binary)
                .arg(&source),
        );
        let bytes = fs::read(&binary).expect("reading the compiled test program");
        assert!(
            bytes.starts_with(b"\x7fELF"),
            "gcc did not produce an ELF executable"
        );
        bytes
    })
}

/// A pause image for `sandbox_image`: the program alone, as its entrypoint.
pub fn pause_image() -> OciImage {
    ImageBuilder::new()
        .executable(&PROGRAM_PATH[1..], static_program())
        .entrypoint(&[PROGRAM_PATH])
        .build()
}

/// A container image whose file `/etc/criguard-test` holds `content` (so
/// images differ in every digest) and which, run as it is, prints that file
/// and waits for SIGTERM.
pub fn runnable_image(content: &str) -> OciImage {
    ImageBuilder::new()
        .executable(&PROGRAM_PATH[1..], static_program())
        .file("etc/criguard-test", content)
        .entrypoint(&[PROGRAM_PATH])
        .cmd(&["@/etc/criguard-test"])
        .build()
}
