//! What the daemon asks the runtime itself: which image an image ID is
//! (for images criguard did not see pulled), and which namespace a pod
//! sandbox belongs to (so a create is judged by its pod's namespace, not
//! by what its request claims).

use std::future::Future;

use tonic::Status;

/// The runtime's record of one image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeImage {
    /// The image ID (the config digest).
    pub id: String,
    /// `repo@sha256:…` for each repository the image was pulled from.
    pub repo_digests: Vec<String>,
}

/// The runtime's records. Implemented by the CRI runtime channel, and by an
/// in-memory fake in tests. An `Unavailable` status means the runtime
/// could not be reached.
pub trait RuntimeView: Sync {
    /// The runtime's record of image `id` (an ID or a name); `None` when it
    /// has no such image.
    fn image(&self, id: &str) -> impl Future<Output = Result<Option<RuntimeImage>, Status>> + Send;

    /// The namespace of pod sandbox `id`; `None` when the runtime has no
    /// such sandbox.
    fn sandbox_namespace(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<String>, Status>> + Send;
}

impl RuntimeView for criguard_cri::Runtime {
    async fn image(&self, id: &str) -> Result<Option<RuntimeImage>, Status> {
        Ok(self.image_status(id).await?.map(|image| RuntimeImage {
            id: image.id,
            repo_digests: image.repo_digests,
        }))
    }

    async fn sandbox_namespace(&self, id: &str) -> Result<Option<String>, Status> {
        self.pod_sandbox_namespace(id).await
    }
}
