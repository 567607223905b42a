//! `criguard policy render` and `policy crds`: objects in YAML files to
//! policy files, checked by criguard's own `verify` against a real
//! registry (Debian's docker-registry on 127.0.0.1), per namespace.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use criguard_testutil::{Registry, insecure_registries_conf, push_test_image, run_with_timeout};

const PASSWORD: &str = "test-password";

fn criguard(args: &[&str]) -> Output {
    run_with_timeout(
        Command::new(env!("CARGO_BIN_EXE_criguard")).args(args),
        Duration::from_secs(120),
    )
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A key pair made by `criguard keygen` in `dir`: (private, public).
fn keygen(dir: &Path, password_file: &Path) -> (PathBuf, PathBuf) {
    std::fs::create_dir_all(dir).unwrap();
    let out = criguard(&[
        "keygen",
        "--output-dir",
        dir.to_str().unwrap(),
        "--password-file",
        password_file.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    (dir.join("cosign.key"), dir.join("cosign.pub"))
}

fn key_data(public: &Path) -> String {
    STANDARD.encode(std::fs::read(public).unwrap())
}

fn policy_yaml(
    kind: &str,
    namespace: Option<&str>,
    name: &str,
    mode: &str,
    scope: &str,
    key: &str,
) -> String {
    let namespace = namespace
        .map(|n| format!("\n  namespace: {n}"))
        .unwrap_or_default();
    format!(
        "apiVersion: criguard.dev/v1alpha1\nkind: {kind}\nmetadata:\n  name: {name}{namespace}\n\
         spec:\n  mode: {mode}\n  scopes: [\"{scope}\"]\n  policy:\n    rootOfTrust:\n      \
         policyType: PublicKey\n      publicKey:\n        keyData: {key}\n    \
         signedIdentity:\n      matchPolicy: MatchRepository\n"
    )
}

/// cosign and `criguard sign` sign the repository, so the policies match
/// it (`MatchRepository`).
///
/// The cluster signs `app/*` with one key and `audit/*` only in audit mode;
/// namespace `team` signs `team/*` with another. Rendered files, checked
/// with `criguard verify`, allow and refuse per namespace as they say.
#[test]
fn rendered_policies_allow_signed_and_refuse_unsigned_images_per_namespace() {
    let registry = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let host = registry.host();
    let registries_conf = insecure_registries_conf(&dir.path().join("registries.conf"), &host);
    let password_file = dir.path().join("password");
    std::fs::write(&password_file, format!("{PASSWORD}\n")).unwrap();
    let (cluster_key, cluster_pub) = keygen(&dir.path().join("cluster"), &password_file);
    let (team_key, team_pub) = keygen(&dir.path().join("team"), &password_file);

    let sign = |key: &Path, image: &str| {
        let out = criguard(&[
            "sign",
            "--key",
            key.to_str().unwrap(),
            "--password-file",
            password_file.to_str().unwrap(),
            "--registries-conf",
            registries_conf.to_str().unwrap(),
            image,
        ]);
        assert!(out.status.success(), "{image}: {}", text(&out));
    };
    let app_signed = push_test_image(&registry, "app/signed", "v1", "app-signed").by_tag();
    let app_unsigned = push_test_image(&registry, "app/unsigned", "v1", "app-unsigned").by_tag();
    let team_signed = push_test_image(&registry, "team/signed", "v1", "team-signed").by_tag();
    let team_unsigned = push_test_image(&registry, "team/unsigned", "v1", "team-unsigned").by_tag();
    let audit_unsigned = push_test_image(&registry, "audit/unsigned", "v1", "audit").by_tag();
    sign(&cluster_key, &app_signed);
    sign(&team_key, &team_signed);

    let inputs = dir.path().join("objects");
    std::fs::create_dir(&inputs).unwrap();
    let cluster = key_data(&cluster_pub);
    std::fs::write(
        inputs.join("cluster.yaml"),
        format!(
            "{}---\n{}",
            policy_yaml(
                "ClusterImagePolicy",
                None,
                "apps",
                "Enforce",
                &format!("{host}/app"),
                &cluster
            ),
            policy_yaml(
                "ClusterImagePolicy",
                None,
                "trial",
                "Audit",
                &format!("{host}/audit"),
                &cluster
            ),
        ),
    )
    .unwrap();
    std::fs::write(
        inputs.join("team.yml"),
        policy_yaml(
            "ImagePolicy",
            Some("team"),
            "team",
            "Enforce",
            &format!("{host}/team"),
            &key_data(&team_pub),
        ),
    )
    .unwrap();
    std::fs::write(inputs.join("README.txt"), "not read: not YAML").unwrap();
    let base = dir.path().join("base.json");
    std::fs::write(&base, r#"{"default":[{"type":"insecureAcceptAnything"}]}"#).unwrap();
    let out_dir = dir.path().join("rendered");
    let out = criguard(&[
        "policy",
        "render",
        "--base",
        base.to_str().unwrap(),
        "--input",
        inputs.to_str().unwrap(),
        "--output",
        out_dir.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let said = text(&out);
    for line in [
        "applied: ClusterImagePolicy/apps",
        "applied: ImagePolicy/team/team",
        "policies/team.json",
        "audit/policy.json",
    ] {
        assert!(said.contains(line), "{line}\n{said}");
    }

    let verify = |policy: &str, image: &str| -> (bool, String) {
        let out = criguard(&[
            "verify",
            "--policy",
            out_dir.join(policy).to_str().unwrap(),
            "--registries.d",
            out_dir.join("registries.d").to_str().unwrap(),
            "--registries-conf",
            registries_conf.to_str().unwrap(),
            image,
        ]);
        match out.status.code() {
            Some(0) => (true, text(&out)),
            Some(1) => (false, text(&out)),
            _ => panic!("{policy} {image}: {}", text(&out)),
        }
    };
    let expected = [
        // (policy file, image, allowed)
        ("policy.json", &app_signed, true),
        ("policy.json", &app_unsigned, false),
        ("policy.json", &team_unsigned, true), // no cluster policy for team/*
        ("policy.json", &audit_unsigned, true), // Audit: not in the enforced set
        ("policies/team.json", &app_signed, true),
        ("policies/team.json", &app_unsigned, false),
        ("policies/team.json", &team_signed, true),
        ("policies/team.json", &team_unsigned, false),
        ("audit/policy.json", &audit_unsigned, false),
        ("audit/policy.json", &app_signed, true),
        ("audit/policies/team.json", &team_unsigned, false),
    ];
    for (policy, image, allowed) in expected {
        let (verdict, said) = verify(policy, image);
        assert_eq!(verdict, allowed, "{policy} {image}: {said}");
    }
}

/// Invalid input names the object and field, exits 1 and writes nothing;
/// a render replaces its own earlier output and nothing else.
#[test]
fn invalid_input_writes_nothing_and_output_is_replaced_whole() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("base.json");
    std::fs::write(&base, r#"{"default":[{"type":"reject"}]}"#).unwrap();
    let key = STANDARD.encode("-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----\n");
    let good = dir.path().join("good.yaml");
    std::fs::write(
        &good,
        format!(
            "{}---\n{}",
            policy_yaml(
                "ClusterImagePolicy",
                None,
                "corp",
                "Enforce",
                "example.com",
                &key
            ),
            policy_yaml(
                "ImagePolicy",
                Some("team"),
                "inside",
                "Enforce",
                "example.com/team",
                &key
            ),
        ),
    )
    .unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        policy_yaml(
            "ImagePolicy",
            Some("team"),
            "broken",
            "Enforce",
            "not a scope",
            &key,
        ),
    )
    .unwrap();
    let output = dir.path().join("out");
    let render = |inputs: &[&Path], target: &str| {
        let mut args = vec![
            "policy",
            "render",
            "--base",
            base.to_str().unwrap(),
            "--output",
            output.to_str().unwrap(),
            "--target",
            target,
            "--input",
        ];
        args.extend(inputs.iter().map(|p| p.to_str().unwrap()));
        criguard(&args)
    };

    let out = render(&[&good, &bad], "criguard");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let said = text(&out);
    assert!(
        said.contains("ImagePolicy/team/broken: spec.scopes[0]"),
        "{said}"
    );
    assert!(said.contains("nothing written"), "{said}");
    assert!(!output.exists());

    // A field of the wrong type is named with its path.
    std::fs::write(
        &bad,
        policy_yaml(
            "ImagePolicy",
            Some("team"),
            "broken",
            "Sometimes",
            "quay.io",
            &key,
        ),
    )
    .unwrap();
    let out = render(&[&bad], "criguard");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("ImagePolicy/team/broken: spec.mode"),
        "{}",
        text(&out)
    );
    assert!(!output.exists());

    let out = render(&[&good], "criguard");
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains(r#"conflict: ImagePolicy/team/inside: scope "example.com/team" is inside "example.com" of ClusterImagePolicy/corp; dropped"#),
        "{}",
        text(&out)
    );
    assert!(output.join("audit/policy.json").is_file());

    // Rendered again for CRI-O: the whole set is replaced, audit files go.
    let out = render(&[&good], "crio");
    assert!(out.status.success(), "{}", text(&out));
    assert!(output.join("policy.json").is_file());
    assert!(!output.join("audit").exists());
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.contains(".new-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // A directory render did not write is never replaced.
    let foreign = dir.path().join("etc");
    std::fs::create_dir(&foreign).unwrap();
    std::fs::write(foreign.join("keep"), "x").unwrap();
    let out = criguard(&[
        "policy",
        "render",
        "--base",
        base.to_str().unwrap(),
        "--input",
        good.to_str().unwrap(),
        "--output",
        foreign.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("refusing to replace it"),
        "{}",
        text(&out)
    );
    assert!(foreign.join("keep").is_file());
}

#[test]
fn crds_prints_the_committed_crds() {
    let out = criguard(&["policy", "crds"]);
    assert!(out.status.success(), "{}", text(&out));
    let committed =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/crds/criguard.dev.yaml");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        std::fs::read_to_string(committed).unwrap()
    );
}
