//! `criguard verify`: what CRI-O decides when it pulls an image.
//!
//! The manifest that would be pulled (the platform's, for a multi-arch
//! image) is resolved and digest-checked, the signatures registries.d says
//! to look for are fetched next to it, and the policy is evaluated for the
//! reference as written. Anything that goes wrong on the way is a
//! rejection with the reason, never an allowance.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow};
use clap::Args;
use criguard_policy::{
    Decision, Evaluator, Image, ImageReference, Policy, Signature, SignatureOutcome,
};
use criguard_reference::Digest;
use criguard_registries::RegistriesD;
use criguard_registry::{ImageSignatures, MAX_MANIFEST_SIZE, Platform, Registry};
use serde_json::json;

use crate::policy_cmd::read_limited;
use crate::registry_args::{RegistryArgs, runtime};
use crate::{DEFAULT_POLICY, Output, USAGE, policy_cmd};
use criguard_serve::DEFAULT_REGISTRIES_D;

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
    #[arg(long, value_enum, default_value_t = Output::Text)]
    output: Output,
}

/// What was looked at, for the report.
#[derive(Default)]
struct Inspected {
    digest: Option<Digest>,
    index_digest: Option<Digest>,
    platform: Option<String>,
    source: Option<String>,
    signatures: usize,
    /// Where signatures were looked for (without the signatures), for the
    /// hints; `None` where that does not apply (OCI layouts) or was not
    /// reached.
    found: Option<ImageSignatures>,
}

fn notes(inspected: &Inspected, requirement_type: &str) -> Vec<String> {
    inspected
        .found
        .as_ref()
        .map(|found| found.notes(requirement_type))
        .unwrap_or_default()
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
    let mut inspected = Inspected::default();
    let outcome = decide(args, &image, &platform, &mut inspected);
    report(args, &image, &inspected, &outcome)?;
    Ok(match outcome {
        Ok(decision) if decision.is_allowed() => ExitCode::SUCCESS,
        _ => ExitCode::FAILURE,
    })
}

fn decide(
    args: &VerifyArgs,
    image: &ImageReference,
    platform: &Platform,
    inspected: &mut Inspected,
) -> Result<Decision> {
    let policy = match policy_cmd::load_policy(&args.policy)? {
        Ok(policy) => policy,
        Err(error) => {
            policy_cmd::print_problems(&args.policy, &error);
            return Err(anyhow!(
                "{}: invalid policy, so every image is rejected",
                args.policy.display()
            ));
        }
    };
    let needs_signatures = policy.requirements_for(image).1.verify_signatures();
    let (digest, signatures) = match image {
        ImageReference::Docker(reference) => {
            let registries_d = RegistriesD::load_dir(&args.registries_d)
                .with_context(|| format!("reading {}", args.registries_d.display()))?;
            let registry = args.registry.registry()?;
            runtime()?.block_on(fetch(
                &registry,
                &registries_d,
                reference,
                platform,
                needs_signatures,
                inspected,
            ))?
        }
        ImageReference::Oci {
            resolved_dir,
            image: name,
            ..
        } => {
            // containers/image's OCI layouts carry no signatures.
            let digest = oci_manifest_digest(
                Path::new(resolved_dir),
                Some(name.as_str()).filter(|n| !n.is_empty()),
                platform,
            )?;
            inspected.digest = Some(digest.clone());
            (digest, Vec::new())
        }
    };
    inspected.signatures = signatures.len();
    Ok(evaluate(&policy, image, &digest, &signatures))
}

/// The digest of the manifest that would be pulled, and the signatures
/// registries.d lets us look for. What is learnt goes into `inspected` as
/// soon as it is known, so that a later failure still reports it.
async fn fetch(
    registry: &Registry,
    registries_d: &RegistriesD,
    reference: &criguard_reference::Reference,
    platform: &Platform,
    needs_signatures: bool,
    inspected: &mut Inspected,
) -> Result<(Digest, Vec<Signature>)> {
    let resolved = registry.resolve(reference, platform).await?;
    inspected.digest = Some(resolved.manifest_digest.clone());
    inspected.index_digest = resolved.index_digest.clone();
    inspected.platform = resolved.platform.as_ref().map(ToString::to_string);
    if resolved.source != resolved.reference {
        inspected.source = Some(resolved.source.to_string());
    }
    if !needs_signatures {
        return Ok((resolved.manifest_digest, Vec::new()));
    }
    let mut found = registry.signatures(registries_d, &resolved).await?;
    let signatures = std::mem::take(&mut found.signatures);
    inspected.found = Some(found);
    Ok((resolved.manifest_digest, signatures))
}

fn evaluate(
    policy: &Policy,
    image: &ImageReference,
    digest: &Digest,
    signatures: &[Signature],
) -> Decision {
    let sigstore = criguard_sigstore::Verifier::new();
    let gpg = criguard_simple_signing::Verifier::new();
    Evaluator {
        files: &criguard_serve::FsTrustFiles,
        simple_signing: Some(&gpg),
        sigstore: Some(&sigstore),
    }
    .evaluate(
        policy,
        &Image {
            reference: image,
            manifest_digest: digest,
            signatures,
        },
    )
}

