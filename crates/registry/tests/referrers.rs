//! cosign 3's bundles found as OCI referrers: the referrers API, the
//! `sha256-<hex>` fallback tag when the API answers 404, classification by
//! the referring manifest and not the list's entry, the opt-in through
//! registries.d, and the bounds (entries before any fetch, bytes shared
//! with the image's other signatures). The fake registry counts requests.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use criguard_policy::Signature;
use criguard_registries::RegistriesD;
use criguard_registry::{Error, MAX_SIGSTORE_ATTACHMENTS, Registry, ResolvedImage};
use serde_json::{Value, json};

const TIMEOUT: Duration = Duration::from_secs(10);
const BUNDLE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
const EMPTY: &str = "application/vnd.oci.empty.v1+json";

/// An artifact manifest referring to `subject` with `layers` (each a
/// media type and blob), and `artifact_type` (or none).
fn artifact(subject: &str, artifact_type: Option<&str>, layers: &[(&str, &[u8])]) -> Vec<u8> {
    let layers: Vec<Value> = layers
        .iter()
        .map(|(media_type, blob)| {
            json!({"mediaType": media_type, "size": blob.len(), "digest": digest_of(blob)})
        })
        .collect();
    let mut manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": EMPTY, "size": 2, "digest": digest_of(b"{}")},
        "layers": layers,
        "subject": {"mediaType": OCI_MANIFEST, "size": 1, "digest": subject},
    });
    if let Some(kind) = artifact_type {
        manifest["artifactType"] = json!(kind);
    }
    manifest.to_string().into_bytes()
}

/// The list of `artifacts`, each entry saying `entry_type`.
fn listing(artifacts: &[Vec<u8>], entry_type: &str) -> Vec<u8> {
    let manifests: Vec<Value> = artifacts
        .iter()
        .map(|a| {
            json!({"mediaType": OCI_MANIFEST, "size": a.len(), "digest": digest_of(a), "artifactType": entry_type})
        })
        .collect();
    json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests})
        .to_string()
        .into_bytes()
}

/// The list, the manifests (each with the digest it is served under) and
/// the blobs.
type Content = (Vec<u8>, Vec<(String, Vec<u8>)>, Vec<Vec<u8>>);

/// A manifest served under its own digest.
fn own(manifest: Vec<u8>) -> (String, Vec<u8>) {
    (digest_of(&manifest), manifest)
}

struct Served {
    server: FakeRegistry,
    registry: Registry,
    image: ResolvedImage,
}

/// `app:v1`, with `list` served by the referrers API (`api`) or by the
/// fallback tag, and every manifest and blob in `content`.
async fn serve(make: impl FnOnce(&str) -> Content, api: bool) -> Served {
    let manifest = image_manifest("referred");
    let digest = digest_of(&manifest);
    let (list, artifacts, blobs) = make(&digest);
    let mut paths: BTreeMap<String, (String, Vec<u8>)> = BTreeMap::new();
    paths.insert(
        "/v2/app/manifests/v1".into(),
        (OCI_MANIFEST.into(), manifest),
    );
    for (digest, a) in artifacts {
        paths.insert(
            format!("/v2/app/manifests/{digest}"),
            (OCI_MANIFEST.into(), a),
        );
    }
    for b in blobs {
        paths.insert(
            format!("/v2/app/blobs/{}", digest_of(&b)),
            ("application/octet-stream".into(), b),
        );
    }
    let referrers = format!("/v2/app/referrers/{digest}");
    let fallback = format!("/v2/app/manifests/{}", digest.replace(':', "-"));
    let server = FakeRegistry::start(move |req: &Request| {
        let path = req.path.split('?').next().unwrap_or_default();
        if path == referrers {
            return if api {
                Response::ok(OCI_INDEX, list.clone())
            } else {
                Response::new(404, "404 page not found")
            };
        }
        if path == fallback && !api && !list.is_empty() {
            return Response::ok(OCI_INDEX, list.clone());
        }
        match paths.get(path) {
            Some((kind, body)) => Response::ok(kind, body.clone()),
            None => Response::not_found("MANIFEST_UNKNOWN"),
        }
    })
    .await;
    let host = server.host();
    let registry = registry_for(&[&host], None, TIMEOUT);
    let image = registry
        .resolve(&reference(&format!("{host}/app:v1")), &amd64())
        .await
        .unwrap();
    Served {
        server,
        registry,
        image,
    }
}

