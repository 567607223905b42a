//! The operations the CLI and the CRI edge need: resolve an image to the
//! manifest that would run, read its sigstore attachments, add one.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use criguard_policy::SigstoreSignature;
use criguard_reference::{Digest, Reference};
use criguard_registries::RegistriesConf;
use oci_client::RegistryOperation;

use crate::clients::{HttpClients, Tls};
use crate::digest::{self, sigstore_tag};
use crate::manifest::{self, Descriptor, ImageManifest, Index, Kind, OCI_CONFIG, OCI_MANIFEST};
use crate::platform::choose;
use crate::signatures::SignatureBudget;
use crate::transport::{Endpoint, FetchedManifest, Session};
use crate::{
    AuthFile, Credentials, Error, MAX_MANIFEST_SIZE, MAX_SIGNATURE_SIZE, MAX_SIGSTORE_ATTACHMENTS,
    Platform,
};

/// Used by [`RegistryConfig::default`]; containers/image has no time-out of
/// its own, CRI-O relies on the kubelet's (2 minutes per pull).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// An operation (resolve, read attachments, push one) makes several
/// requests, each bounded by the time-out; the whole is bounded by this many
/// time-outs so that a long list of slow mirrors or layers still ends.
pub const DEADLINE_TIMEOUTS: u32 = 8;

/// How to reach registries.
#[derive(Debug, Clone)]
pub struct RegistryConfig {
    /// Location rewrites, mirrors, `insecure` and `blocked`.
    pub registries_conf: Option<RegistriesConf>,
    /// Credentials for every registry (`--creds`), overriding the auth file.
    pub credentials: Option<Credentials>,
    /// Used when `credentials` is `None`.
    pub auth_file: Option<AuthFile>,
    /// For each request, connecting included.
    pub timeout: Duration,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        Self {
            registries_conf: None,
            credentials: None,
            auth_file: None,
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

/// The manifest that would be pulled for an image, and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedImage {
    /// As asked (the policy scope and the identity signatures must match).
    pub reference: Reference,
    /// What was actually fetched, after mirrors and `location` rewrites;
    /// same tag or digest. Its sigstore attachments live next to it.
    pub source: Reference,
    /// Set when the reference named an index or manifest list.
    pub index_digest: Option<Digest>,
    /// sha256 of `manifest`: the digest signatures must name.
    pub manifest_digest: Digest,
    pub manifest: Vec<u8>,
    pub media_type: String,
    /// The instance's platform when it was chosen from an index.
    pub platform: Option<Platform>,
    /// Whether `source` was reached as registries.conf's `insecure` allows,
    /// so that its attachments are read the same way.
    pub(crate) insecure: bool,
}

impl ResolvedImage {
    /// The digest of the manifest's config blob: the image ID containerd
    /// and CRI-O report for it, so the image a runtime runs can be tied to
    /// the manifest that was verified. `None` for a manifest without one.
    pub fn config_digest(&self) -> Option<Digest> {
        #[derive(serde::Deserialize)]
        struct WithConfig {
            config: ConfigDescriptor,
        }
        #[derive(serde::Deserialize)]
        struct ConfigDescriptor {
            digest: String,
        }
        let parsed: WithConfig = manifest::from_json_object(&self.manifest).ok()?;
        Digest::parse(&parsed.config.digest).ok()
    }
}

impl ResolvedImage {
    /// `source` pinned to the manifest that was resolved: the image as
    /// errors about its signatures name it.
    pub(crate) fn pinned(&self) -> Reference {
        self.source.with_digest(self.manifest_digest.clone())
    }
}

/// A registry client for one configuration. Endpoints (scheme, TLS policy,
/// authentication challenge, token cache) are created on first use and
/// reused; all of them, and the lookaside stores, share one HTTP client
/// per TLS policy, each built when first needed.
pub struct Registry {
    config: RegistryConfig,
    deadline: Duration,
    endpoints: Mutex<HashMap<(String, bool), Arc<Endpoint>>>,
    pub(crate) clients: HttpClients,
}

/// One place to pull from, as registries.conf says.
struct Source {
    reference: Reference,
    insecure: bool,
}

impl Registry {
    pub fn new(config: RegistryConfig) -> Result<Registry, Error> {
        if config.timeout.is_zero() {
            return Err(Error::ClientSetup {
                host: "every registry".to_owned(),
                message: "the time-out must be longer than zero".to_owned(),
            });
        }
        let deadline = config.timeout.saturating_mul(DEADLINE_TIMEOUTS);
        Ok(Registry {
            deadline,
            endpoints: Mutex::new(HashMap::new()),
            clients: HttpClients::new(config.timeout),
            config,
        })
    }

