//! `kubectl kustomize deploy/` builds, and what it builds is what the
//! README promises an operator: the committed CRDs, a namespace, RBAC
//! that lets the agent only read policies and the status writer only
//! patch their status, the agent DaemonSet whose one host path is the
//! rendered folder, and a one-replica status writer.

#![allow(clippy::unwrap_used)]

mod kube_support;

use std::path::Path;
use std::process::Command;

use criguard_testutil::run_ok;
use serde::Deserialize as _;
use serde_json::Value;

fn built() -> Vec<Value> {
    let deploy = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy");
    let out = run_ok(Command::new("kubectl").arg("kustomize").arg(&deploy));
    let text = String::from_utf8(out).unwrap();
    yaml_serde::Deserializer::from_str(&text)
        .map(|document| Value::deserialize(document).unwrap())
        .filter(|v| !v.is_null())
        .collect()
}

fn find<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name} in the kustomization"))
}

fn rules(role: &Value) -> Vec<(Vec<String>, Vec<String>)> {
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_owned())
            .collect()
    };
    role["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            assert_eq!(r["apiGroups"], serde_json::json!(["criguard.dev"]), "{r}");
            (strings(&r["resources"]), strings(&r["verbs"]))
        })
        .collect()
}

#[test]
fn the_kustomization_builds_what_an_operator_installs() {
    let objects = built();

    // The CRDs are the committed ones, unchanged.
    let committed = kube_support::committed_crds();
    for crd in &committed {
        let name = crd.metadata.name.as_deref().unwrap();
        let got = find(&objects, "CustomResourceDefinition", name);
        assert_eq!(got, &serde_json::to_value(crd).unwrap());
    }
    find(&objects, "Namespace", "criguard-system");

    // The agent reads; only the status writer writes, and only status.
    let agent_role = rules(find(&objects, "ClusterRole", "criguard-agent"));
    assert_eq!(
        agent_role,
        [(
            vec![
                "clusterimagepolicies".to_owned(),
                "imagepolicies".to_owned()
            ],
            vec!["get".to_owned(), "list".to_owned(), "watch".to_owned()]
        )]
    );
    let writer_role = rules(find(&objects, "ClusterRole", "criguard-status-writer"));
    for (resources, verbs) in &writer_role {
        if verbs.iter().any(|v| v == "patch") {
            assert!(
                resources.iter().all(|r| r.ends_with("/status")),
                "{resources:?}"
            );
        }
    }
    assert!(writer_role.iter().any(|(r, v)| {
        r.contains(&"imagepolicies/status".to_owned()) && v.contains(&"patch".to_owned())
    }));

    // The DaemonSet: one host path, the rendered folder serve reads, and
    // a locked-down container.
    let daemonset = find(&objects, "DaemonSet", "criguard-agent");
    let pod = &daemonset["spec"]["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], "criguard-agent");
    let host_paths: Vec<&Value> = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v.get("hostPath").is_some())
        .collect();
    assert_eq!(host_paths.len(), 1, "{host_paths:?}");
    assert_eq!(host_paths[0]["hostPath"]["path"], "/etc/criguard/rendered");
    let container = &pod["containers"][0];
    let security = &container["securityContext"];
    assert_eq!(security["readOnlyRootFilesystem"], true);
    assert_eq!(security["runAsNonRoot"], true);
    assert_eq!(security["allowPrivilegeEscalation"], false);
    assert_eq!(security["capabilities"]["drop"], serde_json::json!(["ALL"]));
    let args: Vec<&str> = container["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(args[0], "agent");
    assert!(
        args.contains(&"--output=/etc/criguard/rendered"),
        "{args:?}"
    );

    // The status writer: one replica, never two during a rollout.
    let deployment = find(&objects, "Deployment", "criguard-status-writer");
    assert_eq!(deployment["spec"]["replicas"], 1);
    assert_eq!(deployment["spec"]["strategy"]["type"], "Recreate");
    let writer = &deployment["spec"]["template"]["spec"];
    assert_eq!(writer["serviceAccountName"], "criguard-status-writer");
    assert_eq!(writer["containers"][0]["args"][0], "status-writer");
    assert!(
        writer["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|v| v.get("hostPath").is_none())
    );

    // Both the agent and the status writer parse the arguments they are given.
    for args in [
        container["args"].clone(),
        writer["containers"][0]["args"].clone(),
    ] {
        let mut args: Vec<String> = args
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap().to_owned())
            .collect();
        args.push("--help".to_owned());
        run_ok(Command::new(env!("CARGO_BIN_EXE_criguard")).args(&args));
    }
}
