//! registries.conf (containers-registries.conf(5), version 2): which
//! `[[registry]]` table applies to an image, the mirrors to try and where
//! the reference is rewritten to, `insecure` and `blocked`.
//!
//! Only fetching is affected. The policy scope, and the identity signatures
//! must match, stay those of the reference the user asked for; a mirror or a
//! rewritten `location` only changes where the bytes come from (and which
//! registries.d scope gives their lookaside location).
//!
//! Short names are not resolved here (CRI-O receives fully qualified
//! references from the kubelet), so `unqualified-search-registries`,
//! `short-name-mode`, `[aliases]`, `credential-helpers` and every other key
//! outside `[[registry]]` are accepted and ignored.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use criguard_reference::Reference;
use serde::Deserialize;

use crate::Error;
use crate::config_file::{check_size, read_limited};
use crate::go_url::{GoUrl, go_quote};

/// The merged registries.conf and drop-ins: one [`Registry`] per prefix,
/// sorted by prefix.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegistriesConf {
    registries: Vec<Registry>,
}

/// One `[[registry]]` table, after defaults and validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registry {
    prefix: String,
    location: String,
    insecure: bool,
    blocked: bool,
    mirror_by_digest_only: bool,
    proxy: Option<String>,
    mirrors: Vec<Mirror>,
    file: String,
}

/// One `[[registry.mirror]]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mirror {
    location: String,
    insecure: bool,
    pull_from_mirror: PullFromMirror,
    proxy: Option<String>,
}

/// Which pulls a mirror serves (`pull-from-mirror`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PullFromMirror {
    /// Tag and digest pulls (also what an empty value means).
    #[default]
    All,
    /// Only pulls by digest, where a stale mirror cannot serve other content.
    DigestOnly,
    /// Only pulls by tag.
    TagOnly,
}

/// One place to try pulling an image from, in the order they are tried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullSource {
    reference: Reference,
    insecure: bool,
    mirror: bool,
    proxy: Option<String>,
}

impl PullSource {
    /// The reference to fetch (the "physical" reference): rewritten to the
    /// mirror's or the registry's `location`. Use it for the registry
    /// request and for registries.d, never for the policy scope.
    pub fn reference(&self) -> &Reference {
        &self.reference
    }

    /// Whether plain HTTP and unverified TLS certificates are allowed.
    pub fn insecure(&self) -> bool {
        self.insecure
    }

    pub fn is_mirror(&self) -> bool {
        self.mirror
    }

    /// The forwarding proxy URL for this endpoint, if one is configured.
    pub fn proxy(&self) -> Option<&str> {
        self.proxy.as_deref()
    }
}

impl Registry {
    /// What image names are matched against: a host, namespace, repository
    /// or image, or `*.domain`.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Where the prefix is served from; empty only for a `*.domain` prefix,
    /// where references are not rewritten.
    pub fn location(&self) -> &str {
        &self.location
    }

    pub fn insecure(&self) -> bool {
        self.insecure
    }

    pub fn blocked(&self) -> bool {
        self.blocked
    }

    pub fn mirror_by_digest_only(&self) -> bool {
        self.mirror_by_digest_only
    }

    pub fn proxy(&self) -> Option<&str> {
        self.proxy.as_deref()
    }

    pub fn mirrors(&self) -> &[Mirror] {
        &self.mirrors
    }

    /// The file this table was read from.
    pub fn file(&self) -> &str {
        &self.file
    }

