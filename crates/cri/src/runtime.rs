//! The runtime-facing side: one HTTP/2 connection to the runtime's socket,
//! shared by every call.
//!
//! Calls go straight onto the connection (hyper's HTTP/2 sender is
//! cheap to clone and safe to share); there is no queue or worker task in
//! between, which a proxy that adds latency to every kubelet call cannot
//! afford.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, Uri};
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::UnixStream;
use tonic::Status;
use tonic::body::Body;

use crate::v1::{
    Image, ImageSpec, ImageStatusRequest, ImageStatusResponse, PodSandboxStatusRequest,
    PodSandboxStatusResponse,
};
use crate::wire::{frame, unary_message};

const IMAGE_STATUS: &str = "/runtime.v1.ImageService/ImageStatus";
const POD_SANDBOX_STATUS: &str = "/runtime.v1.RuntimeService/PodSandboxStatus";
/// The largest answer criguard reads to one of its own calls.
const OWN_ANSWER_LIMIT: usize = 4 << 20;
/// criguard's own calls to the runtime are bounded; forwarded calls are
/// not (the kubelet sets their deadlines, and event streams last for hours).
const OWN_CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Connecting to a unix socket is immediate or fails; a runtime that
/// accepts and then never speaks HTTP/2 must not hold calls forever.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The container runtime behind the proxy.
///
/// The connection is made on first use and again after the runtime went
/// away (a restart of containerd, say): a call made while it is down fails
/// with `Unavailable`, the next one after it is back succeeds. Cloning
/// shares the connection.
#[derive(Clone)]
pub struct Runtime {
    socket: Arc<PathBuf>,
    connection: Arc<Mutex<Option<SendRequest<Body>>>>,
    /// One connection attempt at a time; the others wait for its result.
    connecting: Arc<tokio::sync::Mutex<()>>,
}

