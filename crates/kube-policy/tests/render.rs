//! Table tests of the renderer: placement, conflicts, modes, targets, and
//! every validation rule, each also checked against the CRD's CEL rules
//! (evaluated client-side by kube's CEL library; the real API server test
//! is criguard-agent's).

#![allow(clippy::unwrap_used)]

use std::path::Path;

use criguard_kube_policy::{
    ClusterImagePolicy, ImagePolicy, Kind, ObjectRef, RenderError, RenderInput, Target, crds,
    render, validate_namespaced,
};
use criguard_policy::Policy;
use criguard_reference::Reference;
use criguard_registries::RegistriesD;
use serde_json::{Value, json};

const BASE: &str = r#"{"default":[{"type":"reject"}],"transports":{"docker":{"example.com":[{"type":"insecureAcceptAnything"}]}}}"#;

fn b64(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(text)
}

fn key() -> String {
    b64(
        "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----\n",
    )
}

fn ca() -> String {
    b64("-----BEGIN CERTIFICATE-----\nMIIBkDCCATegAwIBAgIU\n-----END CERTIFICATE-----\n")
}

fn spec(scopes: &[&str]) -> Value {
    json!({
        "scopes": scopes,
        "policy": {"rootOfTrust": {"policyType": "PublicKey", "publicKey": {"keyData": key()}}},
    })
}

fn cluster(name: &str, spec: Value) -> ClusterImagePolicy {
    serde_json::from_value(json!({
        "apiVersion": "criguard.dev/v1alpha1", "kind": "ClusterImagePolicy",
        "metadata": {"name": name}, "spec": spec,
    }))
    .unwrap()
}

fn namespaced(namespace: &str, name: &str, spec: Value) -> ImagePolicy {
    serde_json::from_value(json!({
        "apiVersion": "criguard.dev/v1alpha1", "kind": "ImagePolicy",
        "metadata": {"name": name, "namespace": namespace}, "spec": spec,
    }))
    .unwrap()
}

fn input(cluster: Vec<ClusterImagePolicy>, namespaced: Vec<ImagePolicy>) -> RenderInput {
    RenderInput {
        base_policy: BASE.as_bytes().to_vec(),
        cluster,
        namespaced,
        target: Target::Criguard,
    }
}

fn json_file(files: &criguard_kube_policy::Rendered, path: &str) -> Value {
    let bytes = files
        .files
        .get(Path::new(path))
        .unwrap_or_else(|| panic!("no {path}"));
    Policy::from_bytes(bytes, path).unwrap();
    serde_json::from_slice(bytes).unwrap()
}

