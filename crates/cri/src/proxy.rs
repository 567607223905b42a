//! Forwarding, the two calls that are checked before they are, and the
//! calls refused outright (see [`crate::methods`]).

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, Request, Response, Uri};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use prost::Message as _;
use tokio::net::UnixListener;
use tonic::Status;
use tonic::body::Body;

use crate::deadline::{grpc_timeout, grpc_timeout_value, within_deadline};
use crate::methods::{Handling, Methods, Route};
use crate::runtime::Runtime;
use crate::v1::{CreateContainerRequest, PullImageRequest, PullImageResponse};
use crate::wire::{frame, replace_image_name, unary_message};

pub const PULL_IMAGE: &str = "/runtime.v1.ImageService/PullImage";
pub const CREATE_CONTAINER: &str = "/runtime.v1.RuntimeService/CreateContainer";

/// The largest checked message criguard reads. The kubelet's CRI client
/// sends at most 16 MiB; a PullImage or CreateContainer request is a few
/// kilobytes.
pub const MAX_CHECKED_MESSAGE: usize = 16 << 20;

/// How many bytes of checked requests may be held at once, across every
/// connection: a local client opening many streams of 16 MiB each must
/// not make criguard hold gigabytes. Checks beyond it wait for room (and
/// so, under a kubelet deadline, fail closed).
pub const CHECKED_BYTES_IN_FLIGHT: usize = 64 << 20;
/// Permits of the in-flight budget are counted in these units.
const BUDGET_UNIT: usize = 1024;
/// Streams one connection may have open at once. The kubelet multiplexes
/// every call on one connection, long-lived event streams included; this
/// is far above what it uses and bounds what one client can hold open.
const MAX_STREAMS_PER_CONNECTION: u32 = 1024;

/// What the gate says about a pull that may go on.
pub struct PullPlan<T> {
    /// The name to pull instead of the kubelet's (`repo@sha256:…`, the
    /// digest that was verified), or `None` to forward the request as is.
    pub pin: Option<String>,
    /// Handed back to [`Gate::pulled`] with the runtime's answer.
    pub pull: T,
}

/// How a forwarded call ended, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForwardOutcome {
    /// The runtime answered (whatever its gRPC status).
    Answered,
    /// The runtime could not be reached.
    Unavailable,
}

/// The decisions the proxy asks for. Implemented by the daemon.
pub trait Gate: Send + Sync + 'static {
    type Pull: Send + 'static;

    /// May this pull go on, and pinned to what? An `Err` is returned to
    /// the kubelet as it is.
    fn check_pull(
        &self,
        request: PullImageRequest,
        runtime: &Runtime,
    ) -> impl Future<Output = Result<PullPlan<Self::Pull>, Status>> + Send;

    /// The runtime pulled: `response.image_ref` is the image ID the
    /// kubelet will name in CreateContainer. The kubelet gets the answer
    /// once this completes, so what it does to the runtime (naming a
    /// pinned pull, say) is there before the kubelet's next call.
    fn pulled(
        &self,
        pull: Self::Pull,
        response: &PullImageResponse,
        runtime: &Runtime,
    ) -> impl Future<Output = ()> + Send;

    /// May this container be created (its image and its image volumes)?
    fn check_create(
        &self,
        request: CreateContainerRequest,
        runtime: &Runtime,
    ) -> impl Future<Output = Result<(), Status>> + Send;

    /// A call was forwarded without a check; `elapsed` runs until the
    /// runtime's response headers.
    fn forwarded(&self, method: &str, elapsed: Duration, outcome: ForwardOutcome);
}

/// The proxy for one runtime.
pub struct Proxy<G> {
    /// Shared with the checks, which run as tasks of their own (see
    /// [`crate::deadline`]).
    gate: Arc<G>,
    runtime: Runtime,
    methods: Methods,
    /// [`CHECKED_BYTES_IN_FLIGHT`], in [`BUDGET_UNIT`]s.
    checked_bytes: Arc<tokio::sync::Semaphore>,
}

