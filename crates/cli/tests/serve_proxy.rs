//! `criguard serve` in front of a stand-in runtime (`FakeRuntime`), where
//! a real sandbox cannot run here: byte-for-byte forwarding, CreateContainer
//! and image-volume checks per namespace, pinned pulls, policy reloads and
//! a runtime that goes away. The images and signatures are real (a Debian
//! registry, cosign).

#![allow(clippy::unwrap_used)]

mod serve_support;

use std::path::Path;
use std::time::{Duration, Instant};

use criguard_testutil::cri::v1;
use criguard_testutil::grpc::{self, encode, frame};
use criguard_testutil::{CriguardDaemon, FakeRuntime, RawResponse, grpc_call_raw_blocking};
use serde_json::json;
use serve_support::*;

const VERSION: &str = "/runtime.v1.RuntimeService/Version";
const LIST_IMAGES: &str = "/runtime.v1.ImageService/ListImages";
const STREAM_IMAGES: &str = "/runtime.v1.ImageService/StreamImages";
const UNKNOWN: i32 = 2;
const UNAVAILABLE: i32 = 14;

/// `message` with a varint field `number` appended, which no version of
/// the CRI defines: what a kubelet newer than criguard might send.
fn with_unknown_field(mut message: Vec<u8>, number: u64) -> Vec<u8> {
    let mut key = number << 3;
    while key >= 0x80 {
        message.push((key as u8) | 0x80);
        key >>= 7;
    }
    message.push(key as u8);
    message.push(42);
    message
}

/// A daemon with only a policy file, for tests that need no registry.
fn daemon_with_policy(
    runtime: &Path,
    policy: &serde_json::Value,
) -> (tempfile::TempDir, CriguardDaemon) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("policy.json");
    write_atomically(&path, policy.to_string().as_bytes());
    let config = format!(
        "policy = \"{}\"\npolicy_dir = \"{}\"\nregistries_d = \"{}\"\npolicy_poll_seconds = 1\n\
         on_invalid_policy = \"keep-last-valid\"\n",
        path.display(),
        dir.path().join("policies").display(),
        dir.path().join("registries.d").display()
    );
    let daemon = CriguardDaemon::start(Path::new(env!("CARGO_BIN_EXE_criguard")), runtime, &config);
    (dir, daemon)
}

fn assert_status(response: &RawResponse, code: i32, prefix: &str) -> String {
    let message = response.grpc_message.clone().unwrap_or_default();
    assert_eq!(response.grpc_status, Some(code), "{message}");
    assert!(
        message.starts_with(prefix),
        "expected {prefix:?}…, got {message:?}"
    );
    message
}

