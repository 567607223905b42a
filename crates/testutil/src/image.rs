//! Small but valid OCI images, built in memory and pushed to the test
//! registry. Each image carries a file whose content the test chooses, so two
//! images differ in every digest, and the digests returned are checked
//! against what the registry serves.

use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

use crate::peer::{PeerTools, hermetic};
use crate::process::run_ok;
use crate::registry::Registry;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// `sha256:<hex>` of `data`.
pub fn sha256_digest(data: &[u8]) -> String {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data);
    let mut s = String::with_capacity(71);
    s.push_str("sha256:");
    for b in d.as_ref() {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// A content-addressed blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    pub media_type: String,
    pub digest: String,
    pub data: Vec<u8>,
}

impl Blob {
    pub fn new(media_type: &str, data: Vec<u8>) -> Blob {
        Blob {
            media_type: media_type.to_string(),
            digest: sha256_digest(&data),
            data,
        }
    }

    /// The OCI descriptor (`mediaType`, `digest`, `size`).
    pub fn descriptor(&self) -> Value {
        json!({"mediaType": self.media_type, "digest": self.digest, "size": self.data.len()})
    }
}

/// One platform's image: manifest bytes exactly as pushed, and its blobs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OciImage {
    pub manifest: Blob,
    pub config: Blob,
    pub layers: Vec<Blob>,
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl OciImage {
    /// The manifest digest: what signatures sign and what a pull by digest
    /// names.
    pub fn digest(&self) -> &str {
        &self.manifest.digest
    }

    fn platform(&self) -> Value {
        let mut p = json!({"architecture": self.architecture, "os": self.os});
        if let Some(v) = &self.variant {
            p["variant"] = json!(v);
        }
        p
    }
}

/// An image index over several platform images.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OciIndex {
    pub index: Blob,
    pub images: Vec<OciImage>,
}

impl OciIndex {
    /// Builds the index (compact JSON) over `images`, each with its platform.
    pub fn new(images: Vec<OciImage>) -> OciIndex {
        let manifests: Vec<Value> = images
            .iter()
            .map(|i| {
                let mut d = i.manifest.descriptor();
                d["platform"] = i.platform();
                d
            })
            .collect();
        let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests});
        OciIndex {
            index: Blob::new(OCI_INDEX, to_json(&index)),
            images,
        }
    }

    pub fn digest(&self) -> &str {
        &self.index.digest
    }

    /// The image for `os`/`architecture`.
    pub fn image(&self, os: &str, architecture: &str) -> Option<&OciImage> {
        self.images
            .iter()
            .find(|i| i.os == os && i.architecture == architecture)
    }
}

/// Builds a one-layer image. Defaults: linux/amd64, gzip'd layer, no files
/// (add at least one with [`ImageBuilder::file`] so images differ).
#[derive(Debug, Clone)]
pub struct ImageBuilder {
    /// `(path, contents, mode)`
    files: Vec<(String, Vec<u8>, u32)>,
    entrypoint: Option<Vec<String>>,
    cmd: Option<Vec<String>>,
    os: String,
    architecture: String,
    variant: Option<String>,
    gzip: bool,
    annotations: Vec<(String, String)>,
}

impl Default for ImageBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl ImageBuilder {
    pub fn new() -> ImageBuilder {
        ImageBuilder {
            files: Vec::new(),
            entrypoint: None,
            cmd: None,
            os: "linux".to_string(),
            architecture: "amd64".to_string(),
            variant: None,
            gzip: true,
            annotations: Vec::new(),
        }
    }

    /// Adds a regular file (mode 0644, mtime 0) to the layer; `path` is
    /// relative, e.g. `etc/motd`.
    pub fn file(mut self, path: &str, contents: impl Into<Vec<u8>>) -> Self {
        self.files.push((path.to_string(), contents.into(), 0o644));
        self
    }

    /// Adds an executable file (mode 0755), for images a runtime really
    /// runs (see [`crate::program`]).
    pub fn executable(mut self, path: &str, contents: impl Into<Vec<u8>>) -> Self {
        self.files.push((path.to_string(), contents.into(), 0o755));
        self
    }

    /// The config's `Entrypoint`: what a runtime runs when the container
    /// names no command. Unset, the config has none (and the digests of
    /// images built without it stay what they were).
    pub fn entrypoint(mut self, args: &[&str]) -> Self {
        self.entrypoint = Some(args.iter().map(|a| (*a).to_string()).collect());
        self
    }

    /// The config's `Cmd`: the entrypoint's arguments unless the container
    /// names its own.
    pub fn cmd(mut self, args: &[&str]) -> Self {
        self.cmd = Some(args.iter().map(|a| (*a).to_string()).collect());
        self
    }

