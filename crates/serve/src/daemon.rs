//! Wiring: configuration in, a running proxy out.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use criguard_cri::{Proxy, Runtime};
use criguard_verification::{SourceError, Verifiers};

use crate::{
    AuditPolicies, CacheSettings, ConfigKind, DecisionService, Enforcer, Error, Metrics, Modes,
    Policies, Registries, ReloadOutcome, Reloadable, Settings, serve_metrics,
};

/// How long calls in flight (a pull, most likely) may take to finish after
/// SIGTERM; systemd's default stop time-out is 90 s.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// The verifiers, with the trusted root the settings name read now: a file
/// that cannot be read or used stops the start.
fn verifiers(settings: &Settings) -> Result<Verifiers, Error> {
    Verifiers::from_disk_with_trusted_root(settings.trusted_root.as_deref()).map_err(|e| {
        Error::Config {
            path: settings.trusted_root.clone().unwrap_or_default(),
            message: e.to_string(),
        }
    })
}

/// Runs the daemon until `shutdown` completes. Everything that can be
/// wrong with the configuration is found before the socket is opened: an
/// invalid policy, an unreadable registries.d, a taken metrics port, an
/// unusable trusted root.
pub async fn run(settings: Settings, shutdown: impl Future<Output = ()>) -> Result<(), Error> {
    let metrics = Arc::new(Metrics::new());
    let policies = Arc::new(Policies::load_with(
        &settings.policy,
        &settings.policy_dir,
        settings.on_invalid_policy,
    )?);
    let audit_policies = settings
        .audit_policies
        .as_ref()
        .map(|(global, dir)| Arc::new(AuditPolicies::load(global, dir)));
    let registries = Registries::load(
        &settings.registries_d,
        settings.registries_conf.as_deref(),
        settings.authfile.as_deref(),
        settings.registry_timeout,
    )?;
    let decisions = DecisionService::new(
        Arc::clone(&policies),
        registries.clone(),
        Arc::new(verifiers(&settings)?),
        CacheSettings {
            ttl: settings.cache_ttl,
            size: settings.cache_size,
            resolve_ttl: settings.resolve_ttl,
        },
        Arc::clone(&metrics),
    )
    .map(|decisions| decisions.with_state_dir(&settings.state_dir))
    .map(|decisions| match &audit_policies {
        Some(audit) => decisions.with_audit_policies(Arc::clone(audit)),
        None => decisions,
    })
    .map_err(|e| match e {
        SourceError::Registry(e) => Error::Source(e),
        other => Error::Config {
            path: settings.registries_d.clone(),
            message: other.to_string(),
        },
    })?;
    let modes = Arc::new(Modes::load(&settings.policy_dir, settings.default_mode));
    let enforcer = Enforcer::new(decisions, Arc::clone(&modes), Arc::clone(&metrics))
        .with_tag_pinned_pulls(settings.tag_pinned_pulls);
    if let Some(address) = &settings.metrics_address {
        let bound = serve_metrics(address, Arc::clone(&metrics)).await?;
        tracing::info!(address = %bound, "metrics at /metrics");
    }
    let watcher_metrics = Arc::clone(&metrics);
    let mut watched: Vec<Arc<dyn Reloadable>> =
        vec![Arc::clone(&policies) as _, Arc::new(registries), modes];
    watched.extend(audit_policies.map(|audit| audit as Arc<dyn Reloadable>));
    let watcher = tokio::spawn(crate::watch(
        watched,
        settings.policy_poll,
        move |outcome| report_reload(&watcher_metrics, outcome),
    ));
    let listener = criguard_cri::bind(&settings.listen, 0o660)?;
    let runtime = Runtime::new(&settings.runtime_endpoint);
    tracing::info!(
        listen = %settings.listen.display(),
        runtime = %settings.runtime_endpoint.display(),
        policy = %settings.policy.display(),
        policy_dir = %settings.policy_dir.display(),
        "criguard is serving"
    );
    // systemd's Type=notify: the kubelet may be started now. Outside
    // systemd ($NOTIFY_SOCKET unset) this does nothing.
    if let Err(e) = sd_notify::notify(&[sd_notify::NotifyState::Ready]) {
        tracing::warn!(error = %e, "telling systemd that criguard is ready failed");
    }
    let shutdown = async {
        shutdown.await;
        let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
    };
    criguard_cri::serve(
        listener,
        Arc::new(
            Proxy::new(enforcer, runtime)
                .with_methods(criguard_cri::Methods::new(&settings.forward_methods)?),
        ),
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
        ReloadOutcome::Applied {
            kind: ConfigKind::Policy,
            path,
        } => {
            metrics.policy_reload("applied");
            tracing::info!(path = %path.display(), "policy reloaded");
        }
        ReloadOutcome::Removed {
            kind: ConfigKind::Policy,
            path,
        } => {
            metrics.policy_reload("removed");
            tracing::info!(path = %path.display(), "namespace policy removed; the namespace uses the global policy");
        }
        ReloadOutcome::Refused {
            kind: ConfigKind::Policy,
            path,
            reason,
        } => {
            metrics.policy_reload("refused");
            tracing::error!(path = %path.display(), %reason, "policy change refused");
        }
        ReloadOutcome::Applied { kind, path } | ReloadOutcome::Removed { kind, path } => {
            metrics.registry_config_reload(kind.label(), "applied");
            tracing::info!(path = %path.display(), file = kind.label(), "registry configuration reloaded");
        }
        ReloadOutcome::Refused { kind, path, reason } => {
            metrics.registry_config_reload(kind.label(), "refused");
            tracing::error!(path = %path.display(), file = kind.label(), %reason, "registry configuration change refused");
        }
    }
}
