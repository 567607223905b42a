//! `criguard serve` under load and under faults: 64 clients and 100,000
//! forwarded calls without an error and with flat memory; registries that
//! stall or fail and policy files replaced by garbage while pulls go on,
//! without one pull allowed that the policy does not allow.

#![allow(clippy::unwrap_used)]

mod serve_support;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use criguard_testutil::cri::{self, v1};
use criguard_testutil::grpc::encode;
use criguard_testutil::{FakeRuntime, grpc_call_raw_blocking, insecure_registries_conf};
use serde_json::json;
use serve_support::*;

const CLIENTS: usize = 64;
const CALLS: usize = 100_000;

async fn image_status_calls(socket: &Path, calls: usize) -> usize {
    let per_client = calls / CLIENTS;
    let mut tasks = Vec::new();
    for _ in 0..CLIENTS {
        let socket = socket.to_owned();
        tasks.push(tokio::spawn(async move {
            let mut client = cri::image_client(cri::connect(&socket).await);
            let mut errors = 0;
            for _ in 0..per_client {
                let request = v1::ImageStatusRequest {
                    image: Some(cri::image_spec("127.0.0.1:9/x/y:v1")),
                    verbose: false,
                };
                if client.image_status(request).await.is_err() {
                    errors += 1;
                }
            }
            errors
        }));
    }
    let mut errors = 0;
    for task in tasks {
        errors += task.await.unwrap();
    }
    errors
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_clients_and_a_hundred_thousand_calls() {
    let fake = FakeRuntime::start();
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.json");
    write_atomically(
        &policy,
        json!({"default": [{"type": "insecureAcceptAnything"}]})
            .to_string()
            .as_bytes(),
    );
    let daemon = criguard_testutil::CriguardDaemon::start(
        Path::new(env!("CARGO_BIN_EXE_criguard")),
        fake.socket(),
        &format!(
            "policy = \"{}\"\npolicy_dir = \"{}\"\n",
            policy.display(),
            dir.path().display()
        ),
    );
    // Warm up: connections, buffers and allocator arenas reach their size.
    assert_eq!(image_status_calls(daemon.socket(), CALLS / 10).await, 0);
    let (warm, _) = daemon.memory_kib();
    assert_eq!(image_status_calls(daemon.socket(), CALLS).await, 0);
    let (after, peak) = daemon.memory_kib();
    let forwarded = fake.calls_to("/runtime.v1.ImageService/ImageStatus").len();
    assert_eq!(
        forwarded,
        CALLS / 10 / CLIENTS * CLIENTS + CALLS / CLIENTS * CLIENTS
    );
    // Flat: 100,000 calls may not leave even 100 bytes each behind.
    assert!(
        after <= warm + 10 * 1024,
        "resident memory grew from {warm} KiB to {after} KiB (peak {peak} KiB)"
    );
    println!(
        "criguard VmRSS after warm-up {warm} KiB, after {CALLS} calls {after} KiB, peak {peak} KiB"
    );
    let metrics = daemon.metrics();
    assert!(
        metrics.contains(&format!(
            "criguard_passthrough_duration_seconds_count{{method=\"ImageStatus\"}} {forwarded}"
        )),
        "{metrics}"
    );
}

/// A registry that accepts connections and never answers.
fn stalling_registry() -> (String, Arc<AtomicBool>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let host = listener.local_addr().unwrap().to_string();
    let stop = Arc::new(AtomicBool::new(false));
    let stopping = Arc::clone(&stop);
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            if stopping.load(Ordering::Relaxed) {
                break;
            }
            held.push(stream);
        }
    });
    (host, stop)
}

/// A registry that answers every request with 500.
fn failing_registry() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let host = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut buffer = [0u8; 4096];
            let _ = stream.read(&mut buffer);
            let _ = stream.write_all(
                b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
        }
    });
    host
}

#[test]
fn slow_and_failing_registries_refuse_the_pull_with_the_cause() {
    let fake = FakeRuntime::start();
    let dir = tempfile::tempdir().unwrap();
    let (slow, _stop) = stalling_registry();
    let failing = failing_registry();
    let key = dir.path().join("key.pub");
    std::fs::write(&key, "not used: no signature is ever read").unwrap();
    let requirement = json!([{"type": "sigstoreSigned", "keyPath": key, "signedIdentity": {"type": "matchRepository"}}]);
    let policy = dir.path().join("policy.json");
    write_atomically(
        &policy,
        json!({"default": [{"type": "reject"}], "transports": {"docker": {&slow: requirement, &failing: requirement}}})
            .to_string()
            .as_bytes(),
    );
    let conf = dir.path().join("registries.conf");
    insecure_registries_conf(&conf, &slow);
    let mut text = std::fs::read_to_string(&conf).unwrap();
    text.push_str(&format!(
        "[[registry]]\nlocation = \"{failing}\"\ninsecure = true\n"
    ));
    std::fs::write(&conf, text).unwrap();
    let daemon = criguard_testutil::CriguardDaemon::start(
        Path::new(env!("CARGO_BIN_EXE_criguard")),
        fake.socket(),
        &format!(
            "policy = \"{}\"\npolicy_dir = \"{}\"\nregistries_conf = \"{}\"\nregistry_timeout_seconds = 1\n",
            policy.display(),
            dir.path().join("policies").display(),
            conf.display()
        ),
    );
    for (host, cause) in [(&slow, "timed out"), (&failing, "500")] {
        let image = format!("{host}/app:v1");
        let response = grpc_call_raw_blocking(
            daemon.socket(),
            PULL_IMAGE,
            &encode(&pull(&image, "default")),
        );
        let message = response.grpc_message.clone().unwrap_or_default();
        assert_eq!(response.grpc_status, Some(2), "{message}");
        assert!(
            message.starts_with("criguard: cannot verify the signatures: pulling"),
            "{message}"
        );
        assert!(
            message.contains(host.as_str()) && message.contains(cause),
            "{cause}: {message}"
        );
    }
    assert!(fake.calls_to(PULL_IMAGE).is_empty());
    assert_eq!(
        daemon.metric(
            "criguard_decisions_total{operation=\"pull\",verdict=\"error\",reason=\"registry\"}"
        ),
        2.0
    );
}

