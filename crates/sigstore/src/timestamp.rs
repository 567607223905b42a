//! RFC 3161 timestamp tokens, the time source of a bundle whose Rekor v2
//! entry carries none.
//!
//! A token is CMS `SignedData` (RFC 5652) over a `TSTInfo`. It proves a
//! time only when all of this holds: the signed attributes name the
//! `TSTInfo` content type and its digest, one signer's signature over them
//! verifies with a certificate that chains to a timestamp authority of the
//! operator's trusted root, that certificate is for time-stamping only
//! (critical EKU `id-kp-timeStamping`, RFC 3161 §2.3), the time lies within
//! the authority's `validFor`, and the `messageImprint` is the hash of this
//! bundle's signature bytes, so the token cannot be moved to another
//! signature.

use aws_lc_rs::digest;
use cms::content_info::ContentInfo;
use cms::signed_data::{SignedData, SignerIdentifier, SignerInfo};
use const_oid::ObjectIdentifier;
use der::asn1::{Any, Int, OctetString};
use der::{Decode, Encode, Reader, Sequence, SliceReader, Tag, Tagged};
use rustls_pki_types::{CertificateDer, UnixTime};
use webpki::{EndEntityCert, KeyUsage};
use x509_cert::Certificate;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::spki::AlgorithmIdentifierOwned;

use crate::public_key::{KeyAlgorithm, PublicKey};
use crate::trusted_root::TimestampAuthority;

/// The largest token read; sigstore's are about 1–2 KiB with the chain.
pub const MAX_TOKEN_BYTES: usize = 64 * 1024;
const MAX_EMBEDDED_CERTIFICATES: usize = 8;

const ID_SIGNED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");
const ID_CT_TST_INFO: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.1.4");
const ID_CONTENT_TYPE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.3");
const ID_MESSAGE_DIGEST: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.4");
const ID_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
const ID_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.2");
const ID_SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.3");
const ID_CE_EXT_KEY_USAGE: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.37");
const ID_CE_SUBJECT_KEY_IDENTIFIER: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.14");
const ID_KP_TIME_STAMPING: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.8");
/// id-kp-timeStamping as the DER value bytes webpki compares.
const TIME_STAMPING: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x08];

/// `MessageImprint` (RFC 3161 §2.4.1).
#[derive(Clone, Debug, Sequence)]
struct MessageImprint {
    hash_algorithm: AlgorithmIdentifierOwned,
    hashed_message: OctetString,
}

/// `Accuracy` (RFC 3161 §2.4.2), read only to get past it.
#[derive(Clone, Debug, Sequence)]
struct Accuracy {
    #[asn1(optional = "true")]
    seconds: Option<Int>,
    #[asn1(context_specific = "0", tag_mode = "IMPLICIT", optional = "true")]
    millis: Option<Int>,
    #[asn1(context_specific = "1", tag_mode = "IMPLICIT", optional = "true")]
    micros: Option<Int>,
}

/// `TSTInfo` (RFC 3161 §2.4.2). `genTime` is kept as read, because TSAs
/// write fractional seconds, which DER's `GeneralizedTime` type refuses.
#[derive(Clone, Debug, Sequence)]
struct TstInfo {
    version: Int,
    policy: ObjectIdentifier,
    message_imprint: MessageImprint,
    serial_number: Int,
    gen_time: Any,
    #[asn1(optional = "true")]
    accuracy: Option<Accuracy>,
    #[asn1(default = "Default::default")]
    ordering: bool,
    #[asn1(optional = "true")]
    nonce: Option<Int>,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    tsa: Option<GeneralName>,
    #[asn1(context_specific = "1", tag_mode = "IMPLICIT", optional = "true")]
    extensions: Option<x509_cert::ext::Extensions>,
}

/// A token taken apart, nothing checked yet.
#[derive(Debug, Clone)]
pub struct Token {
    /// Seconds since the epoch (fractions dropped).
    pub gen_time: i64,
    imprint_algorithm: ObjectIdentifier,
    imprint: Vec<u8>,
    econtent: Vec<u8>,
    signer: SignerInfo,
    certificates: Vec<Certificate>,
}