/// The digest of the manifest an OCI layout's `index.json` names for
/// `name` (or its only image), checked against the blob's bytes; an image
/// index is followed to `platform`'s instance, as for a registry.
fn oci_manifest_digest(dir: &Path, name: Option<&str>, platform: &Platform) -> Result<Digest> {
    let index = read_limited(&dir.join("index.json"), MAX_MANIFEST_SIZE)?;
    let index: serde_json::Value =
        serde_json::from_slice(&index).context("parsing the OCI layout's index.json")?;
    let manifests = index["manifests"]
        .as_array()
        .ok_or_else(|| anyhow!("index.json has no manifests"))?;
    let chosen: Vec<&serde_json::Value> = manifests
        .iter()
        .filter(|m| match name {
            Some(name) => m["annotations"]["org.opencontainers.image.ref.name"] == name,
            None => true,
        })
        .collect();
    let mut descriptor = match chosen.as_slice() {
        [one] => (*one).clone(),
        [] => {
            return Err(anyhow!(
                "no image {:?} in the OCI layout",
                name.unwrap_or("")
            ));
        }
        _ => return Err(anyhow!("more than one image in the OCI layout; name one")),
    };
    // One level of index, as containers/image follows.
    for level in 0..2 {
        let digest = Digest::parse(descriptor["digest"].as_str().unwrap_or_default())
            .map_err(|e| anyhow!("OCI layout descriptor: {e}"))?;
        let blob = read_limited(
            &dir.join("blobs")
                .join(digest.algorithm())
                .join(digest.encoded()),
            MAX_MANIFEST_SIZE,
        )?;
        criguard_registry::digest::verify("manifest", &digest, &blob)?;
        let parsed: serde_json::Value =
            serde_json::from_slice(&blob).context("parsing a manifest in the OCI layout")?;
        let is_index = descriptor["mediaType"] == criguard_registry::OCI_INDEX
            || parsed["mediaType"] == criguard_registry::OCI_INDEX;
        if !is_index {
            return Ok(digest);
        }
        if level == 1 {
            break;
        }
        let instances = parsed["manifests"]
            .as_array()
            .ok_or_else(|| anyhow!("image index {digest} has no manifests"))?;
        let platforms: Vec<Option<Platform>> = instances
            .iter()
            .map(|m| {
                let p = &m["platform"];
                Some(Platform {
                    os: p["os"].as_str()?.to_owned(),
                    architecture: p["architecture"].as_str()?.to_owned(),
                    variant: p["variant"].as_str().map(str::to_owned),
                })
            })
            .collect();
        let position = platform
            .choose_instance(platforms.iter().map(Option::as_ref))
            .ok_or_else(|| anyhow!("image index {digest} has no instance for {platform}"))?;
        descriptor = instances[position].clone();
    }
    Err(anyhow!("nested image indexes are not supported"))
}

fn report(
    args: &VerifyArgs,
    image: &ImageReference,
    inspected: &Inspected,
    outcome: &Result<Decision>,
) -> Result<()> {
    let name = image.image_name();
    match args.output {
        Output::Json => {
            let mut value = json!({
                "image": name,
                "digest": inspected.digest.as_ref().map(Digest::as_str),
                "indexDigest": inspected.index_digest.as_ref().map(Digest::as_str),
                "platform": inspected.platform,
                "source": inspected.source,
            });
            match outcome {
                Ok(decision) => {
                    value["verdict"] = json!(if decision.is_allowed() {
                        "allowed"
                    } else {
                        "rejected"
                    });
                    value["scope"] = json!(decision.scope.scope());
                    if let Some(r) = decision.rejection() {
                        value["reason"] = json!(r.message);
                        value["kind"] = json!(r.kind);
                        value["requirement"] = json!({
                            "index": r.requirement_index,
                            "count": r.requirement_count,
                            "type": r.requirement_type,
                        });
                        value["signatures"] = json!(r.signatures);
                        let notes = notes(inspected, r.requirement_type);
                        if !notes.is_empty() {
                            value["notes"] = json!(notes);
                        }
                    } else {
                        value["signatures"] = json!(Vec::<SignatureOutcome>::new());
                    }
                }
                Err(e) => {
                    value["verdict"] = json!("rejected");
                    value["reason"] = json!(format!("{e:#}"));
                    value["kind"] = json!("error");
                }
            }
            println!("{}", serde_json::to_string_pretty(&value)?);
        }
        Output::Text => match outcome {
            Ok(decision) => {
                let verdict = if decision.is_allowed() {
                    "allowed"
                } else {
                    "rejected"
                };
                println!("{verdict}: {name}");
                if let Some(r) = decision.rejection() {
                    println!("  reason:    {}", r.message);
                }
                print_inspected(inspected);
                println!("  policy:    {}", decision.scope);
                if let Some(r) = decision.rejection() {
                    if r.requirement_count > 0 {
                        println!(
                            "  failed:    requirement {} of {} ({})",
                            r.requirement_index, r.requirement_count, r.requirement_type
                        );
                    }
                    for note in notes(inspected, r.requirement_type) {
                        println!("  note:      {note}");
                    }
                    for s in &r.signatures {
                        println!(
                            "  signature {} ({}): {}",
                            s.index,
                            s.format,
                            s.reason.as_deref().unwrap_or("accepted")
                        );
                    }
                }
            }
            Err(e) => {
                println!("rejected: {name}");
                println!("  reason:    {e:#}");
                print_inspected(inspected);
            }
        },
    }
    Ok(())
}

fn print_inspected(inspected: &Inspected) {
    if let Some(digest) = &inspected.digest {
        println!("  manifest:  {digest}");
    }
    if let Some(platform) = &inspected.platform {
        let from = inspected
            .index_digest
            .as_ref()
            .map(|d| format!(" (from index {d})"))
            .unwrap_or_default();
        println!("  platform:  {platform}{from}");
    }
    if let Some(source) = &inspected.source {
        println!("  pulled:    {source}");
    }
    if inspected.digest.is_some() {
        println!("  signatures found: {}", inspected.signatures);
    }
}