    /// Mirrors that serve this kind of pull, then the primary location, each
    /// with `reference` rewritten for it.
    fn candidate_sources(&self, reference: &Reference) -> Result<Vec<PullSource>, Error> {
        let by_digest = reference.digest().is_some();
        let serving_mirrors = self.mirrors.iter().filter(|mirror| {
            if self.mirror_by_digest_only {
                return by_digest;
            }
            match mirror.pull_from_mirror {
                PullFromMirror::All => true,
                PullFromMirror::DigestOnly => by_digest,
                PullFromMirror::TagOnly => !by_digest,
            }
        });
        let mut sources = Vec::new();
        for mirror in serving_mirrors {
            sources.push(PullSource {
                reference: rewrite(reference, &self.prefix, &mirror.location)?,
                insecure: mirror.insecure,
                mirror: true,
                proxy: mirror.proxy.clone(),
            });
        }
        sources.push(PullSource {
            reference: rewrite(reference, &self.prefix, &self.location)?,
            insecure: self.insecure,
            mirror: false,
            proxy: self.proxy.clone(),
        });
        Ok(sources)
    }
}

impl Mirror {
    pub fn location(&self) -> &str {
        &self.location
    }

    pub fn insecure(&self) -> bool {
        self.insecure
    }

    pub fn pull_from_mirror(&self) -> PullFromMirror {
        self.pull_from_mirror
    }

    pub fn proxy(&self) -> Option<&str> {
        self.proxy.as_deref()
    }
}

impl RegistriesConf {
    /// Parses registries.conf followed by its drop-ins, given as (name for
    /// messages, contents) in loading order. A later file's table replaces
    /// an earlier one with the same prefix; tables are otherwise kept.
    pub fn from_files<I>(files: I) -> Result<Self, Error>
    where
        I: IntoIterator<Item = (String, Vec<u8>)>,
    {
        let mut by_prefix: BTreeMap<String, Registry> = BTreeMap::new();
        for (name, contents) in files {
            for registry in parse_file(&name, &contents)? {
                by_prefix.insert(registry.prefix.clone(), registry);
            }
        }
        Ok(Self {
            registries: by_prefix.into_values().collect(),
        })
    }

    /// Reads `conf_file`, then every `*.conf` file of `drop_in_dir` in name
    /// order. Either may be missing, as on a host with no configuration;
    /// anything else that cannot be read is an error.
    pub fn load(conf_file: &Path, drop_in_dir: Option<&Path>) -> Result<Self, Error> {
        let mut files = Vec::new();
        let mut push_if_present = |path: &Path| -> Result<(), Error> {
            match read_limited(path) {
                Ok(contents) => files.push((path.display().to_string(), contents)),
                Err(Error::Read { source, .. })
                    if source.kind() == std::io::ErrorKind::NotFound => {}
                Err(err) => return Err(err),
            }
            Ok(())
        };
        push_if_present(conf_file)?;
        if let Some(dir) = drop_in_dir {
            for path in drop_in_paths(dir)? {
                push_if_present(&path)?;
            }
        }
        Self::from_files(files)
    }

    /// Every table, sorted by prefix.
    pub fn registries(&self) -> &[Registry] {
        &self.registries
    }

    /// The table with the longest prefix matching `image`, which is a host,
    /// repository or image name starting with an explicit host (use
    /// [`Reference::name`] for a pull, as containers/image does; a prefix
    /// with a tag therefore never matches a pull).
    pub fn find_registry(&self, image: &str) -> Option<&Registry> {
        let mut best: Option<&Registry> = None;
        for registry in &self.registries {
            if matching_prefix_len(image, &registry.prefix).is_some()
                && registry.prefix.len() > best.map_or(0, |b| b.prefix.len())
            {
                best = Some(registry);
            }
        }
        best
    }

