//! URLs parsed and printed with the results of Go's `net/url`.
//!
//! containers/image reads a lookaside location with `url.Parse`, appends to the
//! parsed path and prints the result with `URL.String()`. Go's parser is far
//! more permissive than a WHATWG parser (the `url` crate): `/a/path` and
//! `a/relative/path` are URLs without a scheme, the path is never normalised
//! (`https://host/` plus `/repo` really is `https://host//repo`), and anything
//! after `scheme:` that does not start with `/` is an opaque string. Signature
//! locations must match containers/image byte for byte, so this module
//! reproduces that behaviour instead of approximating it.

use std::fmt;

/// Why Go's `url.Parse` refuses a string; the texts are Go's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ParseFailure {
    ControlCharacter,
    MissingScheme,
    ColonInFirstSegment,
    InvalidUserinfo,
    MissingBracket,
    InvalidPort(Vec<u8>),
    InvalidEscape(Vec<u8>),
    InvalidHostCharacter(Vec<u8>),
}

impl fmt::Display for ParseFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ControlCharacter => f.write_str("net/url: invalid control character in URL"),
            Self::MissingScheme => f.write_str("missing protocol scheme"),
            Self::ColonInFirstSegment => {
                f.write_str("first path segment in URL cannot contain colon")
            }
            Self::InvalidUserinfo => f.write_str("net/url: invalid userinfo"),
            Self::MissingBracket => f.write_str("missing ']' in host"),
            Self::InvalidPort(port) => write!(f, "invalid port {} after host", go_quote(port)),
            Self::InvalidEscape(text) => write!(f, "invalid URL escape {}", go_quote(text)),
            Self::InvalidHostCharacter(text) => {
                write!(f, "invalid character {} in host name", go_quote(text))
            }
        }
    }
}

/// A refused URL, displayed like Go's `*url.Error` from `url.Parse`:
/// `parse "<input>": <reason>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GoUrlError {
    input: String,
    failure: ParseFailure,
}

impl fmt::Display for GoUrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "parse {}: {}",
            go_quote(self.input.as_bytes()),
            self.failure
        )
    }
}

/// The escaping context of a URL component; each allows different bytes
/// unescaped (Go's `encoding` modes, minus the query modes nobody here uses).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Component {
    Path,
    Host,
    Zone,
    UserPassword,
    Fragment,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct UserInfo {
    username: Vec<u8>,
    password: Option<Vec<u8>>,
}

/// A URL with Go's field structure. Components that Go stores unescaped are
/// bytes here because `%FF` decodes to a byte that is not UTF-8.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GoUrl {
    scheme: String,
    opaque: String,
    user: Option<UserInfo>,
    host: Vec<u8>,
    path: Vec<u8>,
    /// The path as written, kept only when it differs from the default
    /// escaping of `path` (Go's `RawPath`).
    raw_path: Option<String>,
    omit_host: bool,
    force_query: bool,
    raw_query: String,
    fragment: Vec<u8>,
    raw_fragment: String,
}

impl GoUrl {
    fn empty() -> Self {
        Self {
            scheme: String::new(),
            opaque: String::new(),
            user: None,
            host: Vec::new(),
            path: Vec::new(),
            raw_path: None,
            omit_host: false,
            force_query: false,
            raw_query: String::new(),
            fragment: Vec::new(),
            raw_fragment: String::new(),
        }
    }

    /// `url.Parse`.
    pub(crate) fn parse(input: &str) -> Result<Self, GoUrlError> {
        let (before_fragment, fragment) = match input.split_once('#') {
            Some((before, fragment)) => (before, fragment),
            None => (input, ""),
        };
        let mut url = parse_reference(before_fragment).map_err(|failure| GoUrlError {
            input: before_fragment.to_owned(),
            failure,
        })?;
        if !fragment.is_empty() {
            url.fragment =
                unescape(fragment.as_bytes(), Component::Fragment).map_err(|failure| {
                    GoUrlError {
                        input: input.to_owned(),
                        failure,
                    }
                })?;
            url.raw_fragment = fragment.to_owned();
        }
        Ok(url)
    }

