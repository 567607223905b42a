//! Failure paths against a fake registry: each test makes the server
//! misbehave in one way and checks the error names the cause.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use base64::Engine as _;
use common::*;
use criguard_registry::{Credentials, Error, MAX_MANIFEST_SIZE, Registry, RegistryConfig};

const TIMEOUT: Duration = Duration::from_secs(10);

/// What resolving `name` on `server` fails with.
async fn resolve_error(server: &FakeRegistry, name: &str) -> Error {
    let host = server.host();
    registry_for(&[&host], None, TIMEOUT)
        .resolve(&reference(&format!("{host}/{name}")), &amd64())
        .await
        .unwrap_err()
}

/// A client for `server` that has resolved `app:v1` there.
async fn resolve_app_v1(server: &FakeRegistry) -> (Registry, criguard_registry::ResolvedImage) {
    let host = server.host();
    let registry = registry_for(&[&host], None, TIMEOUT);
    let image = registry
        .resolve(&reference(&format!("{host}/app:v1")), &amd64())
        .await
        .unwrap();
    (registry, image)
}

/// Serves one image manifest as `repo:tag` and by digest.
fn serve_image(manifest: Vec<u8>) -> impl Fn(&Request) -> Response + Send + Sync + 'static {
    let digest = digest_of(&manifest);
    move |req: &Request| match req.path.as_str() {
        "/v2/app/manifests/v1" => Response::ok(OCI_MANIFEST, manifest.clone()),
        p if p == format!("/v2/app/manifests/{digest}") => {
            Response::ok(OCI_MANIFEST, manifest.clone())
        }
        _ => Response::not_found("MANIFEST_UNKNOWN"),
    }
}

/// Answers `/v2/app/manifests/{reference}` with `hit`, everything else with
/// `otherwise`.
async fn serve_manifest(reference: &str, hit: Response, otherwise: Response) -> FakeRegistry {
    let path = format!("/v2/app/manifests/{reference}");
    FakeRegistry::start(move |req: &Request| {
        if req.path == path {
            hit.clone()
        } else {
            otherwise.clone()
        }
    })
    .await
}

#[tokio::test]
async fn resolves_by_tag_and_digest_with_accept_header() {
    let manifest = image_manifest("plain");
    let digest = digest_of(&manifest);
    let server = FakeRegistry::start(serve_image(manifest.clone())).await;
    let host = server.host();
    let registry = registry_for(&[&host], None, TIMEOUT);

    let by_tag = reference(&format!("{host}/app:v1"));
    let image = registry.resolve(&by_tag, &amd64()).await.unwrap();
    assert_eq!(image.manifest, manifest);
    assert_eq!(image.manifest_digest.as_str(), digest);
    assert_eq!(image.media_type, OCI_MANIFEST);
    assert_eq!(image.index_digest, None);
    assert_eq!(image.platform, None);
    assert_eq!(image.reference, by_tag);
    assert_eq!(image.source, by_tag);

    let by_digest = reference(&format!("{host}/app@{digest}"));
    let image = registry.resolve(&by_digest, &amd64()).await.unwrap();
    assert_eq!(image.manifest_digest.as_str(), digest);

    let get = server
        .requests()
        .into_iter()
        .find(|r| r.path == "/v2/app/manifests/v1")
        .unwrap();
    let accept = get.header("accept").unwrap();
    assert!(
        accept.contains(OCI_MANIFEST) && accept.contains(OCI_INDEX),
        "{accept}"
    );
    assert_eq!(get.header("authorization"), None);
}

#[tokio::test]
async fn connection_refused_names_the_host() {
    let host = dead_host();
    let registry = registry_for(&[&host], None, TIMEOUT);
    let err = registry
        .resolve(&reference(&format!("{host}/app:v1")), &amd64())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::ConnectionRefused { .. }), "{err:?}");
    assert_eq!(err.to_string(), format!("{host}: connection refused"));
}

fn basic_protected(
    manifest: Vec<u8>,
    user: &'static str,
    pass: &'static str,
) -> impl Fn(&Request) -> Response + Send + Sync + 'static {
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
    );
    let inner = serve_image(manifest);
    move |req: &Request| {
        if req.header("authorization") != Some(expected.as_str()) {
            return Response::new(
                401,
                r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#,
            )
            .header("WWW-Authenticate", "Basic realm=\"fake\"")
            .header("Content-Type", "application/json");
        }
        if req.path == "/v2/" {
            return Response::ok("application/json", "{}");
        }
        inner(req)
    }
}

