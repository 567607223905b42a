use super::*;

/// A node's registry files: registries.d naming one host, a
/// registries.conf and an auth file, all named in the configuration.
fn files(dir: &Path) -> Registries {
    std::fs::create_dir(dir.join("registries.d")).unwrap();
    std::fs::write(
        dir.join("registries.d/a.yaml"),
        "docker:\n  r.example:\n    use-sigstore-attachments: true\n",
    )
    .unwrap();
    std::fs::write(dir.join("registries.conf"), "").unwrap();
    std::fs::write(dir.join("auth.json"), r#"{"auths": {}}"#).unwrap();
    Registries::load(
        &dir.join("registries.d"),
        Some(&dir.join("registries.conf")),
        Some(&dir.join("auth.json")),
        Duration::from_secs(1),
    )
    .unwrap()
}

fn sigstore_attachments(registries: &Registries) -> bool {
    let reference = criguard_reference::Reference::parse_normalized("r.example/a/b:v1").unwrap();
    registries
        .snapshot()
        .registries_d
        .use_sigstore_attachments(&reference)
}

#[test]
fn valid_changes_apply_in_a_new_generation_invalid_ones_keep_the_last() {
    let dir = tempfile::tempdir().unwrap();
    let registries = files(dir.path());
    assert!(registries.reload().is_empty());
    assert_eq!(registries.generation(), 0);
    assert!(sigstore_attachments(&registries));

    let yaml = dir.path().join("registries.d/a.yaml");
    std::fs::write(&yaml, "docker: [not a map").unwrap();
    let outcomes = registries.reload();
    assert!(
        matches!(
            &outcomes[..],
            [ReloadOutcome::Refused {
                kind: ConfigKind::RegistriesD,
                ..
            }]
        ),
        "{outcomes:?}"
    );
    assert!(registries.reload().is_empty(), "reported once");
    assert_eq!(registries.generation(), 0);
    assert!(sigstore_attachments(&registries));

    std::fs::write(
        &yaml,
        "docker:\n  r.example:\n    use-sigstore-attachments: false\n",
    )
    .unwrap();
    let outcomes = registries.reload();
    assert!(
        matches!(
            &outcomes[..],
            [ReloadOutcome::Applied {
                kind: ConfigKind::RegistriesD,
                ..
            }]
        ),
        "{outcomes:?}"
    );
    assert_eq!(registries.generation(), 1);
    assert!(!sigstore_attachments(&registries));
    // The same settings written again: no new generation.
    std::fs::write(
        &yaml,
        "# edited\ndocker:\n  r.example:\n    use-sigstore-attachments: false\n",
    )
    .unwrap();
    registries.reload();
    assert_eq!(registries.generation(), 1);

    // registries.conf and the auth file: the same rules.
    std::fs::write(dir.path().join("registries.conf"), "[[registry]\n").unwrap();
    std::fs::write(dir.path().join("auth.json"), "{").unwrap();
    let outcomes = registries.reload();
    assert!(
        matches!(
            &outcomes[..],
            [
                ReloadOutcome::Refused {
                    kind: ConfigKind::RegistriesConf,
                    ..
                },
                ReloadOutcome::Refused {
                    kind: ConfigKind::AuthFile,
                    ..
                },
            ]
        ),
        "{outcomes:?}"
    );
    assert_eq!(registries.generation(), 1);
    std::fs::write(
        dir.path().join("auth.json"),
        r#"{"auths": {"r.example": {"auth": "dTpw"}}}"#,
    )
    .unwrap();
    registries.reload();
    assert_eq!(registries.generation(), 2);
    assert!(registries.snapshot().base.auth_file.is_some());
}

#[test]
fn a_vanished_folder_or_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let registries = files(dir.path());
    std::fs::remove_dir_all(dir.path().join("registries.d")).unwrap();
    std::fs::remove_file(dir.path().join("registries.conf")).unwrap();
    let outcomes = registries.reload();
    assert!(
        matches!(
            &outcomes[..],
            [
                ReloadOutcome::Refused { kind: ConfigKind::RegistriesD, reason, .. },
                ReloadOutcome::Refused { kind: ConfigKind::RegistriesConf, .. },
            ] if reason.contains("disappeared")
        ),
        "{outcomes:?}"
    );
    assert!(sigstore_attachments(&registries));
    assert_eq!(registries.generation(), 0);
    // Back: applies.
    std::fs::create_dir(dir.path().join("registries.d")).unwrap();
    let outcomes = registries.reload();
    assert!(
        matches!(
            &outcomes[..],
            [ReloadOutcome::Applied {
                kind: ConfigKind::RegistriesD,
                ..
            }]
        ),
        "{outcomes:?}"
    );
    assert!(!sigstore_attachments(&registries));
}

#[test]
fn a_folder_missing_at_start_applies_when_it_appears() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("registries.conf"), "").unwrap();
    let registries = Registries::load(
        &dir.path().join("registries.d"),
        Some(&dir.path().join("registries.conf")),
        Some(&dir.path().join("missing-auth.json")),
        Duration::from_secs(1),
    );
    // A named auth file that is not there refuses the start.
    assert!(registries.is_err());
    std::fs::write(dir.path().join("auth.json"), "{}").unwrap();
    let registries = Registries::load(
        &dir.path().join("registries.d"),
        Some(&dir.path().join("registries.conf")),
        Some(&dir.path().join("auth.json")),
        Duration::from_secs(1),
    )
    .unwrap();
    assert!(registries.reload().is_empty());
    std::fs::create_dir(dir.path().join("registries.d")).unwrap();
    std::fs::write(
        dir.path().join("registries.d/a.yaml"),
        "docker:\n  r.example:\n    use-sigstore-attachments: true\n",
    )
    .unwrap();
    assert!(matches!(
        &registries.reload()[..],
        [ReloadOutcome::Applied {
            kind: ConfigKind::RegistriesD,
            ..
        }]
    ));
    assert!(sigstore_attachments(&registries));
    assert_eq!(registries.generation(), 1);
}
