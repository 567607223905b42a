//! Writing a [`FileSet`] into the folder `serve` (or CRI-O) reads, so
//! that a reader sees the whole previous set or the whole new one, never
//! a mixture or a half-written file.
//!
//! The layout is the kubelet's for ConfigMap volumes, which every Linux
//! file watcher already copes with:
//!
//! ```text
//! OUT/..gen-<digest>/policy.json, policies/…, registries.d/…   one complete set
//! OUT/..data -> ..gen-<digest>                                  swapped by rename(2)
//! OUT/policy.json -> ..data/policy.json                         stable paths
//! OUT/policies -> ..data/policies
//! OUT/registries.d -> ..data/registries.d
//! ```
//!
//! A new set is written to a temporary folder, every file and folder is
//! fsynced, the folder is renamed to its generation name, and `..data` is
//! replaced by a symlink renamed over it: one atomic step. The previous
//! generation is kept until the next swap, so a reader that was listing
//! it when it was replaced finishes on intact files; older ones are
//! removed.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

use crate::fileset::{FileSet, GENERATION_PREFIX};

/// The symlink naming the generation in force.
pub const DATA_LINK: &str = "..data";
const TEMP_PREFIX: &str = "..tmp-";

/// Why a set could not be written. Nothing a reader uses has changed
/// unless the error says so.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("cannot {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// A stable path is taken by something the agent did not create; it
    /// is never removed or replaced.
    #[error(
        "{path} exists and is not the agent's symlink; move it away so the agent can manage it"
    )]
    NotManaged { path: PathBuf },
}

/// What a write did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOutcome {
    /// The set in force is already this one; nothing was written.
    Unchanged { generation: String },
    /// The set is now in force.
    Written { generation: String },
}

/// Where rendered sets go. The agent writes through this trait; tests of
/// the agent's decisions use [`MemorySink`].
pub trait Sink: Send {
    fn write(&mut self, set: &FileSet) -> Result<WriteOutcome, WriteError>;
}

/// A folder on disk, written as described in the module documentation.
#[derive(Debug, Clone)]
pub struct AtomicDir {
    out: PathBuf,
}

impl AtomicDir {
    pub fn new(out: impl Into<PathBuf>) -> AtomicDir {
        AtomicDir { out: out.into() }
    }

    pub fn path(&self) -> &Path {
        &self.out
    }

    /// The generation in force, if any.
    pub fn current(&self) -> Option<String> {
        let target = fs::read_link(self.out.join(DATA_LINK)).ok()?;
        target.to_str().map(str::to_owned)
    }
}

impl Sink for AtomicDir {
    fn write(&mut self, set: &FileSet) -> Result<WriteOutcome, WriteError> {
        let out = &self.out;
        DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(out)
            .map_err(io("create", out))?;
        let generation = set.generation_name();
        let links = set.top_level();
        // Refuse before changing anything when a stable path is not ours.
        for name in &links {
            let path = out.join(name);
            if let Ok(meta) = fs::symlink_metadata(&path) {
                let ours = meta.file_type().is_symlink()
                    && fs::read_link(&path).is_ok_and(|t| t == Path::new(DATA_LINK).join(name));
                if !ours && meta.is_dir() {
                    return Err(WriteError::NotManaged { path });
                }
            }
        }
        let unchanged = self.current().as_deref() == Some(generation.as_str())
            && out.join(&generation).is_dir()
            && links.iter().all(|name| link_is(&out.join(name), name));
        if unchanged {
            return Ok(WriteOutcome::Unchanged { generation });
        }
        let previous = self.current();
        if previous.as_deref() != Some(generation.as_str()) || !out.join(&generation).is_dir() {
            write_generation(out, &generation, set)?;
        }
        // The swap: one rename of a symlink over `..data`.
        replace_symlink(out, DATA_LINK, Path::new(&generation))?;
        for name in &links {
            let path = out.join(name);
            if !link_is(&path, name) {
                replace_symlink(out, name, &Path::new(DATA_LINK).join(name))?;
            }
        }
        sync_dir(out)?;
        // The new set is in force; what is left of old ones is only
        // clutter (a generation another user made, say), never read.
        if let Err(e) = remove_stale(out, &generation, previous.as_deref(), &links) {
            tracing::warn!(error = %e, "cannot remove an old generation of rendered files");
        }
        Ok(WriteOutcome::Written { generation })
    }
}

