//! Which requirements apply to an image: containers/image's scope order.
//!
//! Inside the image's transport: its identity, then each namespace from the
//! most to the least specific, then the transport default `""`; failing
//! those, the global `default`. The first scope that exists wins; nothing is
//! merged. Each candidate is one hash lookup, so the cost grows with the
//! depth of the image's name, not with the number of scopes.

use serde::Serialize;

use crate::model::{Policy, Requirements};
use crate::transport::ImageReference;

/// The scope whose requirements apply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum MatchedScope {
    /// A scope (possibly the transport default `""`) of one transport.
    Transport { transport: String, scope: String },
    /// The policy's global `default`.
    Default,
}

impl MatchedScope {
    /// The scope key, or `None` for the global default.
    pub fn scope(&self) -> Option<&str> {
        match self {
            Self::Transport { scope, .. } => Some(scope),
            Self::Default => None,
        }
    }
}

impl std::fmt::Display for MatchedScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Transport { transport, scope } if scope.is_empty() => {
                write!(f, "{transport} transport default scope \"\"")
            }
            Self::Transport { transport, scope } => write!(f, "{transport} scope {scope:?}"),
            Self::Default => f.write_str("global default"),
        }
    }
}

/// One scope tried during lookup, for `policy explain`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Candidate {
    pub transport: String,
    pub scope: String,
    pub matched: bool,
}

/// The outcome of a lookup with every candidate that was tried.
#[derive(Debug, Clone)]
pub struct Explanation<'p> {
    pub candidates: Vec<Candidate>,
    pub matched: MatchedScope,
    pub requirements: &'p Requirements,
}

impl Policy {
    /// The requirements that apply to `image` and where they came from.
    pub fn requirements_for(&self, image: &ImageReference) -> (MatchedScope, &Requirements) {
        let transport = image.transport().name();
        if let Some(scopes) = self.transports.get(transport) {
            let identity = image.policy_identity();
            let namespaces = image.policy_namespaces();
            let candidates = std::iter::once(identity)
                .chain(namespaces)
                .chain(std::iter::once(String::new()));
            for scope in candidates {
                if let Some(reqs) = scopes.scopes.get(&scope) {
                    return (
                        MatchedScope::Transport {
                            transport: transport.to_owned(),
                            scope,
                        },
                        reqs,
                    );
                }
            }
        }
        (MatchedScope::Default, &self.default)
    }

    /// Like [`Policy::requirements_for`], recording every scope tried.
    pub fn explain(&self, image: &ImageReference) -> Explanation<'_> {
        let transport = image.transport().name();
        let mut candidates = Vec::new();
        let scopes = self.transports.get(transport);
        let names = std::iter::once(image.policy_identity())
            .chain(image.policy_namespaces())
            .chain(std::iter::once(String::new()));
        for scope in names {
            let matched = scopes.is_some_and(|s| s.scopes.contains_key(&scope));
            let done = matched;
            candidates.push(Candidate {
                transport: transport.to_owned(),
                scope,
                matched,
            });
            if done {
                break;
            }
        }
        let (matched, requirements) = self.requirements_for(image);
        Explanation {
            candidates,
            matched,
            requirements,
        }
    }
}
