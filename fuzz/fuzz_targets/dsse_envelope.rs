//! DSSE envelopes on arbitrary input, and the pre-authentication encoding.
//! The first NUL-separated part is parsed as an envelope; the next two are
//! a payload type and a payload, which the harness signs (over PAE) with
//! its own key and wraps in a bundle: that bundle must verify exactly when
//! the payload type is in-toto and the payload a cosign signature
//! statement, and then name at least one sha256 digest. PAE must always
//! decode back to its two inputs.

#![no_main]

use std::sync::OnceLock;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use criguard_policy::{
    InMemoryTrustFiles, KeySet, ReferenceMatch, SigstoreSigned, SigstoreTrust, SigstoreVerifier,
};
use criguard_sigstore::dsse::{Envelope, IN_TOTO_PAYLOAD_TYPE, pae};
use criguard_sigstore::{SigningKey, Verifier};
use libfuzzer_sys::fuzz_target;

fn key() -> &'static (SigningKey, SigstoreSigned) {
    static KEY: OnceLock<(SigningKey, SigstoreSigned)> = OnceLock::new();
    KEY.get_or_init(|| {
        let key = SigningKey::generate().unwrap();
        let requirement = SigstoreSigned {
            trust: SigstoreTrust::PublicKeys(KeySet::Data(
                key.public_key().unwrap().to_pem().into_bytes(),
            )),
            rekor_public_keys: None,
            signed_identity: ReferenceMatch::MatchRepository,
        };
        (key, requirement)
    })
}

/// PAE read back: `DSSEv1 <n> <type> <m> <body>`.
fn unpae(bytes: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    let rest = bytes.strip_prefix(b"DSSEv1 ")?;
    let space = rest.iter().position(|b| *b == b' ')?;
    let n: usize = std::str::from_utf8(&rest[..space]).ok()?.parse().ok()?;
    let rest = &rest[space + 1..];
    let (kind, rest) = (rest.get(..n)?, rest.get(n..)?);
    let rest = rest.strip_prefix(b" ")?;
    let space = rest.iter().position(|b| *b == b' ')?;
    let m: usize = std::str::from_utf8(&rest[..space]).ok()?.parse().ok()?;
    let body = &rest[space + 1..];
    (body.len() == m).then(|| (kind.to_vec(), body.to_vec()))
}

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(3, |b| *b == 0);
    let (raw, kind, payload) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    if let Ok(envelope) = Envelope::from_json(raw) {
        let signed = envelope.signed_bytes();
        assert_eq!(
            unpae(&signed),
            Some((envelope.payload_type.into_bytes(), envelope.payload))
        );
    }

    let kind = String::from_utf8_lossy(kind);
    let encoded = pae(&kind, payload);
    assert_eq!(
        unpae(&encoded),
        Some((kind.as_bytes().to_vec(), payload.to_vec()))
    );

    let (key, requirement) = key();
    let signature = key.sign(&encoded).unwrap();
    let bundle = serde_json::json!({
        "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
        "verificationMaterial": {"publicKey": {"hint": ""}},
        "dsseEnvelope": {
            "payload": STANDARD.encode(payload),
            "payloadType": kind,
            "signatures": [{"sig": STANDARD.encode(&signature)}],
        },
    })
    .to_string();
    let verdict =
        Verifier::new().verify_bundle(requirement, &InMemoryTrustFiles::new(), bundle.as_bytes());
    let statement = criguard_sigstore::statement::signed_digests(payload);
    match verdict {
        Ok(digests) => {
            assert_eq!(kind, IN_TOTO_PAYLOAD_TYPE);
            assert_eq!(Ok(digests.clone()), statement);
            assert!(!digests.is_empty());
        }
        Err(_) => assert!(kind != IN_TOTO_PAYLOAD_TYPE || statement.is_err()),
    }
});
