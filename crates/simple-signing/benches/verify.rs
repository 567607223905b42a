//! One simple-signing check with a three-key keyring (RSA-3072 keys from
//! containers/image's fixtures, the signer second), three ways: importing
//! the keyring alone, verifying with a keyring already imported, and the
//! whole `SimpleSigningVerifier::verify` a pull pays per signature (import
//! every key, judge their validity, parse the message, check the
//! signature), which replaces containers/image's throw-away GNUPGHOME.

#![allow(clippy::unwrap_used)]

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use criguard_policy::SimpleSigningVerifier;
use criguard_simple_signing::{Keyring, Verifier, verify_message};
use criterion::{Criterion, criterion_group, criterion_main};

/// 2026-01-01, after the fixture keys were made.
const NOW: u32 = 1_767_225_600;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/fixtures/containers-image/signature/fixtures")
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read(fixtures().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn bench(c: &mut Criterion) {
    let keyrings = vec![
        read("public-key-2.gpg"),
        read("public-key-1.gpg"),
        read("public-key-with-subkey.gpg"),
    ];
    let blob = read("dir-img-valid/signature-1");
    let keyring = Keyring::import(&keyrings, NOW);
    assert_eq!(keyring.identities().len(), 3);
    let verifier = Verifier::at(UNIX_EPOCH + Duration::from_secs(NOW.into()));

    let mut group = c.benchmark_group("gpg_three_key_keyring");
    group.bench_function("import_keyring", |b| {
        b.iter(|| Keyring::import(black_box(&keyrings), NOW))
    });
    group.bench_function("verify_imported", |b| {
        b.iter(|| verify_message(black_box(&keyring), black_box(&blob), NOW).unwrap())
    });
    group.bench_function("verify_whole", |b| {
        b.iter(|| {
            verifier
                .verify(black_box(&keyrings), black_box(&blob))
                .unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
