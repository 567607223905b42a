//! One simple-signing check with a three-key keyring (RSA-3072 keys from
//! containers/image's fixtures, the signer second), three ways: importing
//! the keyring alone, verifying with a keyring already imported, and the
//! whole `SimpleSigningVerifier::verify` (import every key, judge their
//! validity, parse the message, check the signature), which replaces
//! containers/image's throw-away GNUPGHOME, for the first signature checked
//! with a set of keys and for the ones after it.

#![allow(clippy::unwrap_used)]

use std::hint::black_box;

use criguard_policy::SimpleSigningVerifier;
use criguard_simple_signing::{Keyring, Verifier, verify_message};
use criterion::{Criterion, criterion_group, criterion_main};

#[path = "../tests/fixtures/mod.rs"]
mod fixtures;

use fixtures::{NOW, now_time, read};

fn bench(c: &mut Criterion) {
    let keyrings = vec![
        read("public-key-2.gpg"),
        read("public-key-1.gpg"),
        read("public-key-with-subkey.gpg"),
    ];
    let blob = read("dir-img-valid/signature-1");
    let keyring = Keyring::import(&keyrings);
    assert_eq!(keyring.identities().len(), 3);
    let at = now_time();
    let verifier = Verifier::at(at);

    let mut group = c.benchmark_group("gpg_three_key_keyring");
    group.bench_function("import_keyring", |b| {
        b.iter(|| Keyring::import(black_box(&keyrings)))
    });
    group.bench_function("verify_imported", |b| {
        b.iter(|| verify_message(black_box(&keyring), black_box(&blob), NOW).unwrap())
    });
    // A fresh verifier each time: the keys are imported, as for the first
    // signature checked with them.
    group.bench_function("verify_whole", |b| {
        b.iter(|| {
            Verifier::at(at)
                .verify(black_box(&keyrings), black_box(&blob))
                .unwrap()
        })
    });
    // The same verifier again: its import of the same keys is reused, as
    // for every further signature checked with them.
    group.bench_function("verify_whole_same_keys", |b| {
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