    /// Replaces the overall deadline of each operation (by default
    /// [`DEADLINE_TIMEOUTS`] time-outs).
    pub fn with_operation_deadline(mut self, deadline: Duration) -> Registry {
        self.deadline = deadline;
        self
    }

    pub fn config(&self) -> &RegistryConfig {
        &self.config
    }

    /// Tag or digest -> the manifest that would be pulled for `platform`
    /// (an index/manifest list is followed to that platform's instance; a
    /// plain manifest is returned as is). Every fetched body is checked
    /// against its digest (the reference's digest, the index descriptor's
    /// digest, and a `Docker-Content-Digest` header when the registry sends
    /// one).
    ///
    /// Mirrors are tried in order, then the primary location, as
    /// containers/image does: the first source that serves the top-level
    /// manifest is used for the rest. A reference with both tag and digest
    /// is fetched by digest; one with neither gets `:latest`.
    ///
    /// Docker schema 1 manifests are refused: their digest is computed over
    /// a re-serialised JWS payload, not the bytes, and no current registry
    /// or signer produces them.
    pub async fn resolve(
        &self,
        reference: &Reference,
        platform: &Platform,
    ) -> Result<ResolvedImage, Error> {
        self.within_deadline(
            format!("resolving {reference}"),
            self.resolve_inner(reference, platform),
        )
        .await
    }

    async fn resolve_inner(
        &self,
        reference: &Reference,
        platform: &Platform,
    ) -> Result<ResolvedImage, Error> {
        let fetched = reference.clone().with_default_tag();
        let mut failures = Vec::new();
        for source in self.pull_sources(&fetched)? {
            match self.resolve_from(reference, &source, platform).await {
                Ok(Ok(image)) => return Ok(image),
                Ok(Err(err)) => return Err(err),
                Err(err) => failures.push((source.reference.to_string(), err)),
            }
        }
        Err(combine_failures(failures))
    }

    /// The outer error means this source failed and the next may be tried;
    /// the inner one is final (the source served the image, which is wrong).
    async fn resolve_from(
        &self,
        asked: &Reference,
        source: &Source,
        platform: &Platform,
    ) -> Result<Result<ResolvedImage, Error>, Error> {
        let physical = &source.reference;
        let session = self
            .session(physical, source.insecure, RegistryOperation::Pull)
            .await?;
        let display = physical.to_string();
        let top = match physical.digest() {
            Some(digest) => {
                let top = session
                    .get_manifest(digest.as_str(), &display, MAX_MANIFEST_SIZE)
                    .await?;
                digest::verify(&format!("manifest {display}"), digest, &top.body)?;
                top
            }
            None => {
                let tag = physical.tag().unwrap_or("latest");
                let top = session
                    .get_manifest(tag, &display, MAX_MANIFEST_SIZE)
                    .await?;
                check_digest_header(&top, &display)?;
                top
            }
        };
        let media_type = classify(&top, &display)?;
        Ok(self
            .finish_resolve(asked, source, &session, top, media_type, platform)
            .await)
    }

