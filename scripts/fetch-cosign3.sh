#!/usr/bin/env bash
# Fetches cosign 3.1 from Debian sid for the sigstore bundle tests
# (crates/cli/tests/cosign3_bundles.rs): cosign 3 signs with sigstore
# bundles found through OCI referrers, where the trixie cosign 2.5 of
# scripts/fetch-peer-tools.sh writes `.sig` attachments. Downloaded with a
# private apt state (scripts/private-apt.sh; the machine's apt
# configuration and package lists are left untouched) and unpacked with
# `dpkg -x`, never installed. cosign is a static Go program; the check
# below proves it runs on this machine.
#
# Usage: scripts/fetch-cosign3.sh [DEST]   (default: target/peer-tools)
# Writes DEST/cosign3/usr/bin/cosign and a "cosign3 <Debian version>" line
# in DEST/versions.txt (Debian's build reports `GitVersion: devel`, so the
# release is the package's). Idempotent: does nothing when the binary
# answers `version` and the version line says 3.1.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
dest=${1:-$repo/target/peer-tools}
mkdir -p "$dest"
dest=$(cd "$dest" && pwd)
root=$dest/cosign3
bin=$root/usr/bin

# cosign 3.1 and only 3.1: a sid upload of another release must fail here,
# loudly, rather than silently test a release the tests do not name.
works() {
    [ -x "$bin/cosign" ] &&
        grep -qE '^cosign3 3\.1\.' "$dest/versions.txt" 2>/dev/null &&
        "$bin/cosign" version 2>/dev/null | grep -q '^GitVersion:'
}
if works; then
    exit 0
fi
exec 7>"$dest/.lock-cosign3"
flock 7
if works; then
    exit 0
fi

# shellcheck source=scripts/private-apt.sh
. "$repo/scripts/private-apt.sh"
state=$dest/apt-cosign3
private_apt "$state" sid
rm -rf "$root"
mkdir -p "$root"

log=$state/log
fail() {
    echo "error: fetch-cosign3: $1 (log: $log)" >&2
    tail -n 30 "$log" >&2 || true
    exit 1
}

apt-get "${apt_opts[@]}" -q update >"$log" 2>&1 || fail "apt-get update for sid failed"
(cd "$state/debs" && apt-get "${apt_opts[@]}" -q download cosign) >>"$log" 2>&1 ||
    fail "apt-get download of sid's cosign failed"
deb=$(ls "$state/debs"/cosign_*.deb 2>/dev/null | head -n1)
[ -n "$deb" ] || fail "no cosign .deb after the download"
dpkg -x "$deb" "$root" || fail "dpkg -x $deb failed"
version=$(dpkg-deb --showformat='${Version}' -W "$deb")
case $version in
3.1.*) ;;
*) fail "sid's cosign is $version, not 3.1: the tests are written for cosign 3.1" ;;
esac
versions=$dest/versions.txt
touch "$versions"
{
    grep -v '^cosign3 ' "$versions" || true
    echo "cosign3 $version"
} >"$versions.tmp"
mv "$versions.tmp" "$versions"

rm -rf "$state/debs" "$state/lists" "$state/cache"

works || fail "sid's cosign does not run here: $("$bin/cosign" version 2>&1 | head -n5)"
