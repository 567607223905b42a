//! The registry configuration as containers/image finds it on a host.

use std::path::Path;
use std::time::Duration;

use criguard_registries::{
    DEFAULT_REGISTRIES_CONF, DEFAULT_REGISTRIES_CONF_DIR, Error as RegistriesError, RegistriesConf,
};

use crate::{AuthFile, Credentials, Error, RegistryConfig};

/// Why the host's registry configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SystemConfigError {
    #[error(transparent)]
    RegistriesConf(#[from] RegistriesError),
    #[error(transparent)]
    AuthFile(#[from] Error),
}

impl RegistryConfig {
    /// How registries are reached from this host: registries.conf (the
    /// named file alone, or the system one and its drop-in folder), then
    /// credentials (`credentials` for every registry, else the named auth
    /// file, else skopeo's search order), each request bounded by
    /// `timeout`. `criguard verify`, `sign` and the daemon all start here.
    pub fn from_system_files(
        registries_conf: Option<&Path>,
        authfile: Option<&Path>,
        credentials: Option<Credentials>,
        timeout: Duration,
    ) -> Result<RegistryConfig, SystemConfigError> {
        let registries_conf = match registries_conf {
            Some(path) => RegistriesConf::load(path, None)?,
            None => RegistriesConf::load(
                Path::new(DEFAULT_REGISTRIES_CONF),
                Some(Path::new(DEFAULT_REGISTRIES_CONF_DIR)),
            )?,
        };
        let auth_file = match authfile {
            Some(path) => Some(AuthFile::load(path)?),
            None if credentials.is_none() => AuthFile::load_default()?,
            None => None,
        };
        Ok(RegistryConfig {
            registries_conf: Some(registries_conf),
            credentials,
            auth_file,
            timeout,
        })
    }
}
