//! Lookaside stores under faults: only "missing" ends the list of
//! signatures; an unreadable store, a server error, an oversized or
//! unparseable signature, a stalled server or too many signatures is an
//! error, so that a store that cannot be read never looks like an image
//! nobody signed.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;
use criguard_policy::Signature;
use criguard_reference::Digest;
use criguard_registries::{LookasideAccess, LookasideBase, RegistriesD};
use criguard_registry::{Error, MAX_SIGNATURE_SIZE, Registry, RegistryConfig};

const DIGEST: &str = "sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae";
/// A raw simple-signing blob is sniffed by its first byte (0xA3: an
/// old-format compressed packet), so this parses as one.
const BLOB: &[u8] = b"\xa3\x01fake signature body";

fn base(url: &str) -> LookasideBase {
    let yaml = format!("default-docker:\n  lookaside: \"{url}\"\n");
    RegistriesD::from_files([("test.yaml".to_owned(), yaml.into_bytes())])
        .unwrap()
        .lookaside_base(&reference("example.com/ns/app:v1"), LookasideAccess::Read)
        .unwrap()
}

fn registry_with(timeout: Duration) -> Registry {
    Registry::new(RegistryConfig {
        timeout,
        ..RegistryConfig::default()
    })
    .unwrap()
}

fn digest() -> Digest {
    Digest::parse(DIGEST).unwrap()
}

fn signature_dir(root: &std::path::Path) -> std::path::PathBuf {
    root.join(format!("ns/app@sha256={}", &DIGEST[7..]))
}

#[tokio::test]
async fn file_store_reads_until_the_first_missing_signature() {
    let dir = tempfile::tempdir().unwrap();
    let base = base(&format!("file://{}", dir.path().display()));
    let registry = registry_with(Duration::from_secs(5));
    // No directory at all: no signatures.
    assert!(
        registry
            .lookaside_signatures(&base, &digest())
            .await
            .unwrap()
            .is_empty()
    );
    let images = signature_dir(dir.path());
    std::fs::create_dir_all(&images).unwrap();
    std::fs::write(images.join("signature-1"), BLOB).unwrap();
    std::fs::write(images.join("signature-2"), BLOB).unwrap();
    std::fs::write(images.join("signature-4"), BLOB).unwrap();
    let found = registry
        .lookaside_signatures(&base, &digest())
        .await
        .unwrap();
    assert_eq!(
        found,
        vec![Signature::SimpleSigning(BLOB.to_vec()); 2],
        "signature-4 is past the gap at 3"
    );
}

#[tokio::test]
async fn file_store_faults_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let base = base(&format!("file://{}", dir.path().display()));
    let registry = registry_with(Duration::from_secs(5));
    let images = signature_dir(dir.path());
    std::fs::create_dir_all(&images).unwrap();

    // Unreadable (a directory where the file should be).
    std::fs::create_dir(images.join("signature-1")).unwrap();
    let err = registry
        .lookaside_signatures(&base, &digest())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::LookasideRead { .. }), "{err:?}");
    assert!(
        err.to_string()
            .starts_with("reading signature from file://"),
        "{err}"
    );
    std::fs::remove_dir(images.join("signature-1")).unwrap();

    // Over 4 MiB.
    std::fs::write(
        images.join("signature-1"),
        vec![0xa3; MAX_SIGNATURE_SIZE + 1],
    )
    .unwrap();
    let err = registry
        .lookaside_signatures(&base, &digest())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::TooLarge { .. }), "{err:?}");

    // Not a signature blob.
    std::fs::write(images.join("signature-1"), b"").unwrap();
    let err = registry
        .lookaside_signatures(&base, &digest())
        .await
        .unwrap_err();
    assert!(
        err.to_string().starts_with("parsing signature file://"),
        "{err}"
    );

    // Like containers/image, the reader gives up once it has read 128
    // signatures without finding the end: 127 are fine, 128 are too many.
    for n in 1..=127 {
        std::fs::write(images.join(format!("signature-{n}")), BLOB).unwrap();
    }
    let found = registry
        .lookaside_signatures(&base, &digest())
        .await
        .unwrap();
    assert_eq!(found.len(), 127);
    std::fs::write(images.join("signature-128"), BLOB).unwrap();
    let err = registry
        .lookaside_signatures(&base, &digest())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::TooManySignatures {
                count: 128,
                limit: 127,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.kind(), criguard_registry::ErrorKind::Content);
    assert!(
        err.to_string().contains(&format!(
            "lookaside signatures of {DIGEST} at file://{}/ns/app: server provided 128 signatures, assuming that's unreasonable",
            dir.path().display()
        )),
        "{err}"
    );
}

#[tokio::test]
async fn http_store_404_ends_the_list_and_other_statuses_are_errors() {
    let server = FakeRegistry::start(|req: &Request| {
        if req.path.ends_with("/signature-1") {
            Response::ok("application/octet-stream", BLOB)
        } else if req.path.contains("/broken/") {
            Response::new(500, "oops")
        } else {
            Response::new(404, "")
        }
    })
    .await;
    let registry = registry_with(Duration::from_secs(5));
    let base_url = format!("http://{}/store", server.host());
    let found = registry
        .lookaside_signatures(&base(&base_url), &digest())
        .await
        .unwrap();
    assert_eq!(found, vec![Signature::SimpleSigning(BLOB.to_vec())]);
    let paths: Vec<String> = server.requests().iter().map(|r| r.path.clone()).collect();
    assert!(
        paths.contains(&format!(
            "/store/ns/app@sha256={}/signature-2",
            &DIGEST[7..]
        )),
        "{paths:?}"
    );

    let err = registry
        .lookaside_signatures(
            &base(&format!("http://{}/broken", server.host())),
            &digest(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::LookasideRead { .. }), "{err:?}");
    assert!(err.to_string().contains("500"), "{err}");

    let stalled = FakeRegistry::stalled().await;
    let err = registry_with(Duration::from_millis(300))
        .lookaside_signatures(&base(&format!("http://{}/s", stalled.host())), &digest())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("timed out"), "{err}");

    let err = registry
        .lookaside_signatures(&base("ftp://example.com/sigs"), &digest())
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("Unsupported scheme when reading signature from ftp://"),
        "{err}"
    );
}

/// An http store is read over plain HTTP, following redirects that stay
/// on plain HTTP; a redirect to HTTPS goes on with certificate checks (here
/// against a plain-HTTP port, so the TLS handshake fails), never without
/// them and never answered with the redirect itself.
#[tokio::test]
async fn http_store_redirects() {
    let server = FakeRegistry::start(|req: &Request| {
        if req.path.starts_with("/moved/") {
            let rest = req.path.trim_start_matches("/moved/");
            Response::new(302, "").header("Location", &format!("/store/{rest}"))
        } else if req.path.starts_with("/secure/") {
            Response::new(302, "").header("Location", "https://127.0.0.1:9/elsewhere")
        } else if req.path.ends_with("/signature-1") {
            Response::ok("application/octet-stream", BLOB)
        } else {
            Response::new(404, "")
        }
    })
    .await;
    let registry = registry_with(Duration::from_secs(5));
    let found = registry
        .lookaside_signatures(&base(&format!("http://{}/moved", server.host())), &digest())
        .await
        .unwrap();
    assert_eq!(found, vec![Signature::SimpleSigning(BLOB.to_vec())]);

    let err = registry
        .lookaside_signatures(
            &base(&format!("http://{}/secure", server.host())),
            &digest(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::LookasideRead { .. }), "{err:?}");
    assert!(!err.to_string().contains("302"), "{err}");
}
