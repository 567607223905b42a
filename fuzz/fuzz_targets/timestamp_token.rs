//! RFC 3161 timestamp tokens (CMS SignedData over a TSTInfo, DER) on
//! arbitrary input: parsing must not panic, and no token may verify
//! without a trusted timestamp authority.

#![no_main]

use criguard_sigstore::timestamp;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(token) = timestamp::parse(data) {
        let verdict = token.verify(&[], b"signature");
        assert!(verdict.is_err(), "a fuzzed token verified: {verdict:?}");
    }
});
