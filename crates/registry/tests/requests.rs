//! Which requests reading an image makes, and what they need: the ping,
//! token exchange, manifests and signatures containers/image would ask
//! for, no more, and no system trust store for a plain-HTTP registry.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;
use criguard_registry::Credentials;

const TIMEOUT: Duration = Duration::from_secs(10);

/// `app:v1` behind a token server at `/token` that hands `good-token` to
/// alice; every other request needs that token. The realm names the
/// server's own address, which `host` gives once it is known.
fn token_protected(
    manifest: Vec<u8>,
    host: std::sync::Arc<std::sync::OnceLock<String>>,
) -> impl Fn(&Request) -> Response + Send + Sync + 'static {
    let alice = format!(
        "Basic {}",
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, "alice:s3cret")
    );
    move |req: &Request| {
        if req.path.starts_with("/token") {
            return if req.header("authorization") == Some(alice.as_str()) {
                Response::ok("application/json", r#"{"token":"good-token"}"#)
            } else {
                Response::new(401, "no")
            };
        }
        if req.header("authorization") != Some("Bearer good-token") {
            let realm = format!(
                "Bearer realm=\"http://{}/token\",service=\"fake\"",
                host.get().map_or("", String::as_str)
            );
            return Response::new(401, r#"{"errors":[{"code":"UNAUTHORIZED"}]}"#)
                .header("WWW-Authenticate", &realm);
        }
        match req.path.as_str() {
            "/v2/app/manifests/v1" => Response::ok(OCI_MANIFEST, manifest.clone()),
            _ => Response::not_found("MANIFEST_UNKNOWN"),
        }
    }
}

/// One resolve and one read of each kind of signature make one ping and
/// one token request between them, then only the reads: what
/// containers/image asks for the same image (it has no referrers, so the
/// referrers API's 404 is followed by the fallback tag).
#[tokio::test]
async fn one_ping_and_one_token_for_a_whole_verification() {
    let manifest = image_manifest("requests");
    let digest = digest_of(&manifest);
    let cell = std::sync::Arc::new(std::sync::OnceLock::new());
    let server = FakeRegistry::start(token_protected(manifest.clone(), cell.clone())).await;
    let host = server.host();
    cell.set(host.clone()).unwrap();
    let registry = registry_for(
        &[&host],
        Some(Credentials::Basic {
            username: "alice".into(),
            password: "s3cret".into(),
        }),
        TIMEOUT,
    );

    let image = registry
        .resolve(&reference(&format!("{host}/app:v1")), &amd64())
        .await
        .unwrap();
    assert_eq!(image.manifest, manifest);
    assert!(
        registry
            .sigstore_attachments(&image)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(registry.sigstore_bundles(&image).await.unwrap().is_empty());

    let hex = digest.trim_start_matches("sha256:");
    let paths: Vec<String> = server.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(
        paths,
        [
            "/v2/".to_owned(),
            "/token?account=alice&service=fake&scope=repository%3Aapp%3Apull".to_owned(),
            "/v2/app/manifests/v1".to_owned(),
            format!("/v2/app/manifests/sha256-{hex}.sig"),
            format!(
                "/v2/app/referrers/{digest}?artifactType=application/vnd.dev.sigstore.bundle.v0.3%2Bjson"
            ),
            format!("/v2/app/manifests/sha256-{hex}"),
        ],
        "requests in order"
    );
    for request in server.requests() {
        assert_eq!(
            request.header("user-agent"),
            Some(concat!("criguard/", env!("CARGO_PKG_VERSION"))),
            "{}",
            request.path
        );
    }
}

/// A 401 on a reused token forgets the endpoint's challenge too: the next
/// operation pings again and asks for a new token, instead of failing
/// until the reuse window ends.
#[tokio::test]
async fn a_rejected_token_is_exchanged_anew() {
    let manifest = image_manifest("rejected");
    let cell = std::sync::Arc::new(std::sync::OnceLock::new());
    let reject_next = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let protected = token_protected(manifest.clone(), cell.clone());
    let flag = reject_next.clone();
    let server = FakeRegistry::start(move |req: &Request| {
        if req.path.starts_with("/v2/app/") && flag.swap(false, std::sync::atomic::Ordering::SeqCst)
        {
            return Response::new(401, r#"{"errors":[{"code":"UNAUTHORIZED"}]}"#);
        }
        protected(req)
    })
    .await;
    let host = server.host();
    cell.set(host.clone()).unwrap();
    let registry = registry_for(
        &[&host],
        Some(Credentials::Basic {
            username: "alice".into(),
            password: "s3cret".into(),
        }),
        TIMEOUT,
    );
    let image = reference(&format!("{host}/app:v1"));
    registry.resolve(&image, &amd64()).await.unwrap();
    reject_next.store(true, std::sync::atomic::Ordering::SeqCst);
    let err = registry.resolve(&image, &amd64()).await.unwrap_err();
    assert!(
        matches!(err, criguard_registry::Error::CredentialsRejected { .. }),
        "{err:?}"
    );
    registry.resolve(&image, &amd64()).await.unwrap();
    let count = |prefix: &str| {
        server
            .requests()
            .iter()
            .filter(|r| r.path == prefix || r.path.starts_with(&format!("{prefix}?")))
            .count()
    };
    assert_eq!(count("/v2/"), 2, "pinged again after the 401");
    assert_eq!(count("/token"), 2, "a new token after the 401");
}

/// Set in the child process of the test below.
const CHILD: &str = "CRIGUARD_REGISTRY_TEST_NO_TRUST_STORE";

/// A registry marked `insecure` and served over plain HTTP needs no
/// certificate checks, so reading from it must work on a machine whose
/// trust store cannot be loaded, and must not pay for loading it. The test
/// runs itself again with `SSL_CERT_FILE` and `SSL_CERT_DIR` naming
/// nothing, where a certificate-checking client cannot be built at all.
#[test]
fn plain_http_needs_no_trust_store() {
    if std::env::var_os(CHILD).is_some() {
        return child_without_trust_store();
    }
    let empty = tempfile::tempdir().unwrap();
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "plain_http_needs_no_trust_store",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, "1")
        .env("SSL_CERT_FILE", empty.path().join("none.pem"))
        .env("SSL_CERT_DIR", empty.path())
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{said}");
    assert!(said.contains("resolved without a trust store"), "{said}");
}

fn child_without_trust_store() {
    // The premise: here, a client that checks certificates cannot exist.
    assert!(
        reqwest::Client::builder().build().is_err(),
        "SSL_CERT_FILE/SSL_CERT_DIR did not empty the trust store"
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let manifest = image_manifest("no-trust-store");
        let digest = digest_of(&manifest);
        let served = manifest.clone();
        let server = FakeRegistry::start(move |req: &Request| match req.path.as_str() {
            "/v2/app/manifests/v1" => Response::ok(OCI_MANIFEST, served.clone()),
            _ => Response::not_found("MANIFEST_UNKNOWN"),
        })
        .await;
        let host = server.host();
        let registry = registry_for(&[&host], None, TIMEOUT);
        let image = registry
            .resolve(&reference(&format!("{host}/app:v1")), &amd64())
            .await
            .unwrap();
        assert_eq!(image.manifest_digest.as_str(), digest);
        assert!(
            registry
                .sigstore_attachments(&image)
                .await
                .unwrap()
                .is_empty()
        );

        // An http:// lookaside store needs no trust store either.
        let yaml = format!("default-docker:\n  lookaside: \"http://{host}/store\"\n");
        let base = criguard_registries::RegistriesD::from_files([(
            "test.yaml".to_owned(),
            yaml.into_bytes(),
        )])
        .unwrap()
        .lookaside_base(
            &reference("example.com/app:v1"),
            criguard_registries::LookasideAccess::Read,
        )
        .unwrap();
        assert!(
            registry
                .lookaside_signatures(&base, &image.manifest_digest)
                .await
                .unwrap()
                .is_empty()
        );
        assert!(
            server
                .requests()
                .iter()
                .any(|r| r.path.starts_with("/store/") && r.path.ends_with("/signature-1")),
            "the lookaside store was asked"
        );
        println!("resolved without a trust store");
    });
}
