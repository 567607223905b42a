//! A CRI runtime stand-in inside the test process, for what a real
//! containerd cannot show here: CreateContainer needs a running sandbox
//! (CNI, runc), and "the runtime received exactly these bytes" needs a
//! server that looks at bytes rather than decoded messages.
//!
//! It speaks raw gRPC over HTTP/2 on a unix socket: every path is accepted,
//! known method or not, every call is recorded byte for byte, and each path
//! answers with canned message bytes or a canned error. It runs its own
//! tokio runtime on its own thread, so sync and async tests alike can use
//! it.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::fs;
use std::os::unix::net::UnixListener as StdUnixListener;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::thread::{self, JoinHandle};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response};
use http_body::{Body, Frame};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tempfile::TempDir;
use tokio::net::UnixListener;
use tokio::sync::oneshot;

use crate::grpc::{self, GRPC_OK};

/// One call as the fake runtime received it.
#[derive(Debug, Clone)]
pub struct RecordedCall {
    /// `/package.Service/Method`.
    pub path: String,
    /// `:path` as received, query included.
    pub path_and_query: String,
    pub headers: HeaderMap,
    /// The request body exactly as received, 5-byte frame headers included.
    pub body: Vec<u8>,
}

impl RecordedCall {
    /// The request messages without frame headers; panics when the body is
    /// not well framed.
    pub fn messages(&self) -> Vec<Vec<u8>> {
        grpc::unframe(&self.body)
    }

    /// The one message of a unary call, decoded as `M`.
    pub fn decode<M: prost::Message + Default>(&self) -> M {
        let messages = self.messages();
        assert_eq!(
            messages.len(),
            1,
            "{} carried {} messages, not one",
            self.path,
            messages.len()
        );
        grpc::decode(&messages[0])
    }
}

#[derive(Debug, Clone)]
enum Reply {
    Messages(Vec<Vec<u8>>),
    Error { code: i32, message: String },
}

#[derive(Debug, Default)]
struct State {
    calls: Vec<RecordedCall>,
    replies: HashMap<String, Reply>,
    /// How long to wait before answering a path (a pull that takes time).
    delays: HashMap<String, std::time::Duration>,
}

type Shared = Arc<Mutex<State>>;

fn lock(state: &Shared) -> MutexGuard<'_, State> {
    // A panicking test thread must not hide the calls from the next assert.
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

#[derive(Debug)]
struct Server {
    shutdown: oneshot::Sender<()>,
    thread: JoinHandle<()>,
}

/// A fake CRI runtime on a unix socket in its own temp dir. Calls and
/// configured replies survive [`FakeRuntime::stop`] and
/// [`FakeRuntime::start_again`].
#[derive(Debug)]
pub struct FakeRuntime {
    socket: PathBuf,
    state: Shared,
    server: Option<Server>,
    _dir: TempDir,
}

impl FakeRuntime {
    /// Starts serving on `<tempdir>/runtime.sock`. Unconfigured paths answer
    /// one empty message and `grpc-status: 0`.
    pub fn start() -> FakeRuntime {
        let dir = tempfile::Builder::new()
            .prefix("criguard-fake-runtime-")
            .tempdir()
            .expect("creating the fake runtime's temp dir");
        let mut runtime = FakeRuntime {
            socket: dir.path().join("runtime.sock"),
            state: Shared::default(),
            server: None,
            _dir: dir,
        };
        runtime.start_again();
        runtime
    }

    /// The unix socket the runtime listens on (while running).
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    pub fn is_running(&self) -> bool {
        self.server.is_some()
    }

    /// Every call received so far, in arrival order.
    pub fn calls(&self) -> Vec<RecordedCall> {
        lock(&self.state).calls.clone()
    }

    /// The calls received so far on `path`.
    pub fn calls_to(&self, path: &str) -> Vec<RecordedCall> {
        lock(&self.state)
            .calls
            .iter()
            .filter(|c| c.path == path)
            .cloned()
            .collect()
    }

    pub fn clear_calls(&self) {
        lock(&self.state).calls.clear();
    }

    /// Answers calls to `path` with `messages` (protobuf bytes), each in its
    /// own gRPC frame, then `grpc-status: 0`. Several messages make a
    /// server-streaming reply; none makes an empty stream.
    pub fn respond(&self, path: &str, messages: Vec<Vec<u8>>) {
        lock(&self.state)
            .replies
            .insert(path.to_string(), Reply::Messages(messages));
    }

    /// Answers calls to `path` with gRPC status `code` and `message`, as a
    /// trailers-only response (what grpc-go and tonic send for errors).
    /// Answers calls to `path` only after `delay`, as a slow pull would.
    pub fn delay(&self, path: &str, delay: std::time::Duration) {
        lock(&self.state).delays.insert(path.to_string(), delay);
    }

    pub fn fail(&self, path: &str, code: i32, message: &str) {
        lock(&self.state).replies.insert(
            path.to_string(),
            Reply::Error {
                code,
                message: message.to_string(),
            },
        );
    }

