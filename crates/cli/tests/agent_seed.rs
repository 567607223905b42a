//! `criguard agent --seed`: the node's first set, before any API server
//! or pod exists. It writes the base policy once, in the agent's layout,
//! and never replaces a set already in force (the agent's last good
//! files win over the base after a reboot); an invalid base writes
//! nothing. And an agent whose API server is unreachable writes nothing
//! over it.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;

use criguard_testutil::{output_text, run_with_timeout};

fn seed(base: &Path, out: &Path) -> std::process::Output {
    run_with_timeout(
        Command::new(env!("CARGO_BIN_EXE_criguard"))
            .arg("agent")
            .arg("--seed")
            .arg(format!("--base={}", base.display()))
            .arg(format!("--output={}", out.display())),
        criguard_testutil::DEFAULT_TIMEOUT,
    )
}

#[test]
fn seeding_writes_the_base_once_and_never_over_a_set_in_force() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("base.json");
    let out = dir.path().join("rendered");
    std::fs::write(&base, r#"{"default":[{"type":"reject"}]}"#).unwrap();

    let first = seed(&base, &out);
    assert!(first.status.success(), "{}", output_text(&first));
    let policy = std::fs::read_to_string(out.join("policy.json")).unwrap();
    assert!(policy.contains("reject"), "{policy}");
    assert!(out.join("policies").is_dir());
    assert!(
        std::fs::symlink_metadata(out.join("policy.json"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    let generation = std::fs::read_link(out.join("..data")).unwrap();
    // criguard's own linter accepts what was written.
    let lint = run_with_timeout(
        Command::new(env!("CARGO_BIN_EXE_criguard"))
            .args(["policy", "lint"])
            .arg(out.join("policy.json")),
        criguard_testutil::DEFAULT_TIMEOUT,
    );
    assert!(lint.status.success(), "{}", output_text(&lint));

    // Another base later: the set in force stays.
    std::fs::write(&base, r#"{"default":[{"type":"insecureAcceptAnything"}]}"#).unwrap();
    let again = seed(&base, &out);
    assert!(again.status.success(), "{}", output_text(&again));
    assert!(String::from_utf8_lossy(&again.stdout).contains("nothing written"));
    assert_eq!(std::fs::read_link(out.join("..data")).unwrap(), generation);

    // An invalid base: refused, naming the problem, nothing written.
    let empty = dir.path().join("empty");
    std::fs::write(&base, "{\"default\": 7}").unwrap();
    let invalid = seed(&base, &empty);
    assert!(!invalid.status.success(), "{}", output_text(&invalid));
    assert!(
        String::from_utf8_lossy(&invalid.stderr).contains("base policy"),
        "{}",
        output_text(&invalid)
    );
    assert!(!empty.join("policy.json").exists());
}

/// An agent that cannot reach its API server (nothing listens at the
/// address) never lists the policies, so it never writes: the seeded set
/// stays, it logs the failure and keeps trying.
#[test]
fn an_agent_without_its_api_server_keeps_the_seeded_set() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("base.json");
    let out = dir.path().join("rendered");
    std::fs::write(&base, r#"{"default":[{"type":"reject"}]}"#).unwrap();
    assert!(seed(&base, &out).status.success());
    let generation = std::fs::read_link(out.join("..data")).unwrap();
    // A port that was free a moment ago: connections are refused.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: gone\n  cluster: {{server: \"https://127.0.0.1:{port}\", insecure-skip-tls-verify: true}}\n\
             users:\n- name: nobody\n  user: {{token: none}}\ncontexts:\n- name: gone\n  context: {{cluster: gone, user: nobody}}\ncurrent-context: gone\n"
        ),
    )
    .unwrap();
    // Another base than the seed's: a write would be visible.
    let other = dir.path().join("other.json");
    std::fs::write(&other, r#"{"default":[{"type":"insecureAcceptAnything"}]}"#).unwrap();
    let log = dir.path().join("agent.log");
    let mut agent = Command::new(env!("CARGO_BIN_EXE_criguard"))
        .arg("agent")
        .arg(format!("--base={}", other.display()))
        .arg(format!("--output={}", out.display()))
        .arg(format!("--kubeconfig={}", kubeconfig.display()))
        .stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(std::fs::File::create(dir.path().join("agent.err")).unwrap())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let err = dir.path().join("agent.err");
    while !std::fs::read_to_string(&err)
        .unwrap_or_default()
        .contains("cannot watch the policy objects")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "no watch error logged:\n{}",
            std::fs::read_to_string(&err).unwrap_or_default()
        );
        assert!(agent.try_wait().unwrap().is_none(), "the agent exited");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(agent.try_wait().unwrap().is_none(), "the agent exited");
    let _ = agent.kill();
    let _ = agent.wait();
    assert_eq!(std::fs::read_link(out.join("..data")).unwrap(), generation);
    let policy = std::fs::read_to_string(out.join("policy.json")).unwrap();
    assert!(policy.contains("reject"), "{policy}");
}
