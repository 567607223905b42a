//! Any bytes as a registries.d file: parsing must not panic, and a parsed
//! configuration must resolve every reference without panicking, down to
//! the location of a signature, whatever URL text it holds.

#![no_main]

use std::sync::LazyLock;

use criguard_reference::{Digest, Reference};
use criguard_registries::{LookasideAccess, MAX_LOOKASIDE_SIGNATURES, RegistriesD};
use libfuzzer_sys::fuzz_target;

/// A reference per kind of scope walk: tagged, digested, with a port, with
/// a deep namespace, name only (no identity scope).
static REFERENCES: LazyLock<Vec<Reference>> = LazyLock::new(|| {
    [
        "//busybox",
        "//example.com/ns/repo:tag",
        "//localhost:5000/a/b/c@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        "//a.b.example.com:8443/x/y/z:1",
    ]
    .iter()
    .filter_map(|text| Reference::parse_docker_transport(text).ok())
    .chain(Reference::parse_normalized("quay.io/name/only").ok())
    .collect()
});

static DIGEST: LazyLock<Option<Digest>> = LazyLock::new(|| {
    Digest::parse("sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef").ok()
});

fuzz_target!(|data: &[u8]| {
    let Ok(config) = RegistriesD::from_files([("fuzz.yaml".to_owned(), data.to_vec())]) else {
        return;
    };
    for reference in REFERENCES.iter() {
        let _ = config.use_sigstore_attachments(reference);
        for access in [LookasideAccess::Read, LookasideAccess::Write] {
            let Ok(base) = config.lookaside_base(reference, access) else {
                continue;
            };
            let _ = base.to_string();
            let Some(digest) = DIGEST.as_ref() else {
                continue;
            };
            for number in [1, MAX_LOOKASIDE_SIGNATURES] {
                // Every number in range has a URL once the base parsed.
                let url = base
                    .signature_url(digest, number)
                    .expect("signature URL within the limit");
                let _ = url.to_string();
                let _ = url.location();
            }
        }
    }
});