impl<G: Gate> Proxy<G> {
    /// A proxy that forwards only the methods criguard knows to be safe.
    pub fn new(gate: G, runtime: Runtime) -> Proxy<G> {
        Proxy {
            gate: Arc::new(gate),
            runtime,
            methods: Methods::default(),
            checked_bytes: Arc::new(tokio::sync::Semaphore::new(
                CHECKED_BYTES_IN_FLIGHT / BUDGET_UNIT,
            )),
        }
    }

    /// `self`, forwarding also what `methods` adds to the table (the
    /// daemon's `forward_methods`).
    pub fn with_methods(self, methods: Methods) -> Proxy<G> {
        Proxy { methods, ..self }
    }

    pub fn gate(&self) -> &G {
        &self.gate
    }

    /// Answers one call. Never fails: every problem becomes a gRPC status.
    pub async fn handle(&self, request: Request<Incoming>) -> Response<Body> {
        let uri = request.uri();
        let path = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
        let Route { method, handling } = self.methods.route(path);
        if let Handling::Refuse(message) = handling {
            tracing::warn!("call refused: {message}");
            return Status::unimplemented(message).into_http();
        }
        let request = match addressed_to(request, &method) {
            Ok(request) => request,
            Err(status) => return status.into_http(),
        };
        match handling {
            // Boxed: the gate's futures are large, and the common path
            // (forwarding) should not carry their size.
            Handling::Pull => Box::pin(self.pull(request)).await,
            Handling::Create => Box::pin(self.create(request)).await,
            // (Refusals were answered above.)
            Handling::Forward | Handling::Refuse(_) => {
                let started = Instant::now();
                let (response, outcome) = self.forward(request.map(Body::new)).await;
                self.gate.forwarded(&method, started.elapsed(), outcome);
                response
            }
        }
    }

    async fn forward(&self, request: Request<Body>) -> (Response<Body>, ForwardOutcome) {
        match self.runtime.call(request).await {
            Ok(response) => (response, ForwardOutcome::Answered),
            Err(why) => (
                self.runtime.unavailable(&why).into_http(),
                ForwardOutcome::Unavailable,
            ),
        }
    }

    async fn pull(&self, request: Request<Incoming>) -> Response<Body> {
        let started = tokio::time::Instant::now();
        let (mut parts, body) = request.into_parts();
        let deadline = grpc_timeout(&parts.headers);
        let (body, _held) = match read_unary(body, "PullImage", &self.checked_bytes).await {
            Ok(read) => read,
            Err(status) => return status.into_http(),
        };
        let plan = match unary_message(&body)
            .map_err(|e| Status::invalid_argument(format!("criguard: PullImage: {e}")))
            .and_then(|message| {
                PullImageRequest::decode(message).map_err(|e| {
                    Status::invalid_argument(format!("criguard: malformed PullImageRequest: {e}"))
                })
            }) {
            Ok(decoded) => {
                let gate = Arc::clone(&self.gate);
                let runtime = self.runtime.clone();
                let check = async move { gate.check_pull(decoded, &runtime).await };
                within_deadline(deadline, started, "pull", Box::pin(check)).await
            }
            Err(status) => return status.into_http(),
        };
        let plan = match plan {
            Ok(plan) => plan,
            Err(status) => return status.into_http(),
        };
        let body = match &plan.pin {
            None => body,
            Some(image) => match unary_message(&body).and_then(|m| replace_image_name(m, image)) {
                Ok(edited) => {
                    parts.headers.remove(http::header::CONTENT_LENGTH);
                    frame(&edited)
                }
                Err(e) => {
                    return Status::internal(format!(
                        "criguard: cannot pin the pull to {image}: {e}"
                    ))
                    .into_http();
                }
            },
        };
        if let Err(status) = pass_on_deadline(&mut parts.headers, deadline, started) {
            return status.into_http();
        }
        let (response, _) = self.forward(Request::from_parts(parts, full(body))).await;
        self.observe_pull(response, plan.pull).await
    }

