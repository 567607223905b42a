//! `criguard policy render` and `criguard policy crds`: ClusterImagePolicy
//! and ImagePolicy objects from YAML files to policy files, and the CRDs.
//!
//! The rendering is criguard-kube-policy's; this file reads the inputs and
//! writes the set of files all at once or not at all.

use std::ffi::OsString;
use std::fs::{self, File};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use criguard_kube_policy::{
    MAX_INPUT_SIZE, PolicyObject, RenderInput, Rendered, Target, parse_objects, render,
};

use crate::policy_cmd::read_limited;

/// Written into every output directory, so that a later render replaces
/// only a directory a render wrote.
const MARKER: &str = ".criguard-render";
/// Most input files read from the folders given.
const MAX_INPUT_FILES: usize = 10_000;

#[derive(Args)]
pub(crate) struct RenderArgs {
    /// The node's policy.json the objects are added to.
    #[arg(long, value_name = "FILE")]
    base: PathBuf,
    /// YAML files, or folders of `*.yaml`/`*.yml` files, holding
    /// ClusterImagePolicy and ImagePolicy objects (multi-document).
    #[arg(long, value_name = "PATH", required = true, num_args = 1..)]
    input: Vec<PathBuf>,
    /// The directory to write; it must not exist or be one this command
    /// wrote before, which is then replaced as a whole.
    #[arg(long, value_name = "DIR")]
    output: PathBuf,
    /// `criguard` writes the enforced and the audit set; `crio` only what
    /// CRI-O can enforce (no audit policies).
    #[arg(long, value_enum, default_value_t = TargetArg::Criguard)]
    target: TargetArg,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum TargetArg {
    Criguard,
    Crio,
}

#[derive(Args)]
pub(crate) struct CrdsArgs {
    /// Write to this file instead of standard output.
    #[arg(long, value_name = "FILE")]
    output: Option<PathBuf>,
}

pub(crate) fn crds(args: &CrdsArgs) -> Result<ExitCode> {
    let yaml = criguard_kube_policy::crds_yaml();
    match &args.output {
        Some(path) => {
            fs::write(path, yaml).with_context(|| format!("writing {}", path.display()))?
        }
        None => print!("{yaml}"),
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn run(args: &RenderArgs) -> Result<ExitCode> {
    let base_policy = read_limited(&args.base, criguard_policy::MAX_POLICY_SIZE)?;
    let mut input = RenderInput {
        base_policy,
        target: match args.target {
            TargetArg::Criguard => Target::Criguard,
            TargetArg::Crio => Target::Crio,
        },
        ..RenderInput::default()
    };
    let mut invalid = false;
    for path in input_files(&args.input)? {
        let text = read_limited(&path, MAX_INPUT_SIZE)?;
        match parse_objects(&text, &path.display().to_string()) {
            Ok(objects) => {
                for object in objects {
                    match object {
                        PolicyObject::Cluster(policy) => input.cluster.push(policy),
                        PolicyObject::Namespaced(policy) => input.namespaced.push(policy),
                    }
                }
            }
            Err(e) => {
                eprintln!("criguard: {e}");
                invalid = true;
            }
        }
    }
    if invalid {
        eprintln!("criguard: invalid input; nothing written");
        return Ok(ExitCode::FAILURE);
    }
    let rendered = match render(&input) {
        Ok(rendered) => rendered,
        Err(errors) => {
            for error in &errors.0 {
                eprintln!("criguard: {error}");
            }
            eprintln!("criguard: invalid input; nothing written");
            return Ok(ExitCode::FAILURE);
        }
    };
    write_set(&args.output, &rendered)?;
    report(args, &input, &rendered);
    Ok(ExitCode::SUCCESS)
}

/// The files named, and the `*.yaml`/`*.yml` files of the folders named
/// (not their subfolders), each folder's in name order.
fn input_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        let meta = fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
        if !meta.is_dir() {
            files.push(path.clone());
            continue;
        }
        let mut found = Vec::new();
        for entry in fs::read_dir(path).with_context(|| format!("reading {}", path.display()))? {
            let entry = entry.with_context(|| format!("reading {}", path.display()))?;
            let name = entry.file_name();
            let yaml = Path::new(&name)
                .extension()
                .is_some_and(|e| e == "yaml" || e == "yml");
            if yaml && entry.file_type().is_ok_and(|t| !t.is_dir()) {
                found.push(entry.path());
            }
        }
        found.sort();
        files.extend(found);
        if files.len() > MAX_INPUT_FILES {
            bail!("more than {MAX_INPUT_FILES} input files");
        }
    }
    Ok(files)
}

/// Writes the set into a new directory beside `output`, syncs it, and puts
/// it in place with one rename (an exchange when `output` exists), so a
/// reader sees the old set or the new one, never a mixture.
fn write_set(output: &Path, rendered: &Rendered) -> Result<()> {
    let parent = match output.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let replacing = match fs::symlink_metadata(output) {
        Ok(meta) if meta.is_dir() && output.join(MARKER).is_file() => true,
        Ok(_) => bail!(
            "{} exists and was not written by `criguard policy render`; refusing to replace it",
            output.display()
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => return Err(e).with_context(|| format!("reading {}", output.display())),
    };
    let mut prefix = OsString::from(".");
    prefix.push(output.file_name().unwrap_or_default());
    prefix.push(".new-");
    let staging = tempfile::Builder::new()
        .prefix(&prefix)
        .tempdir_in(&parent)
        .with_context(|| format!("creating a directory in {}", parent.display()))?;
    let mut files: Vec<(PathBuf, &[u8])> = rendered
        .files
        .iter()
        .map(|(path, bytes)| (path.clone(), bytes.as_slice()))
        .collect();
    files.push((PathBuf::from(MARKER), b"".as_slice()));
    for (relative, bytes) in &files {
        let path = staging.path().join(relative);
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let mut file =
            File::create(&path).with_context(|| format!("writing {}", path.display()))?;
        file.write_all(bytes)
            .and_then(|()| file.sync_all())
            .with_context(|| format!("writing {}", path.display()))?;
    }
    sync_dirs(staging.path())?;
    let staged = staging.keep();
    let swapped = if replacing {
        rustix::fs::renameat_with(
            rustix::fs::CWD,
            &staged,
            rustix::fs::CWD,
            output,
            rustix::fs::RenameFlags::EXCHANGE,
        )
        .map_err(std::io::Error::from)
    } else {
        rustix::fs::renameat_with(
            rustix::fs::CWD,
            &staged,
            rustix::fs::CWD,
            output,
            rustix::fs::RenameFlags::NOREPLACE,
        )
        .map_err(std::io::Error::from)
    };
    if let Err(e) = swapped {
        let _ = fs::remove_dir_all(&staged);
        return Err(e).with_context(|| format!("putting the files in {}", output.display()));
    }
    File::open(&parent)
        .and_then(|dir| dir.sync_all())
        .with_context(|| format!("syncing {}", parent.display()))?;
    if replacing {
        // `staged` now holds the previous set.
        fs::remove_dir_all(&staged)
            .with_context(|| format!("removing the previous set {}", staged.display()))?;
    }
    Ok(())
}

/// fsyncs `dir` and every directory below it, so the new names are durable
/// before the rename publishes them.
fn sync_dirs(dir: &Path) -> Result<()> {
    for entry in fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            sync_dirs(&entry.path())?;
        }
    }
    File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("syncing {}", dir.display()))
}

fn report(args: &RenderArgs, input: &RenderInput, rendered: &Rendered) {
    println!(
        "rendered {} ClusterImagePolicy and {} ImagePolicy object(s) for {} into {}:",
        input.cluster.len(),
        input.namespaced.len(),
        match args.target {
            TargetArg::Criguard => "criguard",
            TargetArg::Crio => "CRI-O",
        },
        args.output.display()
    );
    for path in rendered.files.keys() {
        println!("  {}", path.display());
    }
    for object in &rendered.applied {
        println!("applied: {object}");
    }
    for c in &rendered.conflicts {
        println!(
            "conflict: ImagePolicy/{}/{}: scope {:?} is inside {:?} of ClusterImagePolicy/{}; dropped",
            c.namespace, c.name, c.scope, c.cluster_scope, c.cluster_policy
        );
    }
    for object in &rendered.not_rendered {
        println!("not rendered: {object}: Audit mode, which CRI-O does not have");
    }
}
