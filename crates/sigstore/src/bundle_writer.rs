//! cosign 3's signature of an image, written: a v0.3 sigstore bundle with
//! the key's hint, no log entry, and a DSSE envelope over the in-toto
//! statement naming the manifest digest, as `cosign sign --key` writes it
//! with a signing config without Rekor.

use aws_lc_rs::digest;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::bundle::BUNDLE_MEDIA_TYPE;
use crate::cosign_key::{CosignKeyError, SigningKey};
use crate::dsse::{IN_TOTO_PAYLOAD_TYPE, pae};
use crate::statement::COSIGN_SIGN_PREDICATE;

/// The statement `cosign sign` makes for `manifest_digest` (`sha256:<hex>`).
pub fn cosign_statement(manifest_digest: &str) -> Result<Vec<u8>, CosignKeyError> {
    let hex = manifest_digest.strip_prefix("sha256:").ok_or_else(|| {
        CosignKeyError::UnsupportedKey(format!(
            "only sha256 manifests can be signed, not {manifest_digest}"
        ))
    })?;
    Ok(serde_json::json!({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"digest": {"sha256": hex}, "annotations": {}}],
        "predicateType": COSIGN_SIGN_PREDICATE,
        "predicate": {},
    })
    .to_string()
    .into_bytes())
}

impl SigningKey {
    /// A bundle (its JSON) signing `manifest_digest` with this key.
    pub fn sign_bundle(&self, manifest_digest: &str) -> Result<Vec<u8>, CosignKeyError> {
        let statement = cosign_statement(manifest_digest)?;
        let signature = self.sign(&pae(IN_TOTO_PAYLOAD_TYPE, &statement))?;
        let spki = self.public_key()?.spki_der().to_vec();
        let hint = STANDARD.encode(digest::digest(&digest::SHA256, &spki));
        Ok(serde_json::json!({
            "mediaType": BUNDLE_MEDIA_TYPE,
            "verificationMaterial": {"publicKey": {"hint": hint}},
            "dsseEnvelope": {
                "payload": STANDARD.encode(&statement),
                "payloadType": IN_TOTO_PAYLOAD_TYPE,
                "signatures": [{"sig": STANDARD.encode(signature)}],
            },
        })
        .to_string()
        .into_bytes())
    }
}

#[cfg(test)]
mod tests {
    use criguard_policy::{
        InMemoryTrustFiles, KeySet, ReferenceMatch, SigstoreSigned, SigstoreTrust, SigstoreVerifier,
    };

    use super::*;
    use crate::Verifier;

    #[test]
    fn written_bundles_verify_and_name_their_digest() {
        let key = SigningKey::generate().unwrap();
        let digest = format!("sha256:{}", "ab".repeat(32));
        let bundle = key.sign_bundle(&digest).unwrap();
        let requirement = SigstoreSigned {
            trust: SigstoreTrust::PublicKeys(KeySet::Data(
                key.public_key().unwrap().to_pem().into_bytes(),
            )),
            rekor_public_keys: None,
            signed_identity: ReferenceMatch::MatchRepository,
        };
        let digests = Verifier::new()
            .verify_bundle(&requirement, &InMemoryTrustFiles::new(), &bundle)
            .unwrap();
        assert_eq!(digests, vec![digest]);
        assert!(key.sign_bundle("sha512:ab").is_err());
    }
}