/// Reads a DER timestamp: a `TimeStampResp` as the TSA answered it (what
/// sigstore clients store in a bundle's `signedTimestamp`), or the bare
/// `TimeStampToken` inside it (RFC 3161 §2.4.2).
pub fn parse(token: &[u8]) -> Result<Token, String> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(format!(
            "the RFC 3161 timestamp is {} bytes, more than {MAX_TOKEN_BYTES}",
            token.len()
        ));
    }
    let malformed = |e: der::Error| format!("malformed RFC 3161 timestamp: {e}");
    let info = match ContentInfo::from_der(token) {
        Ok(info) => info,
        Err(bare) => granted_token(token).map_err(|e| match e {
            Some(reason) => reason,
            None => malformed(bare),
        })?,
    };
    if info.content_type != ID_SIGNED_DATA {
        return Err(format!(
            "the RFC 3161 timestamp is {} content, not SignedData",
            info.content_type
        ));
    }
    let signed: SignedData = info.content.decode_as().map_err(malformed)?;
    if signed.encap_content_info.econtent_type != ID_CT_TST_INFO {
        return Err(format!(
            "the RFC 3161 timestamp signs {} content, not TSTInfo",
            signed.encap_content_info.econtent_type
        ));
    }
    let econtent = signed
        .encap_content_info
        .econtent
        .as_ref()
        .ok_or_else(|| "the RFC 3161 timestamp has no TSTInfo".to_owned())?
        .decode_as::<OctetString>()
        .map_err(malformed)?
        .into_bytes()
        .into_vec();
    let tst = TstInfo::from_der(&econtent).map_err(malformed)?;
    let gen_time = generalized_time(&tst.gen_time)?;
    let signers = signed.signer_infos.0.into_vec();
    let [signer] = <[SignerInfo; 1]>::try_from(signers).map_err(|s| {
        format!(
            "the RFC 3161 timestamp has {} signers, exactly one is required",
            s.len()
        )
    })?;
    let mut certificates = Vec::new();
    for choice in signed
        .certificates
        .map(|c| c.0.into_vec())
        .unwrap_or_default()
    {
        if let cms::cert::CertificateChoices::Certificate(cert) = choice {
            if certificates.len() == MAX_EMBEDDED_CERTIFICATES {
                return Err(format!(
                    "the RFC 3161 timestamp embeds more than {MAX_EMBEDDED_CERTIFICATES} certificates"
                ));
            }
            certificates.push(cert);
        }
    }
    Ok(Token {
        gen_time,
        imprint_algorithm: tst.message_imprint.hash_algorithm.oid,
        imprint: tst.message_imprint.hashed_message.into_bytes().into_vec(),
        econtent,
        signer,
        certificates,
    })
}

/// The token of a `TimeStampResp` (`SEQUENCE { PKIStatusInfo, token }`)
/// whose status is granted (0) or granted with modifications (1). `None`:
/// not a response either.
fn granted_token(bytes: &[u8]) -> Result<ContentInfo, Option<String>> {
    let mut reader = SliceReader::new(bytes).map_err(|_| None)?;
    let (status, token) = reader
        .sequence(|r| -> der::Result<(Any, Option<ContentInfo>)> {
            let status: Any = r.decode()?;
            let token: Option<ContentInfo> = r.decode()?;
            Ok((status, token))
        })
        .map_err(|_| None)?;
    reader.finish().map_err(|_| None)?;
    if status.tag() != Tag::Sequence {
        return Err(None);
    }
    let mut status_reader = SliceReader::new(status.value()).map_err(|_| None)?;
    let code: Int = status_reader.decode().map_err(|_| None)?;
    if !matches!(code.as_bytes(), [0] | [1]) {
        return Err(Some(
            "the RFC 3161 timestamp response does not grant a timestamp".to_owned(),
        ));
    }
    token.ok_or_else(|| Some("the RFC 3161 timestamp response holds no token".to_owned()))
}