impl Runtime {
    pub fn new(socket: &Path) -> Runtime {
        Runtime {
            socket: Arc::new(socket.to_owned()),
            connection: Arc::new(Mutex::new(None)),
            connecting: Arc::new(tokio::sync::Mutex::new(())),
        }
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    fn current(&self) -> Option<SendRequest<Body>> {
        self.connection
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
            .filter(|sender| !sender.is_closed())
            .cloned()
    }

    async fn sender(&self) -> Result<SendRequest<Body>, String> {
        if let Some(sender) = self.current() {
            return Ok(sender);
        }
        let _turn = self.connecting.lock().await;
        if let Some(sender) = self.current() {
            return Ok(sender);
        }
        let connect = async {
            let stream = UnixStream::connect(self.socket.as_path())
                .await
                .map_err(|e| e.to_string())?;
            hyper::client::conn::http2::Builder::new(TokioExecutor::new())
                .handshake::<_, Body>(TokioIo::new(stream))
                .await
                .map_err(|e| e.to_string())
        };
        let (sender, connection) = tokio::time::timeout(HANDSHAKE_TIMEOUT, connect)
            .await
            .map_err(|_| format!("no HTTP/2 handshake within {HANDSHAKE_TIMEOUT:?}"))??;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "the runtime connection ended");
            }
        });
        *self
            .connection
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(sender.clone());
        Ok(sender)
    }

    /// Sends `request` to the runtime as it is. `Err` means the runtime
    /// could not be reached; a gRPC error from the runtime is a response.
    pub(crate) async fn call(&self, mut request: Request<Body>) -> Result<Response<Body>, String> {
        // HTTP/2 needs a scheme and an authority; a request received over
        // HTTP/2 has them, but one built here may not.
        if request.uri().scheme().is_none() || request.uri().authority().is_none() {
            let path = request
                .uri()
                .path_and_query()
                .map_or("/", |p| p.as_str())
                .to_owned();
            *request.uri_mut() = Uri::builder()
                .scheme("http")
                .authority("localhost")
                .path_and_query(path)
                .build()
                .map_err(|e| e.to_string())?;
        }
        let mut sender = self.sender().await?;
        if sender.ready().await.is_err() {
            // The connection died since it was last used (the runtime
            // restarted, say) and nothing has been sent on it; the dead
            // sender now reports itself closed, so this connects again.
            sender = self.sender().await?;
            sender.ready().await.map_err(|e| e.to_string())?;
        }
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| e.to_string())?;
        Ok(response.map(Body::new))
    }

    /// The runtime's record of `image` (a name or an image ID), `None` when
    /// it has no such image.
    pub async fn image_status(&self, image: &str) -> Result<Option<Image>, Status> {
        let request = ImageStatusRequest {
            image: Some(ImageSpec {
                image: image.to_owned(),
                ..ImageSpec::default()
            }),
            verbose: false,
        };
        let response: ImageStatusResponse = self.own_call(IMAGE_STATUS, &request, None).await?;
        Ok(response.image)
    }

    /// The namespace of pod sandbox `id`, as the runtime recorded it when
    /// the sandbox was run; `None` when the runtime has no such sandbox.
    pub async fn pod_sandbox_namespace(&self, id: &str) -> Result<Option<String>, Status> {
        let request = PodSandboxStatusRequest {
            pod_sandbox_id: id.to_owned(),
            verbose: false,
        };
        match self
            .own_call::<_, PodSandboxStatusResponse>(POD_SANDBOX_STATUS, &request, None)
            .await
        {
            Ok(response) => Ok(response
                .status
                .and_then(|status| status.metadata)
                .map(|metadata| metadata.namespace)),
            Err(status) if status.code() == tonic::Code::NotFound => Ok(None),
            Err(status) => Err(status),
        }
    }

    /// One unary call of criguard's own, bounded by [`OWN_CALL_TIMEOUT`].
    /// `containerd_namespace` is sent as containerd's namespace header,
    /// which its own services (not the CRI) require.
    pub(crate) async fn own_call<Q: prost::Message, A: prost::Message + Default>(
        &self,
        path: &str,
        request: &Q,
        containerd_namespace: Option<&str>,
    ) -> Result<A, Status> {
        let call = self.own_call_unbounded(path, request, containerd_namespace);
        tokio::time::timeout(OWN_CALL_TIMEOUT, call)
            .await
            .map_err(|_| {
                Status::deadline_exceeded(format!(
                    "criguard: the runtime at {} did not answer {path} within {OWN_CALL_TIMEOUT:?}",
                    self.socket.display()
                ))
            })?
    }

    async fn own_call_unbounded<Q: prost::Message, A: prost::Message + Default>(
        &self,
        path: &str,
        request: &Q,
        containerd_namespace: Option<&str>,
    ) -> Result<A, Status> {
        let message = request.encode_to_vec();
        let mut request = Request::post(format!("http://localhost{path}"))
            .header(http::header::CONTENT_TYPE, "application/grpc")
            .header(http::header::TE, "trailers");
        if let Some(namespace) = containerd_namespace {
            request = request.header("containerd-namespace", namespace);
        }
        let request = request
            .body(Body::new(Full::new(frame(&message))))
            .map_err(|e| Status::internal(e.to_string()))?;
        let response = self
            .call(request)
            .await
            .map_err(|why| self.unavailable(&why))?;
        let (parts, body) = response.into_parts();
        if let Some(status) = Status::from_header_map(&parts.headers)
            && status.code() != tonic::Code::Ok
        {
            return Err(status);
        }
        // criguard's own answers are small; a runtime that sends more is
        // not believed.
        let collected = http_body_util::Limited::new(body, OWN_ANSWER_LIMIT)
            .collect()
            .await
            .map_err(|e| {
                Status::internal(format!("reading the runtime's answer to {path}: {e}"))
            })?;
        if let Some(status) = collected.trailers().and_then(Status::from_header_map)
            && status.code() != tonic::Code::Ok
        {
            return Err(status);
        }
        let data: Bytes = collected.to_bytes();
        let message = unary_message(&data).map_err(|e| Status::internal(e.to_string()))?;
        A::decode(message).map_err(|e| Status::internal(format!("malformed answer to {path}: {e}")))
    }

    pub(crate) fn unavailable(&self, why: &str) -> Status {
        Status::unavailable(format!(
            "criguard: the container runtime at {} is unavailable: {why}",
            self.socket.display()
        ))
    }
}
