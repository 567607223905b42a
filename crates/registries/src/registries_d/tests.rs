use std::path::PathBuf;

use super::*;
use crate::MAX_CONFIG_FILE_SIZE;

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/fixtures/containers-image/docker/fixtures/registries.d")
}

fn reference(docker_transport: &str) -> Reference {
    Reference::parse_docker_transport(docker_transport).unwrap()
}

fn from_yaml(files: &[(&str, &str)]) -> Result<RegistriesD, Error> {
    RegistriesD::from_files(
        files
            .iter()
            .map(|(name, text)| ((*name).to_owned(), text.as_bytes().to_vec())),
    )
}

fn settings(lookaside: &str, lookaside_staging: &str) -> ScopeSettings {
    ScopeSettings {
        lookaside: lookaside.to_owned(),
        lookaside_staging: lookaside_staging.to_owned(),
        ..ScopeSettings::default()
    }
}

/// `TestSignatureStorageBaseURL`, with root's built-in default.
#[test]
fn lookaside_base_for_fixture_references() {
    let config = RegistriesD::load_dir(&fixture_dir()).unwrap();
    let cases = [
        (
            "//example.com/my/project",
            "https://lookaside.example.com/my/project",
        ),
        (
            "//localhost/file/path/test",
            "/no/scheme/just/a/path/file/path/test",
        ),
        (
            "//localhost/relative/path/test",
            "no/scheme/relative/path/relative/path/test",
        ),
    ];
    for (input, expected) in cases {
        let base = config
            .lookaside_base(&reference(input), LookasideAccess::Read)
            .unwrap();
        assert_eq!(base.to_string(), expected, "{input}");
    }

    let err = config
        .lookaside_base(
            &reference("//localhost/invalid/url/test"),
            LookasideAccess::Read,
        )
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"Invalid signature storage URL :emptyscheme: parse ":emptyscheme": missing protocol scheme"#
    );

    let empty = tempfile::tempdir().unwrap();
    let config = RegistriesD::load_dir(empty.path()).unwrap();
    let base = config
        .lookaside_base(
            &reference("//this/is/not/in/the:configuration"),
            LookasideAccess::Read,
        )
        .unwrap();
    assert_eq!(
        base.to_string(),
        "file:///var/lib/containers/sigstore/this/is/not/in/the"
    );

    assert!(RegistriesD::load_dir(Path::new("/dev/null")).is_err());
}

#[test]
fn builtin_default_is_roots_directory() {
    assert_eq!(DEFAULT_LOOKASIDE, "file:///var/lib/containers/sigstore");
}

/// `TestLoadAndMergeConfig`: the fully worked fixture, including an empty
/// `{}` file and a file that is not `*.yaml`.
#[test]
fn fixture_directory_merges_to_the_expected_configuration() {
    let config = RegistriesD::load_dir(&fixture_dir()).unwrap();
    let expected_scopes = [
        ("example.com", settings("https://lookaside.example.com", "")),
        (
            "registry.test.example.com",
            settings("http://registry.test.example.com/lookaside", ""),
        ),
        (
            "registry.test.example.com:8888",
            settings(
                "http://registry.test.example.com:8889/lookaside",
                "https://registry.test.example.com:8889/lookaside/specialAPIserverWhichDoesNotExist",
            ),
        ),
        (
            "localhost",
            settings("file:///home/mitr/mydevelopment1", ""),
        ),
        (
            "localhost:8080",
            settings("file:///home/mitr/mydevelopment2", ""),
        ),
        ("localhost/invalid/url/test", settings(":emptyscheme", "")),
        (
            "localhost/file/path/test",
            settings("/no/scheme/just/a/path", ""),
        ),
        (
            "localhost/relative/path/test",
            settings("no/scheme/relative/path", ""),
        ),
        (
            "docker.io/contoso",
            settings("https://lookaside.contoso.com/fordocker", ""),
        ),
        (
            "docker.io/centos",
            settings("https://lookaside.centos.org/", ""),
        ),
        (
            "docker.io/centos/mybetaproduct",
            settings(
                "http://localhost:9999/mybetaWIP/lookaside",
                "file:///srv/mybetaWIP/lookaside",
            ),
        ),
        (
            "docker.io/centos/mybetaproduct:latest",
            settings("https://lookaside.centos.org/", ""),
        ),
    ];
    let expected = RegistriesD {
        default_docker: Some(settings(
            "file:///mnt/companywide/signatures/for/other/repositories",
            "",
        )),
        docker: expected_scopes
            .into_iter()
            .map(|(scope, settings)| (scope.to_owned(), settings))
            .collect(),
    };
    assert_eq!(config, expected);
}

