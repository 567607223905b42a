//! Certificate-based trust: Fulcio (keyless) and `pki` (the user's own CA).
//!
//! Chains are validated by rustls-webpki at an explicit time: for Fulcio
//! the Rekor `integratedTime`, because a Fulcio certificate lives for ten
//! minutes and only the log proves the signature was made inside them; for
//! PKI the current time. Identity checks (OIDC issuer, email, hostname) read
//! the leaf with `x509-cert`, because they need extensions and SAN types
//! webpki does not expose.

use const_oid::ObjectIdentifier;
use der::asn1::{AnyRef, Ia5String};
use der::{Decode, Reader, SliceReader, Tag};
use rustls_pki_types::{CertificateDer, ServerName, TrustAnchor, UnixTime};
use webpki::{EndEntityCert, KeyUsage};
use x509_cert::Certificate;
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::ext::pkix::name::GeneralName;

use crate::pem;
use crate::public_key::PublicKey;

const ID_CE_SUBJECT_ALT_NAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.17");
/// Fulcio's first, deprecated issuer extension: the value is the raw bytes.
const FULCIO_ISSUER_V1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.57264.1.1");
/// Fulcio's issuer extension since 2022: the value is a DER string.
const FULCIO_ISSUER_V2: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.57264.1.8");
/// id-kp-codeSigning (1.3.6.1.5.5.7.3.3), as the DER bytes webpki compares.
const CODE_SIGNING: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x03];

/// A CA bundle read the way Go's `CertPool.AppendCertsFromPEM` reads one:
/// `CERTIFICATE` blocks without headers that parse; anything else skipped.
pub(crate) fn lenient_pool(pem_bytes: &[u8]) -> Vec<Vec<u8>> {
    pem::decode_all_lenient(pem_bytes)
        .into_iter()
        .filter(|b| b.label == "CERTIFICATE" && !b.has_headers)
        .filter(|b| Certificate::from_der(&b.der).is_ok())
        .map(|b| b.der)
        .collect()
}

/// A certificate list where every block must be a certificate (any label),
/// as sigstore's `UnmarshalCertificatesFromPEM` requires.
pub(crate) fn strict_list(pem_bytes: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    pem::decode_all_strict(pem_bytes)?
        .into_iter()
        .map(|b| {
            parse(&b.der)?;
            Ok(b.der)
        })
        .collect()
}

fn parse(der: &[u8]) -> Result<Certificate, String> {
    let cert =
        Certificate::from_der(der).map_err(|e| format!("x509: malformed certificate: {e}"))?;
    let extensions = extensions(&cert);
    for (i, ext) in extensions.iter().enumerate() {
        if extensions[..i].iter().any(|e| e.extn_id == ext.extn_id) {
            return Err("x509: certificate contains duplicate extensions".to_owned());
        }
    }
    Ok(cert)
}

/// A certificate's extensions; none is an empty list.
fn extensions(cert: &Certificate) -> &[x509_cert::ext::Extension] {
    cert.tbs_certificate()
        .extensions()
        .map_or(&[][..], Vec::as_slice)
}

/// The signing certificate from the `dev.sigstore.cosign/certificate`
/// annotation: exactly one.
struct Leaf {
    der: Vec<u8>,
    cert: Certificate,
    /// The subject alternative names, read once for the identity checks.
    names: Vec<GeneralName>,
    san_critical: bool,
}

impl Leaf {
    fn from_pem(pem_bytes: &[u8]) -> Result<Self, String> {
        let context = |e: String| format!("parsing leaf certificate: {e}");
        // Every block is parsed before they are counted, as sigstore's
        // `UnmarshalCertificatesFromPEM` does, so a bad block is reported
        // as such whatever the count; each is parsed once.
        let mut certs = pem::decode_all_strict(pem_bytes)
            .map_err(context)?
            .into_iter()
            .map(|block| parse(&block.der).map(|cert| (block.der, cert)))
            .collect::<Result<Vec<_>, _>>()
            .map_err(context)?;
        let (der, cert) = match certs.len() {
            0 => return Err("no certificate found in signature certificate data".to_owned()),
            1 => certs.remove(0),
            _ => {
                return Err(
                    "unexpected multiple certificates present in signature certificate data"
                        .to_owned(),
                );
            }
        };
        let san = extensions(&cert)
            .iter()
            .find(|e| e.extn_id == ID_CE_SUBJECT_ALT_NAME);
        let names = san
            .and_then(|e| SubjectAltName::from_der(e.extn_value.as_bytes()).ok())
            .map(|san| san.0)
            .unwrap_or_default();
        let san_critical = san.is_some_and(|e| e.critical);
        Ok(Self {
            der,
            cert,
            names,
            san_critical,
        })
    }

