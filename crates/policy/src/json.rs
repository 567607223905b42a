//! Strict JSON reading that remembers where every value came from.
//!
//! containers/image reads policy.json "paranoidly": duplicate keys, unknown
//! keys and trailing data are errors. serde's derived deserializers silently
//! keep the last duplicate and stop at the first problem, and lose positions.
//! Here every value stays a borrowed `RawValue` slice of the input, so a
//! problem can be reported with its line, column and path in the document,
//! and reading goes on so that `policy lint` can list every problem at once.

use std::borrow::Cow;
use std::fmt;

use base64::Engine as _;
use serde::de::{Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

/// One thing wrong with a document, located for a person to fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// 1-based line of the value the problem is about.
    pub line: usize,
    /// 1-based column (in characters) of that value.
    pub column: usize,
    /// Where the value sits, e.g. `transports.docker["quay.io"][0].keyPath`.
    pub path: String,
    /// What is wrong, in containers/image's words where it has some.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(
                f,
                "line {} column {}: {}",
                self.line, self.column, self.message
            )
        } else {
            write!(
                f,
                "line {} column {}: {}: {}",
                self.line, self.column, self.path, self.message
            )
        }
    }
}

/// A value of the document and the path that leads to it.
#[derive(Clone, Copy)]
pub(crate) struct Node<'a, 'p> {
    raw: &'a RawValue,
    path: &'p Path<'p>,
}

/// A path in the document as a linked list, so that descending costs no
/// allocation until a problem has to be reported.
pub(crate) enum Path<'p> {
    Root,
    Key(&'p Path<'p>, &'p str),
    Index(&'p Path<'p>, usize),
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Path::Root => Ok(()),
            Path::Key(parent, key) => {
                write!(f, "{parent}")?;
                let plain = !key.is_empty()
                    && key
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
                match (plain, matches!(parent, Path::Root)) {
                    (true, true) => write!(f, "{key}"),
                    (true, false) => write!(f, ".{key}"),
                    (false, _) => write!(f, "[{key:?}]"),
                }
            }
            Path::Index(parent, i) => write!(f, "{parent}[{i}]"),
        }
    }
}

/// What kind of JSON value a node holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Object,
    Array,
    String,
    Number,
    Bool,
    Null,
}

impl<'a, 'p> Node<'a, 'p> {
    pub(crate) fn kind(&self) -> Kind {
        match self.raw.get().as_bytes().first() {
            Some(b'{') => Kind::Object,
            Some(b'[') => Kind::Array,
            Some(b'"') => Kind::String,
            Some(b't' | b'f') => Kind::Bool,
            Some(b'n') => Kind::Null,
            _ => Kind::Number,
        }
    }

    pub(crate) fn raw(&self) -> &'a str {
        self.raw.get()
    }

    pub(crate) fn path(&self) -> &'p Path<'p> {
        self.path
    }

    pub(crate) fn is_null(&self) -> bool {
        self.kind() == Kind::Null
    }

    /// How Go's `%#v` prints the first token of this value, which is what
    /// containers/image puts in "JSON object expected, got …".
    fn go_token(&self) -> String {
        match self.kind() {
            Kind::Null => "<nil>".to_owned(),
            Kind::Array => "91".to_owned(),
            Kind::Object => "123".to_owned(),
            Kind::String | Kind::Number | Kind::Bool => self.raw.get().to_owned(),
        }
    }
}

/// The document being read and the problems found so far.
pub(crate) struct Reader<'a> {
    text: &'a str,
    problems: Vec<Problem>,
}

/// Object members in document order; the first of duplicated keys wins, the
/// others are reported.
pub(crate) struct Members<'a> {
    entries: Vec<(Cow<'a, str>, &'a RawValue)>,
}

