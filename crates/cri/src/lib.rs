//! The CRI edge: criguard sits on the socket the kubelet talks to and
//! forwards every call to the container runtime's socket.
//!
//! The proxy is transparent at the HTTP/2 level. Requests and responses
//! stream through as frames, so every method of `runtime.v1.RuntimeService`
//! and `runtime.v1.ImageService` works, streaming ones and ones newer than
//! this build included, and so does every field criguard has never heard
//! of. Only `PullImage` and `CreateContainer` are read, from a copy, and a
//! [`Gate`] decides whether they go on. What goes on is the kubelet's bytes;
//! the one exception is a pull the gate pins to the digest it verified,
//! where only the image name inside `ImageSpec` is replaced.
//!
//! This crate knows nothing about policies: the daemon plugs its decisions
//! in through [`Gate`].

mod error;
mod listener;
mod proxy;
mod runtime;
mod wire;

/// The CRI messages criguard decodes, generated from `proto/cri.proto`.
#[allow(clippy::all, unreachable_pub, missing_docs)]
pub mod v1 {
    include!(concat!(env!("OUT_DIR"), "/runtime.v1.rs"));
}

pub use error::Error;
pub use listener::{bind, socket_path};
pub use proxy::{
    CREATE_CONTAINER, ForwardOutcome, Gate, MAX_CHECKED_MESSAGE, PULL_IMAGE, Proxy, PullPlan, serve,
};
pub use runtime::Runtime;
pub use wire::replace_image_name;
