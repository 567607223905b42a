#!/usr/bin/env bash
# Installs grpcio (gRPC's C core, which Python, Ruby and PHP clients use) and
# grpcio-tools from PyPI into a virtualenv: the tests check that `criguard
# serve` answers such a client as containerd does, not only grpc-go ones
# (crates/cli/tests/serve_grpcio.rs, crates/testutil/src/python_grpc.rs).
#
# Usage: scripts/fetch-python-grpc.sh [DEST]   (default: target/python-grpc)
# Writes a virtualenv at DEST in which `DEST/bin/python` imports grpc and
# grpc_tools, and DEST/versions.txt (`pip freeze`). Idempotent: does nothing
# when that virtualenv exists with the pinned version. Needs Debian's
# python3-venv (scripts/test.sh installs it).
set -euo pipefail

# Known releases, so a test run is repeatable; raise them to test a newer C
# core (what it sends as `:authority` over unix sockets changed in 1.57).
# grpcio-tools (protoc and the stub generator) is released less often.
GRPCIO_VERSION=1.85.3
GRPCIO_TOOLS_VERSION=1.85.1

repo=$(cd "$(dirname "$0")/.." && pwd)
dest=${1:-$repo/target/python-grpc}
mkdir -p "$(dirname "$dest")"
dest=$(cd "$(dirname "$dest")" && pwd)/$(basename "$dest")

ready() {
    [ -x "$dest/bin/python" ] && [ -s "$dest/versions.txt" ] &&
        "$dest/bin/python" -c "import grpc, grpc_tools.protoc; assert grpc.__version__ == '$GRPCIO_VERSION'" \
            >/dev/null 2>&1
}
if ready; then
    exit 0
fi
# Test binaries run in parallel and each may call this script: one installs,
# the others wait for it and then find the virtualenv in place.
exec 9>"$dest.lock"
flock 9
if ready; then
    exit 0
fi

log=$dest.log
fail() {
    echo "error: fetch-python-grpc: $1 (log: $log)" >&2
    tail -n 30 "$log" >&2 || true
    exit 1
}
python3 -m venv --clear "$dest" >"$log" 2>&1 ||
    fail "python3 -m venv failed (is python3-venv installed?)"
# No user site-packages, no pip self-check: only what is asked for.
PYTHONNOUSERSITE=1 "$dest/bin/pip" install --disable-pip-version-check --no-input -q \
    "grpcio==$GRPCIO_VERSION" "grpcio-tools==$GRPCIO_TOOLS_VERSION" >>"$log" 2>&1 ||
    fail "pip install grpcio==$GRPCIO_VERSION grpcio-tools==$GRPCIO_TOOLS_VERSION failed"
"$dest/bin/pip" freeze --disable-pip-version-check >"$dest/versions.txt" 2>>"$log" ||
    fail "pip freeze failed"
ready || fail "grpc and grpc_tools do not import in $dest"
