#!/usr/bin/env bash
# Fetches containerd 2.1 from Debian sid for the real-pod tests
# (crates/cli/tests/serve_pods.rs). Most clusters run containerd 2.x, which
# serves only CRI v1 and pulls through its transfer service; bookworm ships
# 1.6. Like the trixie peers of scripts/fetch-peer-tools.sh (which calls this
# script), it is downloaded with a private apt state (the machine's apt
# configuration and package lists are left untouched) from the machine's own
# Debian mirror and unpacked with `dpkg -x`, never installed.
#
# Only containerd itself (containerd, containerd-shim-runc-v2, ctr) is taken
# from sid: the shim runs bookworm's runc 1.1 from /usr/sbin, as the tests
# configure it, not sid's runc. Both binaries are Go programs that need only
# glibc >= 2.34, so they run with bookworm's libc and loader directly, with
# no wrapper; the check below proves it on this machine.
#
# Usage: scripts/fetch-containerd-sid.sh [DEST]   (default: target/peer-tools)
# Writes DEST/containerd-sid/usr/bin/{containerd,containerd-shim-runc-v2} and
# a "containerd <Debian version>" line in DEST/versions.txt.
# Idempotent: does nothing when the binaries answer --version and the version
# line is there.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
dest=${1:-$repo/target/peer-tools}
mkdir -p "$dest"
dest=$(cd "$dest" && pwd)
root=$dest/containerd-sid
bin=$root/usr/bin

# containerd 2.1 and only 2.1: a sid upload of 2.2 must fail here, loudly,
# rather than silently test another release than the one the tests name.
works() {
    [ -x "$bin/containerd" ] && [ -x "$bin/containerd-shim-runc-v2" ] &&
        grep -qE '^containerd 2\.1\.' "$dest/versions.txt" 2>/dev/null &&
        "$bin/containerd" --version 2>/dev/null | grep -qE ' v?2\.1\.' &&
        "$bin/containerd-shim-runc-v2" -v >/dev/null 2>&1
}
if works; then
    exit 0
fi
# Its own lock: fetch-peer-tools.sh holds DEST/.lock while it calls this.
exec 8>"$dest/.lock-containerd-sid"
flock 8
if works; then
    exit 0
fi

# sid, from the machine's own Debian mirror, with a private apt state.
# shellcheck source=scripts/private-apt.sh
. "$repo/scripts/private-apt.sh"
state=$dest/apt-sid
private_apt "$state" sid
rm -rf "$root"
mkdir -p "$root"

log=$state/log
fail() {
    echo "error: fetch-containerd-sid: $1 (log: $log)" >&2
    tail -n 30 "$log" >&2 || true
    exit 1
}

apt-get "${apt_opts[@]}" -q update >"$log" 2>&1 || fail "apt-get update for sid failed"
(cd "$state/debs" && apt-get "${apt_opts[@]}" -q download containerd) >>"$log" 2>&1 ||
    fail "apt-get download of sid's containerd failed"
deb=$(ls "$state/debs"/containerd_*.deb 2>/dev/null | head -n1)
[ -n "$deb" ] || fail "no containerd .deb after the download"
dpkg -x "$deb" "$root" || fail "dpkg -x $deb failed"
version=$(dpkg-deb --showformat='${Version}' -W "$deb")
case $version in
2.1.*) ;;
*) fail "sid's containerd is $version, not 2.1: the tests and their configs are for 2.1" ;;
esac
versions=$dest/versions.txt
touch "$versions"
{
    grep -v '^containerd ' "$versions" || true
    echo "containerd $version"
} >"$versions.tmp"
mv "$versions.tmp" "$versions"

# The .deb and package lists are no longer needed; keep only the log.
rm -rf "$state/debs" "$state/lists" "$state/cache"

works || fail "sid's containerd does not run here: $("$bin/containerd" --version 2>&1 | head -n3)"
