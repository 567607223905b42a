#!/usr/bin/env bash
# Whole-process wall time of deciding one pull, side by side in one
# hyperfine run: `criguard verify` (release build), `cosign verify --key`
# (cosign 2.5) and `skopeo copy --policy` (skopeo 1.18, what CRI-O does on a
# pull), on the same cosign-signed image in a registry on 127.0.0.1. Prints
# hyperfine's table and criguard's mean time as a fraction of the faster
# peer's; exports hyperfine's markdown and JSON. Asserts nothing about time.
#
# Usage: bench/verify.sh [--runs N] [--warmup N]   (default: 30 runs, 3 warm-up)
# Output: ${CARGO_TARGET_DIR:-target}/bench/verify/{verify.md,verify.json,summary.md}
# CRIGUARD_BIN=PATH times another criguard binary (e.g. one built with other
# settings) in place of this tree's release build.
# Needs what scripts/test.sh installs (cargo, docker-registry, the peer tools,
# fetched here too) and hyperfine, which this script installs from Debian
# when missing. Loopback only, no stdin; the processes it starts are stopped
# by PID when it exits, however it exits. The set-up and the driver are
# bench/src/bin/bench_verify.rs, on the test harness.
set -euo pipefail
cd "$(dirname "$0")/.."
target=${CARGO_TARGET_DIR:-$PWD/target}
out=$target/bench/verify

# scripts/test.sh installs Rust with rustup when there is none; a new shell
# may not have it on PATH yet.
if ! command -v cargo >/dev/null && [ -f "$HOME/.cargo/env" ]; then
    # shellcheck disable=SC1091
    . "$HOME/.cargo/env"
fi
missing=()
command -v cargo >/dev/null || missing+=(cargo)
[ -x /usr/bin/docker-registry ] || missing+=(/usr/bin/docker-registry)
if [ ${#missing[@]} -gt 0 ]; then
    echo "error: ${missing[*]} missing: run scripts/test.sh first (it installs them)" >&2
    exit 1
fi
if ! command -v hyperfine >/dev/null; then
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q hyperfine </dev/null
fi

# shellcheck source=bench/driver.sh
. bench/driver.sh
status=0
run_driver bench_verify "$out" "$@" || status=$?
exit "$status"
