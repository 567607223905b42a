//! Manifest MIME types and the few manifest fields this crate reads or
//! writes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::Platform;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const DOCKER_V2S2: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_V2S1: &str = "application/vnd.docker.distribution.manifest.v1+json";
pub const DOCKER_V2S1_SIGNED: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";

/// containers/image's `DefaultRequestedManifestMIMETypes`, in its order.
pub(crate) const ACCEPTED: &[&str] = &[
    OCI_MANIFEST,
    DOCKER_V2S2,
    DOCKER_V2S1_SIGNED,
    DOCKER_V2S1,
    DOCKER_LIST,
    OCI_INDEX,
];

/// What a fetched manifest is, as far as choosing what to pull goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Image,
    List,
    Schema1,
}

pub(crate) fn kind_of(media_type: &str) -> Option<Kind> {
    match media_type {
        OCI_MANIFEST | DOCKER_V2S2 => Some(Kind::Image),
        OCI_INDEX | DOCKER_LIST => Some(Kind::List),
        DOCKER_V2S1 | DOCKER_V2S1_SIGNED => Some(Kind::Schema1),
        _ => None,
    }
}

/// A Content-Type without parameters, lower case (containers/image's
/// `simplifyContentType`).
pub(crate) fn simplify_content_type(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Probe {
    #[serde(rename = "schemaVersion")]
    schema_version: Option<i64>,
    #[serde(rename = "mediaType")]
    media_type: Option<String>,
    signatures: Option<serde_json::Value>,
    manifests: Option<serde_json::Value>,
    config: Option<ProbeConfig>,
    layers: Option<serde_json::Value>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ProbeConfig {
    #[serde(rename = "mediaType")]
    media_type: Option<String>,
}

/// The MIME type of a manifest: the response's Content-Type when it is a
/// manifest type, otherwise guessed from the body like containers/image's
/// `GuessMIMEType` (registries behind generic web servers answer
/// `application/json`). A `mediaType` field that contradicts the result is
/// refused, so one body cannot be read as two different things.
pub(crate) fn media_type_of(content_type: &str, body: &[u8]) -> Result<String, String> {
    // Through `Value` because a derived struct would also accept an array.
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    if !value.is_object() {
        return Err("not a JSON object".to_owned());
    }
    let probe: Probe = serde_json::from_value(value).map_err(|e| e.to_string())?;
    let declared = simplify_content_type(content_type);
    let media_type = if kind_of(&declared).is_some() {
        declared
    } else if let Some(field) = probe.media_type.as_deref().filter(|m| !m.is_empty()) {
        field.to_owned()
    } else {
        match probe.schema_version {
            Some(1) if probe.signatures.is_some() => DOCKER_V2S1_SIGNED.to_owned(),
            Some(1) => DOCKER_V2S1.to_owned(),
            Some(2) if probe.manifests.is_some() => OCI_INDEX.to_owned(),
            Some(2)
                if probe.config.as_ref().and_then(|c| c.media_type.as_deref())
                    == Some("application/vnd.docker.container.image.v1+json") =>
            {
                DOCKER_V2S2.to_owned()
            }
            Some(2) if probe.config.is_some() || probe.layers.is_some() => OCI_MANIFEST.to_owned(),
            _ => declared,
        }
    };
    if let Some(field) = probe.media_type.as_deref().filter(|m| !m.is_empty())
        && field != media_type
    {
        return Err(format!(
            "mediaType {field:?} in the manifest contradicts its type {media_type:?}"
        ));
    }
    if kind_of(&media_type) == Some(Kind::Image) && probe.manifests.is_some() {
        return Err("an image manifest with a \"manifests\" field".to_owned());
    }
    if kind_of(&media_type) == Some(Kind::List)
        && (probe.config.is_some() || probe.layers.is_some())
    {
        return Err("a manifest list with \"config\" or \"layers\" fields".to_owned());
    }
    Ok(media_type)
}

/// Parses a manifest body, which must be a JSON object (a derived struct
/// would also accept an array).
pub(crate) fn from_json_object<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, String> {
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    if !value.is_object() {
        return Err("not a JSON object".to_owned());
    }
    serde_json::from_value(value).map_err(|e| e.to_string())
}

#[derive(Deserialize)]
pub(crate) struct Index {
    pub(crate) manifests: Vec<IndexEntry>,
}

#[derive(Deserialize)]
pub(crate) struct IndexEntry {
    #[serde(rename = "mediaType", default)]
    pub(crate) media_type: String,
    pub(crate) digest: String,
    #[serde(default)]
    pub(crate) platform: Option<IndexPlatform>,
}

#[derive(Deserialize)]
pub(crate) struct IndexPlatform {
    #[serde(default)]
    os: String,
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    variant: String,
}

impl IndexPlatform {
    pub(crate) fn to_platform(&self) -> Platform {
        Platform {
            os: self.os.clone(),
            architecture: self.architecture.clone(),
            variant: (!self.variant.is_empty()).then(|| self.variant.clone()),
        }
    }
}

/// An OCI image manifest as cosign writes it. Unknown fields of
/// descriptors are kept so that appending a layer to an existing `.sig`
/// manifest does not lose what another tool put there.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub(crate) struct ImageManifest {
    #[serde(rename = "schemaVersion")]
    pub(crate) schema_version: i64,
    #[serde(rename = "mediaType", skip_serializing_if = "Option::is_none", default)]
    pub(crate) media_type: Option<String>,
    pub(crate) config: Descriptor,
    #[serde(default)]
    pub(crate) layers: Vec<Descriptor>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub(crate) annotations: Option<BTreeMap<String, String>>,
}

/// Field order is go-containerregistry's, so what we push has the shape
/// (and, for the same content, the bytes) cosign pushes.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub(crate) struct Descriptor {
    #[serde(rename = "mediaType")]
    pub(crate) media_type: String,
    pub(crate) size: i64,
    pub(crate) digest: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub(crate) annotations: Option<BTreeMap<String, String>>,
    #[serde(flatten)]
    pub(crate) other: serde_json::Map<String, serde_json::Value>,
}

