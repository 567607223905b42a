use super::*;

const ACCEPT: &str = r#"{"default":[{"type":"insecureAcceptAnything"}]}"#;
const REJECT: &str = r#"{"default":[{"type":"reject"}]}"#;

fn requirement(policies: &Policies, namespace: &str) -> Result<String, String> {
    policies
        .for_namespace(namespace)
        .map(|p| format!("{:?}", p.policy.default_requirements()))
}

/// `policy.json` rejecting, `policies/dev.json` accepting.
fn node() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let global = dir.path().join("policy.json");
    let ns_dir = dir.path().join("policies");
    std::fs::write(&global, REJECT).unwrap();
    std::fs::create_dir(&ns_dir).unwrap();
    std::fs::write(ns_dir.join("dev.json"), ACCEPT).unwrap();
    (dir, global, ns_dir)
}

#[test]
fn namespaces_reload_and_fall_back() {
    let (_dir, global, ns_dir) = node();
    std::fs::write(ns_dir.join("Not_A_Namespace.json"), "garbage").unwrap();
    let policies = Policies::load_with(&global, &ns_dir, OnInvalidPolicy::KeepLastValid).unwrap();
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
fn an_invalid_file_rejects_what_it_governs_by_default() {
    let (_dir, global, ns_dir) = node();
    let policies = Policies::load(&global, &ns_dir).unwrap();
    let reject = requirement(&policies, "").unwrap();
    let accept = requirement(&policies, "dev").unwrap();

    // dev's file broken: dev is rejected, with the file and the problem.
    std::fs::write(ns_dir.join("dev.json"), r#"{"default": []}"#).unwrap();
    let outcomes = policies.reload();
    assert!(
        matches!(&outcomes[..], [ReloadOutcome::Refused { .. }]),
        "{outcomes:?}"
    );
    let refused = requirement(&policies, "dev").unwrap_err();
    assert!(
        refused.contains(&ns_dir.join("dev.json").display().to_string())
            && refused.contains("invalid policy")
            && refused.contains("default"),
        "{refused}"
    );
    assert_eq!(requirement(&policies, "prod").unwrap(), reject);
    assert!(policies.reload().is_empty());
    std::fs::write(ns_dir.join("dev.json"), ACCEPT).unwrap();
    policies.reload();
    assert_eq!(requirement(&policies, "dev").unwrap(), accept);

    // The global file broken, as CRI-O and podman would see it at their
    // next pull: every namespace on it is rejected; dev has its own.
    std::fs::write(&global, "{garbage").unwrap();
    policies.reload();
    for namespace in ["", "prod"] {
        let refused = requirement(&policies, namespace).unwrap_err();
        assert!(
            refused.contains(&global.display().to_string()) && refused.contains("invalid policy"),
            "{refused}"
        );
    }
    assert_eq!(requirement(&policies, "dev").unwrap(), accept);
    // Deleted: the same.
    std::fs::remove_file(&global).unwrap();
    policies.reload();
    let refused = requirement(&policies, "prod").unwrap_err();
    assert!(refused.contains("cannot be read"), "{refused}");
    std::fs::write(&global, REJECT).unwrap();
    policies.reload();
    assert_eq!(requirement(&policies, "prod").unwrap(), reject);
}

#[test]
fn keep_last_valid_keeps_the_previous_global_policy() {
    let (_dir, global, ns_dir) = node();
    let policies = Policies::load_with(&global, &ns_dir, OnInvalidPolicy::KeepLastValid).unwrap();
    let reject = requirement(&policies, "").unwrap();
    std::fs::write(&global, "{garbage").unwrap();
    let outcomes = policies.reload();
    assert!(
        matches!(&outcomes[..], [ReloadOutcome::Refused { reason, .. }]
            if reason.contains("the last valid version stays in force")),
        "{outcomes:?}"
    );
    assert_eq!(requirement(&policies, "prod").unwrap(), reject);
}

#[test]
fn a_vanished_directory_is_an_error_not_an_empty_one() {
    for mode in [OnInvalidPolicy::Reject, OnInvalidPolicy::KeepLastValid] {
        let (_dir, global, ns_dir) = node();
        let policies = Policies::load_with(&global, &ns_dir, mode).unwrap();
        let reject = requirement(&policies, "").unwrap();
        let accept = requirement(&policies, "dev").unwrap();
        std::fs::remove_file(ns_dir.join("dev.json")).unwrap();
        std::fs::remove_dir(&ns_dir).unwrap();
        let outcomes = policies.reload();
        assert!(
            matches!(&outcomes[..], [ReloadOutcome::Refused { path, .. }] if *path == ns_dir),
            "{mode:?}: {outcomes:?}"
        );
        // Reported once, not at every poll.
        assert!(policies.reload().is_empty(), "{mode:?}");
        // dev never silently falls back to the global policy.
        match mode {
            OnInvalidPolicy::Reject => {
                let refused = requirement(&policies, "dev").unwrap_err();
                assert!(refused.contains(&ns_dir.display().to_string()), "{refused}");
            }
            OnInvalidPolicy::KeepLastValid => {
                assert_eq!(requirement(&policies, "dev").unwrap(), accept);
            }
        }
        // Namespaces that had no file stay on the global policy.
        assert_eq!(requirement(&policies, "prod").unwrap(), reject);

        // Back, and empty: dev's file is gone, dev is on the global policy.
        std::fs::create_dir(&ns_dir).unwrap();
        let outcomes = policies.reload();
        assert!(
            outcomes.contains(&ReloadOutcome::Removed {
                kind: ConfigKind::Policy,
                path: ns_dir.join("dev.json")
            }),
            "{mode:?}: {outcomes:?}"
        );
        assert_eq!(requirement(&policies, "dev").unwrap(), reject);
    }
}

#[test]
fn a_directory_missing_at_start_holds_no_namespace_policies_until_it_appears() {
    let (_dir, global, ns_dir) = node();
    let missing = ns_dir.with_file_name("later");
    let policies = Policies::load(&global, &missing).unwrap();
    let reject = requirement(&policies, "").unwrap();
    assert_eq!(requirement(&policies, "dev").unwrap(), reject);
    assert!(policies.reload().is_empty());
    std::fs::rename(&ns_dir, &missing).unwrap();
    assert!(matches!(
        &policies.reload()[..],
        [ReloadOutcome::Applied { .. }]
    ));
    assert_ne!(requirement(&policies, "dev").unwrap(), reject);
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
