//! A small OCI distribution 1.1 registry in memory, with the referrers API
//! (`GET /v2/<name>/referrers/<digest>`) that Debian's docker-registry 2.8
//! lacks, so that cosign 3 and criguard can be tested on both discovery
//! paths. It serves plain HTTP on 127.0.0.1 without authentication and
//! implements what the peers use: blob uploads (monolithic and chunked),
//! blob and manifest GET/HEAD, manifest PUT by tag or digest (with the
//! `OCI-Subject` answer that tells a client not to write a fallback tag),
//! tag lists, and referrers filtered by `artifactType`. Digests are
//! checked on every upload.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use serde_json::{Value, json};

use crate::http_server::{HttpServer, Reply, lock, reply};
use crate::image::sha256_digest;

#[derive(Default)]
struct Repository {
    blobs: HashMap<String, Vec<u8>>,
    /// digest → (media type, body)
    manifests: HashMap<String, (String, Vec<u8>)>,
    tags: BTreeMap<String, String>,
}

#[derive(Default)]
struct State {
    repositories: HashMap<String, Repository>,
    uploads: HashMap<String, Vec<u8>>,
    next_upload: u64,
    referrers_requests: usize,
}

type Shared = Arc<Mutex<State>>;

/// The running registry; dropping it stops its thread.
pub struct ReferrersRegistry {
    server: HttpServer,
    state: Shared,
}

impl ReferrersRegistry {
    pub fn start() -> ReferrersRegistry {
        let state: Shared = Arc::default();
        let served = state.clone();
        let server = HttpServer::start("referrers-registry", move |request| {
            handle(served.clone(), request)
        });
        ReferrersRegistry { server, state }
    }

    /// "127.0.0.1:PORT".
    pub fn host(&self) -> String {
        self.server.addr().to_string()
    }

    /// How many referrers API requests it answered.
    pub fn referrers_requests(&self) -> usize {
        lock(&self.state).referrers_requests
    }

    /// The tags of `repository`.
    pub fn tags(&self, repository: &str) -> Vec<String> {
        lock(&self.state)
            .repositories
            .get(repository)
            .map(|r| r.tags.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Stores a manifest as a client's PUT would.
    pub fn put_manifest(&self, repository: &str, reference: &str, media_type: &str, body: &[u8]) {
        put_manifest(
            &mut lock(&self.state),
            repository,
            reference,
            media_type,
            body,
        );
    }

    /// Stores `image` (blobs, then the manifest under `tag`) in
    /// `repository`; returns `HOST/REPOSITORY@DIGEST`.
    pub fn push_image(&self, repository: &str, tag: &str, image: &crate::OciImage) -> String {
        self.put_blob(repository, &image.config.data);
        for layer in &image.layers {
            self.put_blob(repository, &layer.data);
        }
        self.put_manifest(
            repository,
            tag,
            &image.manifest.media_type,
            &image.manifest.data,
        );
        format!("{}/{repository}@{}", self.host(), image.digest())
    }

    /// Stores a blob as a client's upload would.
    pub fn put_blob(&self, repository: &str, data: &[u8]) -> String {
        let digest = sha256_digest(data);
        lock(&self.state)
            .repositories
            .entry(repository.to_owned())
            .or_default()
            .blobs
            .insert(digest.clone(), data.to_vec());
        digest
    }
}

fn error(status: StatusCode, code: &str) -> Reply {
    let body = json!({"errors": [{"code": code, "message": code.to_lowercase()}]});
    reply(
        status,
        &[("Content-Type", "application/json".to_owned())],
        body.to_string().into_bytes(),
    )
}

fn query(uri: &http::Uri, name: &str) -> Option<String> {
    uri.query()?.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        (key == name).then(|| {
            value
                .replace("%2B", "+")
                .replace("%2b", "+")
                .replace("%3A", ":")
        })
    })
}

