//! cosign 3's signatures: sigstore bundles attached to an image as OCI
//! 1.1 referrers. They are listed by the referrers API
//! (`GET /v2/<name>/referrers/<digest>`) or, on a registry without it, by
//! the fallback tag `sha256-<hex>` (an OCI index, no `.sig` suffix).
//!
//! A referrer is classified by its own manifest, fetched by digest and
//! checked against it, never by its entry in the list: registries write
//! what they like there (GHCR's fallback entries and Debian's registry
//! 2.8 say `application/vnd.oci.empty.v1+json`). The list is bounded
//! ([`MAX_SIGSTORE_ATTACHMENTS`] entries, before any is fetched) and so
//! are the bytes read ([`crate::MAX_SIGNATURE_BYTES_PER_IMAGE`], shared
//! with the image's other signatures).

use std::collections::BTreeMap;

use criguard_policy::SigstoreSignature;
use criguard_policy::payload::SIGSTORE_BUNDLE_MIME_TYPE;
use criguard_reference::Digest;
use oci_client::RegistryOperation;
use serde::Deserialize;

use crate::digest;
use crate::manifest::{self, OCI_INDEX, OCI_MANIFEST};
use crate::registry::{Registry, ResolvedImage};
use crate::signatures::SignatureBudget;
use crate::transport::{FetchedManifest, Session};
use crate::{Error, MAX_MANIFEST_SIZE, MAX_SIGNATURE_SIZE, MAX_SIGSTORE_ATTACHMENTS};

/// The fallback tag of the referrers of `digest`: `sha256-<hex>`.
pub fn referrers_tag(digest: &Digest) -> String {
    format!("{}-{}", digest.algorithm(), digest.encoded())
}

#[derive(Deserialize)]
struct ReferrersIndex {
    #[serde(default)]
    manifests: Vec<Entry>,
}

#[derive(Deserialize)]
struct Entry {
    #[serde(rename = "mediaType", default)]
    media_type: String,
    digest: String,
    #[serde(default)]
    size: i64,
}

/// The parts of a referring manifest that say what it is.
#[derive(Deserialize)]
struct Referrer {
    #[serde(rename = "artifactType")]
    artifact_type: Option<String>,
    config: Option<Config>,
    #[serde(default)]
    layers: Vec<Layer>,
    subject: Option<Subject>,
}

#[derive(Deserialize)]
struct Config {
    #[serde(rename = "mediaType", default)]
    media_type: String,
}

#[derive(Deserialize)]
struct Layer {
    #[serde(rename = "mediaType", default)]
    media_type: String,
    digest: String,
    #[serde(default)]
    size: i64,
}

#[derive(Deserialize)]
struct Subject {
    digest: String,
}

impl Referrer {
    /// A bundle artifact as cosign 3 writes it: the artifact type (or, for
    /// writers that predate `artifactType`, the config's media type) is the
    /// bundle's.
    fn is_bundle(&self) -> bool {
        match &self.artifact_type {
            Some(artifact_type) => artifact_type == SIGSTORE_BUNDLE_MIME_TYPE,
            None => self
                .config
                .as_ref()
                .is_some_and(|c| c.media_type == SIGSTORE_BUNDLE_MIME_TYPE),
        }
    }
}

impl Registry {
    /// The sigstore bundles that refer to `image`'s manifest, each as a
    /// [`SigstoreSignature`] whose payload is the bundle's JSON and whose
    /// MIME type is the bundle media type. No referrers means none.
    pub async fn sigstore_bundles(
        &self,
        image: &ResolvedImage,
    ) -> Result<Vec<SigstoreSignature>, Error> {
        let mut budget = SignatureBudget::new(image.pinned().to_string());
        self.sigstore_bundles_within(image, &mut budget).await
    }

    pub(crate) async fn sigstore_bundles_within(
        &self,
        image: &ResolvedImage,
        budget: &mut SignatureBudget,
    ) -> Result<Vec<SigstoreSignature>, Error> {
        self.within_deadline(
            format!("reading sigstore bundles of {}", image.source),
            self.sigstore_bundles_inner(image, budget),
        )
        .await
    }