    async fn finish_resolve(
        &self,
        asked: &Reference,
        source: &Source,
        session: &Session,
        top: FetchedManifest,
        media_type: (String, Kind),
        platform: &Platform,
    ) -> Result<ResolvedImage, Error> {
        let physical = &source.reference;
        let display = physical.to_string();
        let (media_type, kind) = media_type;
        match kind {
            Kind::Image => Ok(ResolvedImage {
                reference: asked.clone(),
                source: physical.clone(),
                index_digest: None,
                manifest_digest: digest::sha256(&top.body),
                manifest: top.body,
                media_type,
                platform: None,
                insecure: source.insecure,
            }),
            Kind::Schema1 => Err(Error::Schema1 {
                reference: display,
                media_type,
            }),
            Kind::List => {
                let index: Index = manifest::from_json_object(&top.body).map_err(|message| {
                    Error::InvalidManifest {
                        reference: display.clone(),
                        message,
                    }
                })?;
                let platforms: Vec<Option<Platform>> = index
                    .manifests
                    .iter()
                    .map(|entry| entry.platform.as_ref().map(|p| p.to_platform()))
                    .collect();
                let Some(position) = choose(platform, platforms.iter().map(Option::as_ref)) else {
                    let mut available: Vec<String> = platforms
                        .iter()
                        .flatten()
                        .map(Platform::to_string)
                        .collect();
                    available.dedup();
                    return Err(Error::NoMatchingPlatform {
                        reference: display,
                        wanted: platform.clone(),
                        available,
                    });
                };
                let entry = &index.manifests[position];
                let instance_digest =
                    digest::parse(&format!("instance of {display}"), &entry.digest)?;
                let instance_display = physical.with_digest(instance_digest.clone()).to_string();
                let instance = session
                    .get_manifest(
                        instance_digest.as_str(),
                        &instance_display,
                        MAX_MANIFEST_SIZE,
                    )
                    .await?;
                let instance_what = format!("manifest {instance_display}");
                digest::verify(&instance_what, &instance_digest, &instance.body)?;
                let (instance_type, instance_kind) = classify(&instance, &instance_display)?;
                match instance_kind {
                    Kind::Image => {}
                    Kind::Schema1 => {
                        return Err(Error::Schema1 {
                            reference: instance_display,
                            media_type: instance_type,
                        });
                    }
                    Kind::List => {
                        return Err(Error::InvalidManifest {
                            reference: instance_display,
                            message: format!(
                                "the instance for {platform} ({}) is itself a manifest list",
                                entry.media_type
                            ),
                        });
                    }
                }
                Ok(ResolvedImage {
                    reference: asked.clone(),
                    source: physical.clone(),
                    index_digest: Some(digest::sha256(&top.body)),
                    manifest_digest: digest::sha256(&instance.body),
                    manifest: instance.body,
                    media_type: instance_type,
                    platform: platforms[position].clone(),
                    insecure: source.insecure,
                })
            }
        }
    }

    /// containers/image's sigstore attachments of `image`: the OCI manifest
    /// tagged `sha256-<hex>.sig` in the repository the image came from; each
    /// layer is one signature. No such manifest means no signatures.
    ///
    /// Unlike containers/image, which reads every layer, a manifest listing
    /// more than [`MAX_SIGSTORE_ATTACHMENTS`] layers, or declaring (or
    /// serving) more than [`crate::MAX_SIGNATURE_BYTES_PER_IMAGE`], is an error,
    /// found before any layer is fetched where the manifest tells. Identical
    /// layers (digest, media type and annotations) are one signature; a
    /// blob that several layers name is fetched once.
    pub async fn sigstore_attachments(
        &self,
        image: &ResolvedImage,
    ) -> Result<Vec<SigstoreSignature>, Error> {
        let mut budget = SignatureBudget::new(image.pinned().to_string());
        self.sigstore_attachments_within(image, &mut budget).await
    }

    /// [`Registry::sigstore_attachments`], counting the bytes against
    /// `budget`, which the image's lookaside signatures share.
    pub(crate) async fn sigstore_attachments_within(
        &self,
        image: &ResolvedImage,
        budget: &mut SignatureBudget,
    ) -> Result<Vec<SigstoreSignature>, Error> {
        self.within_deadline(
            format!("reading sigstore attachments of {}", image.source),
            self.sigstore_attachments_inner(image, budget),
        )
        .await
    }

