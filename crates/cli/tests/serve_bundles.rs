//! `criguard serve` enforces images signed by cosign 3 (sigstore bundles
//! found through the fallback tag) like any other, through the one
//! pipeline: with `criguard-sigstore-bundles` in registries.d, a pull of a
//! bundle-signed image is allowed and pinned to its digest, one signed by
//! another key or not at all is refused, and the audit line says why.

#![allow(clippy::unwrap_used)]

mod serve_support;

use criguard_testutil::cosign3::{cosign3_sign, cosign3_signing_config};
use criguard_testutil::cri::v1;
use criguard_testutil::grpc::encode;
use criguard_testutil::{
    FakeRuntime, cosign_generate_key_pair, grpc_call_raw_blocking, push_test_image,
};
use serve_support::*;

#[test]
fn bundle_signed_images_are_enforced_like_any_other() {
    let node = Node::new();
    std::fs::write(
        node.dir.path().join("registries.d").join("criguard-test.yaml"),
        format!(
            "docker:\n  {}:\n    use-sigstore-attachments: true\n    criguard-sigstore-bundles: true\n",
            node.registry.host()
        ),
    )
    .unwrap();
    let signing_config = cosign3_signing_config(node.dir.path());
    let bundled = push_test_image(&node.registry, "test/bundled", "v1", "cosign 3 signed");
    cosign3_sign(
        &node.cosign_key,
        PASSWORD,
        &signing_config,
        &bundled.by_digest(),
    );
    let stranger_keys = node.dir.path().join("stranger");
    std::fs::create_dir(&stranger_keys).unwrap();
    let (stranger, _) = cosign_generate_key_pair(&stranger_keys, PASSWORD);
    let foreign = push_test_image(&node.registry, "test/foreign", "v1", "someone else's");
    cosign3_sign(&stranger, PASSWORD, &signing_config, &foreign.by_digest());
    node.write_global(&node.signed_only());

    let fake = FakeRuntime::start();
    let daemon = node.daemon(fake.socket(), "");
    let call = |name: &str| {
        grpc_call_raw_blocking(daemon.socket(), PULL_IMAGE, &encode(&pull(name, "default")))
    };

    // Allowed, and the runtime is told to pull exactly the verified digest.
    let allowed = call(&Node::name(&bundled));
    assert_eq!(allowed.grpc_status, Some(0), "{:?}", allowed.grpc_message);
    let forwarded: v1::PullImageRequest = fake.calls_to(PULL_IMAGE)[0].decode();
    assert_eq!(
        forwarded.image.unwrap().image,
        format!("{}/test/bundled@{}", node.registry.host(), bundled.digest)
    );
    // The legacy `.sig` image still passes under the same policy.
    assert_eq!(call(&Node::name(&node.signed)).grpc_status, Some(0));

    for (image, reason) in [
        (
            &foreign,
            "bundle (digest-bound): cryptographic signature verification",
        ),
        (&node.unsigned, "no signature exists"),
    ] {
        let refused = call(&Node::name(image));
        let message = refused.grpc_message.clone().unwrap_or_default();
        assert_eq!(refused.grpc_status, Some(2), "{message}");
        assert!(
            message.starts_with("SignatureValidationFailed: "),
            "{message}"
        );
        assert!(message.contains(reason), "{message}");
    }
    assert_eq!(
        fake.calls_to(PULL_IMAGE).len(),
        2,
        "a refused pull reached the runtime"
    );
    let audit = daemon.audit();
    let foreign_line = audit
        .iter()
        .find(|l| l["digest"] == foreign.digest.as_str())
        .unwrap_or_else(|| panic!("no audit line for the foreign image: {audit:?}"));
    assert_eq!(foreign_line["verdict"], "rejected");
    assert!(
        foreign_line["detail"]
            .as_str()
            .unwrap()
            .contains("bundle (digest-bound)"),
        "{foreign_line}"
    );
}