async fn handle(state: Shared, request: Request<Incoming>) -> Reply {
    let (parts, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes().to_vec())
        .unwrap_or_default();
    let path = parts.uri.path().to_owned();
    let head = parts.method == Method::HEAD;
    let mut state = lock(&state);
    let mut answer = route(
        &mut state,
        &parts.method,
        &parts.uri,
        &path,
        &parts.headers,
        body,
    );
    if head {
        *answer.body_mut() = Full::new(Bytes::new());
    }
    answer
}

fn route(
    state: &mut State,
    method: &Method,
    uri: &http::Uri,
    path: &str,
    headers: &http::HeaderMap,
    body: Vec<u8>,
) -> Reply {
    if path == "/v2/" || path == "/v2" {
        return reply(StatusCode::OK, &[], b"{}".to_vec());
    }
    let Some(rest) = path.strip_prefix("/v2/") else {
        return error(StatusCode::NOT_FOUND, "NOT_FOUND");
    };
    if let Some(name) = rest.strip_suffix("/tags/list") {
        let tags: Vec<String> = state
            .repositories
            .get(name)
            .map(|r| r.tags.keys().cloned().collect())
            .unwrap_or_default();
        let body = json!({"name": name, "tags": tags}).to_string().into_bytes();
        return reply(
            StatusCode::OK,
            &[("Content-Type", "application/json".into())],
            body,
        );
    }
    if let Some((name, digest)) = rest.split_once("/referrers/") {
        state.referrers_requests += 1;
        return referrers(state, name, digest, query(uri, "artifactType"));
    }
    if let Some((name, upload)) = rest.split_once("/blobs/uploads/") {
        return upload_blob(state, method, uri, name, upload, body);
    }
    if let Some((name, digest)) = rest.split_once("/blobs/") {
        return match state
            .repositories
            .get(name)
            .and_then(|r| r.blobs.get(digest))
        {
            Some(blob) => reply(
                StatusCode::OK,
                &[
                    ("Docker-Content-Digest", digest.to_owned()),
                    ("Content-Type", "application/octet-stream".into()),
                ],
                blob.clone(),
            ),
            None => error(StatusCode::NOT_FOUND, "BLOB_UNKNOWN"),
        };
    }
    if let Some((name, reference)) = rest.split_once("/manifests/") {
        if *method == Method::PUT {
            let media_type = headers
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            let (digest, subject) = put_manifest(state, name, reference, &media_type, &body);
            let mut headers = vec![
                ("Docker-Content-Digest", digest.clone()),
                ("Location", format!("/v2/{name}/manifests/{digest}")),
            ];
            if let Some(subject) = subject {
                headers.push(("OCI-Subject", subject));
            }
            return reply(StatusCode::CREATED, &headers, Vec::new());
        }
        if *method == Method::DELETE {
            return error(StatusCode::METHOD_NOT_ALLOWED, "UNSUPPORTED");
        }
        let repository = state.repositories.get(name);
        let digest = if reference.starts_with("sha256:") {
            Some(reference.to_owned())
        } else {
            repository.and_then(|r| r.tags.get(reference).cloned())
        };
        return match digest.and_then(|d| repository?.manifests.get(&d).map(|m| (d, m))) {
            Some((digest, (media_type, body))) => reply(
                StatusCode::OK,
                &[
                    ("Content-Type", media_type.clone()),
                    ("Docker-Content-Digest", digest),
                ],
                body.clone(),
            ),
            None => error(StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN"),
        };
    }
    error(StatusCode::NOT_FOUND, "NOT_FOUND")
}

fn upload_blob(
    state: &mut State,
    method: &Method,
    uri: &http::Uri,
    name: &str,
    upload: &str,
    body: Vec<u8>,
) -> Reply {
    let finish = |state: &mut State, data: Vec<u8>, expected: &str| {
        let digest = sha256_digest(&data);
        if digest != expected {
            return error(StatusCode::BAD_REQUEST, "DIGEST_INVALID");
        }
        state
            .repositories
            .entry(name.to_owned())
            .or_default()
            .blobs
            .insert(digest.clone(), data);
        reply(
            StatusCode::CREATED,
            &[
                ("Docker-Content-Digest", digest.clone()),
                ("Location", format!("/v2/{name}/blobs/{digest}")),
            ],
            Vec::new(),
        )
    };
    match (method, upload) {
        (&Method::POST, "") => {
            if let Some(digest) = query(uri, "digest") {
                return finish(state, body, &digest);
            }
            state.next_upload += 1;
            let id = format!("u{}", state.next_upload);
            state.uploads.insert(id.clone(), Vec::new());
            reply(
                StatusCode::ACCEPTED,
                &[
                    ("Location", format!("/v2/{name}/blobs/uploads/{id}")),
                    ("Range", "0-0".into()),
                    ("Docker-Upload-UUID", id),
                ],
                Vec::new(),
            )
        }
        (&Method::PATCH, id) => match state.uploads.get_mut(id) {
            Some(data) => {
                data.extend_from_slice(&body);
                let end = data.len().saturating_sub(1);
                reply(
                    StatusCode::ACCEPTED,
                    &[
                        ("Location", format!("/v2/{name}/blobs/uploads/{id}")),
                        ("Range", format!("0-{end}")),
                    ],
                    Vec::new(),
                )
            }
            None => error(StatusCode::NOT_FOUND, "BLOB_UPLOAD_UNKNOWN"),
        },
        (&Method::PUT, id) => {
            let Some(mut data) = state.uploads.remove(id) else {
                return error(StatusCode::NOT_FOUND, "BLOB_UPLOAD_UNKNOWN");
            };
            data.extend_from_slice(&body);
            let digest = query(uri, "digest").unwrap_or_default();
            finish(state, data, &digest)
        }
        _ => error(StatusCode::METHOD_NOT_ALLOWED, "UNSUPPORTED"),
    }
}

/// Stores a manifest; returns its digest and its subject's, if any.
fn put_manifest(
    state: &mut State,
    name: &str,
    reference: &str,
    media_type: &str,
    body: &[u8],
) -> (String, Option<String>) {
    let digest = sha256_digest(body);
    let repository = state.repositories.entry(name.to_owned()).or_default();
    repository
        .manifests
        .insert(digest.clone(), (media_type.to_owned(), body.to_vec()));
    if !reference.starts_with("sha256:") {
        repository.tags.insert(reference.to_owned(), digest.clone());
    }
    let subject = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|m| m["subject"]["digest"].as_str().map(str::to_owned));
    (digest, subject)
}

