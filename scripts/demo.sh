#!/usr/bin/env bash
# Shows criguard's policy engine on the bundled example policy.
# Usage: scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q --release -p criguard
criguard=target/release/criguard

run() { echo; echo "\$ criguard $*"; "$criguard" "$@" || echo "(exit status $?)"; }

run policy lint examples/policy.json
run policy lint examples/broken-policy.json
run policy explain --policy examples/policy.json registry.example.com/platform/api:1.4
run policy explain --policy examples/policy.json registry.example.com/platform/debug-tools:1.0
run policy explain --policy examples/policy.json --output json busybox
run policy explain --policy examples/policy.json quay.io/someone/else:latest
