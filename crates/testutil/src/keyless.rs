//! Keyless (Fulcio + Rekor) and PKI signatures made by the tests: a test
//! certificate authority, leaf certificates shaped like Fulcio's (empty
//! subject, critical SAN, code-signing EKU, issuer extensions), a test
//! transparency-log key that signs SETs, and cosign attachments pushed to
//! the test registry. Every way a keyless signature can be wrong can then be
//! made on purpose and shown to criguard and to containers/image alike.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::digest;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, CustomExtension, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, OtherNameValue, SanType, date_time_ymd,
};
use serde_json::json;

use crate::bundles::hex;
use crate::image::{Blob, OCI_MANIFEST, upload_blob, upload_manifest};
use crate::registry::Registry;

/// The OIDC issuer the default test leaf names.
pub const TEST_ISSUER: &str = "https://accounts.test";
/// The email the default test leaf names.
pub const TEST_EMAIL: &str = "dev@example.test";
/// 2030-06-01 12:00:00 UTC: inside the default leaf's one-day validity.
pub const TEST_LOGGED_AT: i64 = 1_906_545_600;

const ISSUER_V1: &[u64] = &[1, 3, 6, 1, 4, 1, 57264, 1, 1];
const ISSUER_V2: &[u64] = &[1, 3, 6, 1, 4, 1, 57264, 1, 8];

/// A self-signed test CA, valid 2020–2040.
pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl TestCa {
    pub fn new(name: &str) -> TestCa {
        Self::with_validity(name, (2020, 1, 1), (2040, 1, 1))
    }

    /// A CA valid only from `not_before` to `not_after` (year, month, day).
    pub fn with_validity(
        name: &str,
        not_before: (i32, u8, u8),
        not_after: (i32, u8, u8),
    ) -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.not_before = date_time_ymd(not_before.0, not_before.1, not_before.2);
        params.not_after = date_time_ymd(not_after.0, not_after.1, not_after.2);
        let key = KeyPair::generate().expect("CA key");
        TestCa {
            issuer: CertifiedIssuer::self_signed(params, key).expect("self-signed CA"),
        }
    }

    pub fn pem(&self) -> String {
        self.issuer.pem()
    }
}

/// What a test leaf certificate holds.
pub struct LeafSpec {
    pub emails: Vec<&'static str>,
    pub dns_names: Vec<&'static str>,
    /// A SAN with only an `otherName`, which Go cannot read.
    pub other_name_only: bool,
    pub issuer_v1: Option<&'static str>,
    /// DER of the v2 issuer extension's value (see [`der_utf8`]).
    pub issuer_v2: Option<Vec<u8>>,
    pub unknown_critical: bool,
    pub not_before: (i32, u8, u8),
    pub not_after: (i32, u8, u8),
}

impl Default for LeafSpec {
    fn default() -> Self {
        Self {
            emails: vec![TEST_EMAIL],
            dns_names: vec![],
            other_name_only: false,
            issuer_v1: None,
            issuer_v2: Some(der_utf8(TEST_ISSUER)),
            unknown_critical: false,
            not_before: (2030, 6, 1),
            not_after: (2030, 6, 2),
        }
    }
}

/// A DER UTF8String, the v2 issuer extension's encoding.
pub fn der_utf8(text: &str) -> Vec<u8> {
    let mut out = vec![0x0c, u8::try_from(text.len()).expect("short text")];
    out.extend_from_slice(text.as_bytes());
    out
}

/// A leaf certificate and its private key.
pub struct IssuedLeaf {
    pub cert_pem: String,
    key: KeyPair,
}

impl IssuedLeaf {
    /// ECDSA P-256 / SHA-256, DER: what cosign signs with.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        rcgen::SigningKey::sign(&self.key, message).expect("signing")
    }
}

impl LeafSpec {
    pub fn issue(&self, ca: &TestCa) -> IssuedLeaf {
        let key = KeyPair::generate().expect("leaf key");
        let mut params = self.params(&self.emails);
        let (y, m, d) = self.not_before;
        params.not_before = date_time_ymd(y, m, d);
        let (y, m, d) = self.not_after;
        params.not_after = date_time_ymd(y, m, d);
        let cert = params
            .signed_by(&key, &ca.issuer)
            .expect("issuing the leaf");
        IssuedLeaf {
            cert_pem: cert.pem(),
            key,
        }
    }

    /// A leaf for a P-256 public key the test does not hold (SPKI DER, as
    /// a Fulcio request brings it), naming `email` instead of `emails` and
    /// valid from `not_before` to `not_after`: a test Fulcio learns the
    /// identity and the time only when the request comes. PEM.
    pub fn issue_for(
        &self,
        ca: &TestCa,
        spki_der: &[u8],
        email: &str,
        not_before: SystemTime,
        not_after: SystemTime,
    ) -> Result<String, String> {
        let key = ForeignP256::from_spki(spki_der)?;
        let mut params = self.params(&[email]);
        // rcgen's date type is `time`'s, reached only through rcgen.
        params.not_before = date_time_ymd(1970, 1, 1) + since_1970(not_before);
        params.not_after = date_time_ymd(1970, 1, 1) + since_1970(not_after);
        params
            .signed_by(&key, &ca.issuer)
            .map(|cert| cert.pem())
            .map_err(|e| format!("issuing a leaf for {email}: {e}"))
    }

