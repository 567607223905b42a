//! A complete set of rendered files, checked before anything touches the
//! disk: relative paths of plain names only, bounded in count and size,
//! and named by a digest of its content so that writing the same set
//! twice is recognised without reading the disk.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};

/// At most this many files in one set: a namespace file per namespace,
/// with room for large clusters.
pub const MAX_FILES: usize = 10_000;
/// At most this many bytes in all files together.
pub const MAX_TOTAL_BYTES: usize = 64 * 1024 * 1024;

/// Why a set cannot be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FileSetError {
    #[error(
        "{path:?} is not a relative path of plain names (no `..`, no leading `..` names, no `/`)"
    )]
    BadPath { path: PathBuf },
    #[error("{path:?} is both a file and a folder")]
    FileAndFolder { path: PathBuf },
    #[error("more than {MAX_FILES} files")]
    TooManyFiles,
    #[error("more than {MAX_TOTAL_BYTES} bytes in all")]
    TooLarge,
}

/// Files (path relative to the output folder → bytes) and folders that
/// must exist even when empty (`policies/` with no namespace policy: serve
/// reads a folder that disappears as "every namespace that had a policy
/// there is rejected", not as "no namespace policies").
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileSet {
    files: BTreeMap<PathBuf, Vec<u8>>,
    folders: BTreeSet<PathBuf>,
}

impl FileSet {
    /// Checks `files` and `folders`; the folders holding each file are
    /// implied.
    pub fn new(
        files: BTreeMap<PathBuf, Vec<u8>>,
        folders: impl IntoIterator<Item = PathBuf>,
    ) -> Result<FileSet, FileSetError> {
        if files.len() > MAX_FILES {
            return Err(FileSetError::TooManyFiles);
        }
        let total = files.values().try_fold(0usize, |sum, bytes| {
            sum.checked_add(bytes.len())
                .filter(|sum| *sum <= MAX_TOTAL_BYTES)
        });
        if total.is_none() {
            return Err(FileSetError::TooLarge);
        }
        let mut all_folders = BTreeSet::new();
        for path in files.keys() {
            check_path(path)?;
            all_folders.extend(
                path.ancestors()
                    .skip(1)
                    .filter(|p| !p.as_os_str().is_empty())
                    .map(Path::to_owned),
            );
        }
        for folder in folders {
            check_path(&folder)?;
            all_folders.extend(
                folder
                    .ancestors()
                    .filter(|p| !p.as_os_str().is_empty())
                    .map(Path::to_owned),
            );
        }
        if all_folders.len() > MAX_FILES {
            return Err(FileSetError::TooManyFiles);
        }
        if let Some(path) = all_folders.iter().find(|f| files.contains_key(*f)) {
            return Err(FileSetError::FileAndFolder { path: path.clone() });
        }
        Ok(FileSet {
            files,
            folders: all_folders,
        })
    }

    pub fn files(&self) -> &BTreeMap<PathBuf, Vec<u8>> {
        &self.files
    }

    /// Every folder, parents before children.
    pub fn folders(&self) -> &BTreeSet<PathBuf> {
        &self.folders
    }

    /// The names directly in the output folder (`policy.json`,
    /// `policies`, `registries.d`): the stable paths readers are given.
    pub fn top_level(&self) -> BTreeSet<String> {
        self.files
            .keys()
            .chain(self.folders.iter())
            .filter_map(|p| p.components().next())
            .filter_map(|c| c.as_os_str().to_str().map(str::to_owned))
            .collect()
    }

