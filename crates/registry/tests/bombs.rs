//! Signature bombs: a `.sig` manifest listing thousands of layers, layers
//! that repeat, sizes that add up past the per-image total, a lookaside
//! store and attachments that only together are too much. Each is refused
//! (or read once) with the number of blob requests as the evidence, which
//! the fake registry counts.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use criguard_registries::RegistriesD;
use criguard_registry::{
    Error, ErrorKind, MAX_SIGNATURE_BYTES_PER_IMAGE, MAX_SIGSTORE_ATTACHMENTS, Registry,
    ResolvedImage,
};

const TIMEOUT: Duration = Duration::from_secs(10);
const SIGNATURE_MIME: &str = "application/vnd.dev.cosign.simplesigning.v1+json";

/// One layer of a `.sig` manifest: the payload it names, the size it
/// declares and the signature annotation it carries.
struct Layer {
    payload: usize,
    size: usize,
    signature: String,
}

/// A fake registry serving `app:v1`, its `.sig` manifest with `layers`
/// (each naming one of `payloads`), and those payloads as blobs.
async fn serve(
    payloads: Vec<Vec<u8>>,
    layers: &[Layer],
) -> (FakeRegistry, Registry, ResolvedImage) {
    let manifest = image_manifest("bomb");
    let digest = digest_of(&manifest);
    let sig_tag = format!("{}.sig", digest.replace(':', "-"));
    let descriptors: Vec<String> = layers
        .iter()
        .map(|layer| {
            format!(
                r#"{{"mediaType":"{SIGNATURE_MIME}","size":{},"digest":"{}","annotations":{{"dev.cosignproject.cosign/signature":"{}"}}}}"#,
                layer.size,
                digest_of(&payloads[layer.payload]),
                layer.signature
            )
        })
        .collect();
    let sig_manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","size":2,"digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"}},"layers":[{}]}}"#,
        descriptors.join(",")
    );
    let blobs: BTreeMap<String, Vec<u8>> = payloads
        .into_iter()
        .map(|p| (format!("/v2/app/blobs/{}", digest_of(&p)), p))
        .collect();
    let server = FakeRegistry::start(move |req: &Request| {
        if req.path == "/v2/app/manifests/v1" {
            return Response::ok(OCI_MANIFEST, manifest.clone());
        }
        if req.path == format!("/v2/app/manifests/{sig_tag}") {
            return Response::ok(OCI_MANIFEST, sig_manifest.clone());
        }
        match blobs.get(&req.path) {
            Some(blob) => Response::ok("application/octet-stream", blob.clone()),
            None => Response::not_found("BLOB_UNKNOWN"),
        }
    })
    .await;
    let host = server.host();
    let registry = registry_for(&[&host], None, TIMEOUT);
    let image = registry
        .resolve(&reference(&format!("{host}/app:v1")), &amd64())
        .await
        .unwrap();
    (server, registry, image)
}

fn blob_requests(server: &FakeRegistry) -> usize {
    server
        .requests()
        .iter()
        .filter(|r| r.path.contains("/blobs/"))
        .count()
}

/// `count` layers, layer `i` naming payload `i % payloads` with the
/// signature annotation `sig-<i % signatures>`.
fn layers(count: usize, payloads: usize, signatures: usize, size: usize) -> Vec<Layer> {
    (0..count)
        .map(|i| Layer {
            payload: i % payloads,
            size,
            signature: format!("sig-{}", i % signatures),
        })
        .collect()
}

fn small_payloads(count: usize) -> Vec<Vec<u8>> {
    (0..count)
        .map(|i| format!("payload {i}").into_bytes())
        .collect()
}

#[tokio::test]
async fn a_sig_manifest_of_two_thousand_layers_is_refused_before_any_blob_is_read() {
    let (server, registry, image) = serve(small_payloads(3), &layers(2000, 3, 2000, 9)).await;
    let err = registry.sigstore_attachments(&image).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::TooManySignatures {
                count: 2000,
                limit: 128,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.kind(), ErrorKind::Content);
    let text = err.to_string();
    assert!(
        text.starts_with(&format!(
            "sigstore attachment manifest {}:sha256-{}.sig: server provided 2000 signatures",
            image.source.name(),
            image.manifest_digest.encoded()
        )),
        "{text}"
    );
    assert!(text.ends_with("(criguard reads at most 128)"), "{text}");
    assert_eq!(blob_requests(&server), 0, "refused from the manifest alone");
}

#[tokio::test]
async fn the_count_limit_is_the_layers_listed_and_128_are_read() {
    // 128 layers naming one payload, each with its own signature: all
    // read, the blob once.
    let (server, registry, image) = serve(
        small_payloads(1),
        &layers(MAX_SIGSTORE_ATTACHMENTS, 1, MAX_SIGSTORE_ATTACHMENTS, 9),
    )
    .await;
    let signatures = registry.sigstore_attachments(&image).await.unwrap();
    assert_eq!(signatures.len(), 128);
    assert_eq!(blob_requests(&server), 1);

    // 129 layers are refused even when all repeat one: the count is what
    // the manifest lists, judged before anything else.
    let (server, registry, image) = serve(
        small_payloads(1),
        &layers(MAX_SIGSTORE_ATTACHMENTS + 1, 1, 1, 9),
    )
    .await;
    let err = registry.sigstore_attachments(&image).await.unwrap_err();
    assert!(
        matches!(err, Error::TooManySignatures { count: 129, .. }),
        "{err:?}"
    );
    assert_eq!(blob_requests(&server), 0);
}

