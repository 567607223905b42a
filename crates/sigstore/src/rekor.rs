//! Rekor "signed entry timestamps" (the `dev.sigstore.cosign/bundle`
//! annotation), checked offline the way containers/image checks them.
//!
//! A SET proves that a Rekor log with a key we trust accepted an entry at
//! `integratedTime`. It proves nothing about *this* signature unless the
//! entry's body is bound to it, so after the log's signature we require the
//! body to be a `hashedrekord` 0.0.1 entry naming exactly this key or
//! certificate, this signature and the hash of this payload. Other entry
//! kinds are refused, as upstream refuses them.

use aws_lc_rs::digest;
use criguard_policy::payload::{decode_go_base64, exact_json_object};
use serde_json::Value;
use serde_json::value::RawValue;

use crate::pem;
use crate::public_key::PublicKey;

/// What a verified SET tells us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SetEntry {
    /// Seconds since the epoch at which the log integrated the entry; a
    /// Fulcio certificate must be valid at this time.
    pub integrated_time: i64,
    pub log_index: i64,
}

/// Verifies `set` against the Rekor keys, then binds its entry to
/// `key_or_cert_pem` (one PEM block), `signature_base64` and `payload`.
pub fn verify_set(
    rekor_keys: &[PublicKey],
    set: &str,
    key_or_cert_pem: &[u8],
    signature_base64: &str,
    payload: &[u8],
) -> Result<SetEntry, String> {
    let fields = exact_json_object(set, &["SignedEntryTimestamp", "Payload"])
        .map_err(|e| format!("invalid format of the Rekor SET: {e}"))?;
    let set_signature =
        json_bytes(fields[0]).map_err(|e| format!("invalid format of the Rekor SET: {e}"))?;
    let canonical =
        canonicalize(fields[1]).map_err(|e| format!("canonicalizing Rekor SET JSON: {e}"))?;
    if !rekor_keys
        .iter()
        .any(|key| key.verify_asn1(&canonical, &set_signature).is_ok())
    {
        return Err("cryptographic signature verification of Rekor SET failed".to_owned());
    }

    let canonical =
        String::from_utf8(canonical).map_err(|e| format!("parsing Rekor SET payload: {e}"))?;
    let fields = exact_json_object(&canonical, &["body", "integratedTime", "logIndex", "logID"])
        .map_err(|e| format!("parsing Rekor SET payload: {e}"))?;
    let body = json_bytes(fields[0]).map_err(|e| format!("parsing Rekor SET payload: {e}"))?;
    let integrated_time = json_i64(fields[1], "integratedTime")
        .map_err(|e| format!("parsing Rekor SET payload: {e}"))?;
    let log_index =
        json_i64(fields[2], "logIndex").map_err(|e| format!("parsing Rekor SET payload: {e}"))?;
    serde_json::from_str::<String>(fields[3].get())
        .map_err(|e| format!("parsing Rekor SET payload: logID: {e}"))?;

    check_body(&body, key_or_cert_pem, signature_base64, payload)?;
    Ok(SetEntry {
        integrated_time,
        log_index,
    })
}

/// RFC 8785 canonical JSON of the value exactly as delivered; duplicate
/// keys make it fail, as they make Go's canonicalizer fail.
fn canonicalize(raw: &RawValue) -> Result<Vec<u8>, String> {
    let mut de = serde_json::Deserializer::from_str(raw.get());
    serde_json_canonicalizer::to_vec(&serde_transcode::Transcoder::new(&mut de))
        .map_err(|e| e.to_string())
}

fn json_bytes(raw: &RawValue) -> Result<Vec<u8>, String> {
    match serde_json::from_str::<Option<String>>(raw.get()) {
        Ok(Some(text)) => decode_go_base64(&text),
        Ok(None) => Ok(Vec::new()),
        Err(e) => Err(e.to_string()),
    }
}

fn json_i64(raw: &RawValue, what: &str) -> Result<i64, String> {
    serde_json::from_str::<i64>(raw.get()).map_err(|e| format!("{what}: {e}"))
}