    async fn sigstore_attachments_inner(
        &self,
        image: &ResolvedImage,
        budget: &mut SignatureBudget,
    ) -> Result<Vec<SigstoreSignature>, Error> {
        let source = &image.source;
        let session = self
            .session(source, image.insecure, RegistryOperation::Pull)
            .await?;
        let tag = sigstore_tag(&image.manifest_digest);
        let display = format!("{}:{tag}", source.name());
        let fetched = match session
            .get_manifest(&tag, &display, MAX_MANIFEST_SIZE)
            .await
        {
            Ok(fetched) => fetched,
            Err(err) if err.is_not_found() => return Ok(Vec::new()),
            Err(err) => return Err(err),
        };
        let sig_manifest = parse_sigstore_manifest(&fetched, &display)?;
        // Its bytes (up to 4 MiB) are not needed while the blobs are read.
        drop(fetched);
        let layers = distinct_layers(sig_manifest.layers, &display)?;
        budget.check_declared(
            layers
                .iter()
                .map(|(_, layer)| u64::try_from(layer.size).unwrap_or(0))
                .fold(0, u64::saturating_add),
        )?;
        let mut signatures: Vec<SigstoreSignature> = Vec::with_capacity(layers.len());
        // Where each blob already read is, so that layers naming one blob
        // (one payload signed by several keys) fetch it once.
        let mut read: HashMap<Digest, usize> = HashMap::new();
        for (number, layer) in layers {
            let what = format!("signature layer {number} of {display}");
            let layer_digest = digest::parse(&what, &layer.digest)?;
            let payload = match read.get(&layer_digest) {
                Some(&index) => signatures[index].payload.clone(),
                None => {
                    let what = format!("signature {layer_digest} of {display}");
                    let payload = session
                        .get_blob(layer_digest.as_str(), &what, MAX_SIGNATURE_SIZE)
                        .await?;
                    // The only check that these are the bytes the manifest
                    // names: the policy trusts them from here on.
                    digest::verify(&what, &layer_digest, &payload)?;
                    read.insert(layer_digest, signatures.len());
                    payload
                }
            };
            // Every copy is held until the verdict, so every copy counts.
            budget.charge(payload.len())?;
            signatures.push(SigstoreSignature {
                mime_type: layer.media_type,
                payload,
                annotations: layer.annotations.unwrap_or_default(),
            });
        }
        Ok(signatures)
    }

    /// Adds `signature` as a layer of the `sha256-<hex>.sig` manifest for
    /// `manifest_digest` in `repository`'s repository, the way cosign 2.x
    /// does: the manifest is created, or the layer appended to the existing
    /// ones (nothing is pushed when an identical layer is already there).
    /// Returns the digest of the `.sig` manifest now in the registry.
    ///
    /// Pushes go to the repository as named: registries.conf `location`
    /// rewrites and mirrors only apply to pulls, but `blocked` and
    /// `insecure` are honoured. Like cosign, two concurrent pushes can lose
    /// one of the layers.
    pub async fn push_sigstore_attachment(
        &self,
        repository: &Reference,
        manifest_digest: &Digest,
        signature: &SigstoreSignature,
    ) -> Result<Digest, Error> {
        self.within_deadline(
            format!(
                "pushing a sigstore attachment for {}",
                repository.with_digest(manifest_digest.clone())
            ),
            self.push_inner(repository, manifest_digest, signature),
        )
        .await
    }

    async fn push_inner(
        &self,
        repository: &Reference,
        manifest_digest: &Digest,
        signature: &SigstoreSignature,
    ) -> Result<Digest, Error> {
        let insecure = self.push_target(repository)?;
        let session = self
            .session(repository, insecure, RegistryOperation::Push)
            .await?;
        let tag = sigstore_tag(manifest_digest);
        let display = format!("{}:{tag}", repository.name());
        let existing = match session
            .get_manifest(&tag, &display, MAX_MANIFEST_SIZE)
            .await
        {
            Ok(fetched) => Some(fetched),
            Err(err) if err.is_not_found() => None,
            Err(err) => return Err(err),
        };

        if signature.payload.len() > MAX_SIGNATURE_SIZE {
            return Err(Error::TooLarge {
                what: format!("signature for {display}"),
                limit: MAX_SIGNATURE_SIZE,
                detail: format!("{} bytes", signature.payload.len()),
            });
        }
        let payload_digest = digest::sha256(&signature.payload);
        let layer = Descriptor {
            media_type: signature.mime_type.clone(),
            size: signature.payload.len() as i64,
            digest: payload_digest.to_string(),
            annotations: (!signature.annotations.is_empty()).then(|| signature.annotations.clone()),
            other: serde_json::Map::new(),
        };

        let (mut layers, annotations) = match &existing {
            Some(fetched) => {
                let current = parse_sigstore_manifest(fetched, &display)?;
                if current.layers.iter().any(|l| same_layer(l, &layer)) {
                    return Ok(digest::sha256(&fetched.body));
                }
                (current.layers, current.annotations)
            }
            None => (Vec::new(), None),
        };
        layers.push(layer);

        let diff_ids: Vec<String> = layers.iter().map(|l| l.digest.clone()).collect();
        let config = manifest::cosign_config(&diff_ids);
        let config_digest = digest::sha256(&config);
        let sig_manifest = ImageManifest {
            schema_version: 2,
            media_type: Some(OCI_MANIFEST.to_owned()),
            config: Descriptor {
                media_type: OCI_CONFIG.to_owned(),
                size: config.len() as i64,
                digest: config_digest.to_string(),
                annotations: None,
                other: serde_json::Map::new(),
            },
            layers,
            annotations,
        };
        let body = serde_json::to_vec(&sig_manifest).map_err(|e| Error::InvalidManifest {
            reference: display.clone(),
            message: e.to_string(),
        })?;

        session
            .put_blob(signature.payload.clone(), payload_digest.as_str())
            .await?;
        session.put_blob(config, config_digest.as_str()).await?;
        let pushed = digest::sha256(&body);
        session.put_manifest(&tag, body, OCI_MANIFEST).await?;
        Ok(pushed)
    }

