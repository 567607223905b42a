//! The decision service with an in-memory registry and runtime: caches,
//! lifetimes, credentials, namespaces, creates, refusals. The signatures
//! are real cosign-style ECDSA signatures checked by the real verifier.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use criguard_registry::Credentials;
use criguard_verification::SourceErrorKind;

use super::keys::{self, Lifetimes};
use super::*;
use crate::testing::*;

/// A node whose signed `app:v1` was pulled in `ns`, and the runtime
/// answered that pull with `image_id`.
async fn signed_app_pulled_as(image_id: &str) -> (Node, String) {
    let node = node(&[], Duration::from_secs(600));
    node.signed_app();
    let name = format!("{APP}:v1");
    let verified = node.pull("ns", &name, None).await.0.unwrap().unwrap();
    node.service.remember_pull(image_id, APP, verified).await;
    (node, name)
}

fn rejection_message(refusal: &Refusal) -> String {
    match refusal {
        Refusal::Policy { verification, .. } => verification
            .decision()
            .and_then(|d| d.rejection())
            .map(|r| r.message.clone())
            .unwrap(),
        other => panic!("not a policy rejection: {other:?}"),
    }
}

#[tokio::test]
async fn a_signed_pull_is_verified_once_and_then_served_from_the_caches() {
    let node = node(&[], Duration::from_secs(600));
    node.signed_app();
    let (first, trace) = node.pull("ns", &format!("{APP}:v1"), None).await;
    let verified = first.unwrap().expect("signatures were checked");
    assert_eq!(verified.manifest_digest(), &digest(1));
    assert_eq!(trace.reason, "signature");
    assert!(!trace.cached);
    assert_eq!(trace.signatures, 1);
    assert_eq!(trace.digest, Some(digest(1)));
    let (second, trace) = node.pull("ns", &format!("{APP}:v1"), None).await;
    assert!(second.unwrap().is_some());
    assert!(trace.cached, "the decision is reused");
    assert_eq!(node.registry.resolves(), 1, "the tag resolution is reused");
    assert_eq!(node.registry.signature_reads(), 1);
    // Another namespace is another decision, with the same signatures.
    let (third, trace) = node.pull("other", &format!("{APP}:v1"), None).await;
    assert!(third.unwrap().is_some());
    assert!(!trace.cached);
    assert_eq!(node.registry.signature_reads(), 1);
    let metrics = node.metrics.encode();
    assert!(
        metrics.contains(r#"criguard_cache_lookups_total{cache="decision",result="hit"} 1"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn concurrent_misses_share_one_resolution_and_one_signature_read() {
    let node = node(&[], Duration::from_secs(600));
    node.signed_app();
    let name = format!("{APP}:v1");
    let pulls = (0..8).map(|_| node.pull("ns", &name, None));
    for (result, _) in futures_util::future::join_all(pulls).await {
        assert!(result.unwrap().is_some());
    }
    assert_eq!(node.registry.resolves(), 1);
    assert_eq!(node.registry.signature_reads(), 1);
}

#[tokio::test]
async fn an_unsigned_image_is_refused_with_containers_image_words() {
    let node = node(&[], Duration::from_secs(600));
    node.registry.publish(&format!("{APP}:v1"), &digest(2));
    let (result, trace) = node.pull("ns", &format!("{APP}:v1"), None).await;
    let refusal = result.unwrap_err();
    assert_eq!(
        rejection_message(&refusal),
        "A signature was required, but no signature exists"
    );
    assert_eq!(refusal.reason_class(), "sigstoreSigned");
    assert!(refusal.is_rejection());
    assert_eq!(trace.digest, Some(digest(2)));
    let status = refusal.status("Source image rejected: ", "ns");
    assert_eq!(status.code(), tonic::Code::Unknown);
    let message = status.message();
    let expected_start = format!(
        "SignatureValidationFailed: Source image rejected: A signature was required, but no \
         signature exists (policy {} for namespace \"ns\", global default, requirement 1 of 1: \
         sigstoreSigned; manifest {})",
        node.dir.path().join("policy.json").display(),
        digest(2)
    );
    assert_eq!(message, expected_start);
}

#[tokio::test]
async fn a_rejection_expires_soon_and_a_new_signature_is_then_seen() {
    // Allowances live for the TTL (1 s here); rejections for at most that.
    let node = node(&[], Duration::from_secs(1));
    node.registry.publish(&format!("{APP}:v1"), &digest(3));
    let name = format!("{APP}:v1");
    assert!(node.pull("ns", &name, None).await.0.is_err());
    node.registry.sign(&node.key, APP, &digest(3));
    // Within its lifetime the rejection is reused: nothing is read again.
    let (again, trace) = node.pull("ns", &name, None).await;
    assert!(again.is_err());
    assert!(trace.cached);
    assert_eq!(node.registry.signature_reads(), 1);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (after, trace) = node.pull("ns", &name, None).await;
    assert!(after.unwrap().is_some(), "the new signature is seen");
    assert!(!trace.cached);
    assert_eq!(
        node.registry.signature_reads(),
        2,
        "the rejection dropped the cached signatures"
    );
}

#[test]
fn rejections_live_at_most_thirty_seconds_and_tags_for_the_resolve_ttl() {
    let lifetimes = Lifetimes::new(Duration::from_secs(600), Duration::from_secs(30));
    assert_eq!(lifetimes.allowed, Duration::from_secs(600));
    assert_eq!(lifetimes.rejected, keys::MAX_REJECTION_TTL);
    assert_eq!(lifetimes.by_tag, Duration::from_secs(30));
    let short = Lifetimes::new(Duration::from_secs(5), Duration::from_secs(0));
    assert_eq!(short.rejected, Duration::from_secs(5));
}

#[tokio::test]
async fn registry_errors_are_refusals_by_kind_and_are_not_cached() {
    let node = node(&[], Duration::from_secs(600));
    node.signed_app();
    node.registry.state().failures = 1;
    let name = format!("{APP}:v1");
    let refusal = node.pull("ns", &name, None).await.0.unwrap_err();
    let Refusal::Source(error) = &refusal else {
        panic!("{refusal:?}");
    };
    assert_eq!(
        error.kind(),
        SourceErrorKind::Registry(criguard_registry::ErrorKind::Server)
    );
    assert!(!refusal.is_rejection());
    assert_eq!(refusal.reason_class(), "registry");
    let status = refusal.status(&format!("pulling {name}: "), "ns");
    assert!(
        status
            .message()
            .starts_with("criguard: cannot verify the signatures: pulling"),
        "{}",
        status.message()
    );
    assert!(status.message().contains("503"), "{}", status.message());
    // The failure was not kept: the next pull succeeds.
    assert!(node.pull("ns", &name, None).await.0.unwrap().is_some());
}

#[tokio::test]
async fn each_set_of_kubelet_credentials_gets_its_own_client() {
    let node = node(&[], Duration::from_secs(600));
    node.signed_app();
    let alice = Credentials::Basic {
        username: "alice".to_owned(),
        password: "a".to_owned(),
    };
    let bob = Credentials::Basic {
        username: "bob".to_owned(),
        password: "b".to_owned(),
    };
    node.registry.state().required = Some(alice.clone());
    let name = format!("{APP}:v1");
    let refusal = node.pull("ns", &name, None).await.0.unwrap_err();
    let Refusal::Source(error) = &refusal else {
        panic!("{refusal:?}");
    };
    assert_eq!(
        error.kind(),
        SourceErrorKind::Registry(criguard_registry::ErrorKind::Authentication)
    );
    assert!(node.pull("ns", &name, Some(alice.clone())).await.0.is_ok());
    assert!(node.pull("ns", &name, Some(alice.clone())).await.0.is_ok());
    // Bob's resolution is not Alice's: it is made with Bob's client, and
    // the registry refuses it.
    assert!(node.pull("ns", &name, Some(bob.clone())).await.0.is_err());
    let state = node.registry.state();
    // The node's own client was made once to check the configuration at
    // start, then once for use.
    assert_eq!(
        state.clients,
        vec![None, None, Some(alice.clone()), Some(bob.clone())]
    );
    let resolved_with: Vec<_> = state.resolves.iter().map(|(_, c)| c.clone()).collect();
    assert_eq!(resolved_with, vec![None, Some(alice), Some(bob)]);
}

#[tokio::test]
async fn a_namespace_file_replaces_the_global_policy_for_its_namespace_only() {
    let node = node(
        &[
            (
                "strict",
                serde_json::json!({"default": [{"type": "reject"}]}),
            ),
            (
                "open",
                serde_json::json!({"default": [{"type": "insecureAcceptAnything"}]}),
            ),
        ],
        Duration::from_secs(600),
    );
    node.registry.publish(&format!("{APP}:v1"), &digest(4));
    let name = format!("{APP}:v1");
    let strict = node.pull("strict", &name, None).await.0.unwrap_err();
    assert_eq!(
        rejection_message(&strict),
        "Running image docker://registry.example/team/app:v1 is rejected by policy."
    );
    let (open, trace) = node.pull("open", &name, None).await;
    assert!(
        open.unwrap().is_none(),
        "nothing to pin: no signatures read"
    );
    assert_eq!(trace.reason, "accepted-without-signatures");
    assert_eq!(node.registry.resolves(), 0, "no registry for such policies");
    // A namespace without a file, and the empty one, use the global policy.
    for namespace in ["elsewhere", ""] {
        let refusal = node.pull(namespace, &name, None).await.0.unwrap_err();
        assert_eq!(
            rejection_message(&refusal),
            "A signature was required, but no signature exists"
        );
    }
}

#[tokio::test]
async fn a_create_uses_the_pull_record_and_asks_the_runtime_otherwise() {
    let (node, name) = signed_app_pulled_as(&image_id(1)).await;
    let silent = FakeRuntime::default();
    assert!(
        node.create("ns", &name, &image_id(1), &silent)
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(silent.asked(), 0, "the pull record answered");
    // An image criguard did not see pulled: the runtime's repo digest.
    let runtime = FakeRuntime::with(&image_id(1), &[format!("{APP}@{}", digest(1))]);
    let fresh = crate::testing::service(&node);
    let found = fresh
        .check(
            "ns",
            &reference(&name),
            Locate::Create {
                image_id: &image_id(1),
                runtime: &runtime,
            },
            &mut Trace::default(),
        )
        .await
        .unwrap();
    assert_eq!(found.unwrap().manifest_digest(), &digest(1));
    assert_eq!(runtime.asked(), 1);
    // The record is per repository: another repository's pull of the same
    // image ID does not vouch for this one.
    let other = FakeRuntime::with(&image_id(1), &[]);
    let refusal = node
        .create("ns", "registry.example/other:v1", &image_id(1), &other)
        .await
        .unwrap_err();
    assert!(
        refusal.describe("ns").contains("does not record image"),
        "{}",
        refusal.describe("ns")
    );
}

#[tokio::test]
async fn a_pull_record_is_kept_only_for_the_verified_image() {
    // The runtime answered the pinned pull with another image's ID.
    let (node, name) = signed_app_pulled_as(&image_id(9)).await;
    let runtime = FakeRuntime::with(&image_id(9), &[format!("{APP}@{}", digest(9))]);
    let refusal = node
        .create("ns", &name, &image_id(9), &runtime)
        .await
        .unwrap_err();
    assert_eq!(runtime.asked(), 1, "no record: the runtime was asked");
    assert!(matches!(refusal, Refusal::Source(_)), "{refusal:?}");
}

/// The index trick: the runtime's repo digest names an index; criguard's
/// platform choice is a signed manifest, the runtime's another, unsigned
/// one. The image ID tells them apart.
#[tokio::test]
async fn a_create_runs_only_the_manifest_that_was_verified() {
    let node = node(&[], Duration::from_secs(600));
    node.signed_app();
    let unsigned_id = image_id(8);
    let runtime = FakeRuntime::with(&unsigned_id, &[format!("{APP}@{}", digest(1))]);
    let refusal = node
        .create("ns", &format!("{APP}:v1"), &unsigned_id, &runtime)
        .await
        .unwrap_err();
    assert!(refusal.is_rejection());
    let reason = refusal.describe("ns");
    assert!(
        reason.contains("is not the manifest criguard resolved"),
        "{reason}"
    );
    assert!(reason.contains(&digest(1).to_string()), "{reason}");
}

#[tokio::test]
async fn a_create_the_runtime_cannot_place_is_refused() {
    let node = node(&[], Duration::from_secs(600));
    let name = format!("{APP}:v1");
    let empty = FakeRuntime::with(&image_id(2), &[]);
    let refusal = node
        .create("ns", &name, &image_id(3), &empty)
        .await
        .unwrap_err();
    assert!(refusal.is_rejection());
    assert_eq!(
        refusal.describe("ns"),
        format!("the runtime has no image \"{}\"", image_id(3))
    );
    let down = FakeRuntime::default();
    let refusal = node
        .create("ns", &name, &image_id(3), &down)
        .await
        .unwrap_err();
    assert!(matches!(&refusal, Refusal::Runtime(s) if s.code() == tonic::Code::Unavailable));
    assert!(
        node.metrics
            .encode()
            .contains("criguard_runtime_unavailable_total 1")
    );
}

#[tokio::test]
async fn an_image_pulled_for_a_permissive_namespace_does_not_start_in_a_strict_one() {
    let node = node(
        &[(
            "open",
            serde_json::json!({"default": [{"type": "insecureAcceptAnything"}]}),
        )],
        Duration::from_secs(600),
    );
    let name = format!("{APP}:v1");
    node.registry.publish(&name, &digest(5));
    assert!(node.pull("open", &name, None).await.0.unwrap().is_none());
    let runtime = FakeRuntime::with(&image_id(5), &[format!("{APP}@{}", digest(5))]);
    assert!(
        node.create("open", &name, &image_id(5), &runtime)
            .await
            .is_ok()
    );
    let refusal = node
        .create("strict", &name, &image_id(5), &runtime)
        .await
        .unwrap_err();
    assert_eq!(
        rejection_message(&refusal),
        "A signature was required, but no signature exists"
    );
}

#[tokio::test]
async fn a_namespace_whose_policy_never_parsed_is_refused() {
    let node = node(&[], Duration::from_secs(600));
    std::fs::write(node.dir.path().join("policies/broken.json"), "{").unwrap();
    let _ = node.service.policies.reload();
    let refusal = node
        .pull("broken", &format!("{APP}:v1"), None)
        .await
        .0
        .unwrap_err();
    assert!(matches!(&refusal, Refusal::Unverifiable(why) if why.contains("is invalid")));
    assert_eq!(refusal.reason_class(), "unverifiable");
}

#[test]
fn the_signature_cache_weighs_entries_by_their_bytes() {
    let found = |blobs: &[usize]| {
        Arc::new(ImageSignatures {
            signatures: blobs
                .iter()
                .map(|n| criguard_policy::Signature::SimpleSigning(vec![0; *n]))
                .collect(),
            lookaside_url: None,
            lookaside_count: blobs.len(),
            sigstore_attachments: false,
        })
    };
    let key = SignaturesKey {
        source: APP.to_owned(),
        manifest: digest(1),
        generation: 0,
    };
    let small = keys::signatures_weight(&key, &found(&[10]));
    let large = keys::signatures_weight(&key, &found(&[4 << 20, 4 << 20]));
    assert!(small < 1024, "{small}");
    assert!(large >= 8 << 20, "{large}");
    // A cache full of such entries holds a bounded number of them.
    assert!(u64::from(large) * 8 > keys::SIGNATURE_CACHE_BYTES);
}

/// After registries.d or registries.conf changed, nothing made with the
/// old configuration is used: not the clients, the resolutions, the
/// signatures, the decisions, nor the pull records.
#[tokio::test]
async fn a_registry_configuration_change_empties_every_cache() {
    let (node, name) = signed_app_pulled_as(&image_id(1)).await;
    assert!(node.pull("ns", &name, None).await.1.cached);
    node.registry.state().generation += 1;
    let (again, trace) = node.pull("ns", &name, None).await;
    assert!(again.unwrap().is_some());
    assert!(!trace.cached, "the decision was made again");
    assert_eq!(node.registry.resolves(), 2);
    assert_eq!(node.registry.signature_reads(), 2);
    // The pull record of the old generation is not used: the runtime is
    // asked.
    let runtime = FakeRuntime::with(&image_id(1), &[format!("{APP}@{}", digest(1))]);
    assert!(
        node.create("ns", &name, &image_id(1), &runtime)
            .await
            .is_ok()
    );
    assert_eq!(runtime.asked(), 1);
}

/// A node whose service keeps verified pulls on disk, with `APP:v1`
/// pulled, verified and remembered as `image_id(1)`.
async fn pulled_and_stored() -> Node {
    let mut node = node(&[], Duration::from_secs(600));
    node.service = stateful_service(&node);
    node.signed_app();
    let (verified, _) = node.pull("ns", &format!("{APP}:v1"), None).await;
    node.service
        .remember_pull(&image_id(1), APP, verified.unwrap().unwrap())
        .await;
    assert_eq!(stored_records(&node).len(), 1);
    node
}

/// criguard restarts (a new service on the same state directory) and the
/// registry is down from then on.
fn restart_offline(node: &mut Node) {
    node.service = stateful_service(node);
    node.registry.state().failures = usize::MAX;
}

/// The create of `app:v1` in `ns`, by its image ID, as the kubelet sends it.
async fn create_app_v1(node: &Node) -> Result<Option<Verified<FakeRegistries>>, Refusal> {
    node.create(
        "ns",
        &format!("{APP}:v1"),
        &image_id(1),
        &the_runtime_holding_app_v1(),
    )
    .await
}

fn the_runtime_holding_app_v1() -> FakeRuntime {
    FakeRuntime::with(&image_id(1), &[format!("{APP}@{}", digest(1))])
}

#[tokio::test]
async fn after_a_restart_a_pulled_image_is_created_from_the_store_without_the_registry() {
    let mut node = pulled_and_stored().await;
    restart_offline(&mut node);
    let (resolves, reads) = (node.registry.resolves(), node.registry.signature_reads());
    let runtime = the_runtime_holding_app_v1();
    let mut trace = Trace::default();
    let allowed = node
        .service
        .check(
            "ns",
            &reference(&format!("{APP}:v1")),
            Locate::Create {
                image_id: &image_id(1),
                runtime: &runtime,
            },
            &mut trace,
        )
        .await;
    assert!(allowed.is_ok(), "{allowed:?}");
    assert_eq!(trace.reason, "signature");
    assert_eq!(trace.signatures, 1);
    assert_eq!(trace.digest, Some(digest(1)));
    assert_eq!(runtime.asked(), 1, "the runtime confirmed the image");
    assert_eq!(node.registry.resolves(), resolves, "no registry");
    assert_eq!(node.registry.signature_reads(), reads, "no registry");

    // The runtime now holds that ID under another digest of the
    // repository: the record is not used, and the registry is down.
    let moved = FakeRuntime::with(&image_id(1), &[format!("{APP}@{}", digest(2))]);
    let refused = node
        .create("ns", &format!("{APP}:v1"), &image_id(1), &moved)
        .await;
    assert!(matches!(refused, Err(Refusal::Source(_))), "{refused:?}");
    // Another repository's record is not this one's.
    let refused = node
        .create(
            "ns",
            "registry.example/team/other:v1",
            &image_id(1),
            &the_runtime_holding_app_v1(),
        )
        .await;
    assert!(refused.is_err(), "{refused:?}");
}

#[tokio::test]
async fn stored_signatures_are_judged_by_the_policy_in_force_after_the_restart() {
    let mut node = pulled_and_stored().await;
    // The policy now wants another key's signature.
    let other = criguard_sigstore::SigningKey::generate().unwrap();
    let other_path = node.dir.path().join("other.pub");
    std::fs::write(&other_path, other.public_key().unwrap().to_pem()).unwrap();
    std::fs::write(
        node.dir.path().join("policy.json"),
        signed_by(&other_path).to_string(),
    )
    .unwrap();
    restart_offline(&mut node);
    let refused = create_app_v1(&node).await.unwrap_err();
    // The stored verdict, as the registry cannot be asked for newer
    // signatures.
    let message = rejection_message(&refused);
    assert!(
        message.contains("cryptographic signature verification failed"),
        "{message}"
    );
    // Once the registry answers, newer signatures are looked for there.
    node.registry.state().failures = 0;
    node.registry.sign(&other, APP, &digest(1));
    let allowed = create_app_v1(&node).await;
    assert!(allowed.is_ok(), "{allowed:?}");
}

#[tokio::test]
async fn a_changed_blob_is_dropped_and_the_create_falls_back_to_the_registry() {
    use base64::Engine as _;
    let mut node = pulled_and_stored().await;
    let record = &stored_records(&node)[0];
    let mut json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(record).unwrap()).unwrap();
    // A well-formed blob, but not the one whose digest was stored.
    json["signatures"][0]["data"] = base64::engine::general_purpose::STANDARD
        .encode(b"\0simple-signing\n\xa3forged")
        .into();
    std::fs::write(record, json.to_string()).unwrap();
    restart_offline(&mut node);
    let refused = create_app_v1(&node).await;
    assert!(matches!(refused, Err(Refusal::Source(_))), "{refused:?}");
    assert!(stored_records(&node).is_empty(), "the record was dropped");
    assert!(
        node.metrics
            .encode()
            .contains("criguard_state_store_events_total{event=\"corrupt\"} 1"),
        "{}",
        node.metrics.encode()
    );
    node.registry.state().failures = 0;
    let allowed = create_app_v1(&node).await;
    assert!(allowed.is_ok(), "{allowed:?}");
}

#[tokio::test]
async fn a_garbage_record_or_store_is_never_trusted() {
    let mut node = pulled_and_stored().await;
    std::fs::write(&stored_records(&node)[0], b"{\"not\": \"a record\"}").unwrap();
    restart_offline(&mut node);
    let refused = create_app_v1(&node).await;
    assert!(matches!(refused, Err(Refusal::Source(_))), "{refused:?}");
    assert!(stored_records(&node).is_empty());

    // A store whose format marker is garbage is moved aside, rebuilt
    // empty, and the create goes to the (down) registry.
    let mut node = pulled_and_stored().await;
    let state = node.dir.path().join("state");
    std::fs::write(state.join("verified-pulls/FORMAT"), b"\xff\xfe garbage").unwrap();
    restart_offline(&mut node);
    assert!(stored_records(&node).is_empty(), "rebuilt empty");
    let aside = std::fs::read_dir(&state)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("verified-pulls.corrupt-")
        })
        .count();
    assert_eq!(aside, 1);
    assert!(
        node.metrics
            .encode()
            .contains("criguard_state_store_events_total{event=\"rebuilt\"} 1")
    );
    let refused = create_app_v1(&node).await;
    assert!(matches!(refused, Err(Refusal::Source(_))), "{refused:?}");
}