    /// Reads the runtime's answer to a pull, so that the image ID it
    /// names can be tied to the verified digest, and passes it on.
    async fn observe_pull(&self, response: Response<Body>, pull: G::Pull) -> Response<Body> {
        let (parts, body) = response.into_parts();
        if grpc_status(&parts.headers).is_some() {
            // A trailers-only answer: an error, nothing was pulled.
            return Response::from_parts(parts, body);
        }
        let collected = match body.collect().await {
            Ok(collected) => collected,
            Err(status) => return status.into_http(),
        };
        let trailers = collected.trailers().cloned();
        let data = collected.to_bytes();
        if trailers.as_ref().and_then(grpc_status) == Some(0)
            && let Ok(message) = unary_message(&data)
            && let Ok(answer) = PullImageResponse::decode(message)
        {
            self.gate.pulled(pull, &answer, &self.runtime).await;
        }
        let body = Full::new(data).with_trailers(async move { trailers.map(Ok) });
        Response::from_parts(parts, Body::new(body))
    }

    async fn create(&self, request: Request<Incoming>) -> Response<Body> {
        let started = tokio::time::Instant::now();
        let (mut parts, body) = request.into_parts();
        let deadline = grpc_timeout(&parts.headers);
        let (body, _held) = match read_unary(body, "CreateContainer", &self.checked_bytes).await {
            Ok(read) => read,
            Err(status) => return status.into_http(),
        };
        let decoded = unary_message(&body)
            .map_err(|e| Status::invalid_argument(format!("criguard: CreateContainer: {e}")))
            .and_then(|message| {
                CreateContainerRequest::decode(message).map_err(|e| {
                    Status::invalid_argument(format!(
                        "criguard: malformed CreateContainerRequest: {e}"
                    ))
                })
            });
        let checked = match decoded.and_then(refuse_restore) {
            Ok(decoded) => {
                let gate = Arc::clone(&self.gate);
                let runtime = self.runtime.clone();
                let check = async move { gate.check_create(decoded, &runtime).await };
                within_deadline(deadline, started, "create", Box::pin(check)).await
            }
            Err(status) => Err(status),
        };
        match checked.and_then(|()| pass_on_deadline(&mut parts.headers, deadline, started)) {
            Ok(()) => self.forward(Request::from_parts(parts, full(body))).await.0,
            Err(status) => status.into_http(),
        }
    }
}

/// Serves the proxy on `listener` until `shutdown` completes, then stops
/// accepting, tells every connection to finish (HTTP/2 GOAWAY: no new
/// calls, the ones under way complete, answers included) and waits up to
/// `grace` for them, so that a pull that was verified reaches the kubelet.
/// Each connection is HTTP/2 with prior knowledge, as gRPC clients speak it.
pub async fn serve<G: Gate>(
    listener: UnixListener,
    proxy: Arc<Proxy<G>>,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
) {
    let (stopping, stop) = tokio::sync::watch::channel(false);
    let mut connections = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            () = &mut shutdown => break,
            // Finished connections are reaped as they end.
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors, say: keep serving the
                    // connections there are, and try again shortly.
                    tracing::warn!(error = %e, "accepting a CRI connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        connections.spawn(connection(stream, Arc::clone(&proxy), stop.clone()));
    }
    drop(listener);
    let _ = stopping.send(true);
    let finished = tokio::time::timeout(grace, async {
        while connections.join_next().await.is_some() {}
    });
    if finished.await.is_err() {
        tracing::warn!(
            connections = connections.len(),
            "CRI connections still busy at shutdown were cut off"
        );
    }
}

/// One kubelet connection, until it ends or `stop` says to finish.
///
/// Any gRPC client is served, as containerd serves it, whatever it sends
/// as `:authority`: over a unix socket gRPC's C core (Python's grpcio)
/// sends the socket's path percent-encoded, grpc-java the path itself,
/// neither a URI authority. h2's server resets such a stream before hyper
/// sees it and neither offers an option, so the build uses a patched h2
/// (`vendor/README.md`: the one place h2 reads an incoming authority): one
/// that is no URI authority but a valid field value, as grpc-go requires,
/// is left out of the request's URI. The HTTP/2 layer is the right one: it
/// is where the authority is refused, and the bytes cannot be rewritten
/// before it without decoding HPACK. Such a call reaches the runtime with
/// an authority all the same: [`Runtime::call`] gives a URI without one
/// `localhost`.
async fn connection<G: Gate>(
    stream: tokio::net::UnixStream,
    proxy: Arc<Proxy<G>>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let service = hyper::service::service_fn(move |request| {
        let proxy = Arc::clone(&proxy);
        async move { Ok::<_, Infallible>(proxy.handle(request).await) }
    });
    let connection = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
        .max_concurrent_streams(MAX_STREAMS_PER_CONNECTION)
        .serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);
    let ended = tokio::select! {
        ended = connection.as_mut() => ended,
        _ = stop.changed() => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(e) = ended {
        tracing::debug!(error = %e, "CRI connection ended");
    }
}

