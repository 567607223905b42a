//! Sigstore bundle parsing and verification on arbitrary input. The
//! bundle is read by `Bundle::from_json` (bounded lists, protobuf JSON
//! base64 and int64 forms) and then verified under a key requirement, a
//! Fulcio requirement and a PKI requirement whose private keys the fuzzer
//! does not hold: nothing may panic, and nothing may be accepted.

#![no_main]

use std::sync::OnceLock;

use criguard_policy::{
    FileOrData, Fulcio, InMemoryTrustFiles, KeySet, Pki, ReferenceMatch, SigstoreSigned,
    SigstoreTrust, SigstoreVerifier,
};
use criguard_sigstore::bundle::Bundle;
use criguard_sigstore::{SigningKey, Verifier};
use libfuzzer_sys::fuzz_target;

fn requirements() -> &'static [SigstoreSigned] {
    static REQUIREMENTS: OnceLock<Vec<SigstoreSigned>> = OnceLock::new();
    REQUIREMENTS.get_or_init(|| {
        let key = SigningKey::generate()
            .unwrap()
            .public_key()
            .unwrap()
            .to_pem();
        let rekor = SigningKey::generate()
            .unwrap()
            .public_key()
            .unwrap()
            .to_pem();
        vec![
            SigstoreSigned {
                trust: SigstoreTrust::PublicKeys(KeySet::Data(key.clone().into_bytes())),
                rekor_public_keys: None,
                signed_identity: ReferenceMatch::MatchRepository,
            },
            SigstoreSigned {
                trust: SigstoreTrust::PublicKeys(KeySet::Data(key.into_bytes())),
                rekor_public_keys: Some(KeySet::Data(rekor.clone().into_bytes())),
                signed_identity: ReferenceMatch::MatchRepository,
            },
            SigstoreSigned {
                trust: SigstoreTrust::Fulcio(Fulcio {
                    ca: FileOrData::Data(TEST_CA.as_bytes().to_vec()),
                    oidc_issuer: "https://issuer.test".to_owned(),
                    subject_email: "a@example.test".to_owned(),
                }),
                rekor_public_keys: Some(KeySet::Data(rekor.into_bytes())),
                signed_identity: ReferenceMatch::MatchRepository,
            },
            SigstoreSigned {
                trust: SigstoreTrust::Pki(Pki {
                    ca_roots: FileOrData::Data(TEST_CA.as_bytes().to_vec()),
                    ca_intermediates: None,
                    subject_email: Some("a@example.test".to_owned()),
                    subject_hostname: None,
                }),
                rekor_public_keys: None,
                signed_identity: ReferenceMatch::MatchRepository,
            },
        ]
    })
}

/// A self-signed CA whose private key nobody has (made with openssl for
/// this target and deleted).
const TEST_CA: &str = "-----BEGIN CERTIFICATE-----
MIIBeTCCAR+gAwIBAgIUVwy/vD/y3WrOtYNQ8e+hg6W5mB0wCgYIKoZIzj0EAwIw
EjEQMA4GA1UEAwwHZnV6eiBDQTAeFw0yNjEyMDMxNzEwNTJaFw00MDA4MTExNzEw
NTJaMBIxEDAOBgNVBAMMB2Z1enogQ0EwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNC
AASqQy230IzNmxURvHDrSZXh6dd/jxQmyzPTPozuN+ENXnaHNCOIFge8Fbu0G6IX
4pdxJ+Yrn/z9NCZri3wACzMoo1MwUTAdBgNVHQ4EFgQUabrPMGFgbDFR6y5RIIgC
4xXIotMwHwYDVR0jBBgwFoAUabrPMGFgbDFR6y5RIIgC4xXIotMwDwYDVR0TAQH/
BAUwAwEB/zAKBggqhkjOPQQDAgNIADBFAiBm05G4CVNXdJLGMIrZFhS5kgpT9ZNX
rkCShYeueBDXLwIhAMqbtl8RU/aK3ZOu9+D5ikKRJjFzR4VcIDrFfbzrOi30
-----END CERTIFICATE-----
";

fuzz_target!(|data: &[u8]| {
    if let Ok(bundle) = Bundle::from_json(data) {
        // Bounded by the parser whatever the input says.
        assert!(bundle.tlog_entries.len() <= 8);
        assert!(bundle.envelope.signatures.len() <= 16);
        if let Ok(digests) = criguard_sigstore::statement::signed_digests(&bundle.envelope.payload)
        {
            assert!(!digests.is_empty());
            assert!(digests.iter().all(|d| d.starts_with("sha256:")));
        }
    }
    let files = InMemoryTrustFiles::new();
    for requirement in requirements() {
        let verdict = Verifier::new().verify_bundle(requirement, &files, data);
        assert!(verdict.is_err(), "a fuzzed bundle verified: {verdict:?}");
    }
});
