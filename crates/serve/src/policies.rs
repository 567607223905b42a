//! The global policy and the per-namespace ones, reloaded while serving.
//!
//! A namespace's policy is `<dir>/<namespace>.json` when that file exists,
//! else the global policy (CRI-O's `signature_policy_dir` rule). Files are
//! re-read on change notifications and on a timer; each is judged alone:
//!
//! - a valid new content takes effect at once;
//! - an invalid one is refused, logged and counted, and the last good
//!   content of that file stays in force;
//! - a namespace file that has never been valid rejects every image of its
//!   namespace: falling back to the global policy could be looser than
//!   what the file was written to say;
//! - a deleted namespace file puts its namespace back on the global policy,
//!   as it would at start-up. A deleted global policy is refused.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use criguard_policy::{Policy, PolicyError};
use criguard_reference::Digest;
use criguard_registry::digest::sha256;

use crate::{Error, read_limited};

/// A policy in force, with what identifies its content.
#[derive(Debug)]
pub struct LoadedPolicy {
    pub policy: Policy,
    pub path: PathBuf,
    /// sha256 of the file's bytes and of every key, certificate and
    /// keyring file it names: part of every decision's cache key, so that
    /// a changed policy, or a key replaced under the same path, is a new
    /// key and no cached allowance outlives the trust it was made with.
    pub digest: Digest,
}

/// One policy file as last seen.
#[derive(Debug, Clone)]
struct FileState {
    /// `None` for a namespace file that has never held a valid policy.
    in_force: Option<Arc<LoadedPolicy>>,
    /// The digest of the content last read, valid or not, so that an
    /// unchanged invalid file is reported once, not at every poll.
    seen: Digest,
    /// Why the content last read was refused.
    refused: Option<String>,
}

#[derive(Debug, Clone)]
struct PolicySet {
    global: FileState,
    namespaces: HashMap<String, FileState>,
}

/// What a reload did to one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReloadOutcome {
    Applied { path: PathBuf },
    Refused { path: PathBuf, reason: String },
    Removed { path: PathBuf },
}

/// The policies in force.
pub struct Policies {
    global_path: PathBuf,
    dir: PathBuf,
    current: RwLock<Arc<PolicySet>>,
}