/// `request` with `:path` set to `method`, the canonical name criguard
/// decided on, so that the runtime cannot read the call as another method
/// than criguard did (a query string, a missing `/`).
fn addressed_to<B>(request: Request<B>, method: &str) -> Result<Request<B>, Status> {
    // The kubelet's calls are addressed canonically already: nothing to
    // rebuild on the path every forwarded call takes.
    if request.uri().path_and_query().map(|p| p.as_str()) == Some(method) {
        return Ok(request);
    }
    let (mut parts, body) = request.into_parts();
    let mut uri = std::mem::take(&mut parts.uri).into_parts();
    uri.path_and_query =
        Some(method.parse().map_err(|e| {
            Status::internal(format!("criguard: {method:?} as a request path: {e}"))
        })?);
    parts.uri = Uri::from_parts(uri)
        .map_err(|e| Status::internal(format!("criguard: addressing {method}: {e}")))?;
    Ok(Request::from_parts(parts, body))
}

/// Refuses a create that restores a container from a checkpoint archive.
///
/// containerd 2.x and CRI-O take a container image that names a file on
/// the node for a checkpoint archive: they import it and run the image it
/// was taken from (`rootfsImageRef`/`rootfsImageName` in the archive's
/// `config.dump`), pulling that image themselves if it is missing. The
/// request shows none of this, so criguard could only check the archive's
/// name. A file is recognised when the name starts with `/` or `.`, which
/// no image reference or image ID does. A relative path such as
/// `var/lib/x.tar` also parses as a reference and is checked as one (and
/// fails unless the policy admits `docker.io/var/lib/x.tar`).
///
/// Not caught: a checkpoint stored as an OCI image in a registry. Nothing
/// in the request marks it; it is checked as the image it is named as,
/// and passes only if that image's signatures do, but the base image
/// inside it is not checked.
fn refuse_restore(request: CreateContainerRequest) -> Result<CreateContainerRequest, Status> {
    let config = request.config.as_ref();
    let file = config.and_then(|c| c.image.as_ref()).and_then(|spec| {
        [&spec.image, &spec.user_specified_image, &spec.image_ref]
            .into_iter()
            .find(|name| name.starts_with(['/', '.']))
    });
    match file {
        None => Ok(request),
        Some(file) => {
            let container = config
                .and_then(|c| c.metadata.as_ref())
                .map_or("", |m| m.name.as_str());
            Err(Status::unimplemented(format!(
                "criguard: container {container:?}: the image {file:?} is a file, a checkpoint \
                 archive to restore from; criguard cannot check the image a checkpoint was \
                 taken from, so it does not create containers from one"
            )))
        }
    }
}

/// The runtime gets what is left of the caller's deadline, not all of it
/// again: the check took some.
fn pass_on_deadline(
    headers: &mut HeaderMap,
    deadline: Option<Duration>,
    started: tokio::time::Instant,
) -> Result<(), Status> {
    let Some(deadline) = deadline else {
        return Ok(());
    };
    let left = deadline.saturating_sub(started.elapsed());
    if left.is_zero() {
        return Err(Status::deadline_exceeded(
            "criguard: the caller's deadline passed during the signature check",
        ));
    }
    if let Ok(value) = grpc_timeout_value(left).parse() {
        headers.insert("grpc-timeout", value);
    }
    Ok(())
}