    /// The lowercased scheme, empty for a scheme-less reference.
    pub(crate) fn scheme(&self) -> &str {
        &self.scheme
    }

    /// Whether the URL is `scheme:rest` with `rest` not starting with `/`
    /// (Go's `Opaque`), where the path is not printed at all.
    pub(crate) fn is_opaque(&self) -> bool {
        !self.opaque.is_empty()
    }

    /// The decoded path.
    pub(crate) fn path(&self) -> &[u8] {
        &self.path
    }

    /// Appends to the decoded path, as containers/image does with
    /// `u.Path = u.Path + …`. The written form of the old path is dropped,
    /// exactly as Go's `EscapedPath` stops trusting a stale `RawPath`.
    pub(crate) fn append_to_path(&mut self, suffix: &str) {
        self.path.extend_from_slice(suffix.as_bytes());
        self.raw_path = None;
    }

    /// `URL.String()`: the full URL, including any password.
    pub(crate) fn to_unredacted_string(&self) -> String {
        self.render(false)
    }

    /// `URL.Redacted()`: the password, if any, replaced by `xxxxx`.
    pub(crate) fn to_redacted_string(&self) -> String {
        self.render(true)
    }

    fn render(&self, redact_password: bool) -> String {
        let mut out = String::new();
        if !self.scheme.is_empty() {
            out.push_str(&self.scheme);
            out.push(':');
        }
        if !self.opaque.is_empty() {
            out.push_str(&self.opaque);
        } else {
            if !self.scheme.is_empty() || !self.host.is_empty() || self.user.is_some() {
                let omit = self.omit_host && self.host.is_empty() && self.user.is_none();
                if !omit {
                    if !self.host.is_empty() || !self.path.is_empty() || self.user.is_some() {
                        out.push_str("//");
                    }
                    if let Some(user) = &self.user {
                        out.push_str(&escape(&user.username, Component::UserPassword));
                        if let Some(password) = &user.password {
                            out.push(':');
                            if redact_password {
                                out.push_str("xxxxx");
                            } else {
                                out.push_str(&escape(password, Component::UserPassword));
                            }
                        }
                        out.push('@');
                    }
                    out.push_str(&escape(&self.host, Component::Host));
                }
            }
            let path = self.escaped_path();
            if !path.is_empty() && !path.starts_with('/') && !self.host.is_empty() {
                out.push('/');
            }
            if out.is_empty() {
                // A relative reference whose first segment has a colon would
                // read back as a scheme.
                let first_segment = path.split('/').next().unwrap_or_default();
                if first_segment.contains(':') {
                    out.push_str("./");
                }
            }
            out.push_str(&path);
        }
        if self.force_query || !self.raw_query.is_empty() {
            out.push('?');
            out.push_str(&self.raw_query);
        }
        if !self.fragment.is_empty() {
            out.push('#');
            out.push_str(&self.escaped_fragment());
        }
        out
    }

    fn escaped_path(&self) -> String {
        if let Some(raw) = &self.raw_path
            && is_validly_encoded(raw.as_bytes(), Component::Path)
            && unescape(raw.as_bytes(), Component::Path).is_ok_and(|p| p == self.path)
        {
            return raw.clone();
        }
        if self.path == b"*" {
            return "*".to_owned();
        }
        escape(&self.path, Component::Path)
    }

    fn escaped_fragment(&self) -> String {
        let raw = self.raw_fragment.as_bytes();
        if is_validly_encoded(raw, Component::Fragment)
            && unescape(raw, Component::Fragment).is_ok_and(|f| f == self.fragment)
        {
            return self.raw_fragment.clone();
        }
        escape(&self.fragment, Component::Fragment)
    }
}

