//! HTTP to one registry: choosing HTTPS or HTTP and learning how to
//! authenticate with one ping, the token exchange for reads, and every
//! read, on the registry's one shared reqwest client.
//!
//! Reads are made here rather than by oci-client because oci-client reads
//! a manifest body whole without a size limit and does not return its
//! Content-Type, and both matter: containers/image refuses manifests over
//! 4 MiB and decides what a manifest is (and whether a `.sig` manifest is
//! acceptable) from the Content-Type. The token exchange for reads is made
//! here because oci-client would ping the registry a second time and build
//! HTTP clients of its own, one of which reads the system trust store even
//! for a plain-HTTP registry. oci-client still makes pushes (its own token
//! exchange, blob uploads, manifests), from a client made on the first push.

use std::collections::HashMap;
use std::error::Error as _;
use std::future::Future;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use oci_client::RegistryOperation;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciEnvelope, OciErrorCode};
use reqwest::StatusCode;
use reqwest::header::{
    ACCEPT, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, HeaderValue, WWW_AUTHENTICATE,
};

use crate::challenge::{Challenge, MAX_TOKEN_RESPONSE, token_from_response};
use crate::digest::LimitedBody;
use crate::{Credentials, Error};

pub(crate) const USER_AGENT: &str = concat!("criguard/", env!("CARGO_PKG_VERSION"));
/// Error bodies are read for their message only.
const MAX_ERROR_BODY: usize = 64 << 10;

/// How long the outcome of a token exchange is reused for further
/// operations on the same repository. Registries issue tokens for at least
/// 60 s (Docker Hub: 300 s); reusing them saves a ping and a token request
/// per operation, which a node pulling many images needs.
const AUTHORIZATION_REUSE: Duration = Duration::from_secs(50);
/// Beyond this many repositories the reuse table starts again empty.
const MAX_REUSED_AUTHORIZATIONS: usize = 1024;

/// Which token exchange an authorization came from.
#[derive(Clone, PartialEq, Eq, Hash)]
struct AuthorizationKey {
    repository: String,
    push: bool,
    credentials: Credentials,
}

/// One registry host reached with one scheme and one TLS policy.
pub(crate) struct Endpoint {
    /// `host[:port]` as in the reference, for messages.
    pub(crate) host: String,
    /// The host as requests name it (Docker Hub's API host for `docker.io`).
    url_host: String,
    scheme: &'static str,
    insecure: bool,
    timeout: Duration,
    /// The registry's shared client for this TLS policy.
    http: reqwest::Client,
    /// oci-client, for pushes only; made on the first push, because making
    /// one reads the system trust store whatever its configuration.
    oci: OnceLock<oci_client::Client>,
    /// The authentication challenge of the last ping, and when it came.
    challenge: Mutex<Option<(Challenge, Instant)>>,
    authorizations: Mutex<HashMap<AuthorizationKey, (Option<HeaderValue>, Instant)>>,
}

impl Endpoint {
    /// Pings `/v2/`, as containers/image does before anything else, to
    /// choose the scheme and learn how to authenticate. An `insecure`
    /// registry is tried over HTTPS first (certificate errors ignored, as
    /// `insecure` asks), then over plain HTTP when that fails, except that
    /// an HTTPS attempt that *timed out* is reported instead of retried: a
    /// stalled host would only stall again, and the time-out must hold.
    /// Any HTTP answer to the ping counts: its status is not judged, its
    /// `WWW-Authenticate` header is what matters.
    pub(crate) async fn connect(
        host: &str,
        insecure: bool,
        http: reqwest::Client,
        timeout: Duration,
    ) -> Result<Endpoint, Error> {
        let url_host = oci_client::Reference::with_tag(host.to_owned(), "x".into(), "x".into())
            .resolve_registry()
            .to_owned();
        let mut endpoint = Endpoint {
            host: host.to_owned(),
            url_host,
            scheme: "https",
            insecure,
            timeout,
            http,
            oci: OnceLock::new(),
            challenge: Mutex::new(None),
            authorizations: Mutex::new(HashMap::new()),
        };
        let challenge = match endpoint.ping().await {
            Ok(challenge) => challenge,
            Err(err) if !insecure => return Err(err),
            Err(err @ Error::TimedOut { .. }) => return Err(err),
            Err(_) => {
                endpoint.scheme = "http";
                endpoint.ping().await?
            }
        };
        endpoint.remember_challenge(challenge);
        Ok(endpoint)
    }

