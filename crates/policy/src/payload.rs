//! The signed JSON payload ("simple signing" format) of GPG and sigstore
//! signatures, read strictly.
//!
//! The payload is only read after its signature has been verified, and it is
//! still treated as hostile: exact keys, no duplicates, a valid digest.

use criguard_reference::Digest;
use serde_json::value::RawValue;

use crate::json::{self, Kind, Node, Path, Reader};

/// `critical.type` of GPG simple signing.
pub const ATOMIC_SIGNATURE_TYPE: &str = "atomic container signature";
/// `critical.type` of cosign signatures.
pub const COSIGN_SIGNATURE_TYPE: &str = "cosign container image signature";
/// Media type of a sigstore attachment that is a signature.
pub const COSIGN_SIGNATURE_MIME_TYPE: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// The media type of a sigstore bundle (v0.3), cosign 3's signature format:
/// a DSSE envelope over an in-toto statement that names the image by digest
/// only. criguard's extension; containers/image does not read it.
pub const SIGSTORE_BUNDLE_MIME_TYPE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";

/// Largest payload accepted, as containers/image's signature body limit.
pub const MAX_PAYLOAD_SIZE: usize = 4 * 1024 * 1024;

/// Which of the two payload flavours is expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadFormat {
    /// GPG simple signing: `optional` must be an object.
    Atomic,
    /// cosign: `optional` may be `null`.
    Cosign,
}

impl PayloadFormat {
    fn signature_type(self) -> &'static str {
        match self {
            Self::Atomic => ATOMIC_SIGNATURE_TYPE,
            Self::Cosign => COSIGN_SIGNATURE_TYPE,
        }
    }
}

/// What a verified payload claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payload {
    pub docker_manifest_digest: Digest,
    /// Not validated here: the `signedIdentity` rule decides what it must be.
    pub docker_reference: String,
    pub creator: Option<String>,
    pub timestamp: Option<i64>,
}

/// Reads `text` as one JSON object with exactly `fields` (no others, no
/// duplicates, none missing), returning their raw values in the order of
/// `fields`. This is containers/image's "paranoid" reading of signed JSON,
/// shared with the crates that read Rekor bundles.
pub fn exact_json_object<'a>(
    text: &'a str,
    fields: &[&str],
) -> Result<Vec<&'a serde_json::value::RawValue>, String> {
    let (mut r, root) = Reader::new(text).map_err(|p| p.message)?;
    let path = Path::Root;
    let node = Reader::root(root, &path);
    let values = exact(&mut r, &node, fields);
    match (values, r.into_problems().into_iter().next()) {
        (Some(values), None) => Ok(values),
        (_, Some(problem)) => Err(problem.message),
        (None, None) => Err("invalid JSON object".to_owned()),
    }
}

/// Go's `encoding/json` decoding of a `[]byte` field: standard base64 with
/// padding, CR and LF ignored.
pub fn decode_go_base64(text: &str) -> Result<Vec<u8>, String> {
    json::decode_go_base64(text)
}

/// Reads a payload; the error is the reason in containers/image's words.
pub fn parse_payload(bytes: &[u8], format: PayloadFormat) -> Result<Payload, String> {
    if bytes.len() > MAX_PAYLOAD_SIZE {
        return Err(format!(
            "signature payload of {} bytes is too large",
            bytes.len()
        ));
    }
    let text = std::str::from_utf8(bytes).map_err(|e| format!("payload is not UTF-8: {e}"))?;
    let (mut r, root) = Reader::new(text).map_err(|p| p.message)?;
    let path = Path::Root;
    let node = Reader::root(root, &path);
    let payload = read(&mut r, &node, format);
    let problems = r.into_problems();
    match (payload, problems.into_iter().next()) {
        (Some(payload), None) => Ok(payload),
        (_, Some(problem)) => Err(problem.message),
        (None, None) => Err("invalid signature payload".to_owned()),
    }
}

