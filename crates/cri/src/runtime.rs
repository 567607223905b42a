//! The runtime-facing side: one HTTP/2 connection to the runtime's socket,
//! shared by every call.
//!
//! Calls go straight onto the connection from the task that makes them
//! (h2's sender is cheap to clone and safe to share, see
//! [`crate::exchange`]); there is no queue or worker task in between,
//! which a proxy that adds latency to every kubelet call cannot afford.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use h2::client::SendRequest;
use http::{Request, Response, Uri};
use http_body_util::{BodyExt as _, Full};
use tokio::net::UnixStream;
use tonic::Status;
use tonic::body::Body;

use crate::exchange::exchange;

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
/// HTTP/2 flow control windows and buffers, hyper's client defaults
/// (which criguard used before it spoke h2 directly): large enough that a
/// big answer (ListImages on a node with many images) is not held up by
/// WINDOW_UPDATE round trips.
const STREAM_WINDOW: u32 = 2 << 20;
const CONNECTION_WINDOW: u32 = 5 << 20;
const SEND_BUFFER: usize = 1 << 20;
const MAX_HEADER_LIST: u32 = 16 << 10;

/// The sender of one connection, and whether its connection has ended.
#[derive(Clone)]
struct Connection {
    sender: SendRequest<Bytes>,
    closed: Arc<AtomicBool>,
}

/// The container runtime behind the proxy.
///
/// The connection is made on first use and again after the runtime went
/// away (a restart of containerd, say): a call made while it is down fails
/// with `Unavailable`, the next one after it is back succeeds. Cloning
/// shares the connection.
#[derive(Clone)]
pub struct Runtime {
    socket: Arc<PathBuf>,
    connection: Arc<Mutex<Option<Connection>>>,
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

    fn current(&self) -> Option<Connection> {
        self.connection
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
            .filter(|connection| !connection.closed.load(Ordering::Acquire))
            .cloned()
    }

    async fn connected(&self) -> Result<Connection, String> {
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
            h2::client::Builder::new()
                .initial_window_size(STREAM_WINDOW)
                .initial_connection_window_size(CONNECTION_WINDOW)
                .max_send_buffer_size(SEND_BUFFER)
                .max_header_list_size(MAX_HEADER_LIST)
                .enable_push(false)
                .handshake::<_, Bytes>(stream)
                .await
                .map_err(|e| e.to_string())
        };
        let (sender, driver) = tokio::time::timeout(HANDSHAKE_TIMEOUT, connect)
            .await
            .map_err(|_| format!("no HTTP/2 handshake within {HANDSHAKE_TIMEOUT:?}"))??;
        let closed = Arc::new(AtomicBool::new(false));
        let ended = Arc::clone(&closed);
        tokio::spawn(async move {
            if let Err(e) = driver.await {
                tracing::debug!(error = %e, "the runtime connection ended");
            }
            ended.store(true, Ordering::Release);
        });
        let connection = Connection { sender, closed };
        *self
            .connection
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(connection.clone());
        Ok(connection)
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
        let connection = self.connected().await?;
        let mut sender = match connection.sender.ready().await {
            Ok(sender) => sender,
            Err(_) => {
                // The connection died since it was last used (the runtime
                // restarted, say) and nothing has been sent on it: marked
                // closed, so that this connects again.
                connection.closed.store(true, Ordering::Release);
                self.connected()
                    .await?
                    .sender
                    .ready()
                    .await
                    .map_err(|e| e.to_string())?
            }
        };
        let response = exchange(&mut sender, request).await?;
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
