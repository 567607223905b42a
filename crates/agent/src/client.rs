//! Connecting to the API server: a kubeconfig file when one is named,
//! else kube's inference (`$KUBECONFIG`, `~/.kube/config`, then the pod's
//! service account, as a DaemonSet pod has it).

use std::path::Path;

use kube::Client;
use kube::config::{Config, KubeConfigOptions, Kubeconfig};

/// Why no client could be made: nothing has been contacted yet.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("cannot read the kubeconfig {path}: {source}")]
    Kubeconfig {
        path: String,
        source: kube::config::KubeconfigError,
    },
    #[error("no API server configuration (kubeconfig or in-cluster service account): {0}")]
    Infer(#[from] kube::config::InferConfigError),
    #[error("cannot set up the API server client: {0}")]
    Client(#[from] kube::Error),
}

/// A client for `kubeconfig`, or for the inferred configuration.
pub async fn connect(kubeconfig: Option<&Path>) -> Result<Client, ConnectError> {
    let config = match kubeconfig {
        Some(path) => {
            let failed = |source| ConnectError::Kubeconfig {
                path: path.display().to_string(),
                source,
            };
            let file = Kubeconfig::read_from(path).map_err(failed)?;
            Config::from_custom_kubeconfig(file, &KubeConfigOptions::default())
                .await
                .map_err(failed)?
        }
        None => Config::infer().await?,
    };
    Ok(Client::try_from(config)?)
}
