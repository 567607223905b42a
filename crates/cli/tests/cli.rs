//! The `criguard` command as a user runs it.

#![allow(clippy::unwrap_used)] // test helpers: a panic is a test failure

use std::path::PathBuf;
use std::process::{Command, Output};

fn criguard(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_criguard"))
        .args(args)
        .output()
        .expect("run criguard")
}

fn example(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples")
        .join(name)
        .display()
        .to_string()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn lint_accepts_a_valid_policy() {
    let out = criguard(&["policy", "lint", &example("policy.json")]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("valid policy (6 scope(s) in 2 transport(s))")
    );
}

#[test]
fn lint_lists_every_problem_and_exits_1() {
    let out = criguard(&["policy", "lint", &example("broken-policy.json")]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    for want in [
        "broken-policy.json:2:16: default: List of verification policy requirements must not be empty",
        "Exactly one of keyPath, keyPaths and keyData must be specified, more than one present",
        "Unknown policy reference match type \"matchRepositry\"",
        "Unknown key \"relative/path\"",
        "4 problem(s)",
    ] {
        assert!(err.contains(want), "missing {want:?} in:\n{err}");
    }
}

#[test]
fn lint_of_a_missing_file_fails() {
    let out = criguard(&["policy", "lint", "/nonexistent/policy.json"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("reading /nonexistent/policy.json"));
}

#[test]
fn lint_warns_about_unknown_transports() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.json");
    std::fs::write(&path, r#"{"default":[{"type":"reject"}],"transports":{"dokcer":{"x":[{"type":"insecureAcceptAnything"}]}}}"#).unwrap();
    let out = criguard(&["policy", "lint", path.to_str().unwrap()]);
    assert!(out.status.success());
    assert!(stderr(&out).contains("transport \"dokcer\" is not one containers/image knows"));
}

fn explain_json(image: &str) -> serde_json::Value {
    let out = criguard(&[
        "policy",
        "explain",
        "--policy",
        &example("policy.json"),
        "--output",
        "json",
        image,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn explain_shows_the_most_specific_scope() {
    let v = explain_json("registry.example.com/platform/debug-tools:1.0");
    assert_eq!(
        v["image"],
        "docker://registry.example.com/platform/debug-tools:1.0"
    );
    assert_eq!(v["transport"], "docker");
    assert_eq!(v["scope"], "registry.example.com/platform/debug-tools");
    assert_eq!(v["requirements"], serde_json::json!([{"type": "reject"}]));
    assert_eq!(
        v["candidates"][0]["scope"],
        "registry.example.com/platform/debug-tools:1.0"
    );
    assert_eq!(v["candidates"][0]["matched"], false);

    let v = explain_json(
        "docker://registry.example.com/platform/api@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
    );
    assert_eq!(v["scope"], "registry.example.com/platform");
    assert_eq!(
        v["requirements"][0]["keyPath"],
        "/etc/criguard/keys/platform.pub"
    );

    assert_eq!(
        explain_json("registry.example.com/other:1")["scope"],
        "registry.example.com"
    );
    assert_eq!(
        explain_json("a.b.internal.example.com/x")["scope"],
        "*.internal.example.com"
    );
    // The bare domain is not covered by its wildcard.
    assert_eq!(
        explain_json("internal.example.com/x")["scope"],
        serde_json::Value::Null
    );
    let busybox = explain_json("busybox");
    assert_eq!(busybox["image"], "docker://busybox:latest");
    assert_eq!(busybox["scope"], "docker.io/library");
    assert_eq!(
        busybox["requirements"][0]["fulcio"]["subjectEmail"],
        "release@example.com"
    );
}

#[test]
fn explain_of_an_oci_layout_uses_its_resolved_path() {
    let dir = tempfile::tempdir().unwrap();
    let v = explain_json(&format!("oci:{}:app", dir.path().display()));
    assert_eq!(v["transport"], "oci");
    assert_eq!(v["scope"], "");
}

#[test]
fn explain_text_and_bad_input() {
    let out = criguard(&[
        "policy",
        "explain",
        "--policy",
        &example("policy.json"),
        "quay.io/x/y:1",
    ]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("applies:   global default"), "{text}");
    assert!(text.contains(r#"1. {"type":"reject"}"#), "{text}");

    let out = criguard(&[
        "policy",
        "explain",
        "--policy",
        &example("policy.json"),
        "Quay.io/UPPER/x",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("repository name must be lowercase"));

    let out = criguard(&[
        "policy",
        "explain",
        "--policy",
        &example("broken-policy.json"),
        "busybox",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("every image would be rejected"));

    let out = criguard(&["policy", "explain"]);
    assert_eq!(out.status.code(), Some(2));
}
