//! One ECDSA P-256 signature check, three ways: raw aws-lc-rs (the floor),
//! criguard's `PublicKey::verify` on a parsed key, and the whole
//! `sigstoreSigned` check for one attachment (PEM key from the policy,
//! base64 annotation, signature), which is what a pull pays per signature.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::hint::black_box;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_ASN1, ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair,
    UnparsedPublicKey,
};
use base64::Engine;
use criguard_policy::{
    InMemoryTrustFiles, KeySet, ReferenceMatch, SigstoreSignature, SigstoreSigned, SigstoreTrust,
    SigstoreVerifier,
};
use criguard_sigstore::{PublicKey, Verifier};
use criterion::{Criterion, criterion_group, criterion_main};

fn bench(c: &mut Criterion) {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref()).unwrap();
    let payload = br#"{"critical":{"identity":{"docker-reference":"registry.example/app"},"image":{"docker-manifest-digest":"sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"},"type":"cosign container image signature"},"optional":null}"#;
    let signature = pair.sign(&rng, payload).unwrap();
    let point = pair.public_key().as_ref().to_vec();
    let spki = aws_lc_rs::encoding::AsDer::<aws_lc_rs::encoding::PublicKeyX509Der>::as_der(
        pair.public_key(),
    )
    .unwrap();
    let key = PublicKey::from_spki_der(spki.as_ref()).unwrap();

    let mut group = c.benchmark_group("p256_verify");
    group.bench_function("aws_lc_rs_raw", |b| {
        b.iter(|| {
            UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, black_box(&point))
                .verify(black_box(payload), black_box(signature.as_ref()))
                .unwrap()
        })
    });
    group.bench_function("criguard_public_key", |b| {
        b.iter(|| {
            key.verify(black_box(payload), black_box(signature.as_ref()))
                .unwrap()
        })
    });
    let requirement = SigstoreSigned {
        trust: SigstoreTrust::PublicKeys(KeySet::Data(key.to_pem().into_bytes())),
        rekor_public_keys: None,
        signed_identity: ReferenceMatch::MatchRepository,
    };
    let attachment = SigstoreSignature {
        mime_type: "application/vnd.dev.cosign.simplesigning.v1+json".into(),
        payload: payload.to_vec(),
        annotations: BTreeMap::from([(
            "dev.cosignproject.cosign/signature".to_owned(),
            base64::engine::general_purpose::STANDARD.encode(signature.as_ref()),
        )]),
    };
    let verifier = Verifier::new();
    // The key is in the policy: no file is read.
    let files = InMemoryTrustFiles::new();
    group.bench_function("criguard_sigstore_requirement", |b| {
        b.iter(|| {
            verifier
                .verify(black_box(&requirement), &files, black_box(&attachment))
                .unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