/// Writes `set` into a temporary folder, fsyncs it all, and renames it to
/// `generation` (replacing a leftover of that name from an interrupted
/// run, which is not in force).
fn write_generation(out: &Path, generation: &str, set: &FileSet) -> Result<(), WriteError> {
    let temp = out.join(format!("{TEMP_PREFIX}{generation}"));
    remove_any(&temp)?;
    let builder = {
        let mut b = DirBuilder::new();
        b.mode(0o755);
        b
    };
    builder.create(&temp).map_err(io("create", &temp))?;
    for folder in set.folders() {
        let path = temp.join(folder);
        builder.create(&path).map_err(io("create", &path))?;
    }
    for (name, bytes) in set.files() {
        let path = temp.join(name);
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(&path)
            .map_err(io("create", &path))?;
        file.write_all(bytes).map_err(io("write", &path))?;
        file.sync_all().map_err(io("fsync", &path))?;
    }
    // Children before parents, so each folder's entries are durable.
    for folder in set.folders().iter().rev() {
        sync_dir(&temp.join(folder))?;
    }
    sync_dir(&temp)?;
    let target = out.join(generation);
    remove_any(&target)?;
    fs::rename(&temp, &target).map_err(io("rename", &temp))?;
    sync_dir(out)
}

/// Points `out/name` at `target` by renaming a new symlink over it.
fn replace_symlink(out: &Path, name: &str, target: &Path) -> Result<(), WriteError> {
    let temp = out.join(format!("{TEMP_PREFIX}link-{name}"));
    remove_any(&temp)?;
    std::os::unix::fs::symlink(target, &temp).map_err(io("create the symlink", &temp))?;
    let path = out.join(name);
    fs::rename(&temp, &path).map_err(io("rename", &temp))
}

/// Removes generations other than `current` and `keep`, temporary
/// leftovers, and stable links into `..data` for names the set no longer
/// has (they would dangle).
fn remove_stale(
    out: &Path,
    current: &str,
    keep: Option<&str>,
    links: &std::collections::BTreeSet<String>,
) -> Result<(), WriteError> {
    let entries = fs::read_dir(out).map_err(io("list", out))?;
    let mut removed = false;
    for entry in entries {
        let entry = entry.map_err(io("list", out))?;
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        let path = entry.path();
        let stale_generation =
            name.starts_with(GENERATION_PREFIX) && name != current && Some(name.as_str()) != keep;
        let stale_link = !name.starts_with("..")
            && !links.contains(&name)
            && fs::read_link(&path).is_ok_and(|t| t.starts_with(DATA_LINK));
        if stale_generation || name.starts_with(TEMP_PREFIX) || stale_link {
            remove_any(&path)?;
            removed = true;
        }
    }
    if removed {
        sync_dir(out)?;
    }
    Ok(())
}

fn link_is(path: &Path, name: &str) -> bool {
    fs::read_link(path).is_ok_and(|t| t == Path::new(DATA_LINK).join(name))
}

/// Removes a file, symlink or folder tree; absence is fine.
fn remove_any(path: &Path) -> Result<(), WriteError> {
    let result = match fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => Err(e),
        Ok(meta) if meta.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
    };
    result.map_err(io("remove", path))
}

fn sync_dir(path: &Path) -> Result<(), WriteError> {
    File::open(path)
        .and_then(|dir| dir.sync_all())
        .map_err(io("fsync", path))
}

fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> WriteError {
    let path = path.to_owned();
    move |source| WriteError::Io {
        action,
        path,
        source,
    }
}

/// An in-memory [`Sink`] for tests of what the agent decides to write:
/// the sets written, in order, and an optional failure to return.
#[derive(Debug, Default)]
pub struct MemorySink {
    pub written: Vec<FileSet>,
    pub fail: Option<String>,
}

impl Sink for MemorySink {
    fn write(&mut self, set: &FileSet) -> Result<WriteOutcome, WriteError> {
        if let Some(message) = &self.fail {
            return Err(WriteError::Io {
                action: "write",
                path: PathBuf::from("memory"),
                source: std::io::Error::other(message.clone()),
            });
        }
        let generation = set.generation_name();
        if self.written.last() == Some(set) {
            return Ok(WriteOutcome::Unchanged { generation });
        }
        self.written.push(set.clone());
        Ok(WriteOutcome::Written { generation })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn set(entries: &[(&str, &str)]) -> FileSet {
        let files: BTreeMap<PathBuf, Vec<u8>> = entries
            .iter()
            .map(|(p, c)| (PathBuf::from(p), c.as_bytes().to_vec()))
            .collect();
        FileSet::new(files, [PathBuf::from("policies")]).unwrap()
    }

    fn read(path: &Path) -> String {
        fs::read_to_string(path).unwrap()
    }

    fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_set_is_readable_at_stable_paths_and_replaced_whole() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("rendered");
        let mut dir = AtomicDir::new(&out);
        let first = set(&[("policy.json", "1"), ("policies/a.json", "a1")]);
        let outcome = dir.write(&first).unwrap();
        assert_eq!(
            outcome,
            WriteOutcome::Written {
                generation: first.generation_name()
            }
        );
        assert_eq!(read(&out.join("policy.json")), "1");
        assert_eq!(read(&out.join("policies/a.json")), "a1");
        assert!(
            fs::symlink_metadata(out.join("policies"))
                .unwrap()
                .file_type()
                .is_symlink()
        );

        let second = set(&[("policy.json", "2"), ("policies/b.json", "b2")]);
        dir.write(&second).unwrap();
        assert_eq!(read(&out.join("policy.json")), "2");
        assert_eq!(entries(&out.join("policies")), ["b.json"]);
        // The previous generation stays for readers still in it.
        assert!(
            out.join(first.generation_name())
                .join("policies/a.json")
                .is_file()
        );

        let third = set(&[("policy.json", "3")]);
        dir.write(&third).unwrap();
        assert!(
            !out.join(first.generation_name()).exists(),
            "{:?}",
            entries(&out)
        );
        assert_eq!(
            entries(&out),
            [
                "..data".to_owned(),
                second.generation_name(),
                third.generation_name(),
                "policies".to_owned(),
                "policy.json".to_owned()
            ]
        );
        // An empty policies folder still exists.
        assert_eq!(entries(&out.join("policies")), Vec::<String>::new());
    }

