#!/usr/bin/env bash
# Shows criguard: the policy engine on the bundled example policy, then
# `criguard keygen`, `sign` and `verify` against a real registry on
# 127.0.0.1 (an allowed image, an unsigned one, and two kinds of tampering),
# then the node: containerd with `criguard serve` in front of it, a signed
# pull allowed and unsigned ones refused with SignatureValidationFailed.
# Exits non-zero if any verdict is not the expected one.
#
# Usage: scripts/demo.sh
# Needs what scripts/test.sh installs: cargo, Debian's docker-registry and
# containerd (run as root: containerd needs it), and
# the peer tools (scripts/fetch-peer-tools.sh, run here too; skopeo pushes
# the demo images). Uses loopback only and reads no stdin; the processes it
# starts are stopped by PID when it exits, however it exits.
set -euo pipefail
cd "$(dirname "$0")/.."
target=${CARGO_TARGET_DIR:-$PWD/target}

need() {
    echo "error: $1 is missing: run scripts/test.sh first (it installs it)" >&2
    exit 1
}
# scripts/test.sh installs Rust with rustup when there is none; a new shell
# may not have it on PATH yet.
if ! command -v cargo >/dev/null && [ -f "$HOME/.cargo/env" ]; then
    # shellcheck disable=SC1091
    . "$HOME/.cargo/env"
fi
command -v cargo >/dev/null || need cargo

cargo build -q --release -p criguard
criguard=$target/release/criguard

run() { echo; echo "\$ criguard $*"; "$criguard" "$@" || echo "(exit status $?)"; }

echo "=== The policy engine on examples/policy.json"
run policy lint examples/policy.json
run policy lint examples/broken-policy.json
run policy explain --policy examples/policy.json registry.example.com/platform/api:1.4
run policy explain --policy examples/policy.json registry.example.com/platform/debug-tools:1.0
run policy explain --policy examples/policy.json --output json busybox
run policy explain --policy examples/policy.json quay.io/someone/else:latest

echo
echo "=== Signing and verifying in a local registry"
[ -x /usr/bin/docker-registry ] || need /usr/bin/docker-registry
[ -x /usr/bin/containerd ] || need /usr/bin/containerd
CRIGUARD_PEER_TOOLS=${CRIGUARD_PEER_TOOLS:-$PWD/target/peer-tools}
export CRIGUARD_PEER_TOOLS
scripts/fetch-peer-tools.sh "$CRIGUARD_PEER_TOOLS"
# The registry half is a Rust program (scripts/demo, package criguard-demo)
# so that it uses the test harness (crates/testutil) itself: the registry,
# the image pushes and the set-up are the ones the interoperability tests
# use.
cargo build -q --release -p criguard-demo

# Everything the demo program creates goes under $work, removed on exit. It
# runs in a session (and process group) of its own whose id is its PID, so
# the EXIT trap can stop it and the registry it started, and only them, even
# if the program itself is killed before it can stop the registry.
work=$(mktemp -d "${TMPDIR:-/tmp}/criguard-demo.XXXXXX")
demo_pid=
cleanup() {
    # The group outlives the program only if the program was killed (or
    # the script was): then TERM it, give it 5 s, and KILL what is left.
    if [ -n "$demo_pid" ] && kill -0 -- "-$demo_pid" 2>/dev/null; then
        kill -TERM -- "-$demo_pid" 2>/dev/null || true
        for _ in $(seq 50); do
            kill -0 -- "-$demo_pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL -- "-$demo_pid" 2>/dev/null || true
        wait "$demo_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

TMPDIR=$work setsid "$target/release/criguard-demo" "$criguard" </dev/null &
demo_pid=$!
status=0
wait "$demo_pid" || status=$?
exit "$status"
