//! Every PullImage and CreateContainer request is decoded from whatever a
//! client on the socket sends, and a pinned pull is edited at the wire
//! level: neither may panic, and an edit that succeeds must leave a
//! request that names the pinned image and keeps everything else.

#![no_main]

use criguard_cri::replace_image_name;
use criguard_cri::v1::{CreateContainerRequest, PullImageRequest};
use libfuzzer_sys::fuzz_target;
use prost::Message as _;

const PINNED: &str =
    "example.com/app@sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae";

fuzz_target!(|data: &[u8]| {
    let _ = CreateContainerRequest::decode(data);
    let original = PullImageRequest::decode(data);
    // The proxy edits only requests it could decode.
    if let (Ok(mut original), Ok(edited)) = (original, replace_image_name(data, PINNED)) {
        let mut decoded = PullImageRequest::decode(edited.as_slice()).expect("an edit decodes");
        assert_eq!(decoded.image.as_ref().map(|s| s.image.as_str()), Some(PINNED));
        // Apart from the name, the request means what it meant.
        if let (Some(a), Some(b)) = (original.image.as_mut(), decoded.image.as_mut()) {
            a.image.clear();
            b.image.clear();
        }
        assert_eq!(original, decoded);
    }
});
