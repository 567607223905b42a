#!/usr/bin/env bash
# What `criguard serve` adds in front of a real containerd, side by side in
# one run against containerd alone: pass-through latency (ImageStatus,
# ListImages), throughput under concurrent clients and the daemon's memory,
# a cold and a warm cosign-signed pull, CreateContainer's check, and beside
# the cold pull containers/image's own cost of the same check (skopeo 1.18,
# `copy --policy` minus `copy --insecure-policy`). Prints a markdown table
# with the issue's goals beside the figures; asserts nothing about time.
#
# Usage: bench/serve.sh [--calls N] [--load-calls N] [--clients N]
#                       [--pulls N] [--creates N] [--json] [--passthrough-only]
#                       [--scale-pulls N [--scale-images M] [--scale-rounds R]]
#                       [--decisions N]
#   (defaults: 5000 calls, 100000 load calls, 64 clients, 10 pulls, 1000 creates;
#   --scale-pulls 200 --decisions 1000 add the cold pulls at scale and the
#   memory after 1,000 distinct decisions; every goal is printed "met"/"not met")
# Output: ${CARGO_TARGET_DIR:-target}/bench/serve/{summary.md,serve.json}
# CRIGUARD_BIN=PATH times another criguard binary in place of this tree's
# release build.
# Needs what scripts/test.sh installs (cargo, docker-registry, containerd,
# the peer tools, fetched here too). Loopback only, no stdin; the processes
# it starts are stopped by PID when it exits, however it exits. The set-up
# and the driver are bench/src/bin/bench_serve.rs, on the test harness.
set -euo pipefail
cd "$(dirname "$0")/.."
target=${CARGO_TARGET_DIR:-$PWD/target}
out=$target/bench/serve

# scripts/test.sh installs Rust with rustup when there is none; a new shell
# may not have it on PATH yet.
if ! command -v cargo >/dev/null && [ -f "$HOME/.cargo/env" ]; then
    # shellcheck disable=SC1091
    . "$HOME/.cargo/env"
fi
missing=()
command -v cargo >/dev/null || missing+=(cargo)
[ -x /usr/bin/docker-registry ] || missing+=(/usr/bin/docker-registry)
[ -x /usr/bin/containerd ] || missing+=(/usr/bin/containerd)
if [ ${#missing[@]} -gt 0 ]; then
    echo "error: ${missing[*]} missing: run scripts/test.sh first (it installs them)" >&2
    exit 1
fi

# shellcheck source=bench/driver.sh
. bench/driver.sh
status=0
run_driver bench_serve "$out" "$@" || status=$?
exit "$status"
