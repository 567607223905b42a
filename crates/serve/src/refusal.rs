//! Why a call is refused, and how the kubelet is told.

use std::collections::HashMap;
use std::sync::Arc;

use criguard_policy::Rejection;
use criguard_verification::{SourceError, Verification};
use tonic::{Code, Status};

use crate::LoadedPolicy;

/// Why a pull or a create is refused.
#[derive(Debug)]
pub enum Refusal {
    /// The policy rejected the image.
    Policy {
        verification: Arc<Verification>,
        policy: Arc<LoadedPolicy>,
    },
    /// A namespace policy that never parsed, or an image that cannot be
    /// tied to a repository.
    Unverifiable(String),
    /// The request itself is wrong.
    Request(String),
    /// A registry could not tell us what we need; its kind says whether
    /// it was credentials, a time-out, an outage or bad content.
    Source(SourceError),
    /// The runtime could not be asked.
    Runtime(Status),
    /// The request does not belong where it says: its pod sandbox is in
    /// another namespace, or does not exist.
    Binding(String),
}

impl Refusal {
    /// The `reason` label: a fixed set.
    pub(crate) fn reason_class(&self) -> &'static str {
        match self {
            Refusal::Policy { verification, .. } => {
                match verification.decision().and_then(|d| d.rejection()) {
                    Some(r) if !r.requirement_type.is_empty() => r.requirement_type,
                    _ => "empty-requirements",
                }
            }
            Refusal::Unverifiable(_) => "unverifiable",
            Refusal::Request(_) => "bad-request",
            Refusal::Source(_) => "registry",
            Refusal::Runtime(_) => "runtime",
            Refusal::Binding(_) => "sandbox",
        }
    }

    /// Whether the image was judged and rejected (as opposed to a call
    /// that could not be decided).
    pub(crate) fn is_rejection(&self) -> bool {
        matches!(
            self,
            Refusal::Policy { .. } | Refusal::Unverifiable(_) | Refusal::Binding(_)
        )
    }

    /// Whether audit mode lets the call go on: a policy's verdict, and
    /// registry trouble while deciding. Requests criguard cannot read, a
    /// namespace that is not the sandbox's and an unreachable runtime are
    /// refused in every mode: they are not the policy's to waive.
    pub(crate) fn is_auditable(&self) -> bool {
        matches!(
            self,
            Refusal::Policy { .. } | Refusal::Unverifiable(_) | Refusal::Source(_)
        )
    }

    /// The reason in words: containers/image's message, then where it
    /// came from (policy file, namespace, scope, requirement, manifest)
    /// and the hints. Whole, for the audit line; [`Refusal::status`] sends a
    /// bounded version.
    pub(crate) fn describe(&self, namespace: &str) -> String {
        match self {
            Refusal::Policy {
                verification,
                policy,
            } => {
                let (message, context) = policy_reason(verification, policy, namespace);
                message + &context
            }
            Refusal::Unverifiable(why) | Refusal::Request(why) | Refusal::Binding(why) => {
                why.clone()
            }
            Refusal::Source(e) => e.to_string(),
            Refusal::Runtime(status) => status.message().to_owned(),
        }
    }

    /// [`Refusal::describe`] in at most about `room` bytes. For a policy
    /// rejection the place it came from is kept whole, and containers/image's
    /// message gives way: when it lists many signatures' reasons, each
    /// distinct reason is told once, the most frequent first, with how many
    /// signatures gave it.
    fn describe_within(&self, namespace: &str, room: usize) -> String {
        let Refusal::Policy {
            verification,
            policy,
        } = self
        else {
            return self.describe(namespace);
        };
        let (message, context) = policy_reason(verification, policy, namespace);
        if message.len() + context.len() <= room {
            return message + &context;
        }
        let message_room = room.saturating_sub(context.len()).max(MIN_MESSAGE_ROOM);
        let message = match verification.decision().and_then(|d| d.rejection()) {
            Some(rejection) if is_summary_of_many(rejection) => summarise(rejection),
            _ => message,
        };
        bounded(message, message_room) + &context
    }

    /// The status for the kubelet. Policy rejections start with
    /// `SignatureValidationFailed`, code Unknown: that is what the kubelet
    /// turns into the pod status of that name. Registry trouble is not a
    /// signature verdict, and is reported as the pull error it is.
    ///
    /// The message is at most [`MAX_STATUS_MESSAGE`] bytes, whatever the
    /// image's signatures say; the audit line has the whole reason.
    pub(crate) fn status(&self, subject: &str, namespace: &str) -> Status {
        let (code, lead) = match self {
            Refusal::Policy { .. } | Refusal::Unverifiable(_) => {
                (Code::Unknown, "SignatureValidationFailed: ")
            }
            Refusal::Request(_) => (Code::InvalidArgument, "criguard: "),
            Refusal::Source(_) => (Code::Unknown, "criguard: cannot verify the signatures: "),
            Refusal::Runtime(status) => (status.code(), "criguard: "),
            Refusal::Binding(_) => (Code::PermissionDenied, "criguard: "),
        };
        let room = MAX_STATUS_MESSAGE.saturating_sub(lead.len() + subject.len());
        let reason = self.describe_within(namespace, room);
        Status::new(
            code,
            bounded(format!("{lead}{subject}{reason}"), MAX_STATUS_MESSAGE),
        )
    }
}

