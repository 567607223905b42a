#!/usr/bin/env bash
# The criguard agent's OCI image, built without a container daemon.
#
#   scripts/image.sh [--binary FILE] [--tag TAG] OUT [docker://HOST/REPO:TAG]
#
# Writes OUT as an OCI image layout (oci-layout, index.json, blobs/) holding one
# linux/amd64 image: the criguard binary (default target/release/criguard, built if
# missing) at /usr/local/bin/criguard, the shared libraries `ldd` says it loads, copied
# from this machine at the same paths, its CA bundle, and a passwd entry for the non-root user 65532
# the manifests run it as. Debug sections are stripped. The layer is a reproducible tar (sorted names, time 0,
# owner 0), so the same binary gives the same digests. With a destination, skopeo
# pushes it there (plain HTTP allowed for loopback test registries).
set -euo pipefail
cd "$(dirname "$0")/.."

binary=target/release/criguard
tag=0.1.0
while [ $# -gt 0 ]; do
  case "$1" in
    --binary) binary=$2; shift 2 ;;
    --tag) tag=$2; shift 2 ;;
    -*) echo "unknown option $1" >&2; exit 2 ;;
    *) break ;;
  esac
done
out=${1:?usage: scripts/image.sh [--binary FILE] [--tag TAG] OUT [docker://HOST/REPO:TAG]}
dest=${2:-}

if [ ! -x "$binary" ]; then
  [ "$binary" = target/release/criguard ] || { echo "no binary at $binary" >&2; exit 1; }
  cargo build --release --locked -p criguard
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/root
mkdir -p "$root/usr/local/bin" "$root/etc" "$root/tmp"
install -m 0755 "$binary" "$root/usr/local/bin/criguard"
# Debug sections only make the image larger; symbols stay for backtraces.
strip --strip-debug "$root/usr/local/bin/criguard"
# Every library the dynamic loader resolves for it, and the loader itself.
for lib in $(ldd "$binary" | awk '/=> \// {print $3} /^\t\/[^ ]+ \(/ {print $1}'); do
  mkdir -p "$root$(dirname "$lib")"
  cp -L "$lib" "$root$lib"
done
[ -n "$(ls "$root"/lib64 2>/dev/null)" ] || { echo "ldd named no loader for $binary" >&2; exit 1; }
# The system's CA bundle: a kubeconfig with no certificate-authority (and any
# https registry) is checked against it, as client-go does.
[ -f /etc/ssl/certs/ca-certificates.crt ] || { echo "no /etc/ssl/certs/ca-certificates.crt: install ca-certificates" >&2; exit 1; }
mkdir -p "$root/etc/ssl/certs"
cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/"
printf 'root:x:0:0:root:/:/usr/sbin/nologin\ncriguard:x:65532:65532:criguard:/:/usr/sbin/nologin\n' > "$root/etc/passwd"
printf 'root:x:0:\ncriguard:x:65532:\n' > "$root/etc/group"
chmod 1777 "$root/tmp"

sha() { sha256sum "$1" | cut -d' ' -f1; }
blobs=$out/blobs/sha256
rm -rf "$out"
mkdir -p "$blobs"

tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner --format=posix \
  --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
  -C "$root" -cf "$work/layer.tar" .
gzip -n < "$work/layer.tar" > "$work/layer.tar.gz"
diff_id=$(sha "$work/layer.tar")
layer=$(sha "$work/layer.tar.gz")
cp "$work/layer.tar.gz" "$blobs/$layer"

printf '{"architecture":"amd64","os":"linux","config":{"User":"65532:65532","Entrypoint":["/usr/local/bin/criguard"],"Cmd":["agent","--help"],"Env":["PATH=/usr/local/bin:/usr/bin:/bin"],"Labels":{"org.opencontainers.image.title":"criguard-agent","org.opencontainers.image.version":"%s"}},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]},"history":[{"created_by":"scripts/image.sh"}]}' \
  "$tag" "$diff_id" > "$work/config.json"
config=$(sha "$work/config.json")
cp "$work/config.json" "$blobs/$config"

printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:%s","size":%d}]}' \
  "$config" "$(stat -c %s "$work/config.json")" "$layer" "$(stat -c %s "$work/layer.tar.gz")" > "$work/manifest.json"
manifest=$(sha "$work/manifest.json")
cp "$work/manifest.json" "$blobs/$manifest"

printf '{"imageLayoutVersion":"1.0.0"}' > "$out/oci-layout"
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%d,"platform":{"architecture":"amd64","os":"linux"},"annotations":{"org.opencontainers.image.ref.name":"%s"}}]}' \
  "$manifest" "$(stat -c %s "$work/manifest.json")" "$tag" > "$out/index.json"
echo "image sha256:$manifest in $out (tag $tag)"

if [ -n "$dest" ]; then
  # No policy.json on a build machine need exist; what is pushed is ours.
  printf '{"default":[{"type":"insecureAcceptAnything"}]}' > "$work/policy.json"
  skopeo --policy "$work/policy.json" copy --quiet --dest-tls-verify=false \
    "oci:$out:$tag" "$dest"
  echo "pushed to $dest"
fi