    pub fn platform(mut self, os: &str, architecture: &str) -> Self {
        self.os = os.to_string();
        self.architecture = architecture.to_string();
        self
    }

    pub fn variant(mut self, variant: &str) -> Self {
        self.variant = Some(variant.to_string());
        self
    }

    /// `false` stores the layer as a plain tar (`...layer.v1.tar`).
    pub fn gzip(mut self, gzip: bool) -> Self {
        self.gzip = gzip;
        self
    }

    /// A manifest annotation.
    pub fn annotation(mut self, key: &str, value: &str) -> Self {
        self.annotations.push((key.to_string(), value.to_string()));
        self
    }

    pub fn build(&self) -> OciImage {
        let tar = self.layer_tar();
        let diff_id = sha256_digest(&tar);
        let layer = if self.gzip {
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            enc.write_all(&tar).expect("gzip into memory");
            Blob::new(
                OCI_LAYER_GZIP,
                enc.finish().expect("finishing gzip in memory"),
            )
        } else {
            Blob::new(OCI_LAYER_TAR, tar)
        };
        let mut config = json!({
            "created": "1970-01-01T00:00:00Z",
            "architecture": self.architecture,
            "os": self.os,
            "config": {},
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        });
        if let Some(entrypoint) = &self.entrypoint {
            config["config"]["Entrypoint"] = json!(entrypoint);
        }
        if let Some(cmd) = &self.cmd {
            config["config"]["Cmd"] = json!(cmd);
        }
        if let Some(v) = &self.variant {
            config["variant"] = json!(v);
        }
        let config = Blob::new(OCI_CONFIG, to_json(&config));
        let mut manifest = json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": config.descriptor(),
            "layers": [layer.descriptor()],
        });
        if !self.annotations.is_empty() {
            let a: serde_json::Map<String, Value> = self
                .annotations
                .iter()
                .map(|(k, v)| (k.clone(), json!(v)))
                .collect();
            manifest["annotations"] = Value::Object(a);
        }
        OciImage {
            manifest: Blob::new(OCI_MANIFEST, to_json(&manifest)),
            config,
            layers: vec![layer],
            os: self.os.clone(),
            architecture: self.architecture.clone(),
            variant: self.variant.clone(),
        }
    }

    fn layer_tar(&self) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (path, contents, mode) in &self.files {
            let mut header = tar::Header::new_ustar();
            header.set_size(contents.len() as u64);
            header.set_mode(*mode);
            header.set_mtime(0);
            header.set_uid(0);
            header.set_gid(0);
            header.set_entry_type(tar::EntryType::Regular);
            builder
                .append_data(&mut header, path, contents.as_slice())
                .unwrap_or_else(|e| panic!("adding {path} to the layer: {e}"));
        }
        builder.into_inner().expect("finishing the layer tar")
    }
}

/// A linux/amd64 image whose one file `etc/criguard-test` holds `content`.
pub fn test_image(content: &str) -> OciImage {
    ImageBuilder::new()
        .file("etc/criguard-test", content)
        .build()
}

/// An index over linux/amd64 and linux/arm64 images, each with a file
/// naming `content` and its platform (so the two manifests differ).
pub fn test_multiarch(content: &str) -> OciIndex {
    let images = [("linux", "amd64"), ("linux", "arm64")]
        .iter()
        .map(|(os, arch)| {
            ImageBuilder::new()
                .platform(os, arch)
                .file("etc/criguard-test", format!("{content} on {os}/{arch}"))
                .build()
        })
        .collect();
    OciIndex::new(images)
}

/// Writes an OCI image layout (`oci-layout`, `index.json`, `blobs/`) whose
/// `index.json` names `top` as `tag`.
fn write_layout(dir: &Path, tag: &str, top: &Blob, blobs: &[&Blob]) {
    let blob_dir = dir.join("blobs/sha256");
    fs::create_dir_all(&blob_dir).expect("creating the layout's blobs dir");
    for blob in blobs.iter().chain([&top]) {
        let hex = blob.digest.strip_prefix("sha256:").expect("sha256 digest");
        fs::write(blob_dir.join(hex), &blob.data).expect("writing a layout blob");
    }
    fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)
        .expect("writing oci-layout");
    let mut desc = top.descriptor();
    desc["annotations"] = json!({"org.opencontainers.image.ref.name": tag});
    let index = json!({"schemaVersion": 2, "manifests": [desc]});
    fs::write(dir.join("index.json"), to_json(&index)).expect("writing index.json");
}

