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
use prost::Message as _;
use tokio::net::UnixStream;
use tonic::Status;
use tonic::body::Body;

use crate::v1::{Image, ImageSpec, ImageStatusRequest, ImageStatusResponse};
use crate::wire::{frame, unary_message};

const IMAGE_STATUS: &str = "/runtime.v1.ImageService/ImageStatus";
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
        tokio::time::timeout(OWN_CALL_TIMEOUT, self.image_status_unbounded(image))
            .await
            .map_err(|_| {
                Status::deadline_exceeded(format!(
                    "criguard: the runtime at {} did not answer ImageStatus within {OWN_CALL_TIMEOUT:?}",
                    self.socket.display()
                ))
            })?
    }

    async fn image_status_unbounded(&self, image: &str) -> Result<Option<Image>, Status> {
        let message = ImageStatusRequest {
            image: Some(ImageSpec {
                image: image.to_owned(),
                ..ImageSpec::default()
            }),
            verbose: false,
        }
        .encode_to_vec();
        let request = Request::post(format!("http://localhost{IMAGE_STATUS}"))
            .header(http::header::CONTENT_TYPE, "application/grpc")
            .header(http::header::TE, "trailers")
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
        let collected = body.collect().await?;
        if let Some(status) = collected.trailers().and_then(Status::from_header_map)
            && status.code() != tonic::Code::Ok
        {
            return Err(status);
        }
        let data: Bytes = collected.to_bytes();
        let message = unary_message(&data).map_err(|e| Status::internal(e.to_string()))?;
        let decoded = ImageStatusResponse::decode(message)
            .map_err(|e| Status::internal(format!("malformed ImageStatusResponse: {e}")))?;
        Ok(decoded.image)
    }

    pub(crate) fn unavailable(&self, why: &str) -> Status {
        Status::unavailable(format!(
            "criguard: the container runtime at {} is unavailable: {why}",
            self.socket.display()
        ))
    }
}