/// Polls `condition` for up to 15 s (policy reloads, reconnects).
fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn every_call_is_forwarded_byte_for_byte() {
    let fake = FakeRuntime::start();
    let (_dir, daemon) = daemon_with_policy(
        fake.socket(),
        &json!({"default": [{"type": "insecureAcceptAnything"}]}),
    );
    let socket = daemon.socket();

    // A known method carrying a field this build does not know.
    let request = with_unknown_field(
        encode(&v1::VersionRequest {
            version: "0.1.0".into(),
        }),
        99,
    );
    let answer = encode(&v1::VersionResponse {
        version: "0.1.0".into(),
        runtime_name: "fake".into(),
        runtime_version: "1".into(),
        runtime_api_version: "v1".into(),
    });
    let answer = with_unknown_field(answer, 98);
    fake.respond(VERSION, vec![answer.clone()]);
    let response = grpc_call_raw_blocking(socket, VERSION, &request);
    assert_eq!(response.message(), answer);
    assert_eq!(fake.calls_to(VERSION)[0].body, frame(&request));

    // A method this build does not know is refused unless the config
    // lists it (serve_methods.rs).
    let future = "/runtime.v1.ImageService/SomeFutureMethod";
    let response = grpc_call_raw_blocking(socket, future, &[0x08, 0x01]);
    assert_status(&response, 12, "criguard: ");
    assert!(fake.calls_to(future).is_empty());

    // Server streaming: every frame arrives.
    let images: Vec<Vec<u8>> = (0..3)
        .map(|i| {
            encode(&v1::StreamImagesResponse {
                images: vec![v1::Image {
                    id: format!("sha256:{i}"),
                    ..Default::default()
                }],
            })
        })
        .collect();
    fake.respond(STREAM_IMAGES, images.clone());
    assert_eq!(
        grpc_call_raw_blocking(socket, STREAM_IMAGES, &[]).messages(),
        images
    );

    // The runtime's errors come back as the runtime said them.
    fake.fail(LIST_IMAGES, 7, "denied: 100% sure");
    let response = grpc_call_raw_blocking(socket, LIST_IMAGES, &[]);
    assert_status(&response, 7, "denied: 100% sure");

    // A pull under a policy that looks at no signatures is forwarded as
    // sent, unknown fields included, and contacts no registry.
    let image_id = format!("sha256:{}", "ab".repeat(32));
    let pull_bytes = with_unknown_field(encode(&pull("127.0.0.1:9/x/y:v1", "dev")), 77);
    fake.respond(
        PULL_IMAGE,
        vec![encode(&v1::PullImageResponse {
            image_ref: image_id.clone(),
        })],
    );
    let response = grpc_call_raw_blocking(socket, PULL_IMAGE, &pull_bytes);
    let answer: v1::PullImageResponse = grpc::decode(&response.message());
    assert_eq!(answer.image_ref, image_id);
    assert_eq!(fake.calls_to(PULL_IMAGE)[0].body, frame(&pull_bytes));

    // A create likewise.
    let create_bytes = with_unknown_field(
        encode(&create("app", "dev", &image_id, "127.0.0.1:9/x/y:v1", &[])),
        66,
    );
    let response = grpc_call_raw_blocking(socket, CREATE_CONTAINER, &create_bytes);
    assert_eq!(response.grpc_status, Some(0));
    assert_eq!(
        fake.calls_to(CREATE_CONTAINER)[0].body,
        frame(&create_bytes)
    );

    // A compressed or malformed checked call is refused, not guessed at.
    let mut compressed = frame(&encode(&pull("127.0.0.1:9/x/y:v1", "dev")));
    compressed[0] = 1;
    let response = criguard_testutil::grpc::grpc_call_raw_body_blocking(
        socket,
        PULL_IMAGE,
        &[("grpc-encoding", "gzip")],
        compressed,
    );
    assert_status(&response, 3, "criguard: PullImage");
    assert_eq!(fake.calls_to(PULL_IMAGE).len(), 1);

    let metrics = daemon.metrics();
    assert!(
        metrics.contains("criguard_passthrough_duration_seconds_count{method=\"Version\"} 1"),
        "{metrics}"
    );
    assert_eq!(
        daemon.metric("criguard_decisions_total{operation=\"pull\",verdict=\"allowed\""),
        1.0
    );
    let audit = daemon.audit();
    assert!(
        audit.iter().any(|line| line["operation"] == "pull"
            && line["verdict"] == "allowed"
            && line["namespace"] == "dev"),
        "{audit:?}"
    );
}

/// Under systemd (Type=notify) criguard says it is ready once its socket
/// serves, and that it is stopping when told to stop.
#[test]
fn systemd_is_told_when_criguard_is_ready_and_when_it_stops() {
    let fake = FakeRuntime::start();
    let (_dir, mut daemon) = daemon_with_policy(
        fake.socket(),
        &json!({"default": [{"type": "insecureAcceptAnything"}]}),
    );
    eventually("READY=1", || {
        daemon.notifications().iter().any(|n| n.contains("READY=1"))
    });
    let response = grpc_call_raw_blocking(daemon.socket(), VERSION, &[]);
    assert_eq!(response.grpc_status, Some(0));
    daemon.stop();
    assert!(
        daemon
            .notifications()
            .iter()
            .any(|n| n.contains("STOPPING=1")),
        "{}",
        daemon.log()
    );
}

#[test]
fn the_runtime_may_go_away_and_come_back() {
    let mut fake = FakeRuntime::start();
    let (_dir, daemon) = daemon_with_policy(
        fake.socket(),
        &json!({"default": [{"type": "insecureAcceptAnything"}]}),
    );
    assert_eq!(
        grpc_call_raw_blocking(daemon.socket(), VERSION, &[]).grpc_status,
        Some(0)
    );
    fake.stop();
    let response = grpc_call_raw_blocking(daemon.socket(), VERSION, &[]);
    let message = assert_status(&response, UNAVAILABLE, "criguard: the container runtime at");
    assert!(
        message.contains(&fake.socket().display().to_string()),
        "{message}"
    );
    fake.start_again();
    eventually("the proxy to reach the runtime again", || {
        grpc_call_raw_blocking(daemon.socket(), VERSION, &[]).grpc_status == Some(0)
    });
    assert!(daemon.metric("criguard_runtime_unavailable_total") >= 1.0);
}

