//! A simple-signing check reads two attacker-influenced inputs before any
//! trust is established: the keyring a policy names (a file anyone with
//! write access to /etc/containers could have garbled) and the signature
//! blob a lookaside server returns. Neither may panic, and a fuzzer cannot
//! forge a signature by a key whose secret it does not hold.

#![no_main]

use criguard_policy::payload::{PayloadFormat, parse_payload};
use criguard_simple_signing::{Keyring, verify_message};
use libfuzzer_sys::fuzz_target;

/// 2026-01-01.
const NOW: u32 = 1_767_225_600;

fuzz_target!(|data: &[u8]| {
    // A big-endian u16 keyring length, the keyring, then the signature
    // blob (binary keyrings contain every byte value, so no separator).
    let Some((length, rest)) = data.split_first_chunk::<2>() else {
        return;
    };
    let split = usize::from(u16::from_be_bytes(*length)).min(rest.len());
    let (keyring, blob) = rest.split_at(split);
    let keyring = Keyring::import(&[keyring.to_vec()]);
    let _ = keyring.identities();
    if let Ok(verified) = verify_message(&keyring, blob, NOW) {
        // Only a key in the keyring can have signed it.
        assert!(keyring.identities().contains(&verified.primary));
        let _ = parse_payload(&verified.payload, PayloadFormat::Atomic);
    }
});
