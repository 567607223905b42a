//! A test RFC 3161 timestamp authority: a root CA and a time-stamping leaf
//! (critical EKU `id-kp-timeStamping`, ECDSA P-256), and tokens it signs
//! for any signature bytes at any chosen time, so that a token over the
//! wrong signature, from the wrong authority or at the wrong time can be
//! made on purpose. Tokens are assembled from the `cms` types by hand, the
//! way RFC 3161 §2.4.2 and RFC 5652 §5 lay them out.

use aws_lc_rs::digest;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use cms::cert::{CertificateChoices, IssuerAndSerialNumber};
use cms::content_info::{CmsVersion, ContentInfo};
use cms::signed_data::{
    CertificateSet, EncapsulatedContentInfo, SignedData, SignerIdentifier, SignerInfo, SignerInfos,
};
use const_oid::ObjectIdentifier;
use der::asn1::{Any, GeneralizedTime, Int, OctetString, SetOfVec};
use der::{Decode, Encode, Sequence, Tag};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, CustomExtension, DnType, IsCa, KeyPair,
    date_time_ymd,
};
use serde_json::{Value, json};
use x509_cert::Certificate;
use x509_cert::attr::Attribute;
use x509_cert::spki::AlgorithmIdentifierOwned;

const ID_SIGNED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");
const ID_CT_TST_INFO: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.1.4");
const ID_CONTENT_TYPE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.3");
const ID_MESSAGE_DIGEST: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.4");
const ID_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
const ECDSA_WITH_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
const EKU: &[u64] = &[2, 5, 29, 37];
/// `SEQUENCE { id-kp-timeStamping }`, the EKU extension's value.
const EKU_TIME_STAMPING: &[u8] = &[
    0x30, 0x0a, 0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x08,
];
/// `SEQUENCE { id-kp-codeSigning }`.
const EKU_CODE_SIGNING: &[u8] = &[
    0x30, 0x0a, 0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x03,
];

#[derive(Sequence)]
struct MessageImprint {
    hash_algorithm: AlgorithmIdentifierOwned,
    hashed_message: OctetString,
}

#[derive(Sequence)]
struct TstInfo {
    version: Int,
    policy: ObjectIdentifier,
    message_imprint: MessageImprint,
    serial_number: Int,
    gen_time: Any,
}

/// How the authority's leaf is made.
#[derive(Clone, Copy)]
pub struct TsaSpec {
    /// The EKU is critical, as RFC 3161 requires.
    pub critical_eku: bool,
    /// The EKU is time-stamping (else code-signing).
    pub time_stamping: bool,
    /// The end of the root's validity (year, month, day); the root starts
    /// in 2020 and the leaf is valid 2020–2040 whatever this says.
    pub root_not_after: (i32, u8, u8),
}

impl Default for TsaSpec {
    fn default() -> Self {
        Self {
            critical_eku: true,
            time_stamping: true,
            root_not_after: (2040, 1, 1),
        }
    }
}

/// A timestamp authority valid 2020–2040 (its root as [`TsaSpec`] says).
pub struct TestTsa {
    root: CertifiedIssuer<'static, KeyPair>,
    leaf_der: Vec<u8>,
    leaf_key: KeyPair,
}

impl Default for TestTsa {
    fn default() -> Self {
        Self::new(TsaSpec::default())
    }
}

impl TestTsa {
    pub fn new(spec: TsaSpec) -> TestTsa {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("TSA root");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "test TSA root");
        params.not_before = date_time_ymd(2020, 1, 1);
        let (year, month, day) = spec.root_not_after;
        params.not_after = date_time_ymd(year, month, day);
        let root =
            CertifiedIssuer::self_signed(params, KeyPair::generate().expect("key")).expect("root");
        let leaf_key = KeyPair::generate().expect("TSA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("TSA leaf");
        params
            .distinguished_name
            .push(DnType::CommonName, "test TSA");
        params.not_before = date_time_ymd(2020, 1, 1);
        params.not_after = date_time_ymd(2040, 1, 1);
        let value = if spec.time_stamping {
            EKU_TIME_STAMPING
        } else {
            EKU_CODE_SIGNING
        };
        let mut eku = CustomExtension::from_oid_content(EKU, value.to_vec());
        eku.set_criticality(spec.critical_eku);
        params.custom_extensions.push(eku);
        let leaf = params.signed_by(&leaf_key, &root).expect("TSA leaf");
        TestTsa {
            root,
            leaf_der: leaf.der().to_vec(),
            leaf_key,
        }
    }

    /// The `timestampAuthorities` item of a trusted root naming this
    /// authority (leaf, then root), valid from 2020 on.
    pub fn trusted_root_entry(&self) -> Value {
        authority_entry("tsa.test", &self.leaf_der, self.root.der())
    }

    /// A DER `TimeStampToken` over SHA-256(`signature`) at `gen_time`
    /// (seconds since the epoch).
    pub fn token(&self, signature: &[u8], gen_time: i64) -> Vec<u8> {
        self.token_over(
            digest::digest(&digest::SHA256, signature).as_ref(),
            gen_time,
        )
    }

