#!/usr/bin/env bash
# Creates the seed corpora under fuzz/corpus/ (git-ignored) from the shared
# fixtures and a few literals. Nothing here is committed: the fixtures stay
# the single copy, and fuzzing grows the corpora locally.
#
# Usage: fuzz/seed-corpora.sh   (from anywhere; the shared fixtures are
# looked for in ../shared next to the repository, or in $CRIGUARD_SHARED)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
shared=${CRIGUARD_SHARED:-$here/../../shared}
fixtures=$shared/fixtures/containers-image
corpus=$here/corpus

mkdir -p "$corpus/policy" "$corpus/payload" "$corpus/reference" "$corpus/registries_d"

# policy: the upstream test policy (every requirement type and scope shape)
# and the default policy shipped by distributions.
cp "$fixtures/signature/fixtures/policy.json" "$corpus/policy/fixture-policy.json"
cp "$fixtures/default-policy.json" "$corpus/policy/default-policy.json"

# payload: a real cosign payload, and an atomic (GPG) one with its optional
# section, which the cosign format makes nullable.
cp "$fixtures/signature/fixtures/rekor-payload" "$corpus/payload/cosign"
printf '%s' '{"critical":{"identity":{"docker-reference":"example.com/ns/app:v1"},"image":{"docker-manifest-digest":"sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"},"type":"atomic container signature"},"optional":{"creator":"criguard seed","timestamp":1700000000}}' \
    > "$corpus/payload/atomic"

# reference: one input per shape the grammar distinguishes.
i=0
for reference in \
    busybox \
    library/busybox:latest \
    docker.io/library/busybox \
    index.docker.io/user/app:1.0 \
    quay.io/org/team/app:v1.2-rc \
    localhost:5000/app@sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae \
    '[::1]:5000/ns/app:tag@sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae' \
    //example.com/ns/app:tag \
    //busybox \
    2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae
do
    printf '%s' "$reference" > "$corpus/reference/seed-$i"
    i=$((i + 1))
done