    fn params(&self, emails: &[&str]) -> CertificateParams {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("leaf parameters");
        // Fulcio leaves have an empty subject, which makes the SAN critical.
        params.distinguished_name = DistinguishedName::new();
        params.subject_alt_names = if self.other_name_only {
            vec![SanType::OtherName((
                vec![1, 3, 6, 1, 4, 1, 57264, 1, 7],
                OtherNameValue::Utf8String("someone".into()),
            ))]
        } else {
            emails
                .iter()
                .map(|e| SanType::Rfc822Name((*e).try_into().expect("email")))
                .chain(
                    self.dns_names
                        .iter()
                        .map(|d| SanType::DnsName((*d).try_into().expect("DNS name"))),
                )
                .collect()
        };
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::CodeSigning];
        if let Some(v1) = self.issuer_v1 {
            params
                .custom_extensions
                .push(CustomExtension::from_oid_content(
                    ISSUER_V1,
                    v1.as_bytes().to_vec(),
                ));
        }
        if let Some(v2) = &self.issuer_v2 {
            params
                .custom_extensions
                .push(CustomExtension::from_oid_content(ISSUER_V2, v2.clone()));
        }
        if self.unknown_critical {
            let mut ext = CustomExtension::from_oid_content(&[1, 2, 3, 4, 5], vec![0x05, 0x00]);
            ext.set_criticality(true);
            params.custom_extensions.push(ext);
        }
        params
    }
}

/// Whole seconds from 1970 to `time`: certificates hold no fractions.
fn since_1970(time: SystemTime) -> Duration {
    let seconds = time
        .duration_since(UNIX_EPOCH)
        .expect("a time after 1970")
        .as_secs();
    Duration::from_secs(seconds)
}

/// An ECDSA P-256 public key known only by its SubjectPublicKeyInfo,
/// which rcgen can put in a certificate it signs with another key.
struct ForeignP256 {
    spki: Vec<u8>,
    point: Vec<u8>,
}

impl ForeignP256 {
    fn from_spki(spki_der: &[u8]) -> Result<ForeignP256, String> {
        use x509_cert::der::Decode;
        let info = x509_cert::spki::SubjectPublicKeyInfoRef::from_der(spki_der)
            .map_err(|e| format!("reading the public key: {e}"))?;
        let curve = info
            .algorithm
            .parameters
            .map(|p| p.decode_as::<const_oid::ObjectIdentifier>());
        if info.algorithm.oid != const_oid::db::rfc5912::ID_EC_PUBLIC_KEY
            || !matches!(curve, Some(Ok(c)) if c == const_oid::db::rfc5912::SECP_256_R_1)
        {
            return Err(format!(
                "the public key is {}, not ECDSA P-256",
                info.algorithm.oid
            ));
        }
        let point = info
            .subject_public_key
            .as_bytes()
            .ok_or("the public key's bit string is not whole bytes")?;
        Ok(ForeignP256 {
            spki: spki_der.to_vec(),
            point: point.to_vec(),
        })
    }
}

impl rcgen::PublicKeyData for ForeignP256 {
    fn subject_public_key_info(&self) -> Vec<u8> {
        self.spki.clone()
    }

    fn der_bytes(&self) -> &[u8] {
        &self.point
    }

    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        &rcgen::PKCS_ECDSA_P256_SHA256
    }
}

/// A test transparency log: its key signs SETs.
pub struct TestRekor {
    pair: EcdsaKeyPair,
    spki_der: Vec<u8>,
    public_pem: String,
}

impl Default for TestRekor {
    fn default() -> Self {
        Self::new()
    }
}