#[test]
fn fixture_resolution_for_reading_and_writing() {
    let config = RegistriesD::load_dir(&fixture_dir()).unwrap();
    let cases = [
        // The identity scope wins over its repository's scope.
        (
            "//centos/mybetaproduct:latest",
            LookasideAccess::Read,
            "https://lookaside.centos.org//centos/mybetaproduct",
        ),
        (
            "//centos/mybetaproduct:beta",
            LookasideAccess::Read,
            "http://localhost:9999/mybetaWIP/lookaside/centos/mybetaproduct",
        ),
        (
            "//centos/mybetaproduct:beta",
            LookasideAccess::Write,
            "file:///srv/mybetaWIP/lookaside/centos/mybetaproduct",
        ),
        // The identity scope has no staging location: writers fall back to
        // its reading location, not to a more general scope.
        (
            "//centos/mybetaproduct:latest",
            LookasideAccess::Write,
            "https://lookaside.centos.org//centos/mybetaproduct",
        ),
        (
            "//centos/other",
            LookasideAccess::Read,
            "https://lookaside.centos.org//centos/other",
        ),
        (
            "//busybox",
            LookasideAccess::Read,
            "file:///mnt/companywide/signatures/for/other/repositories/library/busybox",
        ),
        (
            "//registry.test.example.com:8888/ns/repo",
            LookasideAccess::Write,
            "https://registry.test.example.com:8889/lookaside/specialAPIserverWhichDoesNotExist/ns/repo",
        ),
        (
            "//registry.test.example.com:8888/ns/repo",
            LookasideAccess::Read,
            "http://registry.test.example.com:8889/lookaside/ns/repo",
        ),
        // host:port is not a child of host.
        (
            "//localhost:8080/repo",
            LookasideAccess::Read,
            "file:///home/mitr/mydevelopment2/repo",
        ),
        (
            "//localhost:9999/repo",
            LookasideAccess::Read,
            "file:///mnt/companywide/signatures/for/other/repositories/repo",
        ),
        (
            "//example.com/ns/repo@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            LookasideAccess::Read,
            "https://lookaside.example.com/ns/repo",
        ),
    ];
    for (input, access, expected) in cases {
        let base = config.lookaside_base(&reference(input), access).unwrap();
        assert_eq!(base.to_string(), expected, "{input} {access:?}");
    }
}

/// `TestRegistryConfigurationSignatureTopLevel`.
#[test]
fn most_specific_scope_is_used() {
    let mut config = RegistriesD {
        default_docker: Some(settings("=default", "=default+w")),
        docker: BTreeMap::new(),
    };
    for scope in [
        "localhost",
        "localhost:5000",
        "example.com",
        "example.com/ns1",
        "example.com/ns1/ns2",
        "example.com/ns1/ns2/repo",
        "example.com/ns1/ns2/repo:notlatest",
    ] {
        config
            .docker
            .insert(scope.to_owned(), settings(scope, &format!("{scope}+w")));
    }
    let cases = [
        (
            "example.com/ns1/ns2/repo:notlatest",
            "example.com/ns1/ns2/repo:notlatest",
        ),
        (
            "example.com/ns1/ns2/repo:unmatched",
            "example.com/ns1/ns2/repo",
        ),
        (
            "example.com/ns1/ns2/notrepo:notlatest",
            "example.com/ns1/ns2",
        ),
        ("example.com/ns1/notns2/repo:notlatest", "example.com/ns1"),
        ("example.com/notns1/ns2/repo:notlatest", "example.com"),
        ("unknown.example.com/busybox", "=default"),
        ("localhost:5000/busybox", "localhost:5000"),
        ("localhost/busybox", "localhost"),
        ("localhost:9999/busybox", "=default"),
    ];
    for (input, expected) in cases {
        let reference = reference(&format!("//{input}"));
        assert_eq!(
            config.configured_lookaside(&reference, LookasideAccess::Read),
            Some(expected),
            "{input}"
        );
        let expected_for_writing = format!("{expected}+w");
        assert_eq!(
            config.configured_lookaside(&reference, LookasideAccess::Write),
            Some(expected_for_writing.as_str()),
            "{input}"
        );
    }

    let config = RegistriesD {
        default_docker: None,
        docker: [("unmatched".to_owned(), settings("a", "b"))].into(),
    };
    let reference = reference("//thisisnotmatched");
    assert_eq!(
        config.configured_lookaside(&reference, LookasideAccess::Read),
        None
    );
    assert_eq!(
        config.configured_lookaside(&reference, LookasideAccess::Write),
        None
    );
}

