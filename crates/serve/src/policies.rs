//! The global policy and the per-namespace ones, reloaded while serving.
//!
//! A namespace's policy is `<dir>/<namespace>.json` when that file exists,
//! else the global policy (CRI-O's `signature_policy_dir` rule). Files are
//! re-read on change notifications and on a timer; each is judged alone:
//!
//! - a valid new content takes effect at once;
//! - an invalid (or unreadable, or deleted global) one is refused, logged
//!   and counted. With `on_invalid_policy = "reject"`, the default, every
//!   image the file governs is then rejected until it is fixed: the last
//!   valid version may be looser than what the file now tries to say, and
//!   containers/image (CRI-O, podman) reads policy.json at each pull, so an
//!   invalid one fails every pull there too. With `"keep-last-valid"` the
//!   last valid content stays in force;
//! - a namespace file that has never been valid rejects every image of its
//!   namespace in either mode: falling back to the global policy could be
//!   looser than what the file was written to say;
//! - a deleted namespace file puts its namespace back on the global policy,
//!   as it would at start-up;
//! - a policy folder that disappears or cannot be listed is refused, not
//!   read as "no namespace files": the namespaces that had a file there are
//!   rejected (`reject`) or keep their last valid policy (`keep-last-valid`)
//!   until it is back; the others stay on the global policy. A folder
//!   missing at start-up holds no namespace policies (a warning is logged),
//!   and its files apply when it appears.
//!
//! An invalid file at start-up refuses the start in either mode.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use criguard_policy::{Policy, PolicyError};
use criguard_reference::Digest;
use criguard_registry::digest::sha256;

use criguard_files::read_limited;

use crate::Error;
use crate::reload::{ConfigKind, ReloadOutcome, Reloadable, with_parent};

/// A policy in force, with what identifies its content.
#[derive(Debug)]
pub struct LoadedPolicy {
    pub policy: Arc<Policy>,
    pub path: PathBuf,
    /// sha256 of the file's bytes and of every key, certificate and
    /// keyring file it names: part of every decision's cache key, so that
    /// a changed policy, or a key replaced under the same path, is a new
    /// key and no cached allowance outlives the trust it was made with.
    pub digest: Digest,
}

/// What a policy file that is invalid *now* means for the images it
/// governs (the `on_invalid_policy` setting).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnInvalidPolicy {
    /// Reject every image the file governs until it is valid again.
    #[default]
    Reject,
    /// Keep enforcing the file's last valid content.
    KeepLastValid,
}

/// One policy file as last seen.
#[derive(Debug, Clone)]
struct FileState {
    /// `None` for a namespace file that has never held a valid policy.
    in_force: Option<Arc<LoadedPolicy>>,
    /// The digest of the content last read, valid or not, so that an
    /// unchanged invalid file is reported once, not at every poll.
    seen: Digest,
    /// Why the content last read was refused; `None` when it is in force.
    refused: Option<String>,
}

#[derive(Debug, Clone)]
struct PolicySet {
    global: FileState,
    namespaces: HashMap<String, FileState>,
    /// Whether the folder has ever been listed: one missing from the start
    /// holds no namespace policies, one that disappears is an error.
    dir_listed: bool,
    /// Why the folder, listed before, cannot be listed now.
    dir_problem: Option<String>,
}

/// The policies in force.
pub struct Policies {
    global_path: PathBuf,
    dir: PathBuf,
    on_invalid: OnInvalidPolicy,
    current: RwLock<Arc<PolicySet>>,
}

impl Policies {
    /// [`Policies::load_with`] with the default, `reject`.
    pub fn load(global: &Path, dir: &Path) -> Result<Policies, Error> {
        Self::load_with(global, dir, OnInvalidPolicy::default())
    }

    /// Loads the global policy and every namespace policy. Any invalid
    /// file refuses the start, whatever `on_invalid` says: a node must not
    /// come up enforcing less than its files say.
    pub fn load_with(
        global: &Path,
        dir: &Path,
        on_invalid: OnInvalidPolicy,
    ) -> Result<Policies, Error> {
        let global_state = match read_policy(global) {
            (seen, Ok(loaded)) => FileState {
                in_force: Some(Arc::new(loaded)),
                seen,
                refused: None,
            },
            (_, Err(reason)) => return Err(reason.into_error(global)),
        };
        let (files, dir_listed) = match namespace_files(dir) {
            Ok(files) => (files, true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                tracing::warn!(
                    policy_dir = %dir.display(),
                    "the policy folder does not exist: every namespace is on the global \
                     policy until it is created"
                );
                (Vec::new(), false)
            }
            Err(source) => {
                return Err(Error::Read {
                    path: dir.to_owned(),
                    source,
                });
            }
        };
        let mut namespaces = HashMap::new();
        for (namespace, path) in files {
            match read_policy(&path) {
                (seen, Ok(loaded)) => {
                    namespaces.insert(
                        namespace,
                        FileState {
                            in_force: Some(Arc::new(loaded)),
                            seen,
                            refused: None,
                        },
                    );
                }
                (_, Err(reason)) => return Err(reason.into_error(&path)),
            }
        }
        Ok(Policies {
            global_path: global.to_owned(),
            dir: dir.to_owned(),
            on_invalid,
            current: RwLock::new(Arc::new(PolicySet {
                global: global_state,
                namespaces,
                dir_listed,
                dir_problem: None,
            })),
        })
    }