    fn public_key(&self) -> Result<PublicKey, String> {
        let spki = der::Encode::to_der(self.cert.tbs_certificate().subject_public_key_info())
            .map_err(|e| format!("x509: {e}"))?;
        PublicKey::from_spki_der(&spki)
    }

    fn extensions(&self) -> &[x509_cert::ext::Extension] {
        extensions(&self.cert)
    }

    fn emails(&self) -> Vec<String> {
        self.san_strings(|name| match name {
            GeneralName::Rfc822Name(email) => Some(email),
            _ => None,
        })
    }

    fn dns_names(&self) -> Vec<String> {
        self.san_strings(|name| match name {
            GeneralName::DnsName(dns) => Some(dns),
            _ => None,
        })
    }

    /// The subject alternative names of one kind, as text.
    fn san_strings(&self, pick: fn(&GeneralName) -> Option<&Ia5String>) -> Vec<String> {
        self.names.iter().filter_map(pick).map(ia5).collect()
    }

    /// Go marks a critical SAN extension "unhandled" when it holds none of
    /// the name types Go knows (for example only an `otherName`). Fulcio
    /// mode forgives that; PKI mode does not.
    fn has_unhandled_critical_san(&self) -> bool {
        self.san_critical
            && !self.names.iter().any(|name| {
                matches!(
                    name,
                    GeneralName::Rfc822Name(_)
                        | GeneralName::DnsName(_)
                        | GeneralName::IpAddress(_)
                        | GeneralName::UniformResourceIdentifier(_)
                )
            })
    }

    /// Validates the chain to `roots` through `intermediates`, for code
    /// signing, at `time`.
    fn verify_chain(
        &self,
        roots: &[Vec<u8>],
        intermediates: &[Vec<u8>],
        time: UnixTime,
    ) -> Result<(), String> {
        // Each anchor beside the certificate it came from, whose dates
        // are checked below.
        let (trust_anchors, anchor_certs): (Vec<TrustAnchor<'_>>, Vec<&[u8]>) = roots
            .iter()
            .filter_map(|der| {
                let cert = CertificateDer::from(der.as_slice());
                webpki::anchor_from_trusted_cert(&cert)
                    .ok()
                    .map(|anchor| (anchor.to_owned(), der.as_slice()))
            })
            .unzip();
        let intermediates: Vec<CertificateDer<'_>> = intermediates
            .iter()
            .map(|der| CertificateDer::from(der.as_slice()))
            .collect();
        let leaf = CertificateDer::from(self.der.as_slice());
        let end_entity = EndEntityCert::try_from(&leaf).map_err(go_x509_error)?;
        let path = end_entity
            .verify_for_usage(
                webpki::ALL_VERIFICATION_ALGS,
                &trust_anchors,
                &intermediates,
                time,
                // Go accepts a certificate without an EKU extension for any usage.
                KeyUsage::required_if_present(CODE_SIGNING),
                None,
                None,
            )
            .map_err(go_x509_error)?;
        // webpki treats a trust anchor as a name and a key only; Go also
        // requires the root certificate itself to be valid at `time`.
        let used = path.anchor();
        let root = trust_anchors
            .iter()
            .position(|anchor| {
                anchor.subject == used.subject
                    && anchor.subject_public_key_info == used.subject_public_key_info
            })
            .and_then(|i| anchor_certs.get(i).copied())
            .ok_or_else(|| "x509: certificate signed by unknown authority".to_owned())?;
        if !valid_at(root, time) {
            return Err("x509: certificate has expired or is not yet valid".to_owned());
        }
        Ok(())
    }
}

/// Whether a (parsable) certificate's validity period includes `time`.
pub(crate) fn valid_at(der: &[u8], time: UnixTime) -> bool {
    let Ok(cert) = Certificate::from_der(der) else {
        return false;
    };
    let validity = cert.tbs_certificate().validity();
    let now = time.as_secs();
    validity.not_before.to_unix_duration().as_secs() <= now
        && now <= validity.not_after.to_unix_duration().as_secs()
}

fn ia5(value: &Ia5String) -> String {
    value.to_string()
}

/// Go's wording for the chain errors a user is most likely to meet.
fn go_x509_error(error: webpki::Error) -> String {
    use webpki::Error as E;
    match error {
        E::CertExpired { .. } | E::CertNotValidYet { .. } => {
            "x509: certificate has expired or is not yet valid".to_owned()
        }
        E::UnknownIssuer => "x509: certificate signed by unknown authority".to_owned(),
        E::RequiredEkuNotFoundContext(_) => {
            "x509: certificate specifies an incompatible key usage".to_owned()
        }
        E::UnsupportedCriticalExtension => "x509: unhandled critical extension".to_owned(),
        other => format!("x509: {other:?}"),
    }
}

/// Go's `%q` of a string slice: `["a" "b"]`.
fn go_quoted_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| format!("{s:?}")).collect();
    format!("[{}]", quoted.join(" "))
}

