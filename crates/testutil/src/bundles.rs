//! Sigstore bundles made by the tests, as cosign 3 writes them: a DSSE
//! envelope over a cosign signature statement, with a key hint, a
//! certificate or a chain, and optionally a Rekor v1 entry whose signed
//! entry timestamp a test log key makes. Every field can then be made
//! wrong on purpose, one at a time.

use aws_lc_rs::digest;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, RSA_PKCS1_SHA256,
    RsaKeyPair,
};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

/// The bundle media type cosign 3 uses for artifact, layer and bundle.
pub const BUNDLE_MEDIA_TYPE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";

/// A signing key of one of the kinds cosign signs with.
pub enum TestKey {
    P256(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
    Rsa(RsaKeyPair),
}

impl TestKey {
    pub fn p256() -> TestKey {
        let rng = SystemRandom::new();
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).expect("P-256 key");
        TestKey::P256(
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref())
                .expect("P-256 key"),
        )
    }

    pub fn ed25519() -> TestKey {
        TestKey::Ed25519(Ed25519KeyPair::generate().expect("Ed25519 key"))
    }

    pub fn rsa() -> TestKey {
        TestKey::Rsa(RsaKeyPair::generate(KeySize::Rsa2048).expect("RSA key"))
    }

    /// The public key as PKIX DER.
    pub fn spki_der(&self) -> Vec<u8> {
        use aws_lc_rs::encoding::{AsDer, PublicKeyX509Der};
        let der: PublicKeyX509Der<'_> = match self {
            TestKey::P256(k) => k.public_key().as_der(),
            TestKey::Ed25519(k) => k.public_key().as_der(),
            TestKey::Rsa(k) => k.public_key().as_der(),
        }
        .expect("public key DER");
        der.as_ref().to_vec()
    }

    /// `cosign.pub`'s form.
    pub fn public_pem(&self) -> String {
        pem::encode(&pem::Pem::new("PUBLIC KEY", self.spki_der()))
    }

    /// PKCS #8 private key PEM, as `cosign import-key-pair` reads it.
    pub fn private_pkcs8_pem(&self) -> String {
        use aws_lc_rs::encoding::AsDer;
        let der = match self {
            TestKey::P256(k) => k.private_key().as_der().expect("PKCS #8").as_ref().to_vec(),
            TestKey::Ed25519(k) => k.to_pkcs8().expect("PKCS #8").as_ref().to_vec(),
            TestKey::Rsa(k) => {
                aws_lc_rs::encoding::AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(k)
                    .expect("PKCS #8")
                    .as_ref()
                    .to_vec()
            }
        };
        pem::encode(&pem::Pem::new("PRIVATE KEY", der))
    }

    /// ECDSA SHA-256 DER, Ed25519, or RSA PKCS #1 v1.5 SHA-256.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        let rng = SystemRandom::new();
        match self {
            TestKey::P256(k) => k.sign(&rng, message).expect("signing").as_ref().to_vec(),
            TestKey::Ed25519(k) => k.sign(message).as_ref().to_vec(),
            TestKey::Rsa(k) => {
                let mut out = vec![0; k.public_modulus_len()];
                k.sign(&RSA_PKCS1_SHA256, &rng, message, &mut out)
                    .expect("signing");
                out
            }
        }
    }
}

/// cosign 3's statement for a manifest digest (`sha256:<hex>`).
pub fn cosign_statement(manifest_digest: &str) -> Vec<u8> {
    let hex = manifest_digest
        .strip_prefix("sha256:")
        .expect("a sha256 digest");
    json!({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"digest": {"sha256": hex}, "annotations": {}}],
        "predicateType": "https://sigstore.dev/cosign/sign/v1",
        "predicate": {},
    })
    .to_string()
    .into_bytes()
}

/// DSSE's pre-authentication encoding, written out independently of
/// criguard's.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {payload_type} {} ",
        payload_type.len(),
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(payload);
    out
}

/// The in-toto payload type.
pub const IN_TOTO: &str = "application/vnd.in-toto+json";

/// A bundle's `verificationMaterial` for a key (cosign's hint: base64 of
/// the SHA-256 of the key's DER).
pub fn key_material(spki_der: &[u8]) -> Value {
    json!({"publicKey": {"hint": STANDARD.encode(digest::digest(&digest::SHA256, spki_der))}})
}

