//! What a verification found, in one type for the CLI's report, the
//! daemon's audit line and its refusals.

use std::fmt::Write as _;
use std::time::Duration;

use criguard_policy::{Decision, SignatureOutcome};
use criguard_reference::Digest;
use criguard_registry::Platform;
use serde_json::{Value, json};

use crate::SourceError;

/// The manifest an image resolved to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    /// The digest signatures must name: the platform's manifest.
    pub manifest_digest: Digest,
    /// Set when the name pointed at an index or manifest list.
    pub index_digest: Option<Digest>,
    /// The instance's platform when it was chosen from an index.
    pub platform: Option<Platform>,
    /// Where the manifest was read from when that is not the name asked
    /// for (a mirror, a `location` rewrite).
    pub pulled_from: Option<String>,
    /// The manifest's config digest: the image ID a runtime reports for
    /// it. `None` when the source cannot tell.
    pub config_digest: Option<Digest>,
    /// The manifest's media type and size in bytes, as a descriptor of it
    /// needs them (the daemon names the verified manifest in the runtime
    /// with one). `None` when the source cannot tell.
    pub media_type: Option<String>,
    pub size: Option<u64>,
}

impl Located {
    /// A manifest known only by its digest.
    pub fn digest(manifest_digest: Digest) -> Located {
        Located {
            manifest_digest,
            index_digest: None,
            platform: None,
            pulled_from: None,
            config_digest: None,
            media_type: None,
            size: None,
        }
    }

    /// Whether `image_id`, as a runtime reports it (`sha256:<hex>`, or the
    /// bare hex CRI-O uses), is this manifest's image. An unknown config
    /// is not a match: the binding cannot be shown.
    pub fn is_image(&self, image_id: &str) -> bool {
        let Some(config) = &self.config_digest else {
            return false;
        };
        let id = image_id.strip_prefix("sha256:").unwrap_or(image_id);
        config.algorithm() == "sha256" && config.encoded() == id
    }
}

/// Where the time of one verification went, so that a slow registry can be
/// told from slow cryptography.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Timings {
    pub resolve: Duration,
    pub signatures: Duration,
    pub check: Duration,
}

/// Why no verdict could be reached. Every one of these is a rejection.
#[derive(Debug, Clone, thiserror::Error)]
pub enum VerifyError {
    /// The image source failed.
    #[error("{}", chain(.0))]
    Source(#[from] SourceError),
    /// Something the verification needs is unusable (an invalid policy,
    /// an unreadable registries.d).
    #[error("{0}")]
    Configuration(String),
    /// The evaluation itself did not finish (it does not panic on input;
    /// if it ever did, the image is not allowed).
    #[error("the signature check failed: {0}")]
    Evaluation(String),
}

/// An error and every cause below it, `: `-separated, as people read error
/// chains.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(e) = cause {
        let _ = write!(text, ": {e}");
        cause = e.source();
    }
    text
}

/// The decision about one image, and everything learnt on the way to it.
#[derive(Debug, Clone)]
pub struct Verification {
    /// The manifest, once resolved (also when a later step failed).
    pub located: Option<Located>,
    /// How many signatures were looked at.
    pub signatures_found: usize,
    /// Hints for a rejection: where signatures were looked for and why
    /// some were not (registries.d settings).
    pub notes: Vec<String>,
    pub outcome: Result<Decision, VerifyError>,
    pub timings: Timings,
}

impl Verification {
    /// A verification that could not start.
    pub fn failed(error: VerifyError) -> Verification {
        Verification {
            located: None,
            signatures_found: 0,
            notes: Vec::new(),
            outcome: Err(error),
            timings: Timings::default(),
        }
    }

    pub fn is_allowed(&self) -> bool {
        matches!(&self.outcome, Ok(decision) if decision.is_allowed())
    }

    pub fn decision(&self) -> Option<&Decision> {
        self.outcome.as_ref().ok()
    }

