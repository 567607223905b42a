//! `criguard serve` answers every gRPC client containerd answers, not only
//! grpc-go ones. Over a unix socket each implementation sends its own
//! `:authority`: grpc-go `localhost`, gRPC's C core (Python's grpcio,
//! Ruby, PHP) the socket path without its leading `/` and percent-encoded
//! (`tmp%2Fx%2Fcriguard.sock`, since 1.57), grpc-java the path itself,
//! grpc-swift the whole path percent-encoded. containerd (grpc-go) takes
//! any of them; criguard must too, and must refuse what containerd refuses.

#![allow(clippy::unwrap_used)]

mod serve_support;

use std::path::Path;

use criguard_testutil::cri::v1;
use criguard_testutil::grpc::{RawStreamEnd, decode, grpc_headers, h2_call_raw_headers, unframe};
use criguard_testutil::{Containerd, PythonGrpc};
use serde_json::{Value, json};
use serve_support::*;

const VERSION: &str = "/runtime.v1.RuntimeService/Version";

/// The response of call `index` in the grpcio client's output, which must
/// have succeeded.
fn answer(out: &Value, index: usize) -> &Value {
    let result = &out["results"][index];
    assert_eq!(result["ok"], true, "call {index} failed: {out}");
    &result["response"]
}

/// Python's grpcio with a channel made with default options, through
/// criguard in front of a real containerd: version, pulls (the signed
/// image allowed and pinned to its verified digest, the unsigned one
/// refused with the reason, as a status the client reads), image status
/// and the image list all answer.
#[test]
fn a_python_grpcio_client_with_default_options_is_served() {
    // First, so a client that cannot be had fails before anything starts.
    let python = PythonGrpc::get();
    let node = Node::new();
    node.write_global(&node.signed_only());
    let host = node.registry.host();
    let containerd = Containerd::start(&[(&host, &host)]);
    let daemon = node.daemon(containerd.socket(), "");
    let signed = Node::name(&node.signed);
    let unsigned = Node::name(&node.unsigned);
    let signed_by_digest = format!("{host}/{}@{}", node.signed.repo, node.signed.digest);

    // The control: containerd answers this client on its own socket.
    let direct = python.cri_calls(containerd.socket(), &json!([{"method": "Version"}]));
    assert_eq!(answer(&direct, 0)["runtime_name"], "containerd", "{direct}");

    let out = python.cri_calls(
        daemon.socket(),
        &json!([
            {"method": "Version"},
            {"method": "PullImage", "image": signed, "namespace": "default"},
            {"method": "PullImage", "image": unsigned, "namespace": "default"},
            {"method": "ListImages"},
            {"method": "ImageStatus", "image": signed_by_digest},
            {"method": "ImageStatus", "image": unsigned},
        ]),
    );
    assert_eq!(answer(&out, 0), answer(&direct, 0), "{out}");

    let image_ref = answer(&out, 1)["image_ref"].as_str().unwrap_or_default();
    assert_eq!(image_ref, node.signed_id, "{out}");

    let refused = &out["results"][2];
    assert_eq!(refused["ok"], false, "{out}");
    assert_eq!(refused["code"], "UNKNOWN", "{out}");
    let details = refused["details"].as_str().unwrap_or_default();
    assert!(
        details.starts_with("SignatureValidationFailed: ")
            && details.contains("no signature exists")
            && details.contains(&node.unsigned.digest),
        "{out}"
    );

    // containerd holds the signed image under the verified digest only
    // (the pull was pinned), and nothing of the unsigned one.
    let images = answer(&out, 3)["images"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let listed = images
        .iter()
        .find(|i| i["id"] == image_ref)
        .unwrap_or_else(|| panic!("{image_ref} is not listed: {out}"));
    assert_eq!(listed["repo_digests"], json!([signed_by_digest]), "{out}");
    assert!(
        !answer(&out, 3).to_string().contains("test/unsigned"),
        "{out}"
    );
    assert_eq!(answer(&out, 4)["image"]["id"], image_ref, "{out}");
    assert_eq!(answer(&out, 5).get("image"), None, "{out}");

    let audit = daemon.audit();
    let rejected = audit.iter().filter(|l| l["verdict"] == "rejected").count();
    assert_eq!(rejected, 1, "{audit:?}");
}

/// What containerd does with a `Version` call carrying `headers`, and what
/// criguard in front of it does: the same, byte for byte when answered.
async fn same_as_containerd(containerd: &Path, criguard: &Path, headers: &[(&str, &str)]) -> bool {
    let direct = h2_call_raw_headers(containerd, headers, &[]).await;
    let proxied = h2_call_raw_headers(criguard, headers, &[]).await;
    assert_eq!(proxied, direct, "{headers:?}");
    match direct {
        RawStreamEnd::Answered { data } => {
            let messages = unframe(&data);
            let version: v1::VersionResponse = decode(messages.first().unwrap());
            assert_eq!(version.runtime_name, "containerd", "{headers:?}");
            true
        }
        RawStreamEnd::Reset(_) | RawStreamEnd::GoAway(_) => false,
    }
}

/// Every `:authority` a gRPC implementation sends over a unix socket, and
/// none, is served as containerd serves it; one containerd refuses (a
/// control character or DEL, a second `:authority`) is refused as containerd
/// refuses it, by resetting the stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_authority_containerd_accepts_is_accepted_and_no_other() {
    let node = Node::new();
    let containerd = Containerd::start(&[]);
    let daemon = node.daemon(containerd.socket(), "");
    let socket = daemon.socket().to_str().unwrap().to_owned();
    // gRPC's C core: `unix:///a/b.sock` gives `a%2Fb.sock`.
    let c_core = socket.trim_start_matches('/').replace('/', "%2F");
    // grpc-swift: the whole path percent-encoded.
    let swift = socket.replace('/', "%2F");
    let accepted = [
        Some("localhost"),
        Some(socket.as_str()),
        Some(c_core.as_str()),
        Some(swift.as_str()),
        Some("localhost:0"),
        Some(""),
        None,
    ];
    for authority in accepted {
        let headers = grpc_headers(VERSION, authority);
        assert!(
            same_as_containerd(containerd.socket(), daemon.socket(), &headers).await,
            "containerd refused {authority:?}"
        );
    }

    let mut duplicated = grpc_headers(VERSION, Some("localhost"));
    duplicated.insert(3, (":authority", "localhost"));
    let refused = [
        grpc_headers(VERSION, Some("local\u{1}host")),
        grpc_headers(VERSION, Some("local\u{7f}host")),
        duplicated,
    ];
    for headers in refused {
        assert!(
            !same_as_containerd(containerd.socket(), daemon.socket(), &headers).await,
            "containerd answered {headers:?}"
        );
    }
}
