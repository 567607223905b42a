//! Signature bombs through `criguard serve`: a `.sig` manifest listing
//! thousands of layers, a lookaside store of many 4 MiB files, and 128
//! signatures that are each rejected. The pulls are refused with messages
//! that name the limit and fit in a few KiB, the daemon's memory stays
//! bounded, and other calls are answered all along. The registry is real
//! (Debian's docker-registry); the runtime is the fake one.

#![allow(clippy::unwrap_used)]

mod serve_support;

use std::path::Path;
use std::thread;

use base64::Engine as _;
use criguard_testutil::grpc::encode;
use criguard_testutil::image::{Blob, upload_blob, upload_manifest};
use criguard_testutil::{
    FakeRuntime, Pushed, RawResponse, grpc_call_raw_blocking, push_test_image,
};
use serve_support::*;

const VERSION: &str = "/runtime.v1.RuntimeService/Version";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const SIGNATURE_MIME: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
const UNKNOWN: i32 = 2;
/// What criguard may send as a status message (crates/serve's
/// `MAX_STATUS_MESSAGE`).
const MAX_STATUS_MESSAGE: usize = 4 << 10;
/// grpc-go's default limit on response metadata, which the kubelet uses.
const GRPC_GO_METADATA_LIMIT: usize = 16 << 10;
/// The daemon's peak resident memory must stay under this. It idles at
/// some 20 MiB; each check may hold a 4 MiB `.sig` manifest and 16 MiB of
/// signatures (plus one 4 MiB blob in flight), and the bombs below run five
/// checks at once. Without the limits, the lookaside store alone is
/// 128 MiB and the attachments 2,000 blob reads.
const MAX_RSS_KIB: u64 = 100 << 10;

/// Uploads a `.sig` manifest for `pushed` whose `count` layers name
/// `payloads` in turn, each layer with its own (invalid) signature.
fn upload_sig_manifest(node: &Node, pushed: &Pushed, payloads: &[Vec<u8>], count: usize) {
    let blobs: Vec<Blob> = payloads
        .iter()
        .map(|p| Blob::new(SIGNATURE_MIME, p.clone()))
        .collect();
    for blob in &blobs {
        upload_blob(&node.registry, &pushed.repo, blob);
    }
    let config = Blob::new(
        "application/vnd.oci.image.config.v1+json",
        br#"{"architecture":"","os":"","config":{},"rootfs":{"type":"layers","diff_ids":[]}}"#
            .to_vec(),
    );
    upload_blob(&node.registry, &pushed.repo, &config);
    let layers: Vec<serde_json::Value> = (0..count)
        .map(|i| {
            let blob = &blobs[i % blobs.len()];
            let signature = base64::engine::general_purpose::STANDARD
                .encode(format!("not a signature, number {i}"));
            serde_json::json!({
                "mediaType": SIGNATURE_MIME,
                "size": blob.data.len(),
                "digest": blob.digest,
                "annotations": {"dev.cosignproject.cosign/signature": signature},
            })
        })
        .collect();
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": config.descriptor(),
        "layers": layers,
    });
    let tag = format!("{}.sig", pushed.digest.replace(':', "-"));
    upload_manifest(
        &node.registry,
        &pushed.repo,
        &tag,
        &Blob::new(OCI_MANIFEST, serde_json::to_vec(&manifest).unwrap()),
    );
}

/// A cosign simple-signing payload for `pushed`.
fn payload(pushed: &Pushed, note: &str) -> Vec<u8> {
    serde_json::json!({
        "critical": {
            "identity": {"docker-reference": pushed.name()},
            "image": {"docker-manifest-digest": pushed.digest},
            "type": "cosign container image signature",
        },
        "optional": {"note": note},
    })
    .to_string()
    .into_bytes()
}

/// The status message, checked to fit where gRPC clients can take it.
fn bounded_message(response: &RawResponse, code: i32) -> String {
    let message = response.grpc_message.clone().unwrap_or_default();
    assert_eq!(response.grpc_status, Some(code), "{message}");
    assert!(
        message.len() <= MAX_STATUS_MESSAGE,
        "{} bytes: {message}",
        message.len()
    );
    let encoded = response
        .trailers
        .get("grpc-message")
        .or_else(|| response.headers.get("grpc-message"))
        .map_or(0, |v| v.len());
    assert!(
        encoded < GRPC_GO_METADATA_LIMIT,
        "{encoded} bytes on the wire"
    );
    message
}

