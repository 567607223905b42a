#![allow(clippy::unwrap_used)]
// criguard's CRI messages hold only the fields it reads; the defaults
// keep these requests valid as that set grows.
#![allow(clippy::needless_update)]

use std::time::Duration;

use criguard_cri::v1::{ContainerConfig, ContainerMetadata, Mount, PodSandboxMetadata};

use super::*;
use crate::testing::{APP, FakeRegistries, FakeRuntime, Node, digest, image_id, node};

fn enforcer() -> (Node, Enforcer<FakeRegistries>, tempfile::TempDir) {
    enforcer_with(&[])
}

fn enforcer_with(
    namespaces: &[(&str, serde_json::Value)],
) -> (Node, Enforcer<FakeRegistries>, tempfile::TempDir) {
    let mut node = node(namespaces, Duration::from_secs(600));
    node.signed_app();
    let dir = tempfile::tempdir().unwrap();
    // The node's service moves into the enforcer; a second one keeps
    // the node's registry and key for the test to use.
    let spare = crate::testing::service(&node);
    let service = std::mem::replace(&mut node.service, spare);
    let modes = Arc::new(Modes::load(
        &node.dir.path().join("policies"),
        Mode::Enforce,
    ));
    (
        node,
        Enforcer::new(service, modes, Arc::new(Metrics::new())),
        dir,
    )
}

fn image(name: &str, id: &str) -> ImageSpec {
    ImageSpec {
        image: id.to_owned(),
        user_specified_image: name.to_owned(),
        ..ImageSpec::default()
    }
}

fn create(image_spec: ImageSpec, mounts: Vec<Mount>) -> CreateContainerRequest {
    CreateContainerRequest {
        pod_sandbox_id: "sandbox-ns".to_owned(),
        config: Some(ContainerConfig {
            metadata: Some(ContainerMetadata {
                name: "app".to_owned(),
                ..ContainerMetadata::default()
            }),
            image: Some(image_spec),
            mounts,
            ..ContainerConfig::default()
        }),
        sandbox_config: Some(PodSandboxConfig {
            metadata: Some(PodSandboxMetadata {
                namespace: "ns".to_owned(),
                ..PodSandboxMetadata::default()
            }),
            ..PodSandboxConfig::default()
        }),
        ..CreateContainerRequest::default()
    }
}

/// The daemon once died of a stack overflow in a debug build: a pull's
/// future nests resolving, fetching and deciding, each with cache
/// loads, and all of it sat on the worker's stack. The parts are boxed
/// now; this keeps what a task holds on its stack small.
#[tokio::test]
async fn the_futures_a_task_holds_stay_small() {
    let (_node, enforcer, dir) = enforcer();
    let runtime = Runtime::new(&dir.path().join("runtime.sock"));
    let pull = enforcer.check_pull(PullImageRequest::default(), &runtime);
    assert!(
        std::mem::size_of_val(&pull) < 16 << 10,
        "{}",
        std::mem::size_of_val(&pull)
    );
    let create = enforcer.check_create(CreateContainerRequest::default(), &runtime);
    assert!(
        std::mem::size_of_val(&create) < 16 << 10,
        "{}",
        std::mem::size_of_val(&create)
    );
}

#[tokio::test]
async fn a_verified_pull_is_pinned_and_its_create_needs_no_runtime_call() {
    let (_node, enforcer, dir) = enforcer();
    let runtime = Runtime::new(&dir.path().join("runtime.sock"));
    let request = PullImageRequest {
        image: Some(ImageSpec {
            image: format!("{APP}:v1"),
            ..ImageSpec::default()
        }),
        sandbox_config: create(ImageSpec::default(), Vec::new()).sandbox_config,
        ..PullImageRequest::default()
    };
    let plan = enforcer.check_pull(request, &runtime).await.unwrap();
    assert_eq!(plan.pin, Some(format!("{APP}@{}", digest(1))));
    // The fake registry tells no media type: no name is written, and
    // the runtime (no socket) is not called.
    enforcer
        .pulled(
            plan.pull,
            &PullImageResponse {
                image_ref: image_id(1),
            },
            &runtime,
        )
        .await;
    let silent = FakeRuntime::with("sha256:none", &[]);
    let signed = image(&format!("{APP}:v1"), &image_id(1));
    enforcer
        .check_container(create(signed, Vec::new()), &silent)
        .await
        .unwrap();
    assert_eq!(silent.asked(), 0, "no image lookup");
}

#[tokio::test]
async fn creates_that_name_no_checkable_image_are_refused() {
    let (_node, enforcer, _dir) = enforcer();
    let runtime = FakeRuntime::with("sha256:none", &[]);
    let id = format!("sha256:{}", "ab".repeat(32));
    let status = enforcer
        .check_container(create(image("", &id), Vec::new()), &runtime)
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unknown);
    assert!(
        status
            .message()
            .starts_with("SignatureValidationFailed: container \"app\" in namespace \"ns\", image"),
        "{}",
        status.message()
    );
    assert!(status.message().contains("only by its ID"));
    let nameless = Mount {
        container_path: "/data".to_owned(),
        image: Some(ImageSpec::default()),
        ..Mount::default()
    };
    let signed = image(&format!("{APP}:v1"), &image_id(1));
    let runtime = FakeRuntime::with(&image_id(1), &[format!("{APP}@{}", digest(1))]);
    let status = enforcer
        .check_container(create(signed, vec![nameless]), &runtime)
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(
        status.message().contains("image volume at /data"),
        "{}",
        status.message()
    );
}