#[tokio::test]
async fn identical_layers_are_one_signature_and_shared_blobs_are_read_once() {
    // Layer i names payload i % 3 and signature i % 10: 30 distinct layers
    // (i % 30), three blobs.
    let payloads = small_payloads(3);
    let (server, registry, image) = serve(payloads.clone(), &layers(100, 3, 10, 9)).await;
    let signatures = registry.sigstore_attachments(&image).await.unwrap();
    assert_eq!(signatures.len(), 30);
    assert_eq!(blob_requests(&server), 3, "each blob is fetched once");
    // In the manifest's order, each with its own layer's annotations.
    for (i, signature) in signatures.iter().enumerate() {
        assert_eq!(signature.payload, payloads[i % 3]);
        assert_eq!(
            signature.annotations["dev.cosignproject.cosign/signature"],
            format!("sig-{}", i % 10)
        );
    }
}

#[tokio::test]
async fn declared_sizes_over_the_total_are_refused_before_any_blob_is_read() {
    // Five layers that say they are 4 MiB each: 20 MiB.
    let (server, registry, image) = serve(small_payloads(5), &layers(5, 5, 5, 4 << 20)).await;
    let err = registry.sigstore_attachments(&image).await.unwrap_err();
    assert!(
        matches!(err, Error::SignaturesTooLarge { total, limit, .. }
            if total == 20 << 20 && limit == MAX_SIGNATURE_BYTES_PER_IMAGE),
        "{err:?}"
    );
    assert_eq!(err.kind(), ErrorKind::Content);
    assert_eq!(
        err.to_string(),
        format!(
            "signatures of {}@{}: 20971520 bytes or more in all, more than the 16777216 bytes criguard reads per image",
            image.source.name(),
            image.manifest_digest
        )
    );
    assert_eq!(blob_requests(&server), 0);
}

#[tokio::test]
async fn served_bytes_over_the_total_are_refused_even_when_sizes_understate() {
    // Six distinct 3 MiB payloads whose layers claim 1 byte each: the
    // sixth brings the total to 18 MiB.
    let payloads: Vec<Vec<u8>> = (0..6u8).map(|i| vec![i; 3 << 20]).collect();
    let (server, registry, image) = serve(payloads, &layers(6, 6, 6, 1)).await;
    let err = registry.sigstore_attachments(&image).await.unwrap_err();
    assert!(
        matches!(err, Error::SignaturesTooLarge { total, .. } if total == 18 << 20),
        "{err:?}"
    );
    assert_eq!(blob_requests(&server), 6);
}

#[tokio::test]
async fn lookaside_and_attachments_share_one_total() {
    // 12 MB in the lookaside store and 6 MB declared by the attachments:
    // each fits alone, together they are over 16 MiB.
    let payloads: Vec<Vec<u8>> = (0..2u8).map(|i| vec![i; 3_000_000]).collect();
    let (server, registry, image) = serve(payloads, &layers(2, 2, 2, 3_000_000)).await;
    let store = tempfile::tempdir().unwrap();
    let images = store
        .path()
        .join(format!("app@sha256={}", image.manifest_digest.encoded()));
    std::fs::create_dir_all(&images).unwrap();
    for n in 1..=3 {
        // 0xA3 makes each file parse as a simple-signing blob.
        std::fs::write(images.join(format!("signature-{n}")), vec![0xa3; 4_000_000]).unwrap();
    }
    let yaml = format!(
        "docker:\n  \"{}\":\n    lookaside: \"file://{}\"\n    use-sigstore-attachments: true\n",
        server.host(),
        store.path().display()
    );
    let registries_d =
        RegistriesD::from_files([("bombs.yaml".to_owned(), yaml.into_bytes())]).unwrap();

    assert_eq!(
        registry.sigstore_attachments(&image).await.unwrap().len(),
        2
    );
    let blobs_alone = blob_requests(&server);
    let err = registry
        .signatures(&registries_d, &image)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::SignaturesTooLarge {
                total: 18_000_000,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        blob_requests(&server),
        blobs_alone,
        "refused from the declared sizes"
    );

    // Without the attachments, the lookaside store alone is read.
    let lookaside_only = RegistriesD::from_files([(
        "bombs.yaml".to_owned(),
        format!(
            "docker:\n  \"{}\":\n    lookaside: \"file://{}\"\n",
            server.host(),
            store.path().display()
        )
        .into_bytes(),
    )])
    .unwrap();
    let found = registry.signatures(&lookaside_only, &image).await.unwrap();
    assert_eq!(found.lookaside_count, 3);
}

#[tokio::test]
async fn a_lookaside_store_of_large_files_stops_at_the_total() {
    // Five files of 4 MiB: the fifth is over 16 MiB, and the sixth is
    // never opened (it is a directory, which would be a read error).
    let store = tempfile::tempdir().unwrap();
    let digest = criguard_registry::digest::sha256(b"some manifest");
    let images = store
        .path()
        .join(format!("app@sha256={}", digest.encoded()));
    std::fs::create_dir_all(&images).unwrap();
    for n in 1..=5 {
        std::fs::write(
            images.join(format!("signature-{n}")),
            vec![0xa3; criguard_registry::MAX_SIGNATURE_SIZE],
        )
        .unwrap();
    }
    std::fs::create_dir(images.join("signature-6")).unwrap();
    let registries_d = RegistriesD::from_files([(
        "bombs.yaml".to_owned(),
        format!(
            "default-docker:\n  lookaside: \"file://{}\"\n",
            store.path().display()
        )
        .into_bytes(),
    )])
    .unwrap();
    let base = registries_d
        .lookaside_base(
            &reference("example.com/app:v1"),
            criguard_registries::LookasideAccess::Read,
        )
        .unwrap();
    let err = registry_for(&[], None, TIMEOUT)
        .lookaside_signatures(&base, &digest)
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::SignaturesTooLarge { total, .. } if total == 20 << 20),
        "{err:?}"
    );
    assert!(err.to_string().contains(digest.as_str()), "{err}");
}