    /// `GET /v2/` on this endpoint's scheme: how the registry asks to be
    /// authenticated.
    async fn ping(&self) -> Result<Challenge, Error> {
        let url = format!("{}://{}/v2/", self.scheme, self.url_host);
        self.timed(async {
            let mut response = self
                .http
                .get(&url)
                .send()
                .await
                .map_err(|e| classify_transport(&self.host, self.timeout, &e))?;
            let challenge = Challenge::from_headers(
                response
                    .headers()
                    .get_all(WWW_AUTHENTICATE)
                    .iter()
                    .map(HeaderValue::as_bytes),
            );
            // Read to the end, so that the connection serves the next
            // request.
            read_some(&mut response, MAX_ERROR_BODY).await;
            Ok(challenge)
        })
        .await
    }

    fn remember_challenge(&self, challenge: Challenge) {
        *self
            .challenge
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some((challenge, Instant::now()));
    }

    /// The last ping's challenge while it is recent, else a new ping's.
    /// Registries change how they authenticate rarely, and a 401 forgets
    /// it at once.
    async fn challenge(&self) -> Result<Challenge, Error> {
        let recent = self
            .challenge
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
            .filter(|(_, when)| when.elapsed() < AUTHORIZATION_REUSE)
            .map(|(challenge, _)| challenge.clone());
        if let Some(challenge) = recent {
            return Ok(challenge);
        }
        let challenge = self.ping().await?;
        self.remember_challenge(challenge.clone());
        Ok(challenge)
    }

    fn forget_challenge(&self) {
        *self
            .challenge
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
    }

