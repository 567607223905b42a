//! A test Rekor v2 log: an Ed25519 key, a small RFC 6962 Merkle tree of
//! several entries with the tested entry among them, its inclusion proof,
//! and a checkpoint in C2SP signed-note form. Also the v0.0.2 entry bodies
//! and the `trusted_root.json` that names the log and a timestamp
//! authority, so that every part can be made wrong on its own.

use aws_lc_rs::digest;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use crate::bundles::TestKey;

/// The log's name: the checkpoint's origin and its signer's name.
pub const LOG_ORIGIN: &str = "rekor.test";

/// How many entries the test tree holds, and where the tested one is.
const TREE_SIZE: usize = 6;
const ENTRY_INDEX: usize = 3;

/// A Rekor v2 log with its own Ed25519 key.
pub struct TestLogV2 {
    key: TestKey,
}

impl Default for TestLogV2 {
    fn default() -> Self {
        Self::new()
    }
}

pub(crate) fn sha256(parts: &[&[u8]]) -> Vec<u8> {
    let mut context = digest::Context::new(&digest::SHA256);
    for part in parts {
        context.update(part);
    }
    context.finish().as_ref().to_vec()
}

fn split(n: usize) -> usize {
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

/// RFC 6962 §2.1: the Merkle tree hash of leaf hashes.
pub(crate) fn mth(leaves: &[Vec<u8>]) -> Vec<u8> {
    if leaves.len() == 1 {
        return leaves[0].clone();
    }
    let k = split(leaves.len());
    sha256(&[&[1], &mth(&leaves[..k]), &mth(&leaves[k..])])
}

/// RFC 6962 §2.1.1: the audit path of leaf `m`.
pub(crate) fn path(m: usize, leaves: &[Vec<u8>]) -> Vec<Vec<u8>> {
    if leaves.len() == 1 {
        return Vec::new();
    }
    let k = split(leaves.len());
    let (mut p, sibling) = if m < k {
        (path(m, &leaves[..k]), mth(&leaves[k..]))
    } else {
        (path(m - k, &leaves[k..]), mth(&leaves[..k]))
    };
    p.push(sibling);
    p
}

impl TestLogV2 {
    /// A log with an Ed25519 key, as Rekor v2's public logs have.
    pub fn new() -> TestLogV2 {
        Self::with_key(TestKey::ed25519())
    }

    /// A log with another key (P-256: a checkpoint key hash of the first
    /// 4 bytes of SHA-256 of its SubjectPublicKeyInfo).
    pub fn with_key(key: TestKey) -> TestLogV2 {
        TestLogV2 { key }
    }

    pub fn public_pem(&self) -> String {
        self.key.public_pem()
    }

    /// A checkpoint of `size` leaves with `root`, signed by this log as
    /// `name` (C2SP signed note; Ed25519 key hash per c2sp.org/signed-note).
    pub fn checkpoint(&self, name: &str, size: usize, root: &[u8]) -> String {
        let text = format!("{LOG_ORIGIN}\n{size}\n{}\n", STANDARD.encode(root));
        let spki = self.key.spki_der();
        let hash = match self.key {
            TestKey::Ed25519(_) => sha256(&[name.as_bytes(), b"\n\x01", &spki[spki.len() - 32..]]),
            _ => sha256(&[&spki]),
        };
        let mut signature = hash[..4].to_vec();
        signature.extend(self.key.sign(text.as_bytes()));
        format!("{text}\n\u{2014} {name} {}\n", STANDARD.encode(signature))
    }

    /// A bundle `tlogEntries` item for `body` of `kind` 0.0.2: the body is
    /// leaf 3 of a 6-leaf tree, its proof and a checkpoint this log signs.
    pub fn entry(&self, kind: &str, body: &[u8]) -> Value {
        let leaves: Vec<Vec<u8>> = (0..TREE_SIZE)
            .map(|i| {
                if i == ENTRY_INDEX {
                    sha256(&[&[0], body])
                } else {
                    sha256(&[&[0], format!("other entry {i}").as_bytes()])
                }
            })
            .collect();
        let root = mth(&leaves);
        let hashes: Vec<Value> = path(ENTRY_INDEX, &leaves)
            .iter()
            .map(|h| json!(STANDARD.encode(h)))
            .collect();
        json!({
            "logIndex": ENTRY_INDEX.to_string(),
            "logId": {"keyId": STANDARD.encode(sha256(&[&self.key.spki_der()]))},
            "kindVersion": {"kind": kind, "version": "0.0.2"},
            "integratedTime": "0",
            "inclusionProof": {
                "logIndex": ENTRY_INDEX.to_string(),
                "rootHash": STANDARD.encode(&root),
                "treeSize": TREE_SIZE.to_string(),
                "hashes": hashes,
                "checkpoint": {"envelope": self.checkpoint(LOG_ORIGIN, TREE_SIZE, &root)},
            },
            "canonicalizedBody": STANDARD.encode(body),
        })
    }

    /// The `tlogs` item of a trusted root naming this log, valid from
    /// `start` (RFC 3339) on.
    pub fn trusted_root_entry(&self, start: &str) -> Value {
        json!({
            "baseUrl": format!("https://{LOG_ORIGIN}"),
            "hashAlgorithm": "SHA2_256",
            "publicKey": {
                "rawBytes": STANDARD.encode(self.key.spki_der()),
                "keyDetails": match self.key {
                    TestKey::Ed25519(_) => "PKIX_ED25519",
                    _ => "PKIX_ECDSA_P256_SHA_256",
                },
                "validFor": {"start": start},
            },
            "logId": {"keyId": STANDARD.encode(sha256(&[&self.key.spki_der()]))},
        })
    }
}

/// The verifier of a v0.0.2 body: a key (SPKI DER) or a certificate (DER).
fn verifier(der: &[u8], certificate: bool) -> Value {
    if certificate {
        json!({"x509Certificate": {"rawBytes": STANDARD.encode(der)}, "keyDetails": "PKIX_ECDSA_P256_SHA_256"})
    } else {
        json!({"publicKey": {"rawBytes": STANDARD.encode(der)}, "keyDetails": "PKIX_ECDSA_P256_SHA_256"})
    }
}

/// A `dsse` 0.0.2 body: SHA-256 of the envelope's payload, the signature
/// and its verifier.
pub fn dsse_body(
    verifier_der: &[u8],
    certificate: bool,
    signature: &[u8],
    payload: &[u8],
) -> Vec<u8> {
    json!({
        "apiVersion": "0.0.2",
        "kind": "dsse",
        "spec": {"dsseV002": {
            "payloadHash": {"algorithm": "SHA2_256", "digest": STANDARD.encode(sha256(&[payload]))},
            "signatures": [{
                "content": STANDARD.encode(signature),
                "verifier": verifier(verifier_der, certificate),
            }],
        }},
    })
    .to_string()
    .into_bytes()
}

/// A `hashedrekord` 0.0.2 body over the envelope's PAE, as Rekor v2 now
/// asks DSSE signers to log.
pub fn hashedrekord_body(
    verifier_der: &[u8],
    certificate: bool,
    signature: &[u8],
    pae: &[u8],
) -> Vec<u8> {
    json!({
        "apiVersion": "0.0.2",
        "kind": "hashedrekord",
        "spec": {"hashedRekordV002": {
            "data": {"algorithm": "SHA2_256", "digest": STANDARD.encode(sha256(&[pae]))},
            "signature": {
                "content": STANDARD.encode(signature),
                "verifier": verifier(verifier_der, certificate),
            },
        }},
    })
    .to_string()
    .into_bytes()
}

/// A `trusted_root.json` with `tlogs` and `timestamp_authorities`.
pub fn trusted_root_json(tlogs: Vec<Value>, timestamp_authorities: Vec<Value>) -> Vec<u8> {
    json!({
        "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
        "tlogs": tlogs,
        "certificateAuthorities": [],
        "ctlogs": [],
        "timestampAuthorities": timestamp_authorities,
    })
    .to_string()
    .into_bytes()
}