/// A kubelet deadline shorter than the registry's time-out: criguard
/// answers before the deadline, with its own reason, and the runtime is
/// never asked to pull.
#[test]
fn a_check_never_outlives_the_callers_deadline() {
    let fake = FakeRuntime::start();
    let dir = tempfile::tempdir().unwrap();
    let (slow, _stop) = stalling_registry();
    let key = dir.path().join("key.pub");
    std::fs::write(&key, "not used: no signature is ever read").unwrap();
    let policy = dir.path().join("policy.json");
    write_atomically(
        &policy,
        json!({"default": [{"type": "sigstoreSigned", "keyPath": key, "signedIdentity": {"type": "matchRepository"}}]})
            .to_string()
            .as_bytes(),
    );
    let conf = dir.path().join("registries.conf");
    insecure_registries_conf(&conf, &slow);
    let daemon = criguard_testutil::CriguardDaemon::start(
        Path::new(env!("CARGO_BIN_EXE_criguard")),
        fake.socket(),
        &format!(
            "policy = \"{}\"\npolicy_dir = \"{}\"\nregistries_conf = \"{}\"\nregistry_timeout_seconds = 60\n",
            policy.display(),
            dir.path().join("policies").display(),
            conf.display()
        ),
    );
    let response = criguard_testutil::grpc::grpc_call_raw_body_blocking(
        daemon.socket(),
        PULL_IMAGE,
        &[("grpc-timeout", "1500m")],
        criguard_testutil::grpc::frame(&encode(&pull(&format!("{slow}/app:v1"), "default"))),
    );
    let message = response.grpc_message.clone().unwrap_or_default();
    assert_eq!(response.grpc_status, Some(4), "{message}");
    assert!(
        message.starts_with(
            "criguard: the signature check of this pull did not finish within the caller's \
             deadline of 1.5s"
        ),
        "{message}"
    );
    assert!(fake.calls_to(PULL_IMAGE).is_empty());
}

#[test]
fn garbage_policies_mid_run_never_allow_what_the_policy_does_not() {
    let node = Node::new();
    node.write_global(&node.signed_only());
    let fake = FakeRuntime::start();
    let daemon = node.daemon(fake.socket(), "on_invalid_policy = \"keep-last-valid\"\n");
    let unsigned = encode(&pull(&Node::name(&node.unsigned), "default"));
    let signed = encode(&pull(&Node::name(&node.signed), "default"));
    let allowed_unsigned = Arc::new(AtomicUsize::new(0));
    let refused_signed = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let socket = daemon.socket().to_owned();
    let pullers: Vec<_> = (0..4)
        .map(|_| {
            let (allowed, refused, done) = (
                Arc::clone(&allowed_unsigned),
                Arc::clone(&refused_signed),
                Arc::clone(&done),
            );
            let (socket, unsigned, signed) = (socket.clone(), unsigned.clone(), signed.clone());
            std::thread::spawn(move || {
                let mut rounds = 0;
                while !done.load(Ordering::Relaxed) {
                    if grpc_call_raw_blocking(&socket, PULL_IMAGE, &unsigned).grpc_status == Some(0)
                    {
                        allowed.fetch_add(1, Ordering::Relaxed);
                    }
                    if grpc_call_raw_blocking(&socket, PULL_IMAGE, &signed).grpc_status != Some(0) {
                        refused.fetch_add(1, Ordering::Relaxed);
                    }
                    rounds += 1;
                }
                rounds
            })
        })
        .collect();
    let garbage: [&[u8]; 4] = [b"", b"{\"default\": [", b"\xff\xfe", b"{\"default\": []}"];
    for bytes in garbage {
        write_atomically(&node.global_policy(), bytes);
        std::thread::sleep(Duration::from_millis(700));
        // Written in place (not renamed), so a reload may see half a file.
        std::fs::write(node.global_policy(), node.signed_only().to_string()).unwrap();
        std::thread::sleep(Duration::from_millis(300));
    }
    done.store(true, Ordering::Relaxed);
    let rounds: usize = pullers.into_iter().map(|p| p.join().unwrap()).sum();
    assert!(rounds > 0);
    assert_eq!(
        allowed_unsigned.load(Ordering::Relaxed),
        0,
        "an unsigned image was allowed"
    );
    assert_eq!(
        refused_signed.load(Ordering::Relaxed),
        0,
        "the last good policy must stay in force"
    );
    assert!(daemon.metric("criguard_policy_reloads_total{result=\"refused\"}") >= 1.0);
}
