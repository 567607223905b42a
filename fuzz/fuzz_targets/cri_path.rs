//! What a client on criguard's socket controls before any message is read:
//! the `:path` (which decides whether a call is checked, forwarded or
//! refused) and the `grpc-timeout` header (which bounds the check). Neither
//! may panic, a routed method is canonical and routes the same way again
//! (the runtime is sent exactly that path), and a deadline is never longer
//! than the header's grammar allows.

#![no_main]

use std::time::Duration;

use criguard_cri::{Handling, Methods, grpc_timeout};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(path) = std::str::from_utf8(data) {
        let methods = Methods::default();
        let route = methods.route(path);
        if !matches!(route.handling, Handling::Refuse(_)) {
            assert!(route.method.starts_with('/'), "{:?}", route.method);
            assert_eq!(route.method.matches('/').count(), 2, "{:?}", route.method);
            let again = methods.route(&route.method);
            assert_eq!(again.method, route.method);
            assert_eq!(
                std::mem::discriminant(&again.handling),
                std::mem::discriminant(&route.handling)
            );
        }
    }
    if let Ok(value) = http::HeaderValue::from_bytes(data) {
        let mut headers = http::HeaderMap::new();
        headers.insert("grpc-timeout", value);
        if let Some(deadline) = grpc_timeout(&headers) {
            assert!(deadline <= Duration::from_secs(99_999_999 * 3600));
        }
    }
});
