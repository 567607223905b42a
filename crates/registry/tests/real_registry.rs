//! Against a real registry (Debian's docker-registry, distribution 2.8) on
//! 127.0.0.1, started by criguard-testutil: what CRI runtimes pull from.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{amd64, dead_host, insecure_conf, mirrored_registry, reference, registry_for};
use criguard_policy::SigstoreSignature;
use criguard_reference::Digest;
use criguard_registry::{AuthFile, Credentials, Error, Registry, RegistryConfig};
use criguard_testutil::{
    Registry as TestRegistry, test_image, test_multiarch, upload_image, upload_index,
};

const TIMEOUT: Duration = Duration::from_secs(20);

fn signature(payload: &str, sig: &str) -> SigstoreSignature {
    SigstoreSignature {
        mime_type: "application/vnd.dev.cosign.simplesigning.v1+json".to_owned(),
        payload: payload.as_bytes().to_vec(),
        annotations: BTreeMap::from([(
            "dev.cosignproject.cosign/signature".to_owned(),
            sig.to_owned(),
        )]),
    }
}

#[tokio::test]
async fn resolves_by_tag_and_by_digest() {
    let server = TestRegistry::start();
    let image = test_image("resolve");
    let pushed = upload_image(&server, "ns/app", "v1", &image);
    let registry = registry_for(&[&server.host()], None, TIMEOUT);

    let by_tag = reference(&pushed.by_tag());
    let resolved = registry.resolve(&by_tag, &amd64()).await.unwrap();
    assert_eq!(resolved.manifest_digest.as_str(), pushed.digest);
    assert_eq!(resolved.manifest, image.manifest.data);
    assert_eq!(resolved.media_type, criguard_registry::OCI_MANIFEST);
    assert_eq!(resolved.index_digest, None);
    assert_eq!(resolved.source, by_tag);

    let by_digest = reference(&pushed.by_digest());
    let resolved = registry.resolve(&by_digest, &amd64()).await.unwrap();
    assert_eq!(resolved.manifest_digest.as_str(), pushed.digest);
    assert_eq!(resolved.reference, by_digest);

    let missing = reference(&format!("{}/ns/app:nope", server.host()));
    let err = registry.resolve(&missing, &amd64()).await.unwrap_err();
    assert!(matches!(err, Error::ManifestUnknown { .. }), "{err:?}");
    assert!(
        err.to_string().contains("ns/app:nope: manifest unknown"),
        "{err}"
    );
}

#[tokio::test]
async fn multi_arch_index_chooses_the_platform() {
    let server = TestRegistry::start();
    let index = test_multiarch("multi");
    let pushed = upload_index(&server, "multi", "v1", &index);
    let registry = registry_for(&[&server.host()], None, TIMEOUT);
    let by_tag = reference(&pushed.index.by_tag());

    let amd = registry.resolve(&by_tag, &amd64()).await.unwrap();
    assert_eq!(
        amd.manifest_digest.as_str(),
        pushed.platform_digest("linux", "amd64")
    );
    assert_eq!(amd.index_digest.as_ref().unwrap().as_str(), index.digest());
    assert_eq!(amd.platform.as_ref().unwrap().to_string(), "linux/amd64");
    assert_eq!(
        amd.manifest,
        index.image("linux", "amd64").unwrap().manifest.data
    );

    let arm = registry
        .resolve(&by_tag, &"linux/arm64".parse().unwrap())
        .await
        .unwrap();
    assert_eq!(
        arm.manifest_digest.as_str(),
        pushed.platform_digest("linux", "arm64")
    );
    assert_ne!(arm.manifest_digest, amd.manifest_digest);
    assert_eq!(arm.index_digest, amd.index_digest);

    let err = registry
        .resolve(&by_tag, &"linux/s390x".parse().unwrap())
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("no image for platform linux/s390x in the manifest list; available: linux/amd64, linux/arm64"),
        "{err}"
    );
}

