//! Sigstore's `trusted_root.json` (`sigstore_trustroot.proto`), read from a
//! file the operator names in criguard's config or on the command line,
//! once, at start. It is never fetched: an air-gapped node must verify with
//! what it was given.
//!
//! Only two parts are used. The transparency logs (`tlogs`) tell which
//! keys sign Rekor v2 checkpoints and when; a log counts for a policy only
//! when the policy also names its key, so the file never widens a policy.
//! The timestamp authorities (`timestampAuthorities`) are the only source of
//! time for a Rekor v2 entry, which carries none of its own. Certificate
//! authorities and CT logs are the policy's business (`fulcio.caPath`),
//! so they are counted but not trusted from here.

use std::fmt;

use serde::Deserialize;
use thiserror::Error;

use crate::proto_json::{Bytes, bounded_list, require_object};
use crate::public_key::PublicKey;

/// The largest trusted root criguard reads; the public instance's is about
/// 10 KiB.
pub const MAX_TRUSTED_ROOT_BYTES: usize = 1024 * 1024;
const MAX_LOGS: usize = 64;
const MAX_AUTHORITIES: usize = 64;
const MAX_CHAIN: usize = 8;

/// Why a trusted root cannot be used; each names the field to fix.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum TrustedRootError {
    #[error("the trusted root is {0} bytes, more than the {MAX_TRUSTED_ROOT_BYTES} criguard reads")]
    TooLarge(usize),
    #[error("invalid trusted root: {0}")]
    Json(String),
    #[error(
        "unsupported trusted root media type {0:?} (criguard reads application/vnd.dev.sigstore.trustedroot+json;version=0.1 and 0.2)"
    )]
    MediaType(String),
    #[error("trusted root {field}: {reason}")]
    Field { field: String, reason: String },
}

fn field_error(field: String, reason: impl fmt::Display) -> TrustedRootError {
    TrustedRootError::Field {
        field,
        reason: reason.to_string(),
    }
}

/// A half-open time range in seconds since the epoch; a missing end is
/// "still valid".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    pub start: i64,
    pub end: Option<i64>,
}

impl Validity {
    pub fn contains(&self, time: i64) -> bool {
        time >= self.start && self.end.is_none_or(|end| time <= end)
    }
}

/// One transparency log and the key that signs its checkpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransparencyLog {
    pub base_url: String,
    pub key: PublicKey,
    pub valid_for: Validity,
    pub log_id: Vec<u8>,
}

impl TransparencyLog {
    /// The name a checkpoint of this log carries as its origin and as the
    /// signer's name: the base URL without its scheme, as Rekor v2 writes it.
    pub fn origin(&self) -> &str {
        let url = self.base_url.trim_end_matches('/');
        url.strip_prefix("https://")
            .or_else(|| url.strip_prefix("http://"))
            .unwrap_or(url)
    }
}

/// One RFC 3161 timestamp authority: its chain, leaf first, root last.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimestampAuthority {
    pub uri: String,
    pub chain: Vec<Vec<u8>>,
    pub valid_for: Validity,
}