    /// oci-client, for pushes, made on first use. It builds a throwaway
    /// default reqwest client while building the configured one, and that
    /// one panics when the system has no CA certificates at all; that is
    /// turned into an error, so that a node without a CA bundle fails with
    /// a reason instead of crashing.
    fn oci(&self) -> Result<&oci_client::Client, Error> {
        if let Some(oci) = self.oci.get() {
            return Ok(oci);
        }
        let setup = |message: String| Error::ClientSetup {
            host: self.host.clone(),
            message,
        };
        let config = ClientConfig {
            protocol: if self.scheme == "http" {
                ClientProtocol::Http
            } else {
                ClientProtocol::Https
            },
            accept_invalid_certificates: self.insecure,
            platform_resolver: None,
            read_timeout: Some(self.timeout),
            connect_timeout: Some(self.timeout),
            user_agent: USER_AGENT,
            ..ClientConfig::default()
        };
        let oci = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            oci_client::Client::try_from(config)
        }))
        .map_err(|_| {
            setup(
                "no system CA certificates could be loaded (install ca-certificates, or set \
                 SSL_CERT_FILE); the registry client cannot start without them"
                    .to_owned(),
            )
        })?
        .map_err(|e| setup(e.to_string()))?;
        Ok(self.oci.get_or_init(|| oci))
    }

    fn lock_authorizations(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<AuthorizationKey, (Option<HeaderValue>, Instant)>> {
        // Plain inserts and removals: a panic elsewhere cannot leave the
        // table inconsistent.
        self.authorizations
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn reused_authorization(&self, key: &AuthorizationKey) -> Option<Option<HeaderValue>> {
        let table = self.lock_authorizations();
        let (authorization, when) = table.get(key)?;
        (when.elapsed() < AUTHORIZATION_REUSE).then(|| authorization.clone())
    }

    fn remember_authorization(&self, key: AuthorizationKey, authorization: Option<HeaderValue>) {
        let mut table = self.lock_authorizations();
        if table.len() >= MAX_REUSED_AUTHORIZATIONS {
            table.clear();
        }
        table.insert(key, (authorization, Instant::now()));
    }

    /// Runs one request (or one short exchange, like a token request) under
    /// the per-request time-out.
    pub(crate) async fn timed<T>(
        &self,
        future: impl Future<Output = Result<T, Error>>,
    ) -> Result<T, Error> {
        tokio::time::timeout(self.timeout, future)
            .await
            .unwrap_or_else(|_| {
                Err(Error::TimedOut {
                    host: self.host.clone(),
                    timeout: self.timeout,
                })
            })
    }
}

/// Authenticated access to one repository on one endpoint. It holds the
/// endpoint, so that one helper can open it and hand it back.
pub(crate) struct Session {
    pub(crate) endpoint: Arc<Endpoint>,
    /// Repository-level reference for oci-client (registry + repository).
    pub(crate) oci_ref: oci_client::Reference,
    pub(crate) repository: String,
    authorization: Option<HeaderValue>,
    credentials_given: bool,
    key: AuthorizationKey,
}

impl Session {
    pub(crate) async fn open(
        endpoint: Arc<Endpoint>,
        repository: &str,
        credentials: &Credentials,
        operation: RegistryOperation,
    ) -> Result<Session, Error> {
        let oci_ref = oci_client::Reference::with_tag(
            endpoint.host.clone(),
            repository.to_owned(),
            "latest".to_owned(),
        );
        let key = AuthorizationKey {
            repository: repository.to_owned(),
            push: matches!(operation, RegistryOperation::Push),
            credentials: credentials.clone(),
        };
        let mut session = Session {
            endpoint,
            oci_ref,
            repository: repository.to_owned(),
            authorization: None,
            credentials_given: !credentials.is_anonymous(),
            key,
        };
        if let Some(authorization) = session.endpoint.reused_authorization(&session.key) {
            session.authorization = authorization;
            return Ok(session);
        }
        let token = match operation {
            RegistryOperation::Pull => session.pull_token(credentials).await?,
            RegistryOperation::Push => session.oci_push_token(credentials).await?,
        };
        // A token came from a Bearer challenge; with a Basic challenge or
        // none at all, Basic credentials are sent when there are some.
        session.authorization = match (token, credentials) {
            (Some(token), _) => header_value(&format!("Bearer {token}")),
            (None, Credentials::Basic { username, password }) => {
                use base64::Engine as _;
                let encoded = base64::engine::general_purpose::STANDARD
                    .encode(format!("{username}:{password}"));
                header_value(&format!("Basic {encoded}"))
            }
            (None, Credentials::Bearer(token)) => header_value(&format!("Bearer {token}")),
            (None, Credentials::Anonymous) => None,
        };
        session
            .endpoint
            .remember_authorization(session.key.clone(), session.authorization.clone());
        Ok(session)
    }

    /// For reading: the token the endpoint's challenge asks for, if any.
    /// A registry token given as credentials is sent as it is.
    async fn pull_token(&self, credentials: &Credentials) -> Result<Option<String>, Error> {
        if let Credentials::Bearer(token) = credentials {
            return Ok(Some(token.clone()));
        }
        match self.endpoint.challenge().await? {
            Challenge::None | Challenge::Basic => Ok(None),
            Challenge::Invalid(message) => Err(Error::Transport {
                host: self.endpoint.host.clone(),
                message: format!("authenticating: {message}"),
            }),
            Challenge::Bearer { realm, service } => self
                .endpoint
                .timed(self.request_token(&realm, service.as_deref(), credentials))
                .await
                .map(Some),
        }
    }

    /// `GET <realm>?account=…&service=…&scope=repository:<name>:pull`, with
    /// the Basic credentials when there are some (and their user name as
    /// `account`), as containers/image asks.
    async fn request_token(
        &self,
        realm: &str,
        service: Option<&str>,
        credentials: &Credentials,
    ) -> Result<String, Error> {
        let mut url = reqwest::Url::parse(realm)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .ok_or_else(|| Error::Transport {
                host: self.endpoint.host.clone(),
                message: format!(
                    "authenticating: the token realm {:?} is not an http(s) URL",
                    short_text(realm.as_bytes())
                ),
            })?;
        {
            let mut query = url.query_pairs_mut();
            if let Credentials::Basic { username, .. } = credentials {
                query.append_pair("account", username);
            }
            if let Some(service) = service {
                query.append_pair("service", service);
            }
            query.append_pair("scope", &format!("repository:{}:pull", self.repository));
        }
        let mut request = self.endpoint.http.get(url);
        if let Credentials::Basic { username, password } = credentials {
            request = request.basic_auth(username, Some(password));
        }
        let mut response = request.send().await.map_err(|e| self.reqwest_error(&e))?;
        let status = response.status();
        if status != StatusCode::OK {
            let body = read_some(&mut response, MAX_ERROR_BODY).await;
            return Err(self.unauthorized(format!(
                "token request refused: {status}: {}",
                short_text(&body)
            )));
        }
        let body = read_some(&mut response, MAX_TOKEN_RESPONSE + 1).await;
        if body.len() > MAX_TOKEN_RESPONSE {
            return Err(Error::Registry {
                host: self.endpoint.host.clone(),
                repository: self.repository.clone(),
                message: format!("the token response is larger than {MAX_TOKEN_RESPONSE} bytes"),
            });
        }
        token_from_response(&body).map_err(|message| Error::Registry {
            host: self.endpoint.host.clone(),
            repository: self.repository.clone(),
            message: format!("authenticating: {message}"),
        })
    }

    /// For pushes, which oci-client makes: its own ping and token exchange,
    /// so that its later requests carry the token.
    async fn oci_push_token(&self, credentials: &Credentials) -> Result<Option<String>, Error> {
        let oci = self.endpoint.oci()?;
        let auth = credentials.to_oci();
        self.endpoint
            .timed(async {
                oci.auth(&self.oci_ref, &auth, RegistryOperation::Push)
                    .await
                    .map_err(|e| self.oci_error(e, None))
            })
            .await
    }

    /// `<scheme>://<host>/v2/<repository>/<path>`.
    fn repository_url(&self, path: &str) -> String {
        format!(
            "{}://{}/v2/{}/{path}",
            self.endpoint.scheme, self.endpoint.url_host, self.repository
        )
    }

    /// `GET /v2/<repository>/manifests/<reference>`, at most `limit` bytes.
    pub(crate) async fn get_manifest(
        &self,
        reference: &str,
        display: &str,
        limit: usize,
    ) -> Result<FetchedManifest, Error> {
        let url = self.repository_url(&format!("manifests/{reference}"));
        self.endpoint
            .timed(async {
                let accept = crate::manifest::ACCEPTED.join(", ");
                let mut response = self.get(&url, Some(&accept), Some(display)).await?;
                let header = |name| {
                    response
                        .headers()
                        .get(name)
                        .and_then(|v: &HeaderValue| v.to_str().ok())
                        .map(str::to_owned)
                };
                let content_type = header(CONTENT_TYPE).unwrap_or_default();
                let digest_header = header(reqwest::header::HeaderName::from_static(
                    "docker-content-digest",
                ))
                .filter(|d| !d.is_empty());
                let body = self
                    .read_body(&mut response, &format!("manifest {display}"), limit)
                    .await?;
                Ok(FetchedManifest {
                    body,
                    content_type,
                    digest_header,
                })
            })
            .await
    }

    /// `GET /v2/<repository>/referrers/<digest>?artifactType=…` (OCI
    /// distribution 1.1), at most `limit` bytes. `None` when the registry
    /// answers 404: it has no referrers API, and the fallback tag is where
    /// referrers are.
    pub(crate) async fn get_referrers(
        &self,
        digest: &str,
        artifact_type: &str,
        display: &str,
        limit: usize,
    ) -> Result<Option<FetchedManifest>, Error> {
        let url = self.repository_url(&format!(
            "referrers/{digest}?artifactType={}",
            artifact_type.replace('+', "%2B")
        ));
        self.endpoint
            .timed(async {
                let mut response =
                    match self.get(&url, Some(crate::manifest::OCI_INDEX), None).await {
                        Ok(response) => response,
                        Err(Error::HttpStatus { status: 404, .. }) => return Ok(None),
                        Err(e) => return Err(e),
                    };
                let content_type = response
                    .headers()
                    .get(CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
                    .unwrap_or_default();
                let body = self
                    .read_body(&mut response, &format!("referrers of {display}"), limit)
                    .await?;
                Ok(Some(FetchedManifest {
                    body,
                    content_type,
                    digest_header: None,
                }))
            })
            .await
    }

    /// A GET with this session's authorization; anything but 200 is an
    /// error naming the status (and `manifest`, for a 404).
    async fn get(
        &self,
        url: &str,
        accept: Option<&str>,
        manifest: Option<&str>,
    ) -> Result<reqwest::Response, Error> {
        let mut request = self.endpoint.http.get(url);
        if let Some(accept) = accept {
            request = request.header(ACCEPT, accept);
        }
        if let Some(authorization) = &self.authorization {
            request = request.header(AUTHORIZATION, authorization.clone());
        }
        let mut response = request.send().await.map_err(|e| self.reqwest_error(&e))?;
        let status = response.status();
        if status != StatusCode::OK {
            let body = read_some(&mut response, MAX_ERROR_BODY).await;
            return Err(self.status_error(status, &body, url, manifest));
        }
        Ok(response)
    }

    /// The body of `response`, refused beyond `limit` bytes, announced or
    /// received.
    async fn read_body(
        &self,
        response: &mut reqwest::Response,
        what: &str,
        limit: usize,
    ) -> Result<Vec<u8>, Error> {
        let too_large = |detail: String| Error::TooLarge {
            what: what.to_owned(),
            limit,
            detail,
        };
        let announced = response
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let mut body = LimitedBody::new(limit, announced)
            .map_err(|len| too_large(format!("Content-Length is {len}")))?;
        while let Some(chunk) = response.chunk().await.map_err(|e| self.reqwest_error(&e))? {
            if !body.push(&chunk) {
                return Err(too_large(format!("more than {limit} bytes received")));
            }
        }
        Ok(body.into_bytes())
    }

    /// A blob, bounded by `limit`. Fetched with our own client, like
    /// manifests: oci-client's blob stream repeats its authentication
    /// exchange on every call to a registry that issues no tokens, which
    /// doubles the cost of reading a signature. Redirects (to blob storage)
    /// are followed; reqwest drops the Authorization header when one
    /// leaves the registry's host.
    pub(crate) async fn get_blob(
        &self,
        digest: &str,
        what: &str,
        limit: usize,
    ) -> Result<Vec<u8>, Error> {
        let url = self.repository_url(&format!("blobs/{digest}"));
        self.endpoint
            .timed(async {
                let mut response = self.get(&url, None, None).await?;
                self.read_body(&mut response, what, limit).await
            })
            .await
    }

    /// Uploads a blob unless the repository already has it.
    pub(crate) async fn put_blob(&self, data: Vec<u8>, digest: &str) -> Result<(), Error> {
        let exists = self
            .endpoint
            .timed(async {
                self.endpoint
                    .oci()?
                    .blob_exists(&self.oci_ref, digest)
                    .await
                    .map_err(|e| self.oci_error(e, Some(digest)))
            })
            .await?;
        if exists {
            return Ok(());
        }
        self.endpoint
            .timed(async {
                self.endpoint
                    .oci()?
                    .push_blob(&self.oci_ref, data, digest)
                    .await
                    .map(drop)
                    .map_err(|e| self.oci_error(e, Some(digest)))
            })
            .await
    }

    pub(crate) async fn put_manifest(
        &self,
        tag: &str,
        body: Vec<u8>,
        media_type: &'static str,
    ) -> Result<(), Error> {
        let target = oci_client::Reference::with_tag(
            self.oci_ref.registry().to_owned(),
            self.repository.clone(),
            tag.to_owned(),
        );
        self.endpoint
            .timed(async {
                self.endpoint
                    .oci()?
                    .push_manifest_raw(&target, body, HeaderValue::from_static(media_type))
                    .await
                    .map(drop)
                    .map_err(|e| self.oci_error(e, None))
            })
            .await
    }

    /// `PUT /v2/<repository>/manifests/<reference>` made here rather than
    /// by oci-client, because the answer's `OCI-Subject` header matters:
    /// it says the registry indexed the manifest's subject itself (OCI
    /// distribution 1.1), so no fallback tag is needed. Returns whether it
    /// was there.
    pub(crate) async fn put_manifest_with_subject(
        &self,
        reference: &str,
        body: Vec<u8>,
        media_type: &str,
    ) -> Result<bool, Error> {
        let url = self.repository_url(&format!("manifests/{reference}"));
        self.endpoint
            .timed(async {
                let mut request = self
                    .endpoint
                    .http
                    .put(&url)
                    .header(CONTENT_TYPE, media_type)
                    .body(body);
                if let Some(authorization) = &self.authorization {
                    request = request.header(AUTHORIZATION, authorization.clone());
                }
                let mut response = request.send().await.map_err(|e| self.reqwest_error(&e))?;
                let status = response.status();
                if !status.is_success() {
                    let body = read_some(&mut response, MAX_ERROR_BODY).await;
                    return Err(self.status_error(status, &body, &url, None));
                }
                Ok(response.headers().contains_key("oci-subject"))
            })
            .await
    }

    fn unauthorized(&self, detail: String) -> Error {
        // A reused token may have expired early, or the registry may ask
        // for authentication differently now: ping and exchange it anew
        // next time.
        self.endpoint.lock_authorizations().remove(&self.key);
        self.endpoint.forget_challenge();
        if self.credentials_given {
            Error::CredentialsRejected {
                host: self.endpoint.host.clone(),
                repository: self.repository.clone(),
                detail,
            }
        } else {
            Error::AuthenticationRequired {
                host: self.endpoint.host.clone(),
                repository: self.repository.clone(),
            }
        }
    }

    /// Maps a non-200 answer. `manifest` names the manifest asked for, so a
    /// 404 says which one is unknown.
    fn status_error(
        &self,
        status: StatusCode,
        body: &[u8],
        url: &str,
        manifest: Option<&str>,
    ) -> Error {
        let envelope = serde_json::from_slice::<OciEnvelope>(body).ok();
        let detail = envelope
            .as_ref()
            .map(describe_envelope)
            .unwrap_or_else(|| short_text(body));
        let not_found = status == StatusCode::NOT_FOUND
            || envelope.as_ref().is_some_and(|e| {
                e.errors.iter().any(|e| {
                    e.code == OciErrorCode::ManifestUnknown
                        || (e.code == OciErrorCode::Other("UNKNOWN".to_owned())
                            && e.message.to_ascii_lowercase().contains("not found"))
                })
            });
        match status {
            StatusCode::UNAUTHORIZED => self.unauthorized(detail),
            StatusCode::FORBIDDEN => Error::AccessDenied {
                host: self.endpoint.host.clone(),
                repository: self.repository.clone(),
                detail,
            },
            _ if not_found => match manifest {
                Some(reference) => Error::ManifestUnknown {
                    reference: reference.to_owned(),
                    detail,
                },
                None => Error::HttpStatus {
                    host: self.endpoint.host.clone(),
                    repository: self.repository.clone(),
                    url: url.to_owned(),
                    status: status.as_u16(),
                    detail,
                },
            },
            _ => Error::HttpStatus {
                host: self.endpoint.host.clone(),
                repository: self.repository.clone(),
                url: url.to_owned(),
                status: status.as_u16(),
                detail,
            },
        }
    }

    fn reqwest_error(&self, err: &reqwest::Error) -> Error {
        classify_transport(&self.endpoint.host, self.endpoint.timeout, err)
    }

    fn io_error(&self, err: std::io::Error, what: &str) -> Error {
        if let Some(reqwest_err) = err
            .get_ref()
            .and_then(|e| e.downcast_ref::<reqwest::Error>())
        {
            return self.reqwest_error(reqwest_err);
        }
        Error::Transport {
            host: self.endpoint.host.clone(),
            message: format!("reading {what}: {err}"),
        }
    }

    /// Maps oci-client's errors onto ours; `blob` names the blob involved.
    pub(crate) fn oci_error(&self, err: OciDistributionError, blob: Option<&str>) -> Error {
        let registry = |message: String| Error::Registry {
            host: self.endpoint.host.clone(),
            repository: self.repository.clone(),
            message,
        };
        match err {
            OciDistributionError::RequestError(e) => self.reqwest_error(&e),
            OciDistributionError::IoError(e) => self.io_error(e, blob.unwrap_or("response")),
            OciDistributionError::UnauthorizedError { .. } => self.unauthorized(String::new()),
            OciDistributionError::AuthenticationFailure(reason) => self.unauthorized(format!(
                "token request refused: {}",
                short_text(reason.as_bytes())
            )),
            OciDistributionError::RegistryError { envelope, url } => {
                let blob_unknown = envelope
                    .errors
                    .iter()
                    .any(|e| e.code == OciErrorCode::BlobUnknown);
                let denied = envelope
                    .errors
                    .iter()
                    .any(|e| e.code == OciErrorCode::Denied);
                let detail = describe_envelope(&envelope);
                match blob {
                    Some(digest) if blob_unknown => Error::BlobUnknown {
                        host: self.endpoint.host.clone(),
                        repository: self.repository.clone(),
                        digest: digest.to_owned(),
                        detail,
                    },
                    _ if denied => Error::AccessDenied {
                        host: self.endpoint.host.clone(),
                        repository: self.repository.clone(),
                        detail,
                    },
                    _ => registry(format!("{url}: {detail}")),
                }
            }
            OciDistributionError::ServerError { code, url, message } => match (code, blob) {
                (401, _) => self.unauthorized(short_text(message.as_bytes())),
                (404, Some(digest)) => Error::BlobUnknown {
                    host: self.endpoint.host.clone(),
                    repository: self.repository.clone(),
                    digest: digest.to_owned(),
                    detail: short_text(message.as_bytes()),
                },
                _ => Error::HttpStatus {
                    host: self.endpoint.host.clone(),
                    repository: self.repository.clone(),
                    url,
                    status: code,
                    detail: short_text(message.as_bytes()),
                },
            },
            OciDistributionError::DigestError(
                oci_client::errors::DigestError::VerificationError { expected, actual },
            ) => Error::DigestMismatch {
                what: blob.map_or_else(|| "response".to_owned(), |d| format!("blob {d}")),
                expected,
                actual,
            },
            other => registry(other.to_string()),
        }
    }
}

pub(crate) struct FetchedManifest {
    pub(crate) body: Vec<u8>,
    pub(crate) content_type: String,
    pub(crate) digest_header: Option<String>,
}

fn header_value(text: &str) -> Option<HeaderValue> {
    let mut value = HeaderValue::from_str(text).ok()?;
    value.set_sensitive(true);
    Some(value)
}

/// Reads up to `limit` bytes of an error body; a failure leaves what was read.
async fn read_some(response: &mut reqwest::Response, limit: usize) -> Vec<u8> {
    let mut out = Vec::new();
    while out.len() < limit {
        match response.chunk().await {
            Ok(Some(chunk)) => out.extend_from_slice(&chunk[..chunk.len().min(limit - out.len())]),
            _ => break,
        }
    }
    out
}

fn describe_envelope(envelope: &OciEnvelope) -> String {
    envelope
        .errors
        .iter()
        .map(|e| {
            let code = match serde_json::to_value(&e.code) {
                Ok(serde_json::Value::String(code)) => code,
                _ => format!("{:?}", e.code),
            };
            if e.message.is_empty() {
                code
            } else {
                format!("{code}: {}", e.message)
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// A body or message shortened to one readable line.
fn short_text(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.chars().count() > 200 {
        format!("{}…", line.chars().take(200).collect::<String>())
    } else {
        line
    }
}

/// Names the cause of a failed request: time-out, refused connection, or
/// the innermost error (TLS, DNS, reset) in one line.
pub(crate) fn classify_transport(host: &str, timeout: Duration, err: &reqwest::Error) -> Error {
    if err.is_timeout() {
        return Error::TimedOut {
            host: host.to_owned(),
            timeout,
        };
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = err.source();
    let mut innermost = None;
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            match io.kind() {
                std::io::ErrorKind::ConnectionRefused => {
                    return Error::ConnectionRefused {
                        host: host.to_owned(),
                    };
                }
                std::io::ErrorKind::TimedOut => {
                    return Error::TimedOut {
                        host: host.to_owned(),
                        timeout,
                    };
                }
                _ => {}
            }
        }
        innermost = Some(cause.to_string());
        source = cause.source();
    }
    let message = match innermost {
        Some(cause) => format!("{err}: {cause}"),
        None => err.to_string(),
    };
    Error::Transport {
        host: host.to_owned(),
        message,
    }
}