#[test]
fn an_invalid_policy_refuses_the_start() {
    let fake = FakeRuntime::start();
    let dir = tempfile::tempdir().unwrap();
    let binary = Path::new(env!("CARGO_BIN_EXE_criguard"));
    let global = dir.path().join("policy.json");
    std::fs::write(&global, "{\"default\": [{\"type\": \"rejectt\"}]}").unwrap();
    let config = |policy_dir: &Path| {
        format!(
            "policy = \"{}\"\npolicy_dir = \"{}\"\n",
            global.display(),
            policy_dir.display()
        )
    };
    let log = CriguardDaemon::try_start(binary, fake.socket(), &config(&dir.path().join("none")))
        .err()
        .unwrap();
    assert!(
        log.contains("policy.json") && log.contains("rejectt"),
        "{log}"
    );

    std::fs::write(&global, "{\"default\": [{\"type\": \"reject\"}]}").unwrap();
    let policies = dir.path().join("policies");
    std::fs::create_dir(&policies).unwrap();
    std::fs::write(policies.join("team-a.json"), "{}").unwrap();
    let log = CriguardDaemon::try_start(binary, fake.socket(), &config(&policies))
        .err()
        .unwrap();
    assert!(log.contains("team-a.json"), "{log}");
}

#[test]
fn policy_changes_apply_without_a_restart_and_garbage_is_refused() {
    let fake = FakeRuntime::start();
    let (dir, daemon) = daemon_with_policy(
        fake.socket(),
        &json!({"default": [{"type": "insecureAcceptAnything"}]}),
    );
    let global = dir.path().join("policy.json");
    let image = "127.0.0.1:9/x/y:v1";
    let pull_bytes = encode(&pull(image, "dev"));
    assert_eq!(
        grpc_call_raw_blocking(daemon.socket(), PULL_IMAGE, &pull_bytes).grpc_status,
        Some(0)
    );

    write_atomically(
        &global,
        json!({"default": [{"type": "reject"}]})
            .to_string()
            .as_bytes(),
    );
    eventually("the new policy to apply", || {
        daemon.metric("criguard_policy_reloads_total{result=\"applied\"}") >= 1.0
    });
    let response = grpc_call_raw_blocking(daemon.socket(), PULL_IMAGE, &pull_bytes);
    assert_status(
        &response,
        UNKNOWN,
        "SignatureValidationFailed: Source image rejected: Running image docker://127.0.0.1:9/x/y:v1 is rejected by policy.",
    );

    // Garbage is refused, counted and logged; the last good policy (reject)
    // stays, so nothing is allowed at any point.
    write_atomically(&global, b"{\"default\": [garbage");
    eventually("the garbage to be refused", || {
        daemon.metric("criguard_policy_reloads_total{result=\"refused\"}") >= 1.0
    });
    let response = grpc_call_raw_blocking(daemon.socket(), PULL_IMAGE, &pull_bytes);
    assert_status(&response, UNKNOWN, "SignatureValidationFailed: ");
    assert!(
        daemon.log().contains("policy change refused"),
        "{}",
        daemon.log()
    );
    assert_eq!(
        fake.calls_to(PULL_IMAGE).len(),
        1,
        "only the first pull reached the runtime"
    );
}