/// Go's `parse(rawURL, viaRequest=false)`: everything but the fragment.
fn parse_reference(input: &str) -> Result<GoUrl, ParseFailure> {
    if input.bytes().any(|b| b < b' ' || b == 0x7f) {
        return Err(ParseFailure::ControlCharacter);
    }
    let mut url = GoUrl::empty();
    if input == "*" {
        url.path = b"*".to_vec();
        return Ok(url);
    }
    let (scheme, rest) = split_scheme(input)?;
    url.scheme = scheme.to_ascii_lowercase();

    let mut rest = rest;
    if rest.ends_with('?') && rest.matches('?').count() == 1 {
        url.force_query = true;
        rest = &rest[..rest.len() - 1];
    } else if let Some((before, query)) = rest.split_once('?') {
        url.raw_query = query.to_owned();
        rest = before;
    }

    if !rest.starts_with('/') {
        if !url.scheme.is_empty() {
            url.opaque = rest.to_owned();
            return Ok(url);
        }
        let first_segment = rest.split('/').next().unwrap_or_default();
        if first_segment.contains(':') {
            return Err(ParseFailure::ColonInFirstSegment);
        }
    }

    if (!url.scheme.is_empty() || !rest.starts_with("///")) && rest.starts_with("//") {
        let after_slashes = &rest[2..];
        let (authority, path) = match after_slashes.find('/') {
            Some(slash) => after_slashes.split_at(slash),
            None => (after_slashes, ""),
        };
        let (user, host) = parse_authority(authority)?;
        url.user = user;
        url.host = host;
        rest = path;
    } else if !url.scheme.is_empty() && rest.starts_with('/') {
        url.omit_host = true;
    }

    url.path = unescape(rest.as_bytes(), Component::Path)?;
    if escape(&url.path, Component::Path) != rest {
        url.raw_path = Some(rest.to_owned());
    }
    Ok(url)
}

/// Splits `scheme:rest`. A string that does not start like a scheme has
/// none; a leading colon is an error.
fn split_scheme(input: &str) -> Result<(&str, &str), ParseFailure> {
    for (i, b) in input.bytes().enumerate() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' => {}
            b'0'..=b'9' | b'+' | b'-' | b'.' if i > 0 => {}
            b':' if i == 0 => return Err(ParseFailure::MissingScheme),
            b':' => return Ok((&input[..i], &input[i + 1..])),
            _ => return Ok(("", input)),
        }
    }
    Ok(("", input))
}

fn parse_authority(authority: &str) -> Result<(Option<UserInfo>, Vec<u8>), ParseFailure> {
    let Some(at) = authority.rfind('@') else {
        return Ok((None, parse_host(authority)?));
    };
    let host = parse_host(&authority[at + 1..])?;
    let userinfo = &authority[..at];
    if !userinfo.bytes().all(is_userinfo_byte) {
        return Err(ParseFailure::InvalidUserinfo);
    }
    let user = match userinfo.split_once(':') {
        None => UserInfo {
            username: unescape(userinfo.as_bytes(), Component::UserPassword)?,
            password: None,
        },
        Some((username, password)) => UserInfo {
            username: unescape(username.as_bytes(), Component::UserPassword)?,
            password: Some(unescape(password.as_bytes(), Component::UserPassword)?),
        },
    };
    Ok((Some(user), host))
}

fn is_userinfo_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.'
                | b'_'
                | b':'
                | b'~'
                | b'!'
                | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
                | b'%'
                | b'@'
        )
}

/// `host[:port]`, or an IPv6 literal in brackets with an optional zone.
fn parse_host(host: &str) -> Result<Vec<u8>, ParseFailure> {
    if host.starts_with('[') {
        let close = host.rfind(']').ok_or(ParseFailure::MissingBracket)?;
        let colon_port = &host[close + 1..];
        if !is_optional_port(colon_port) {
            return Err(ParseFailure::InvalidPort(colon_port.as_bytes().to_vec()));
        }
        if let Some(zone) = host[..close].find("%25") {
            let mut out = unescape(&host.as_bytes()[..zone], Component::Host)?;
            out.extend(unescape(&host.as_bytes()[zone..close], Component::Zone)?);
            out.extend(unescape(&host.as_bytes()[close..], Component::Host)?);
            return Ok(out);
        }
    } else if let Some(colon) = host.rfind(':') {
        let colon_port = &host[colon..];
        if !is_optional_port(colon_port) {
            return Err(ParseFailure::InvalidPort(colon_port.as_bytes().to_vec()));
        }
    }
    unescape(host.as_bytes(), Component::Host)
}

