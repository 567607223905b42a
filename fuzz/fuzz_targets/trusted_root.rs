//! `trusted_root.json` parsing on arbitrary input: the file is the
//! operator's, but a truncated or hand-edited one must be a reason, never a
//! panic, and whatever is accepted stays within the parser's bounds.

#![no_main]

use criguard_sigstore::TrustedRoot;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(root) = TrustedRoot::from_json(data) {
        assert!(root.tlogs.len() <= 64);
        assert!(root.timestamp_authorities.len() <= 64);
        for tsa in &root.timestamp_authorities {
            assert!(!tsa.chain.is_empty() && tsa.chain.len() <= 8);
            assert!(
                tsa.valid_for
                    .end
                    .is_none_or(|end| end >= tsa.valid_for.start)
            );
        }
        for log in &root.tlogs {
            // The origin is a suffix of the base URL, never more.
            assert!(log.base_url.contains(log.origin()));
        }
    }
});