#[test]
fn creates_are_checked_against_the_pods_namespace_policy() {
    let node = Node::new();
    node.write_namespace("strict", &node.signed_only());
    let fake = FakeRuntime::start();
    let daemon = node.daemon(fake.socket(), "");
    let socket = daemon.socket();
    let signed = Node::name(&node.signed);
    let unsigned = Node::name(&node.unsigned);

    // Pulled for a permissive namespace: fine, as sent.
    fake.respond(
        PULL_IMAGE,
        vec![encode(&v1::PullImageResponse {
            image_ref: node.unsigned_id.clone(),
        })],
    );
    let response = grpc_call_raw_blocking(socket, PULL_IMAGE, &encode(&pull(&unsigned, "dev")));
    assert_eq!(response.grpc_status, Some(0), "{:?}", response.grpc_message);
    let sent: v1::PullImageRequest = fake.calls_to(PULL_IMAGE)[0].decode();
    assert_eq!(sent.image.unwrap().image, unsigned);

    // The runtime knows which digest the image ID is; criguard asks it.
    fake.respond(
        IMAGE_STATUS,
        vec![encode(&v1::ImageStatusResponse {
            image: Some(v1::Image {
                id: node.unsigned_id.clone(),
                repo_digests: vec![format!(
                    "{}/{}@{}",
                    node.unsigned.host, node.unsigned.repo, node.unsigned.digest
                )],
                ..Default::default()
            }),
            ..Default::default()
        })],
    );
    // ... but it must not start in the strict namespace.
    let request = encode(&create("app", "strict", &node.unsigned_id, &unsigned, &[]));
    let response = grpc_call_raw_blocking(socket, CREATE_CONTAINER, &request);
    let message = assert_status(
        &response,
        UNKNOWN,
        "SignatureValidationFailed: container \"app\" in namespace \"strict\"",
    );
    assert!(
        message.contains("A signature was required, but no signature exists"),
        "{message}"
    );
    assert!(message.contains("strict.json"), "{message}");
    assert!(message.contains(&node.unsigned.digest), "{message}");
    assert!(fake.calls_to(CREATE_CONTAINER).is_empty());
    // In its own namespace it may.
    let request = encode(&create("app", "dev", &node.unsigned_id, &unsigned, &[]));
    assert_eq!(
        grpc_call_raw_blocking(socket, CREATE_CONTAINER, &request).grpc_status,
        Some(0)
    );
    assert_eq!(fake.calls_to(CREATE_CONTAINER)[0].body, frame(&request));

    // A signed pull in the strict namespace is pinned to the verified digest.
    fake.clear_calls();
    fake.respond(
        PULL_IMAGE,
        vec![encode(&v1::PullImageResponse {
            image_ref: node.signed_id.clone(),
        })],
    );
    let request = pull(&signed, "strict");
    let response = grpc_call_raw_blocking(socket, PULL_IMAGE, &encode(&request));
    assert_eq!(response.grpc_status, Some(0), "{:?}", response.grpc_message);
    let sent: v1::PullImageRequest = fake.calls_to(PULL_IMAGE)[0].decode();
    let pinned = format!(
        "{}/{}@{}",
        node.signed.host, node.signed.repo, node.signed.digest
    );
    assert_eq!(sent.image.as_ref().unwrap().image, pinned);
    assert_eq!(sent.sandbox_config, request.sandbox_config);

    // Its container starts, from what the pull learnt: no ImageStatus call.
    let request = encode(&create("app", "strict", &node.signed_id, &signed, &[]));
    assert_eq!(
        grpc_call_raw_blocking(socket, CREATE_CONTAINER, &request).grpc_status,
        Some(0)
    );
    assert!(fake.calls_to(IMAGE_STATUS).is_empty());

    // The signed name on an image that is not the signed manifest: the
    // runtime says the repository's digest is the signed one, but the
    // image it runs has another ID. Refused, never forwarded.
    fake.respond(
        IMAGE_STATUS,
        vec![encode(&v1::ImageStatusResponse {
            image: Some(v1::Image {
                id: node.unsigned_id.clone(),
                repo_digests: vec![pinned.clone()],
                ..Default::default()
            }),
            ..Default::default()
        })],
    );
    let creates = fake.calls_to(CREATE_CONTAINER).len();
    let request = encode(&create("app", "strict", &node.unsigned_id, &signed, &[]));
    let response = grpc_call_raw_blocking(socket, CREATE_CONTAINER, &request);
    let message = assert_status(
        &response,
        UNKNOWN,
        "SignatureValidationFailed: container \"app\" in namespace \"strict\"",
    );
    assert!(
        message.contains("is not the manifest criguard resolved"),
        "{message}"
    );
    assert_eq!(fake.calls_to(CREATE_CONTAINER).len(), creates);

    // An unsigned image volume is refused even beside a signed image.
    let request = encode(&create(
        "app",
        "strict",
        &node.signed_id,
        &signed,
        &[("/data", &node.unsigned_id, &unsigned)],
    ));
    let response = grpc_call_raw_blocking(socket, CREATE_CONTAINER, &request);
    let message = assert_status(
        &response,
        UNKNOWN,
        "SignatureValidationFailed: container \"app\" in namespace \"strict\", image volume at /data",
    );
    assert!(message.contains(&unsigned), "{message}");

    // And an unsigned pull in the strict namespace never reaches the runtime.
    let response = grpc_call_raw_blocking(socket, PULL_IMAGE, &encode(&pull(&unsigned, "strict")));
    let message = assert_status(
        &response,
        UNKNOWN,
        "SignatureValidationFailed: Source image rejected: A signature was required, but no signature exists",
    );
    assert!(message.contains(&node.unsigned.digest), "{message}");
    assert_eq!(fake.calls_to(PULL_IMAGE).len(), 1);

    // A create naming the image only by its ID cannot be tied to a scope.
    let id = format!("sha256:{}", "0f".repeat(32));
    let request = encode(&create("app", "strict", &id, "", &[]));
    let response = grpc_call_raw_blocking(socket, CREATE_CONTAINER, &request);
    let message = assert_status(
        &response,
        UNKNOWN,
        "SignatureValidationFailed: container \"app\"",
    );
    assert!(message.contains("only by its ID"), "{message}");

    // An image volume that names no image criguard can read is refused,
    // not passed over.
    let request = encode(&create(
        "app",
        "dev",
        &node.unsigned_id,
        &unsigned,
        &[("/empty", "", "")],
    ));
    let response = grpc_call_raw_blocking(socket, CREATE_CONTAINER, &request);
    let message = assert_status(
        &response,
        3,
        "criguard: container \"app\" in namespace \"dev\", image volume at /empty",
    );
    assert!(message.contains("no image is named"), "{message}");

    assert_eq!(
        daemon.metric("criguard_decisions_total{operation=\"create\",verdict=\"rejected\""),
        4.0
    );
    let audit = daemon.audit();
    assert!(
        audit.iter().any(|l| l["operation"] == "create"
            && l["verdict"] == "rejected"
            && l["namespace"] == "strict"
            && l["container"] == "app"
            && l["digest"] == node.unsigned.digest.as_str()),
        "{audit:?}"
    );
}