/// `verificationMaterial` naming one certificate (PEM in, DER out).
pub fn certificate_material(cert_pem: &str) -> Value {
    json!({"certificate": {"rawBytes": STANDARD.encode(pem_der(cert_pem))}})
}

/// `verificationMaterial` naming a chain, leaf first.
pub fn chain_material(certs_pem: &[&str]) -> Value {
    let certificates: Vec<Value> = certs_pem
        .iter()
        .map(|c| json!({"rawBytes": STANDARD.encode(pem_der(c))}))
        .collect();
    json!({"x509CertificateChain": {"certificates": certificates}})
}

fn pem_der(text: &str) -> Vec<u8> {
    pem::parse(text).expect("a PEM certificate").into_contents()
}

/// A bundle with `material` (to which `tlog_entries` are added), an
/// envelope of `payload_type`/`payload` and `signatures`.
pub fn bundle_json(
    mut material: Value,
    tlog_entries: Vec<Value>,
    payload_type: &str,
    payload: &[u8],
    signatures: &[Vec<u8>],
) -> Vec<u8> {
    if !tlog_entries.is_empty() {
        material["tlogEntries"] = Value::Array(tlog_entries);
    }
    let signatures: Vec<Value> = signatures
        .iter()
        .map(|s| json!({"sig": STANDARD.encode(s)}))
        .collect();
    json!({
        "mediaType": BUNDLE_MEDIA_TYPE,
        "verificationMaterial": material,
        "dsseEnvelope": {
            "payload": STANDARD.encode(payload),
            "payloadType": payload_type,
            "signatures": signatures,
        },
    })
    .to_string()
    .into_bytes()
}

/// A bundle signed by `key` for `manifest_digest`, as `cosign sign --key`
/// writes it without Rekor.
pub fn key_bundle(key: &TestKey, manifest_digest: &str) -> Vec<u8> {
    let statement = cosign_statement(manifest_digest);
    let signature = key.sign(&pae(IN_TOTO, &statement));
    bundle_json(
        key_material(&key.spki_der()),
        Vec::new(),
        IN_TOTO,
        &statement,
        &[signature],
    )
}

/// A test Rekor v1 log whose key signs entries' promises.
pub struct TestLog {
    pair: EcdsaKeyPair,
}

impl Default for TestLog {
    fn default() -> Self {
        Self::new()
    }
}

impl TestLog {
    pub fn new() -> TestLog {
        match TestKey::p256() {
            TestKey::P256(pair) => TestLog { pair },
            _ => unreachable!(),
        }
    }

    pub fn public_pem(&self) -> String {
        use aws_lc_rs::encoding::{AsDer, PublicKeyX509Der};
        let der: PublicKeyX509Der<'_> = self.pair.public_key().as_der().expect("DER");
        pem::encode(&pem::Pem::new("PUBLIC KEY", der.as_ref().to_vec()))
    }

    /// A `dsse` 0.0.1 body for an envelope of `payload` signed with
    /// `signature` by `verifier_pem` (a key or certificate).
    pub fn dsse_body(verifier_pem: &str, signature: &[u8], payload: &[u8]) -> Vec<u8> {
        let hash = hex(digest::digest(&digest::SHA256, payload).as_ref());
        json!({
            "apiVersion": "0.0.1",
            "kind": "dsse",
            "spec": {
                "envelopeHash": {"algorithm": "sha256", "value": "00".repeat(32)},
                "payloadHash": {"algorithm": "sha256", "value": hash},
                "signatures": [{
                    "signature": STANDARD.encode(signature),
                    "verifier": STANDARD.encode(verifier_pem),
                }],
            },
        })
        .to_string()
        .into_bytes()
    }

    /// A bundle `tlogEntries` item for `body` at `time`, with its SET.
    pub fn entry(&self, body: &[u8], time: i64) -> Value {
        let log_id = vec![0xc0; 32];
        let signed = crate::keyless::set_payload(body, time, &hex(&log_id), 7);
        let set = self
            .pair
            .sign(&SystemRandom::new(), signed.as_bytes())
            .expect("signing the SET");
        json!({
            "logIndex": "7",
            "logId": {"keyId": STANDARD.encode(&log_id)},
            "kindVersion": {"kind": "dsse", "version": "0.0.1"},
            "integratedTime": time.to_string(),
            "inclusionPromise": {"signedEntryTimestamp": STANDARD.encode(set.as_ref())},
            "canonicalizedBody": STANDARD.encode(body),
        })
    }
}

/// Lower-case hex, as logs and digests print bytes.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