    async fn sigstore_bundles_inner(
        &self,
        image: &ResolvedImage,
        budget: &mut SignatureBudget,
    ) -> Result<Vec<SigstoreSignature>, Error> {
        let source = &image.source;
        let session = self
            .session(source, image.insecure, RegistryOperation::Pull)
            .await?;
        let subject = &image.manifest_digest;
        let display = format!("{}@{subject}", source.name());
        let Some((listing, list_display)) = list_referrers(&session, subject, &display).await?
        else {
            return Ok(Vec::new());
        };
        let index: ReferrersIndex =
            manifest::from_json_object(&listing.body).map_err(|message| {
                Error::InvalidManifest {
                    reference: list_display.clone(),
                    message,
                }
            })?;
        drop(listing);
        if index.manifests.len() > MAX_SIGSTORE_ATTACHMENTS {
            return Err(Error::TooManySignatures {
                what: format!("the referrers of {display}"),
                count: index.manifests.len(),
                limit: MAX_SIGSTORE_ATTACHMENTS,
            });
        }
        let mut bundles = Vec::new();
        let mut seen: Vec<Digest> = Vec::new();
        for entry in index.manifests {
            if entry.media_type != OCI_MANIFEST {
                continue;
            }
            let what = format!("referrer {} of {display}", entry.digest);
            let referrer_digest = digest::parse(&what, &entry.digest)?;
            if seen.contains(&referrer_digest) {
                continue;
            }
            seen.push(referrer_digest.clone());
            if usize::try_from(entry.size).is_ok_and(|size| size > MAX_MANIFEST_SIZE) {
                return Err(Error::TooLarge {
                    what,
                    limit: MAX_MANIFEST_SIZE,
                    detail: format!("the list says {} bytes", entry.size),
                });
            }
            let fetched = session
                .get_manifest(referrer_digest.as_str(), &what, MAX_MANIFEST_SIZE)
                .await?;
            // The only check that this is the manifest the list names.
            digest::verify(&what, &referrer_digest, &fetched.body)?;
            let referrer: Referrer =
                manifest::from_json_object(&fetched.body).map_err(|message| {
                    Error::InvalidManifest {
                        reference: what.clone(),
                        message,
                    }
                })?;
            drop(fetched);
            if !referrer.is_bundle()
                || referrer
                    .subject
                    .as_ref()
                    .is_some_and(|s| s.digest != subject.as_str())
            {
                continue;
            }
            for layer in referrer
                .layers
                .iter()
                .filter(|l| l.media_type == SIGSTORE_BUNDLE_MIME_TYPE)
            {
                if bundles.len() == MAX_SIGSTORE_ATTACHMENTS {
                    return Err(Error::TooManySignatures {
                        what: format!("the sigstore bundles of {display}"),
                        count: bundles.len() + 1,
                        limit: MAX_SIGSTORE_ATTACHMENTS,
                    });
                }
                let what = format!("sigstore bundle {} of {display}", layer.digest);
                let layer_digest = digest::parse(&what, &layer.digest)?;
                budget.check_declared(u64::try_from(layer.size).unwrap_or(u64::MAX))?;
                let payload = session
                    .get_blob(layer_digest.as_str(), &what, MAX_SIGNATURE_SIZE)
                    .await?;
                digest::verify(&what, &layer_digest, &payload)?;
                budget.charge(payload.len())?;
                bundles.push(SigstoreSignature {
                    mime_type: SIGSTORE_BUNDLE_MIME_TYPE.to_owned(),
                    payload,
                    annotations: BTreeMap::new(),
                });
            }
        }
        Ok(bundles)
    }
}

/// The referrers list: the API's answer, else the fallback tag's index,
/// else nothing. Returns it with the name errors about it use.
async fn list_referrers(
    session: &Session,
    subject: &Digest,
    display: &str,
) -> Result<Option<(FetchedManifest, String)>, Error> {
    if let Some(listing) = session
        .get_referrers(
            subject.as_str(),
            SIGSTORE_BUNDLE_MIME_TYPE,
            display,
            MAX_MANIFEST_SIZE,
        )
        .await?
    {
        return Ok(Some((listing, format!("the referrers of {display}"))));
    }
    let tag = referrers_tag(subject);
    let tag_display = format!("{}:{tag}", display.split('@').next().unwrap_or(display));
    match session
        .get_manifest(&tag, &tag_display, MAX_MANIFEST_SIZE)
        .await
    {
        Ok(fetched) => {
            let mime_type = manifest::simplify_content_type(&fetched.content_type);
            if mime_type != OCI_INDEX {
                return Err(Error::InvalidManifest {
                    reference: tag_display,
                    message: format!(
                        "the referrers fallback tag holds {mime_type:?}, not an OCI index"
                    ),
                });
            }
            if let Some(Ok(header)) = fetched.digest_header.as_deref().map(Digest::parse) {
                digest::verify(&format!("manifest {tag_display}"), &header, &fetched.body)?;
            }
            Ok(Some((fetched, tag_display)))
        }
        Err(err) if err.is_not_found() => Ok(None),
        Err(err) => Err(err),
    }
}

/// The empty config (`{}`) of an artifact manifest.
const EMPTY_CONFIG: &[u8] = b"{}";
const EMPTY_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";

impl Registry {
    /// Attaches `bundle` (a sigstore bundle's JSON) to `manifest_digest` in
    /// `repository` the way cosign 3 does: an artifact manifest whose
    /// subject is the image, pushed by digest; where the registry does not
    /// answer that it indexed the subject (`OCI-Subject`), the manifest is
    /// also added to the `sha256-<hex>` fallback index. Returns the
    /// artifact manifest's digest.
    pub async fn push_sigstore_bundle(
        &self,
        repository: &criguard_reference::Reference,
        manifest_digest: &Digest,
        bundle: &[u8],
    ) -> Result<Digest, Error> {
        self.within_deadline(
            format!(
                "pushing a sigstore bundle for {}",
                repository.with_digest(manifest_digest.clone())
            ),
            self.push_bundle_inner(repository, manifest_digest, bundle),
        )
        .await
    }

