//! What the benchmark drivers (`bench_verify`, `bench_serve`, run by
//! `bench/verify.sh` and `bench/serve.sh`) share beyond the test harness:
//! the machine facts their reports print beside the figures, and the raw
//! byte relay that shows the floor of a proxy hop.

pub mod relay;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// The first line `program ARG` prints, e.g. "skopeo version 1.18.0".
pub fn version(program: &Path, arg: &str) -> String {
    let out = criguard_testutil::run_with_timeout(
        Command::new(program).arg(arg),
        Duration::from_secs(60),
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
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".to_owned())
}