impl<'a> Reader<'a> {
    /// Parses the whole text as one JSON value. Syntax errors (including data
    /// after the value) end reading at once, as no value can be trusted then.
    pub(crate) fn new(text: &'a str) -> Result<(Self, &'a RawValue), Problem> {
        let root: &'a RawValue = serde_json::from_str(text).map_err(|e| {
            let message = if e.to_string().starts_with("trailing characters") {
                "Unexpected data after JSON object".to_owned()
            } else if text.trim().is_empty() {
                "unexpected end of JSON input".to_owned()
            } else {
                strip_position(&e.to_string())
            };
            Problem {
                line: e.line().max(1),
                column: e.column().max(1),
                path: String::new(),
                message,
            }
        })?;
        Ok((
            Self {
                text,
                problems: Vec::new(),
            },
            root,
        ))
    }

    pub(crate) fn into_problems(self) -> Vec<Problem> {
        self.problems
    }

    pub(crate) fn has_problems(&self) -> bool {
        !self.problems.is_empty()
    }

    pub(crate) fn problem_count(&self) -> usize {
        self.problems.len()
    }

    pub(crate) fn root<'p>(raw: &'a RawValue, path: &'p Path<'p>) -> Node<'a, 'p> {
        Node { raw, path }
    }

    /// Records a problem about `node`.
    pub(crate) fn report(&mut self, node: &Node<'a, '_>, message: impl Into<String>) {
        let offset = (node.raw.get().as_ptr() as usize)
            .saturating_sub(self.text.as_ptr() as usize)
            .min(self.text.len());
        let before = self.text.get(..offset).unwrap_or_default();
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        self.problems.push(Problem {
            line,
            column,
            path: node.path.to_string(),
            message: message.into(),
        });
    }

    /// Reads an object, reporting duplicate keys. A non-object is reported
    /// with containers/image's "JSON object expected" wording.
    pub(crate) fn object(&mut self, node: &Node<'a, '_>) -> Option<Members<'a>> {
        if node.kind() != Kind::Object {
            let token = node.go_token();
            self.report(node, format!("JSON object expected, got {token}"));
            return None;
        }
        let entries = match EntriesSeed::parse(node.raw) {
            Ok(entries) => entries,
            Err(e) => {
                self.report(node, strip_position(&e.to_string()));
                return None;
            }
        };
        let mut kept: Vec<(Cow<'a, str>, &'a RawValue)> = Vec::with_capacity(entries.len());
        for (key, raw) in entries {
            if kept.iter().any(|(k, _)| *k == key) {
                let path = Path::Key(node.path, &key);
                let value = Node { raw, path: &path };
                self.report(&value, format!("Duplicate key {key:?}"));
            } else {
                kept.push((key, raw));
            }
        }
        Some(Members { entries: kept })
    }

    /// Deserializes a value that must be of kind `want`; a wrong kind is
    /// reported as "`what` must be <that kind>, got <this kind>".
    fn typed<T: serde::Deserialize<'a>>(
        &mut self,
        node: &Node<'a, '_>,
        want: Kind,
        what: &str,
    ) -> Option<T> {
        let kind = node.kind();
        if kind != want {
            let noun = match want {
                Kind::Array => "a JSON array",
                _ => kind_name(want),
            };
            self.report(
                node,
                format!("{what} must be {noun}, got {}", kind_name(kind)),
            );
            return None;
        }
        match serde_json::from_str::<T>(node.raw.get()) {
            Ok(value) => Some(value),
            Err(e) => {
                self.report(node, strip_position(&e.to_string()));
                None
            }
        }
    }

    /// Reads an array of values.
    pub(crate) fn array(&mut self, node: &Node<'a, '_>, what: &str) -> Option<Vec<&'a RawValue>> {
        self.typed(node, Kind::Array, what)
    }

    /// Reads a string. Go leaves a string untouched when it reads `null`, so
    /// `null` is the empty string here too.
    pub(crate) fn string(&mut self, node: &Node<'a, '_>, what: &str) -> Option<String> {
        if node.is_null() {
            return Some(String::new());
        }
        self.typed(node, Kind::String, what)
    }

    /// Reads an array whose items are read by `item`; `null` is "no array"
    /// (`Some(None)`), as Go reads it into a nil slice.
    fn list<T>(
        &mut self,
        node: &Node<'a, '_>,
        what: &str,
        mut item: impl FnMut(&mut Self, &Node<'a, '_>) -> Option<T>,
    ) -> Option<Option<Vec<T>>> {
        if node.is_null() {
            return Some(None);
        }
        let raws = self.array(node, what)?;
        let mut out = Vec::with_capacity(raws.len());
        let mut ok = true;
        for (i, raw) in raws.into_iter().enumerate() {
            let path = Path::Index(node.path, i);
            match item(self, &Node { raw, path: &path }) {
                Some(value) => out.push(value),
                None => ok = false,
            }
        }
        ok.then_some(Some(out))
    }

    /// Reads an array of strings; `null` is "no array" (`Some(None)`).
    pub(crate) fn strings(
        &mut self,
        node: &Node<'a, '_>,
        what: &str,
    ) -> Option<Option<Vec<String>>> {
        self.list(node, what, |r, item| r.string(item, what))
    }

    /// Reads base64 bytes the way Go's encoding/json does (standard alphabet,
    /// padding required, CR and LF ignored); `null` is "no bytes".
    pub(crate) fn bytes(&mut self, node: &Node<'a, '_>, what: &str) -> Option<Option<Vec<u8>>> {
        if node.is_null() {
            return Some(None);
        }
        let text = self.string(node, what)?;
        match decode_go_base64(&text) {
            Ok(bytes) => Some(Some(bytes)),
            Err(message) => {
                self.report(node, message);
                None
            }
        }
    }

    /// Reads an array of base64 strings; `null` is "no array".
    pub(crate) fn bytes_list(
        &mut self,
        node: &Node<'a, '_>,
        what: &str,
    ) -> Option<Option<Vec<Vec<u8>>>> {
        self.list(node, what, |r, item| {
            r.bytes(item, what).map(Option::unwrap_or_default)
        })
    }
}

