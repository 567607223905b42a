//! After a pinned pull, the runtime also holds the name the kubelet asked
//! for, pointing at the digest criguard verified (see
//! `criguard_cri::Runtime::tag_pinned_pull` for how, and why containerd's
//! images service).
//!
//! Without it the runtime knows the image only as `repo@sha256:…`: the
//! kubelet's `ImageStatus("repo:tag")` finds nothing, so `IfNotPresent`
//! pulls at every container start, `crictl images` shows no tag, and a node
//! whose registry is unreachable cannot restart its containers.
//!
//! Only tags are written: a pull by digest is recorded under that name by
//! the pull itself. The tag written is the one that was verified and the
//! digest the one pulled, so a tag on the node names a verified digest;
//! one moved on the node by another client (a direct containerd pull) is
//! still judged at create by the image ID it names.
//!
//! A failure to write the name is logged and counted, and the pull is
//! answered as the runtime answered it: the verified image is on the node
//! and its create is checked by image ID either way; failing the pull
//! would make the kubelet pull again, into the same failure, and keep a
//! pod from starting over a convenience.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use criguard_cri::{Runtime, TagTarget, Tagged};
use serde::Deserialize;

use crate::Metrics;

/// The most a pull's answer waits for its name: the runtime's own calls
/// take milliseconds, and the CRI's cache catches up within
/// `criguard_cri`'s wait (3 s). The kubelet's deadline for the pull does
/// not cover this step, so a runtime that hangs here must not hold the
/// answer for long.
const WRITE_WITHIN: Duration = Duration::from_secs(5);

/// `tag_pinned_pulls` in config.toml.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TagPinnedPulls {
    /// Through containerd's images service, in namespace `k8s.io`. A
    /// runtime that does not serve it (CRI-O) is detected at the first
    /// pinned pull, and writing stops with one warning.
    #[default]
    Containerd,
    /// Never: the runtime keeps only `repo@digest` for a verified pull.
    Off,
}

/// Writes the names; shared by every pull.
#[derive(Debug)]
pub(crate) struct PinnedTags {
    /// Cleared for good when the runtime has no images service.
    enabled: AtomicBool,
}

impl PinnedTags {
    pub(crate) fn new(setting: TagPinnedPulls) -> PinnedTags {
        PinnedTags {
            enabled: AtomicBool::new(setting == TagPinnedPulls::Containerd),
        }
    }

    /// Points `tag` at `target` in the runtime, for the pull that returned
    /// `image_id`.
    pub(crate) async fn write(
        &self,
        runtime: &Runtime,
        tag: &str,
        target: &TagTarget,
        image_id: &str,
        metrics: &Metrics,
    ) {
        if !self.enabled.load(Ordering::Relaxed) {
            return;
        }
        let written =
            tokio::time::timeout(WRITE_WITHIN, runtime.tag_pinned_pull(tag, target, image_id))
                .await
                .unwrap_or_else(|_| {
                    Err(tonic::Status::deadline_exceeded(format!(
                        "no answer within {WRITE_WITHIN:?}"
                    )))
                });
        match written {
            Ok(Tagged::Visible) => {
                tracing::debug!(tag, digest = %target.digest, "named the pinned pull");
                metrics.pinned_tag("written");
            }
            Ok(Tagged::NotYetVisible) => {
                tracing::warn!(
                    tag,
                    digest = %target.digest,
                    "named the pinned pull, but the runtime's CRI does not report the name yet; \
                     the kubelet may pull it again"
                );
                metrics.pinned_tag("not-visible");
            }
            Err(status) if status.code() == tonic::Code::Unimplemented => {
                if self.enabled.swap(false, Ordering::Relaxed) {
                    tracing::warn!(
                        runtime = %runtime.socket().display(),
                        message = status.message(),
                        "the runtime has no containerd images service, so a verified pull is \
                         known there only by its digest and the kubelet pulls it again at each \
                         container start; set tag_pinned_pulls = \"off\" to silence this"
                    );
                }
                metrics.pinned_tag("unsupported");
            }
            Err(status) => {
                tracing::warn!(
                    tag,
                    digest = %target.digest,
                    code = ?status.code(),
                    message = status.message(),
                    "could not name the pinned pull; the kubelet may pull it again"
                );
                metrics.pinned_tag("failed");
            }
        }
    }
}
