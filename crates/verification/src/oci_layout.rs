//! An OCI image layout on disk (`oci:DIR[:NAME]`) as an [`ImageSource`].

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use criguard_policy::ImageReference;
use criguard_reference::Digest;
use criguard_registry::{ImageSignatures, MAX_MANIFEST_SIZE, OCI_INDEX, Platform};
use serde::Deserialize;

use crate::{ImageSource, Located, Resolved, SourceError};

/// The image a layout's `index.json` names, followed through one level of
/// image index to the platform's instance, as containers/image does. Every
/// blob is checked against its digest. containers/image's OCI layouts carry
/// no signatures, so a layout has none.
#[derive(Debug, Clone)]
pub struct OciLayout {
    platform: Platform,
}

impl OciLayout {
    pub fn new(platform: Platform) -> OciLayout {
        OciLayout { platform }
    }
}

/// `index.json`, an image index or an image manifest: only what is read
/// of them.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct IndexDocument {
    media_type: Option<String>,
    manifests: Option<Vec<Descriptor>>,
    config: Option<Descriptor>,
}

#[derive(Deserialize, Clone)]
#[serde(rename_all = "camelCase")]
struct Descriptor {
    media_type: Option<String>,
    digest: Option<String>,
    platform: Option<DescriptorPlatform>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

#[derive(Deserialize, Clone)]
struct DescriptorPlatform {
    os: Option<String>,
    architecture: Option<String>,
    variant: Option<String>,
}

impl DescriptorPlatform {
    fn to_platform(&self) -> Option<Platform> {
        Some(Platform {
            os: self.os.clone()?,
            architecture: self.architecture.clone()?,
            variant: self.variant.clone(),
        })
    }
}

const REF_NAME: &str = "org.opencontainers.image.ref.name";

fn layout_error(message: String) -> SourceError {
    SourceError::Layout(message)
}

fn read(path: &Path) -> Result<Vec<u8>, SourceError> {
    criguard_files::read_limited(path, MAX_MANIFEST_SIZE as u64)
        .map_err(|e| layout_error(format!("reading {}: {e}", path.display())))
}

impl OciLayout {
    /// The manifest `index.json` names for `name` (or its only image),
    /// checked against the blob's bytes.
    fn locate(&self, dir: &Path, name: Option<&str>) -> Result<Located, SourceError> {
        let index: IndexDocument = serde_json::from_slice(&read(&dir.join("index.json"))?)
            .map_err(|e| layout_error(format!("parsing the OCI layout's index.json: {e}")))?;
        let manifests = index
            .manifests
            .ok_or_else(|| layout_error("index.json has no manifests".to_owned()))?;
        let chosen: Vec<&Descriptor> = manifests
            .iter()
            .filter(|m| {
                name.is_none_or(|name| m.annotations.get(REF_NAME).is_some_and(|n| n == name))
            })
            .collect();
        let mut descriptor = match chosen.as_slice() {
            [one] => (*one).clone(),
            [] => {
                return Err(layout_error(format!(
                    "no image {:?} in the OCI layout",
                    name.unwrap_or("")
                )));
            }
            _ => {
                return Err(layout_error(
                    "more than one image in the OCI layout; name one".to_owned(),
                ));
            }
        };
        // One level of index, as containers/image follows.
        for level in 0..2 {
            let digest = Digest::parse(descriptor.digest.as_deref().unwrap_or_default())
                .map_err(|e| layout_error(format!("OCI layout descriptor: {e}")))?;
            let blob = read(
                &dir.join("blobs")
                    .join(digest.algorithm())
                    .join(digest.encoded()),
            )?;
            criguard_registry::digest::verify("manifest", &digest, &blob)?;
            let parsed: IndexDocument = serde_json::from_slice(&blob)
                .map_err(|e| layout_error(format!("parsing a manifest in the OCI layout: {e}")))?;
            let is_index = descriptor.media_type.as_deref() == Some(OCI_INDEX)
                || parsed.media_type.as_deref() == Some(OCI_INDEX);
            if !is_index {
                let config = parsed
                    .config
                    .and_then(|c| Digest::parse(c.digest.as_deref()?).ok());
                return Ok(Located {
                    config_digest: config,
                    ..Located::digest(digest)
                });
            }
            if level == 1 {
                break;
            }
            let instances = parsed
                .manifests
                .ok_or_else(|| layout_error(format!("image index {digest} has no manifests")))?;
            let platforms: Vec<Option<Platform>> = instances
                .iter()
                .map(|m| {
                    m.platform
                        .as_ref()
                        .and_then(DescriptorPlatform::to_platform)
                })
                .collect();
            let position = self
                .platform
                .choose_instance(platforms.iter().map(Option::as_ref))
                .ok_or_else(|| {
                    layout_error(format!(
                        "image index {digest} has no instance for {}",
                        self.platform
                    ))
                })?;
            descriptor = instances[position].clone();
        }
        Err(layout_error(
            "nested image indexes are not supported".to_owned(),
        ))
    }
}

impl ImageSource for OciLayout {
    type Image = ();