fn is_optional_port(colon_port: &str) -> bool {
    match colon_port.strip_prefix(':') {
        Some(digits) => digits.bytes().all(|b| b.is_ascii_digit()),
        None => colon_port.is_empty(),
    }
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Decodes `%XX` escapes, refusing what Go refuses for the component.
fn unescape(input: &[u8], component: Component) -> Result<Vec<u8>, ParseFailure> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        let b = input[i];
        if b == b'%' {
            let high = input.get(i + 1).copied().and_then(hex_value);
            let low = input.get(i + 2).copied().and_then(hex_value);
            let (Some(high), Some(low)) = (high, low) else {
                let end = input.len().min(i + 3);
                return Err(ParseFailure::InvalidEscape(input[i..end].to_vec()));
            };
            let escape_text = &input[i..i + 3];
            let decoded = high << 4 | low;
            let is_percent = escape_text == b"%25";
            // Hosts may only escape non-ASCII bytes (and `%25` for zones).
            if component == Component::Host && high < 8 && !is_percent {
                return Err(ParseFailure::InvalidEscape(escape_text.to_vec()));
            }
            if component == Component::Zone
                && !is_percent
                && decoded != b' '
                && should_escape(decoded, Component::Host)
            {
                return Err(ParseFailure::InvalidEscape(escape_text.to_vec()));
            }
            out.push(decoded);
            i += 3;
        } else {
            if matches!(component, Component::Host | Component::Zone)
                && b < 0x80
                && should_escape(b, component)
            {
                return Err(ParseFailure::InvalidHostCharacter(vec![b]));
            }
            out.push(b);
            i += 1;
        }
    }
    Ok(out)
}

/// Whether Go writes `b` as `%XX` in the given component.
fn should_escape(b: u8, component: Component) -> bool {
    if b.is_ascii_alphanumeric() {
        return false;
    }
    if matches!(component, Component::Host | Component::Zone)
        && matches!(
            b,
            b'!' | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
                | b':'
                | b'['
                | b']'
                | b'<'
                | b'>'
                | b'"'
        )
    {
        return false;
    }
    match b {
        b'-' | b'_' | b'.' | b'~' => return false,
        b'$' | b'&' | b'+' | b',' | b'/' | b':' | b';' | b'=' | b'?' | b'@' => match component {
            Component::UserPassword => return matches!(b, b'@' | b'/' | b'?' | b':'),
            Component::Fragment => return false,
            Component::Path => return b == b'?',
            Component::Host | Component::Zone => {}
        },
        _ => {}
    }
    if component == Component::Fragment && matches!(b, b'!' | b'(' | b')' | b'*') {
        return false;
    }
    true
}

fn escape(input: &[u8], component: Component) -> String {
    const UPPER_HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(input.len());
    for &b in input {
        if should_escape(b, component) {
            out.push('%');
            out.push(char::from(UPPER_HEX[usize::from(b >> 4)]));
            out.push(char::from(UPPER_HEX[usize::from(b & 0x0f)]));
        } else {
            // Only ASCII bytes are left unescaped.
            out.push(char::from(b));
        }
    }
    out
}

/// Go's `validEncoded`: whether a written component can be printed as is.
fn is_validly_encoded(input: &[u8], component: Component) -> bool {
    input.iter().all(|&b| {
        matches!(
            b,
            b'!' | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
                | b':'
                | b'@'
                | b'['
                | b']'
                | b'%'
        ) || !should_escape(b, component)
    })
}

/// Go's `strconv.Quote`, close enough for error messages: invalid UTF-8
/// bytes and control characters are escaped, printable text is kept.
pub(crate) fn go_quote(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() + 2);
    out.push('"');
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\u{7}' => out.push_str("\\a"),
                '\u{8}' => out.push_str("\\b"),
                '\u{c}' => out.push_str("\\f"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '\u{b}' => out.push_str("\\v"),
                c if u32::from(c) < 0x20 || c == '\u{7f}' => {
                    out.push_str(&format!("\\x{:02x}", u32::from(c)));
                }
                c if c.is_control() => {
                    let code = u32::from(c);
                    if code <= 0xffff {
                        out.push_str(&format!("\\u{code:04x}"));
                    } else {
                        out.push_str(&format!("\\U{code:08x}"));
                    }
                }
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests;
