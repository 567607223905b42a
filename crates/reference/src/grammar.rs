//! The reference grammar of the Docker distribution project, as regular
//! expressions. Go's `\w` is ASCII-only, so classes are spelled out.

use std::sync::LazyLock;

use regex::Regex;

const ALPHANUMERIC: &str = "[a-z0-9]+";
const SEPARATOR: &str = "(?:[._]|__|[-]*)";
const DOMAIN_COMPONENT: &str = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
const TAG: &str = "[0-9A-Za-z_][0-9A-Za-z_.-]{0,127}";
const DIGEST: &str = "[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][0-9A-Fa-f]{32,}";

fn name_component() -> String {
    format!("{ALPHANUMERIC}(?:{SEPARATOR}{ALPHANUMERIC})*")
}

fn domain() -> String {
    format!(r"{DOMAIN_COMPONENT}(?:\.{DOMAIN_COMPONENT})*(?::[0-9]+)?")
}

fn name() -> String {
    let component = name_component();
    format!("(?:{}/)?{component}(?:/{component})*", domain())
}

fn compile(pattern: &str) -> Regex {
    // The patterns are constants of this module; a failure is a bug caught by
    // every test, not a runtime condition.
    Regex::new(pattern).unwrap_or_else(|e| panic!("reference grammar does not compile: {e}"))
}

static REFERENCE: LazyLock<Regex> =
    LazyLock::new(|| compile(&format!("^({})(?::({TAG}))?(?:@({DIGEST}))?$", name())));
static ANCHORED_NAME: LazyLock<Regex> = LazyLock::new(|| {
    let component = name_component();
    compile(&format!(
        "^(?:({})/)?({component}(?:/{component})*)$",
        domain()
    ))
});
static ANCHORED_DOMAIN: LazyLock<Regex> = LazyLock::new(|| compile(&format!("^{}$", domain())));
static LEADING_DOMAIN: LazyLock<Regex> = LazyLock::new(|| compile(&format!("^{}/", domain())));
static ANCHORED_IDENTIFIER: LazyLock<Regex> = LazyLock::new(|| compile("^[a-f0-9]{64}$"));

pub(crate) struct ReferenceParts<'a> {
    pub(crate) name: &'a str,
    pub(crate) tag: Option<&'a str>,
    pub(crate) digest: Option<&'a str>,
}

/// Splits a whole reference into name, tag and digest, or `None` if it does
/// not match the grammar.
pub(crate) fn split_reference(input: &str) -> Option<ReferenceParts<'_>> {
    let captures = REFERENCE.captures(input)?;
    Some(ReferenceParts {
        name: captures.get(1)?.as_str(),
        tag: captures.get(2).map(|m| m.as_str()),
        digest: captures.get(3).map(|m| m.as_str()),
    })
}

/// Splits a repository name into its domain (possibly empty) and path.
pub(crate) fn split_name(name: &str) -> Option<(&str, &str)> {
    let captures = ANCHORED_NAME.captures(name)?;
    Some((
        captures.get(1).map_or("", |m| m.as_str()),
        captures.get(2)?.as_str(),
    ))
}

pub(crate) fn is_anchored_identifier(input: &str) -> bool {
    ANCHORED_IDENTIFIER.is_match(input)
}

pub(crate) fn is_anchored_domain(input: &str) -> bool {
    ANCHORED_DOMAIN.is_match(input)
}

pub(crate) fn is_anchored_name(input: &str) -> bool {
    ANCHORED_NAME.is_match(input)
}

pub(crate) fn starts_with_domain(input: &str) -> bool {
    LEADING_DOMAIN.is_match(input)
}
