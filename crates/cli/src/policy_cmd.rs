//! `criguard policy lint` and `criguard policy explain`: reading a policy
//! and showing what it means for an image, with no network and no keys.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use criguard_policy::{ImageName, ImageReference, Policy, PolicyError};

use crate::Output;

/// Reads and parses a policy file; a policy that does not load is an error,
/// so whatever uses it rejects.
pub(crate) fn load_policy(path: &Path) -> Result<Result<Policy, PolicyError>> {
    let bytes = read_limited(path, criguard_policy::MAX_POLICY_SIZE)?;
    Ok(Policy::from_bytes(&bytes, &path.display().to_string()))
}

/// Reads a file the command was pointed at (policy, key, OCI layout blob),
/// refusing one larger than `limit` without reading more than that: a wrong
/// path must not make criguard read a huge file into memory.
pub(crate) fn read_limited(path: &Path, limit: usize) -> Result<Vec<u8>> {
    criguard_files::read_limited(path, limit as u64)
        .with_context(|| format!("reading {}", path.display()))
}

pub(crate) fn print_problems(path: &Path, error: &PolicyError) {
    for p in error.problems() {
        let place = if p.path.is_empty() {
            String::new()
        } else {
            format!(" {}:", p.path)
        };
        eprintln!(
            "{}:{}:{}:{place} {}",
            path.display(),
            p.line,
            p.column,
            p.message
        );
    }
}

pub(crate) fn lint(path: &Path) -> Result<ExitCode> {
    match load_policy(path)? {
        Err(error) => {
            print_problems(path, &error);
            eprintln!(
                "{}: invalid policy, {} problem(s)",
                path.display(),
                error.problems().len()
            );
            Ok(ExitCode::FAILURE)
        }
        Ok(policy) => {
            for name in policy.unknown_transports() {
                eprintln!(
                    "{}: warning: transport {name:?} is not one containers/image knows; its scopes never apply",
                    path.display()
                );
            }
            println!(
                "{}: valid policy ({} scope(s) in {} transport(s))",
                path.display(),
                policy.scope_count(),
                policy.transport_names().len()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Turns a command-line image name into what the policy evaluates; OCI
/// layout paths are made absolute with symlinks resolved, as
/// containers/image identifies them.
pub(crate) fn image_reference(input: &str) -> Result<ImageReference> {
    Ok(match ImageName::parse(input)? {
        ImageName::Docker(reference) => ImageReference::Docker(reference),
        ImageName::Oci { dir, image } => {
            let resolved_dir = resolve_path(Path::new(&dir))
                .with_context(|| format!("resolving OCI layout path {dir:?}"))?
                .display()
                .to_string();
            ImageReference::Oci {
                dir,
                image,
                resolved_dir,
            }
        }
    })
}

/// An absolute, symlink-free path; a path that does not exist yet is
/// resolved through its parent.
fn resolve_path(path: &Path) -> std::io::Result<PathBuf> {
    match std::fs::canonicalize(path) {
        Ok(p) => Ok(p),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let absolute = std::path::absolute(path)?;
            match (absolute.parent(), absolute.file_name()) {
                (Some(parent), Some(name)) => Ok(resolve_path(parent)?.join(name)),
                _ => Ok(absolute),
            }
        }
        Err(e) => Err(e),
    }
}

pub(crate) fn explain(input: &str, policy_path: &Path, output: Output) -> Result<ExitCode> {
    let image = image_reference(input)?;
    let policy = match load_policy(policy_path)? {
        Ok(policy) => policy,
        Err(error) => {
            print_problems(policy_path, &error);
            eprintln!(
                "{}: invalid policy: every image would be rejected",
                policy_path.display()
            );
            return Ok(ExitCode::FAILURE);
        }
    };
    let explanation = policy.explain(&image);
    let transport = image.transport().name();
    match output {
        Output::Json => {
            let value = serde_json::json!({
                "image": image.image_name(),
                "transport": transport,
                "scope": explanation.matched.scope(),
                "requirements": explanation.requirements.to_json(),
                "candidates": explanation.candidates,
            });
            println!("{}", serde_json::to_string_pretty(&value)?);
        }
        Output::Text => {
            println!("image:     {}", image.image_name());
            if let Some(reference) = image.docker_reference() {
                println!("reference: {reference}");
            }
            println!("transport: {transport}");
            if policy.transport(transport).is_none() {
                println!("scopes:    the policy has no {transport:?} transport section");
            } else {
                println!("scopes tried, most specific first:");
                for c in &explanation.candidates {
                    let mark = if c.matched { "matched" } else { "-" };
                    println!("  {:<60} {mark}", format!("{:?}", c.scope));
                }
            }
            println!("applies:   {}", explanation.matched);
            println!("requirements (all must hold):");
            for (i, entry) in explanation.requirements.iter().enumerate() {
                println!("  {}. {}", i + 1, entry.json);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