/// `YYYYMMDDhhmmss[.f*]Z`, the only form RFC 3161 allows.
fn generalized_time(value: &Any) -> Result<i64, String> {
    let bad = || "the RFC 3161 timestamp's genTime is not a UTC GeneralizedTime".to_owned();
    if value.tag() != Tag::GeneralizedTime {
        return Err(bad());
    }
    let text = std::str::from_utf8(value.value()).map_err(|_| bad())?;
    let text = text.strip_suffix('Z').ok_or_else(bad)?;
    let (whole, fraction) = text.split_once('.').unwrap_or((text, "0"));
    if whole.len() != 14
        || fraction.is_empty()
        || !whole
            .bytes()
            .chain(fraction.bytes())
            .all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    chrono::NaiveDateTime::parse_from_str(whole, "%Y%m%d%H%M%S")
        .map(|t| t.and_utc().timestamp())
        .map_err(|_| bad())
}

fn hash(algorithm: &ObjectIdentifier, data: &[u8]) -> Result<Vec<u8>, String> {
    let algorithm = match *algorithm {
        ID_SHA256 => &digest::SHA256,
        ID_SHA384 => &digest::SHA384,
        ID_SHA512 => &digest::SHA512,
        other => return Err(format!("unsupported hash algorithm {other}")),
    };
    Ok(digest::digest(algorithm, data).as_ref().to_vec())
}

impl Token {
    /// Checks the token against the trusted root's authorities and the
    /// bundle's `signature`; returns the time it proves.
    pub fn verify(
        &self,
        authorities: &[TimestampAuthority],
        signature: &[u8],
    ) -> Result<i64, String> {
        let expected = hash(&self.imprint_algorithm, signature)
            .map_err(|e| format!("the RFC 3161 timestamp's messageImprint: {e}"))?;
        if expected != self.imprint {
            return Err(
                "the RFC 3161 timestamp is over another signature (messageImprint does not match)"
                    .to_owned(),
            );
        }
        let signed_attributes = self.signed_attributes()?;
        if authorities.is_empty() {
            return Err(
                "the trusted root has no timestamp authorities to verify the RFC 3161 timestamp"
                    .to_owned(),
            );
        }
        let mut failures = Vec::new();
        for authority in authorities {
            match self.verify_with(authority, &signed_attributes) {
                Ok(()) => return Ok(self.gen_time),
                Err(e) => failures.push(format!("{}: {e}", describe(authority))),
            }
        }
        Err(format!(
            "the RFC 3161 timestamp is not from a timestamp authority of the trusted root: {}",
            failures.join("; ")
        ))
    }

    /// The signed attributes, re-encoded as the SET the signature covers,
    /// once their content type and message digest have been checked.
    fn signed_attributes(&self) -> Result<Vec<u8>, String> {
        let attributes = self
            .signer
            .signed_attrs
            .as_ref()
            .ok_or_else(|| "the RFC 3161 timestamp has no signed attributes".to_owned())?;
        let single = |oid: ObjectIdentifier, what: &str| {
            let mut found = attributes.iter().filter(|a| a.oid == oid);
            match (found.next(), found.next()) {
                (Some(a), None) if a.values.len() == 1 => {
                    a.values.iter().next().cloned().ok_or_else(String::new)
                }
                _ => Err(format!(
                    "the RFC 3161 timestamp's signed attributes need exactly one {what}"
                )),
            }
        };
        let content_type = single(ID_CONTENT_TYPE, "content type")?
            .decode_as::<ObjectIdentifier>()
            .map_err(|e| format!("the RFC 3161 timestamp's content type: {e}"))?;
        if content_type != ID_CT_TST_INFO {
            return Err("the RFC 3161 timestamp's signed content type is not TSTInfo".to_owned());
        }
        let message_digest = single(ID_MESSAGE_DIGEST, "message digest")?
            .decode_as::<OctetString>()
            .map_err(|e| format!("the RFC 3161 timestamp's message digest: {e}"))?;
        let expected = hash(&self.signer.digest_alg.oid, &self.econtent)
            .map_err(|e| format!("the RFC 3161 timestamp's digest algorithm: {e}"))?;
        if message_digest.as_bytes() != expected.as_slice() {
            return Err(
                "the RFC 3161 timestamp's TSTInfo does not match its signed digest".to_owned(),
            );
        }
        attributes
            .to_der()
            .map_err(|e| format!("the RFC 3161 timestamp's signed attributes: {e}"))
    }