/// The checks on the log entry itself, in containers/image's order: kind and
/// version, then key or certificate, signature, and payload hash.
fn check_body(
    body: &[u8],
    key_or_cert_pem: &[u8],
    signature_base64: &str,
    payload: &[u8],
) -> Result<(), String> {
    let body: Value = serde_json::from_slice(body)
        .map_err(|e| format!("decoding the body of a Rekor SET payload: {e}"))?;
    let kind = match body.get("kind") {
        Some(Value::String(kind)) => kind.as_str(),
        Some(Value::Null) | None => "",
        Some(_) => {
            return Err(
                "decoding the body of a Rekor SET payload: kind must be a string".to_owned(),
            );
        }
    };
    if kind != "hashedrekord" {
        return Err(format!(
            "decoding the body of a Rekor SET payload: invalid kind value: {kind:?}"
        ));
    }
    let version = match body.get("apiVersion") {
        None | Some(Value::Null) => return Err("missing Rekor SET Payload API version".to_owned()),
        Some(Value::String(v)) => v.as_str(),
        Some(other) => {
            return Err(format!(
                "decoding the body of a Rekor SET payload: apiVersion must be a string, got {other}"
            ));
        }
    };
    if version != "0.0.1" {
        return Err(format!(
            "unsupported Rekor SET Payload hashedrekord version {version:?}"
        ));
    }
    let spec = match body.get("spec") {
        Some(Value::Object(spec)) => spec,
        Some(Value::Null) | None => {
            return Err(r#"Missing "signature" field in hashedrekord"#.to_owned());
        }
        Some(other) => return Err(format!("decoding hashedrekod spec: spec is {other}")),
    };

    let signature = object_field(spec.get("signature"), "signature")?
        .ok_or_else(|| r#"Missing "signature" field in hashedrekord"#.to_owned())?;
    let public_key = object_field(signature.get("publicKey"), "signature.publicKey")?
        .ok_or_else(|| r#"Missing "signature.publicKey" field in hashedrekord"#.to_owned())?;
    let entry_key = base64_field(public_key.get("content"), "signature.publicKey.content")?;
    let (entry_block, rest) = pem::decode(&entry_key)
        .ok_or_else(|| "publicKey in Rekor SET is not in PEM format".to_owned())?;
    if !rest.is_empty() {
        return Err("publicKey in Rekor SET has trailing data".to_owned());
    }
    let (our_block, rest) = pem::decode(key_or_cert_pem).ok_or_else(|| {
        "public key or cert to be matched against publicKey in Rekor SET is not in PEM format"
            .to_owned()
    })?;
    if !rest.is_empty() {
        return Err(
            "public key or cert to be matched against publicKey in Rekor SET has trailing data"
                .to_owned(),
        );
    }
    if entry_block.der != our_block.der {
        return Err("publicKey in Rekor SET does not match".to_owned());
    }

    let entry_signature = base64_field(signature.get("content"), "signature.content")?;
    let our_signature = decode_go_base64(signature_base64)
        .map_err(|e| format!("decoding signature base64: {e}"))?;
    if entry_signature != our_signature {
        return Err(format!(
            "signature in Rekor SET does not match: {} vs. {}",
            go_bytes(&entry_signature),
            go_bytes(&our_signature)
        ));
    }

    let data = object_field(spec.get("data"), "data")?
        .ok_or_else(|| r#"Missing "data" field in hashedrekord"#.to_owned())?;
    let hash = object_field(data.get("hash"), "data.hash")?
        .ok_or_else(|| r#"Missing "data.hash" field in hashedrekord"#.to_owned())?;
    let algorithm = string_field(hash.get("algorithm"), "data.hash.algorithm")?
        .ok_or_else(|| r#"Missing "data.hash.algorithm" field in hashedrekord"#.to_owned())?;
    let value = string_field(hash.get("value"), "data.hash.value")?
        .ok_or_else(|| r#"Missing "data.hash.value" field in hashedrekord"#.to_owned())?;
    if algorithm != "sha256" {
        return Err(format!(
            r#"Unexpected "data.hash.algorithm" value {algorithm:?}"#
        ));
    }
    let expected = decode_hex(value)
        .map_err(|e| format!(r#"Invalid "data.hash.value" field in hashedrekord: {e}"#))?;
    if digest::digest(&digest::SHA256, payload).as_ref() != expected.as_slice() {
        return Err("payload in Rekor SET does not match".to_owned());
    }
    Ok(())
}

type Object = serde_json::Map<String, Value>;

/// An optional object member; `null` counts as absent, as a nil Go pointer.
fn object_field<'v>(value: Option<&'v Value>, what: &str) -> Result<Option<&'v Object>, String> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(object)) => Ok(Some(object)),
        Some(other) => Err(format!("decoding hashedrekod spec: {what} is {other}")),
    }
}

fn string_field<'v>(value: Option<&'v Value>, what: &str) -> Result<Option<&'v str>, String> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(format!("decoding hashedrekod spec: {what} is {other}")),
    }
}

/// A base64 member; absent or `null` decodes to no bytes, as in Go.
fn base64_field(value: Option<&Value>, what: &str) -> Result<Vec<u8>, String> {
    match string_field(value, what)? {
        None => Ok(Vec::new()),
        Some(text) => {
            decode_go_base64(text).map_err(|e| format!("decoding hashedrekod spec: {what}: {e}"))
        }
    }
}

fn decode_hex(text: &str) -> Result<Vec<u8>, String> {
    if !text.len().is_multiple_of(2) {
        return Err("encoding/hex: odd length hex string".to_owned());
    }
    (0..text.len())
        .step_by(2)
        .map(|i| {
            text.get(i..i + 2)
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                .ok_or_else(|| format!("encoding/hex: invalid byte at offset {i}"))
        })
        .collect()
}

/// Go's `%#v` of a byte slice, which upstream's message uses.
fn go_bytes(bytes: &[u8]) -> String {
    let items: Vec<String> = bytes.iter().map(|b| format!("0x{b:x}")).collect();
    format!("[]byte{{{}}}", items.join(", "))
}

/// A Rekor v1 entry of a sigstore bundle, checked offline: its signed
/// entry timestamp (the inclusion promise) must verify with a Rekor key
/// over the entry as Rekor would have served it (body, time, index, log
/// ID), and its body must be a `dsse` 0.0.1 entry for exactly this
/// envelope's payload, signature and signer. Returns the log's time.
pub(crate) fn verify_bundle_entry(
    rekor_keys: &[PublicKey],
    entry: &crate::bundle::TlogEntry,
    signer_der: &[u8],
    signature: &[u8],
    payload: &[u8],
) -> Result<SetEntry, String> {
    let Some(set) = &entry.signed_entry_timestamp else {
        return Err(format!(
            "the bundle's transparency log entry ({} {}) has no signed entry timestamp (a Rekor v2 entry): \
             verifying it needs a trusted_root.json, which criguard does not read yet; sign with a Rekor v1 \
             signing config, or without Rekor (keys only)",
            entry.kind, entry.version
        ));
    };
    let promise = serde_json::json!({
        "body": base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            &entry.canonicalized_body
        ),
        "integratedTime": entry.integrated_time,
        "logIndex": entry.log_index,
        "logID": hex(&entry.log_id),
    });
    let canonical = serde_json_canonicalizer::to_vec(&promise)
        .map_err(|e| format!("canonicalizing the bundle's Rekor entry: {e}"))?;
    if !rekor_keys
        .iter()
        .any(|key| key.verify_asn1(&canonical, set).is_ok())
    {
        return Err(
            "cryptographic signature verification of the bundle's Rekor SET failed".to_owned(),
        );
    }
    check_dsse_body(entry, signer_der, signature, payload)?;
    Ok(SetEntry {
        integrated_time: entry.integrated_time,
        log_index: entry.log_index,
    })
}

/// The `dsse` 0.0.1 body: the hash of this payload, and one signature that
/// is this signature by this key or certificate.
fn check_dsse_body(
    entry: &crate::bundle::TlogEntry,
    signer_der: &[u8],
    signature: &[u8],
    payload: &[u8],
) -> Result<(), String> {
    if entry.kind != "dsse" || entry.version != "0.0.1" {
        return Err(format!(
            "the bundle's Rekor entry is {} {}, not dsse 0.0.1",
            entry.kind, entry.version
        ));
    }
    let body: Value = serde_json::from_slice(&entry.canonicalized_body)
        .map_err(|e| format!("decoding the bundle's Rekor entry body: {e}"))?;
    let field = |path: &[&str]| {
        path.iter()
            .try_fold(&body, |value, key| value.get(key))
            .and_then(Value::as_str)
    };
    if field(&["kind"]) != Some("dsse") || field(&["apiVersion"]) != Some("0.0.1") {
        return Err("the bundle's Rekor entry body is not dsse 0.0.1".to_owned());
    }
    if field(&["spec", "payloadHash", "algorithm"]) != Some("sha256") {
        return Err("the bundle's Rekor entry has no sha256 payloadHash".to_owned());
    }
    let expected = hex(digest::digest(&digest::SHA256, payload).as_ref());
    if field(&["spec", "payloadHash", "value"]) != Some(expected.as_str()) {
        return Err("payload in the bundle's Rekor entry does not match".to_owned());
    }
    let signatures = body
        .get("spec")
        .and_then(|s| s.get("signatures"))
        .and_then(Value::as_array)
        .ok_or_else(|| "the bundle's Rekor entry lists no signatures".to_owned())?;
    let [only] = signatures.as_slice() else {
        return Err(format!(
            "the bundle's Rekor entry lists {} signatures, exactly one is required",
            signatures.len()
        ));
    };
    let logged_signature = only
        .get("signature")
        .and_then(Value::as_str)
        .map(decode_go_base64)
        .transpose()?
        .unwrap_or_default();
    if logged_signature != signature {
        return Err("signature in the bundle's Rekor entry does not match".to_owned());
    }
    let verifier = only
        .get("verifier")
        .and_then(Value::as_str)
        .map(decode_go_base64)
        .transpose()?
        .unwrap_or_default();
    let (block, rest) = pem::decode(&verifier)
        .ok_or_else(|| "verifier in the bundle's Rekor entry is not in PEM format".to_owned())?;
    if !rest.is_empty() || block.der != signer_der {
        return Err("verifier in the bundle's Rekor entry does not match".to_owned());
    }
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
