//! Wiring: configuration in, a running proxy out.

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use criguard_cri::{Proxy, Runtime};
use criguard_registries::{RegistriesConf, RegistriesD};
use criguard_registry::{AuthFile, Credentials, RegistryConfig};

use crate::enforcer::CacheSettings;
use crate::{Enforcer, Error, Metrics, Policies, ReloadOutcome, Settings, serve_metrics};

/// How long calls in flight (a pull, most likely) may take to finish after
/// SIGTERM; systemd's default stop time-out is 90 s.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// containers/image's system-wide registries.conf and its drop-in folder.
const DEFAULT_REGISTRIES_CONF: &str = "/etc/containers/registries.conf";
const DEFAULT_REGISTRIES_CONF_DIR: &str = "/etc/containers/registries.conf.d";

/// How registries are reached: registries.conf (the named file alone, or
/// the system one and its drop-ins), then credentials (`credentials` for
/// every registry, else the auth file, else skopeo's search order).
pub fn registry_config(
    registries_conf: Option<&Path>,
    authfile: Option<&Path>,
    credentials: Option<Credentials>,
    timeout: Duration,
) -> Result<RegistryConfig, Error> {
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

/// Runs the daemon until `shutdown` completes. Everything that can be
/// wrong with the configuration is found before the socket is opened: an
/// invalid policy, an unreadable registries.d, a taken metrics port.
pub async fn run(settings: Settings, shutdown: impl Future<Output = ()>) -> Result<(), Error> {
    let metrics = Arc::new(Metrics::new());
    let policies = Arc::new(Policies::load(&settings.policy, &settings.policy_dir)?);
    let registries_d = RegistriesD::load_dir(&settings.registries_d)?;
    let registry = registry_config(
        settings.registries_conf.as_deref(),
        settings.authfile.as_deref(),
        None,
        settings.registry_timeout,
    )?;
    let enforcer = Enforcer::new(
        Arc::clone(&policies),
        registries_d,
        registry,
        CacheSettings {
            ttl: settings.cache_ttl,
            size: settings.cache_size,
            resolve_ttl: settings.resolve_ttl,
        },
        Arc::clone(&metrics),
    )?;
    if let Some(address) = &settings.metrics_address {
        let bound = serve_metrics(address, Arc::clone(&metrics)).await?;
        tracing::info!(address = %bound, "metrics at /metrics");
    }
    let watcher_metrics = Arc::clone(&metrics);
    let watcher = tokio::spawn(
        Arc::clone(&policies).watch(settings.policy_poll, move |outcome| {
            report_reload(&watcher_metrics, outcome)
        }),
    );
    let listener = criguard_cri::bind(&settings.listen, 0o660)?;
    let runtime = Runtime::new(&settings.runtime_endpoint);
    tracing::info!(
        listen = %settings.listen.display(),
        runtime = %settings.runtime_endpoint.display(),
        policy = %settings.policy.display(),
        policy_dir = %settings.policy_dir.display(),
        "criguard is serving"
    );
    criguard_cri::serve(
        listener,
        Arc::new(Proxy::new(enforcer, runtime)),
        shutdown,
        SHUTDOWN_GRACE,
    )
    .await;
    watcher.abort();
    // The next start would replace it anyway; a kubelet that sees no socket
    // knows at once that nobody is there.
    let _ = std::fs::remove_file(&settings.listen);
    tracing::info!("criguard stopped");
    Ok(())
}

fn report_reload(metrics: &Metrics, outcome: &ReloadOutcome) {
    match outcome {
        ReloadOutcome::Applied { path } => {
            metrics.policy_reload("applied");
            tracing::info!(path = %path.display(), "policy reloaded");
        }
        ReloadOutcome::Removed { path } => {
            metrics.policy_reload("removed");
            tracing::info!(path = %path.display(), "namespace policy removed; the namespace uses the global policy");
        }
        ReloadOutcome::Refused { path, reason } => {
            metrics.policy_reload("refused");
            tracing::error!(path = %path.display(), %reason, "policy change refused");
        }
    }
}