/// Writes `image` as an OCI layout in `dir`, tagged `tag`.
pub fn write_oci_layout(dir: &Path, tag: &str, image: &OciImage) {
    let mut blobs: Vec<&Blob> = vec![&image.config];
    blobs.extend(image.layers.iter());
    write_layout(dir, tag, &image.manifest, &blobs);
}

/// Writes `index` and all its images as an OCI layout in `dir`.
pub fn write_oci_layout_index(dir: &Path, tag: &str, index: &OciIndex) {
    let mut blobs: Vec<&Blob> = Vec::new();
    for image in &index.images {
        blobs.push(&image.manifest);
        blobs.push(&image.config);
        blobs.extend(image.layers.iter());
    }
    write_layout(dir, tag, &index.index, &blobs);
}

/// An image (or index) in the test registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pushed {
    /// "127.0.0.1:PORT"
    pub host: String,
    pub repo: String,
    pub tag: String,
    /// The manifest (or index) digest the registry serves.
    pub digest: String,
}

impl Pushed {
    /// `HOST/REPO@sha256:...`: the reference signatures are made for.
    pub fn by_digest(&self) -> String {
        format!("{}/{}@{}", self.host, self.repo, self.digest)
    }

    /// `HOST/REPO:TAG`
    pub fn by_tag(&self) -> String {
        format!("{}/{}:{}", self.host, self.repo, self.tag)
    }

    /// `HOST/REPO`
    pub fn name(&self) -> String {
        format!("{}/{}", self.host, self.repo)
    }
}

/// A pushed index and each platform's manifest digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushedIndex {
    pub index: Pushed,
    /// `(os, architecture, manifest digest)` in index order.
    pub platforms: Vec<(String, String, String)>,
}

impl PushedIndex {
    /// The manifest digest for `os`/`architecture`; panics if absent.
    pub fn platform_digest(&self, os: &str, architecture: &str) -> &str {
        self.platforms
            .iter()
            .find(|(o, a, _)| o == os && a == architecture)
            .map(|(_, _, d)| d.as_str())
            .unwrap_or_else(|| panic!("no {os}/{architecture} in the pushed index"))
    }
}

/// A policy that accepts everything, for pushes that are not under test.
pub const INSECURE_POLICY: &str = r#"{"default":[{"type":"insecureAcceptAnything"}]}"#;

/// Pushes `image` as `REPO:TAG` with skopeo 1.18 (`--preserve-digests`, so
/// skopeo refuses rather than rewrites the manifest), then checks the
/// registry serves exactly the manifest built.
pub fn push_image(registry: &Registry, repo: &str, tag: &str, image: &OciImage) -> Pushed {
    let layout = tempfile::tempdir().expect("temp dir for the OCI layout");
    write_oci_layout(layout.path(), tag, image);
    skopeo_push(registry, layout.path(), repo, tag, false);
    check_served(registry, repo, tag, &image.manifest)
}

/// Pushes an index and every platform image with `skopeo copy --all`, then
/// checks every manifest the registry serves against what was built.
pub fn push_index(registry: &Registry, repo: &str, tag: &str, index: &OciIndex) -> PushedIndex {
    let layout = tempfile::tempdir().expect("temp dir for the OCI layout");
    write_oci_layout_index(layout.path(), tag, index);
    skopeo_push(registry, layout.path(), repo, tag, true);
    pushed_index(registry, repo, tag, index)
}

/// [`push_image`] of [`test_image`]`(content)`.
pub fn push_test_image(registry: &Registry, repo: &str, tag: &str, content: &str) -> Pushed {
    push_image(registry, repo, tag, &test_image(content))
}

/// [`push_index`] of [`test_multiarch`]`(content)`.
pub fn push_test_multiarch(
    registry: &Registry,
    repo: &str,
    tag: &str,
    content: &str,
) -> PushedIndex {
    push_index(registry, repo, tag, &test_multiarch(content))
}

/// Uploads `image` with plain registry API calls (no skopeo), for
/// manifests skopeo would not copy unchanged. `reference` is a tag or the
/// manifest's digest.
pub fn upload_image(registry: &Registry, repo: &str, reference: &str, image: &OciImage) -> Pushed {
    upload_blob(registry, repo, &image.config);
    for layer in &image.layers {
        upload_blob(registry, repo, layer);
    }
    upload_manifest(registry, repo, reference, &image.manifest);
    check_served(registry, repo, reference, &image.manifest)
}

/// Uploads an index and its images over the registry API (platform
/// manifests by digest, the index as `tag`).
pub fn upload_index(registry: &Registry, repo: &str, tag: &str, index: &OciIndex) -> PushedIndex {
    for image in &index.images {
        upload_image(registry, repo, image.digest(), image);
    }
    upload_manifest(registry, repo, tag, &index.index);
    pushed_index(registry, repo, tag, index)
}