    /// A SHA-256 over every path and content (and every folder), so two
    /// sets have one digest exactly when they are the same.
    pub fn digest(&self) -> String {
        let mut context = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
        for folder in &self.folders {
            let name = folder.as_os_str().as_encoded_bytes();
            context.update(b"d");
            context.update(&(name.len() as u64).to_be_bytes());
            context.update(name);
        }
        for (path, bytes) in &self.files {
            let name = path.as_os_str().as_encoded_bytes();
            context.update(b"f");
            context.update(&(name.len() as u64).to_be_bytes());
            context.update(name);
            context.update(&(bytes.len() as u64).to_be_bytes());
            context.update(bytes);
        }
        context
            .finish()
            .as_ref()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// The generation folder this set is written to: `..gen-` and the
    /// first 16 hex digits of its digest. Names starting with `..` are
    /// the writer's own, as in the kubelet's ConfigMap volumes.
    pub fn generation_name(&self) -> String {
        format!("{GENERATION_PREFIX}{}", &self.digest()[..16])
    }
}

/// Every generation folder's name starts with this.
pub const GENERATION_PREFIX: &str = "..gen-";

fn check_path(path: &Path) -> Result<(), FileSetError> {
    let bad = || FileSetError::BadPath {
        path: path.to_owned(),
    };
    let mut components = path.components().peekable();
    if components.peek().is_none() {
        return Err(bad());
    }
    for (index, component) in components.enumerate() {
        let Component::Normal(name) = component else {
            return Err(bad());
        };
        let name = name.to_str().ok_or_else(bad)?;
        if name.is_empty() || (index == 0 && name.starts_with("..")) {
            return Err(bad());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(entries: &[(&str, &str)]) -> BTreeMap<PathBuf, Vec<u8>> {
        entries
            .iter()
            .map(|(p, c)| (PathBuf::from(p), c.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn folders_are_implied_and_declared() {
        let set = FileSet::new(
            files(&[("policy.json", "{}"), ("registries.d/criguard.yaml", "")]),
            [PathBuf::from("policies")],
        )
        .unwrap();
        let folders: Vec<_> = set.folders().iter().map(|p| p.to_str().unwrap()).collect();
        assert_eq!(folders, ["policies", "registries.d"]);
        let top: Vec<_> = set.top_level().into_iter().collect();
        assert_eq!(top, ["policies", "policy.json", "registries.d"]);
    }

    #[test]
    fn paths_that_leave_the_folder_or_collide_with_the_writers_names_are_refused() {
        for bad in [
            "../x",
            "/etc/passwd",
            "a/../b",
            "..data/x",
            "..gen-1",
            "./a",
            "",
        ] {
            let result = FileSet::new(files(&[(bad, "x")]), []);
            assert!(
                matches!(result, Err(FileSetError::BadPath { .. })),
                "{bad}: {result:?}"
            );
        }
        // Inside a folder, a name may start with dots.
        assert!(FileSet::new(files(&[("policies/..x", "")]), []).is_ok());
    }

    #[test]
    fn a_path_that_is_a_file_and_a_folder_is_refused() {
        let result = FileSet::new(files(&[("a", ""), ("a/b", "")]), []);
        assert_eq!(
            result,
            Err(FileSetError::FileAndFolder {
                path: PathBuf::from("a")
            })
        );
    }

    #[test]
    fn sizes_and_counts_are_bounded() {
        let many: BTreeMap<PathBuf, Vec<u8>> = (0..=MAX_FILES)
            .map(|i| (PathBuf::from(format!("p/{i}")), Vec::new()))
            .collect();
        assert_eq!(FileSet::new(many, []), Err(FileSetError::TooManyFiles));
        let big: BTreeMap<PathBuf, Vec<u8>> = (0..2)
            .map(|i| {
                (
                    PathBuf::from(format!("{i}")),
                    vec![0; MAX_TOTAL_BYTES / 2 + 1],
                )
            })
            .collect();
        assert_eq!(FileSet::new(big, []), Err(FileSetError::TooLarge));
    }

    #[test]
    fn the_digest_tells_sets_apart_and_only_by_content() {
        let a = FileSet::new(files(&[("a", "1"), ("b", "2")]), []).unwrap();
        let same = FileSet::new(files(&[("b", "2"), ("a", "1")]), []).unwrap();
        let moved = FileSet::new(files(&[("a", "12"), ("b", "")]), []).unwrap();
        let with_folder =
            FileSet::new(files(&[("a", "1"), ("b", "2")]), [PathBuf::from("c")]).unwrap();
        assert_eq!(a.digest(), same.digest());
        assert_ne!(a.digest(), moved.digest());
        assert_ne!(a.digest(), with_folder.digest());
        assert!(a.generation_name().starts_with(GENERATION_PREFIX));
        assert_eq!(a.generation_name().len(), GENERATION_PREFIX.len() + 16);
    }
}