    fn verify_with(&self, authority: &TimestampAuthority, signed: &[u8]) -> Result<(), String> {
        if !authority.valid_for.contains(self.gen_time) {
            return Err(format!(
                "genTime {} is outside the authority's validFor",
                self.gen_time
            ));
        }
        let (root, intermediates) = authority
            .chain
            .split_last()
            .ok_or_else(|| "no certificate chain".to_owned())?;
        // The signer: a certificate the token embeds or the authority's
        // leaf, whichever the signer identifier names.
        let mut candidates: Vec<Certificate> = self.certificates.clone();
        if let Ok(leaf) = Certificate::from_der(&authority.chain[0]) {
            candidates.push(leaf);
        }
        let signer = candidates
            .iter()
            .find(|c| names_signer(c, &self.signer.sid))
            .ok_or_else(|| "no certificate matches the token's signer".to_owned())?;
        let signer_der = signer.to_der().map_err(|e| e.to_string())?;
        check_time_stamping_usage(signer)?;
        let time = UnixTime::since_unix_epoch(std::time::Duration::from_secs(
            u64::try_from(self.gen_time).map_err(|_| "genTime is before 1970".to_owned())?,
        ));
        // webpki treats an anchor as a bare name and key; Go's x509 (what
        // sigstore-go verifies with) also holds the root to its validity.
        if !crate::certificate::valid_at(root, time) {
            return Err(format!(
                "the authority's root is not valid at genTime {}",
                self.gen_time
            ));
        }
        let anchor_der = CertificateDer::from(root.as_slice());
        let anchor = webpki::anchor_from_trusted_cert(&anchor_der)
            .map_err(|e| format!("the authority's root: {e:?}"))?;
        let intermediates: Vec<CertificateDer<'_>> = intermediates
            .iter()
            .map(|der| CertificateDer::from(der.as_slice()))
            .collect();
        let leaf = CertificateDer::from(signer_der.as_slice());
        let end_entity = EndEntityCert::try_from(&leaf).map_err(|e| format!("{e:?}"))?;
        end_entity
            .verify_for_usage(
                webpki::ALL_VERIFICATION_ALGS,
                &[anchor],
                &intermediates,
                time,
                KeyUsage::required(TIME_STAMPING),
                None,
                None,
            )
            .map_err(|e| format!("the signer's certificate does not chain at genTime: {e:?}"))?;
        verify_signature(signer, &self.signer, signed)
    }
}

const ECDSA_WITH_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
const ECDSA_WITH_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3");
const ECDSA_WITH_SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.4");
const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const SHA256_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");
const SHA384_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.12");
const SHA512_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.13");
const ID_ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");

/// The signer's signature over the signed attributes, with the algorithm
/// the signer info states, which need not be the key's usual hash (the
/// public-good TSA signs with P-384 and SHA-256).
fn verify_signature(cert: &Certificate, signer: &SignerInfo, signed: &[u8]) -> Result<(), String> {
    use aws_lc_rs::signature as sig;
    let spki = cert.tbs_certificate().subject_public_key_info();
    let key = PublicKey::from_spki_der(&spki.to_der().map_err(|e| e.to_string())?)?;
    let raw = spki
        .subject_public_key
        .as_bytes()
        .ok_or_else(|| "the signer's key is not a whole number of bytes".to_owned())?;
    let hash = match signer.signature_algorithm.oid {
        ECDSA_WITH_SHA256 | SHA256_WITH_RSA => ID_SHA256,
        ECDSA_WITH_SHA384 | SHA384_WITH_RSA => ID_SHA384,
        ECDSA_WITH_SHA512 | SHA512_WITH_RSA => ID_SHA512,
        RSA_ENCRYPTION => signer.digest_alg.oid,
        ID_ED25519 => ID_ED25519,
        other => return Err(format!("unsupported signature algorithm {other}")),
    };
    let algorithm: &dyn sig::VerificationAlgorithm = match (key.algorithm(), hash) {
        (KeyAlgorithm::EcdsaP256, ID_SHA256) => &sig::ECDSA_P256_SHA256_ASN1,
        (KeyAlgorithm::EcdsaP256, ID_SHA384) => &sig::ECDSA_P256_SHA384_ASN1,
        (KeyAlgorithm::EcdsaP384, ID_SHA256) => &sig::ECDSA_P384_SHA256_ASN1,
        (KeyAlgorithm::EcdsaP384, ID_SHA384) => &sig::ECDSA_P384_SHA384_ASN1,
        (KeyAlgorithm::EcdsaP521, ID_SHA512) => &sig::ECDSA_P521_SHA512_ASN1,
        (KeyAlgorithm::Rsa, ID_SHA256) => &sig::RSA_PKCS1_2048_8192_SHA256,
        (KeyAlgorithm::Rsa, ID_SHA384) => &sig::RSA_PKCS1_2048_8192_SHA384,
        (KeyAlgorithm::Rsa, ID_SHA512) => &sig::RSA_PKCS1_2048_8192_SHA512,
        (KeyAlgorithm::Ed25519, ID_ED25519) => &sig::ED25519,
        (key, _) => {
            return Err(format!(
                "a {key:?} key with signature algorithm {}",
                signer.signature_algorithm.oid
            ));
        }
    };
    sig::UnparsedPublicKey::new(algorithm, raw)
        .verify(signed, signer.signature.as_bytes())
        .map_err(|_| "the token's signature does not verify".to_owned())
}