#[tokio::test]
async fn basic_auth_required_rejected_and_accepted() {
    let manifest = image_manifest("basic");
    let server = FakeRegistry::start(basic_protected(manifest.clone(), "alice", "s3cret")).await;
    let host = server.host();
    let image = reference(&format!("{host}/app:v1"));

    let anonymous = registry_for(&[&host], None, TIMEOUT);
    let err = anonymous.resolve(&image, &amd64()).await.unwrap_err();
    assert!(
        matches!(err, Error::AuthenticationRequired { .. }),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(text.contains("authentication required (401)"), "{text}");
    assert!(text.contains(&format!("{host}/app")), "{text}");

    let wrong = registry_for(
        &[&host],
        Some(Credentials::Basic {
            username: "alice".into(),
            password: "nope".into(),
        }),
        TIMEOUT,
    );
    let err = wrong.resolve(&image, &amd64()).await.unwrap_err();
    assert!(matches!(err, Error::CredentialsRejected { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("credentials rejected"), "{text}");
    assert!(text.contains(&host), "{text}");
    assert!(
        !text.contains("nope"),
        "the password must not appear: {text}"
    );

    let right = registry_for(
        &[&host],
        Some(Credentials::Basic {
            username: "alice".into(),
            password: "s3cret".into(),
        }),
        TIMEOUT,
    );
    let resolved = right.resolve(&image, &amd64()).await.unwrap();
    assert_eq!(resolved.manifest, manifest);
}

/// A token server: `/token` hands out `good-token` for alice's password;
/// everything else needs that token.
fn bearer_protected(
    manifest: Vec<u8>,
    host: std::sync::Arc<std::sync::OnceLock<String>>,
) -> impl Fn(&Request) -> Response + Send + Sync + 'static {
    let inner = serve_image(manifest);
    let good_basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("alice:s3cret")
    );
    move |req: &Request| {
        if req.path.starts_with("/token") {
            if req.header("authorization") == Some(good_basic.as_str()) {
                return Response::ok("application/json", r#"{"token":"good-token"}"#);
            }
            return Response::new(401, r#"{"details":"bad password"}"#)
                .header("Content-Type", "application/json");
        }
        if req.header("authorization") != Some("Bearer good-token") {
            let realm = format!(
                "Bearer realm=\"http://{}/token\",service=\"fake\"",
                host.get().unwrap()
            );
            return Response::new(
                401,
                r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#,
            )
            .header("WWW-Authenticate", &realm);
        }
        if req.path == "/v2/" {
            return Response::ok("application/json", "{}");
        }
        inner(req)
    }
}

#[tokio::test]
async fn bearer_token_rejected_and_accepted() {
    let manifest = image_manifest("bearer");
    let cell = std::sync::Arc::new(std::sync::OnceLock::new());
    let server = FakeRegistry::start(bearer_protected(manifest.clone(), cell.clone())).await;
    let host = server.host();
    cell.set(host.clone()).unwrap();
    let image = reference(&format!("{host}/app:v1"));

    let wrong = registry_for(
        &[&host],
        Some(Credentials::Basic {
            username: "alice".into(),
            password: "wrong".into(),
        }),
        TIMEOUT,
    );
    let err = wrong.resolve(&image, &amd64()).await.unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, Error::CredentialsRejected { .. }), "{err:?}");
    assert!(
        text.contains("credentials rejected") && text.contains(&host),
        "{text}"
    );

    let right = registry_for(
        &[&host],
        Some(Credentials::Basic {
            username: "alice".into(),
            password: "s3cret".into(),
        }),
        TIMEOUT,
    );
    let resolved = right.resolve(&image, &amd64()).await.unwrap();
    assert_eq!(resolved.manifest, manifest);
    assert!(
        server
            .requests()
            .iter()
            .any(|r| r.path.starts_with("/token")
                && r.path.contains("scope=repository%3Aapp%3Apull")),
        "the token request asks for pull access to the repository"
    );

    // A second operation on the repository reuses the token: no new
    // ping, no new token request.
    let token_requests = || {
        server
            .requests()
            .iter()
            .filter(|r| r.path.starts_with("/token"))
            .count()
    };
    let before = token_requests();
    right.resolve(&image, &amd64()).await.unwrap();
    assert_eq!(token_requests(), before);
}

#[tokio::test]
async fn not_found_is_manifest_unknown() {
    let server = FakeRegistry::start(|_: &Request| Response::not_found("MANIFEST_UNKNOWN")).await;
    let err = resolve_error(&server, "app:missing").await;
    assert!(matches!(err, Error::ManifestUnknown { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.starts_with(&format!("{}/app:missing: manifest unknown", server.host())),
        "{text}"
    );
}

#[tokio::test]
async fn server_error_names_status_and_host() {
    let server = FakeRegistry::start(|req: &Request| {
        if req.path == "/v2/" {
            Response::ok("application/json", "{}")
        } else {
            Response::new(500, "database on fire")
        }
    })
    .await;
    let err = resolve_error(&server, "app:v1").await;
    let text = err.to_string();
    assert!(
        matches!(err, Error::HttpStatus { status: 500, .. }),
        "{err:?}"
    );
    assert!(text.contains("HTTP status 500"), "{text}");
    assert!(text.contains(&format!("{}/app", server.host())), "{text}");
    assert!(text.contains("database on fire"), "{text}");
}

#[tokio::test]
async fn oversized_manifest_is_refused_from_its_content_length() {
    // The server announces 5 MiB, sends 1 KiB and then stalls: the client
    // must refuse from the header, not wait for (or buffer) the body.
    let server = serve_manifest(
        "v1",
        Response::ok(OCI_MANIFEST, "").with_body(Body::StallAfter {
            declared: 5 << 20,
            prefix: vec![b' '; 1024],
        }),
        Response::not_found("MANIFEST_UNKNOWN"),
    )
    .await;
    let host = server.host();
    let registry = registry_for(&[&host], None, TIMEOUT);
    let started = Instant::now();
    let err = registry
        .resolve(&reference(&format!("{host}/app:v1")), &amd64())
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < TIMEOUT / 2,
        "took {:?}",
        started.elapsed()
    );
    assert!(matches!(err, Error::TooLarge { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("manifest exceeds 4 MiB limit") || text.contains("exceeds 4 MiB limit"),
        "{text}"
    );
    assert!(text.contains(&format!("{host}/app:v1")), "{text}");
    assert!(text.contains("5242880"), "{text}");
}

#[tokio::test]
async fn oversized_chunked_manifest_is_refused() {
    let server = serve_manifest(
        "v1",
        Response::ok(OCI_MANIFEST, "").with_body(Body::Chunked(vec![b' '; MAX_MANIFEST_SIZE + 1])),
        Response::not_found("MANIFEST_UNKNOWN"),
    )
    .await;
    let err = resolve_error(&server, "app:v1").await;
    assert!(matches!(err, Error::TooLarge { .. }), "{err:?}");
    assert!(err.to_string().contains("exceeds 4 MiB limit"), "{err}");

    // Exactly at the limit is fine as far as size goes (it then fails as JSON).
    let server = serve_manifest(
        "v1",
        Response::ok(OCI_MANIFEST, "").with_body(Body::Chunked(vec![b' '; MAX_MANIFEST_SIZE])),
        Response::not_found("MANIFEST_UNKNOWN"),
    )
    .await;
    let err = resolve_error(&server, "app:v1").await;
    assert!(matches!(err, Error::InvalidManifest { .. }), "{err:?}");
}

#[tokio::test]
async fn manifest_not_matching_the_digest_asked_for() {
    let asked = digest_of(b"what the user pinned");
    let served = image_manifest("substituted");
    let server = FakeRegistry::start(move |req: &Request| {
        if req.path.starts_with("/v2/app/manifests/") {
            Response::ok(OCI_MANIFEST, served.clone())
        } else {
            Response::not_found("MANIFEST_UNKNOWN")
        }
    })
    .await;
    let err = resolve_error(&server, &format!("app@{asked}")).await;
    assert!(matches!(err, Error::DigestMismatch { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains(&format!(
            "digest mismatch: expected {asked}, got {}",
            digest_of(&image_manifest("substituted"))
        )),
        "{text}"
    );
}

#[tokio::test]
async fn tag_with_a_wrong_digest_header_is_refused() {
    let served = image_manifest("tampered");
    let header = digest_of(b"something else");
    let server = serve_manifest(
        "v1",
        Response::ok(OCI_MANIFEST, served).header("Docker-Content-Digest", &header),
        Response::not_found("MANIFEST_UNKNOWN"),
    )
    .await;
    let err = resolve_error(&server, "app:v1").await;
    assert!(matches!(err, Error::DigestMismatch { .. }), "{err:?}");
}

#[tokio::test]
async fn stalled_server_times_out_within_the_time_out() {
    let server = FakeRegistry::stalled().await;
    let host = server.host();
    let timeout = Duration::from_secs(1);
    let registry = registry_for(&[&host], None, timeout);
    let started = Instant::now();
    let err = registry
        .resolve(&reference(&format!("{host}/app:v1")), &amd64())
        .await
        .unwrap_err();
    let elapsed = started.elapsed();
    // A bound, not a benchmark: the time-out plus generous slack.
    assert!(
        elapsed < timeout + Duration::from_secs(4),
        "took {elapsed:?}"
    );
    assert!(matches!(err, Error::TimedOut { .. }), "{err:?}");
    assert_eq!(err.to_string(), format!("{host}: timed out after 1s"));
}

#[tokio::test]
async fn stalled_server_times_out_over_https_too() {
    // Not marked insecure: HTTPS only, so the stall is in oci-client's
    // handshake and ping; the per-request time-out still holds.
    let server = FakeRegistry::stalled().await;
    let host = server.host();
    let timeout = Duration::from_millis(800);
    let registry = Registry::new(RegistryConfig {
        timeout,
        ..RegistryConfig::default()
    })
    .unwrap();
    let started = Instant::now();
    let err = registry
        .resolve(&reference(&format!("{host}/app:v1")), &amd64())
        .await
        .unwrap_err();
    assert!(started.elapsed() < timeout + Duration::from_secs(4));
    assert_eq!(err.to_string(), format!("{host}: timed out after 800ms"));
}

#[tokio::test]
async fn oversized_body_behind_a_stall_hits_the_time_out() {
    // 1 KiB announced and only 10 bytes sent: the whole-request time-out
    // covers reading the body, not just the headers.
    let server = serve_manifest(
        "v1",
        Response::ok(OCI_MANIFEST, "").with_body(Body::StallAfter {
            declared: 1024,
            prefix: b"{\"schemaVe".to_vec(),
        }),
        Response::not_found("MANIFEST_UNKNOWN"),
    )
    .await;
    let host = server.host();
    let timeout = Duration::from_secs(1);
    let registry = registry_for(&[&host], None, timeout);
    let started = Instant::now();
    let err = registry
        .resolve(&reference(&format!("{host}/app:v1")), &amd64())
        .await
        .unwrap_err();
    assert!(started.elapsed() < timeout + Duration::from_secs(4));
    assert!(err.to_string().contains("timed out after 1s"), "{err}");
}

fn index_json(entries: &[(&str, &str)]) -> Vec<u8> {
    let manifests: Vec<String> = entries
        .iter()
        .map(|(digest, platform)| {
            let mut parts = platform.split('/');
            let os = parts.next().unwrap();
            let arch = parts.next().unwrap();
            let variant = parts
                .next()
                .map(|v| format!(r#","variant":"{v}""#))
                .unwrap_or_default();
            format!(
                r#"{{"mediaType":"{OCI_MANIFEST}","size":1,"digest":"{digest}","platform":{{"os":"{os}","architecture":"{arch}"{variant}}}}}"#
            )
        })
        .collect();
    format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{}]}}"#,
        manifests.join(",")
    )
    .into_bytes()
}

#[tokio::test]
async fn index_is_followed_to_the_platform_instance() {
    let amd = image_manifest("amd64");
    let arm = image_manifest("arm64");
    let arm_v7 = image_manifest("arm/v7");
    let arm_plain = image_manifest("arm");
    let entries = [
        (digest_of(&amd), "linux/amd64"),
        (digest_of(&arm), "linux/arm64"),
        (digest_of(&arm_plain), "linux/arm"),
        (digest_of(&arm_v7), "linux/arm/v7"),
    ];
    let index = index_json(
        &entries
            .iter()
            .map(|(d, p)| (d.as_str(), *p))
            .collect::<Vec<_>>(),
    );
    let index_digest = digest_of(&index);
    let blobs = [amd.clone(), arm.clone(), arm_plain.clone(), arm_v7.clone()];
    let index_for_server = index.clone();
    let index_path = format!("/v2/app/manifests/{index_digest}");
    let server = FakeRegistry::start(move |req: &Request| {
        if req.path == "/v2/app/manifests/multi" || req.path == index_path {
            return Response::ok(OCI_INDEX, index_for_server.clone());
        }
        for blob in &blobs {
            if req.path == format!("/v2/app/manifests/{}", digest_of(blob)) {
                return Response::ok(OCI_MANIFEST, blob.clone());
            }
        }
        Response::not_found("MANIFEST_UNKNOWN")
    })
    .await;
    let host = server.host();
    let registry = registry_for(&[&host], None, TIMEOUT);
    let multi = reference(&format!("{host}/app:multi"));

    let image = registry.resolve(&multi, &amd64()).await.unwrap();
    assert_eq!(image.manifest, amd);
    assert_eq!(image.manifest_digest.as_str(), digest_of(&amd));
    assert_eq!(image.index_digest.as_ref().unwrap().as_str(), index_digest);
    assert_ne!(image.manifest_digest.as_str(), index_digest);
    assert_eq!(image.platform, Some(amd64()));

    let image = registry
        .resolve(&multi, &"linux/arm64".parse().unwrap())
        .await
        .unwrap();
    assert_eq!(image.manifest, arm);

    let image = registry
        .resolve(&multi, &"linux/arm/v7".parse().unwrap())
        .await
        .unwrap();
    assert_eq!(image.manifest, arm_v7);
    let image = registry
        .resolve(&multi, &"linux/arm/v6".parse().unwrap())
        .await
        .unwrap();
    assert_eq!(
        image.manifest, arm_plain,
        "no v6: the variant-less instance"
    );

    // By the index digest: the same instance, the index digest recorded.
    let by_digest = reference(&format!("{host}/app@{index_digest}"));
    let image = registry.resolve(&by_digest, &amd64()).await.unwrap();
    assert_eq!(image.manifest, amd);
    assert_eq!(image.index_digest.as_ref().unwrap().as_str(), index_digest);

    let err = registry
        .resolve(&multi, &"windows/amd64".parse().unwrap())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NoMatchingPlatform { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("windows/amd64"), "{text}");
    assert!(
        text.contains("available: linux/amd64, linux/arm64, linux/arm, linux/arm/v7"),
        "{text}"
    );
}

#[tokio::test]
async fn index_instance_with_wrong_bytes_is_refused() {
    let amd = image_manifest("amd64");
    let index = index_json(&[(&digest_of(&amd), "linux/amd64")]);
    let server = FakeRegistry::start(move |req: &Request| {
        if req.path == "/v2/app/manifests/multi" {
            Response::ok(OCI_INDEX, index.clone())
        } else if req.path.starts_with("/v2/app/manifests/sha256:") {
            Response::ok(OCI_MANIFEST, image_manifest("not amd64"))
        } else {
            Response::not_found("MANIFEST_UNKNOWN")
        }
    })
    .await;
    let err = resolve_error(&server, "app:multi").await;
    assert!(matches!(err, Error::DigestMismatch { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains(&format!("expected {}", digest_of(&amd))),
        "{err}"
    );
}

#[tokio::test]
async fn schema1_manifests_are_refused() {
    let server = serve_manifest(
        "old",
        Response::ok(
            "application/vnd.docker.distribution.manifest.v1+prettyjws",
            r#"{"schemaVersion":1,"name":"app","tag":"old","fsLayers":[],"signatures":[]}"#,
        ),
        Response::not_found("MANIFEST_UNKNOWN"),
    )
    .await;
    let err = resolve_error(&server, "app:old").await;
    assert!(matches!(err, Error::Schema1 { .. }), "{err:?}");
    assert!(err.to_string().contains("schema 1"), "{err}");
}

#[tokio::test]
async fn blocked_registry_is_an_error() {
    let registry = Registry::new(RegistryConfig {
        registries_conf: Some(conf(
            "[[registry]]\nlocation = \"127.0.0.1:9\"\nblocked = true\n",
        )),
        timeout: TIMEOUT,
        ..RegistryConfig::default()
    })
    .unwrap();
    let err = registry
        .resolve(&reference("127.0.0.1:9/app:v1"), &amd64())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("blocked"), "{err}");
}

/// Serves an image and its `.sig` manifest with `sig_content_type`; the
/// layers are `(payload, annotations)`.
async fn image_with_sig(
    sig_content_type: &'static str,
    layers: Vec<(Vec<u8>, &'static str)>,
) -> (FakeRegistry, criguard_registry::ResolvedImage, Registry) {
    let manifest = image_manifest("signed");
    let digest = digest_of(&manifest);
    let sig_tag = format!("{}.sig", digest.replace(':', "-"));
    let descriptors: Vec<String> = layers
        .iter()
        .map(|(payload, annotations)| {
            format!(
                r#"{{"mediaType":"application/vnd.dev.cosign.simplesigning.v1+json","size":{},"digest":"{}","annotations":{annotations}}}"#,
                payload.len(),
                digest_of(payload)
            )
        })
        .collect();
    let sig_manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","size":2,"digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"}},"layers":[{}]}}"#,
        descriptors.join(",")
    );
    let served = manifest.clone();
    let server = FakeRegistry::start(move |req: &Request| {
        if req.path == "/v2/app/manifests/v1" {
            return Response::ok(OCI_MANIFEST, served.clone());
        }
        if req.path == format!("/v2/app/manifests/{sig_tag}") {
            return Response::ok(sig_content_type, sig_manifest.clone());
        }
        for (payload, _) in &layers {
            if req.path == format!("/v2/app/blobs/{}", digest_of(payload)) {
                if payload.starts_with(b"BIG") {
                    return Response::ok("application/octet-stream", "").with_body(
                        Body::StallAfter {
                            declared: 5 << 20,
                            prefix: payload.clone(),
                        },
                    );
                }
                if payload.starts_with(b"SWAP") {
                    return Response::ok("application/octet-stream", b"swapped payload".to_vec());
                }
                return Response::ok("application/octet-stream", payload.clone());
            }
        }
        Response::not_found("MANIFEST_UNKNOWN")
    })
    .await;
    let (registry, image) = resolve_app_v1(&server).await;
    assert_eq!(image.manifest_digest.as_str(), digest);
    (server, image, registry)
}

#[tokio::test]
async fn sigstore_attachments_are_read() {
    let (_server, image, registry) = image_with_sig(
        OCI_MANIFEST,
        vec![
            (
                b"payload one".to_vec(),
                r#"{"dev.cosignproject.cosign/signature":"c2ln"}"#,
            ),
            (b"payload two".to_vec(), r#"{}"#),
        ],
    )
    .await;
    let signatures = registry.sigstore_attachments(&image).await.unwrap();
    assert_eq!(signatures.len(), 2);
    assert_eq!(signatures[0].payload, b"payload one");
    assert_eq!(
        signatures[0].mime_type,
        "application/vnd.dev.cosign.simplesigning.v1+json"
    );
    assert_eq!(
        signatures[0]
            .annotations
            .get("dev.cosignproject.cosign/signature")
            .map(String::as_str),
        Some("c2ln")
    );
    assert_eq!(signatures[1].payload, b"payload two");
    assert!(signatures[1].annotations.is_empty());
}

#[tokio::test]
async fn sigstore_manifest_with_wrong_content_type_is_refused() {
    let (_server, image, registry) = image_with_sig(
        "application/vnd.docker.distribution.manifest.v2+json",
        vec![(b"payload".to_vec(), "{}")],
    )
    .await;
    let err = registry.sigstore_attachments(&image).await.unwrap_err();
    assert!(matches!(err, Error::SigstoreMimeType { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.starts_with("unexpected MIME type for sigstore attachment manifest "),
        "{text}"
    );
    assert!(
        text.ends_with(": \"application/vnd.docker.distribution.manifest.v2+json\""),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "{}:sha256-{}.sig",
            image.source.name(),
            image.manifest_digest.encoded()
        )),
        "{text}"
    );
}

#[tokio::test]
async fn missing_sigstore_manifest_means_no_signatures() {
    for (status, code) in [(404, "MANIFEST_UNKNOWN"), (404, "NAME_UNKNOWN")] {
        let server = serve_manifest(
            "v1",
            Response::ok(OCI_MANIFEST, image_manifest("unsigned")),
            Response::new(status, format!(r#"{{"errors":[{{"code":"{code}"}}]}}"#)),
        )
        .await;
        let (registry, image) = resolve_app_v1(&server).await;
        assert!(
            registry
                .sigstore_attachments(&image)
                .await
                .unwrap()
                .is_empty()
        );
    }

    // containers/image's third form: UNKNOWN with "not found", any status.
    let server = serve_manifest(
        "v1",
        Response::ok(OCI_MANIFEST, image_manifest("unsigned")),
        Response::new(
            400,
            r#"{"errors":[{"code":"UNKNOWN","message":"Not Found"}]}"#,
        ),
    )
    .await;
    let (registry, image) = resolve_app_v1(&server).await;
    assert!(
        registry
            .sigstore_attachments(&image)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn sigstore_other_errors_fail() {
    let server = serve_manifest(
        "v1",
        Response::ok(OCI_MANIFEST, image_manifest("unsigned")),
        Response::new(503, "maintenance"),
    )
    .await;
    let (registry, image) = resolve_app_v1(&server).await;
    let err = registry.sigstore_attachments(&image).await.unwrap_err();
    assert!(
        matches!(err, Error::HttpStatus { status: 503, .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn oversized_signature_layer_is_refused() {
    let (_server, image, registry) =
        image_with_sig(OCI_MANIFEST, vec![(b"BIG payload".to_vec(), "{}")]).await;
    let started = Instant::now();
    let err = registry.sigstore_attachments(&image).await.unwrap_err();
    assert!(
        started.elapsed() < TIMEOUT / 2,
        "refused from Content-Length"
    );
    assert!(matches!(err, Error::TooLarge { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("signature") && text.contains("exceeds 4 MiB limit"),
        "{text}"
    );
}

#[tokio::test]
async fn signature_layer_with_wrong_bytes_is_refused() {
    let payload = b"SWAP me".to_vec();
    let expected = digest_of(&payload);
    let (_server, image, registry) = image_with_sig(OCI_MANIFEST, vec![(payload, "{}")]).await;
    let err = registry.sigstore_attachments(&image).await.unwrap_err();
    assert!(matches!(err, Error::DigestMismatch { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains(&format!(
            "digest mismatch: expected {expected}, got {}",
            digest_of(b"swapped payload")
        )),
        "{text}"
    );
}

#[tokio::test]
async fn mirror_serves_when_it_can_and_failures_are_all_reported() {
    let manifest = image_manifest("mirrored");
    let mirror = FakeRegistry::start(serve_image(manifest.clone())).await;
    let primary = dead_host();
    let mirror_host = mirror.host();
    let registry = mirrored_registry("example.test", &primary, &mirror_host, TIMEOUT);
    let asked = reference("example.test/app:v1");
    let image = registry.resolve(&asked, &amd64()).await.unwrap();
    assert_eq!(image.reference, asked);
    assert_eq!(
        image.source.to_string(),
        format!("{}/app:v1", mirror.host())
    );
    assert_eq!(image.manifest, manifest);

    // The mirror gone too: both failures are in the message.
    drop(mirror);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let registry = mirrored_registry("example.test", &primary, &mirror_host, TIMEOUT);
    let err = registry.resolve(&asked, &amd64()).await.unwrap_err();
    assert!(matches!(err, Error::AllSourcesFailed { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.starts_with(&format!(
            "(Mirrors also failed: [{mirror_host}/app:v1: {mirror_host}: connection refused]): {primary}/app:v1: {primary}: connection refused"
        )),
        "{text}"
    );
}

#[tokio::test]
async fn overall_deadline_bounds_an_operation() {
    let server = FakeRegistry::stalled().await;
    let host = server.host();
    let registry = registry_for(&[&host], None, Duration::from_secs(30))
        .with_operation_deadline(Duration::from_millis(300));
    let started = Instant::now();
    let err = registry
        .resolve(&reference(&format!("{host}/app:v1")), &amd64())
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(matches!(err, Error::DeadlineExceeded { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!("resolving {host}/app:v1 did not finish within its overall deadline of 300ms")
    );
}

#[test]
fn operations_can_run_on_other_tasks() {
    fn assert_send<T: Send>(_: &T) {}
    fn assert_sync<T: Send + Sync>() {}
    assert_sync::<Registry>();
    let registry = Registry::new(RegistryConfig::default()).unwrap();
    let image = reference("example.com/app:v1");
    let platform = amd64();
    let future = registry.resolve(&image, &platform);
    assert_send(&future);
    drop(future);
}

#[test]
fn zero_time_out_is_refused() {
    let err = Registry::new(RegistryConfig {
        timeout: Duration::ZERO,
        ..RegistryConfig::default()
    })
    .err()
    .unwrap();
    assert!(err.to_string().contains("time-out"), "{err}");
}