/// Reads an object that must have exactly `fields`, in containers/image's
/// order of complaints, returning the members in the order of `fields`.
pub(crate) fn exact<'a>(
    r: &mut Reader<'a>,
    node: &Node<'a, '_>,
    fields: &[&str],
) -> Option<Vec<&'a RawValue>> {
    let members = r.object(node)?;
    if r.has_problems() {
        return None;
    }
    for key in members.keys() {
        if !fields.contains(&key) {
            r.report(node, format!("Unknown key {key:?}"));
            return None;
        }
    }
    fields
        .iter()
        .map(|f| match members.get(f) {
            Some(raw) => Some(raw),
            None => {
                r.report(node, format!("Key {f:?} missing in a JSON object"));
                None
            }
        })
        .collect()
}

fn read<'a>(r: &mut Reader<'a>, node: &Node<'a, '_>, format: PayloadFormat) -> Option<Payload> {
    let top = exact(r, node, &["critical", "optional"])?;
    let (critical, optional) = (top[0], top[1]);

    let optional_path = Path::Key(node.path(), "optional");
    let optional = json::child(optional, &optional_path);
    let (creator, timestamp) = if format == PayloadFormat::Cosign && optional.is_null() {
        (None, None)
    } else {
        read_optional(r, &optional)?
    };

    let critical_path = Path::Key(node.path(), "critical");
    let critical = json::child(critical, &critical_path);
    let fields = exact(r, &critical, &["type", "image", "identity"])?;
    let type_path = Path::Key(&critical_path, "type");
    let kind = r.string(&json::child(fields[0], &type_path), "\"type\"")?;
    if kind != format.signature_type() {
        r.report(&critical, format!("Unrecognized signature type {kind}"));
        return None;
    }

    let image_path = Path::Key(&critical_path, "image");
    let image = json::child(fields[1], &image_path);
    let digest_raw = exact(r, &image, &["docker-manifest-digest"])?[0];
    let digest_path = Path::Key(&image_path, "docker-manifest-digest");
    let digest_text = r.string(
        &json::child(digest_raw, &digest_path),
        "\"docker-manifest-digest\"",
    )?;
    let docker_manifest_digest = match Digest::parse(&digest_text) {
        Ok(d) => d,
        Err(e) => {
            r.report(
                &image,
                format!("invalid docker-manifest-digest value {digest_text:?}: {e}"),
            );
            return None;
        }
    };

    let identity_path = Path::Key(&critical_path, "identity");
    let identity = json::child(fields[2], &identity_path);
    let reference_raw = exact(r, &identity, &["docker-reference"])?[0];
    let reference_path = Path::Key(&identity_path, "docker-reference");
    let docker_reference = r.string(
        &json::child(reference_raw, &reference_path),
        "\"docker-reference\"",
    )?;

    Some(Payload {
        docker_manifest_digest,
        docker_reference,
        creator,
        timestamp,
    })
}