/// The runtime pulls the name that was evaluated, and runs no image
/// named by a short name it could resolve elsewhere.
#[tokio::test]
async fn short_names_are_pulled_in_full_and_not_run_by_name() {
    let accept = serde_json::json!({"default": [{"type": "insecureAcceptAnything"}]});
    let (_node, enforcer, dir) = enforcer_with(&[("ns", accept)]);
    let runtime = Runtime::new(&dir.path().join("runtime.sock"));
    let pull = |name: &str| PullImageRequest {
        image: Some(ImageSpec {
            image: name.to_owned(),
            ..ImageSpec::default()
        }),
        sandbox_config: create(ImageSpec::default(), Vec::new()).sandbox_config,
        ..PullImageRequest::default()
    };
    let plan = enforcer
        .check_pull(pull("busybox"), &runtime)
        .await
        .unwrap();
    assert_eq!(
        plan.pin.as_deref(),
        Some("docker.io/library/busybox:latest")
    );
    let plan = enforcer
        .check_pull(pull("docker.io/library/busybox:latest"), &runtime)
        .await
        .unwrap();
    assert_eq!(plan.pin, None, "already in full: sent as it is");
    let fake = FakeRuntime::with("sha256:none", &[]);
    let status = enforcer
        .check_container(create(image("busybox", "busybox"), Vec::new()), &fake)
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(
        status.message().contains("a short name"),
        "{}",
        status.message()
    );
    enforcer
        .check_container(
            create(
                image("busybox", "docker.io/library/busybox:latest"),
                Vec::new(),
            ),
            &fake,
        )
        .await
        .unwrap();
}

/// In audit mode a refusal is counted as would_reject and the call
/// goes on; what audit mode does not waive is still refused.
#[tokio::test]
async fn audit_mode_counts_what_it_would_reject_and_lets_it_through() {
    let (node, enforcer, dir) = enforcer();
    node.registry
        .publish("registry.example/unsigned:v1", &digest(6));
    std::fs::write(node.dir.path().join("policies/ns.mode"), "audit").unwrap();
    let _ = crate::Reloadable::reload(enforcer.modes.as_ref());
    let runtime = Runtime::new(&dir.path().join("runtime.sock"));
    let request = PullImageRequest {
        image: Some(ImageSpec {
            image: "registry.example/unsigned:v1".to_owned(),
            ..ImageSpec::default()
        }),
        sandbox_config: create(ImageSpec::default(), Vec::new()).sandbox_config,
        ..PullImageRequest::default()
    };
    let plan = enforcer.check_pull(request, &runtime).await.unwrap();
    assert_eq!(plan.pin, None, "forwarded as the kubelet sent it");
    let fake = FakeRuntime::with(
        &image_id(6),
        &[format!("registry.example/unsigned@{}", digest(6))],
    );
    let unsigned = image("registry.example/unsigned:v1", &image_id(6));
    enforcer
        .check_container(create(unsigned.clone(), Vec::new()), &fake)
        .await
        .unwrap();
    let metrics = enforcer.metrics.encode();
    for operation in ["pull", "create"] {
        let line = format!(
            r#"criguard_decisions_total{{operation="{operation}",verdict="would_reject",reason="sigstoreSigned"}} 1"#
        );
        assert!(metrics.contains(&line), "{line}\n{metrics}");
    }
    // Not waived: a create that lies about its namespace.
    let mut lying = create(unsigned, Vec::new());
    lying.pod_sandbox_id = "sandbox-other".to_owned();
    assert!(enforcer.check_container(lying, &fake).await.is_err());
}

/// A create is judged in its sandbox's namespace; a request that claims
/// another namespace (a looser policy) or none is refused.
#[tokio::test]
async fn a_create_cannot_choose_its_namespace() {
    let (_node, enforcer, _dir) = enforcer();
    let runtime = FakeRuntime::with(&image_id(1), &[format!("{APP}@{}", digest(1))]);
    let signed = image(&format!("{APP}:v1"), &image_id(1));
    let mut lying = create(signed.clone(), Vec::new());
    lying.pod_sandbox_id = "sandbox-strict".to_owned();
    let status = enforcer.check_container(lying, &runtime).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::PermissionDenied);
    assert_eq!(
        status.message(),
        "criguard: container \"app\": the request says namespace \"ns\", but pod sandbox \
         \"sandbox-strict\" is in namespace \"strict\""
    );
    let mut unknown = create(signed.clone(), Vec::new());
    unknown.pod_sandbox_id = "gone".to_owned();
    let status = enforcer
        .check_container(unknown, &runtime)
        .await
        .unwrap_err();
    assert!(
        status.message().contains("no pod sandbox \"gone\""),
        "{}",
        status.message()
    );
    let mut bare = create(signed.clone(), Vec::new());
    bare.sandbox_config = None;
    let status = enforcer.check_container(bare, &runtime).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    let status = enforcer
        .check_container(create(signed.clone(), Vec::new()), &FakeRuntime::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unavailable);
    // The honest request passes.
    enforcer
        .check_container(create(signed.clone(), Vec::new()), &runtime)
        .await
        .unwrap();
    let metrics = enforcer.metrics.encode();
    assert!(
        metrics.contains(
            r#"criguard_decisions_total{operation="create",verdict="rejected",reason="sandbox"} 2"#
        ),
        "{metrics}"
    );
}