    /// A DER `TimeStampToken` over the SHA-256 `imprint` a request names
    /// (a TSA sees only the hash).
    pub fn token_over(&self, imprint: &[u8], gen_time: i64) -> Vec<u8> {
        let sha256 = AlgorithmIdentifierOwned {
            oid: ID_SHA256,
            parameters: None,
        };
        let time = GeneralizedTime::from_unix_duration(std::time::Duration::from_secs(
            u64::try_from(gen_time).expect("a time after 1970"),
        ))
        .expect("genTime");
        let tst = TstInfo {
            version: Int::new(&[1]).expect("int"),
            policy: ObjectIdentifier::new_unwrap("1.2.3.4"),
            message_imprint: MessageImprint {
                hash_algorithm: sha256.clone(),
                hashed_message: OctetString::new(imprint).expect("imprint"),
            },
            serial_number: Int::new(&[7]).expect("int"),
            gen_time: Any::encode_from(&time).expect("genTime"),
        }
        .to_der()
        .expect("TSTInfo");
        let attributes = SetOfVec::try_from(vec![
            Attribute {
                oid: ID_CONTENT_TYPE,
                values: SetOfVec::try_from(vec![Any::encode_from(&ID_CT_TST_INFO).expect("oid")])
                    .expect("set"),
            },
            Attribute {
                oid: ID_MESSAGE_DIGEST,
                values: SetOfVec::try_from(vec![
                    Any::encode_from(
                        &OctetString::new(digest::digest(&digest::SHA256, &tst).as_ref())
                            .expect("digest"),
                    )
                    .expect("digest"),
                ])
                .expect("set"),
            },
        ])
        .expect("attributes");
        let signed = attributes.to_der().expect("attributes DER");
        let signature_value =
            rcgen::SigningKey::sign(&self.leaf_key, &signed).expect("signing the token");
        let leaf = Certificate::from_der(&self.leaf_der).expect("leaf");
        let signer = SignerInfo {
            version: CmsVersion::V1,
            sid: SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
                issuer: leaf.tbs_certificate().issuer().clone(),
                serial_number: leaf.tbs_certificate().serial_number().clone(),
            }),
            digest_alg: sha256.clone(),
            signed_attrs: Some(attributes),
            signature_algorithm: AlgorithmIdentifierOwned {
                oid: ECDSA_WITH_SHA256,
                parameters: None,
            },
            signature: OctetString::new(signature_value).expect("signature"),
            unsigned_attrs: None,
        };
        let signed_data = SignedData {
            version: CmsVersion::V3,
            digest_algorithms: SetOfVec::try_from(vec![sha256]).expect("set"),
            encap_content_info: EncapsulatedContentInfo {
                econtent_type: ID_CT_TST_INFO,
                econtent: Some(Any::new(Tag::OctetString, tst).expect("eContent")),
            },
            certificates: Some(CertificateSet(
                SetOfVec::try_from(vec![CertificateChoices::Certificate(leaf)]).expect("set"),
            )),
            crls: None,
            signer_infos: SignerInfos(SetOfVec::try_from(vec![signer]).expect("set")),
        };
        ContentInfo {
            content_type: ID_SIGNED_DATA,
            content: Any::encode_from(&signed_data).expect("SignedData"),
        }
        .to_der()
        .expect("token")
    }
}

impl TestTsa {
    /// The `TimeStampResp` a TSA answers with `status` (0: granted) around
    /// [`TestTsa::token`], the form sigstore clients store in bundles.
    pub fn response(&self, signature: &[u8], gen_time: i64, status: u8) -> Vec<u8> {
        self.response_over(
            digest::digest(&digest::SHA256, signature).as_ref(),
            gen_time,
            status,
        )
    }

    /// Like [`TestTsa::response`], over the SHA-256 `imprint` of a request.
    pub fn response_over(&self, imprint: &[u8], gen_time: i64, status: u8) -> Vec<u8> {
        let token = Any::from_der(&self.token_over(imprint, gen_time)).expect("token");
        let status_info = Any::new(
            Tag::Sequence,
            Int::new(&[status]).expect("int").to_der().expect("status"),
        )
        .expect("PKIStatusInfo");
        let mut body = status_info.to_der().expect("PKIStatusInfo");
        body.extend(token.to_der().expect("token"));
        Any::new(Tag::Sequence, body)
            .expect("TimeStampResp")
            .to_der()
            .expect("TimeStampResp")
    }
}

/// The `timestampAuthorities` item of a trusted root for an authority
/// known as `host`: its chain (`leaf`, then `root`, DER), valid from 2020.
pub fn authority_entry(host: &str, leaf: &[u8], root: &[u8]) -> Value {
    json!({
        "subject": {"organization": "test", "commonName": host},
        "uri": format!("https://{host}/api/v1/timestamp"),
        "certChain": {"certificates": [
            {"rawBytes": STANDARD.encode(leaf)},
            {"rawBytes": STANDARD.encode(root)},
        ]},
        "validFor": {"start": "2020-01-01T00:00:00Z"},
    })
}

/// A bundle's `timestampVerificationData` holding `tokens`.
pub fn timestamp_data(tokens: &[Vec<u8>]) -> Value {
    let items: Vec<Value> = tokens
        .iter()
        .map(|t| json!({"signedTimestamp": STANDARD.encode(t)}))
        .collect();
    json!({"rfc3161Timestamps": items})
}