    async fn push_bundle_inner(
        &self,
        repository: &criguard_reference::Reference,
        manifest_digest: &Digest,
        bundle: &[u8],
    ) -> Result<Digest, Error> {
        let insecure = self.push_target(repository)?;
        let session = self
            .session(repository, insecure, RegistryOperation::Push)
            .await?;
        let display = format!("{}@{manifest_digest}", repository.name());
        if bundle.len() > MAX_SIGNATURE_SIZE {
            return Err(Error::TooLarge {
                what: format!("sigstore bundle for {display}"),
                limit: MAX_SIGNATURE_SIZE,
                detail: format!("{} bytes", bundle.len()),
            });
        }
        // The subject descriptor needs the manifest's type and size.
        let subject = session
            .get_manifest(manifest_digest.as_str(), &display, MAX_MANIFEST_SIZE)
            .await?;
        digest::verify(&display, manifest_digest, &subject.body)?;
        let subject_type =
            manifest::media_type_of(&subject.content_type, &subject.body).map_err(|message| {
                Error::InvalidManifest {
                    reference: display.clone(),
                    message,
                }
            })?;
        let bundle_digest = digest::sha256(bundle);
        let config_digest = digest::sha256(EMPTY_CONFIG);
        let artifact = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": SIGSTORE_BUNDLE_MIME_TYPE,
            "config": {
                "mediaType": EMPTY_MEDIA_TYPE,
                "size": EMPTY_CONFIG.len(),
                "digest": config_digest.as_str(),
            },
            "layers": [{
                "mediaType": SIGSTORE_BUNDLE_MIME_TYPE,
                "size": bundle.len(),
                "digest": bundle_digest.as_str(),
            }],
            "annotations": {
                "dev.sigstore.bundle.content": "dsse-envelope",
                "dev.sigstore.bundle.predicateType": "https://sigstore.dev/cosign/sign/v1",
            },
            "subject": {
                "mediaType": subject_type,
                "size": subject.body.len(),
                "digest": manifest_digest.as_str(),
            },
        });
        let body = artifact.to_string().into_bytes();
        let artifact_digest = digest::sha256(&body);
        let artifact_size = body.len();
        session
            .put_blob(EMPTY_CONFIG.to_vec(), config_digest.as_str())
            .await?;
        session
            .put_blob(bundle.to_vec(), bundle_digest.as_str())
            .await?;
        let indexed = session
            .put_manifest_with_subject(artifact_digest.as_str(), body, OCI_MANIFEST)
            .await?;
        if !indexed {
            self.add_to_fallback_index(&session, manifest_digest, &artifact_digest, artifact_size)
                .await?;
        }
        Ok(artifact_digest)
    }

    /// Adds the artifact to the `sha256-<hex>` index, creating it; an entry
    /// already there is not repeated. Like cosign, two concurrent pushes
    /// can lose one entry.
    async fn add_to_fallback_index(
        &self,
        session: &Session,
        subject: &Digest,
        artifact: &Digest,
        size: usize,
    ) -> Result<(), Error> {
        let tag = referrers_tag(subject);
        let display = format!("{}:{tag}", session.repository);
        let mut index = match session
            .get_manifest(&tag, &display, MAX_MANIFEST_SIZE)
            .await
        {
            Ok(fetched) => manifest::from_json_object::<serde_json::Value>(&fetched.body).map_err(
                |message| Error::InvalidManifest {
                    reference: display.clone(),
                    message,
                },
            )?,
            Err(err) if err.is_not_found() => serde_json::json!({
                "schemaVersion": 2,
                "mediaType": OCI_INDEX,
                "manifests": [],
            }),
            Err(err) => return Err(err),
        };
        let Some(entries) = index
            .get_mut("manifests")
            .and_then(serde_json::Value::as_array_mut)
        else {
            return Err(Error::InvalidManifest {
                reference: display,
                message: "the fallback index has no manifests list".to_owned(),
            });
        };
        if entries
            .iter()
            .any(|e| e.get("digest").and_then(|d| d.as_str()) == Some(artifact.as_str()))
        {
            return Ok(());
        }
        entries.push(serde_json::json!({
            "mediaType": OCI_MANIFEST,
            "size": size,
            "digest": artifact.as_str(),
            "artifactType": SIGSTORE_BUNDLE_MIME_TYPE,
            "annotations": {
                "dev.sigstore.bundle.content": "dsse-envelope",
                "dev.sigstore.bundle.predicateType": "https://sigstore.dev/cosign/sign/v1",
            },
        }));
        session
            .put_manifest(&tag, index.to_string().into_bytes(), OCI_INDEX)
            .await
    }
}
