//! The name the kubelet asked for, given back after a pinned pull.
//!
//! A verified pull is forwarded as `repo@sha256:<verified manifest>`, so
//! the runtime records only that name; `ImageStatus("repo:tag")` would then
//! say "not found", and the kubelet (`IfNotPresent`) would pull again at
//! every container start, and could not restart anything while the
//! registry is unreachable. So after the pinned pull criguard writes the
//! tag itself, pointing at the digest it verified, never at what the
//! registry's tag names now: what a tag names on the node stays a digest
//! criguard verified.
//!
//! How: containerd's own images service (`containerd.services.images.v1`),
//! served on the socket criguard already talks to, in containerd's `k8s.io`
//! namespace, the one its CRI plugin keeps (1.6 and 2.x alike). The
//! alternatives were worse: a second, unpinned CRI pull of the tag is the
//! moved-tag race itself; the CRI has no call to name an image. containerd's
//! CRI plugin keeps its own cache of names, fed by the image events of that
//! namespace (`/images/create`, `/images/update`: 1.6's
//! `pkg/cri/server/events.go`, 2.x's `internal/cri/server/events.go`), so
//! the name reaches `ImageStatus` and `ListImages` shortly after the write,
//! not with it; [`Runtime::tag_pinned_pull`] waits for it (briefly), so the
//! kubelet's next `ImageStatus` by tag finds it. A runtime without the
//! service (CRI-O) answers `Unimplemented`, which the caller takes as
//! "this runtime keeps no such names".

use std::time::Duration;

use tonic::{Code, Status};

use crate::runtime::Runtime;
use crate::v1::Image as CriImage;

/// containerd's messages, generated from `proto/containerd_images.proto`.
#[allow(clippy::all, unreachable_pub, missing_docs, dead_code)]
mod images {
    include!(concat!(
        env!("OUT_DIR"),
        "/containerd.services.images.v1.rs"
    ));
}

const CREATE: &str = "/containerd.services.images.v1.Images/Create";
const UPDATE: &str = "/containerd.services.images.v1.Images/Update";
const GET: &str = "/containerd.services.images.v1.Images/Get";
/// The containerd namespace of the CRI plugin's images.
const CRI_NAMESPACE: &str = "k8s.io";
/// The label containerd's CRI plugin puts on the names it pulls. With it,
/// the plugin's event handler only refreshes its cache for the name
/// (without, it would rewrite the record to add the label, a second write
/// racing criguard's next one).
const MANAGED_LABEL: &str = "io.cri-containerd.image";
const MANAGED: &str = "managed";
/// How long to wait for the CRI plugin to see a name just written; it
/// usually takes milliseconds. Past it, the pull is answered anyway.
const VISIBLE_WITHIN: Duration = Duration::from_secs(3);
const VISIBLE_POLL: Duration = Duration::from_millis(10);

/// The verified manifest a name is to point at, as containerd stores it
/// (it refuses an empty media type or a size of 0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagTarget {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
}

/// How writing a name ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tagged {
    /// Written, and the CRI reports it with the expected image ID.
    Visible,
    /// Written, but the CRI did not report it within the wait.
    NotYetVisible,
}

impl Runtime {
    /// Makes `name` (a tag, normalised: `docker.io/library/busybox:latest`)
    /// name `target` in containerd, then waits until the CRI's
    /// `ImageStatus(name)` reports `image_id` (the config digest the pinned
    /// pull returned). An error is the runtime's, `Unimplemented` when it
    /// has no images service.
    pub async fn tag_pinned_pull(
        &self,
        name: &str,
        target: &TagTarget,
        image_id: &str,
    ) -> Result<Tagged, Status> {
        let size = i64::try_from(target.size)
            .map_err(|_| Status::invalid_argument("criguard: manifest size out of range"))?;
        let image = images::Image {
            name: name.to_owned(),
            labels: [(MANAGED_LABEL.to_owned(), MANAGED.to_owned())].into(),
            target: Some(images::Descriptor {
                media_type: target.media_type.clone(),
                digest: target.digest.clone(),
                size,
                annotations: Default::default(),
            }),
        };
        // A pull of a tag the node already has, pointing at this very
        // manifest with the CRI's label (every pull after the first): one
        // local read instead of a write and a wait.
        let get = images::GetImageRequest {
            name: name.to_owned(),
        };
        if let Ok(images::GetImageResponse {
            image: Some(current),
        }) = self
            .own_call::<_, images::GetImageResponse>(GET, &get, Some(CRI_NAMESPACE))
            .await
            && current.name == name
            && current.labels.get(MANAGED_LABEL).map(String::as_str) == Some(MANAGED)
            && current.target.as_ref() == image.target.as_ref()
        {
            return Ok(Tagged::Visible);
        }
        // Create, and on a name that exists, replace its target, as
        // containerd's CRI plugin names what it pulls. The label is set
        // by its own path, so other labels on the name stay.
        let create = images::CreateImageRequest {
            image: Some(image.clone()),
        };
        let stored = match self
            .own_call::<_, images::CreateImageResponse>(CREATE, &create, Some(CRI_NAMESPACE))
            .await
        {
            Ok(answer) => answer.image,
            Err(status) if status.code() == Code::AlreadyExists => {
                let update = images::UpdateImageRequest {
                    image: Some(image),
                    update_mask: Some(images::FieldMask {
                        paths: vec!["target".to_owned(), format!("labels.{MANAGED_LABEL}")],
                    }),
                };
                self.own_call::<_, images::UpdateImageResponse>(
                    UPDATE,
                    &update,
                    Some(CRI_NAMESPACE),
                )
                .await?
                .image
            }
            Err(status) => return Err(status),
        };
        // containerd answers with the image it stored. A server that
        // answers without one (a CRI-only runtime that takes any call)
        // has no such service: taken as Unimplemented, and not waited on.
        if stored.is_none_or(|stored| stored.name != name) {
            return Err(Status::unimplemented(format!(
                "criguard: the runtime at {} answered {CREATE} without the image it stored, \
                 so it is not containerd's images service",
                self.socket().display()
            )));
        }
        let seen = tokio::time::timeout(VISIBLE_WITHIN, async {
            loop {
                let status = self.image_status(name).await;
                if matches!(&status, Ok(Some(CriImage { id, .. })) if id == image_id) {
                    return;
                }
                tokio::time::sleep(VISIBLE_POLL).await;
            }
        });
        Ok(match seen.await {
            Ok(()) => Tagged::Visible,
            Err(_) => Tagged::NotYetVisible,
        })
    }
}
