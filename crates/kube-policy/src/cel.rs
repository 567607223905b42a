//! The patterns a policy's fields must match, and the CEL rules
//! (`x-kubernetes-validations`) made from them.
//!
//! One pattern serves both the API server (through CEL's RE2 `matches`) and
//! the renderer (through the `regex` crate, whose syntax is RE2's for
//! everything used here), so an object the API server admits is one the
//! renderer accepts.

use kube::core::{Message, Rule};

/// One DNS label, as registries name hosts (either case).
const LABEL: &str = "[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?";
/// One repository path component (docker/reference's grammar).
const PATH_COMPONENT: &str = "[a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*";
const TAG: &str = ":[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}";
const DIGEST: &str = "@[A-Za-z][A-Za-z0-9]*([+._-][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}";

/// A registry host: `localhost` or a name with a dot (which includes IPv4
/// addresses), with an optional port. A bare word like `busybox` is refused:
/// in a scope it would name no registry.
fn domain() -> String {
    format!("(localhost|{LABEL}(\\.{LABEL})+)(:[0-9]+)?")
}

/// A policy.json scope in the docker transport: `*.domain`, or
/// `host[:port]` followed by optional path components and, after at least
/// one of them, an optional tag or digest.
pub(crate) fn scope_pattern() -> String {
    let domain = domain();
    format!("^(\\*\\.{LABEL}(\\.{LABEL})*|{domain}((/{PATH_COMPONENT})+({TAG}|{DIGEST})?)?)$")
}

/// A repository named with its registry: `host[:port]/path`, no tag or
/// digest (`exactRepository.repository`).
pub(crate) fn repository_pattern() -> String {
    format!("^{}(/{PATH_COMPONENT})+$", domain())
}

/// An identity prefix: a registry, or a repository namespace under one; no
/// tag or digest (`remapIdentity.prefix` and `.signedPrefix`).
pub(crate) fn prefix_pattern() -> String {
    format!("^{}(/{PATH_COMPONENT})*$", domain())
}

/// An email address as OpenShift checks it: something, `@`, something.
pub(crate) const EMAIL_PATTERN: &str = "^\\S+@\\S+$";
/// An http(s) URL with a host (an OIDC issuer).
pub(crate) const URL_PATTERN: &str = "^https?://[^\\s/?#@]+([/?#]\\S*)?$";
/// A DNS-1123 subdomain (a certificate's host name).
pub(crate) const HOSTNAME_PATTERN: &str =
    "^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";

/// PEM labels of a public key (`-----BEGIN PUBLIC KEY-----`, PKIX, or
/// PKCS#1's `RSA PUBLIC KEY`), as containers/image reads them.
pub(crate) const PUBLIC_KEY_LABELS: &[&str] = &["PUBLIC KEY", "RSA PUBLIC KEY"];
/// The PEM label of certificate data.
pub(crate) const CERTIFICATE_LABELS: &[&str] = &["CERTIFICATE"];

/// A CEL string literal holding `text` (single-quoted, escaped).
fn literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('\'');
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            _ => out.push(c),
        }
    }
    out.push('\'');
    out
}

pub(crate) fn scopes_rule() -> Rule {
    Rule::new(format!(
        "self.all(s, s.matches({}))",
        literal(&scope_pattern())
    ))
    .message(
        "each scope must be host[:port], a repository namespace or repository under it, \
         repo:tag, repo@digest, or *.domain",
    )
}

/// `field` is present exactly when `discriminator` is `value`.
pub(crate) fn union_rule(discriminator: &str, value: &str, field: &str) -> Rule {
    Rule::new(format!(
        "self.{discriminator} == '{value}' ? has(self.{field}) : !has(self.{field})"
    ))
    .message(Message::Message(format!(
        "{field} is required when {discriminator} is {value}, and forbidden otherwise"
    )))
}

/// PEM text with one of `labels`: the first line its BEGIN line, the last
/// its END line. A `format: byte` field is bytes in CEL, already decoded
/// from base64 by the API server.
pub(crate) fn pem_rule(labels: &[&str]) -> Rule {
    let tests: Vec<String> = labels
        .iter()
        .map(|label| {
            format!(
                "(string(self).startsWith({}) && string(self).trim().endsWith({}))",
                literal(&format!("-----BEGIN {label}-----")),
                literal(&format!("-----END {label}-----"))
            )
        })
        .collect();
    Rule::new(tests.join(" || ")).message(Message::Message(pem_message(labels)))
}

/// What PEM data with `labels` must look like, for messages.
pub(crate) fn pem_message(labels: &[&str]) -> String {
    let headers: Vec<String> = labels
        .iter()
        .map(|label| format!("-----BEGIN {label}-----"))
        .collect();
    format!(
        "must be base64 of PEM data starting with {} and ending with its END line",
        headers.join(" or ")
    )
}

pub(crate) fn email_rule() -> Rule {
    Rule::new(format!("self.matches({})", literal(EMAIL_PATTERN)))
        .message("must be an email address")
}

pub(crate) fn url_rule() -> Rule {
    Rule::new(format!(
        "isURL(self) && self.matches({})",
        literal(URL_PATTERN)
    ))
    .message("must be an http or https URL")
}

pub(crate) fn hostname_rule() -> Rule {
    Rule::new(format!("self.matches({})", literal(HOSTNAME_PATTERN)))
        .message("must be a DNS-1123 subdomain")
}

pub(crate) fn subject_rule() -> Rule {
    Rule::new("has(self.email) || has(self.hostname)")
        .message("at least one of email and hostname is required")
}

pub(crate) fn repository_rule() -> Rule {
    Rule::new(format!("self.matches({})", literal(&repository_pattern())))
        .message("must be a repository with its registry host, without tag or digest")
}

pub(crate) fn prefix_rule() -> Rule {
    Rule::new(format!("self.matches({})", literal(&prefix_pattern()))).message(
        "must be a registry host, optionally with a repository namespace, without tag or digest",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_escape_quotes_and_backslashes() {
        assert_eq!(literal(r"a'b\c"), r"'a\'b\\c'");
    }
}
