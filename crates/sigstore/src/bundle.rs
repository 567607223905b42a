//! Sigstore bundles (`sigstore_bundle.proto`, v0.3), as cosign 3 attaches
//! them to images: the verification material (a key hint, a certificate
//! or a chain), the transparency-log entries and timestamps, and the
//! signed content, which for an image signature is a DSSE envelope.
//!
//! Parsing only reads; nothing here is trusted until `bundle_verifier`
//! has checked it. Every list is bounded while parsing.

use serde::Deserialize;

use crate::dsse::{Envelope, RawEnvelope};
use crate::proto_json::{Bytes, Int64, bounded_list, require_object};

/// The media type of a v0.3 bundle, as an OCI artifact type and layer.
pub const BUNDLE_MEDIA_TYPE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
/// The same version in the bundle's own `mediaType` field, older spelling.
const BUNDLE_MEDIA_TYPE_PARAMETER: &str = "application/vnd.dev.sigstore.bundle+json;version=0.3";

const MAX_TLOG_ENTRIES: usize = 8;
const MAX_CHAIN_CERTIFICATES: usize = 8;
const MAX_TIMESTAMPS: usize = 8;
const MAX_PROOF_HASHES: usize = 64;

/// A parsed bundle holding a DSSE envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bundle {
    pub material: Material,
    pub tlog_entries: Vec<TlogEntry>,
    /// The RFC 3161 timestamp tokens (DER), checked only against an
    /// operator's trusted root.
    pub rfc3161_timestamps: Vec<Vec<u8>>,
    pub envelope: Envelope,
}

/// Who signed, as the bundle says: checked against the policy's trust.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Material {
    /// A key known to the verifier; the hint is not authenticated.
    PublicKey { hint: String },
    /// A leaf certificate (DER).
    Certificate(Vec<u8>),
    /// A leaf certificate and then intermediates (DER), leaf first.
    Chain(Vec<Vec<u8>>),
}

/// One transparency-log entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlogEntry {
    pub log_index: i64,
    pub log_id: Vec<u8>,
    pub kind: String,
    pub version: String,
    pub integrated_time: i64,
    /// The Rekor v1 signed entry timestamp; Rekor v2 entries have none.
    pub signed_entry_timestamp: Option<Vec<u8>>,
    pub inclusion_proof: Option<InclusionProof>,
    pub canonicalized_body: Vec<u8>,
}

