//! Rekor SET ("bundle") parsing and binding on arbitrary input. The
//! harness holds the test log's private key and signs whatever `Payload`
//! the fuzzer writes, so the fuzzer gets past the log signature and
//! reaches the entry-body checks, which are the interesting part. Parts
//! are separated by NUL bytes.

#![no_main]

use std::sync::OnceLock;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use criguard_sigstore::{PublicKey, verify_set};
use libfuzzer_sys::fuzz_target;

fn log_key() -> &'static (EcdsaKeyPair, PublicKey) {
    static KEY: OnceLock<(EcdsaKeyPair, PublicKey)> = OnceLock::new();
    KEY.get_or_init(|| {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
        let pair =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref()).unwrap();
        let spki = aws_lc_rs::encoding::AsDer::<aws_lc_rs::encoding::PublicKeyX509Der>::as_der(
            pair.public_key(),
        )
        .unwrap();
        let public = PublicKey::from_spki_der(spki.as_ref()).unwrap();
        (pair, public)
    })
}

fuzz_target!(|data: &[u8]| {
    let mut parts = data.split(|b| *b == 0);
    let mut next = || parts.next().unwrap_or_default();
    let (set_payload, key_or_cert, signature, payload, raw_set) = (next(), next(), next(), next(), next());
    let (pair, public) = log_key();
    let signature = String::from_utf8_lossy(signature);

    // The SET exactly as the fuzzer wrote it, unsigned.
    let _ = verify_set(
        std::slice::from_ref(public),
        &String::from_utf8_lossy(raw_set),
        key_or_cert,
        &signature,
        payload,
    );

    // A SET whose Payload the log really signed.
    let Ok(payload_text) = std::str::from_utf8(set_payload) else {
        return;
    };
    let Ok(canonical) = serde_json_canonicalizer::pipe(payload_text) else {
        return;
    };
    let log_signature = pair.sign(&SystemRandom::new(), canonical.as_bytes()).unwrap();
    let set = format!(
        r#"{{"SignedEntryTimestamp":"{}","Payload":{payload_text}}}"#,
        STANDARD.encode(log_signature.as_ref())
    );
    let _ = verify_set(std::slice::from_ref(public), &set, key_or_cert, &signature, payload);
});
