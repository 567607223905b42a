//! `criguard`: check, explain and apply containers-policy.json to images.

mod agent;
mod policy_cmd;
mod policy_render;
mod process;
mod registry_args;
mod serve;
mod signing;
mod verify;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use criguard_policy::DEFAULT_POLICY;

#[derive(Parser)]
#[command(
    name = "criguard",
    version,
    about = "Image signature policy for every CRI runtime"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Read and check containers-policy.json files.
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// Decide whether an image may run: exit 0 allowed, 1 rejected (or any
    /// error while deciding), 2 bad usage.
    Verify(verify::VerifyArgs),
    /// Write a cosign-compatible key pair (cosign.key, cosign.pub).
    Keygen(signing::KeygenArgs),
    /// Sign an image in its registry with a cosign key, as `cosign sign`.
    Sign(signing::SignArgs),
    /// Run the node daemon: a CRI proxy between the kubelet and the
    /// runtime that enforces the policy on PullImage and CreateContainer.
    Serve(serve::ServeArgs),
    /// The node agent: watch ClusterImagePolicy and ImagePolicy objects
    /// and write the node's policy files for serve, atomically.
    Agent(agent::AgentArgs),
    /// Write the policy objects' status conditions (one per cluster).
    StatusWriter(agent::StatusWriterArgs),
}

#[derive(Subcommand)]
enum PolicyCommand {
    /// Check a policy file; exit 0 if valid, 1 with every problem listed.
    Lint {
        /// The policy file.
        #[arg(default_value = DEFAULT_POLICY)]
        file: PathBuf,
    },
    /// Show which scope and requirements a policy applies to an image.
    Explain {
        /// `docker://REF`, a bare REF (docker transport) or `oci:DIR[:REF]`.
        image: String,
        /// The policy file.
        #[arg(long, default_value = DEFAULT_POLICY)]
        policy: PathBuf,
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Render ClusterImagePolicy and ImagePolicy objects into policy.json,
    /// per-namespace policies and registries.d; exit 1 on invalid input,
    /// writing nothing.
    Render(policy_render::RenderArgs),
    /// Print the CustomResourceDefinitions of criguard's policy objects.
    Crds(policy_render::CrdsArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Output {
    Text,
    Json,
}

/// Exit status for bad usage, as clap uses for argument errors.
const USAGE: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Policy { command } => match command {
            PolicyCommand::Lint { file } => policy_cmd::lint(&file),
            PolicyCommand::Explain {
                image,
                policy,
                output,
            } => policy_cmd::explain(&image, &policy, output),
            PolicyCommand::Render(args) => policy_render::run(&args),
            PolicyCommand::Crds(args) => policy_render::crds(&args),
        },
        Command::Verify(args) => verify::run(&args),
        Command::Keygen(args) => signing::keygen(&args),
        Command::Sign(args) => signing::sign(&args),
        Command::Serve(args) => serve::run(args),
        Command::Agent(args) => agent::agent(args),
        Command::StatusWriter(args) => agent::status_writer(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("criguard: {e:#}");
            ExitCode::FAILURE
        }
    }
}