fn check_email(leaf: &Leaf, required: &str) -> Result<(), String> {
    let emails = leaf.emails();
    if emails.iter().any(|e| e == required) {
        Ok(())
    } else {
        Err(format!(
            "Required email {required:?} not found (got {})",
            go_quoted_list(&emails)
        ))
    }
}

/// Chain annotation: every certificate but the last (assumed to be the
/// root, which must come from the policy instead) is an untrusted
/// intermediate.
fn chain_intermediates(chain_pem: Option<&[u8]>) -> Result<Vec<Vec<u8>>, String> {
    let Some(chain_pem) = chain_pem else {
        return Ok(Vec::new());
    };
    let mut chain =
        strict_list(chain_pem).map_err(|e| format!("loading certificate chain: {e}"))?;
    chain.pop();
    Ok(chain)
}

/// The OIDC issuer a Fulcio certificate was issued for.
fn oidc_issuer(leaf: &Leaf) -> Result<String, String> {
    let mut v1 = None;
    let mut v2 = None;
    for ext in leaf.extensions() {
        if ext.extn_id == FULCIO_ISSUER_V1 {
            v1 = Some(String::from_utf8_lossy(ext.extn_value.as_bytes()).into_owned());
        } else if ext.extn_id == FULCIO_ISSUER_V2 {
            v2 = Some(decode_der_string(ext.extn_value.as_bytes())?);
        }
    }
    match (v1, v2) {
        (None, None) => Err("Fulcio certificate is missing the issuer extension".to_owned()),
        (Some(v1), Some(v2)) if v1 != v2 => Err(format!(
            "inconsistent OIDC issuer extension values: v1 {v1:?}, v2 {v2:?}"
        )),
        (Some(issuer), _) | (None, Some(issuer)) => Ok(issuer),
    }
}

/// Go's `asn1.Unmarshal` into a string: UTF8String, PrintableString or
/// IA5String, with nothing after it.
fn decode_der_string(bytes: &[u8]) -> Result<String, String> {
    let mut reader = SliceReader::new(bytes).map_err(|e| {
        format!("invalid ASN.1 in OIDC issuer v2 extension: asn1: structure error: {e}")
    })?;
    let any: AnyRef<'_> = reader.decode().map_err(|e| {
        format!("invalid ASN.1 in OIDC issuer v2 extension: asn1: structure error: {e}")
    })?;
    if !reader.is_finished() {
        return Err("invalid ASN.1 in OIDC issuer v2 extension, trailing data".to_owned());
    }
    match der::Tagged::tag(&any) {
        Tag::Utf8String | Tag::PrintableString | Tag::Ia5String => {
            String::from_utf8(any.value().to_vec()).map_err(|e| {
                format!("invalid ASN.1 in OIDC issuer v2 extension: asn1: structure error: {e}")
            })
        }
        tag => Err(format!(
            "invalid ASN.1 in OIDC issuer v2 extension: asn1: structure error: tags don't match ({tag})"
        )),
    }
}