/// `TestRegistryNamespaceSignatureTopLevel`.
#[test]
fn location_within_one_section() {
    fn section(
        lookaside_staging: &str,
        lookaside: &str,
        sigstore_staging: &str,
        sigstore: &str,
    ) -> ScopeSettings {
        ScopeSettings {
            lookaside: lookaside.to_owned(),
            lookaside_staging: lookaside_staging.to_owned(),
            sigstore: sigstore.to_owned(),
            sigstore_staging: sigstore_staging.to_owned(),
            use_sigstore_attachments: None,
            sigstore_bundles: None,
        }
    }
    use LookasideAccess::{Read, Write};
    let cases = [
        (section("a", "b", "", ""), Write, Some("a")),
        (section("a", "b", "", ""), Read, Some("b")),
        (section("", "b", "", ""), Write, Some("b")),
        (section("", "b", "", ""), Read, Some("b")),
        (section("a", "", "", ""), Write, Some("a")),
        (section("a", "", "", ""), Read, None),
        (section("", "", "", ""), Write, None),
        (section("", "", "", ""), Read, None),
        (section("a", "b", "c", "d"), Write, Some("a")),
        (section("", "b", "c", "d"), Write, Some("c")),
        (section("", "b", "", "d"), Write, Some("b")),
        (section("", "", "", "d"), Write, Some("d")),
        (section("a", "b", "c", "d"), Read, Some("b")),
        (section("", "b", "c", "d"), Read, Some("b")),
        (section("", "b", "", "d"), Read, Some("b")),
        (section("", "", "", "d"), Read, Some("d")),
    ];
    for (section, access, expected) in cases {
        assert_eq!(
            section.lookaside_for(access),
            expected,
            "{section:?} {access:?}"
        );
    }
}

#[test]
fn each_field_falls_through_to_more_general_scopes() {
    let config = from_yaml(&[(
        "a.yaml",
        "default-docker:\n  lookaside: https://default\n\
         docker:\n  example.com/ns:\n    lookaside-staging: https://staging\n",
    )])
    .unwrap();
    let reference = reference("//example.com/ns/repo");
    assert_eq!(
        config.configured_lookaside(&reference, LookasideAccess::Read),
        Some("https://default")
    );
    assert_eq!(
        config.configured_lookaside(&reference, LookasideAccess::Write),
        Some("https://staging")
    );
}

#[test]
fn deprecated_sigstore_key_is_read() {
    let config = from_yaml(&[(
        "redhat.yaml",
        "docker:\n  registry.access.redhat.com:\n    sigstore: https://access.redhat.com/webassets/docker/content/sigstore\n",
    )])
    .unwrap();
    let base = config
        .lookaside_base(
            &reference("//registry.access.redhat.com/ubi9/ubi:latest"),
            LookasideAccess::Read,
        )
        .unwrap();
    assert_eq!(
        base.to_string(),
        "https://access.redhat.com/webassets/docker/content/sigstore/ubi9/ubi"
    );
}

#[test]
fn sigstore_attachments_first_explicit_setting_wins() {
    let config = from_yaml(&[(
        "a.yaml",
        "default-docker:\n  use-sigstore-attachments: true\n\
         docker:\n\
         \x20 quay.io/off:\n    use-sigstore-attachments: false\n\
         \x20 quay.io/off/unset:\n    lookaside: https://x\n\
         \x20 quay.io/off/on:tag:\n    use-sigstore-attachments: yes\n",
    )])
    .unwrap();
    let cases = [
        ("//quay.io/other/repo", true),
        ("//quay.io/off/repo", false),
        ("//quay.io/off/unset", false),
        ("//quay.io/off/on:tag", true),
        ("//quay.io/off/on:other", false),
    ];
    for (input, expected) in cases {
        assert_eq!(
            config.use_sigstore_attachments(&reference(input)),
            expected,
            "{input}"
        );
    }
    let empty = RegistriesD::default();
    assert!(!empty.use_sigstore_attachments(&reference("//busybox")));
}

