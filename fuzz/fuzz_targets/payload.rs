//! Signature payloads are read only after their signature verified, but a
//! key holder can still sign anything: the strict reader must never panic,
//! whatever the bytes.

#![no_main]

use criguard_policy::payload::{PayloadFormat, parse_payload};
use criguard_reference::Digest;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for format in [PayloadFormat::Cosign, PayloadFormat::Atomic] {
        if let Ok(payload) = parse_payload(data, format) {
            // An accepted payload names a digest that is valid on its own.
            let digest = payload.docker_manifest_digest.as_str();
            assert_eq!(
                Digest::parse(digest).as_ref(),
                Ok(&payload.docker_manifest_digest)
            );
        }
    }
});