    async fn resolve(&self, image: &ImageReference) -> Result<Resolved<()>, SourceError> {
        let ImageReference::Oci {
            resolved_dir,
            image: name,
            ..
        } = image
        else {
            return Err(SourceError::Unsupported(format!(
                "{image} is not an OCI layout"
            )));
        };
        let name = Some(name.as_str()).filter(|n| !n.is_empty());
        Ok(Resolved {
            located: self.locate(Path::new(resolved_dir), name)?,
            image: (),
        })
    }

    async fn signatures(&self, _: &()) -> Result<Arc<ImageSignatures>, SourceError> {
        // Nothing was kept from being looked for (registries.d does not
        // apply to layouts), so no hint about attachments either.
        Ok(Arc::new(ImageSignatures {
            signatures: Vec::new(),
            lookaside_url: None,
            lookaside_count: 0,
            sigstore_attachments: true,
        }))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use criguard_registry::OCI_MANIFEST;
    use criguard_registry::digest::sha256;
    use serde_json::json;

    use super::*;

    /// Writes `bytes` as a blob of the layout and returns its digest.
    fn blob(dir: &Path, bytes: &[u8]) -> Digest {
        let digest = sha256(bytes);
        let path = dir.join("blobs").join(digest.algorithm());
        std::fs::create_dir_all(&path).unwrap();
        std::fs::write(path.join(digest.encoded()), bytes).unwrap();
        digest
    }

    fn index(dir: &Path, manifests: serde_json::Value) {
        std::fs::write(
            dir.join("index.json"),
            json!({"schemaVersion": 2, "manifests": manifests}).to_string(),
        )
        .unwrap();
    }

    fn layout(dir: &Path, name: &str) -> ImageReference {
        ImageReference::Oci {
            dir: dir.display().to_string(),
            image: name.to_owned(),
            resolved_dir: dir.display().to_string(),
        }
    }

    async fn resolve(dir: &Path, name: &str, platform: &str) -> Result<Digest, String> {
        OciLayout::new(platform.parse().unwrap())
            .resolve(&layout(dir, name))
            .await
            .map(|r| r.located.manifest_digest)
            .map_err(|e| e.to_string())
    }

    #[tokio::test]
    async fn names_platforms_and_digests() {
        let dir = tempfile::tempdir().unwrap();
        let dir = dir.path();
        let amd = blob(dir, br#"{"schemaVersion":2,"layers":[],"n":1}"#);
        let arm = blob(dir, br#"{"schemaVersion":2,"layers":[],"n":2}"#);
        let list = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": amd.as_str(), "size": 1,
             "platform": {"os": "linux", "architecture": "amd64"}},
            {"mediaType": OCI_MANIFEST, "digest": arm.as_str(), "size": 1,
             "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
        ]});
        let list = blob(dir, list.to_string().as_bytes());
        index(
            dir,
            json!([
                {"mediaType": OCI_INDEX, "digest": list.as_str(), "size": 1,
                 "annotations": {REF_NAME: "multi"}},
                {"mediaType": OCI_MANIFEST, "digest": amd.as_str(), "size": 1,
                 "annotations": {REF_NAME: "single"}},
            ]),
        );
        assert_eq!(resolve(dir, "multi", "linux/amd64").await, Ok(amd.clone()));
        assert_eq!(resolve(dir, "multi", "linux/arm64").await, Ok(arm));
        assert_eq!(resolve(dir, "single", "linux/arm64").await, Ok(amd));
        assert_eq!(
            resolve(dir, "multi", "linux/s390x").await,
            Err(format!(
                "image index {list} has no instance for linux/s390x"
            ))
        );
        assert_eq!(
            resolve(dir, "", "linux/amd64").await,
            Err("more than one image in the OCI layout; name one".to_owned())
        );
        assert_eq!(
            resolve(dir, "absent", "linux/amd64").await,
            Err("no image \"absent\" in the OCI layout".to_owned())
        );
    }

    #[tokio::test]
    async fn a_blob_that_does_not_match_its_digest_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let dir = dir.path();
        let digest = blob(dir, b"{}");
        std::fs::write(
            dir.join("blobs/sha256").join(digest.encoded()),
            br#"{"tampered":true}"#,
        )
        .unwrap();
        index(
            dir,
            json!([{"mediaType": OCI_MANIFEST, "digest": digest.as_str()}]),
        );
        let error = resolve(dir, "", "linux/amd64").await.unwrap_err();
        assert!(error.contains("digest mismatch"), "{error}");
        std::fs::write(dir.join("index.json"), b"[]").unwrap();
        let error = resolve(dir, "", "linux/amd64").await.unwrap_err();
        assert!(
            error.starts_with("parsing the OCI layout's index.json: "),
            "{error}"
        );
        let error = resolve(&dir.join("missing"), "", "linux/amd64")
            .await
            .unwrap_err();
        assert!(error.starts_with("reading "), "{error}");
    }
}
