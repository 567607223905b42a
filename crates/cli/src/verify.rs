//! `criguard verify`: what CRI-O decides when it pulls an image.
//!
//! The manifest that would be pulled (the platform's, for a multi-arch
//! image) is resolved and digest-checked, the signatures registries.d says
//! to look for are fetched next to it, and the policy is evaluated for the
//! reference as written. Anything that goes wrong on the way is a
//! rejection with the reason, never an allowance.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result, anyhow};
use clap::Args;
use criguard_policy::{DEFAULT_POLICY, ImageReference};
use criguard_registries::{DEFAULT_REGISTRIES_D, RegistriesD};
use criguard_registry::Platform;
use criguard_verification::{
    Lookup, OciLayout, RegistrySource, Verification, Verifiers, VerifyError, verify,
};

use crate::registry_args::{RegistryArgs, runtime};
use crate::{Output, USAGE, policy_cmd};

#[derive(Args, Debug)]
pub(crate) struct VerifyArgs {
    /// `docker://REF`, a bare REF (docker transport) or `oci:DIR[:REF]`.
    image: String,
    /// The policy file.
    #[arg(long, default_value = DEFAULT_POLICY)]
    policy: PathBuf,
    /// Directory of registries.d YAML files (where signatures are).
    #[arg(long = "registries.d", value_name = "DIR", default_value = DEFAULT_REGISTRIES_D)]
    registries_d: PathBuf,
    /// The platform whose manifest is checked, `os/arch[/variant]`.
    /// Default: this machine's.
    #[arg(long)]
    platform: Option<String>,
    #[command(flatten)]
    registry: RegistryArgs,
    /// A sigstore trusted_root.json (read from this file, never fetched):
    /// lets cosign 3 bundles with Rekor v2 entries and RFC 3161 timestamps
    /// verify, for policies that name the logs' keys.
    #[arg(long, value_name = "FILE")]
    trusted_root: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = Output::Text)]
    output: Output,
}

pub(crate) fn run(args: &VerifyArgs) -> Result<ExitCode> {
    let image = match policy_cmd::image_reference(&args.image) {
        Ok(image) => image,
        Err(e) => {
            eprintln!("criguard: {e:#}");
            return Ok(ExitCode::from(USAGE));
        }
    };
    let platform = match args
        .platform
        .as_deref()
        .map(str::parse::<Platform>)
        .transpose()
    {
        Ok(platform) => platform.unwrap_or_else(Platform::host),
        Err(e) => {
            eprintln!("criguard: --platform: {e}");
            return Ok(ExitCode::from(USAGE));
        }
    };
    let verification = decide(args, &image, platform);
    let name = image.image_name();
    match args.output {
        Output::Json => println!(
            "{}",
            serde_json::to_string_pretty(&verification.to_json(&name))?
        ),
        Output::Text => print!("{}", verification.to_text(&name)),
    }
    Ok(if verification.is_allowed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The pipeline's verdict, or why it could not run: anything that goes
/// wrong before it (an invalid policy, an unreadable registries.d) is a
/// rejection too.
fn decide(args: &VerifyArgs, image: &ImageReference, platform: Platform) -> Verification {
    match setup_and_verify(args, image, platform) {
        Ok(verification) => verification,
        Err(e) => Verification::failed(VerifyError::Configuration(format!("{e:#}"))),
    }
}

fn setup_and_verify(
    args: &VerifyArgs,
    image: &ImageReference,
    platform: Platform,
) -> Result<Verification> {
    let policy = match policy_cmd::load_policy(&args.policy)? {
        Ok(policy) => Arc::new(policy),
        Err(error) => {
            policy_cmd::print_problems(&args.policy, &error);
            return Err(anyhow!(
                "{}: invalid policy, so every image is rejected",
                args.policy.display()
            ));
        }
    };
    let verifiers = Arc::new(Verifiers::from_disk_with_trusted_root(
        args.trusted_root.as_deref(),
    )?);
    let verification = match image {
        ImageReference::Docker(_) => {
            let registries_d = RegistriesD::load_dir(&args.registries_d)
                .with_context(|| format!("reading {}", args.registries_d.display()))?;
            let source = RegistrySource::new(
                Arc::new(args.registry.registry()?),
                Arc::new(registries_d),
                platform,
            );
            runtime()?.block_on(verify(&source, &policy, image, &verifiers, Lookup::Always))
        }
        ImageReference::Oci { .. } => runtime()?.block_on(verify(
            &OciLayout::new(platform),
            &policy,
            image,
            &verifiers,
            Lookup::Always,
        )),
    };
    Ok(verification)
}
