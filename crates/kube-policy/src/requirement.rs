//! One policy object's `spec.policy` as one policy.json `sigstoreSigned`
//! requirement.
//!
//! Key and certificate data stay base64 of the PEM bytes, which is what
//! policy.json's `[]byte` fields hold; they are decoded and encoded again
//! so that line breaks the API allows in the object do not reach the file.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};

use crate::resources::{MatchPolicy, Policy};
use crate::validate::decode_data;

/// The requirement for a validated `spec.policy`; `None` only if a field
/// that validation accepted cannot be decoded (never for validated input).
pub(crate) fn sigstore_signed(policy: &Policy) -> Option<Value> {
    let mut out = Map::new();
    out.insert("type".into(), json!("sigstoreSigned"));
    let root = &policy.root_of_trust;
    if let Some(key) = &root.public_key {
        out.insert("keyData".into(), data(&key.key_data)?);
        if let Some(rekor) = &key.rekor_key_data {
            out.insert("rekorPublicKeyData".into(), data(rekor)?);
        }
    } else if let Some(fulcio) = &root.fulcio_ca_with_rekor {
        out.insert(
            "fulcio".into(),
            json!({
                "caData": data(&fulcio.fulcio_ca_data)?,
                "oidcIssuer": fulcio.fulcio_subject.oidc_issuer,
                "subjectEmail": fulcio.fulcio_subject.signed_email,
            }),
        );
        out.insert("rekorPublicKeyData".into(), data(&fulcio.rekor_key_data)?);
    } else if let Some(pki) = &root.pki {
        let mut fields = Map::new();
        fields.insert("caRootsData".into(), data(&pki.ca_roots_data)?);
        if let Some(intermediates) = &pki.ca_intermediates_data {
            fields.insert("caIntermediatesData".into(), data(intermediates)?);
        }
        let subject = &pki.pki_certificate_subject;
        if let Some(email) = &subject.email {
            fields.insert("subjectEmail".into(), json!(email));
        }
        if let Some(hostname) = &subject.hostname {
            fields.insert("subjectHostname".into(), json!(hostname));
        }
        out.insert("pki".into(), Value::Object(fields));
    } else {
        return None;
    }
    out.insert("signedIdentity".into(), signed_identity(policy)?);
    Some(Value::Object(out))
}

fn data(text: &str) -> Option<Value> {
    decode_data(text)
        .ok()
        .map(|bytes| Value::String(STANDARD.encode(bytes)))
}

fn signed_identity(policy: &Policy) -> Option<Value> {
    let Some(identity) = &policy.signed_identity else {
        return Some(json!({"type": "matchRepoDigestOrExact"}));
    };
    Some(match identity.match_policy {
        MatchPolicy::MatchRepoDigestOrExact => json!({"type": "matchRepoDigestOrExact"}),
        MatchPolicy::MatchRepository => json!({"type": "matchRepository"}),
        MatchPolicy::ExactRepository => json!({
            "type": "exactRepository",
            "dockerRepository": identity.exact_repository.as_ref()?.repository,
        }),
        MatchPolicy::RemapIdentity => {
            let remap = identity.remap_identity.as_ref()?;
            json!({
                "type": "remapIdentity",
                "prefix": remap.prefix,
                "signedPrefix": remap.signed_prefix,
            })
        }
    })
}