fn describe(authority: &TimestampAuthority) -> String {
    if authority.uri.is_empty() {
        "timestamp authority".to_owned()
    } else {
        format!("timestamp authority {}", authority.uri)
    }
}

fn names_signer(cert: &Certificate, sid: &SignerIdentifier) -> bool {
    let tbs = cert.tbs_certificate();
    match sid {
        SignerIdentifier::IssuerAndSerialNumber(id) => {
            id.issuer == *tbs.issuer() && id.serial_number == *tbs.serial_number()
        }
        SignerIdentifier::SubjectKeyIdentifier(ski) => tbs
            .extensions()
            .into_iter()
            .flatten()
            .find(|e| e.extn_id == ID_CE_SUBJECT_KEY_IDENTIFIER)
            .and_then(|e| OctetString::from_der(e.extn_value.as_bytes()).ok())
            .is_some_and(|value| value.as_bytes() == ski.0.as_bytes()),
    }
}

/// RFC 3161 §2.3: exactly one EKU, id-kp-timeStamping, and critical.
fn check_time_stamping_usage(cert: &Certificate) -> Result<(), String> {
    let eku = cert
        .tbs_certificate()
        .extensions()
        .into_iter()
        .flatten()
        .find(|e| e.extn_id == ID_CE_EXT_KEY_USAGE)
        .ok_or_else(|| "the signer's certificate has no extended key usage".to_owned())?;
    let usages = x509_cert::ext::pkix::ExtendedKeyUsage::from_der(eku.extn_value.as_bytes())
        .map_err(|e| format!("the signer's extended key usage: {e}"))?;
    if !eku.critical || usages.0 != [ID_KP_TIME_STAMPING] {
        return Err(
            "the signer's certificate is not for time-stamping only (RFC 3161 requires a critical id-kp-timeStamping EKU)"
                .to_owned(),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn time(text: &str) -> Result<i64, String> {
        let mut der = vec![0x18, u8::try_from(text.len()).unwrap()];
        der.extend_from_slice(text.as_bytes());
        generalized_time(&Any::from_der(&der).unwrap())
    }

    #[test]
    fn gen_time_takes_fractions_and_only_utc() {
        // python3: datetime(2030,6,1,12,0,tzinfo=timezone.utc).timestamp()
        assert_eq!(time("20300601120000Z"), Ok(1_906_545_600));
        assert_eq!(time("20300601120000.123Z"), Ok(1_906_545_600));
        for bad in [
            "20300601120000",
            "20300601120000+0100",
            "203006011200Z",
            "20300601120000.Z",
            "20301301120000Z",
        ] {
            assert!(time(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bytes in [&b""[..], b"\x30\x00", b"\x30\x03\x06\x01\x00", &[0x30; 40]] {
            assert!(parse(bytes).is_err());
        }
        assert!(
            parse(&vec![0; MAX_TOKEN_BYTES + 1])
                .unwrap_err()
                .contains("more than")
        );
    }
}