    /// Stops listening, drops every open connection and removes the socket,
    /// as a runtime that went away would. A no-op when not running.
    pub fn stop(&mut self) {
        if let Some(server) = self.server.take() {
            // An error means the server thread already ended.
            let _ = server.shutdown.send(());
            let joined = server.thread.join();
            // Re-raising while already unwinding (Drop in a failed test)
            // would abort the whole test binary.
            if let Err(e) = joined
                && !thread::panicking()
            {
                std::panic::resume_unwind(e);
            }
        }
        let _ = fs::remove_file(&self.socket);
    }

    /// Serves again on the same socket, keeping calls and replies.
    pub fn start_again(&mut self) {
        self.stop();
        let listener = StdUnixListener::bind(&self.socket).unwrap_or_else(|e| {
            panic!("binding the fake runtime to {}: {e}", self.socket.display())
        });
        listener
            .set_nonblocking(true)
            .expect("making the fake runtime's listener non-blocking");
        let (shutdown, shutdown_rx) = oneshot::channel();
        let state = self.state.clone();
        let thread = thread::Builder::new()
            .name("fake-cri-runtime".to_string())
            .spawn(move || {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("building the fake runtime's tokio runtime")
                    .block_on(serve(listener, state, shutdown_rx));
                // Dropping the runtime here cancels the connection tasks.
            })
            .expect("spawning the fake runtime's thread");
        self.server = Some(Server { shutdown, thread });
    }
}

impl Drop for FakeRuntime {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn serve(listener: StdUnixListener, state: Shared, mut shutdown: oneshot::Receiver<()>) {
    let listener =
        UnixListener::from_std(listener).expect("registering the fake runtime's listener");
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let state = state.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        handle(state.clone(), request)
                    });
                    // A client that hangs up mid-call is not the fake's failure.
                    let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        }
    }
}

async fn handle(state: Shared, request: Request<Incoming>) -> Result<Response<Frames>, Infallible> {
    let (parts, body) = request.into_parts();
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes().to_vec(),
        Err(_) => {
            return Ok(error_response(
                13,
                "fake runtime: reading the request failed",
            ));
        }
    };
    let path = parts.uri.path().to_string();
    let path_and_query = parts
        .uri
        .path_and_query()
        .map_or_else(|| path.clone(), |p| p.as_str().to_owned());
    let reply = {
        let mut state = lock(&state);
        state.calls.push(RecordedCall {
            path: path.clone(),
            path_and_query,
            headers: parts.headers,
            body: body.clone(),
        });
        (
            state.replies.get(&path).cloned(),
            state.delays.get(&path).copied(),
        )
    };
    let (reply, delay) = reply;
    let body_for_default = body;
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    let reply = reply.unwrap_or_else(|| default_reply(&path, &body_for_default));
    Ok(match reply {
        Reply::Messages(messages) => {
            let mut frames: VecDeque<Frame<Bytes>> = messages
                .iter()
                .map(|m| Frame::data(Bytes::from(grpc::frame(m))))
                .collect();
            let mut trailers = HeaderMap::new();
            trailers.insert("grpc-status", HeaderValue::from(GRPC_OK));
            frames.push_back(Frame::trailers(trailers));
            grpc_response(Frames(frames))
        }
        Reply::Error { code, message } => error_response(code, &message),
    })
}

/// What an unconfigured path answers: one empty message, except that
/// `PodSandboxStatus` of a sandbox ID `sandbox-<namespace>` describes a
/// sandbox in that namespace (and any other ID is NotFound), so tests can
/// run creates in several namespaces without configuring each.
fn default_reply(path: &str, body: &[u8]) -> Reply {
    if !path.ends_with("/PodSandboxStatus") {
        return Reply::Messages(vec![Vec::new()]);
    }
    use prost::Message as _;
    let id = body
        .get(5..)
        .and_then(|m| crate::cri::v1::PodSandboxStatusRequest::decode(m).ok())
        .map(|r| r.pod_sandbox_id)
        .unwrap_or_default();
    match id.strip_prefix("sandbox-") {
        Some(namespace) => Reply::Messages(vec![
            crate::cri::v1::PodSandboxStatusResponse {
                status: Some(crate::cri::v1::PodSandboxStatus {
                    id: id.clone(),
                    metadata: Some(crate::cri::v1::PodSandboxMetadata {
                        namespace: namespace.to_owned(),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }
            .encode_to_vec(),
        ]),
        None => Reply::Error {
            code: 5,
            message: format!("pod sandbox {id:?} not found"),
        },
    }
}

fn grpc_response(body: Frames) -> Response<Frames> {
    let mut response = Response::new(body);
    response
        .headers_mut()
        .insert("content-type", HeaderValue::from_static("application/grpc"));
    response
}

fn error_response(code: i32, message: &str) -> Response<Frames> {
    let mut response = grpc_response(Frames(VecDeque::new()));
    let headers = response.headers_mut();
    headers.insert("grpc-status", HeaderValue::from(code));
    headers.insert(
        "grpc-message",
        HeaderValue::try_from(grpc::percent_encode(message))
            .expect("percent-encoded text is a valid header value"),
    );
    response
}

/// A response body of prepared HTTP/2 frames: data, then trailers.
#[derive(Debug)]
struct Frames(VecDeque<Frame<Bytes>>);

impl Body for Frames {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.get_mut().0.pop_front().map(Ok))
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_empty()
    }
}