/// What criguard uses of a trusted root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedRoot {
    pub tlogs: Vec<TransparencyLog>,
    pub timestamp_authorities: Vec<TimestampAuthority>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawRoot {
    media_type: String,
    #[serde(default, deserialize_with = "bounded_list::<_, MAX_LOGS, _>")]
    tlogs: Vec<RawLog>,
    #[serde(default, deserialize_with = "bounded_list::<_, MAX_AUTHORITIES, _>")]
    timestamp_authorities: Vec<RawAuthority>,
    #[serde(default, deserialize_with = "bounded_list::<_, MAX_AUTHORITIES, _>")]
    #[allow(dead_code)]
    certificate_authorities: Vec<serde::de::IgnoredAny>,
    #[serde(default, deserialize_with = "bounded_list::<_, MAX_LOGS, _>")]
    #[allow(dead_code)]
    ctlogs: Vec<serde::de::IgnoredAny>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawLog {
    #[serde(default)]
    base_url: String,
    public_key: Option<RawPublicKey>,
    log_id: Option<RawLogId>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawPublicKey {
    #[serde(default)]
    raw_bytes: Bytes,
    #[serde(default)]
    key_details: String,
    valid_for: Option<RawRange>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawLogId {
    #[serde(default)]
    key_id: Bytes,
}

#[derive(Deserialize)]
struct RawRange {
    start: Option<String>,
    end: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawAuthority {
    #[serde(default)]
    uri: String,
    cert_chain: Option<RawChain>,
    valid_for: Option<RawRange>,
}

#[derive(Deserialize)]
struct RawChain {
    #[serde(default, deserialize_with = "bounded_list::<_, MAX_CHAIN, _>")]
    certificates: Vec<RawCertificate>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawCertificate {
    #[serde(default)]
    raw_bytes: Bytes,
}

impl TrustedRoot {
    /// Reads a trusted root. Any entry criguard would use but cannot read
    /// makes the whole file an error, so that a typo never silently drops
    /// a log or an authority.
    pub fn from_json(bytes: &[u8]) -> Result<TrustedRoot, TrustedRootError> {
        if bytes.len() > MAX_TRUSTED_ROOT_BYTES {
            return Err(TrustedRootError::TooLarge(bytes.len()));
        }
        require_object(bytes, "trusted root").map_err(TrustedRootError::Json)?;
        let raw: RawRoot =
            serde_json::from_slice(bytes).map_err(|e| TrustedRootError::Json(e.to_string()))?;
        if !raw
            .media_type
            .starts_with("application/vnd.dev.sigstore.trustedroot")
            || !(raw.media_type.ends_with("version=0.1") || raw.media_type.ends_with("version=0.2"))
        {
            return Err(TrustedRootError::MediaType(raw.media_type));
        }
        let tlogs = raw
            .tlogs
            .into_iter()
            .enumerate()
            .map(|(i, log)| read_log(i, log))
            .collect::<Result<_, _>>()?;
        let timestamp_authorities = raw
            .timestamp_authorities
            .into_iter()
            .enumerate()
            .map(|(i, tsa)| read_authority(i, tsa))
            .collect::<Result<_, _>>()?;
        Ok(TrustedRoot {
            tlogs,
            timestamp_authorities,
        })
    }
}

fn read_log(i: usize, log: RawLog) -> Result<TransparencyLog, TrustedRootError> {
    let field = |name: &str| format!("tlogs[{i}].{name}");
    let key = log
        .public_key
        .ok_or_else(|| field_error(field("publicKey"), "missing"))?;
    let public_key = PublicKey::from_spki_der(&key.raw_bytes.0).map_err(|e| {
        field_error(
            field("publicKey.rawBytes"),
            format!("{e} (keyDetails {:?})", key.key_details),
        )
    })?;
    let valid_for = validity(key.valid_for, &field("publicKey.validFor"))?;
    if log.base_url.is_empty() {
        return Err(field_error(field("baseUrl"), "missing"));
    }
    Ok(TransparencyLog {
        base_url: log.base_url,
        key: public_key,
        valid_for,
        log_id: log.log_id.map(|id| id.key_id.0).unwrap_or_default(),
    })
}

fn read_authority(i: usize, tsa: RawAuthority) -> Result<TimestampAuthority, TrustedRootError> {
    let field = |name: &str| format!("timestampAuthorities[{i}].{name}");
    let chain: Vec<Vec<u8>> = tsa
        .cert_chain
        .map(|c| c.certificates.into_iter().map(|c| c.raw_bytes.0).collect())
        .unwrap_or_default();
    if chain.is_empty() {
        return Err(field_error(field("certChain"), "no certificates"));
    }
    for (n, der) in chain.iter().enumerate() {
        <x509_cert::Certificate as der::Decode>::from_der(der)
            .map_err(|e| field_error(field(&format!("certChain.certificates[{n}]")), e))?;
    }
    Ok(TimestampAuthority {
        uri: tsa.uri,
        chain,
        valid_for: validity(tsa.valid_for, &field("validFor"))?,
    })
}

/// A `validFor` range: the start is required, as a key with no known start
/// would be trusted for anything signed before it existed.
fn validity(range: Option<RawRange>, field: &str) -> Result<Validity, TrustedRootError> {
    let range = range.ok_or_else(|| field_error(field.to_owned(), "missing"))?;
    let start = range
        .start
        .as_deref()
        .ok_or_else(|| field_error(format!("{field}.start"), "missing"))
        .and_then(|t| rfc3339(t).map_err(|e| field_error(format!("{field}.start"), e)))?;
    let end = range
        .end
        .as_deref()
        .map(|t| rfc3339(t).map_err(|e| field_error(format!("{field}.end"), e)))
        .transpose()?;
    if end.is_some_and(|end| end < start) {
        return Err(field_error(field.to_owned(), "ends before it starts"));
    }
    Ok(Validity { start, end })
}

/// A protobuf `Timestamp` in JSON: RFC 3339, in seconds.
fn rfc3339(text: &str) -> Result<i64, String> {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.timestamp())
        .map_err(|e| format!("{text:?} is not an RFC 3339 time: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An Ed25519 SubjectPublicKeyInfo (RFC 8410 prefix + 32 key bytes).
    fn ed25519_spki() -> Vec<u8> {
        let mut der = vec![
            0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
        ];
        der.extend_from_slice(&[7; 32]);
        der
    }

    fn root(tlog_extra: &str) -> String {
        use base64::Engine as _;
        let key = base64::engine::general_purpose::STANDARD.encode(ed25519_spki());
        format!(
            r#"{{"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1",
            "tlogs":[{{"baseUrl":"https://log.test","hashAlgorithm":"SHA2_256",
              "publicKey":{{"rawBytes":"{key}","keyDetails":"PKIX_ED25519",
                "validFor":{{"start":"2025-01-01T00:00:00Z"{tlog_extra}}}}},
              "logId":{{"keyId":"AAEC"}}}}],
            "certificateAuthorities":[],"ctlogs":[],"timestampAuthorities":[]}}"#
        )
    }

    #[test]
    fn a_log_is_read_with_its_validity_and_origin() {
        let parsed = TrustedRoot::from_json(root("").as_bytes()).unwrap();
        let [log] = parsed.tlogs.as_slice() else {
            panic!("one log expected")
        };
        assert_eq!(log.origin(), "log.test");
        assert_eq!(log.log_id, vec![0, 1, 2]);
        assert_eq!(log.valid_for.start, 1_735_689_600);
        assert!(log.valid_for.contains(1_735_689_600));
        assert!(!log.valid_for.contains(1_735_689_599));
        let ended =
            TrustedRoot::from_json(root(r#","end":"2025-01-02T00:00:00.5Z""#).as_bytes()).unwrap();
        assert!(!ended.tlogs[0].valid_for.contains(1_735_776_001));
    }

    #[test]
    fn unusable_roots_are_refused_with_the_field_to_fix() {
        for (text, expected) in [
            (root("").replace("version=0.1", "version=9"), "media type"),
            (
                root("").replace("2025-01-01T00:00:00Z", "yesterday"),
                "tlogs[0].publicKey.validFor.start",
            ),
            (
                root(r#","end":"2024-01-01T00:00:00Z""#),
                "ends before it starts",
            ),
            (
                root("").replace("\"rawBytes\":\"", "\"rawBytes\":\"AAAA"),
                "tlogs[0].publicKey.rawBytes",
            ),
            (
                root("").replace(
                    "\"timestampAuthorities\":[]",
                    "\"timestampAuthorities\":[{\"certChain\":{\"certificates\":[{\"rawBytes\":\"AAAA\"}]},\"validFor\":{\"start\":\"2025-01-01T00:00:00Z\"}}]",
                ),
                "timestampAuthorities[0].certChain.certificates[0]",
            ),
            (
                root("").replace(
                    "\"ctlogs\":[]",
                    &format!("\"ctlogs\":[{}]", ["{}"; 65].join(",")),
                ),
                "more than 64",
            ),
            ("[]".to_owned(), "not a JSON object"),
        ] {
            let error = TrustedRoot::from_json(text.as_bytes()).unwrap_err().to_string();
            assert!(error.contains(expected), "{expected}: {error}");
        }
        let huge = vec![b' '; MAX_TRUSTED_ROOT_BYTES + 1];
        assert_eq!(
            TrustedRoot::from_json(&huge),
            Err(TrustedRootError::TooLarge(MAX_TRUSTED_ROOT_BYTES + 1))
        );
    }
}
