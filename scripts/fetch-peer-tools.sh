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
# Then runs scripts/fetch-containerd-sid.sh DEST (containerd 2.1 from Debian
# sid for the real-pod tests, fetched the same way, idempotent too).
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
# Every way out of this script that succeeds goes through here.
done_ok() {
    "$repo/scripts/fetch-containerd-sid.sh" "$dest"
    exit 0
}
if wrappers_work; then
    done_ok
fi
# Test binaries run in parallel and each may call this script: one fetches,
# the others wait for it and then find the wrappers in place.
exec 9>"$dest/.lock"
flock 9
if wrappers_work; then
    done_ok
fi

# trixie, from the machine's own Debian mirror, with a private apt state.
# shellcheck source=scripts/private-apt.sh
. "$repo/scripts/private-apt.sh"
state=$dest/apt
private_apt "$state" trixie
rm -rf "$dest/root"
mkdir -p "$dest/root" "$dest/bin"

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
# Lines this script does not write (sid's containerd) stay.
grep -E '^containerd ' "$dest/versions.txt" >"$dest/versions.txt.tmp" 2>/dev/null || true
mv "$dest/versions.txt.tmp" "$dest/versions.txt"
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
done_ok