    pub fn global_path(&self) -> &Path {
        &self.global_path
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn snapshot(&self) -> Arc<PolicySet> {
        Arc::clone(
            &self
                .current
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }

    /// The policy for pods of `namespace` (`""`: no pod, the global one),
    /// or why there is none that can be used: which file, and what is
    /// wrong with it.
    pub fn for_namespace(&self, namespace: &str) -> Result<Arc<LoadedPolicy>, String> {
        let set = self.snapshot();
        let own = set
            .namespaces
            .get(namespace)
            .filter(|_| !namespace.is_empty());
        let Some(state) = own else {
            let what = format!(
                "the global policy {} (used for namespace {namespace:?})",
                self.global_path.display()
            );
            return self.usable(&set.global, &what);
        };
        if let (Some(problem), OnInvalidPolicy::Reject) = (&set.dir_problem, self.on_invalid) {
            return Err(format!(
                "the policy folder {} {problem}; namespace {namespace:?} had a policy there, \
                 so every image of the namespace is rejected until the folder is back",
                self.dir.display()
            ));
        }
        let what = format!(
            "the policy for namespace {namespace:?}, {},",
            self.dir.join(format!("{namespace}.json")).display()
        );
        self.usable(state, &what)
    }

    /// The policy `state` enforces under this mode, or why none.
    fn usable(&self, state: &FileState, what: &str) -> Result<Arc<LoadedPolicy>, String> {
        match (&state.in_force, &state.refused, self.on_invalid) {
            (Some(policy), None, _) | (Some(policy), Some(_), OnInvalidPolicy::KeepLastValid) => {
                Ok(Arc::clone(policy))
            }
            (_, refused, _) => Err(format!(
                "{what} is invalid, so every image it applies to is rejected: {}",
                refused.as_deref().unwrap_or("never read")
            )),
        }
    }

    /// What a refused file means for its images, for the log.
    fn consequence(&self, state: &FileState) -> &'static str {
        match (self.on_invalid, &state.in_force) {
            (OnInvalidPolicy::KeepLastValid, Some(_)) => "the last valid version stays in force",
            _ => "every image it applies to is rejected until it is fixed",
        }
    }

    /// Re-reads every file and applies what changed.
    pub fn reload(&self) -> Vec<ReloadOutcome> {
        let old = self.snapshot();
        let mut next = (*old).clone();
        let mut outcomes = Vec::new();
        self.update(&self.global_path, &mut next.global, &mut outcomes);
        match namespace_files(&self.dir) {
            Ok(files) => {
                next.dir_listed = true;
                if next.dir_problem.take().is_some() {
                    outcomes.push(ReloadOutcome::Applied {
                        kind: ConfigKind::Policy,
                        path: self.dir.clone(),
                    });
                }
                let present: HashMap<String, PathBuf> = files.into_iter().collect();
                next.namespaces.retain(|namespace, _| {
                    let keep = present.contains_key(namespace);
                    if !keep {
                        outcomes.push(ReloadOutcome::Removed {
                            kind: ConfigKind::Policy,
                            path: self.dir.join(format!("{namespace}.json")),
                        });
                    }
                    keep
                });
                for (namespace, path) in present {
                    let state = next.namespaces.entry(namespace).or_insert(FileState {
                        in_force: None,
                        seen: sha256(b"\0never read"),
                        refused: None,
                    });
                    self.update(&path, state, &mut outcomes);
                }
            }
            // Never there: no namespace policies, as at start-up.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !next.dir_listed => {}
            Err(e) => {
                let problem = if e.kind() == std::io::ErrorKind::NotFound {
                    "has disappeared".to_owned()
                } else {
                    format!("cannot be listed: {e}")
                };
                if next.dir_problem.as_deref() != Some(problem.as_str()) {
                    let consequence = match self.on_invalid {
                        OnInvalidPolicy::Reject => "rejected",
                        OnInvalidPolicy::KeepLastValid => "kept on their last valid policy",
                    };
                    outcomes.push(ReloadOutcome::Refused {
                        kind: ConfigKind::Policy,
                        path: self.dir.clone(),
                        reason: format!(
                            "the policy folder {problem}; the namespaces that had a policy \
                             there are {consequence} until it is back"
                        ),
                    });
                    next.dir_problem = Some(problem);
                }
            }
        }
        if !outcomes.is_empty() {
            *self
                .current
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(next);
        }
        outcomes
    }

    /// Re-reads one file into `state`, recording what happened.
    fn update(&self, path: &Path, state: &mut FileState, outcomes: &mut Vec<ReloadOutcome>) {
        let (seen, read) = read_policy(path);
        if seen == state.seen {
            return;
        }
        state.seen = seen;
        match read {
            Ok(loaded) => {
                state.in_force = Some(Arc::new(loaded));
                state.refused = None;
                outcomes.push(ReloadOutcome::Applied {
                    kind: ConfigKind::Policy,
                    path: path.to_owned(),
                });
            }
            Err(problem) => {
                let problem = problem.to_string();
                let reason = format!("{problem}; {}", self.consequence(state));
                state.refused = Some(problem);
                outcomes.push(ReloadOutcome::Refused {
                    kind: ConfigKind::Policy,
                    path: path.to_owned(),
                    reason,
                });
            }
        }
    }
}

impl Reloadable for Policies {
    fn reload(&self) -> Vec<ReloadOutcome> {
        Policies::reload(self)
    }

