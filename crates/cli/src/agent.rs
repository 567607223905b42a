//! `criguard agent` (the node agent) and `criguard status-writer`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use crate::process::{LogFormatArg, init_logging, shutdown_signal};
use anyhow::{Context, Result, bail};
use clap::Args;
use criguard_agent::{AtomicDir, Metrics, NodeAgent, Output, Sink as _, StatusWriter};

/// The base policy is a policy.json: the same bound as for any policy.
const MAX_BASE_SIZE: u64 = criguard_policy::MAX_POLICY_SIZE as u64;

#[derive(Args, Debug)]
pub(crate) struct AgentArgs {
    /// The base policy.json every rendered policy starts from.
    #[arg(long, value_name = "FILE")]
    base: PathBuf,
    /// The folder serve reads: `policy.json`, `policies/`, `registries.d/`
    /// and `audit/` appear there as symlinks into the set in force.
    #[arg(long, value_name = "DIR")]
    output: PathBuf,
    /// Also write CRI-O's `signature_policy_dir` (`<namespace>.json`,
    /// enforced policies only).
    #[arg(long, value_name = "DIR")]
    crio_policy_dir: Option<PathBuf>,
    /// Write the base policy alone into `--output` if no set is in force
    /// there yet, then exit, without contacting the API server: run it
    /// before the node's first start, so serve has a policy before any
    /// pod (the agent's included) can run.
    #[arg(long)]
    seed: bool,
    #[command(flatten)]
    common: CommonArgs,
}

#[derive(Args, Debug)]
pub(crate) struct StatusWriterArgs {
    /// The base policy.json the agents render over (the same file).
    #[arg(long, value_name = "FILE")]
    base: PathBuf,
    #[command(flatten)]
    common: CommonArgs,
}

#[derive(Args, Debug)]
struct CommonArgs {
    /// A kubeconfig file. Default: $KUBECONFIG, ~/.kube/config, then the
    /// pod's service account.
    #[arg(long, value_name = "FILE")]
    kubeconfig: Option<PathBuf>,
    /// How long after the first change of a burst to render, in
    /// milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 500)]
    debounce_ms: u64,
    /// `host:port` for Prometheus metrics; "" turns them off.
    #[arg(long, value_name = "ADDRESS", default_value = "")]
    metrics_address: String,
    #[arg(long, value_enum, default_value_t = LogFormatArg::Text)]
    log_format: LogFormatArg,
}

pub(crate) fn agent(args: AgentArgs) -> Result<ExitCode> {
    init_logging(args.common.log_format.into());
    let base = read_base(&args.base)?;
    let mut serve = AtomicDir::new(&args.output);
    if args.seed {
        if let Some(generation) = serve.current() {
            println!(
                "{} already holds {generation}; nothing written",
                args.output.display()
            );
            return Ok(ExitCode::SUCCESS);
        }
        let rendered =
            criguard_agent::render::render(&base, criguard_kube_policy::Target::Criguard, &[], &[])
                .map_err(|e| anyhow::anyhow!("{e}"))?;
        let set = criguard_agent::render::serve_files(&rendered).map_err(anyhow::Error::msg)?;
        serve.write(&set)?;
        println!("wrote the base policy into {}", args.output.display());
        return Ok(ExitCode::SUCCESS);
    }
    let metrics = Arc::new(Metrics::new());
    let mut outputs = vec![Output::serve(serve)];
    if let Some(dir) = &args.crio_policy_dir {
        outputs.push(Output::crio(AtomicDir::new(dir)));
    }
    let agent = NodeAgent::new(base, outputs, Arc::clone(&metrics));
    let common = args.common;
    run(&common, Arc::clone(&metrics), |client| {
        criguard_agent::run_node_agent(client, agent, debounce(&common), metrics)
    })
}

pub(crate) fn status_writer(args: StatusWriterArgs) -> Result<ExitCode> {
    init_logging(args.common.log_format.into());
    let base = read_base(&args.base)?;
    let metrics = Arc::new(Metrics::new());
    let common = args.common;
    run(&common, Arc::clone(&metrics), |client| {
        let writer = StatusWriter::new(client.clone(), base, Arc::clone(&metrics));
        criguard_agent::run_status_writer(client, writer, debounce(&common), metrics)
    })
}

/// Connects, serves metrics, and runs `work` until SIGTERM or SIGINT.
fn run<F>(
    common: &CommonArgs,
    metrics: Arc<Metrics>,
    work: impl FnOnce(criguard_agent::Client) -> F,
) -> Result<ExitCode>
where
    F: Future<Output = criguard_agent::WatchEnded>,
{
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        let client = criguard_agent::connect(common.kubeconfig.as_deref()).await?;
        if !common.metrics_address.is_empty() {
            let bound = criguard_agent::serve_metrics(&common.metrics_address, metrics)
                .await
                .with_context(|| format!("cannot serve metrics on {}", common.metrics_address))?;
            tracing::info!(address = %bound, "metrics at /metrics");
        }
        tokio::select! {
            ended = work(client) => bail!("{ended}"),
            () = shutdown_signal() => {
                tracing::info!("stopping; the files written stay in force");
                Ok(ExitCode::SUCCESS)
            }
        }
    })
}

fn debounce(common: &CommonArgs) -> Duration {
    Duration::from_millis(common.debounce_ms.min(60_000))
}

/// The base policy's bytes; the renderer checks that it is a policy.
fn read_base(path: &Path) -> Result<Vec<u8>> {
    criguard_files::read_limited(path, MAX_BASE_SIZE)
        .with_context(|| format!("cannot read the base policy {}", path.display()))
}