/// The `type`s of the requirements of one docker scope.
fn types(policy: &Value, scope: &str) -> Vec<String> {
    policy["transports"]["docker"][scope]
        .as_array()
        .map(|list| {
            list.iter()
                .map(|r| r["type"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn requirements_are_appended_to_their_scopes_and_anded() {
    let rendered = render(&input(
        vec![
            cluster("b", spec(&["example.com", "ghcr.io/org"])),
            cluster("a", spec(&["ghcr.io/org"])),
        ],
        vec![],
    ))
    .unwrap();
    let global = json_file(&rendered, "policy.json");
    assert_eq!(
        types(&global, "example.com"),
        ["insecureAcceptAnything", "sigstoreSigned"]
    );
    assert_eq!(
        types(&global, "ghcr.io/org"),
        ["sigstoreSigned", "sigstoreSigned"]
    );
    assert_eq!(global["default"], json!([{"type": "reject"}]));
    // No namespace has ImagePolicies: no namespace files.
    assert!(!rendered.files.keys().any(|p| p.starts_with("policies")));
    assert_eq!(rendered.applied.len(), 2);
}

#[test]
fn namespace_scopes_inside_cluster_scopes_are_dropped_and_reported() {
    let rendered = render(&input(
        vec![cluster("corp", spec(&["example.com", "*.corp.example"]))],
        vec![
            namespaced(
                "team",
                "inside",
                spec(&["example.com/team/app:v1", "git.corp.example/x"]),
            ),
            namespaced(
                "team",
                "beside",
                spec(&["example.com:5000/team", "quay.io/team"]),
            ),
        ],
    ))
    .unwrap();
    let team = json_file(&rendered, "policies/team.json");
    assert_eq!(
        types(&team, "example.com"),
        ["insecureAcceptAnything", "sigstoreSigned"]
    );
    assert!(types(&team, "example.com/team/app:v1").is_empty());
    assert!(types(&team, "git.corp.example/x").is_empty());
    assert_eq!(types(&team, "example.com:5000/team"), ["sigstoreSigned"]);
    assert_eq!(types(&team, "quay.io/team"), ["sigstoreSigned"]);
    let global = json_file(&rendered, "policy.json");
    assert!(
        types(&global, "quay.io/team").is_empty(),
        "namespace scopes stay out of policy.json"
    );
    let dropped: Vec<(&str, &str, &str)> = rendered
        .conflicts
        .iter()
        .map(|c| (c.name.as_str(), c.scope.as_str(), c.cluster_scope.as_str()))
        .collect();
    assert_eq!(
        dropped,
        [
            ("inside", "example.com/team/app:v1", "example.com"),
            ("inside", "git.corp.example/x", "*.corp.example"),
        ]
    );
    // Every scope of "inside" was dropped: it is not applied.
    let applied: Vec<String> = rendered.applied.iter().map(ToString::to_string).collect();
    assert_eq!(
        applied,
        ["ClusterImagePolicy/corp", "ImagePolicy/team/beside"]
    );
}

#[test]
fn audit_policies_go_only_into_the_audit_set() {
    let mut audit = spec(&["audit.example/app"]);
    audit["mode"] = json!("Audit");
    let objects = input(
        vec![
            cluster("trial", audit.clone()),
            cluster("strict", spec(&["ghcr.io"])),
        ],
        vec![namespaced("team", "trying", {
            let mut s = audit.clone();
            s["scopes"] = json!(["quay.io/team"]);
            s
        })],
    );
    let rendered = render(&objects).unwrap();
    for path in ["policy.json", "policies/team.json"] {
        let enforced = json_file(&rendered, path);
        assert!(types(&enforced, "audit.example/app").is_empty(), "{path}");
        assert!(types(&enforced, "quay.io/team").is_empty(), "{path}");
        assert_eq!(types(&enforced, "ghcr.io"), ["sigstoreSigned"], "{path}");
    }
    let audit_global = json_file(&rendered, "audit/policy.json");
    assert_eq!(
        types(&audit_global, "audit.example/app"),
        ["sigstoreSigned"]
    );
    assert_eq!(types(&audit_global, "ghcr.io"), ["sigstoreSigned"]);
    let audit_team = json_file(&rendered, "audit/policies/team.json");
    assert_eq!(types(&audit_team, "quay.io/team"), ["sigstoreSigned"]);

    // CRI-O: no audit files, and the audit objects are named as left out.
    let crio = render(&RenderInput {
        target: Target::Crio,
        ..objects
    })
    .unwrap();
    assert!(!crio.files.keys().any(|p| p.starts_with("audit")));
    let left_out: Vec<String> = crio.not_rendered.iter().map(ToString::to_string).collect();
    assert_eq!(
        left_out,
        ["ClusterImagePolicy/trial", "ImagePolicy/team/trying"]
    );
    let registries = &crio.files[Path::new("registries.d/criguard.yaml")];
    assert!(!String::from_utf8_lossy(registries).contains("audit.example"));
}

#[test]
fn registries_d_turns_on_attachments_for_every_scope() {
    let rendered = render(&input(
        vec![cluster("c", spec(&["*.example.net", "ghcr.io/org"]))],
        vec![namespaced("team", "n", spec(&["localhost:5000/team"]))],
    ))
    .unwrap();
    let bytes = rendered.files[Path::new("registries.d/criguard.yaml")].clone();
    let config = RegistriesD::from_files([("criguard.yaml".to_owned(), bytes)]).unwrap();
    for image in [
        "registry.example.net/a:1",
        "ghcr.io/org/app:1",
        "localhost:5000/team/app:1",
    ] {
        let reference = Reference::parse_normalized(image).unwrap();
        assert!(config.use_sigstore_attachments(&reference), "{image}");
    }
    let elsewhere = Reference::parse_normalized("quay.io/other/app:1").unwrap();
    assert!(!config.use_sigstore_attachments(&elsewhere));
}

#[test]
fn signed_identity_and_roots_of_trust_map_to_policy_json() {
    let fulcio = json!({
        "scopes": ["ghcr.io/a"],
        "policy": {
            "rootOfTrust": {"policyType": "FulcioCAWithRekor", "fulcioCAWithRekor": {
                "fulcioCAData": ca(), "rekorKeyData": key(),
                "fulcioSubject": {"oidcIssuer": "https://issuer.example", "signedEmail": "a@b.example"}}},
            "signedIdentity": {"matchPolicy": "ExactRepository",
                "exactRepository": {"repository": "ghcr.io/a/app"}},
        },
    });
    let pki = json!({
        "scopes": ["ghcr.io/b"],
        "policy": {
            "rootOfTrust": {"policyType": "PKI", "pki": {"caRootsData": ca(),
                "pkiCertificateSubject": {"hostname": "build.example"}}},
            "signedIdentity": {"matchPolicy": "RemapIdentity",
                "remapIdentity": {"prefix": "ghcr.io/b", "signedPrefix": "quay.io/b"}},
        },
    });
    let rendered = render(&input(
        vec![cluster("f", fulcio), cluster("p", pki)],
        vec![],
    ))
    .unwrap();
    let global = json_file(&rendered, "policy.json");
    let docker = &global["transports"]["docker"];
    assert_eq!(
        docker["ghcr.io/a"][0],
        json!({"type": "sigstoreSigned",
            "fulcio": {"caData": ca(), "oidcIssuer": "https://issuer.example", "subjectEmail": "a@b.example"},
            "rekorPublicKeyData": key(),
            "signedIdentity": {"type": "exactRepository", "dockerRepository": "ghcr.io/a/app"}})
    );
    assert_eq!(
        docker["ghcr.io/b"][0],
        json!({"type": "sigstoreSigned",
            "pki": {"caRootsData": ca(), "subjectHostname": "build.example"},
            "signedIdentity": {"type": "remapIdentity", "prefix": "ghcr.io/b", "signedPrefix": "quay.io/b"}})
    );
}

#[test]
fn key_data_with_line_breaks_is_written_without_them() {
    let wrapped: String = key()
        .as_bytes()
        .chunks(20)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join("\n");
    let mut s = spec(&["ghcr.io"]);
    s["policy"]["rootOfTrust"]["publicKey"]["keyData"] = json!(wrapped);
    let rendered = render(&input(vec![cluster("c", s)], vec![])).unwrap();
    let global = json_file(&rendered, "policy.json");
    assert_eq!(
        global["transports"]["docker"]["ghcr.io"][0]["keyData"],
        json!(key())
    );
}

#[test]
fn an_invalid_base_policy_or_a_duplicate_object_renders_nothing() {
    let mut bad = input(vec![cluster("c", spec(&["ghcr.io"]))], vec![]);
    bad.base_policy = br#"{"default":[]}"#.to_vec();
    let errors = render(&bad).unwrap_err();
    assert!(
        matches!(&errors.0[..], [RenderError::InvalidBase(m)] if m.contains("must not be empty")),
        "{errors}"
    );
    let twice = input(
        vec![
            cluster("c", spec(&["ghcr.io"])),
            cluster("c", spec(&["quay.io"])),
        ],
        vec![],
    );
    let errors = render(&twice).unwrap_err();
    assert_eq!(
        errors.to_string(),
        "ClusterImagePolicy/c: metadata.name: given twice"
    );
}

/// (what is changed, the field reported, a piece of the message).
type Case = (&'static str, fn(&mut Value), &'static str, &'static str);

fn invalid_cases() -> Vec<Case> {
    vec![
        (
            "no scopes",
            |s| s["scopes"] = json!([]),
            "spec.scopes",
            "at least one",
        ),
        (
            "bare word",
            |s| s["scopes"] = json!(["busybox"]),
            "spec.scopes[0]",
            "is not a scope",
        ),
        (
            "inner wildcard",
            |s| s["scopes"] = json!(["example.*.com"]),
            "spec.scopes[0]",
            "is not a scope",
        ),
        (
            "tag on a host",
            |s| s["scopes"] = json!(["example.com:latest"]),
            "spec.scopes[0]",
            "is not a scope",
        ),
        (
            "upper-case path",
            |s| s["scopes"] = json!(["example.com/App"]),
            "spec.scopes[0]",
            "is not a scope",
        ),
        (
            "tag and digest",
            |s| s["scopes"] = json!([format!("example.com/a:1@sha256:{}", "0".repeat(64))]),
            "spec.scopes[0]",
            "is not a scope",
        ),
        (
            "duplicate scope",
            |s| s["scopes"] = json!(["example.com", "example.com"]),
            "spec.scopes[1]",
            "listed twice",
        ),
        (
            "missing union member",
            |s| s["policy"]["rootOfTrust"]["policyType"] = json!("PKI"),
            "spec.policy.rootOfTrust.pki",
            "required when policyType is PKI",
        ),
        (
            "not base64",
            |s| s["policy"]["rootOfTrust"]["publicKey"]["keyData"] = json!("not base64!"),
            "spec.policy.rootOfTrust.publicKey.keyData",
            "not base64",
        ),
        (
            "a certificate as key",
            |s| s["policy"]["rootOfTrust"]["publicKey"]["keyData"] = json!(ca()),
            "spec.policy.rootOfTrust.publicKey.keyData",
            "must be base64 of PEM data",
        ),
        (
            "a key as Rekor key, wrong PEM",
            |s| s["policy"]["rootOfTrust"]["publicKey"]["rekorKeyData"] = json!(b64("hello")),
            "spec.policy.rootOfTrust.publicKey.rekorKeyData",
            "must be base64 of PEM data",
        ),
        (
            "bad email",
            |s| {
                s["policy"]["rootOfTrust"] = json!({"policyType": "FulcioCAWithRekor", "fulcioCAWithRekor": {
                "fulcioCAData": ca(), "rekorKeyData": key(),
                "fulcioSubject": {"oidcIssuer": "https://i.example", "signedEmail": "nobody"}}});
            },
            "spec.policy.rootOfTrust.fulcioCAWithRekor.fulcioSubject.signedEmail",
            "not an email",
        ),
        (
            "issuer not a URL",
            |s| {
                s["policy"]["rootOfTrust"] = json!({"policyType": "FulcioCAWithRekor", "fulcioCAWithRekor": {
                "fulcioCAData": ca(), "rekorKeyData": key(),
                "fulcioSubject": {"oidcIssuer": "issuer.example", "signedEmail": "a@b"}}});
            },
            "spec.policy.rootOfTrust.fulcioCAWithRekor.fulcioSubject.oidcIssuer",
            "not an http or https URL",
        ),
        (
            "PKI without subject",
            |s| {
                s["policy"]["rootOfTrust"] = json!({"policyType": "PKI", "pki": {
                "caRootsData": ca(), "pkiCertificateSubject": {}}});
            },
            "spec.policy.rootOfTrust.pki.pkiCertificateSubject",
            "at least one of email and hostname",
        ),
        (
            "PKI bad hostname",
            |s| {
                s["policy"]["rootOfTrust"] = json!({"policyType": "PKI", "pki": {
                "caRootsData": ca(), "pkiCertificateSubject": {"hostname": "Not_A_Host"}}});
            },
            "spec.policy.rootOfTrust.pki.pkiCertificateSubject.hostname",
            "DNS-1123",
        ),
        (
            "identity union",
            |s| s["policy"]["signedIdentity"] = json!({"matchPolicy": "ExactRepository"}),
            "spec.policy.signedIdentity.exactRepository",
            "required when matchPolicy",
        ),
        (
            "identity extra member",
            |s| s["policy"]["signedIdentity"] = json!({"matchPolicy": "MatchRepository", "exactRepository": {"repository": "ghcr.io/a/b"}}),
            "spec.policy.signedIdentity.exactRepository",
            "not allowed",
        ),
        (
            "repository with a tag",
            |s| s["policy"]["signedIdentity"] = json!({"matchPolicy": "ExactRepository", "exactRepository": {"repository": "ghcr.io/a/b:1"}}),
            "spec.policy.signedIdentity.exactRepository.repository",
            "without tag",
        ),
        (
            "prefix with a digest",
            |s| s["policy"]["signedIdentity"] = json!({"matchPolicy": "RemapIdentity", "remapIdentity": {"prefix": format!("ghcr.io/a@sha256:{}", "0".repeat(64)), "signedPrefix": "quay.io"}}),
            "spec.policy.signedIdentity.remapIdentity.prefix",
            "without tag",
        ),
    ]
}

#[test]
fn every_invalid_field_is_named_and_refused_by_the_crd_too() {
    let valid = namespaced("team", "p", spec(&["example.com"]));
    validate_namespaced(&valid).unwrap();
    kube::core::cel::validate_cel(&valid).unwrap();
    let mut admitted = Vec::new();
    for (what, change, field, message) in invalid_cases() {
        let mut s = spec(&["example.com"]);
        change(&mut s);
        let policy = namespaced("team", "p", s);
        let errors = validate_namespaced(&policy).expect_err(what);
        assert!(
            errors
                .iter()
                .any(|e| e.field == field && e.message.contains(message)),
            "{what}: {errors:?}"
        );
        assert_eq!(
            errors[0].object,
            ObjectRef {
                kind: Kind::ImagePolicy,
                namespace: Some("team".into()),
                name: "p".into()
            }
        );
        // And the whole render fails, naming it.
        let rendered = render(&input(vec![], vec![policy.clone()]));
        assert!(rendered.is_err(), "{what}");
        // The API server refuses it as well: by a CEL rule, or by the
        // OpenAPI keyword the_crds_carry_the_rules checks.
        if kube::core::cel::validate_cel(&policy).is_ok() {
            admitted.push(what);
        }
    }
    assert_eq!(admitted, OPENAPI_CASES, "cases no CEL rule refuses");
}

/// Cases the CRD refuses by OpenAPI keywords, not CEL: `minItems: 1` and
/// `x-kubernetes-list-type: set`.
const OPENAPI_CASES: &[&str] = &["no scopes", "duplicate scope"];

#[test]
fn the_crds_carry_the_rules() {
    let yaml = criguard_kube_policy::crds_yaml();
    let committed =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/crds/criguard.dev.yaml");
    if std::env::var_os("CRIGUARD_BLESS").is_some() {
        std::fs::create_dir_all(committed.parent().unwrap()).unwrap();
        std::fs::write(&committed, &yaml).unwrap();
    }
    assert_eq!(
        std::fs::read_to_string(&committed).unwrap_or_default(),
        yaml,
        "deploy/crds/criguard.dev.yaml is not what `criguard policy crds` prints: \
         regenerate it with CRIGUARD_BLESS=1 cargo test -p criguard-kube-policy --test render"
    );
    let names: Vec<String> = crds()
        .iter()
        .map(|c| c.metadata.name.clone().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "clusterimagepolicies.criguard.dev",
            "imagepolicies.criguard.dev"
        ]
    );
    for needle in [
        "x-kubernetes-validations",
        "has(self.publicKey)",
        "status",
        "maxItems: 256",
    ] {
        assert!(yaml.contains(needle), "{needle}");
    }
}

#[test]
fn yaml_input_names_the_object_and_field_of_each_mistake() {
    use criguard_kube_policy::parse_objects;
    let object = |spec: &str| {
        format!(
            "apiVersion: criguard.dev/v1alpha1\nkind: ImagePolicy\nmetadata: {{name: p, namespace: team}}\nspec:\n{spec}"
        )
    };
    let valid = format!(
        "  scopes: [example.com]\n  policy:\n    rootOfTrust:\n      policyType: PublicKey\n      publicKey: {{keyData: {}}}\n",
        key()
    );
    assert_eq!(
        parse_objects(object(&valid).as_bytes(), "f.yaml")
            .unwrap()
            .len(),
        1
    );
    let cases = [
        (
            valid.replace("keyData", "rekorKeyData: x, keyDta"),
            "spec.policy.rootOfTrust.publicKey: missing field `keyData`",
        ),
        (
            valid.clone() + "    signedIdentiy: {matchPolicy: MatchRepository}\n",
            "spec.policy.signedIdentiy: unknown field",
        ),
        (
            valid.replace("PublicKey\n", "Keyless\n"),
            "spec.policy.rootOfTrust.policyType: unknown variant `Keyless`",
        ),
        (
            valid.clone() + "  mode: audit\n",
            "spec.mode: unknown variant `audit`",
        ),
    ];
    for (spec, expected) in cases {
        let error = parse_objects(object(&spec).as_bytes(), "f.yaml").unwrap_err();
        assert_eq!(error.origin, "f.yaml");
        assert!(error.place.ends_with("ImagePolicy/team/p"), "{error}");
        assert!(error.message.starts_with(expected), "{expected}: {error}");
    }
    let wrong_kind = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n";
    let error = parse_objects(wrong_kind.as_bytes(), "f.yaml").unwrap_err();
    assert!(error.to_string().contains("apiVersion: \"v1\""), "{error}");
    // Empty documents are skipped; YAML that does not parse is an error.
    assert!(parse_objects(b"---\n---\n", "f.yaml").unwrap().is_empty());
    assert!(parse_objects(b"a: [", "f.yaml").is_err());
}

/// Size: 50 cluster policies and 1000 namespace policies in 200
/// namespaces render (and are read back) in a bounded time.
#[test]
fn a_large_cluster_renders_in_bounded_time() {
    let cluster = (0..50)
        .map(|i| cluster(&format!("c{i}"), spec(&[&format!("registry{i}.example")])))
        .collect();
    let namespaced = (0..1000)
        .map(|i| {
            let namespace = format!("ns{}", i % 200);
            namespaced(
                &namespace,
                &format!("p{i}"),
                spec(&[&format!("apps.example/{namespace}/app{i}")]),
            )
        })
        .collect();
    let started = std::time::Instant::now();
    let rendered = render(&input(cluster, namespaced)).unwrap();
    let elapsed = started.elapsed();
    println!("rendered {} files in {elapsed:?}", rendered.files.len());
    assert_eq!(rendered.files.len(), 2 + 2 * 200 + 1);
    assert_eq!(rendered.applied.len(), 1050);
    assert!(elapsed < std::time::Duration::from_secs(60), "{elapsed:?}");
}