#[tokio::test]
async fn an_unsigned_image_volume_beside_a_signed_image_is_refused() {
    let (node, enforcer, _dir) = enforcer();
    node.registry
        .publish("registry.example/data:v1", &digest(7));
    let runtime = FakeRuntime {
        images: Some(
            [
                (image_id(1), vec![format!("{APP}@{}", digest(1))]),
                (
                    image_id(7),
                    vec![format!("registry.example/data@{}", digest(7))],
                ),
            ]
            .into(),
        ),
        ..FakeRuntime::default()
    };
    let volume = Mount {
        container_path: "/data".to_owned(),
        image: Some(image("registry.example/data:v1", &image_id(7))),
        ..Mount::default()
    };
    let signed = image(&format!("{APP}:v1"), &image_id(1));
    enforcer
        .check_container(create(signed.clone(), Vec::new()), &runtime)
        .await
        .unwrap();
    let status = enforcer
        .check_container(create(signed, vec![volume]), &runtime)
        .await
        .unwrap_err();
    assert!(
        status.message().starts_with(
            "SignatureValidationFailed: container \"app\" in namespace \"ns\", image volume \
             at /data \"registry.example/data:v1\": A signature was required"
        ),
        "{}",
        status.message()
    );
}

/// The audit policy set judges what the enforced policies allowed: a
/// refusal there is counted as would_reject and the call goes on; what
/// both allow is allowed, and counted once.
#[tokio::test]
async fn the_audit_set_counts_what_it_would_reject_after_an_allowance() {
    let allow = serde_json::json!({"default": [{"type": "insecureAcceptAnything"}]});
    let (node, enforcer, dir) = enforcer_with(&[("ns", allow)]);
    let audit_dir = node.dir.path().join("audit");
    std::fs::create_dir_all(audit_dir.join("policies")).unwrap();
    let key_path = node.dir.path().join("cosign.pub");
    std::fs::write(
        audit_dir.join("policies/ns.json"),
        crate::testing::signed_by(&key_path).to_string(),
    )
    .unwrap();
    std::fs::write(
        audit_dir.join("policy.json"),
        r#"{"default":[{"type":"reject"}]}"#,
    )
    .unwrap();
    let audit = Arc::new(crate::AuditPolicies::load(
        &audit_dir.join("policy.json"),
        &audit_dir.join("policies"),
    ));
    let Enforcer {
        decisions,
        modes,
        metrics,
        ..
    } = enforcer;
    let enforcer = Enforcer::new(decisions.with_audit_policies(audit), modes, metrics);
    node.registry
        .publish("registry.example/unsigned:v1", &digest(6));
    let runtime = Runtime::new(&dir.path().join("runtime.sock"));
    let pull = |name: &str| PullImageRequest {
        image: Some(ImageSpec {
            image: name.to_owned(),
            ..ImageSpec::default()
        }),
        sandbox_config: create(ImageSpec::default(), Vec::new()).sandbox_config,
        ..PullImageRequest::default()
    };
    enforcer
        .check_pull(pull("registry.example/unsigned:v1"), &runtime)
        .await
        .expect("the enforced policy allows it; the audit set only counts");
    enforcer
        .check_pull(pull(&format!("{APP}:v1")), &runtime)
        .await
        .unwrap();
    let fake = FakeRuntime::with(
        &image_id(6),
        &[format!("registry.example/unsigned@{}", digest(6))],
    );
    enforcer
        .check_container(
            create(
                image("registry.example/unsigned:v1", &image_id(6)),
                Vec::new(),
            ),
            &fake,
        )
        .await
        .unwrap();
    let metrics = enforcer.metrics.encode();
    for operation in ["pull", "create"] {
        let line = format!(
            r#"criguard_decisions_total{{operation="{operation}",verdict="would_reject",reason="sigstoreSigned"}} 1"#
        );
        assert!(metrics.contains(&line), "{line}\n{metrics}");
    }
    let allowed = r#"criguard_decisions_total{operation="pull",verdict="allowed",reason="accepted-without-signatures"} 1"#;
    assert!(metrics.contains(allowed), "{allowed}\n{metrics}");
}