/// criguard's own key: read per scope like `use-sigstore-attachments`,
/// off unless set, and independent of it.
#[test]
fn sigstore_bundles_are_opt_in_per_scope() {
    let config = from_yaml(&[(
        "a.yaml",
        "default-docker:\n  use-sigstore-attachments: true\n\
         docker:\n\
         \x20 quay.io/on:\n    criguard-sigstore-bundles: true\n\
         \x20 quay.io/on/off:\n    criguard-sigstore-bundles: false\n\
         \x20 quay.io/on/unset:\n    lookaside: https://x\n",
    )])
    .unwrap();
    for (input, expected) in [
        ("//quay.io/other/repo", false),
        ("//quay.io/on/repo", true),
        ("//quay.io/on/off", false),
        ("//quay.io/on/unset", true),
    ] {
        assert_eq!(
            config.sigstore_bundles(&reference(input)),
            expected,
            "{input}"
        );
        assert!(
            config.use_sigstore_attachments(&reference(input)),
            "{input}"
        );
    }
    assert!(!RegistriesD::default().sigstore_bundles(&reference("//busybox")));
    assert!(
        from_yaml(&[(
            "b.yaml",
            "docker:\n  x.io:\n    criguard-sigstore-bundles: [1]\n"
        )])
        .is_err()
    );
}

#[test]
fn name_only_references_skip_the_identity_scope() {
    let config = from_yaml(&[(
        "a.yaml",
        "docker:\n  quay.io/a/b:latest:\n    lookaside: https://tagged\n  quay.io/a/b:\n    lookaside: https://repo\n",
    )])
    .unwrap();
    let name_only = Reference::parse_normalized("quay.io/a/b").unwrap();
    assert_eq!(
        config.configured_lookaside(&name_only, LookasideAccess::Read),
        Some("https://repo")
    );
}

#[test]
fn duplicates_across_files_name_both_files() {
    let err = from_yaml(&[
        (
            "0.yaml",
            "default-docker:\n lookaside: file:////tmp/something",
        ),
        (
            "1.yaml",
            "default-docker:\n lookaside: file:////tmp/different",
        ),
    ])
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"Error parsing signature storage configuration: "default-docker" defined both in "0.yaml" and "1.yaml""#
    );

    let err = from_yaml(&[
        (
            "0.yaml",
            "docker:\n example.com:\n  lookaside: file:////tmp/something",
        ),
        (
            "1.yaml",
            "docker:\n example.com:\n  lookaside: file:////tmp/different",
        ),
    ])
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"Error parsing signature storage configuration: "docker" namespace "example.com" defined both in "0.yaml" and "1.yaml""#
    );

    // An empty section still defines the scope.
    let err = from_yaml(&[
        ("0.yaml", "docker:\n example.com:\n"),
        ("1.yaml", "docker:\n example.com: {}\n"),
    ])
    .unwrap_err();
    assert!(
        matches!(err, Error::DuplicateDockerNamespace { .. }),
        "{err}"
    );

    // A null default-docker does not.
    from_yaml(&[
        ("0.yaml", "default-docker:\n"),
        ("1.yaml", "default-docker:\n lookaside: https://x"),
    ])
    .unwrap();
}

#[test]
fn directory_duplicates_name_both_paths() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("1.yaml"),
        "docker:\n example.com:\n  lookaside: file:////tmp/different",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("0.yaml"),
        "docker:\n example.com:\n  lookaside: file:////tmp/something",
    )
    .unwrap();
    let message = RegistriesD::load_dir(dir.path()).unwrap_err().to_string();
    let first = dir.path().join("0.yaml").display().to_string();
    let second = dir.path().join("1.yaml").display().to_string();
    assert!(
        message.ends_with(&format!("defined both in \"{first}\" and \"{second}\"")),
        "{message}"
    );
}

#[test]
fn missing_or_empty_directories_are_empty_configurations() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(
        RegistriesD::load_dir(&dir.path().join("thisdoesnotexist")).unwrap(),
        RegistriesD::default()
    );
    assert_eq!(
        RegistriesD::load_dir(dir.path()).unwrap(),
        RegistriesD::default()
    );
}

