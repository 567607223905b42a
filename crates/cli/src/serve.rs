//! `criguard serve`: the node daemon, between the kubelet and the runtime.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use criguard_serve::{ConfigFile, DEFAULT_CONFIG, LogFormat};

use crate::process::{LogFormatArg, init_logging, shutdown_signal};

#[derive(Args, Debug)]
pub(crate) struct ServeArgs {
    /// The configuration file; flags override it.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// The socket the kubelet connects to (`unix:///path` or a path).
    /// Default: /run/criguard/criguard.sock.
    #[arg(long, value_name = "ENDPOINT")]
    listen: Option<String>,
    /// The runtime's socket (`unix:///path` or a path).
    /// Default: /run/containerd/containerd.sock.
    #[arg(long, value_name = "ENDPOINT")]
    runtime_endpoint: Option<String>,
    /// The global policy. Default: /etc/containers/policy.json.
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// Per-namespace policies, `<dir>/<namespace>.json`.
    /// Default: /etc/criguard/policies.
    #[arg(long, value_name = "DIR")]
    policy_dir: Option<PathBuf>,
    /// Directory of registries.d YAML files (where signatures are).
    /// Default: /etc/containers/registries.d.
    #[arg(long = "registries.d", value_name = "DIR")]
    registries_d: Option<PathBuf>,
    /// registries.conf (location rewrites, mirrors, insecure registries).
    #[arg(long = "registries-conf", value_name = "FILE")]
    registries_conf: Option<PathBuf>,
    /// Credentials for signature fetches when the kubelet sends none.
    #[arg(long, value_name = "FILE")]
    authfile: Option<PathBuf>,
    /// Time-out for each registry request, in seconds. Default: 30.
    #[arg(long, value_name = "SECONDS")]
    timeout: Option<u64>,
    /// How long an allowed decision is reused, in seconds. Default: 600.
    #[arg(long, value_name = "SECONDS")]
    cache_ttl: Option<u64>,
    /// How many decisions (and pull records) are cached, each counted as
    /// 1 KiB at least, so at most N KiB each. Default: 10000.
    #[arg(long, value_name = "ENTRIES")]
    cache_size: Option<u64>,
    /// `host:port` for Prometheus metrics; "" turns them off.
    /// Default: 127.0.0.1:9891.
    #[arg(long, value_name = "ADDRESS")]
    metrics_address: Option<String>,
    /// Log format. Default: text.
    #[arg(long, value_enum)]
    log_format: Option<LogFormatArg>,
    /// The audit set's global policy (`criguard policy render` writes
    /// `audit/policy.json`): judged after an allowance, never enforced.
    #[arg(long, value_name = "FILE", requires = "audit_policy_dir")]
    audit_policy: Option<PathBuf>,
    /// The audit set's namespace policies (`audit/policies`).
    #[arg(long, value_name = "DIR", requires = "audit_policy")]
    audit_policy_dir: Option<PathBuf>,
    /// A sigstore trusted_root.json, read once at start: lets bundles with
    /// Rekor v2 entries and RFC 3161 timestamps verify.
    #[arg(long, value_name = "FILE")]
    trusted_root: Option<PathBuf>,
}

pub(crate) fn run(args: ServeArgs) -> Result<ExitCode> {
    let (config_path, required) = match &args.config {
        Some(path) => (path.clone(), true),
        None => (PathBuf::from(DEFAULT_CONFIG), false),
    };
    let file = ConfigFile::load(&config_path, required)?;
    let flags = ConfigFile {
        listen: args.listen,
        runtime_endpoint: args.runtime_endpoint,
        policy: args.policy,
        policy_dir: args.policy_dir,
        registries_d: args.registries_d,
        registries_conf: args.registries_conf,
        authfile: args.authfile,
        registry_timeout_seconds: args.timeout,
        cache_ttl_seconds: args.cache_ttl,
        cache_size: args.cache_size,
        metrics_address: args.metrics_address,
        log_format: args.log_format.map(LogFormat::from),
        audit_policy: args.audit_policy,
        audit_policy_dir: args.audit_policy_dir,
        trusted_root: args.trusted_root,
        ..ConfigFile::default()
    };
    let settings = file.overridden_by(flags).settings(&config_path)?;
    init_logging(settings.log_format);
    let runtime = serve_runtime().context("starting the async runtime")?;
    runtime.block_on(criguard_serve::run(settings, shutdown_signal()))?;
    Ok(ExitCode::SUCCESS)
}

/// A worker per core (or `TOKIO_WORKER_THREADS`, which tokio reads). The
/// checks' CPU work runs on tokio's blocking pool either way. Measured on
/// two cores (docs/benchmarks.md, issue 16), one worker adds about 100 µs
/// less to a forwarded call's p50 but forwards a quarter fewer calls a
/// second under 64 clients; the kubelet's load is the throughput case.
fn serve_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
}