    fn folders(&self) -> Vec<PathBuf> {
        with_parent(&self.dir)
            .chain(self.global_path.parent().map(Path::to_owned))
            .collect()
    }
}

enum Problem {
    Read(std::io::Error),
    Invalid(PolicyError),
}

impl Problem {
    fn into_error(self, path: &Path) -> Error {
        match self {
            Problem::Read(source) => Error::Read {
                path: path.to_owned(),
                source,
            },
            Problem::Invalid(error) => Error::InvalidPolicy {
                path: path.to_owned(),
                problems: error.problems().iter().map(ToString::to_string).collect(),
            },
        }
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::Read(e) => write!(f, "cannot be read: {e}"),
            Problem::Invalid(error) => {
                f.write_str("invalid policy: ")?;
                let problems: Vec<String> =
                    error.problems().iter().map(ToString::to_string).collect();
                f.write_str(&problems.join("; "))
            }
        }
    }
}

/// The file's content digest (of the error, when it cannot be read, so
/// that a change of error counts as a change) and its policy.
fn read_policy(path: &Path) -> (Digest, Result<LoadedPolicy, Problem>) {
    match read_limited(path, criguard_policy::MAX_POLICY_SIZE as u64).map_err(std::io::Error::from)
    {
        Ok(bytes) => match Policy::from_bytes(&bytes, &path.display().to_string()) {
            Ok(policy) => {
                let digest = content_digest(&bytes, &policy);
                let loaded = LoadedPolicy {
                    policy: Arc::new(policy),
                    path: path.to_owned(),
                    digest: digest.clone(),
                };
                (digest, Ok(loaded))
            }
            Err(error) => (sha256(&bytes), Err(Problem::Invalid(error))),
        },
        Err(e) => (
            sha256(format!("\0unreadable: {e}").as_bytes()),
            Err(Problem::Read(e)),
        ),
    }
}

/// The policy's bytes, then each file it names with its content's digest
/// (or its read error: a key that disappears is a change too). Key files
/// live anywhere; the periodic reload re-reads them.
fn content_digest(bytes: &[u8], policy: &Policy) -> Digest {
    let mut all = bytes.to_vec();
    for file in policy.trust_files() {
        let content = match read_limited(file, criguard_verification::MAX_TRUST_FILE_SIZE) {
            Ok(content) => sha256(&content).to_string(),
            Err(e) => format!("unreadable: {e}"),
        };
        all.extend_from_slice(format!("\0{}\0{content}", file.display()).as_bytes());
    }
    sha256(&all)
}

/// `<namespace>.json` files whose names are Kubernetes namespace names
/// (DNS labels). Other files cannot belong to a namespace and are left
/// alone. A missing folder is an error here; the callers decide.
fn namespace_files(dir: &Path) -> std::io::Result<Vec<(String, PathBuf)>> {
    let entries = std::fs::read_dir(dir)?;
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let Some(namespace) = name.to_str().and_then(|n| n.strip_suffix(".json")) else {
            continue;
        };
        if is_namespace_name(namespace) {
            files.push((namespace.to_owned(), entry.path()));
        }
    }
    Ok(files)
}

/// RFC 1123 label, as Kubernetes requires of namespace names.
pub(crate) fn is_namespace_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes[0] != b'-'
        && bytes[bytes.len() - 1] != b'-'
}

#[cfg(test)]
mod tests;