# registries_d: upstream's registries.d test files and the distributions'
# default.yaml.
cp "$fixtures/default.yaml" "$corpus/registries_d/default.yaml"
for file in "$fixtures"/docker/fixtures/registries.d/*.yaml; do
    cp "$file" "$corpus/registries_d/fixture-$(basename "$file")"
done

echo "seed corpora in $corpus"

# sigstore_certificate: the PKI fixture (roots, intermediates, leaf, chain,
# signature), NUL-separated as the target splits its input.
mkdir -p "$corpus/sigstore_certificate" "$corpus/rekor_set"
sig=$fixtures/signature/fixtures
{
    cat "$sig/pki_root_crts.pem"; printf '\0'
    cat "$sig/pki_intermediate_crts.pem"; printf '\0'
    cat "$sig/pki-cert"; printf '\0'
    cat "$sig/pki-chain"; printf '\0'
    printf 'MEUCIQ=='
} > "$corpus/sigstore_certificate/pki"

# rekor_set: the real SET's Payload, the Fulcio certificate, signature and
# payload it binds, and the whole SET as the unsigned variant.
python3 - "$sig" "$corpus/rekor_set/fulcio" <<'PY'
import json, sys
d, out = sys.argv[1], sys.argv[2]
read = lambda n: open(f"{d}/{n}", "rb").read()
payload = json.dumps(json.loads(read("rekor-set"))["Payload"]).encode()
parts = [payload, read("fulcio-cert"), read("rekor-sig"), read("rekor-payload"), read("rekor-set")]
open(out, "wb").write(b"\0".join(parts))
PY

# simple_signing: a u16 length, a keyring, a signature blob. Every GPG
# fixture signature with the four-key binary keyring, and the armoured
# key with the valid image signature.
mkdir -p "$corpus/simple_signing"
python3 - "$sig" "$corpus/simple_signing" <<'PY'
import os, struct, sys
d, out = sys.argv[1], sys.argv[2]
read = lambda n: open(os.path.join(d, n), "rb").read()
blobs = ["dir-img-valid/signature-1", "subkey.signature", "subkey-revoked.signature",
         "expired.signature", "corrupt.signature", "unknown-key.signature",
         "unsigned-literal.signature", "unsigned-encrypted.signature", "invalid-blob.signature-v3"]
for ring in ["pubring.gpg", "public-key.gpg"]:
    key = read(ring)
    for blob in blobs:
        name = f"{ring}-{blob.replace('/', '-')}"
        open(os.path.join(out, name), "wb").write(struct.pack(">H", len(key)) + key + read(blob))
PY

# cri_request: a kubelet-shaped PullImageRequest (image, auth, namespace)
# and one with an unknown field, as a newer kubelet sends.
mkdir -p "$corpus/cri_request"
printf '\x0a\x14\x0a\x12example.com/app:v1\x12\x05\x0a\x03bob\x1a\x07\x0a\x05\x1a\x03dev' > "$corpus/cri_request/pull"
printf '\x0a\x14\x0a\x12example.com/app:v1\xf8\x06\x07' > "$corpus/cri_request/unknown-field"

# cri_path: a v1 path, a v1alpha2 path without its slash and with a query,
# and a grpc-timeout value.
mkdir -p "$corpus/cri_path"
printf '/runtime.v1.ImageService/PullImage' > "$corpus/cri_path/v1"
printf 'runtime.v1alpha2.RuntimeService/CreateContainer?x=1' > "$corpus/cri_path/v1alpha2"
printf '120S' > "$corpus/cri_path/timeout"

# kube_policy: the renderer's golden input (both kinds, every root of trust
# and identity rule, a List) and one small object.
mkdir -p "$corpus/kube_policy"
cp "$here/../crates/kube-policy/tests/golden/mixed/input.yaml" "$corpus/kube_policy/golden-mixed.yaml"
printf 'apiVersion: criguard.dev/v1alpha1\nkind: ImagePolicy\nmetadata: {name: p, namespace: ns}\nspec:\n  scopes: [example.com/team]\n  policy: {rootOfTrust: {policyType: PublicKey, publicKey: {keyData: LS0tLS1CRUdJTiBQVUJMSUMgS0VZLS0tLS0KLS0tLS1FTkQgUFVCTElDIEtFWS0tLS0tCg==}}}\n' > "$corpus/kube_policy/small.yaml"

# trusted_root: one log (an Ed25519 key) and one timestamp authority whose
# chain is not a certificate (the parser's refusal path), and an empty root.
mkdir -p "$corpus/trusted_root" "$corpus/timestamp_token"
printf '%s' '{"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1","tlogs":[{"baseUrl":"https://log.test","hashAlgorithm":"SHA2_256","publicKey":{"rawBytes":"MCowBQYDK2VwAyEABwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=","keyDetails":"PKIX_ED25519","validFor":{"start":"2025-01-01T00:00:00Z"}},"logId":{"keyId":"AAEC"}}],"certificateAuthorities":[],"ctlogs":[],"timestampAuthorities":[{"uri":"https://tsa.test","certChain":{"certificates":[{"rawBytes":"MAA="}]},"validFor":{"start":"2020-01-01T00:00:00Z"}}]}' \
    > "$corpus/trusted_root/one-log"
printf '%s' '{"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.2"}' > "$corpus/trusted_root/empty"

# timestamp_token: a ContentInfo naming SignedData with an empty body, and
# one naming another content type; the fuzzer grows the rest.
printf '\x30\x0f\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x07\x02\xa0\x02\x30\x00' > "$corpus/timestamp_token/signed-data"
printf '\x30\x0f\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x07\x01\xa0\x02\x04\x00' > "$corpus/timestamp_token/data"

# ... and real ones from OpenSSL's TSA (a P-384 signer under a P-256 root,
# SHA-256 and SHA-384 imprints): whole responses, bare tokens, and a reply
# without the signer's certificate.
tsa=$(mktemp -d)
trap 'rm -rf "$tsa"' EXIT
(
    cd "$tsa"
    printf '%s\n' '[ tsa ]' 'default_tsa = c' '[ c ]' 'serial = ./serial' 'signer_digest = sha256' \
        'default_policy = 1.3.6.1.4.1.57264.2' 'digests = sha256, sha384' 'accuracy = secs:1' \
        'ess_cert_id_alg = sha256' '[ ext ]' 'basicConstraints = critical,CA:false' \
        'extendedKeyUsage = critical,timeStamping' > tsa.cnf
    echo 01 > serial
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key \
        -out ca.pem -subj /CN=seed-root -days 1 2>/dev/null
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-384 -nodes -keyout tsa.key \
        -out tsa.csr -subj /CN=seed-tsa 2>/dev/null
    openssl x509 -req -in tsa.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out tsa.pem \
        -days 1 -extfile tsa.cnf -extensions ext 2>/dev/null
    printf 'signature' > data
    for hash in sha256 sha384; do
        openssl ts -query -data data -"$hash" -cert -out "$hash.tsq" 2>/dev/null
        openssl ts -reply -config tsa.cnf -section c -queryfile "$hash.tsq" -signer tsa.pem \
            -inkey tsa.key -chain ca.pem -out "$corpus/timestamp_token/openssl-$hash-response" 2>/dev/null
        openssl ts -reply -config tsa.cnf -section c -queryfile "$hash.tsq" -signer tsa.pem \
            -inkey tsa.key -token_out -out "$corpus/timestamp_token/openssl-$hash-token" 2>/dev/null
    done
    openssl ts -query -data data -sha256 -no_nonce -out bare.tsq 2>/dev/null
    openssl ts -reply -config tsa.cnf -section c -queryfile bare.tsq -signer tsa.pem \
        -inkey tsa.key -token_out -out "$corpus/timestamp_token/openssl-no-cert-token" 2>/dev/null
)