    pub fn manifest_digest(&self) -> Option<&Digest> {
        self.located.as_ref().map(|l| &l.manifest_digest)
    }

    /// The report as JSON, for `--output json`: `image`, `digest`,
    /// `indexDigest`, `platform`, `source`, `verdict`, and for a rejection
    /// `reason`, `kind`, `scope`, `requirement`, `signatures`, `notes`.
    pub fn to_json(&self, image_name: &str) -> Value {
        let located = self.located.as_ref();
        let mut value = json!({
            "image": image_name,
            "digest": located.map(|l| l.manifest_digest.as_str()),
            "indexDigest": located.and_then(|l| l.index_digest.as_ref()).map(Digest::as_str),
            "platform": located.and_then(|l| l.platform.as_ref()).map(ToString::to_string),
            "source": located.and_then(|l| l.pulled_from.as_deref()),
        });
        match &self.outcome {
            Ok(decision) => {
                value["verdict"] = json!(if decision.is_allowed() {
                    "allowed"
                } else {
                    "rejected"
                });
                value["scope"] = json!(decision.scope.scope());
                if let Some(r) = decision.rejection() {
                    value["reason"] = json!(r.message);
                    value["kind"] = json!(r.kind);
                    value["requirement"] = json!({
                        "index": r.requirement_index,
                        "count": r.requirement_count,
                        "type": r.requirement_type,
                    });
                    value["signatures"] = json!(r.signatures);
                    if !self.notes.is_empty() {
                        value["notes"] = json!(self.notes);
                    }
                } else {
                    value["signatures"] = json!(Vec::<SignatureOutcome>::new());
                }
            }
            Err(e) => {
                value["verdict"] = json!("rejected");
                value["reason"] = json!(e.to_string());
                value["kind"] = json!("error");
            }
        }
        value
    }

    /// The report as text, one fact a line: the verdict, the reason, the
    /// manifest, the scope and failed requirement, the hints, and each
    /// signature's fate.
    pub fn to_text(&self, image_name: &str) -> String {
        let mut text = String::new();
        let mut line = |l: String| {
            text.push_str(&l);
            text.push('\n');
        };
        match &self.outcome {
            Ok(decision) => {
                let verdict = if decision.is_allowed() {
                    "allowed"
                } else {
                    "rejected"
                };
                line(format!("{verdict}: {image_name}"));
                if let Some(r) = decision.rejection() {
                    line(format!("  reason:    {}", r.message));
                }
                self.located_lines(&mut line);
                line(format!("  policy:    {}", decision.scope));
                if let Some(r) = decision.rejection() {
                    if r.requirement_count > 0 {
                        line(format!(
                            "  failed:    requirement {} of {} ({})",
                            r.requirement_index, r.requirement_count, r.requirement_type
                        ));
                    }
                    for note in &self.notes {
                        line(format!("  note:      {note}"));
                    }
                    for s in &r.signatures {
                        line(format!(
                            "  signature {} ({}): {}",
                            s.index,
                            s.format,
                            s.reason.as_deref().unwrap_or("accepted")
                        ));
                    }
                }
            }
            Err(e) => {
                line(format!("rejected: {image_name}"));
                line(format!("  reason:    {e}"));
                self.located_lines(&mut line);
            }
        }
        text
    }

    fn located_lines(&self, line: &mut impl FnMut(String)) {
        let Some(located) = &self.located else {
            return;
        };
        line(format!("  manifest:  {}", located.manifest_digest));
        if let Some(platform) = &located.platform {
            let from = located
                .index_digest
                .as_ref()
                .map(|d| format!(" (from index {d})"))
                .unwrap_or_default();
            line(format!("  platform:  {platform}{from}"));
        }
        if let Some(source) = &located.pulled_from {
            line(format!("  pulled:    {source}"));
        }
        line(format!("  signatures found: {}", self.signatures_found));
    }
}
