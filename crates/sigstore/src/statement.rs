//! The in-toto statement a cosign 3 image signature signs: it names the
//! image only by digest (`subject[].digest.sha256`) and says what kind of
//! claim it is (`predicateType`). Read only after the envelope's signature
//! verified.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::proto_json::bounded_list;

/// The in-toto statement types accepted.
const STATEMENT_TYPES: &[&str] = &[
    "https://in-toto.io/Statement/v1",
    "https://in-toto.io/Statement/v0.1",
];

/// What `cosign sign` claims: that the subject is signed. Attestations
/// (provenance, SBOMs) are bundles too, but an attestation is not a
/// signature of the image and never satisfies a signature requirement.
pub const COSIGN_SIGN_PREDICATE: &str = "https://sigstore.dev/cosign/sign/v1";

/// Most subjects read; cosign writes one.
const MAX_SUBJECTS: usize = 64;

#[derive(Deserialize)]
struct RawStatement {
    #[serde(rename = "_type")]
    statement_type: String,
    #[serde(default, deserialize_with = "bounded_list::<_, MAX_SUBJECTS, _>")]
    subject: Vec<RawSubject>,
    #[serde(rename = "predicateType")]
    predicate_type: String,
}

#[derive(Deserialize)]
struct RawSubject {
    #[serde(default)]
    digest: BTreeMap<String, String>,
}

/// The image digests (`sha256:<hex>`) a cosign signature statement names.
pub fn signed_digests(payload: &[u8]) -> Result<Vec<String>, String> {
    crate::proto_json::require_object(payload, "in-toto statement in the bundle")?;
    let raw: RawStatement = serde_json::from_slice(payload)
        .map_err(|e| format!("invalid in-toto statement in the bundle: {e}"))?;
    if !STATEMENT_TYPES.contains(&raw.statement_type.as_str()) {
        return Err(format!(
            "unsupported in-toto statement type {:?}",
            raw.statement_type
        ));
    }
    if raw.predicate_type != COSIGN_SIGN_PREDICATE {
        return Err(format!(
            "the bundle is an attestation with predicateType {:?}, not a cosign signature ({COSIGN_SIGN_PREDICATE:?})",
            raw.predicate_type
        ));
    }
    let digests: Vec<String> = raw
        .subject
        .iter()
        .filter_map(|s| s.digest.get("sha256"))
        .map(|hex| format!("sha256:{hex}"))
        .collect();
    if digests.is_empty() {
        return Err("the in-toto statement names no sha256 subject digest".to_owned());
    }
    Ok(digests)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosign_statements_name_their_digest() {
        let statement = br#"{"_type":"https://in-toto.io/Statement/v1","subject":[{"digest":{"sha256":"ab"},"annotations":{}}],"predicateType":"https://sigstore.dev/cosign/sign/v1","predicate":{}}"#;
        assert_eq!(signed_digests(statement).unwrap(), vec!["sha256:ab"]);
    }

    #[test]
    fn other_statements_are_refused() {
        for (statement, expected) in [
            (
                r#"{"_type":"https://in-toto.io/Statement/v1","subject":[{"digest":{"sha256":"ab"}}],"predicateType":"https://slsa.dev/provenance/v1"}"#,
                "attestation",
            ),
            (
                r#"{"_type":"x","subject":[],"predicateType":"https://sigstore.dev/cosign/sign/v1"}"#,
                "statement type",
            ),
            (
                r#"{"_type":"https://in-toto.io/Statement/v1","subject":[{"digest":{"sha512":"ab"}}],"predicateType":"https://sigstore.dev/cosign/sign/v1"}"#,
                "no sha256",
            ),
            ("[]", "invalid in-toto"),
            (
                r#"["https://in-toto.io/Statement/v1",[],"https://sigstore.dev/cosign/sign/v1"]"#,
                "not a JSON object",
            ),
        ] {
            let error = signed_digests(statement.as_bytes()).unwrap_err();
            assert!(error.contains(expected), "{error}");
        }
    }
}
