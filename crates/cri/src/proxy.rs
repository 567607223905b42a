//! Forwarding, and the two calls that are checked before they are.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, Request, Response};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use prost::Message as _;
use tokio::net::UnixListener;
use tonic::Status;
use tonic::body::Body;

use crate::runtime::Runtime;
use crate::v1::{CreateContainerRequest, PullImageRequest, PullImageResponse};
use crate::wire::{frame, replace_image_name, unary_message};

pub const PULL_IMAGE: &str = "/runtime.v1.ImageService/PullImage";
pub const CREATE_CONTAINER: &str = "/runtime.v1.RuntimeService/CreateContainer";

/// The largest checked message criguard reads. The kubelet's CRI client
/// sends at most 16 MiB; a PullImage or CreateContainer request is a few
/// kilobytes.
pub const MAX_CHECKED_MESSAGE: usize = 16 << 20;

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
    /// kubelet will name in CreateContainer.
    fn pulled(&self, pull: Self::Pull, response: &PullImageResponse);

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
    gate: G,
    runtime: Runtime,
}

impl<G: Gate> Proxy<G> {
    pub fn new(gate: G, runtime: Runtime) -> Proxy<G> {
        Proxy { gate, runtime }
    }

    pub fn gate(&self) -> &G {
        &self.gate
    }

    /// Answers one call. Never fails: every problem becomes a gRPC status.
    pub async fn handle(&self, request: Request<Incoming>) -> Response<Body> {
        match request.uri().path() {
            // Boxed: the gate's futures are large, and the common path
            // (forwarding) should not carry their size.
            PULL_IMAGE => Box::pin(self.pull(request)).await,
            CREATE_CONTAINER => Box::pin(self.create(request)).await,
            _ => {
                let started = Instant::now();
                let method = request.uri().path().to_owned();
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
        let (mut parts, body) = request.into_parts();
        let body = match read_unary(body, "PullImage").await {
            Ok(body) => body,
            Err(status) => return status.into_http(),
        };
        let plan = match unary_message(&body)
            .map_err(|e| Status::invalid_argument(format!("criguard: PullImage: {e}")))
            .and_then(|message| {
                PullImageRequest::decode(message).map_err(|e| {
                    Status::invalid_argument(format!("criguard: malformed PullImageRequest: {e}"))
                })
            }) {
            Ok(decoded) => Box::pin(self.gate.check_pull(decoded, &self.runtime)).await,
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
            self.gate.pulled(pull, &answer);
        }
        let body = Full::new(data).with_trailers(async move { trailers.map(Ok) });
        Response::from_parts(parts, Body::new(body))
    }

    async fn create(&self, request: Request<Incoming>) -> Response<Body> {
        let (parts, body) = request.into_parts();
        let body = match read_unary(body, "CreateContainer").await {
            Ok(body) => body,
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
        let checked = match decoded {
            Ok(decoded) => Box::pin(self.gate.check_create(decoded, &self.runtime)).await,
            Err(status) => Err(status),
        };
        match checked {
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
        .max_concurrent_streams(None)
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

/// The whole body of a unary call, bounded.
async fn read_unary(body: Incoming, method: &str) -> Result<Bytes, Status> {
    match Limited::new(body, MAX_CHECKED_MESSAGE + 5).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) => Err(Status::invalid_argument(format!(
            "criguard: reading the {method} request: {e}"
        ))),
    }
}

fn full(bytes: Bytes) -> Body {
    Body::new(Full::new(bytes))
}

fn grpc_status(headers: &HeaderMap) -> Option<i32> {
    headers.get("grpc-status")?.to_str().ok()?.parse().ok()
}