/// `optional` may hold anything, but `creator` must be a string and
/// `timestamp` an integral number.
fn read_optional<'a>(
    r: &mut Reader<'a>,
    node: &Node<'a, '_>,
) -> Option<(Option<String>, Option<i64>)> {
    let members = r.object(node)?;
    if r.has_problems() {
        return None;
    }
    let mut creator = None;
    let mut timestamp = None;
    let mut failed = false;
    members.for_each(node.path(), |key, value| match key {
        "creator" => match r.string(&value, "\"creator\"") {
            Some(s) => creator = Some(s),
            None => failed = true,
        },
        "timestamp" => match value.kind() {
            Kind::Null => timestamp = Some(0),
            Kind::Number => match value.raw().parse::<f64>() {
                Ok(t) if t.fract() == 0.0 && t.abs() < 9.2e18 => timestamp = Some(t as i64),
                _ => {
                    r.report(&value, "Field optional.timestamp is not an integer");
                    failed = true;
                }
            },
            _ => {
                r.report(&value, "\"timestamp\" must be a number");
                failed = true;
            }
        },
        _ => {}
    });
    (!failed).then_some((creator, timestamp))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn cosign(critical: &str, optional: &str) -> String {
        format!(r#"{{"critical":{critical},"optional":{optional}}}"#)
    }

    fn critical(kind: &str) -> String {
        format!(
            r#"{{"identity":{{"docker-reference":"example.com/a"}},"image":{{"docker-manifest-digest":"{DIGEST}"}},"type":"{kind}"}}"#
        )
    }

    #[test]
    fn cosign_payload_with_null_optional() {
        let p = parse_payload(
            cosign(&critical(COSIGN_SIGNATURE_TYPE), "null").as_bytes(),
            PayloadFormat::Cosign,
        )
        .unwrap();
        assert_eq!(p.docker_reference, "example.com/a");
        assert_eq!(p.docker_manifest_digest.as_str(), DIGEST);
    }

    #[test]
    fn atomic_payload_refuses_null_optional() {
        let err = parse_payload(
            cosign(&critical(ATOMIC_SIGNATURE_TYPE), "null").as_bytes(),
            PayloadFormat::Atomic,
        )
        .unwrap_err();
        assert_eq!(err, "JSON object expected, got <nil>");
        let ok = parse_payload(
            cosign(
                &critical(ATOMIC_SIGNATURE_TYPE),
                r#"{"creator":"x","timestamp":12,"other":[1]}"#,
            )
            .as_bytes(),
            PayloadFormat::Atomic,
        )
        .unwrap();
        assert_eq!(ok.timestamp, Some(12));
        assert_eq!(ok.creator.as_deref(), Some("x"));
    }

    #[test]
    fn breakers_are_rejected() {
        let good = critical(COSIGN_SIGNATURE_TYPE);
        let cases: Vec<(String, &str)> = vec![
            (
                r#"{"optional":null}"#.to_owned(),
                "Key \"critical\" missing in a JSON object",
            ),
            (
                format!(r#"{{"critical":{good}}}"#),
                "Key \"optional\" missing in a JSON object",
            ),
            (
                format!(r#"{{"critical":{good},"optional":null,"x":1}}"#),
                "Unknown key \"x\"",
            ),
            (cosign("1", "null"), "JSON object expected, got 1"),
            (cosign(&good, "1"), "JSON object expected, got 1"),
            (
                cosign(&critical("unexpected"), "null"),
                "Unrecognized signature type unexpected",
            ),
            (
                cosign(&good.replace(DIGEST, "sha256:../.."), "null"),
                "invalid docker-manifest-digest value \"sha256:../..\": invalid checksum digest length",
            ),
            (
                cosign(&good, r#"{"creator":1}"#),
                "\"creator\" must be a string, got a number",
            ),
            (
                cosign(&good, r#"{"timestamp":0.5}"#),
                "Field optional.timestamp is not an integer",
            ),
            (
                cosign(&good, r#"{"timestamp":"unexpected"}"#),
                "\"timestamp\" must be a number",
            ),
            (
                cosign(&good.replace(r#""type""#, r#""type":"x","type""#), "null"),
                "Duplicate key \"type\"",
            ),
            (
                cosign(
                    &good.replace(r#"{"docker-reference":"example.com/a"}"#, "1"),
                    "null",
                ),
                "JSON object expected, got 1",
            ),
            (
                cosign(&good.replace(r#""example.com/a""#, "1"), "null"),
                "\"docker-reference\" must be a string, got a number",
            ),
            ("&".to_owned(), "expected value"),
            ("{}".to_owned(), "Key \"critical\" missing in a JSON object"),
        ];
        for (input, want) in cases {
            let err = parse_payload(input.as_bytes(), PayloadFormat::Cosign).unwrap_err();
            assert!(err.contains(want), "{input}: got {err:?}, want {want:?}");
        }
    }
}
