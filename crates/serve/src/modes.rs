//! Audit mode: a namespace whose decisions are made, logged and counted
//! (`would_reject`) but not enforced, so that a cluster can roll a policy
//! out and see what it would refuse before it refuses anything.
//!
//! A namespace's mode is the content of `<policy-dir>/<namespace>.mode`
//! (`audit` or `enforce`), next to its `<namespace>.json`, so whatever
//! writes namespace policies (an operator, criguard's own agent) writes
//! their mode the same way, and it reloads with them; namespaces without
//! one have the configured `default_mode`. A mode file that cannot be read
//! or says anything else is `enforce`: a typo must not switch enforcement
//! off. CRI-O has no such file and never reads it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use serde::Deserialize;

use crate::policies::is_namespace_name;
use crate::{ConfigKind, ReloadOutcome, Reloadable};

/// Whether decisions are enforced.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    #[default]
    Enforce,
    Audit,
}

impl Mode {
    /// The label in metrics and audit lines.
    pub fn label(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::Audit => "audit",
        }
    }

    fn parse(text: &str) -> Option<Mode> {
        match text.trim() {
            "enforce" => Some(Mode::Enforce),
            "audit" => Some(Mode::Audit),
            _ => None,
        }
    }
}

/// A mode file is one word; anything larger is not one.
const MAX_MODE_FILE_SIZE: u64 = 64;

/// Namespace -> (its mode file's content as last read, its mode).
type ModeFiles = HashMap<String, (Vec<u8>, Mode)>;

/// The mode of every namespace, reloaded with the policies.
pub struct Modes {
    dir: PathBuf,
    default: Mode,
    current: RwLock<Arc<ModeFiles>>,
}

impl Modes {
    /// The modes `dir` holds now, `default` for the other namespaces.
    pub fn load(dir: &Path, default: Mode) -> Modes {
        let modes = Modes {
            dir: dir.to_owned(),
            default,
            current: RwLock::new(Arc::new(HashMap::new())),
        };
        for outcome in modes.reload() {
            if let ReloadOutcome::Refused { path, reason, .. } = outcome {
                tracing::error!(path = %path.display(), %reason, "namespace mode refused");
            }
        }
        modes
    }

    /// The mode of `namespace`.
    pub fn of(&self, namespace: &str) -> Mode {
        self.current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(namespace)
            .map_or(self.default, |(_, mode)| *mode)
    }

    fn mode_files(&self) -> Vec<(String, PathBuf)> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        entries
            .filter_map(Result::ok)
            .filter_map(|entry| {
                let name = entry.file_name();
                let namespace = name.to_str()?.strip_suffix(".mode")?;
                is_namespace_name(namespace).then(|| (namespace.to_owned(), entry.path()))
            })
            .collect()
    }
}

impl Reloadable for Modes {
    fn reload(&self) -> Vec<ReloadOutcome> {
        let old = Arc::clone(
            &self
                .current
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        let mut next = HashMap::new();
        let mut outcomes = Vec::new();
        for (namespace, path) in self.mode_files() {
            let read = criguard_files::read_limited(&path, MAX_MODE_FILE_SIZE);
            let content = match &read {
                Ok(bytes) => bytes.clone(),
                Err(e) => format!("\0unreadable: {e}").into_bytes(),
            };
            let mode = read
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .and_then(|text| Mode::parse(&text));
            let unchanged = old
                .get(&namespace)
                .is_some_and(|(seen, _)| *seen == content);
            if !unchanged {
                outcomes.push(match mode {
                    Some(_) => ReloadOutcome::Applied {
                        kind: ConfigKind::Policy,
                        path: path.clone(),
                    },
                    None => ReloadOutcome::Refused {
                        kind: ConfigKind::Policy,
                        path: path.clone(),
                        reason: "a mode file holds `audit` or `enforce`; the namespace is \
                                 enforced"
                            .to_owned(),
                    },
                });
            }
            next.insert(namespace, (content, mode.unwrap_or(Mode::Enforce)));
        }
        for namespace in old.keys().filter(|n| !next.contains_key(*n)) {
            outcomes.push(ReloadOutcome::Removed {
                kind: ConfigKind::Policy,
                path: self.dir.join(format!("{namespace}.mode")),
            });
        }
        *self
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(next);
        outcomes
    }

    fn folders(&self) -> Vec<PathBuf> {
        crate::reload::with_parent(&self.dir).collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn mode_files_reload_and_a_bad_one_enforces() {
        let dir = tempfile::tempdir().unwrap();
        let modes = Modes::load(dir.path(), Mode::Enforce);
        assert_eq!(modes.of("team"), Mode::Enforce);
        std::fs::write(dir.path().join("team.mode"), "audit\n").unwrap();
        assert!(matches!(
            modes.reload().as_slice(),
            [ReloadOutcome::Applied { .. }]
        ));
        assert_eq!(modes.of("team"), Mode::Audit);
        assert_eq!(modes.of("other"), Mode::Enforce);
        assert!(modes.reload().is_empty(), "unchanged: nothing to say");
        std::fs::write(dir.path().join("team.mode"), "audti").unwrap();
        assert!(matches!(
            modes.reload().as_slice(),
            [ReloadOutcome::Refused { .. }]
        ));
        assert_eq!(modes.of("team"), Mode::Enforce, "a typo enforces");
        std::fs::write(dir.path().join("team.mode"), "a".repeat(100)).unwrap();
        modes.reload();
        assert_eq!(modes.of("team"), Mode::Enforce);
        std::fs::remove_file(dir.path().join("team.mode")).unwrap();
        assert!(matches!(
            modes.reload().as_slice(),
            [ReloadOutcome::Removed { .. }]
        ));
        // Files that name no namespace are left alone.
        std::fs::write(dir.path().join("Not_A_Namespace.mode"), "audit").unwrap();
        assert!(modes.reload().is_empty());
        let audited = Modes::load(dir.path(), Mode::Audit);
        assert_eq!(audited.of("anything"), Mode::Audit);
    }
}
