//! Any bytes given as policy.json: loading must not panic, a rejected policy
//! must say why, and a loaded one must fail closed.
//!
//! Fail closed means: when the requirements that apply to an image contain
//! anything other than `insecureAcceptAnything`, an image with no usable
//! signature is rejected. "No usable signature" is tried twice: no
//! signatures at all, and junk signatures of both formats with no
//! cryptographic verifier available (a build without GPG or sigstore must
//! reject, not skip the check).

#![no_main]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::LazyLock;

use criguard_policy::payload::COSIGN_SIGNATURE_MIME_TYPE;
use criguard_policy::{
    Evaluator, Image, ImageReference, Policy, Requirement, Signature, SigstoreSignature, TrustFiles,
};
use criguard_reference::{Digest, Reference};
use libfuzzer_sys::fuzz_target;

/// Key and certificate files are never available: a requirement that needs
/// one must reject rather than pass.
struct NoFiles;

impl TrustFiles for NoFiles {
    fn read(&self, path: &Path) -> Result<Vec<u8>, String> {
        Err(format!("{}: no files while fuzzing", path.display()))
    }
}

const DIGEST: &str = "sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae";

/// Images under the scopes of the seed policies (identity, namespaces,
/// host:port, wildcards) and in no scope at all, plus an OCI layout.
static IMAGES: LazyLock<Vec<ImageReference>> = LazyLock::new(|| {
    let docker = [
        "docker.io/library/busybox:latest",
        "example.com/playground/app:1",
        "example.com/production/app@sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae",
        "registry.access.redhat.com/rhel7/rhel:latest",
        "private-mirror:5000/vendor-mirror/app:v2",
        "a.b.example.com/x/y:z",
        "localhost/a:b",
    ];
    let mut images: Vec<ImageReference> = docker
        .iter()
        .map(
            |text| match Reference::parse_docker_transport(&format!("//{text}")) {
                Ok(reference) => ImageReference::Docker(reference),
                Err(e) => panic!("fixed reference {text:?}: {e}"),
            },
        )
        .collect();
    images.push(ImageReference::Oci {
        dir: "/tmp/layout".into(),
        image: String::new(),
        resolved_dir: "/tmp/layout".into(),
    });
    images
});

static MANIFEST_DIGEST: LazyLock<Digest> =
    LazyLock::new(|| Digest::parse(DIGEST).unwrap_or_else(|e| panic!("{DIGEST}: {e}")));

/// Signatures of both formats that no verifier could accept; with none
/// configured they must never be taken on trust.
static JUNK_SIGNATURES: LazyLock<Vec<Signature>> = LazyLock::new(|| {
    let payload = format!(
        r#"{{"critical":{{"identity":{{"docker-reference":"docker.io/library/busybox:latest"}},"image":{{"docker-manifest-digest":"{DIGEST}"}},"type":"cosign container image signature"}},"optional":null}}"#
    );
    vec![
        Signature::SimpleSigning(b"not an OpenPGP message".to_vec()),
        Signature::Sigstore(SigstoreSignature {
            mime_type: COSIGN_SIGNATURE_MIME_TYPE.to_owned(),
            payload: payload.into_bytes(),
            annotations: BTreeMap::from([(
                "dev.cosignproject.cosign/signature".to_owned(),
                "AAAA".to_owned(),
            )]),
        }),
    ]
});

fuzz_target!(|data: &[u8]| {
    let policy = match Policy::from_bytes(data, "fuzz") {
        Ok(policy) => policy,
        Err(e) => {
            assert!(!e.problems().is_empty(), "a rejected policy must say why");
            return;
        }
    };
    let evaluator = Evaluator {
        files: &NoFiles,
        simple_signing: None,
        sigstore: None,
    };
    for image in IMAGES.iter() {
        let (scope, requirements) = policy.requirements_for(image);
        assert!(
            !requirements.is_empty(),
            "{image}: a loaded policy has no empty list"
        );
        assert_eq!(
            policy.explain(image).matched,
            scope,
            "{image}: explain disagrees"
        );
        let accepts_anything = requirements
            .iter()
            .all(|entry| matches!(entry.requirement, Requirement::InsecureAcceptAnything));
        for signatures in [&[][..], &JUNK_SIGNATURES[..]] {
            let decision = evaluator.evaluate(
                &policy,
                &Image {
                    reference: image,
                    manifest_digest: &MANIFEST_DIGEST,
                    signatures,
                },
            );
            assert_eq!(
                decision.scope, scope,
                "{image}: evaluated under another scope"
            );
            assert_eq!(
                decision.is_allowed(),
                accepts_anything,
                "{image} with {} junk signatures under {scope}: {decision}",
                signatures.len()
            );
        }
    }
});