#[test]
fn concurrent_pulls_of_one_image_share_one_fetch() {
    let node = Node::new();
    node.write_global(&node.signed_only());
    let fake = FakeRuntime::start();
    let daemon = node.daemon(fake.socket(), "");
    let fetches = |what: &str| {
        daemon.metric(&format!(
            "criguard_registry_fetches_total{{fetch=\"{what}\"}}"
        ))
    };
    let request = encode(&pull(&Node::name(&node.signed), "default"));
    let pullers: Vec<_> = (0..8)
        .map(|_| {
            let (socket, request) = (daemon.socket().to_owned(), request.clone());
            std::thread::spawn(move || {
                grpc_call_raw_blocking(&socket, PULL_IMAGE, &request).grpc_status
            })
        })
        .collect();
    for puller in pullers {
        assert_eq!(puller.join().unwrap(), Some(0));
    }
    assert_eq!(fake.calls_to(PULL_IMAGE).len(), 8);
    assert_eq!(fetches("resolve"), 1.0, "{}", daemon.metrics());
    assert_eq!(fetches("signatures"), 1.0, "{}", daemon.metrics());
    // A ninth pull is a cache hit and fetches nothing.
    assert_eq!(
        grpc_call_raw_blocking(daemon.socket(), PULL_IMAGE, &request).grpc_status,
        Some(0)
    );
    assert_eq!(fetches("resolve") + fetches("signatures"), 2.0);
    assert!(
        daemon.metric("criguard_cache_lookups_total{cache=\"decision\",result=\"hit\"}") >= 1.0
    );
}

