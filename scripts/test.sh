#!/usr/bin/env bash
# Runs every test criguard has, after installing what they need.
# Usage: scripts/test.sh   (as root on Debian 12; CI runs exactly this)
set -euo pipefail
cd "$(dirname "$0")/.."

# Tools from Debian that the build and the tests use.
packages=()
command -v cc >/dev/null || packages+=(build-essential)
command -v git >/dev/null || packages+=(git)
command -v curl >/dev/null || packages+=(curl ca-certificates)
# The test harness (crates/testutil): a real registry on 127.0.0.1, GPG for
# simple signing, bookworm's skopeo 1.9.3 (GPG; sigstore is disabled in it).
[ -x /usr/bin/docker-registry ] || packages+=(docker-registry)
{ command -v gpg && command -v gpg-agent && command -v gpgconf; } >/dev/null || packages+=(gnupg)
[ -x /usr/bin/skopeo ] || packages+=(skopeo)
# The CRI proxy's tests: a private containerd 1.6 (root, under a temp dir)
# with bookworm's runc for real pods, whose images hold a `gcc -static`
# program (static glibc is libc6-dev's libc.a). containerd 2.1 comes from
# sid with the peer tools below.
[ -x /usr/bin/containerd ] || packages+=(containerd)
[ -x /usr/sbin/runc ] || packages+=(runc)
[ -f /usr/lib/x86_64-linux-gnu/libc.a ] || packages+=(libc6-dev)
command -v python3 >/dev/null || packages+=(python3)
command -v openssl >/dev/null || packages+=(openssl)
# A Python gRPC client (grpcio, from PyPI into a virtualenv under target/):
# `python3 -m venv` needs ensurepip, which Debian ships in python3-venv.
python3 -c 'import ensurepip' 2>/dev/null || packages+=(python3-venv)
# `kubectl kustomize deploy/` must build (crates/cli/tests/kube_deploy.rs);
# bookworm's kubectl 1.20 does.
command -v kubectl >/dev/null || packages+=(kubernetes-client)
if [ ${#packages[@]} -gt 0 ]; then
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${packages[@]}"
fi
if ! command -v cargo >/dev/null; then
    # A fresh Debian machine has no Rust; rust-toolchain.toml pins the version.
    curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal --default-toolchain none
    # shellcheck disable=SC1091
    . "$HOME/.cargo/env"
fi

# The conformance tests read containers/image's fixtures in place.
if [ ! -f ../shared/fixtures/containers-image/CORPUS-cases.json ]; then
    echo "error: ../shared (the team's shared fixtures) must sit beside the repository" >&2
    exit 1
fi

# cosign 2.5 and a sigstore-enabled skopeo 1.18 (Debian trixie, unpacked
# under target/), the peers the interoperability tests compare criguard with.
CRIGUARD_PEER_TOOLS="$PWD/target/peer-tools"
export CRIGUARD_PEER_TOOLS
scripts/fetch-peer-tools.sh "$CRIGUARD_PEER_TOOLS"
# cosign 3.1 (Debian sid), which signs with sigstore bundles found through
# OCI referrers (crates/cli/tests/cosign3_bundles.rs).
scripts/fetch-cosign3.sh "$CRIGUARD_PEER_TOOLS"
CRIGUARD_COSIGN3="$CRIGUARD_PEER_TOOLS/cosign3/usr/bin/cosign"
export CRIGUARD_COSIGN3
# grpcio and grpcio-tools, pinned, in a virtualenv: the CRI proxy must serve
# gRPC's C core as containerd does (crates/cli/tests/serve_grpcio.rs).
CRIGUARD_PYTHON_GRPC="$PWD/target/python-grpc"
export CRIGUARD_PYTHON_GRPC
scripts/fetch-python-grpc.sh "$CRIGUARD_PYTHON_GRPC"
# A real Kubernetes API server (the CRD half of kube-apiserver, with etcd),
# built once from Debian sid's Go sources into /var/cache/kube-apiserver-test
# (about 8 minutes the first time): the agent and status writer tests run it.
../shared/tools/kube-apiserver.sh build

# One build from a clean clone: incremental state would only take disk.
export CARGO_INCREMENTAL=0
df -h . | tail -n 1 | awk '{print "disk before the build: " $4 " free"}'
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked

# The whole job end to end, as a reader would run it: a registry, signed and
# unsigned images, containerd with `criguard serve` in front of it.
scripts/demo.sh