    /// Pushes go to the repository as named: registries.conf `location`
    /// rewrites and mirrors only apply to pulls, but `blocked` refuses and
    /// `insecure` is honoured. Returns whether it is insecure.
    pub(crate) fn push_target(&self, repository: &Reference) -> Result<bool, Error> {
        if let Some(conf) = &self.config.registries_conf
            && let Some(table) = conf.find_registry(repository.name())
        {
            if table.blocked() {
                return Err(Error::Config(criguard_registries::Error::RegistryBlocked {
                    registry: table.prefix().to_owned(),
                    file: table.file().to_owned(),
                }));
            }
            return Ok(table.insecure());
        }
        Ok(false)
    }

    pub(crate) async fn within_deadline<T>(
        &self,
        operation: String,
        future: impl Future<Output = Result<T, Error>>,
    ) -> Result<T, Error> {
        tokio::time::timeout(self.deadline, future)
            .await
            .unwrap_or_else(|_| {
                Err(Error::DeadlineExceeded {
                    operation,
                    deadline: self.deadline,
                })
            })
    }

    fn pull_sources(&self, reference: &Reference) -> Result<Vec<Source>, Error> {
        match &self.config.registries_conf {
            Some(conf) => Ok(conf
                .pull_sources(reference)?
                .into_iter()
                .map(|s| Source {
                    reference: s.reference().clone(),
                    insecure: s.insecure(),
                })
                .collect()),
            None => Ok(vec![Source {
                reference: reference.clone(),
                insecure: false,
            }]),
        }
    }

    /// `--creds` for every registry, else the auth file's entry for the
    /// physical reference (containers/image looks credentials up for the
    /// mirror actually contacted).
    pub(crate) fn credentials_for(&self, physical: &Reference) -> Credentials {
        if let Some(credentials) = &self.config.credentials {
            return credentials.clone();
        }
        self.config
            .auth_file
            .as_ref()
            .map(|file| file.credentials_for(physical))
            .unwrap_or_default()
    }

    /// An authenticated session on `reference`'s repository (its host
    /// reached as `insecure` says), for `operation`: the one way every
    /// operation reaches a registry.
    pub(crate) async fn session(
        &self,
        reference: &Reference,
        insecure: bool,
        operation: RegistryOperation,
    ) -> Result<Session, Error> {
        let endpoint = self.endpoint(reference.domain(), insecure).await?;
        let credentials = self.credentials_for(reference);
        Session::open(endpoint, reference.path(), &credentials, operation).await
    }

    /// The endpoint for `host`, pinged and kept on first use. Two tasks
    /// asking at once may both ping; the first one kept wins.
    async fn endpoint(&self, host: &str, insecure: bool) -> Result<Arc<Endpoint>, Error> {
        let key = (host.to_owned(), insecure);
        if let Some(endpoint) = self.lock_endpoints().get(&key) {
            return Ok(Arc::clone(endpoint));
        }
        let tls = if insecure {
            Tls::Unverified
        } else {
            Tls::Verified
        };
        let http = self.clients.get(tls, host)?;
        let endpoint =
            Arc::new(Endpoint::connect(host, insecure, http, self.config.timeout).await?);
        Ok(Arc::clone(
            self.lock_endpoints().entry(key).or_insert(endpoint),
        ))
    }