fn referrers(state: &State, name: &str, subject: &str, artifact_type: Option<String>) -> Reply {
    let mut manifests = Vec::new();
    if let Some(repository) = state.repositories.get(name) {
        let mut found: Vec<(&String, &(String, Vec<u8>))> = repository.manifests.iter().collect();
        found.sort_by(|a, b| a.0.cmp(b.0));
        for (digest, (media_type, body)) in found {
            let Ok(manifest) = serde_json::from_slice::<Value>(body) else {
                continue;
            };
            if manifest["subject"]["digest"].as_str() != Some(subject) {
                continue;
            }
            let kind = manifest["artifactType"]
                .as_str()
                .or(manifest["config"]["mediaType"].as_str())
                .unwrap_or_default()
                .to_owned();
            if artifact_type.as_ref().is_some_and(|wanted| *wanted != kind) {
                continue;
            }
            let mut descriptor = json!({
                "mediaType": media_type,
                "digest": digest,
                "size": body.len(),
                "artifactType": kind,
            });
            if let Some(annotations) = manifest.get("annotations") {
                descriptor["annotations"] = annotations.clone();
            }
            manifests.push(descriptor);
        }
    }
    let index = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": manifests,
    });
    let mut headers = vec![(
        "Content-Type",
        "application/vnd.oci.image.index.v1+json".to_owned(),
    )];
    if artifact_type.is_some() {
        headers.push(("OCI-Filters-Applied", "artifactType".to_owned()));
    }
    reply(StatusCode::OK, &headers, index.to_string().into_bytes())
}
