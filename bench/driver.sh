# Sourced by the bench scripts: builds criguard and a driver (a binary of
# the criguard-bench package, bench/src/bin/) in release mode and runs the
# driver, in a session (and process group) of its own whose id is its PID,
# so that the EXIT trap can stop it and everything it started (registry,
# containerd, criguard, the tools it times), and only them, even if the
# driver is killed before it can clean up. Everything it creates goes
# under a temporary directory, removed on exit; the name is short, because
# containerd's socket lives under it.
#
# Usage: run_driver DRIVER OUT_DIR [ARGS...]   (from the repository root,
# with $target set; CRIGUARD_BIN=PATH times another criguard binary)

run_driver() {
    local driver=$1 out=$2
    shift 2
    CRIGUARD_PEER_TOOLS=${CRIGUARD_PEER_TOOLS:-$PWD/target/peer-tools}
    export CRIGUARD_PEER_TOOLS
    scripts/fetch-peer-tools.sh "$CRIGUARD_PEER_TOOLS"
    cargo build -q --release -p criguard
    cargo build -q --release -p criguard-bench --bin "$driver"

    echo "machine: $(nproc) CPUs, $(lscpu | sed -n 's/^Model name: *//p'), $(uname -sr)"

    work=$(mktemp -d "${TMPDIR:-/tmp}/cgb.XXXXXX")
    bench_pid=
    trap driver_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM

    TMPDIR=$work setsid "$target/release/$driver" \
        "${CRIGUARD_BIN:-$target/release/criguard}" "$out" "$@" </dev/null &
    bench_pid=$!
    local status=0
    wait "$bench_pid" || status=$?
    return "$status"
}

driver_cleanup() {
    if [ -n "$bench_pid" ] && kill -0 -- "-$bench_pid" 2>/dev/null; then
        kill -TERM -- "-$bench_pid" 2>/dev/null || true
        for _ in $(seq 50); do
            kill -0 -- "-$bench_pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL -- "-$bench_pid" 2>/dev/null || true
        wait "$bench_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