/// The whole body of a unary call, bounded by [`MAX_CHECKED_MESSAGE`],
/// and its share of the in-flight budget, held until the caller drops it.
async fn read_unary(
    mut body: Incoming,
    method: &str,
    budget: &Arc<tokio::sync::Semaphore>,
) -> Result<(Bytes, tokio::sync::OwnedSemaphorePermit), Status> {
    let too_large = || {
        Status::invalid_argument(format!(
            "criguard: reading the {method} request: more than {} bytes",
            MAX_CHECKED_MESSAGE + 5
        ))
    };
    let mut held = Arc::clone(budget)
        .acquire_owned()
        .await
        .map_err(|_| Status::unavailable("criguard is shutting down"))?;
    let mut data = bytes::BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            Status::invalid_argument(format!("criguard: reading the {method} request: {e}"))
        })?;
        let Ok(chunk) = frame.into_data() else {
            continue;
        };
        if data.len() + chunk.len() > MAX_CHECKED_MESSAGE + 5 {
            return Err(too_large());
        }
        data.extend_from_slice(&chunk);
        let wanted = u32::try_from(data.len().div_ceil(BUDGET_UNIT)).map_err(|_| too_large())?;
        if wanted > held.num_permits() as u32 {
            let more = Arc::clone(budget)
                .acquire_many_owned(wanted - held.num_permits() as u32)
                .await
                .map_err(|_| Status::unavailable("criguard is shutting down"))?;
            held.merge(more);
        }
    }
    Ok((data.freeze(), held))
}

fn full(bytes: Bytes) -> Body {
    Body::new(Full::new(bytes))
}

fn grpc_status(headers: &HeaderMap) -> Option<i32> {
    headers.get("grpc-status")?.to_str().ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v1::{ContainerConfig, ContainerMetadata, ImageSpec};

    fn create(spec: ImageSpec) -> CreateContainerRequest {
        CreateContainerRequest {
            config: Some(ContainerConfig {
                metadata: Some(ContainerMetadata {
                    name: "app".to_owned(),
                    attempt: 0,
                }),
                image: Some(spec),
                mounts: Vec::new(),
            }),
            ..CreateContainerRequest::default()
        }
    }

    #[test]
    fn a_create_from_a_checkpoint_archive_is_refused() {
        for spec in [
            ImageSpec {
                image: "/var/lib/kubelet/checkpoints/c.tar".to_owned(),
                ..ImageSpec::default()
            },
            ImageSpec {
                image: "sha256:abc".to_owned(),
                user_specified_image: "./c.tar".to_owned(),
                ..ImageSpec::default()
            },
            ImageSpec {
                image_ref: "/c.tar".to_owned(),
                ..ImageSpec::default()
            },
        ] {
            let status = refuse_restore(create(spec.clone())).err();
            let status = status.unwrap_or_else(|| panic!("{spec:?} is not refused"));
            assert_eq!(status.code(), tonic::Code::Unimplemented);
            assert!(
                status
                    .message()
                    .starts_with("criguard: container \"app\": the image"),
                "{}",
                status.message()
            );
        }
        for spec in [
            ImageSpec {
                image: "sha256:abc".to_owned(),
                user_specified_image: "registry.example/app:v1".to_owned(),
                image_ref: String::new(),
            },
            ImageSpec::default(),
        ] {
            assert!(refuse_restore(create(spec)).is_ok());
        }
        assert!(refuse_restore(CreateContainerRequest::default()).is_ok());
    }

    #[test]
    fn forwarded_calls_are_addressed_to_the_canonical_method() {
        let method = "/runtime.v1.ImageService/PullImage";
        for (uri, authority) in [
            (
                "http://localhost/runtime.v1.ImageService/PullImage?x=1",
                Some("localhost"),
            ),
            ("/runtime.v1.ImageService/PullImage?x=1", None),
        ] {
            let request = Request::post(uri).body(()).map_err(|e| e.to_string());
            let addressed = request
                .and_then(|r| addressed_to(r, method).map_err(|s| s.to_string()))
                .unwrap_or_else(|e| panic!("{uri}: {e}"));
            let uri = addressed.uri();
            assert_eq!(uri.path_and_query().map(|p| p.as_str()), Some(method));
            assert_eq!(uri.authority().map(|a| a.as_str()), authority);
        }
    }
}