/// Fulcio's part of keyless verification, after the Rekor SET has given
/// `integrated_time`: returns the leaf's key, which must then verify the
/// payload signature.
pub(crate) fn verify_fulcio(
    ca_roots: &[Vec<u8>],
    oidc_issuer_required: &str,
    subject_email: &str,
    integrated_time: UnixTime,
    certificate_pem: &[u8],
    chain_pem: Option<&[u8]>,
) -> Result<PublicKey, String> {
    let intermediates = chain_intermediates(chain_pem)?;
    verify_fulcio_leaf(
        ca_roots,
        oidc_issuer_required,
        subject_email,
        integrated_time,
        certificate_pem,
        &intermediates,
    )
}

/// [`verify_fulcio`] with the untrusted intermediates already read (a
/// bundle's chain lists them as DER, without the root).
pub(crate) fn verify_fulcio_leaf(
    ca_roots: &[Vec<u8>],
    oidc_issuer_required: &str,
    subject_email: &str,
    integrated_time: UnixTime,
    certificate_pem: &[u8],
    intermediates: &[Vec<u8>],
) -> Result<PublicKey, String> {
    let leaf = Leaf::from_pem(certificate_pem)?;
    leaf.verify_chain(ca_roots, intermediates, integrated_time)
        .map_err(|e| format!("veryfing leaf certificate failed: {e}"))?;
    let issuer = oidc_issuer(&leaf)?;
    if issuer != oidc_issuer_required {
        return Err(format!("Unexpected Fulcio OIDC issuer {issuer:?}"));
    }
    check_email(&leaf, subject_email)?;
    leaf.public_key()
}

/// What a `pki` requirement asks of the signing certificate.
pub(crate) struct PkiIdentity<'a> {
    pub(crate) subject_email: Option<&'a str>,
    pub(crate) subject_hostname: Option<&'a str>,
}

/// Bring-your-own-CA verification at `now`: returns the leaf's key.
pub(crate) fn verify_pki(
    roots: &[Vec<u8>],
    configured_intermediates: &[Vec<u8>],
    identity: &PkiIdentity<'_>,
    now: UnixTime,
    certificate_pem: &[u8],
    chain_pem: Option<&[u8]>,
) -> Result<PublicKey, String> {
    let mut intermediates = configured_intermediates.to_vec();
    intermediates.extend(chain_intermediates(chain_pem)?);
    let leaf = Leaf::from_pem(certificate_pem)?;
    if leaf.has_unhandled_critical_san() {
        return Err(
            "veryfing leaf certificate failed: x509: unhandled critical extension".to_owned(),
        );
    }
    leaf.verify_chain(roots, &intermediates, now)
        .map_err(|e| format!("veryfing leaf certificate failed: {e}"))?;
    if let Some(email) = identity.subject_email {
        check_email(&leaf, email)?;
    }
    if let Some(hostname) = identity.subject_hostname {
        check_hostname(&leaf, hostname)?;
    }
    leaf.public_key()
}

fn check_hostname(leaf: &Leaf, hostname: &str) -> Result<(), String> {
    let der = CertificateDer::from(leaf.der.as_slice());
    let valid = ServerName::try_from(hostname)
        .ok()
        .and_then(|name| {
            EndEntityCert::try_from(&der)
                .ok()
                .map(|ee| ee.verify_is_valid_for_subject_name(&name).is_ok())
        })
        .unwrap_or(false);
    if valid {
        return Ok(());
    }
    let names = leaf.dns_names();
    let reason = if names.is_empty() {
        format!("x509: certificate is not valid for any names, but wanted to match {hostname}")
    } else {
        format!(
            "x509: certificate is valid for {}, not {hostname}",
            names.join(", ")
        )
    };
    Err(format!("Unexpected subject hostname: {reason}"))
}