#[test]
fn signatures_are_fetched_with_the_kubelets_credentials() {
    let registry = criguard_testutil::Registry::start_with_auth("alice", "s3cret");
    let dir = tempfile::tempdir().unwrap();
    let host = registry.host();
    let image = criguard_testutil::push_test_image(&registry, "private/app", "v1", "private");
    criguard_testutil::sigstore_registries_d(&dir.path().join("registries.d"), &host);
    let conf =
        criguard_testutil::insecure_registries_conf(&dir.path().join("registries.conf"), &host);
    let password = dir.path().join("password");
    std::fs::write(&password, "pw").unwrap();
    let criguard = Path::new(env!("CARGO_BIN_EXE_criguard"));
    let run = |args: &[&std::ffi::OsStr]| {
        let out = criguard_testutil::run_with_timeout(
            std::process::Command::new(criguard).args(args),
            Duration::from_secs(120),
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&[
        "keygen".as_ref(),
        "--output-dir".as_ref(),
        dir.path().as_os_str(),
        "--password-file".as_ref(),
        password.as_os_str(),
    ]);
    run(&[
        "sign".as_ref(),
        "--key".as_ref(),
        dir.path().join("cosign.key").as_os_str(),
        "--password-file".as_ref(),
        password.as_os_str(),
        "--registries-conf".as_ref(),
        conf.as_os_str(),
        "--creds".as_ref(),
        "alice:s3cret".as_ref(),
        image.by_tag().as_ref(),
    ]);
    let policy = dir.path().join("policy.json");
    write_atomically(
        &policy,
        json!({"default": [{"type": "reject"}], "transports": {"docker": {&host: [{
            "type": "sigstoreSigned", "keyPath": dir.path().join("cosign.pub"),
            "signedIdentity": {"type": "matchRepository"}}]}}})
        .to_string()
        .as_bytes(),
    );
    let no_credentials = dir.path().join("auth.json");
    std::fs::write(&no_credentials, "{}").unwrap();
    let fake = FakeRuntime::start();
    let daemon = CriguardDaemon::start(
        criguard,
        fake.socket(),
        &format!(
            "policy = \"{}\"\npolicy_dir = \"{}\"\nregistries_d = \"{}\"\nregistries_conf = \"{}\"\nauthfile = \"{}\"\n",
            policy.display(),
            dir.path().join("policies").display(),
            dir.path().join("registries.d").display(),
            conf.display(),
            no_credentials.display()
        ),
    );
    let name = image.by_tag();
    let with = |auth: Option<v1::AuthConfig>| {
        let mut request = pull(&name, "default");
        request.auth = auth;
        grpc_call_raw_blocking(daemon.socket(), PULL_IMAGE, &encode(&request))
    };
    let response = with(None);
    let message = assert_status(&response, UNKNOWN, "criguard: cannot verify the signatures");
    assert!(message.contains("authentication required"), "{message}");
    for auth in [
        v1::AuthConfig {
            username: "alice".into(),
            password: "s3cret".into(),
            ..Default::default()
        },
        v1::AuthConfig {
            auth: "YWxpY2U6czNjcmV0".into(),
            ..Default::default()
        },
    ] {
        let response = with(Some(auth));
        assert_eq!(response.grpc_status, Some(0), "{:?}", response.grpc_message);
    }
    let wrong = with(Some(v1::AuthConfig {
        username: "alice".into(),
        password: "wrong".into(),
        ..Default::default()
    }));
    assert_eq!(wrong.grpc_status, Some(UNKNOWN), "{:?}", wrong.grpc_message);
    // Only the two allowed pulls reached the runtime, both pinned.
    let pulls = fake.calls_to(PULL_IMAGE);
    assert_eq!(pulls.len(), 2);
    for call in pulls {
        let sent: v1::PullImageRequest = call.decode();
        assert_eq!(
            sent.image.unwrap().image,
            format!("{host}/private/app@{}", image.digest)
        );
    }
}

#[test]
fn a_pull_in_flight_finishes_when_criguard_is_stopped() {
    let fake = FakeRuntime::start();
    let (_dir, mut daemon) = daemon_with_policy(
        fake.socket(),
        &json!({"default": [{"type": "insecureAcceptAnything"}]}),
    );
    fake.delay(PULL_IMAGE, Duration::from_millis(1500));
    fake.respond(
        PULL_IMAGE,
        vec![encode(&v1::PullImageResponse {
            image_ref: "sha256:slow".into(),
        })],
    );
    let socket = daemon.socket().to_owned();
    let request = encode(&pull("127.0.0.1:9/x/y:v1", "dev"));
    let puller = std::thread::spawn(move || grpc_call_raw_blocking(&socket, PULL_IMAGE, &request));
    eventually("the pull to reach the runtime", || {
        !fake.calls_to(PULL_IMAGE).is_empty()
    });
    daemon.stop();
    let response = puller.join().unwrap();
    assert_eq!(response.grpc_status, Some(0), "{:?}", response.grpc_message);
    let answer: v1::PullImageResponse = grpc::decode(&response.message());
    assert_eq!(answer.image_ref, "sha256:slow");
    assert!(!daemon.socket().exists(), "the socket is removed at exit");
}