impl<'a> Members<'a> {
    /// Visits each member with its node; unknown keys are the visitor's call.
    pub(crate) fn for_each<'p>(
        &self,
        parent: &'p Path<'p>,
        mut visit: impl FnMut(&str, Node<'a, '_>),
    ) {
        for (key, raw) in &self.entries {
            let path = Path::Key(parent, key);
            visit(key, Node { raw, path: &path });
        }
    }

    pub(crate) fn contains(&self, key: &str) -> bool {
        self.entries.iter().any(|(k, _)| k == key)
    }

    pub(crate) fn get(&self, key: &str) -> Option<&'a RawValue> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| *v)
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn keys(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|(k, _)| k.as_ref())
    }
}

/// Builds a child node; the caller owns the path storage.
pub(crate) fn child<'a, 'p>(raw: &'a RawValue, path: &'p Path<'p>) -> Node<'a, 'p> {
    Node { raw, path }
}

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Object => "an object",
        Kind::Array => "an array",
        Kind::String => "a string",
        Kind::Number => "a number",
        Kind::Bool => "a boolean",
        Kind::Null => "null",
    }
}

/// serde_json appends " at line L column C" relative to the sub-slice it was
/// given, which would mislead; the caller reports the real position.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

/// Go's `encoding/json` base64 for `[]byte`: standard alphabet with padding,
/// with CR and LF skipped wherever they appear.
pub(crate) fn decode_go_base64(text: &str) -> Result<Vec<u8>, String> {
    let cleaned: String = text.chars().filter(|c| *c != '\r' && *c != '\n').collect();
    base64::engine::general_purpose::STANDARD
        .decode(cleaned.as_bytes())
        .map_err(|e| {
            let offset = match e {
                base64::DecodeError::InvalidByte(i, _)
                | base64::DecodeError::InvalidLastSymbol(i, _) => i,
                base64::DecodeError::InvalidLength(len) => len,
                base64::DecodeError::InvalidPadding => cleaned.len(),
            };
            format!("illegal base64 data at input byte {offset}")
        })
}

/// Deserializes an object into its members in order, keeping duplicates so
/// that they can be reported.
struct EntriesSeed;

impl EntriesSeed {
    fn parse(raw: &RawValue) -> Result<Vec<(Cow<'_, str>, &RawValue)>, serde_json::Error> {
        let mut de = serde_json::Deserializer::from_str(raw.get());
        de.deserialize_map(EntriesVisitor)
    }
}

struct EntriesVisitor;

impl<'de> Visitor<'de> for EntriesVisitor {
    type Value = Vec<(Cow<'de, str>, &'de RawValue)>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            let value: &'de RawValue = map.next_value()?;
            entries.push((key, value));
        }
        Ok(entries)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, _seq: A) -> Result<Self::Value, A::Error> {
        Err(serde::de::Error::custom("JSON object expected"))
    }
}
