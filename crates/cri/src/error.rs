use std::io;
use std::path::PathBuf;

/// What can go wrong at the CRI edge before a call is decided.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An endpoint that is neither `unix:///path` nor a plain path.
    #[error("{endpoint:?} is not a unix socket endpoint (`unix:///path` or `/path`)")]
    Endpoint { endpoint: String },
    /// Something other than a stale socket sits where the socket goes.
    #[error("{}: exists and is not a socket; refusing to replace it", path.display())]
    NotASocket { path: PathBuf },
    /// A live process already answers on the socket.
    #[error("{}: another process is listening on this socket", path.display())]
    SocketInUse { path: PathBuf },
    #[error("{}: {source}", path.display())]
    Socket { path: PathBuf, source: io::Error },
    /// A checked request or response that is not one uncompressed message.
    #[error("{0}")]
    Frame(String),
    /// A method the configuration lists as safe to forward that cannot be.
    #[error("forward_methods: {method:?}: {why}")]
    ForwardMethod { method: String, why: String },
    /// A protobuf message criguard could not take apart.
    #[error("malformed {what}: {message}")]
    Message { what: &'static str, message: String },
}
