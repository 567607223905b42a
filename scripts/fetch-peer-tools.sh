#!/usr/bin/env bash
# Fetches the peer tools the interoperability tests compare criguard with:
# cosign 2.5 and a sigstore-enabled skopeo 1.18 (containers/image 5.34).
# Debian bookworm has no cosign and its skopeo has sigstore disabled, so both
# come from Debian trixie: downloaded with a private apt state (the machine's
# own apt configuration and package lists are left untouched) and unpacked
# with `dpkg -x`, never installed.
#
# Usage: scripts/fetch-peer-tools.sh [DEST]   (default: target/peer-tools)
# Writes DEST/bin/cosign and DEST/bin/skopeo, and DEST/versions.txt (one
# package and its Debian version a line, e.g. "cosign 2.5.0-2+b4").
# Idempotent: does nothing when both wrappers exist and answer --version.
#
# The skopeo wrapper runs trixie's skopeo through trixie's dynamic loader and
# libraries (bookworm's libc is too old for it). It does NOT hide the host's
# /etc/containers/policy.json or registries.d: callers must always pass
# --policy (and --registries.d when signatures matter), as the tests do, or
# skopeo would silently use the host's configuration.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
dest=${1:-$repo/target/peer-tools}
mkdir -p "$dest"
dest=$(cd "$dest" && pwd)

wrappers_work() {
    [ -x "$dest/bin/cosign" ] && [ -x "$dest/bin/skopeo" ] && [ -s "$dest/versions.txt" ] &&
        "$dest/bin/cosign" version >/dev/null 2>&1 &&
        "$dest/bin/skopeo" --version >/dev/null 2>&1
}
if wrappers_work; then
    exit 0
fi
# Test binaries run in parallel and each may call this script: one fetches,
# the others wait for it and then find the wrappers in place.
exec 9>"$dest/.lock"
flock 9
if wrappers_work; then
    exit 0
fi

# Use the same Debian mirror the machine is configured with, only the suite differs.
mirror=$(grep -hsE '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null |
    awk '{print $2}' | grep -E '/debian/?$' | head -n1 || true)
if [ -z "$mirror" ]; then
    mirror=$(grep -hsE '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
        sed -E 's/\[[^]]*\] *//' | awk '{print $2}' | grep -E '/debian/?$' | head -n1 || true)
fi
mirror=${mirror:-http://deb.debian.org/debian}

state=$dest/apt
rm -rf "$state" "$dest/root"
mkdir -p "$state/lists/partial" "$state/cache/archives/partial" "$state/etc" "$state/debs" "$dest/root" "$dest/bin"
echo "deb [trusted=yes] $mirror trixie main" >"$state/etc/sources.list"
: >"$state/status"

apt_opts=(
    -o "Dir::State=$state"
    -o "Dir::State::Lists=$state/lists"
    -o "Dir::State::status=$state/status"
    -o "Dir::Cache=$state/cache"
    -o "Dir::Etc::SourceList=$state/etc/sources.list"
    -o "Dir::Etc::SourceParts=/dev/null"
    -o "Dir::Etc::Preferences=/dev/null"
    -o "Dir::Etc::PreferencesParts=/dev/null"
    -o "APT::Get::List-Cleanup=0"
    -o "Debug::NoLocking=1"
    -o "APT::Architecture=amd64"
    -o "APT::Architectures::=amd64"
)

log=$state/log
fail() {
    echo "error: fetch-peer-tools: $1 (log: $log)" >&2
    tail -n 30 "$log" >&2 || true
    exit 1
}

apt-get "${apt_opts[@]}" -q update >"$log" 2>&1 || fail "apt-get update for trixie failed"
packages=(cosign skopeo libc6 libgpgme11t64 libsqlite3-0 libassuan9 libgpg-error0 golang-github-containers-common)
(cd "$state/debs" && apt-get "${apt_opts[@]}" -q download "${packages[@]}") >>"$log" 2>&1 ||
    fail "apt-get download of ${packages[*]} failed"
: >"$dest/versions.txt"
for deb in "$state/debs"/*.deb; do
    dpkg -x "$deb" "$dest/root" || fail "dpkg -x $deb failed"
    dpkg-deb --showformat='${Package} ${Version}\n' -W "$deb" >>"$dest/versions.txt"
done

root=$dest/root
libdir=$root/usr/lib/x86_64-linux-gnu
[ -x "$root/usr/bin/cosign" ] || fail "cosign binary missing after unpacking"
[ -x "$root/usr/bin/skopeo" ] || fail "skopeo binary missing after unpacking"
[ -e "$libdir/ld-linux-x86-64.so.2" ] || fail "trixie's dynamic loader missing after unpacking"

cat >"$dest/bin/cosign" <<EOF
#!/bin/sh
# cosign 2.5 from Debian trixie, unpacked by scripts/fetch-peer-tools.sh.
exec "$root/usr/bin/cosign" "\$@"
EOF
cat >"$dest/bin/skopeo" <<EOF
#!/bin/sh
# skopeo 1.18 from Debian trixie (sigstore enabled), run with trixie's own
# loader and libraries. It still reads the host's /etc/containers files unless
# given --policy / --registries.d: always pass them.
exec "$libdir/ld-linux-x86-64.so.2" --library-path "$libdir" "$root/usr/bin/skopeo" "\$@"
EOF
chmod +x "$dest/bin/cosign" "$dest/bin/skopeo"

# The .debs and package lists are no longer needed; keep only the log.
rm -rf "$state/debs" "$state/lists" "$state/cache"

wrappers_work || fail "the unpacked tools do not run"
