//! A plain HTTP/1.1 server on a free port of 127.0.0.1, in a thread of its
//! own with a single-threaded runtime, stopped and joined on drop: what the
//! harness's in-memory services (the referrers registry, the test Fulcio,
//! Rekor and timestamp authority) run on, so that each of them is only its
//! request handler.

use std::convert::Infallible;
use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr, TcpListener as StdTcpListener};
use std::sync::{Mutex, MutexGuard};
use std::thread::{self, JoinHandle};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// A whole answer.
pub type Reply = Response<Full<Bytes>>;

/// The running server; dropping it stops its thread.
pub struct HttpServer {
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl HttpServer {
    /// Serves every request with `handler` on a thread named `name`.
    pub fn start<H, F>(name: &str, handler: H) -> HttpServer
    where
        H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
        F: Future<Output = Reply> + Send + 'static,
    {
        let listener = StdTcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .unwrap_or_else(|e| panic!("binding {name} to a free port: {e}"));
        listener
            .set_nonblocking(true)
            .unwrap_or_else(|e| panic!("making {name}'s listener non-blocking: {e}"));
        let addr = listener.local_addr().expect("the listener's address");
        let (shutdown, shutdown_rx) = oneshot::channel();
        let thread = thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("the server's runtime")
                    .block_on(serve(listener, handler, shutdown_rx));
            })
            .unwrap_or_else(|e| panic!("spawning {name}: {e}"));
        HttpServer {
            addr,
            shutdown: Some(shutdown),
            thread: Some(thread),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn serve<H, F>(listener: StdTcpListener, handler: H, mut shutdown: oneshot::Receiver<()>)
where
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Reply> + Send + 'static,
{
    let listener = TcpListener::from_std(listener).expect("registering the listener");
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let handler = handler.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let answer = handler(request);
                        async move { Ok::<_, Infallible>(answer.await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        }
    }
}

/// An answer with `status`, `headers` and `body`, its length stated.
pub fn reply(status: StatusCode, headers: &[(&str, String)], body: Vec<u8>) -> Reply {
    let mut builder = Response::builder().status(status);
    for (name, value) in headers {
        builder = builder.header(*name, value);
    }
    builder
        .header("Content-Length", body.len().to_string())
        .body(Full::new(Bytes::from(body)))
        .expect("a valid response")
}

/// The state behind a lock, even if a handler panicked while holding it:
/// a test server keeps answering so the test sees the real failure.
pub fn lock<T>(state: &Mutex<T>) -> MutexGuard<'_, T> {
    state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