    /// Where to try pulling `reference` from, in order: the mirrors that
    /// serve this kind of pull (by tag or by digest), then the primary
    /// location. Without a matching table that is `reference` itself.
    ///
    /// `blocked` is judged per source on the reference actually fetched, as
    /// containers/image does: a blocked registry's mirrors stay usable
    /// (which is how "never contact the source" is configured), and a source
    /// whose location is in a blocked registry is dropped. If no source is
    /// left, the error names the registry that blocks the primary location.
    pub fn pull_sources(&self, reference: &Reference) -> Result<Vec<PullSource>, Error> {
        let candidates = match self.find_registry(reference.name()) {
            Some(registry) => registry.candidate_sources(reference)?,
            None => vec![PullSource {
                reference: reference.clone(),
                insecure: false,
                mirror: false,
                proxy: None,
            }],
        };
        let mut allowed = Vec::with_capacity(candidates.len());
        let mut blocked = None;
        for source in candidates {
            match self.find_registry(source.reference.name()) {
                Some(registry) if registry.blocked => {
                    blocked = Some(Error::RegistryBlocked {
                        registry: registry.prefix.clone(),
                        file: registry.file.clone(),
                    });
                }
                _ => allowed.push(source),
            }
        }
        match blocked {
            Some(err) if allowed.is_empty() => Err(err),
            _ => Ok(allowed),
        }
    }
}

fn drop_in_paths(dir: &Path) -> Result<Vec<std::path::PathBuf>, Error> {
    let read_error = |source| Error::Read {
        path: dir.display().to_string(),
        source,
    };
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(read_error(err)),
    };
    let mut paths = Vec::new();
    for entry in entries {
        let entry = entry.map_err(read_error)?;
        let is_dir = entry.file_type().map_err(read_error)?.is_dir();
        if !is_dir && entry.file_name().as_encoded_bytes().ends_with(b".conf") {
            paths.push(entry.path());
        }
    }
    paths.sort();
    Ok(paths)
}

/// The length of the part of `image` that `prefix` matches, if it does.
///
/// A plain prefix must be followed by `:`, `/`, `@` or the end (so
/// `example.com` also matches `example.com:5000`, an upstream accident kept
/// for compatibility). A `*.domain` prefix matches a host ending in
/// `.domain`, whatever its port, and the match ends with the host.
fn matching_prefix_len(image: &str, prefix: &str) -> Option<usize> {
    if prefix.starts_with("*.") {
        let domain_suffix = &prefix[1..];
        let start = image.find(domain_suffix)?;
        if image[..start].contains('/') {
            return None;
        }
        let end = start + domain_suffix.len();
        return match image.as_bytes().get(end) {
            None | Some(b':' | b'/' | b'@') => Some(end),
            Some(_) => None,
        };
    }
    let rest = image.strip_prefix(prefix)?;
    match rest.as_bytes().first() {
        None | Some(b':' | b'/' | b'@') => Some(prefix.len()),
        Some(_) => None,
    }
}

/// `reference` with the part matched by `prefix` replaced by `location`;
/// unchanged for an empty location (only allowed with `*.domain` prefixes).
fn rewrite(reference: &Reference, prefix: &str, location: &str) -> Result<Reference, Error> {
    let text = reference.to_string();
    let Some(matched) = matching_prefix_len(&text, prefix) else {
        return Err(Error::PrefixMismatch {
            prefix: prefix.to_owned(),
            reference: text,
        });
    };
    if location.is_empty() {
        return Ok(reference.clone());
    }
    let rewritten = format!("{location}{}", &text[matched..]);
    Reference::parse_canonical(&rewritten).map_err(|source| Error::RewriteReference {
        reference: text,
        rewritten,
        source,
    })
}

/// One registries.conf file as written; unknown keys are ignored, as Go's
/// TOML decoder does.
#[derive(Deserialize)]
#[serde(expecting = "a table of registries.conf settings")]
struct FileContents {
    #[serde(default)]
    registry: Vec<RegistryContents>,
    registries: Option<V1Contents>,
}

#[derive(Deserialize)]
#[serde(expecting = "a [[registry]] table")]
struct RegistryContents {
    #[serde(default)]
    prefix: String,
    #[serde(default)]
    location: String,
    #[serde(default)]
    insecure: bool,
    #[serde(default)]
    blocked: bool,
    #[serde(default, rename = "mirror-by-digest-only")]
    mirror_by_digest_only: bool,
    #[serde(default, rename = "pull-from-mirror")]
    pull_from_mirror: String,
    #[serde(default)]
    proxy: String,
    #[serde(default)]
    mirror: Vec<MirrorContents>,
}

