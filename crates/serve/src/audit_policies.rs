//! The audit policy set: policies that are evaluated but never enforced.
//!
//! `criguard policy render` and the agent write two sets of files: the
//! enforced set (`policy.json`, `policies/<ns>.json`), which holds only
//! `Enforce` ClusterImagePolicies and ImagePolicies and is also what CRI-O
//! may read, and the audit set (`audit/policy.json`,
//! `audit/policies/<ns>.json`), which holds the `Enforce` and the `Audit`
//! ones. When `audit_policy` and `audit_policy_dir` are set, an image the
//! enforced set allowed is judged again by the audit set, and a refusal
//! there is logged and counted as `would_reject`; the call goes on.
//!
//! A per-namespace `<ns>.mode` file cannot do this: it switches off every
//! policy of a namespace, the enforced ones with the audit ones.
//!
//! The set is read like the enforced one, with one difference: files that
//! are missing or invalid at start-up do not stop criguard (the set
//! never refuses anything, and on a new node the agent that writes it can
//! only run once criguard serves). Until the set has loaded once, nothing
//! is audited; it is tried again at every reload.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use crate::reload::with_parent;
use crate::{LoadedPolicy, OnInvalidPolicy, Policies, ReloadOutcome, Reloadable};

/// The audit set, once it has loaded.
pub struct AuditPolicies {
    global: PathBuf,
    dir: PathBuf,
    loaded: RwLock<Option<Arc<Policies>>>,
}

impl AuditPolicies {
    /// Loads the set now if it can; otherwise at a later reload.
    pub fn load(global: &Path, dir: &Path) -> AuditPolicies {
        let set = AuditPolicies {
            global: global.to_owned(),
            dir: dir.to_owned(),
            loaded: RwLock::new(None),
        };
        set.try_load();
        set
    }

    fn try_load(&self) -> bool {
        // An audit file that becomes invalid later keeps its last valid
        // version: auditing against it is more telling than nothing, and
        // it never decides what runs.
        match Policies::load_with(&self.global, &self.dir, OnInvalidPolicy::KeepLastValid) {
            Ok(policies) => {
                *self.write() = Some(Arc::new(policies));
                tracing::info!(
                    audit_policy = %self.global.display(),
                    audit_policy_dir = %self.dir.display(),
                    "audit policies loaded"
                );
                true
            }
            Err(e) => {
                tracing::warn!(
                    audit_policy = %self.global.display(),
                    error = %e,
                    "audit policies not loaded; nothing is audited until they load"
                );
                false
            }
        }
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Option<Arc<Policies>>> {
        self.loaded
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn current(&self) -> Option<Arc<Policies>> {
        self.loaded
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The audit policy of `namespace`; `None` while the set has not
    /// loaded, so nothing is audited.
    pub fn for_namespace(&self, namespace: &str) -> Option<Result<Arc<LoadedPolicy>, String>> {
        self.current().map(|p| p.for_namespace(namespace))
    }
}

impl Reloadable for AuditPolicies {
    fn reload(&self) -> Vec<ReloadOutcome> {
        match self.current() {
            Some(policies) => policies.reload(),
            None => {
                if self.try_load() {
                    vec![ReloadOutcome::Applied {
                        kind: crate::ConfigKind::Policy,
                        path: self.global.clone(),
                    }]
                } else {
                    Vec::new()
                }
            }
        }
    }

    fn folders(&self) -> Vec<PathBuf> {
        with_parent(&self.dir)
            .chain(self.global.parent().map(Path::to_owned))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALLOW: &str = r#"{"default":[{"type":"insecureAcceptAnything"}]}"#;
    const REJECT: &str = r#"{"default":[{"type":"reject"}]}"#;

    #[test]
    fn a_missing_set_loads_when_it_appears() {
        let dir = tempfile::tempdir().unwrap();
        let global = dir.path().join("audit/policy.json");
        let namespaces = dir.path().join("audit/policies");
        let set = AuditPolicies::load(&global, &namespaces);
        assert!(set.for_namespace("team").is_none());
        assert!(set.reload().is_empty());

        std::fs::create_dir_all(&namespaces).unwrap();
        std::fs::write(&global, ALLOW).unwrap();
        std::fs::write(namespaces.join("team.json"), REJECT).unwrap();
        assert_eq!(set.reload().len(), 1);
        let team = set.for_namespace("team").unwrap().unwrap();
        assert_eq!(team.path, namespaces.join("team.json"));
        let other = set.for_namespace("other").unwrap().unwrap();
        assert_eq!(other.path, global);
    }

    #[test]
    fn an_invalid_file_at_start_audits_nothing_and_stops_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let global = dir.path().join("policy.json");
        std::fs::write(&global, "{").unwrap();
        let set = AuditPolicies::load(&global, &dir.path().join("policies"));
        assert!(set.for_namespace("team").is_none());
    }
}