#[tokio::test]
async fn sigstore_attachments_round_trip_and_append() {
    let server = TestRegistry::start();
    let pushed = upload_image(&server, "signed", "v1", &test_image("signed"));
    let registry = registry_for(&[&server.host()], None, TIMEOUT);
    let image = registry
        .resolve(&reference(&pushed.by_tag()), &amd64())
        .await
        .unwrap();
    assert!(
        registry
            .sigstore_attachments(&image)
            .await
            .unwrap()
            .is_empty()
    );

    let repository = reference(&pushed.name());
    let digest = Digest::parse(&pushed.digest).unwrap();
    let first = signature(r#"{"critical":{"n":1}}"#, "c2lnMQ==");
    let second = signature(r#"{"critical":{"n":2}}"#, "c2lnMg==");

    let d1 = registry
        .push_sigstore_attachment(&repository, &digest, &first)
        .await
        .unwrap();
    assert_eq!(
        registry.sigstore_attachments(&image).await.unwrap(),
        vec![first.clone()]
    );

    let d2 = registry
        .push_sigstore_attachment(&repository, &digest, &second)
        .await
        .unwrap();
    assert_ne!(d1, d2);
    assert_eq!(
        registry.sigstore_attachments(&image).await.unwrap(),
        vec![first.clone(), second.clone()],
        "appending keeps the earlier layer"
    );

    // Pushing an identical layer again changes nothing.
    let d3 = registry
        .push_sigstore_attachment(&repository, &digest, &first)
        .await
        .unwrap();
    assert_eq!(d3, d2);
    assert_eq!(
        registry.sigstore_attachments(&image).await.unwrap().len(),
        2
    );

    // The shape cosign 2.x writes, as the registry serves it.
    let tag = format!("sha256-{}.sig", digest.encoded());
    let served = server.get_manifest("signed", &tag);
    assert_eq!(served.status, 200);
    assert_eq!(
        served.header("content-type"),
        Some("application/vnd.oci.image.manifest.v1+json")
    );
    assert_eq!(served.header("docker-content-digest"), Some(d2.as_str()));
    let manifest: serde_json::Value = serde_json::from_slice(&served.body).unwrap();
    assert_eq!(manifest["schemaVersion"], 2);
    assert_eq!(
        manifest["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    assert_eq!(
        manifest["config"]["mediaType"],
        "application/vnd.oci.image.config.v1+json"
    );
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 2);
    assert_eq!(
        layers[0]["annotations"]["dev.cosignproject.cosign/signature"],
        "c2lnMQ=="
    );
    let config_digest = manifest["config"]["digest"].as_str().unwrap();
    let config = server.get(&format!("/v2/signed/blobs/{config_digest}"));
    assert_eq!(config.status, 200);
    let config: serde_json::Value = serde_json::from_slice(&config.body).unwrap();
    let diff_ids: Vec<&str> = config["rootfs"]["diff_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let layer_digests: Vec<&str> = layers
        .iter()
        .map(|l| l["digest"].as_str().unwrap())
        .collect();
    assert_eq!(diff_ids, layer_digests);
    assert_eq!(config["rootfs"]["type"], "layers");
    assert_eq!(config["history"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn mirror_serves_while_the_primary_is_down() {
    let mirror = TestRegistry::start();
    let pushed = upload_image(&mirror, "team/app", "v1", &test_image("mirrored"));
    let registry = mirrored_registry("registry.example", &dead_host(), &mirror.host(), TIMEOUT);

    // Signed in the mirror's repository, where containers/image looks.
    let digest = Digest::parse(&pushed.digest).unwrap();
    let direct = registry_for(&[&mirror.host()], None, TIMEOUT);
    let sig = signature("{}", "bWlycm9y");
    direct
        .push_sigstore_attachment(&reference(&pushed.name()), &digest, &sig)
        .await
        .unwrap();

    let asked = reference("registry.example/team/app:v1");
    let image = registry.resolve(&asked, &amd64()).await.unwrap();
    assert_eq!(image.reference, asked);
    assert_eq!(image.source.to_string(), pushed.by_tag());
    assert_eq!(image.manifest_digest, digest);
    assert_eq!(
        registry.sigstore_attachments(&image).await.unwrap(),
        vec![sig]
    );
}

#[tokio::test]
async fn credentials_against_htpasswd() {
    let server = TestRegistry::start_with_auth("alice", "wonderland");
    let pushed = upload_image(&server, "private", "v1", &test_image("private"));
    let host = server.host();
    let image = reference(&pushed.by_tag());

    let err = registry_for(&[&host], None, TIMEOUT)
        .resolve(&image, &amd64())
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::AuthenticationRequired { .. }),
        "{err:?}"
    );

    let wrong = Credentials::Basic {
        username: "alice".into(),
        password: "looking-glass".into(),
    };
    let err = registry_for(&[&host], Some(wrong), TIMEOUT)
        .resolve(&image, &amd64())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::CredentialsRejected { .. }), "{err:?}");
    assert!(
        err.to_string().contains("credentials rejected (401)"),
        "{err}"
    );

    // The auth file's entry for the repository is used.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("auth.json");
    std::fs::write(
        &path,
        format!(
            r#"{{"auths":{{"{host}/private":{{"auth":"YWxpY2U6d29uZGVybGFuZA=="}},"{host}":{{"auth":"eDp5"}}}}}}"#
        ),
    )
    .unwrap();
    let registry = Registry::new(RegistryConfig {
        registries_conf: Some(insecure_conf(&[&host])),
        auth_file: Some(AuthFile::load(&path).unwrap()),
        timeout: TIMEOUT,
        ..RegistryConfig::default()
    })
    .unwrap();
    let resolved = registry.resolve(&image, &amd64()).await.unwrap();
    assert_eq!(resolved.manifest_digest.as_str(), pushed.digest);

    // Pushing a signature with those credentials works too.
    let sig = signature("{}", "cHJpdmF0ZQ==");
    registry
        .push_sigstore_attachment(&reference(&pushed.name()), &resolved.manifest_digest, &sig)
        .await
        .unwrap();
    assert_eq!(
        registry.sigstore_attachments(&resolved).await.unwrap(),
        vec![sig]
    );
}