#[test]
fn unreadable_entries_are_errors() {
    use std::os::unix::fs::PermissionsExt;

    let dir = tempfile::tempdir().unwrap();
    let unreadable_dir = dir.path().join("unreadable");
    std::fs::create_dir(&unreadable_dir).unwrap();
    std::fs::set_permissions(&unreadable_dir, std::fs::Permissions::from_mode(0o000)).unwrap();
    // Root reads anything; the check only means something for other users.
    if std::fs::read_dir(&unreadable_dir).is_err() {
        assert!(RegistriesD::load_dir(&unreadable_dir).is_err());
    }

    // A directory named like a configuration file cannot be read as one.
    let with_directory = dir.path().join("with-directory");
    std::fs::create_dir_all(with_directory.join("0.yaml")).unwrap();
    let err = RegistriesD::load_dir(&with_directory).unwrap_err();
    assert!(matches!(err, Error::Read { .. }), "{err}");
}

#[test]
fn invalid_yaml_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("0.yaml"), "}").unwrap();
    let err = RegistriesD::load_dir(dir.path()).unwrap_err();
    let path = dir.path().join("0.yaml").display().to_string();
    assert!(
        err.to_string().starts_with(&format!("parsing {path}: ")),
        "{err}"
    );
}

#[test]
fn parsing_is_lenient_like_go_yaml() {
    let accepted = [
        "",
        "# only a comment\n",
        "~",
        "{}",
        "unknown: [1, 2]\ndocker:\n  example.com:\n    lookaside: https://x\n    extra: {a: b}\n",
        "docker:\n",
        "docker:\n  example.com:\n",
        // Only the first document counts.
        "docker: {}\n---\ndocker: [not, a, map]\n",
        // Scalars of other types are taken as their text.
        "docker:\n  example.com:\n    lookaside: 123\n",
        "default-docker:\n  use-sigstore-attachments: on\n",
        "default-docker:\n  use-sigstore-attachments: \"no\"\n",
        "default-docker:\n  use-sigstore-attachments: ~\n",
    ];
    for text in accepted {
        from_yaml(&[("a.yaml", text)]).unwrap_or_else(|err| panic!("{text:?}: {err}"));
    }
    let config = from_yaml(&[("a.yaml", "docker:\n  example.com:\n    lookaside: 123\n")]).unwrap();
    assert_eq!(
        config
            .docker_scope("example.com")
            .and_then(ScopeSettings::lookaside),
        Some("123")
    );
}

#[test]
fn wrong_types_are_errors_naming_the_file() {
    let refused = [
        "}",
        "[1, 2]",
        "just a string",
        "docker: [a, b]\n",
        "docker:\n  example.com: [a]\n",
        "docker:\n  example.com:\n    lookaside: {a: b}\n",
        "default-docker: text\n",
        "default-docker:\n  use-sigstore-attachments: \"true\"\n",
        "default-docker:\n  use-sigstore-attachments: 1\n",
        "default-docker:\n  lookaside: a\n  lookaside: b\n",
        "docker:\n  example.com: {}\n  example.com: {}\n",
    ];
    for text in refused {
        let err = from_yaml(&[("bad.yaml", text)]).unwrap_err();
        assert!(
            matches!(&err, Error::Syntax { file, .. } if file == "bad.yaml"),
            "{text:?}: {err}"
        );
        assert!(err.to_string().starts_with("parsing bad.yaml: "), "{err}");
    }
}

#[test]
fn oversized_files_are_refused() {
    let mut big = b"docker:\n".to_vec();
    big.resize(usize::try_from(MAX_CONFIG_FILE_SIZE).unwrap() + 1, b' ');
    let err = RegistriesD::from_files([("big.yaml".to_owned(), big.clone())]).unwrap_err();
    assert!(matches!(err, Error::FileTooLarge { .. }), "{err}");
    assert!(err.to_string().contains("big.yaml"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("big.yaml"), &big).unwrap();
    let err = RegistriesD::load_dir(dir.path()).unwrap_err();
    assert!(matches!(err, Error::FileTooLarge { .. }), "{err}");
}

#[test]
fn non_yaml_files_are_ignored() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("broken.yml"), "}").unwrap();
    std::fs::write(dir.path().join("broken.yaml.bak"), "}").unwrap();
    std::fs::write(
        dir.path().join("ok.yaml"),
        "default-docker: {lookaside: https://x}",
    )
    .unwrap();
    let config = RegistriesD::load_dir(dir.path()).unwrap();
    assert_eq!(
        config.default_docker().and_then(ScopeSettings::lookaside),
        Some("https://x")
    );
}