impl TestRekor {
    pub fn new() -> TestRekor {
        let rng = SystemRandom::new();
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).expect("Rekor key");
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref())
            .expect("Rekor key");
        let spki = aws_lc_rs::encoding::AsDer::<aws_lc_rs::encoding::PublicKeyX509Der>::as_der(
            aws_lc_rs::signature::KeyPair::public_key(&pair),
        )
        .expect("Rekor public key");
        let public_pem = pem::encode(&pem::Pem::new("PUBLIC KEY", spki.as_ref().to_vec()));
        TestRekor {
            pair,
            spki_der: spki.as_ref().to_vec(),
            public_pem,
        }
    }

    pub fn public_pem(&self) -> &str {
        &self.public_pem
    }

    /// The log's ID as Rekor v1 gives it: hex SHA-256 of its key's
    /// SubjectPublicKeyInfo, which is also how verifiers find its key.
    pub fn log_id(&self) -> String {
        hex(digest::digest(&digest::SHA256, &self.spki_der).as_ref())
    }

    /// The key's SubjectPublicKeyInfo (DER).
    pub fn spki_der(&self) -> &[u8] {
        &self.spki_der
    }

    /// ECDSA P-256 / SHA-256 over `message`, ASN.1 DER: how the log signs
    /// SETs and checkpoints.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        self.pair
            .sign(&SystemRandom::new(), message)
            .expect("signing with the log key")
            .as_ref()
            .to_vec()
    }

    /// The SET of an entry with `body` (the canonical body's bytes) logged
    /// at `time` as `log_index`: the signature over the RFC 8785 form of
    /// `{body, integratedTime, logID, logIndex}` that Rekor v1 returns.
    pub fn entry_set(&self, body: &[u8], time: i64, log_index: u64) -> Vec<u8> {
        self.sign(set_payload(body, time, &self.log_id(), log_index).as_bytes())
    }

    /// A SET for a `hashedrekord` 0.0.1 entry of (`cert_pem`, `signature`,
    /// `payload`), integrated at `time`.
    pub fn set(&self, cert_pem: &str, signature: &[u8], payload: &[u8], time: i64) -> String {
        let hash = hex(digest::digest(&digest::SHA256, payload).as_ref());
        let body = json!({
            "apiVersion": "0.0.1",
            "kind": "hashedrekord",
            "spec": {
                "data": {"hash": {"algorithm": "sha256", "value": hash}},
                "signature": {
                    "content": STANDARD.encode(signature),
                    "publicKey": {"content": STANDARD.encode(cert_pem)},
                },
            },
        });
        let signed = set_payload(body.to_string().as_bytes(), time, &"c0".repeat(32), 7);
        format!(
            r#"{{"SignedEntryTimestamp":"{}","Payload":{signed}}}"#,
            STANDARD.encode(self.sign(signed.as_bytes()))
        )
    }
}

/// What a Rekor v1 SET signs: the RFC 8785 form of `{body, integratedTime,
/// logID, logIndex}` for an entry with `body` (the canonical body's bytes),
/// logged at `time` as `log_index` by the log whose ID is `log_id_hex`.
/// The members are written in sorted order and the values need no
/// escaping, so this text is its own canonical form.
pub fn set_payload(body: &[u8], time: i64, log_id_hex: &str, log_index: u64) -> String {
    format!(
        r#"{{"body":"{}","integratedTime":{time},"logID":"{log_id_hex}","logIndex":{log_index}}}"#,
        STANDARD.encode(body)
    )
}

/// cosign's payload for `reference` (a repository, as cosign signs) and
/// `digest`.
pub fn cosign_payload(reference: &str, digest: &str) -> Vec<u8> {
    json!({
        "critical": {
            "identity": {"docker-reference": reference},
            "image": {"docker-manifest-digest": digest},
            "type": "cosign container image signature",
        },
        "optional": null,
    })
    .to_string()
    .into_bytes()
}

/// The annotations of a keyless signature of `payload` by `leaf`, logged
/// by `log` at `time`.
pub fn keyless_annotations(
    leaf: &IssuedLeaf,
    log: &TestRekor,
    payload: &[u8],
    time: i64,
) -> BTreeMap<String, String> {
    let signature = leaf.sign(payload);
    let set = log.set(&leaf.cert_pem, &signature, payload, time);
    BTreeMap::from([
        (
            "dev.cosignproject.cosign/signature".to_owned(),
            STANDARD.encode(&signature),
        ),
        (
            "dev.sigstore.cosign/certificate".to_owned(),
            leaf.cert_pem.clone(),
        ),
        ("dev.sigstore.cosign/bundle".to_owned(), set),
    ])
}

/// Uploads a one-layer cosign signature manifest (`sha256-<hex>.sig`) for
/// `digest` in `repo`, replacing any there: written by the harness itself,
/// so that what it tests is not also what it relies on.
pub fn attach_signature(
    registry: &Registry,
    repo: &str,
    digest: &str,
    payload: &[u8],
    annotations: &BTreeMap<String, String>,
) {
    let layer = Blob::new(
        "application/vnd.dev.cosign.simplesigning.v1+json",
        payload.to_vec(),
    );
    let config = Blob::new(
        "application/vnd.oci.image.config.v1+json",
        json!({
            "architecture": "",
            "os": "",
            "config": {},
            "rootfs": {"type": "layers", "diff_ids": [layer.digest]},
        })
        .to_string()
        .into_bytes(),
    );
    upload_blob(registry, repo, &layer);
    upload_blob(registry, repo, &config);
    let mut layer_descriptor = layer.descriptor();
    layer_descriptor["annotations"] = json!(annotations);
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": config.descriptor(),
        "layers": [layer_descriptor],
    });
    let manifest = Blob::new(OCI_MANIFEST, manifest.to_string().into_bytes());
    let tag = format!("{}.sig", digest.replacen(':', "-", 1));
    upload_manifest(registry, repo, &tag, &manifest);
}