fn registries_d(host: &str, bundles: bool) -> RegistriesD {
    let yaml = format!(
        "docker:\n  \"{host}\":\n    use-sigstore-attachments: true\n    criguard-sigstore-bundles: {bundles}\n"
    );
    RegistriesD::from_files([("test.yaml".to_owned(), yaml.into_bytes())]).unwrap()
}

/// Three referrers: a bundle whose list entry says "empty" (as GHCR and
/// Debian's registry 2.8 write), an SBOM whose entry claims to be a
/// bundle, and an old-style bundle known only by its config type.
fn mixed(subject: &str) -> Content {
    let bundle = br#"{"bundle":1}"#.to_vec();
    let sbom = br#"{"sbom":1}"#.to_vec();
    let old = br#"{"bundle":2}"#.to_vec();
    let a = artifact(subject, Some(BUNDLE), &[(BUNDLE, &bundle)]);
    let b = artifact(subject, Some("application/spdx+json"), &[(BUNDLE, &sbom)]);
    let mut c: Value = serde_json::from_slice(&artifact(subject, None, &[(BUNDLE, &old)])).unwrap();
    c["config"]["mediaType"] = json!(BUNDLE);
    let c = c.to_string().into_bytes();
    let list = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "size": a.len(), "digest": digest_of(&a), "artifactType": EMPTY},
        {"mediaType": OCI_MANIFEST, "size": b.len(), "digest": digest_of(&b), "artifactType": BUNDLE},
        {"mediaType": OCI_MANIFEST, "size": c.len(), "digest": digest_of(&c)},
    ]})
    .to_string()
    .into_bytes();
    (list, vec![own(a), own(b), own(c)], vec![bundle, sbom, old])
}

fn payloads(signatures: &[Signature]) -> Vec<Vec<u8>> {
    signatures
        .iter()
        .map(|s| match s {
            Signature::Sigstore(s) => {
                assert_eq!(s.mime_type, BUNDLE);
                s.payload.clone()
            }
            other => panic!("{other:?}"),
        })
        .collect()
}