#[test]
fn signature_bombs_are_refused_in_bounded_memory_with_bounded_messages() {
    let node = Node::new();
    node.write_global(&node.signed_only());
    let host = node.registry.host();

    // 2,000 layers over three payloads.
    let bomb = push_test_image(&node.registry, "test/bomb", "v1", "bomb content");
    let payloads: Vec<Vec<u8>> = (0..3)
        .map(|i| payload(&bomb, &format!("payload {i}")))
        .collect();
    upload_sig_manifest(&node, &bomb, &payloads, 2000);

    // 128 layers (as many as are read), one payload, each signature bad.
    let many = push_test_image(&node.registry, "test/many", "v1", "many content");
    upload_sig_manifest(&node, &many, &[payload(&many, "one")], 128);

    // 32 lookaside signatures of 4 MiB each.
    let heavy = push_test_image(&node.registry, "test/heavy", "v1", "heavy content");
    let store = node.dir.path().join("lookaside");
    let files = store.join(format!(
        "test/heavy@sha256={}",
        heavy.digest.trim_start_matches("sha256:")
    ));
    std::fs::create_dir_all(&files).unwrap();
    for n in 1..=32 {
        // 0xA3 makes each parse as a simple-signing blob.
        std::fs::write(files.join(format!("signature-{n}")), vec![0xa3; 4 << 20]).unwrap();
    }
    std::fs::write(
        node.dir.path().join("registries.d").join("heavy.yaml"),
        format!(
            "docker:\n  \"{host}/test/heavy\":\n    lookaside: \"file://{}\"\n",
            store.display()
        ),
    )
    .unwrap();

    let fake = FakeRuntime::start();
    let daemon = node.daemon(fake.socket(), "");
    let socket = daemon.socket().to_owned();
    let (_, idle_peak) = daemon.memory_kib();

    // Two pulls of each bomb and one of the many signatures, all at once,
    // while Version calls go through.
    let names = [
        Node::name(&bomb),
        Node::name(&bomb),
        Node::name(&heavy),
        Node::name(&heavy),
        Node::name(&many),
    ];
    let pulls: Vec<_> = names
        .iter()
        .map(|name| {
            let socket = socket.clone();
            let request = encode(&pull(name, "ns"));
            thread::spawn(move || grpc_call_raw_blocking(&socket, PULL_IMAGE, &request))
        })
        .collect();
    let mut versions = 0;
    while !pulls.iter().all(thread::JoinHandle::is_finished) {
        assert_version_answered(&socket);
        versions += 1;
    }
    let responses: Vec<RawResponse> = pulls.into_iter().map(|t| t.join().unwrap()).collect();
    assert_version_answered(&socket);
    assert!(versions >= 1);

    for response in &responses[..2] {
        let message = bounded_message(response, UNKNOWN);
        assert!(
            message.starts_with(&format!(
                "criguard: cannot verify the signatures: pulling {}: sigstore attachment manifest \
                 {host}/test/bomb:sha256-{}.sig: server provided 2000 signatures",
                Node::name(&bomb),
                bomb.digest.trim_start_matches("sha256:")
            )),
            "{message}"
        );
        assert!(
            message.ends_with("(criguard reads at most 128)"),
            "{message}"
        );
    }
    for response in &responses[2..4] {
        let message = bounded_message(response, UNKNOWN);
        assert!(
            message.contains(&format!(
                "signatures of {host}/test/heavy@{}: ",
                heavy.digest
            )) && message.ends_with("more than the 16777216 bytes criguard reads per image"),
            "{message}"
        );
    }
    let message = bounded_message(&responses[4], UNKNOWN);
    assert!(
        message.starts_with(
            "SignatureValidationFailed: Source image rejected: None of the signatures were \
             accepted, reasons: "
        ),
        "{message}"
    );
    assert!(message.contains(" (128 signatures)"), "{message}");
    assert!(
        message.contains(&format!("; manifest {})", many.digest)),
        "{message}"
    );
    // The audit line has what the status left out.
    let audit = daemon.audit();
    let detail = audit
        .iter()
        .filter(|line| line["digest"] == many.digest.as_str())
        .filter_map(|line| line["detail"].as_str())
        .map(str::len)
        .max()
        .unwrap_or_else(|| panic!("no audit line for {}: {audit:?}", Node::name(&many)));
    assert!(detail > MAX_STATUS_MESSAGE, "{detail}");

    assert!(
        fake.calls_to(PULL_IMAGE).is_empty(),
        "no refused pull reaches the runtime"
    );
    let (rss, peak) = daemon.memory_kib();
    println!(
        "criguard VmRSS idle peak {idle_peak} KiB, after the bombs {rss} KiB, peak {peak} KiB"
    );
    assert!(
        peak < MAX_RSS_KIB,
        "peak resident memory {peak} KiB (now {rss} KiB, idle {idle_peak} KiB)"
    );
}

fn assert_version_answered(socket: &Path) {
    let response = grpc_call_raw_blocking(socket, VERSION, &[]);
    assert_eq!(
        response.grpc_status,
        Some(0),
        "Version: {:?}",
        response.grpc_message
    );
}