impl Policies {
    /// Loads the global policy and every namespace policy. Any invalid
    /// file refuses the start: a node must not come up enforcing less than
    /// its files say.
    pub fn load(global: &Path, dir: &Path) -> Result<Policies, Error> {
        let global_state = match read_policy(global) {
            (seen, Ok(loaded)) => FileState {
                in_force: Some(Arc::new(loaded)),
                seen,
                refused: None,
            },
            (_, Err(reason)) => return Err(reason.into_error(global)),
        };
        let mut namespaces = HashMap::new();
        for (namespace, path) in namespace_files(dir).map_err(|source| Error::Read {
            path: dir.to_owned(),
            source,
        })? {
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
            current: RwLock::new(Arc::new(PolicySet {
                global: global_state,
                namespaces,
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
    /// or why there is none that can be used.
    pub fn for_namespace(&self, namespace: &str) -> Result<Arc<LoadedPolicy>, String> {
        let set = self.snapshot();
        let state = match set.namespaces.get(namespace) {
            Some(state) if !namespace.is_empty() => state,
            _ => &set.global,
        };
        match &state.in_force {
            Some(policy) => Ok(Arc::clone(policy)),
            None => Err(format!(
                "the policy for namespace {namespace:?}, {}, is invalid, so every image of \
                 the namespace is rejected: {}",
                self.dir.join(format!("{namespace}.json")).display(),
                state.refused.as_deref().unwrap_or("never read")
            )),
        }
    }

    /// Re-reads every file and applies what changed.
    pub fn reload(&self) -> Vec<ReloadOutcome> {
        let old = self.snapshot();
        let mut next = (*old).clone();
        let mut outcomes = Vec::new();
        update(&self.global_path, &mut next.global, true, &mut outcomes);
        match namespace_files(&self.dir) {
            Ok(files) => {
                let present: HashMap<String, PathBuf> = files.into_iter().collect();
                next.namespaces.retain(|namespace, _| {
                    let keep = present.contains_key(namespace);
                    if !keep {
                        outcomes.push(ReloadOutcome::Removed {
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
                    update(&path, state, false, &mut outcomes);
                }
            }
            Err(e) => outcomes.push(ReloadOutcome::Refused {
                path: self.dir.clone(),
                reason: format!("cannot list the policy directory: {e}"),
            }),
        }
        if !outcomes.is_empty() {
            *self
                .current
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(next);
        }
        outcomes
    }

    /// Reloads on file-system notifications about the policy files' folders
    /// and every `poll` in any case, reporting each outcome to `report`.
    /// Runs until the task is dropped.
    pub async fn watch(self: Arc<Self>, poll: Duration, report: impl Fn(&ReloadOutcome)) {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<()>(1);
        let watcher = self.notifier(tx);
        if let Err(e) = &watcher {
            tracing::warn!(error = %e, "policy files are only polled: no change notifications");
        }
        let mut timer = tokio::time::interval(poll);
        timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = timer.tick() => {}
                Some(()) = rx.recv() => {
                    // Editors and `kubectl` write in several steps; settle.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    while rx.try_recv().is_ok() {}
                }
            }
            let this = Arc::clone(&self);
            let outcomes = tokio::task::spawn_blocking(move || this.reload())
                .await
                .unwrap_or_default();
            for outcome in &outcomes {
                report(outcome);
            }
        }
    }

    fn notifier(
        &self,
        tx: tokio::sync::mpsc::Sender<()>,
    ) -> notify::Result<notify::RecommendedWatcher> {
        use notify::Watcher as _;
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                if event.is_ok() {
                    // Full means a reload is already due.
                    let _ = tx.try_send(());
                }
            })?;
        let mut folders = vec![self.dir.clone()];
        if let Some(parent) = self.global_path.parent() {
            folders.push(parent.to_owned());
        }
        for folder in folders {
            // A folder that does not exist yet is still polled.
            if folder.is_dir() {
                watcher.watch(&folder, notify::RecursiveMode::NonRecursive)?;
            }
        }
        Ok(watcher)
    }
}

/// Re-reads one file into `state`, recording what happened.
fn update(path: &Path, state: &mut FileState, global: bool, outcomes: &mut Vec<ReloadOutcome>) {
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
                path: path.to_owned(),
            });
        }
        Err(problem) => {
            let mut reason = problem.to_string();
            if global || state.in_force.is_some() {
                reason.push_str("; the last valid version stays in force");
            }
            state.refused = Some(reason.clone());
            outcomes.push(ReloadOutcome::Refused {
                path: path.to_owned(),
                reason,
            });
        }
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
    match read_limited(path, criguard_policy::MAX_POLICY_SIZE) {
        Ok(bytes) => match Policy::from_bytes(&bytes, &path.display().to_string()) {
            Ok(policy) => {
                let digest = content_digest(&bytes, &policy);
                let loaded = LoadedPolicy {
                    policy,
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
        let content = match read_limited(file, crate::MAX_TRUST_FILE_SIZE) {
            Ok(content) => sha256(&content).to_string(),
            Err(e) => format!("unreadable: {e}"),
        };
        all.extend_from_slice(format!("\0{}\0{content}", file.display()).as_bytes());
    }
    sha256(&all)
}

/// `<namespace>.json` files whose names are Kubernetes namespace names
/// (DNS labels). Other files cannot belong to a namespace and are left
/// alone. A missing folder holds no namespace policies.
fn namespace_files(dir: &Path) -> std::io::Result<Vec<(String, PathBuf)>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
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
fn is_namespace_name(name: &str) -> bool {
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
mod tests {
    use super::*;

    const ACCEPT: &str = r#"{"default":[{"type":"insecureAcceptAnything"}]}"#;
    const REJECT: &str = r#"{"default":[{"type":"reject"}]}"#;

    fn requirement(policies: &Policies, namespace: &str) -> Result<String, String> {
        policies
            .for_namespace(namespace)
            .map(|p| format!("{:?}", p.policy.default_requirements()))
    }

    #[test]
    fn namespaces_reload_and_fall_back() {
        let dir = tempfile::tempdir().unwrap();
        let global = dir.path().join("policy.json");
        let ns_dir = dir.path().join("policies");
        std::fs::write(&global, REJECT).unwrap();
        std::fs::create_dir(&ns_dir).unwrap();
        std::fs::write(ns_dir.join("dev.json"), ACCEPT).unwrap();
        std::fs::write(ns_dir.join("Not_A_Namespace.json"), "garbage").unwrap();
        let policies = Policies::load(&global, &ns_dir).unwrap();
        let reject = requirement(&policies, "").unwrap();
        let accept = requirement(&policies, "dev").unwrap();
        assert_ne!(reject, accept);
        assert_eq!(requirement(&policies, "prod").unwrap(), reject);
        assert!(policies.reload().is_empty());

        // Garbage replaces dev's policy: refused, the last good one stays.
        std::fs::write(ns_dir.join("dev.json"), "{garbage").unwrap();
        let outcomes = policies.reload();
        assert!(
            matches!(&outcomes[..], [ReloadOutcome::Refused { .. }]),
            "{outcomes:?}"
        );
        assert_eq!(requirement(&policies, "dev").unwrap(), accept);
        // Reported once, not at every poll.
        assert!(policies.reload().is_empty());

        // A new namespace file that was never valid rejects its namespace.
        std::fs::write(ns_dir.join("prod.json"), "[]").unwrap();
        policies.reload();
        let refused = requirement(&policies, "prod").unwrap_err();
        assert!(refused.contains("prod.json"), "{refused}");

        // Fixed, it applies; deleted, the namespace is back on the global.
        std::fs::write(ns_dir.join("prod.json"), ACCEPT).unwrap();
        policies.reload();
        assert_eq!(requirement(&policies, "prod").unwrap(), accept);
        std::fs::remove_file(ns_dir.join("prod.json")).unwrap();
        let outcomes = policies.reload();
        assert!(
            matches!(&outcomes[..], [ReloadOutcome::Removed { .. }]),
            "{outcomes:?}"
        );
        assert_eq!(requirement(&policies, "prod").unwrap(), reject);

        // The global policy deleted or broken: refused, still in force.
        std::fs::remove_file(&global).unwrap();
        assert!(matches!(
            &policies.reload()[..],
            [ReloadOutcome::Refused { .. }]
        ));
        assert_eq!(requirement(&policies, "").unwrap(), reject);
        std::fs::write(&global, ACCEPT).unwrap();
        policies.reload();
        assert_eq!(requirement(&policies, "").unwrap(), accept);
    }

    #[test]
    fn a_key_replaced_under_the_same_path_is_a_new_policy() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("key.pub");
        std::fs::write(&key, "first key").unwrap();
        let global = dir.path().join("policy.json");
        let policy = serde_json::json!({"default": [{"type": "sigstoreSigned", "keyPath": key,
            "signedIdentity": {"type": "matchRepository"}}]});
        std::fs::write(&global, policy.to_string()).unwrap();
        let policies = Policies::load(&global, &dir.path().join("none")).unwrap();
        let before = policies.for_namespace("").unwrap().digest.clone();
        assert!(policies.reload().is_empty());
        std::fs::write(&key, "second key").unwrap();
        let outcomes = policies.reload();
        assert!(
            matches!(&outcomes[..], [ReloadOutcome::Applied { .. }]),
            "{outcomes:?}"
        );
        let after = policies.for_namespace("").unwrap().digest.clone();
        assert_ne!(before, after);
        // A key that disappears changes it too.
        std::fs::remove_file(&key).unwrap();
        assert!(matches!(
            &policies.reload()[..],
            [ReloadOutcome::Applied { .. }]
        ));
        assert_ne!(policies.for_namespace("").unwrap().digest, after);
    }

    #[test]
    fn an_invalid_file_refuses_the_start() {
        let dir = tempfile::tempdir().unwrap();
        let global = dir.path().join("policy.json");
        std::fs::write(&global, ACCEPT).unwrap();
        std::fs::write(dir.path().join("dev.json"), "{}").unwrap();
        let error = Policies::load(&global, dir.path()).err().unwrap();
        assert!(error.to_string().contains("dev.json"), "{error}");
        assert!(Policies::load(&dir.path().join("missing.json"), dir.path()).is_err());
    }

    #[test]
    fn namespace_names() {
        for good in ["a", "kube-system", "a1", &"x".repeat(63)] {
            assert!(is_namespace_name(good), "{good}");
        }
        for bad in ["", "-a", "a-", "A", "a.b", "..", "a/b", &"x".repeat(64)] {
            assert!(!is_namespace_name(bad), "{bad}");
        }
    }
}