#[tokio::test]
async fn referrers_are_classified_by_their_own_manifest() {
    for api in [true, false] {
        let s = serve(mixed, api).await;
        let bundles = s.registry.sigstore_bundles(&s.image).await.unwrap();
        assert_eq!(
            payloads(
                &bundles
                    .into_iter()
                    .map(Signature::Sigstore)
                    .collect::<Vec<_>>()
            ),
            vec![br#"{"bundle":1}"#.to_vec(), br#"{"bundle":2}"#.to_vec()],
            "api: {api}"
        );
        let asked_api = s
            .server
            .requests()
            .iter()
            .any(|r| r.path.contains("/referrers/"));
        assert!(asked_api, "the referrers API is always asked first");
        let asked_tag = s
            .server
            .requests()
            .iter()
            .any(|r| r.path.contains("/manifests/sha256-"));
        assert_eq!(asked_tag, !api, "the fallback tag is read only on a 404");
    }
}

#[tokio::test]
async fn bundles_are_read_only_where_registries_d_opts_in() {
    let s = serve(mixed, true).await;
    let host = s.server.host();
    let off = s
        .registry
        .signatures(&registries_d(&host, false), &s.image)
        .await
        .unwrap();
    assert!(off.signatures.is_empty());
    assert!(
        !s.server
            .requests()
            .iter()
            .any(|r| r.path.contains("/referrers/"))
    );
    let on = s
        .registry
        .signatures(&registries_d(&host, true), &s.image)
        .await
        .unwrap();
    assert_eq!(payloads(&on.signatures).len(), 2);
}

#[tokio::test]
async fn no_referrers_is_no_signature() {
    let s = serve(|_| (Vec::new(), Vec::new(), Vec::new()), false).await;
    assert!(
        s.registry
            .sigstore_bundles(&s.image)
            .await
            .unwrap()
            .is_empty()
    );
    let s = serve(|_| (listing(&[], BUNDLE), Vec::new(), Vec::new()), true).await;
    assert!(
        s.registry
            .sigstore_bundles(&s.image)
            .await
            .unwrap()
            .is_empty()
    );
}

/// A referrer of another image listed here (a moved fallback index) is
/// not read as this image's.
#[tokio::test]
async fn referrers_of_another_subject_are_skipped() {
    let s = serve(
        |_| {
            let bundle = b"{}".to_vec();
            let other = format!("sha256:{}", "ab".repeat(32));
            let a = artifact(&other, Some(BUNDLE), &[(BUNDLE, &bundle)]);
            (
                listing(std::slice::from_ref(&a), EMPTY),
                vec![own(a)],
                vec![bundle],
            )
        },
        false,
    )
    .await;
    assert!(
        s.registry
            .sigstore_bundles(&s.image)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn too_many_referrers_are_refused_before_any_is_fetched() {
    let s = serve(
        |subject| {
            let artifacts: Vec<Vec<u8>> = (0..=MAX_SIGSTORE_ATTACHMENTS)
                .map(|i| {
                    artifact(
                        subject,
                        Some(BUNDLE),
                        &[(BUNDLE, format!("{i}").as_bytes())],
                    )
                })
                .collect();
            (listing(&artifacts, BUNDLE), Vec::new(), Vec::new())
        },
        true,
    )
    .await;
    let err = s.registry.sigstore_bundles(&s.image).await.unwrap_err();
    assert!(
        matches!(err, Error::TooManySignatures { count: 129, .. }),
        "{err:?}"
    );
    let fetched = s
        .server
        .requests()
        .iter()
        .filter(|r| r.path.contains("/manifests/sha256:"))
        .count();
    assert_eq!(fetched, 0);
}

/// A bundle layer declaring more than the per-image total is refused
/// before its blob is read.
#[tokio::test]
async fn oversized_bundles_are_refused_before_they_are_read() {
    let s = serve(
        |subject| {
            let mut a: Value =
                serde_json::from_slice(&artifact(subject, Some(BUNDLE), &[(BUNDLE, b"{}")]))
                    .unwrap();
            a["layers"][0]["size"] = json!(17 << 20);
            let a = a.to_string().into_bytes();
            (
                listing(std::slice::from_ref(&a), BUNDLE),
                vec![own(a)],
                vec![b"{}".to_vec()],
            )
        },
        true,
    )
    .await;
    let err = s.registry.sigstore_bundles(&s.image).await.unwrap_err();
    assert!(matches!(err, Error::SignaturesTooLarge { .. }), "{err:?}");
    assert!(
        !s.server
            .requests()
            .iter()
            .any(|r| r.path.contains("/blobs/"))
    );
}

/// A list entry whose manifest does not have the digest it names is an
/// error, never a signature.
#[tokio::test]
async fn a_substituted_referrer_manifest_is_refused() {
    let s = serve(
        |subject| {
            let a = artifact(subject, Some(BUNDLE), &[(BUNDLE, b"{}")]);
            let list = listing(std::slice::from_ref(&a), BUNDLE);
            let mut b: Value = serde_json::from_slice(&a).unwrap();
            b["annotations"] = json!({"swapped": "yes"});
            (
                list,
                vec![(digest_of(&a), b.to_string().into_bytes())],
                vec![b"{}".to_vec()],
            )
        },
        true,
    )
    .await;
    let err = s.registry.sigstore_bundles(&s.image).await.unwrap_err();
    assert!(matches!(err, Error::DigestMismatch { .. }), "{err:?}");
}