#[derive(Deserialize)]
#[serde(expecting = "a [[registry.mirror]] table")]
struct MirrorContents {
    #[serde(default)]
    location: String,
    #[serde(default)]
    insecure: bool,
    #[serde(default, rename = "pull-from-mirror")]
    pull_from_mirror: String,
    #[serde(default)]
    proxy: String,
}

/// The deprecated `[registries.search]`, `[registries.insecure]` and
/// `[registries.block]` lists; a file using any of them is refused.
#[derive(Deserialize)]
struct V1Contents {
    search: Option<V1List>,
    insecure: Option<V1List>,
    block: Option<V1List>,
}

#[derive(Deserialize)]
struct V1List {
    registries: Option<Vec<String>>,
}

impl V1Contents {
    fn is_used(&self) -> bool {
        [&self.search, &self.insecure, &self.block]
            .into_iter()
            .flatten()
            .any(|list| list.registries.is_some())
    }
}

fn parse_file(name: &str, contents: &[u8]) -> Result<Vec<Registry>, Error> {
    check_size(name, contents)?;
    let parsed: FileContents = toml::from_slice(contents).map_err(|err| Error::Syntax {
        file: name.to_owned(),
        message: describe_toml_error(contents, &err),
    })?;
    if parsed.registries.as_ref().is_some_and(V1Contents::is_used) {
        return Err(Error::RegistriesConfV1 {
            file: name.to_owned(),
        });
    }
    validate(name, parsed.registry).map_err(|message| Error::InvalidRegistriesConf {
        file: name.to_owned(),
        message,
    })
}

/// One line: the TOML crate's own rendering spans several.
fn describe_toml_error(contents: &[u8], err: &toml::de::Error) -> String {
    let message = err.message().trim_end();
    let Some(span) = err.span() else {
        return message.to_owned();
    };
    let before = contents.get(..span.start).unwrap_or(contents);
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let column = before.iter().rev().take_while(|&&b| b != b'\n').count() + 1;
    format!("line {line}, column {column}: {message}")
}

