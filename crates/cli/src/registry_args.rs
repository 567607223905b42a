//! The registry options `verify` and `sign` share, named as skopeo names
//! them, and how they become a [`Registry`].

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Args;
use criguard_registries::RegistriesConf;
use criguard_registry::{AuthFile, Credentials, Registry, RegistryConfig};

/// containers/image's system-wide registries.conf and its drop-in directory.
const DEFAULT_REGISTRIES_CONF: &str = "/etc/containers/registries.conf";
const DEFAULT_REGISTRIES_CONF_DIR: &str = "/etc/containers/registries.conf.d";

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
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    pub(crate) timeout: u64,
}

impl RegistryArgs {
    pub(crate) fn registry(&self) -> Result<Registry> {
        let registries_conf = match &self.registries_conf {
            Some(path) => RegistriesConf::load(path, None)
                .with_context(|| format!("reading {}", path.display()))?,
            None => RegistriesConf::load(
                std::path::Path::new(DEFAULT_REGISTRIES_CONF),
                Some(std::path::Path::new(DEFAULT_REGISTRIES_CONF_DIR)),
            )
            .with_context(|| format!("reading {DEFAULT_REGISTRIES_CONF}"))?,
        };
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
        let auth_file = match &self.authfile {
            Some(path) => Some(AuthFile::load(path)?),
            None if credentials.is_none() => AuthFile::load_default()?,
            None => None,
        };
        if self.timeout == 0 {
            bail!("--timeout must be at least one second");
        }
        Ok(Registry::new(RegistryConfig {
            registries_conf: Some(registries_conf),
            credentials,
            auth_file,
            timeout: Duration::from_secs(self.timeout),
        })?)
    }
}

/// One runtime per command: each command makes a handful of requests.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}