/// An entry's inclusion proof up to a checkpoint (a C2SP signed note).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InclusionProof {
    pub log_index: i64,
    pub root_hash: Vec<u8>,
    pub tree_size: i64,
    pub hashes: Vec<Vec<u8>>,
    pub checkpoint: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawBundle {
    media_type: String,
    verification_material: Option<RawMaterial>,
    dsse_envelope: Option<RawEnvelope>,
    message_signature: Option<serde::de::IgnoredAny>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawMaterial {
    public_key: Option<RawHint>,
    x509_certificate_chain: Option<RawChain>,
    certificate: Option<RawCertificate>,
    #[serde(default, deserialize_with = "bounded_list::<_, MAX_TLOG_ENTRIES, _>")]
    tlog_entries: Vec<RawTlogEntry>,
    timestamp_verification_data: Option<RawTimestamps>,
}

#[derive(Deserialize)]
struct RawHint {
    #[serde(default)]
    hint: String,
}

#[derive(Deserialize)]
struct RawChain {
    #[serde(
        default,
        deserialize_with = "bounded_list::<_, MAX_CHAIN_CERTIFICATES, _>"
    )]
    certificates: Vec<RawCertificate>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawCertificate {
    #[serde(default)]
    raw_bytes: Bytes,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawTimestamps {
    #[serde(default, deserialize_with = "bounded_list::<_, MAX_TIMESTAMPS, _>")]
    rfc3161_timestamps: Vec<RawTimestamp>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawTimestamp {
    #[serde(default)]
    signed_timestamp: Bytes,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawTlogEntry {
    #[serde(default)]
    log_index: Int64,
    log_id: Option<RawLogId>,
    kind_version: Option<RawKindVersion>,
    #[serde(default)]
    integrated_time: Int64,
    inclusion_promise: Option<RawPromise>,
    inclusion_proof: Option<RawProof>,
    #[serde(default)]
    canonicalized_body: Bytes,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawLogId {
    #[serde(default)]
    key_id: Bytes,
}

#[derive(Deserialize)]
struct RawKindVersion {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    version: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawPromise {
    #[serde(default)]
    signed_entry_timestamp: Bytes,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawProof {
    #[serde(default)]
    log_index: Int64,
    #[serde(default)]
    root_hash: Bytes,
    #[serde(default)]
    tree_size: Int64,
    #[serde(default, deserialize_with = "bounded_list::<_, MAX_PROOF_HASHES, _>")]
    hashes: Vec<Bytes>,
    checkpoint: Option<RawCheckpoint>,
}

#[derive(Deserialize)]
struct RawCheckpoint {
    #[serde(default)]
    envelope: String,
}

impl Bundle {
    /// Reads a bundle (its size is bounded by the caller: a registry layer
    /// or a stored signature is at most 4 MiB).
    pub fn from_json(bytes: &[u8]) -> Result<Bundle, String> {
        require_object(bytes, "sigstore bundle")?;
        let raw: RawBundle =
            serde_json::from_slice(bytes).map_err(|e| format!("invalid sigstore bundle: {e}"))?;
        if raw.media_type != BUNDLE_MEDIA_TYPE && raw.media_type != BUNDLE_MEDIA_TYPE_PARAMETER {
            return Err(format!(
                "unsupported sigstore bundle media type {:?} (criguard reads {BUNDLE_MEDIA_TYPE:?})",
                raw.media_type
            ));
        }
        let envelope = match (raw.dsse_envelope, raw.message_signature) {
            (Some(envelope), None) => Envelope::from(envelope),
            (None, Some(_)) => {
                return Err(
                    "the sigstore bundle holds a message signature, not the DSSE envelope of a cosign image signature"
                        .to_owned(),
                );
            }
            (None, None) => return Err("the sigstore bundle has no content".to_owned()),
            (Some(_), Some(_)) => {
                return Err("the sigstore bundle has two kinds of content".to_owned());
            }
        };
        let material = raw
            .verification_material
            .ok_or_else(|| "the sigstore bundle has no verificationMaterial".to_owned())?;
        let key = match (
            material.public_key,
            material.certificate,
            material.x509_certificate_chain,
        ) {
            (Some(hint), None, None) => Material::PublicKey { hint: hint.hint },
            (None, Some(certificate), None) => Material::Certificate(certificate.raw_bytes.0),
            (None, None, Some(chain)) => {
                if chain.certificates.is_empty() {
                    return Err("the sigstore bundle's certificate chain is empty".to_owned());
                }
                Material::Chain(
                    chain
                        .certificates
                        .into_iter()
                        .map(|c| c.raw_bytes.0)
                        .collect(),
                )
            }
            (None, None, None) => {
                return Err("the sigstore bundle names no key or certificate".to_owned());
            }
            _ => {
                return Err(
                    "the sigstore bundle names more than one kind of key material".to_owned(),
                );
            }
        };
        let tlog_entries = material
            .tlog_entries
            .into_iter()
            .map(|entry| {
                let kind = entry.kind_version.unwrap_or(RawKindVersion {
                    kind: String::new(),
                    version: String::new(),
                });
                TlogEntry {
                    log_index: entry.log_index.0,
                    log_id: entry.log_id.map(|id| id.key_id.0).unwrap_or_default(),
                    kind: kind.kind,
                    version: kind.version,
                    integrated_time: entry.integrated_time.0,
                    signed_entry_timestamp: entry
                        .inclusion_promise
                        .map(|p| p.signed_entry_timestamp.0)
                        .filter(|set| !set.is_empty()),
                    inclusion_proof: entry.inclusion_proof.map(|p| InclusionProof {
                        log_index: p.log_index.0,
                        root_hash: p.root_hash.0,
                        tree_size: p.tree_size.0,
                        hashes: p.hashes.into_iter().map(|h| h.0).collect(),
                        checkpoint: p.checkpoint.map(|c| c.envelope).unwrap_or_default(),
                    }),
                    canonicalized_body: entry.canonicalized_body.0,
                }
            })
            .collect();
        Ok(Bundle {
            material: key,
            tlog_entries,
            rfc3161_timestamps: material
                .timestamp_verification_data
                .map(|t| {
                    t.rfc3161_timestamps
                        .into_iter()
                        .map(|t| t.signed_timestamp.0)
                        .collect()
                })
                .unwrap_or_default(),
            envelope,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What cosign 3.1.1 pushed for `cosign sign --key` with a signing
    /// config without Rekor and TSA.
    const COSIGN_KEY_BUNDLE: &str = r#"{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","verificationMaterial":{"publicKey":{"hint":"ELD4uJ+BIoiCgDDbg1G1oa8Px9Q0s/KcIEYwb4meUmQ="}},"dsseEnvelope":{"payload":"eyJfdHlwZSI6Imh0dHBzOi8vaW4tdG90by5pby9TdGF0ZW1lbnQvdjEiLCJzdWJqZWN0IjpbeyJkaWdlc3QiOnsic2hhMjU2IjoiYzk4NjZmYTNlZmFlMzhjYzY0NGVjMjlhMzYyMDk5ZTYwYjM2Nzg5NmJkODAwYjY5YjVlMzVlZjU4NTYzYjFlYiJ9LCJhbm5vdGF0aW9ucyI6e319XSwicHJlZGljYXRlVHlwZSI6Imh0dHBzOi8vc2lnc3RvcmUuZGV2L2Nvc2lnbi9zaWduL3YxIiwicHJlZGljYXRlIjp7fX0=","payloadType":"application/vnd.in-toto+json","signatures":[{"sig":"MEYCIQD+09JA3J/4ZIpwFIcpor/bGv77ypFKXsL7jY/WBQ+Z/AIhAMT/HtCFGSFpstFvLGiYDXDyWlqal+CD6GHYJUfSWHOU"}]}}"#;

    #[test]
    fn cosign3_key_bundle_parses() {
        let bundle = Bundle::from_json(COSIGN_KEY_BUNDLE.as_bytes()).unwrap();
        assert!(matches!(bundle.material, Material::PublicKey { .. }));
        assert!(bundle.tlog_entries.is_empty());
        assert_eq!(bundle.envelope.payload_type, "application/vnd.in-toto+json");
        assert_eq!(
            crate::statement::signed_digests(&bundle.envelope.payload).unwrap(),
            vec!["sha256:c9866fa3efae38cc644ec29a362099e60b367896bd800b69b5e35ef58563b1eb"]
        );
    }

    #[test]
    fn malformed_bundles_are_refused_with_a_reason() {
        let envelope = r#""dsseEnvelope":{"payload":"","payloadType":"t","signatures":[]}"#;
        for (text, expected) in [
            (
                format!(
                    r#"{{"mediaType":"application/vnd.dev.sigstore.bundle+json;version=0.1","verificationMaterial":{{"publicKey":{{}}}},{envelope}}}"#
                ),
                "unsupported sigstore bundle media type",
            ),
            (
                format!(r#"{{"mediaType":"{BUNDLE_MEDIA_TYPE}",{envelope}}}"#),
                "no verificationMaterial",
            ),
            (
                format!(
                    r#"{{"mediaType":"{BUNDLE_MEDIA_TYPE}","verificationMaterial":{{"publicKey":{{}}}},"messageSignature":{{}}}}"#
                ),
                "message signature",
            ),
            (
                format!(
                    r#"{{"mediaType":"{BUNDLE_MEDIA_TYPE}","verificationMaterial":{{"publicKey":{{}},"certificate":{{"rawBytes":""}}}},{envelope}}}"#
                ),
                "more than one kind",
            ),
            (
                format!(
                    r#"{{"mediaType":"{BUNDLE_MEDIA_TYPE}","verificationMaterial":{{"x509CertificateChain":{{"certificates":[]}}}},{envelope}}}"#
                ),
                "chain is empty",
            ),
            (
                format!(
                    r#"{{"mediaType":"{BUNDLE_MEDIA_TYPE}","verificationMaterial":{{"publicKey":{{}},"tlogEntries":[{}]}},{envelope}}}"#,
                    ["{}"; 9].join(",")
                ),
                "more than 8",
            ),
            ("null".to_owned(), "invalid sigstore bundle"),
            (r#"["x"]"#.to_owned(), "not a JSON object"),
        ] {
            let error = Bundle::from_json(text.as_bytes()).unwrap_err();
            assert!(error.contains(expected), "{text}: {error}");
        }
    }
}