/// The config blob cosign 2.x writes for a `.sig` image: go-containerregistry's
/// empty image with one history entry and one diff ID per layer.
pub(crate) fn cosign_config(layer_digests: &[String]) -> Vec<u8> {
    #[derive(Serialize)]
    struct History {
        created: &'static str,
    }
    #[derive(Serialize)]
    struct RootFs<'a> {
        #[serde(rename = "type")]
        kind: &'static str,
        diff_ids: &'a [String],
    }
    #[derive(Serialize)]
    struct Empty {}
    #[derive(Serialize)]
    struct Config<'a> {
        architecture: &'static str,
        created: &'static str,
        history: Vec<History>,
        os: &'static str,
        rootfs: RootFs<'a>,
        config: Empty,
    }
    const ZERO_TIME: &str = "0001-01-01T00:00:00Z";
    let config = Config {
        architecture: "",
        created: ZERO_TIME,
        history: layer_digests
            .iter()
            .map(|_| History { created: ZERO_TIME })
            .collect(),
        os: "",
        rootfs: RootFs {
            kind: "layers",
            diff_ids: layer_digests,
        },
        config: Empty {},
    };
    // Serialising these plain structs cannot fail.
    serde_json::to_vec(&config).unwrap_or_default()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn content_type_wins_when_it_is_a_manifest_type() {
        let body = br#"{"schemaVersion":2,"config":{},"layers":[]}"#;
        assert_eq!(
            media_type_of(
                "application/vnd.oci.image.manifest.v1+json; charset=utf-8",
                body
            )
            .unwrap(),
            OCI_MANIFEST
        );
        assert_eq!(
            media_type_of("application/json", body).unwrap(),
            OCI_MANIFEST
        );
        assert_eq!(
            media_type_of("text/plain", br#"{"schemaVersion":2,"manifests":[]}"#).unwrap(),
            OCI_INDEX
        );
        assert_eq!(
            media_type_of(
                "",
                br#"{"schemaVersion":2,"config":{"mediaType":"application/vnd.docker.container.image.v1+json"},"layers":[]}"#
            )
            .unwrap(),
            DOCKER_V2S2
        );
        assert_eq!(
            media_type_of("", br#"{"schemaVersion":1,"signatures":[]}"#).unwrap(),
            DOCKER_V2S1_SIGNED
        );
    }

    #[test]
    fn ambiguous_manifests_are_refused() {
        let err = media_type_of(
            OCI_MANIFEST,
            br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#,
        )
        .unwrap_err();
        assert!(err.contains("contradicts"), "{err}");
        assert!(media_type_of(OCI_MANIFEST, br#"{"schemaVersion":2,"manifests":[]}"#).is_err());
        assert!(media_type_of(OCI_INDEX, br#"{"schemaVersion":2,"layers":[]}"#).is_err());
        assert!(media_type_of(OCI_MANIFEST, b"[1]").is_err());
    }

    #[test]
    fn cosign_config_shape() {
        let config = cosign_config(&["sha256:aa".into(), "sha256:bb".into()]);
        assert_eq!(
            std::str::from_utf8(&config).unwrap(),
            r#"{"architecture":"","created":"0001-01-01T00:00:00Z","history":[{"created":"0001-01-01T00:00:00Z"},{"created":"0001-01-01T00:00:00Z"}],"os":"","rootfs":{"type":"layers","diff_ids":["sha256:aa","sha256:bb"]},"config":{}}"#
        );
    }

    #[test]
    fn descriptors_keep_unknown_fields_in_order() {
        let text = r#"{"mediaType":"m","size":1,"digest":"sha256:aa","annotations":{"b":"2","a":"1"},"urls":["x"]}"#;
        let d: Descriptor = serde_json::from_str(text).unwrap();
        assert_eq!(
            serde_json::to_string(&d).unwrap(),
            r#"{"mediaType":"m","size":1,"digest":"sha256:aa","annotations":{"a":"1","b":"2"},"urls":["x"]}"#
        );
    }
}
