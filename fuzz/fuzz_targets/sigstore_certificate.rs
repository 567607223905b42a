//! The certificate path of sigstore verification (`pki` mode: CA bundle,
//! configured intermediates, the certificate and chain annotations, SAN and
//! hostname checks) on arbitrary bytes. Parts are separated by NUL bytes,
//! which PEM never contains. Nothing may panic, and garbage never verifies.

#![no_main]

use std::collections::BTreeMap;
use std::path::Path;

use criguard_policy::{
    FileOrData, Pki, ReferenceMatch, SigstoreSignature, SigstoreSigned, SigstoreTrust,
    SigstoreVerifier, TrustFiles,
};
use criguard_sigstore::{CERTIFICATE_ANNOTATION, CHAIN_ANNOTATION, SIGNATURE_ANNOTATION, Verifier};
use libfuzzer_sys::fuzz_target;

struct NoFiles;
impl TrustFiles for NoFiles {
    fn read(&self, path: &Path) -> Result<Vec<u8>, String> {
        Err(path.display().to_string())
    }
}

fuzz_target!(|data: &[u8]| {
    let mut parts = data.split(|b| *b == 0);
    let mut next = || parts.next().unwrap_or_default();
    let (roots, intermediates, certificate, chain, signature) = (next(), next(), next(), next(), next());
    let requirement = SigstoreSigned {
        trust: SigstoreTrust::Pki(Pki {
            ca_roots: FileOrData::Data(roots.to_vec()),
            ca_intermediates: (!intermediates.is_empty())
                .then(|| FileOrData::Data(intermediates.to_vec())),
            subject_email: Some("someone@example.com".into()),
            subject_hostname: Some("host.example.com".into()),
        }),
        rekor_public_keys: None,
        signed_identity: ReferenceMatch::MatchRepository,
    };
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let mut annotations = BTreeMap::new();
    annotations.insert(SIGNATURE_ANNOTATION.to_owned(), text(signature));
    annotations.insert(CERTIFICATE_ANNOTATION.to_owned(), text(certificate));
    if !chain.is_empty() {
        annotations.insert(CHAIN_ANNOTATION.to_owned(), text(chain));
    }
    let attachment = SigstoreSignature {
        mime_type: "application/vnd.dev.cosign.simplesigning.v1+json".into(),
        payload: b"{}".to_vec(),
        annotations,
    };
    // A fuzzer cannot forge a signature by a CA it does not hold.
    assert!(Verifier::new().verify(&requirement, &NoFiles, &attachment).is_err());
});
