//! The registry harness is a real registry, and the images pushed to it are
//! served exactly as built.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use criguard_testutil::{
    ImageBuilder, Registry, push_test_image, push_test_multiarch, sha256_digest, test_image,
    test_multiarch, upload_image, upload_index,
};

fn pid_alive(pid: u32) -> bool {
    // A reaped process has no /proc entry; a zombie would still have one.
    Path::new(&format!("/proc/{pid}")).exists()
}

#[test]
fn registry_serves_v2_and_drop_kills_it() {
    let registry = Registry::start();
    assert!(registry.addr().ip().is_loopback());
    assert_eq!(
        registry.host(),
        format!("127.0.0.1:{}", registry.addr().port())
    );
    assert_eq!(registry.url(), format!("http://{}", registry.host()));
    let resp = registry.get("/v2/");
    assert_eq!(resp.status, 200);
    assert_eq!(
        resp.header("docker-distribution-api-version"),
        Some("registry/2.0")
    );
    let pid = registry.pid().unwrap();
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
    assert!(comm.starts_with("docker-registr"), "{comm:?}");
    let addr = registry.addr();
    drop(registry);
    assert!(!pid_alive(pid), "docker-registry {pid} survived Drop");
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "something still listens on {addr}"
    );
}

#[test]
fn pushed_image_digest_is_what_the_registry_serves() {
    let registry = Registry::start();
    let pushed = push_test_image(&registry, "test/app", "v1", "hello");
    assert_eq!(pushed.digest, test_image("hello").digest());
    assert_eq!(
        pushed.by_digest(),
        format!("{}/test/app@{}", registry.host(), pushed.digest)
    );

    let resp = registry.get_manifest("test/app", "v1");
    assert_eq!(resp.status, 200);
    assert_eq!(
        resp.header("docker-content-digest"),
        Some(pushed.digest.as_str())
    );
    assert_eq!(sha256_digest(&resp.body), pushed.digest);
    assert_eq!(
        resp.header("content-type"),
        Some("application/vnd.oci.image.manifest.v1+json")
    );

    // The layer really is there and really holds the chosen content.
    let manifest: serde_json::Value = serde_json::from_slice(&resp.body).unwrap();
    let layer_digest = manifest["layers"][0]["digest"].as_str().unwrap();
    let blob = registry.get(&format!("/v2/test/app/blobs/{layer_digest}"));
    assert_eq!(blob.status, 200);
    assert_eq!(sha256_digest(&blob.body), layer_digest);
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(blob.body.as_slice()));
    let mut entry = archive.entries().unwrap().next().unwrap().unwrap();
    assert_eq!(entry.path().unwrap().to_str(), Some("etc/criguard-test"));
    let mut content = String::new();
    std::io::Read::read_to_string(&mut entry, &mut content).unwrap();
    assert_eq!(content, "hello");

    // Different content, different digest.
    let other = push_test_image(&registry, "test/app", "v2", "world");
    assert_ne!(other.digest, pushed.digest);
}

#[test]
fn multiarch_index_and_platform_manifests_are_served() {
    let registry = Registry::start();
    let pushed = push_test_multiarch(&registry, "test/multi", "v1", "multi");
    let built = test_multiarch("multi");
    assert_eq!(pushed.index.digest, built.digest());

    let resp = registry.get_manifest("test/multi", "v1");
    assert_eq!(
        resp.header("docker-content-digest"),
        Some(pushed.index.digest.as_str())
    );
    assert_eq!(
        resp.header("content-type"),
        Some("application/vnd.oci.image.index.v1+json")
    );
    let index: serde_json::Value = serde_json::from_slice(&resp.body).unwrap();
    let listed: Vec<(String, String)> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["platform"]["architecture"].as_str().unwrap().to_string(),
                m["digest"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let amd64 = pushed.platform_digest("linux", "amd64");
    let arm64 = pushed.platform_digest("linux", "arm64");
    assert_ne!(amd64, arm64);
    assert_eq!(
        listed,
        vec![
            ("amd64".to_string(), amd64.to_string()),
            ("arm64".to_string(), arm64.to_string())
        ]
    );
    for digest in [amd64, arm64] {
        let m = registry.get_manifest("test/multi", digest);
        assert_eq!(m.status, 200);
        assert_eq!(sha256_digest(&m.body), digest);
    }
}

#[test]
fn http_upload_matches_skopeo_push() {
    let registry = Registry::start();
    let image = ImageBuilder::new()
        .file("etc/x", "plain")
        .gzip(false)
        .annotation("org.example", "1")
        .build();
    let up = upload_image(&registry, "test/up", "v1", &image);
    assert_eq!(up.digest, image.digest());
    let idx = upload_index(&registry, "test/upidx", "v1", &test_multiarch("up"));
    assert_eq!(idx.index.digest, test_multiarch("up").digest());
    // A manifest that references a missing blob is refused: the registry
    // really checks what it stores.
    let missing = test_image("never uploaded");
    let resp = registry.request(
        "PUT",
        "/v2/test/up/manifests/bad",
        &[("Content-Type", "application/vnd.oci.image.manifest.v1+json")],
        &missing.manifest.data,
    );
    assert_eq!(resp.status, 400, "{}", String::from_utf8_lossy(&resp.body));
}

#[test]
fn auth_registry_requires_credentials() {
    let registry = Registry::start_with_auth("alice", "s3cret");
    let anonymous =
        criguard_testutil::http::request(registry.addr(), "GET", "/v2/", &[], &[]).unwrap();
    assert_eq!(anonymous.status, 401);
    assert!(
        anonymous
            .header("www-authenticate")
            .unwrap()
            .starts_with("Basic")
    );
    let wrong = criguard_testutil::http::request(
        registry.addr(),
        "GET",
        "/v2/",
        &[("Authorization", "Basic YWxpY2U6d3Jvbmc=")],
        &[],
    )
    .unwrap();
    assert_eq!(wrong.status, 401);
    assert_eq!(registry.get("/v2/").status, 200);
    let pushed = push_test_image(&registry, "private/app", "v1", "secret");
    assert_eq!(pushed.digest, test_image("secret").digest());
}

#[test]
fn restart_keeps_port_and_storage() {
    let mut registry = Registry::start();
    let pushed = push_test_image(&registry, "test/app", "v1", "persist");
    let addr = registry.addr();
    let first = registry.pid().unwrap();
    registry.stop();
    assert!(registry.pid().is_none());
    assert!(!pid_alive(first));
    assert!(std::net::TcpStream::connect(addr).is_err());
    registry.restart();
    assert_eq!(registry.addr(), addr);
    assert_ne!(registry.pid().unwrap(), first);
    let resp = registry.get_manifest("test/app", "v1");
    assert_eq!(
        resp.header("docker-content-digest"),
        Some(pushed.digest.as_str())
    );
}