/// Applies defaults and upstream's consistency rules to one file's tables;
/// the messages are containers/image's.
fn validate(file: &str, tables: Vec<RegistryContents>) -> Result<Vec<Registry>, String> {
    let mut registries = Vec::with_capacity(tables.len());
    for table in tables {
        let location = parse_location(&table.location)?;
        let prefix = if table.prefix.is_empty() {
            if location.is_empty() {
                return Err("invalid condition: both location and prefix are unset".to_owned());
            }
            location.clone()
        } else {
            let prefix = parse_location(&table.prefix)?;
            if !prefix.starts_with("*.") && location.is_empty() {
                return Err(
                    "invalid condition: location is unset and prefix is not in the format: *.example.com"
                        .to_owned(),
                );
            }
            prefix
        };
        let proxy = parse_proxy(&table.proxy)?;
        if !table.pull_from_mirror.is_empty() {
            return Err(format!(
                "pull-from-mirror must not be set for a non-mirror registry {}",
                go_quote(prefix.as_bytes())
            ));
        }
        let mut mirrors = Vec::with_capacity(table.mirror.len());
        for mirror in table.mirror {
            let mirror_location = parse_location(&mirror.location)?;
            if mirror_location.is_empty() {
                return Err("invalid condition: mirror location is unset".to_owned());
            }
            let mirror_proxy = parse_proxy(&mirror.proxy)?;
            if table.mirror_by_digest_only && !mirror.pull_from_mirror.is_empty() {
                return Err(format!(
                    "cannot set mirror usage mirror-by-digest-only for the registry ({}) and pull-from-mirror for per-mirror ({}) at the same time",
                    go_quote(prefix.as_bytes()),
                    go_quote(mirror_location.as_bytes())
                ));
            }
            let pull_from_mirror = match mirror.pull_from_mirror.as_str() {
                "" | "all" => PullFromMirror::All,
                "digest-only" => PullFromMirror::DigestOnly,
                "tag-only" => PullFromMirror::TagOnly,
                other => {
                    return Err(format!(
                        "unsupported pull-from-mirror value {} for mirror {}",
                        go_quote(other.as_bytes()),
                        go_quote(mirror_location.as_bytes())
                    ));
                }
            };
            mirrors.push(Mirror {
                location: mirror_location,
                insecure: mirror.insecure,
                pull_from_mirror,
                proxy: mirror_proxy,
            });
        }
        registries.push(Registry {
            prefix,
            location,
            insecure: table.insecure,
            blocked: table.blocked,
            mirror_by_digest_only: table.mirror_by_digest_only,
            proxy,
            mirrors,
            file: file.to_owned(),
        });
    }

    check_conflicts(&registries)?;

    for registry in &registries {
        if registry.prefix.starts_with("*.") && registry.prefix.contains(['/', '@', ':']) {
            return Err(format!(
                "Wildcarded prefix should be in the format: *.example.com. Current prefix {} is incorrectly formatted",
                go_quote(registry.prefix.as_bytes())
            ));
        }
    }

    // The first table with a given prefix wins; later ones are unreachable.
    let mut by_prefix: BTreeMap<String, Registry> = BTreeMap::new();
    for registry in registries {
        by_prefix.entry(registry.prefix.clone()).or_insert(registry);
    }
    Ok(by_prefix.into_values().collect())
}

/// Tables for the same location (or the same `*.domain` prefix) must agree
/// on the settings that apply to the connection itself.
fn check_conflicts(registries: &[Registry]) -> Result<(), String> {
    let mut by_location: HashMap<&str, Vec<&Registry>> = HashMap::new();
    for registry in registries {
        by_location
            .entry(location_key(registry))
            .or_default()
            .push(registry);
    }
    for registry in registries {
        let others = by_location
            .get(location_key(registry))
            .map(Vec::as_slice)
            .unwrap_or_default();
        for other in others {
            let conflict = if registry.insecure != other.insecure {
                Some("insecure")
            } else if registry.proxy != other.proxy {
                Some("proxy")
            } else if registry.blocked != other.blocked {
                Some("blocked")
            } else {
                None
            };
            if let Some(setting) = conflict {
                return Err(format!(
                    "registry '{}' is defined multiple times with conflicting '{setting}' setting",
                    registry.location
                ));
            }
        }
    }
    Ok(())
}

fn location_key(registry: &Registry) -> &str {
    if registry.location.is_empty() {
        &registry.prefix
    } else {
        &registry.location
    }
}

/// Trailing slashes are dropped; URLs are refused because a location is a
/// reference prefix, not an address.
fn parse_location(input: &str) -> Result<String, String> {
    let trimmed = input.trim_end_matches('/');
    if trimmed.starts_with("http://") || trimmed.starts_with("https://") {
        return Err(format!(
            "invalid location '{input}': URI schemes are not supported"
        ));
    }
    Ok(trimmed.to_owned())
}

fn parse_proxy(input: &str) -> Result<Option<String>, String> {
    if input.is_empty() {
        return Ok(None);
    }
    let url = GoUrl::parse(input)
        .map_err(|err| format!("parsing proxy URL {}: {err}", go_quote(input.as_bytes())))?;
    if !matches!(url.scheme(), "http" | "https" | "socks5" | "socks5h") {
        return Err(format!(
            "proxy URL scheme \"{}\" is not supported. Supported are http, https, socks5, socks5h",
            url.scheme()
        ));
    }
    Ok(Some(input.to_owned()))
}

#[cfg(test)]
mod tests;
