//! Reference parsing must never panic, and what it prints must parse back to
//! the same reference: scopes and signature identities are compared as
//! strings, so a reference whose text means something else would match the
//! wrong scope.

#![no_main]

use criguard_reference::Reference;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };

    if let Ok(reference) = Reference::parse_normalized(input) {
        let text = reference.to_string();
        assert_eq!(
            Reference::parse_normalized(&text).as_ref(),
            Ok(&reference),
            "{input:?} printed as {text:?}, which parses differently"
        );
        // The printed form is fully expanded, so it is canonical too.
        assert_eq!(Reference::parse_canonical(&text).as_ref(), Ok(&reference));

        let namespaces = reference.policy_namespaces();
        assert_eq!(
            namespaces.first().map(String::as_str),
            Some(reference.name()),
            "the most specific namespace of {text:?} is its repository"
        );
        let _ = reference.policy_identity();
        let _ = reference.familiar();
    }

    if let Ok(reference) = Reference::parse_docker_transport(input) {
        // The docker transport guarantees exactly one of tag and digest,
        // which is what gives an image a policy identity.
        let identity = reference.policy_identity();
        assert_eq!(identity.as_deref(), Ok(reference.to_string().as_str()));
        let text = format!("//{reference}");
        assert_eq!(
            Reference::parse_docker_transport(&text).as_ref(),
            Ok(&reference)
        );
        let _ = reference.policy_namespaces();
        let _ = reference.familiar();
    }
});
