//! The CRI edge: criguard sits on the socket the kubelet talks to and
//! forwards every call to the container runtime's socket.
//!
//! The proxy is transparent at the HTTP/2 level. Requests and responses
//! stream through as frames, so every method it forwards works, streaming
//! ones included, and so does every field criguard has never heard of.
//! Which methods go through is decided by one table ([`Methods`]): the
//! `runtime.v1` and `runtime.v1alpha2` methods that only manage what is
//! on the node are forwarded, `PullImage` and `CreateContainer` (of either
//! version) are read, from a copy, and a [`Gate`] decides whether they go
//! on; anything else is refused unless the daemon's config lists it. What
//! goes on is the kubelet's bytes; the one exception is a pull the gate
//! pins to the digest it verified, where only the image name inside
//! `ImageSpec` is replaced.
//!
//! This crate knows nothing about policies: the daemon plugs its decisions
//! in through [`Gate`].

mod deadline;
mod error;
mod exchange;
mod listener;
mod methods;
mod proxy;
mod runtime;
mod tagging;
mod wire;

/// The CRI messages criguard decodes, generated from `proto/cri.proto`.
#[allow(clippy::all, unreachable_pub, missing_docs)]
pub mod v1 {
    include!(concat!(env!("OUT_DIR"), "/runtime.v1.rs"));
}

pub use deadline::grpc_timeout;
pub use error::Error;
pub use listener::{bind, socket_path};
pub use methods::{Handling, Methods, Route};
pub use proxy::{
    CHECKED_BYTES_IN_FLIGHT, CREATE_CONTAINER, ForwardOutcome, Gate, MAX_CHECKED_MESSAGE,
    PULL_IMAGE, Proxy, PullPlan, serve,
};
pub use runtime::Runtime;
pub use tagging::{TagTarget, Tagged};
pub use wire::replace_image_name;