    #[test]
    fn the_same_set_twice_writes_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let mut dir = AtomicDir::new(tmp.path());
        let one = set(&[("policy.json", "1")]);
        dir.write(&one).unwrap();
        let inode = |p: &Path| std::os::unix::fs::MetadataExt::ino(&fs::metadata(p).unwrap());
        let before = inode(&tmp.path().join("policy.json"));
        assert_eq!(
            dir.write(&one).unwrap(),
            WriteOutcome::Unchanged {
                generation: one.generation_name()
            }
        );
        assert_eq!(inode(&tmp.path().join("policy.json")), before);
    }

    #[test]
    fn names_that_leave_the_set_lose_their_links() {
        let tmp = tempfile::tempdir().unwrap();
        let mut dir = AtomicDir::new(tmp.path());
        dir.write(&set(&[("policy.json", "1"), ("audit/x", "")]))
            .unwrap();
        assert!(tmp.path().join("audit/x").is_file());
        dir.write(&set(&[("policy.json", "1")])).unwrap();
        assert!(fs::symlink_metadata(tmp.path().join("audit")).is_err());
    }

    #[test]
    fn a_folder_the_agent_did_not_make_is_left_alone_and_nothing_changes() {
        let tmp = tempfile::tempdir().unwrap();
        fs::create_dir(tmp.path().join("policies")).unwrap();
        fs::write(tmp.path().join("policies/mine.json"), "x").unwrap();
        let mut dir = AtomicDir::new(tmp.path());
        let err = dir.write(&set(&[("policy.json", "1")])).unwrap_err();
        assert!(matches!(err, WriteError::NotManaged { .. }), "{err}");
        assert!(err.to_string().contains("move it away"), "{err}");
        assert_eq!(entries(tmp.path()), ["policies"]);
        assert_eq!(read(&tmp.path().join("policies/mine.json")), "x");
    }

    #[test]
    fn leftovers_of_an_interrupted_write_are_replaced() {
        let tmp = tempfile::tempdir().unwrap();
        let one = set(&[("policy.json", "1")]);
        // A half-written generation under the final name and a temp folder.
        fs::create_dir(tmp.path().join(one.generation_name())).unwrap();
        fs::create_dir(tmp.path().join("..tmp-junk")).unwrap();
        let mut dir = AtomicDir::new(tmp.path());
        dir.write(&one).unwrap();
        assert_eq!(read(&tmp.path().join("policy.json")), "1");
        assert!(!tmp.path().join("..tmp-junk").exists());
    }

    #[test]
    fn a_generation_removed_behind_the_writers_back_is_written_again() {
        let tmp = tempfile::tempdir().unwrap();
        let mut dir = AtomicDir::new(tmp.path());
        let one = set(&[("policy.json", "1")]);
        dir.write(&one).unwrap();
        fs::remove_dir_all(tmp.path().join(one.generation_name())).unwrap();
        assert!(matches!(dir.write(&one), Ok(WriteOutcome::Written { .. })));
        assert_eq!(read(&tmp.path().join("policy.json")), "1");
    }

    #[test]
    fn a_regular_file_at_a_stable_path_is_replaced_by_the_link() {
        let tmp = tempfile::tempdir().unwrap();
        fs::write(tmp.path().join("policy.json"), "hand-written").unwrap();
        let mut dir = AtomicDir::new(tmp.path());
        dir.write(&set(&[("policy.json", "1")])).unwrap();
        assert_eq!(read(&tmp.path().join("policy.json")), "1");
    }

    #[test]
    fn the_memory_sink_records_changes_only_and_can_fail() {
        let mut sink = MemorySink::default();
        let one = set(&[("policy.json", "1")]);
        sink.write(&one).unwrap();
        assert!(matches!(
            sink.write(&one),
            Ok(WriteOutcome::Unchanged { .. })
        ));
        assert_eq!(sink.written.len(), 1);
        sink.fail = Some("disk full".into());
        assert!(sink.write(&set(&[("policy.json", "2")])).is_err());
        assert_eq!(sink.written.len(), 1);
    }
}