    fn lock_endpoints(&self) -> std::sync::MutexGuard<'_, HashMap<(String, bool), Arc<Endpoint>>> {
        // The map is only ever inserted into; a panic elsewhere cannot leave
        // it inconsistent.
        self.endpoints
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The manifest's MIME type and what it is; unknown types are refused.
fn classify(fetched: &FetchedManifest, display: &str) -> Result<(String, Kind), Error> {
    let media_type =
        manifest::media_type_of(&fetched.content_type, &fetched.body).map_err(|message| {
            Error::InvalidManifest {
                reference: display.to_owned(),
                message,
            }
        })?;
    match manifest::kind_of(&media_type) {
        Some(kind) => Ok((media_type, kind)),
        None => Err(Error::UnsupportedManifestType {
            reference: display.to_owned(),
            media_type,
        }),
    }
}

/// A tag has no digest to check the body against, but the registry's
/// `Docker-Content-Digest` header, when present, catches a corrupted or
/// substituted body (oci-client checks it too).
fn check_digest_header(fetched: &FetchedManifest, display: &str) -> Result<(), Error> {
    match fetched.digest_header.as_deref().map(Digest::parse) {
        Some(Ok(header)) => digest::verify(&format!("manifest {display}"), &header, &fetched.body),
        _ => Ok(()),
    }
}

/// containers/image accepts a `.sig` manifest only with exactly the OCI
/// image manifest Content-Type.
fn parse_sigstore_manifest(
    fetched: &FetchedManifest,
    display: &str,
) -> Result<ImageManifest, Error> {
    let mime_type = manifest::simplify_content_type(&fetched.content_type);
    if mime_type != OCI_MANIFEST {
        return Err(Error::SigstoreMimeType {
            reference: display.to_owned(),
            mime_type,
        });
    }
    check_digest_header(fetched, display)?;
    let parsed: ImageManifest =
        manifest::from_json_object(&fetched.body).map_err(|message| Error::InvalidManifest {
            reference: display.to_owned(),
            message,
        })?;
    if parsed.schema_version != 2 {
        return Err(Error::InvalidManifest {
            reference: display.to_owned(),
            message: format!("schemaVersion {} is not 2", parsed.schema_version),
        });
    }
    if let Some(declared) = parsed.media_type.as_deref()
        && declared != OCI_MANIFEST
    {
        return Err(Error::InvalidManifest {
            reference: display.to_owned(),
            message: format!("mediaType {declared:?} is not {OCI_MANIFEST:?}"),
        });
    }
    Ok(parsed)
}

/// The layers of a `.sig` manifest worth reading, each with its position in
/// the manifest: at most [`MAX_SIGSTORE_ATTACHMENTS`], counted as the
/// manifest lists them (before anything is fetched, and before duplicates
/// are dropped, so that a manifest no signer would write is refused whatever
/// it repeats), and without repeats of an identical layer, which would be
/// the same signature checked again.
fn distinct_layers(
    layers: Vec<Descriptor>,
    display: &str,
) -> Result<Vec<(usize, Descriptor)>, Error> {
    if layers.len() > MAX_SIGSTORE_ATTACHMENTS {
        return Err(Error::TooManySignatures {
            what: format!("sigstore attachment manifest {display}"),
            count: layers.len(),
            limit: MAX_SIGSTORE_ATTACHMENTS,
        });
    }
    let mut distinct: Vec<(usize, Descriptor)> = Vec::with_capacity(layers.len());
    for (number, layer) in layers.into_iter().enumerate() {
        if !distinct.iter().any(|(_, seen)| same_layer(seen, &layer)) {
            distinct.push((number, layer));
        }
    }
    Ok(distinct)
}

fn same_layer(a: &Descriptor, b: &Descriptor) -> bool {
    // No annotations and an empty map are the same layer; compared in
    // place, as certificates and Rekor bundles make them large.
    fn annotations(d: &Descriptor) -> Option<&BTreeMap<String, String>> {
        d.annotations.as_ref().filter(|m| !m.is_empty())
    }
    a.digest == b.digest && a.media_type == b.media_type && annotations(a) == annotations(b)
}

fn combine_failures(mut failures: Vec<(String, Error)>) -> Error {
    let Some((last_reference, last)) = failures.pop() else {
        return Error::Registry {
            host: String::new(),
            repository: String::new(),
            message: "registries.conf left no source to pull from".to_owned(),
        };
    };
    if failures.is_empty() {
        return last;
    }
    Error::AllSourcesFailed {
        last_reference,
        last: Box::new(last),
        mirrors: failures,
    }
}
