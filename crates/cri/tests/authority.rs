//! The kubelet-facing socket serves a call whatever `:authority` its
//! client's gRPC implementation sends over a unix socket, as grpc-go
//! (containerd) does, and refuses only what grpc-go refuses. That takes the
//! patched h2 of `vendor/h2` (see `vendor/README.md`): this test fails as
//! soon as the build stops using it, without a runtime or a Python client
//! (`crates/cli/tests/serve_grpcio.rs` has those).

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use criguard_cri::v1::{CreateContainerRequest, PullImageRequest, PullImageResponse};
use criguard_cri::{ForwardOutcome, Gate, Proxy, PullPlan, Runtime, bind, serve};
use criguard_testutil::grpc::{RawStreamEnd, grpc_headers, h2_call_raw_headers};
use tonic::Status;

const VERSION: &str = "/runtime.v1.RuntimeService/Version";

/// Only forwarded calls are made here; the checked ones are refused.
struct NoChecks;

impl Gate for NoChecks {
    type Pull = ();

    async fn check_pull(
        &self,
        _: PullImageRequest,
        _: &Runtime,
    ) -> Result<PullPlan<Self::Pull>, Status> {
        Err(Status::permission_denied("no pulls here"))
    }

    async fn pulled(&self, (): (), _: &PullImageResponse, _: &Runtime) {}

    async fn check_create(&self, _: CreateContainerRequest, _: &Runtime) -> Result<(), Status> {
        Err(Status::permission_denied("no creates here"))
    }

    fn forwarded(&self, _: &str, _: Duration, _: ForwardOutcome) {}
}

#[tokio::test]
async fn unix_socket_authorities_are_served_and_invalid_ones_refused() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("criguard.sock");
    // No runtime listens there: every forwarded call is answered by
    // criguard itself, `Unavailable`, once h2 has let it through.
    let runtime = Runtime::new(&dir.path().join("runtime.sock"));
    let proxy = Arc::new(Proxy::new(NoChecks, runtime));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(
        bind(&socket, 0o600).unwrap(),
        proxy,
        async {
            let _ = stopped.await;
        },
        Duration::from_secs(1),
    ));
    let path = socket.to_str().unwrap();
    let answered = RawStreamEnd::Answered { data: Vec::new() };

    // grpc-go, gRPC's C core (Python's grpcio), grpc-java, grpc-swift, an
    // empty authority and none at all.
    let c_core = path.trim_start_matches('/').replace('/', "%2F");
    let swift = path.replace('/', "%2F");
    for authority in [
        Some("localhost"),
        Some(c_core.as_str()),
        Some(path),
        Some(swift.as_str()),
        Some(""),
        None,
    ] {
        let end = h2_call_raw_headers(&socket, &grpc_headers(VERSION, authority), &[]).await;
        assert_eq!(end, answered, "{authority:?}");
    }

    // What grpc-go resets (a control character, DEL) h2 still resets, and
    // so does a CONNECT to a target that is no authority.
    for authority in ["local\u{1}host", "local\u{7f}host"] {
        let end = h2_call_raw_headers(&socket, &grpc_headers(VERSION, Some(authority)), &[]).await;
        assert_eq!(end, RawStreamEnd::Reset(1), "{authority:?}");
    }
    let connect = [(":method", "CONNECT"), (":authority", path)];
    let end = h2_call_raw_headers(&socket, &connect, &[]).await;
    assert_eq!(end, RawStreamEnd::Reset(1));

    stop.send(()).unwrap();
    server.await.unwrap();
}
