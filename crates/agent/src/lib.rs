//! The node agent of criguard's Kubernetes policies, and the status
//! writer.
//!
//! `serve` enforces whatever files it is pointed at; on a cluster those
//! files come from `ClusterImagePolicy` and `ImagePolicy` objects. The
//! agent ([`node_agent`]) watches them ([`watch`]), renders the node's
//! files with the one renderer (`criguard-kube-policy`) and swaps them in
//! whole ([`writer`]). The status writer ([`status_writer`]), one per
//! cluster, renders the same way and writes each object's conditions
//! ([`conditions`]) back.

pub mod client;
pub mod conditions;
pub mod fileset;
pub mod metrics;
pub mod node_agent;
pub mod pacer;
pub mod render;
pub mod status_writer;
pub mod watch;
pub mod writer;

pub use client::{ConnectError, connect};
pub use fileset::{FileSet, FileSetError};
pub use kube::Client;
pub use metrics::{Metrics, serve_metrics};
pub use node_agent::{NodeAgent, Output};
pub use status_writer::StatusWriter;
pub use watch::{KindNames, WatchEnded, run_node_agent, run_status_writer};
pub use writer::{AtomicDir, MemorySink, Sink, WriteError, WriteOutcome};