/// The most bytes of a status message sent to the kubelet. gRPC carries it
/// in the `grpc-message` trailer, percent-encoded (up to three bytes for
/// one), and grpc-go clients, the kubelet among them, refuse response
/// metadata over 16 KiB: 4 KiB stays under that even fully encoded, and
/// still holds the reason, where it came from and a handful of distinct
/// signature reasons.
pub(crate) const MAX_STATUS_MESSAGE: usize = 4 << 10;

/// containers/image's message keeps at least this much of a bounded
/// status, however long the rest is.
const MIN_MESSAGE_ROOM: usize = 1 << 10;

/// Each distinct signature reason in a summary is cut to this, so that one
/// long reason (a signed identity is the signer's text) leaves room for
/// the others.
const MAX_SUMMARISED_REASON: usize = 512;

/// A policy rejection in two parts: containers/image's message (or the
/// decision), then the parenthesis saying where it came from, the manifest
/// and the hints.
fn policy_reason(
    verification: &Verification,
    policy: &LoadedPolicy,
    namespace: &str,
) -> (String, String) {
    let (message, mut context) = match verification.decision() {
        Some(decision) => match decision.rejection() {
            Some(r) => (
                r.message.clone(),
                format!(
                    " (policy {} for namespace {namespace:?}, {}, requirement {} of {}: {}",
                    policy.path.display(),
                    decision.scope,
                    r.requirement_index,
                    r.requirement_count,
                    r.requirement_type
                ),
            ),
            None => (format!("{decision}"), String::new()),
        },
        None => (String::new(), String::new()),
    };
    if let Some(digest) = verification.manifest_digest() {
        context.push_str(&format!("; manifest {digest}"));
    }
    for note in &verification.notes {
        context.push_str("; ");
        context.push_str(note);
    }
    context.push(')');
    (message, context)
}

/// The words containers/image uses when several signatures were each
/// rejected (crates/policy's `decide_over`); its message then joins every
/// signature's reason.
const NONE_ACCEPTED: &str = "None of the signatures were accepted, reasons: ";

fn is_summary_of_many(rejection: &Rejection) -> bool {
    rejection.signatures.len() > 1 && rejection.message.starts_with(NONE_ACCEPTED)
}

/// containers/image's message for many rejected signatures, with each
/// distinct reason once: the most frequent first (ties in the order the
/// signatures came), each followed by how many signatures gave it.
fn summarise(rejection: &Rejection) -> String {
    let mut counts: Vec<(&str, usize)> = Vec::new();
    let mut position: HashMap<&str, usize> = HashMap::new();
    for reason in rejection
        .signatures
        .iter()
        .filter_map(|s| s.reason.as_deref())
    {
        match position.get(reason) {
            Some(&i) => counts[i].1 += 1,
            None => {
                position.insert(reason, counts.len());
                counts.push((reason, 1));
            }
        }
    }
    // Stable: equal counts keep the signatures' order.
    counts.sort_by_key(|(_, count)| std::cmp::Reverse(*count));
    let mut text = NONE_ACCEPTED.to_owned();
    for (i, (reason, count)) in counts.into_iter().enumerate() {
        if i > 0 {
            text.push_str("; ");
        }
        text.push_str(&bounded(reason.to_owned(), MAX_SUMMARISED_REASON));
        if count > 1 {
            text.push_str(&format!(" ({count} signatures)"));
        }
    }
    text
}

/// `text` in at most `limit` bytes: cut at a character boundary, with a
/// marker saying how much was left out and where it is.
fn bounded(text: String, limit: usize) -> String {
    if text.len() <= limit {
        return text;
    }
    let marker = |omitted: usize| format!("… ({omitted} more bytes; see criguard's audit log)");
    // What is left out is less than the whole, so its marker is no longer
    // than this one.
    let mut cut = limit.saturating_sub(marker(text.len()).len());
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    let omitted = text.len() - cut;
    let mut out = text;
    out.truncate(cut);
    out.push_str(&marker(omitted));
    out
}

#[cfg(test)]
mod tests;