/// Uploads one blob (monolithic: POST then PUT with the digest).
pub fn upload_blob(registry: &Registry, repo: &str, blob: &Blob) {
    let start = registry.request("POST", &format!("/v2/{repo}/blobs/uploads/"), &[], &[]);
    assert_eq!(
        start.status,
        202,
        "starting a blob upload to {repo}: {}",
        String::from_utf8_lossy(&start.body)
    );
    let location = start
        .header("location")
        .expect("blob upload answer without Location");
    // The Location may be absolute; the request target is its path.
    let path = match location.find("/v2/") {
        Some(i) => &location[i..],
        None => panic!("unexpected upload Location {location:?}"),
    };
    let sep = if path.contains('?') { '&' } else { '?' };
    let target = format!("{path}{sep}digest={}", blob.digest);
    let done = registry.request(
        "PUT",
        &target,
        &[("Content-Type", "application/octet-stream")],
        &blob.data,
    );
    assert_eq!(
        done.status,
        201,
        "finishing the upload of {} to {repo}: {}",
        blob.digest,
        String::from_utf8_lossy(&done.body)
    );
}

/// PUTs a manifest (its bytes unchanged) as `reference`.
pub fn upload_manifest(registry: &Registry, repo: &str, reference: &str, manifest: &Blob) {
    let resp = registry.request(
        "PUT",
        &format!("/v2/{repo}/manifests/{reference}"),
        &[("Content-Type", &manifest.media_type)],
        &manifest.data,
    );
    assert_eq!(
        resp.status,
        201,
        "PUT manifest {repo}:{reference}: {}",
        String::from_utf8_lossy(&resp.body)
    );
    assert_eq!(
        resp.header("docker-content-digest"),
        Some(manifest.digest.as_str()),
        "the registry stored {repo}:{reference} under another digest"
    );
}

fn skopeo_push(registry: &Registry, layout: &Path, repo: &str, tag: &str, all: bool) {
    let scratch = tempfile::tempdir().expect("temp dir for skopeo");
    let policy = scratch.path().join("policy.json");
    fs::write(&policy, INSECURE_POLICY).expect("writing the push policy");
    let registries_d = scratch.path().join("registries.d");
    fs::create_dir(&registries_d).expect("creating an empty registries.d");
    let mut cmd = Command::new(PeerTools::get().skopeo());
    hermetic(&mut cmd, scratch.path());
    cmd.arg("--policy")
        .arg(&policy)
        .arg("--registries.d")
        .arg(&registries_d)
        .args([
            "copy",
            "--quiet",
            "--preserve-digests",
            "--dest-tls-verify=false",
        ]);
    if all {
        cmd.arg("--all");
    }
    if let Some((user, pass)) = registry.credentials() {
        cmd.arg("--dest-creds").arg(format!("{user}:{pass}"));
    }
    cmd.arg(format!("oci:{}:{tag}", layout.display()))
        .arg(format!("docker://{}/{repo}:{tag}", registry.host()));
    run_ok(&mut cmd);
}

/// Checks the registry serves `expected` byte for byte under `reference`,
/// with the matching `Docker-Content-Digest`.
fn check_served(registry: &Registry, repo: &str, reference: &str, expected: &Blob) -> Pushed {
    let resp = registry.get_manifest(repo, reference);
    assert_eq!(
        resp.status,
        200,
        "GET manifest {repo}:{reference}: {}",
        String::from_utf8_lossy(&resp.body)
    );
    let served = sha256_digest(&resp.body);
    assert_eq!(
        served, expected.digest,
        "the registry serves other manifest bytes for {repo}:{reference} than were pushed"
    );
    assert_eq!(
        resp.header("docker-content-digest"),
        Some(expected.digest.as_str()),
        "Docker-Content-Digest of {repo}:{reference}"
    );
    Pushed {
        host: registry.host(),
        repo: repo.to_string(),
        tag: reference.to_string(),
        digest: served,
    }
}

fn pushed_index(registry: &Registry, repo: &str, tag: &str, index: &OciIndex) -> PushedIndex {
    let top = check_served(registry, repo, tag, &index.index);
    let platforms = index
        .images
        .iter()
        .map(|i| {
            let p = check_served(registry, repo, i.digest(), &i.manifest);
            (i.os.clone(), i.architecture.clone(), p.digest)
        })
        .collect();
    PushedIndex {
        index: top,
        platforms,
    }
}

fn to_json(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).expect("serialising JSON built in memory")
}
