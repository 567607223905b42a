#![allow(clippy::unwrap_used)]

use criguard_policy::{Decision, MatchedScope, Policy, RejectionKind, SignatureOutcome, Verdict};
use criguard_reference::Digest;
use criguard_verification::{Located, VerifyError};

use super::*;

const MANIFEST: &str = "sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae";

/// A policy rejection of `reasons.len()` signatures, each rejected with
/// its reason, worded as containers/image words it.
fn rejected(reasons: &[String]) -> Refusal {
    let message = match reasons {
        [one] => one.clone(),
        _ => format!("{NONE_ACCEPTED}{}", reasons.join("; ")),
    };
    let signatures = reasons
        .iter()
        .enumerate()
        .map(|(i, reason)| SignatureOutcome {
            index: i + 1,
            format: "sigstore",
            accepted: false,
            reason: Some(reason.clone()),
        })
        .collect();
    let mut verification = Verification::failed(VerifyError::Configuration("replaced".to_owned()));
    verification.located = Some(Located::digest(Digest::parse(MANIFEST).unwrap()));
    verification.signatures_found = reasons.len();
    verification.notes = vec!["a hint".to_owned()];
    verification.outcome = Ok(Decision {
        scope: MatchedScope::Transport {
            transport: "docker".to_owned(),
            scope: "registry.example".to_owned(),
        },
        verdict: Verdict::Rejected(Rejection {
            requirement_index: 1,
            requirement_count: 1,
            requirement_type: "sigstoreSigned",
            kind: RejectionKind::InvalidSignature,
            message,
            signatures,
        }),
    });
    let policy = LoadedPolicy {
        policy: Arc::new(
            Policy::from_bytes(br#"{"default":[{"type":"reject"}]}"#, "policy.json").unwrap(),
        ),
        path: "/etc/criguard/policy.json".into(),
        digest: Digest::parse(MANIFEST).unwrap(),
    };
    Refusal::Policy {
        verification: Arc::new(verification),
        policy: Arc::new(policy),
    }
}

#[test]
fn thousands_of_rejected_signatures_make_a_bounded_status_with_the_telling_reasons_first() {
    // 2,000 signatures: 1,500 that fail the cryptography, 497 naming
    // other identities, three with rarer reasons; the whole message is
    // over 100 KB.
    let reasons: Vec<String> = (0..2000)
        .map(|i| match i {
            0 => "a Rekor SET is required but missing".to_owned(),
            1..500 if i % 250 == 1 => format!("rare reason {i}"),
            1..500 => {
                format!("Signature for identity \"registry.example/other:{i}\" is not accepted")
            }
            _ => "cryptographic signature verification failed: invalid signature".to_owned(),
        })
        .collect();
    let refusal = rejected(&reasons);
    let whole = refusal.describe("ns");
    assert!(whole.len() > 100_000, "{}", whole.len());

    let status = refusal.status("Source image rejected: ", "ns");
    let message = status.message();
    assert!(message.len() <= MAX_STATUS_MESSAGE, "{}", message.len());
    assert_eq!(status.code(), Code::Unknown);
    assert!(
        message.starts_with(
            "SignatureValidationFailed: Source image rejected: None of the signatures were \
             accepted, reasons: cryptographic signature verification failed: invalid \
             signature (1500 signatures); a Rekor SET is required but missing; rare \
             reason 1; Signature for identity \"registry.example/other:2\" is not accepted; "
        ),
        "{message}"
    );
    // Where it came from is kept whole, after the cut reasons.
    assert!(
        message.ends_with(&format!(
            "more bytes; see criguard's audit log) (policy /etc/criguard/policy.json for \
             namespace \"ns\", docker scope \"registry.example\", requirement 1 of 1: sigstoreSigned; \
             manifest {MANIFEST}; a hint)"
        )),
        "{message}"
    );
    // The audit line keeps every reason.
    assert!(whole.contains("other:499"));
}

#[test]
fn a_short_rejection_is_sent_as_it_is() {
    let refusal = rejected(&["signature one is bad".to_owned(), "so is two".to_owned()]);
    let status = refusal.status("", "ns");
    assert_eq!(
        status.message(),
        format!("SignatureValidationFailed: {}", refusal.describe("ns"))
    );
    assert!(
        status
            .message()
            .contains("reasons: signature one is bad; so is two (policy"),
        "{}",
        status.message()
    );
}

#[test]
fn one_huge_reason_and_other_refusals_are_cut_at_a_character_boundary() {
    // A signer's identity of multi-byte characters, 60,000 bytes long.
    let refusal = rejected(&[format!("Signature for identity \"{}\"", "é".repeat(30_000))]);
    let message = refusal.status("", "ns").message().to_owned();
    assert!(message.len() <= MAX_STATUS_MESSAGE, "{}", message.len());
    assert!(
        message.contains("more bytes; see criguard's audit log)"),
        "{message}"
    );
    assert!(message.ends_with("; a hint)"), "{message}");

    let runtime = Refusal::Runtime(Status::internal("ü".repeat(50_000)));
    let status = runtime.status("pulling x: ", "ns");
    assert_eq!(status.code(), Code::Internal);
    let message = status.message();
    assert!(message.len() <= MAX_STATUS_MESSAGE, "{}", message.len());
    let whole = "criguard: pulling x: ".len() + 100_000;
    let kept = message.find('…').unwrap();
    assert!(
        message.ends_with(&format!(
            "… ({} more bytes; see criguard's audit log)",
            whole - kept
        )),
        "{message}"
    );
}

#[test]
fn bounded_never_exceeds_its_limit() {
    for limit in [60, 100, 4096] {
        for len in [0, 59, 60, 61, 200, 5000, 100_000] {
            let text = "ab€".repeat(len / 5);
            let out = bounded(text.clone(), limit);
            assert!(out.len() <= limit, "{limit} {len}: {out}");
            if text.len() <= limit {
                assert_eq!(out, text);
            } else {
                assert!(out.ends_with("see criguard's audit log)"), "{out}");
            }
        }
    }
}
