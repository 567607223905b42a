//! The registry options `verify` and `sign` share, named as skopeo names
//! them, and how they become a [`Registry`].

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Result, bail};
use clap::Args;
use criguard_registry::{Credentials, Registry, RegistryConfig};

#[derive(Args, Debug, Clone)]
pub(crate) struct RegistryArgs {
    /// registries.conf (location rewrites, mirrors, insecure registries).
    /// Default: /etc/containers/registries.conf and registries.conf.d.
    #[arg(long = "registries-conf", value_name = "FILE")]
    pub(crate) registries_conf: Option<PathBuf>,
    /// Credentials file (containers auth.json or docker config.json).
    /// Default: skopeo's search order.
    #[arg(long, value_name = "FILE")]
    pub(crate) authfile: Option<PathBuf>,
    /// USER:PASSWORD for every registry, overriding the auth file.
    #[arg(long, value_name = "USER:PASSWORD")]
    pub(crate) creds: Option<String>,
    /// Time-out for each registry request, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = criguard_registry::DEFAULT_TIMEOUT.as_secs())]
    pub(crate) timeout: u64,
}

impl RegistryArgs {
    pub(crate) fn registry(&self) -> Result<Registry> {
        let credentials = match &self.creds {
            None => None,
            Some(creds) => match creds.split_once(':') {
                Some((username, password)) if !username.is_empty() => Some(Credentials::Basic {
                    username: username.to_owned(),
                    password: password.to_owned(),
                }),
                _ => bail!("--creds must be USER:PASSWORD"),
            },
        };
        if self.timeout == 0 {
            bail!("--timeout must be at least one second");
        }
        let config = RegistryConfig::from_system_files(
            self.registries_conf.as_deref(),
            self.authfile.as_deref(),
            credentials,
            Duration::from_secs(self.timeout),
        )?;
        Ok(Registry::new(config)?)
    }
}

/// One runtime per command: each command makes a handful of requests.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}