#[tokio::test]
async fn the_store_is_a_trait_with_an_in_memory_fake() {
    let mut node = node(&[], Duration::from_secs(600));
    let store = Arc::new(MemoryStore::default());
    node.service = service(&node).with_store(Arc::clone(&store) as Arc<dyn PullStore>);
    node.signed_app();
    let (verified, _) = node.pull("ns", &format!("{APP}:v1"), None).await;
    node.service
        .remember_pull(&image_id(1), APP, verified.unwrap().unwrap())
        .await;
    let stored = store.get(&image_id(1), APP).unwrap().unwrap();
    assert_eq!(stored.located.manifest_digest, digest(1));
    assert_eq!(stored.signatures.len(), 1);
    // The pull record in memory is used first; after a restart, the store.
    node.service = service(&node).with_store(store);
    node.registry.state().failures = usize::MAX;
    let allowed = create_app_v1(&node).await;
    assert!(allowed.is_ok(), "{allowed:?}");
}

#[tokio::test]
async fn a_record_from_an_older_registry_configuration_is_used_offline() {
    let node = pulled_and_stored().await;
    // registries.d reloaded (the in-memory pull record is dropped), and
    // the registry is down: the stored signatures are checked again.
    {
        let mut state = node.registry.state();
        state.generation += 1;
        state.failures = usize::MAX;
    }
    let allowed = create_app_v1(&node).await;
    assert!(allowed.is_ok(), "{allowed:?}");
}
