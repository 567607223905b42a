# Sourced by the fetch scripts (fetch-peer-tools.sh, fetch-containerd-sid.sh):
# a private apt state for one Debian suite, so packages of another suite can
# be downloaded without touching the machine's apt configuration, package
# lists or installed packages.

# private_apt STATE SUITE: empties STATE, points it at SUITE on the Debian
# mirror the machine is configured with (else deb.debian.org), and sets the
# array apt_opts that makes apt-get use it.
private_apt() {
    local state=$1 suite=$2 mirror
    mirror=$(grep -hsE '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null |
        awk '{print $2}' | grep -E '/debian/?$' | head -n1 || true)
    if [ -z "$mirror" ]; then
        mirror=$(grep -hsE '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
            sed -E 's/\[[^]]*\] *//' | awk '{print $2}' | grep -E '/debian/?$' | head -n1 || true)
    fi
    mirror=${mirror:-http://deb.debian.org/debian}
    rm -rf "$state"
    mkdir -p "$state/lists/partial" "$state/cache/archives/partial" "$state/etc" "$state/debs"
    # The suite's Release file must be signed by a Debian archive key, as for
    # the machine's own apt: these tools run as root in the tests.
    echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror $suite main" >"$state/etc/sources.list"
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
}
