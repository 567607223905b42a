//! registries.d (containers-registries.d(5)): per-scope lookaside locations
//! for simple signatures and the switch for sigstore attachments.
//!
//! Resolve with the reference that is actually fetched: when registries.conf
//! sends a pull to a mirror, containers/image looks registries.d up with the
//! mirror's (physical) reference, while the policy scope keeps using the
//! reference the user asked for.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use criguard_reference::Reference;
use serde::Deserialize;
use serde::de::{self, MapAccess, Visitor};

use crate::Error;
use crate::config_file::{check_size, read_limited};
use crate::go_url::GoUrl;
use crate::lookaside::LookasideBase;

/// Where signatures are read from when nothing is configured. containers/image
/// uses this for euid 0 and a directory under `$HOME` otherwise; criguard runs
/// next to CRI-O, as root, so only this one applies.
pub const DEFAULT_LOOKASIDE: &str = "file:///var/lib/containers/sigstore";

/// Whether a lookaside location is wanted for reading signatures or for
/// writing them; writers prefer the `*-staging` locations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LookasideAccess {
    Read,
    Write,
}

/// The settings of one `docker` scope, or of `default-docker`.
///
/// Empty strings count as unset, as in upstream, where a missing key and
/// `lookaside: ""` are indistinguishable.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScopeSettings {
    lookaside: String,
    lookaside_staging: String,
    sigstore: String,
    sigstore_staging: String,
    use_sigstore_attachments: Option<bool>,
    sigstore_bundles: Option<bool>,
}

impl ScopeSettings {
    pub fn lookaside(&self) -> Option<&str> {
        non_empty(&self.lookaside)
    }

    pub fn lookaside_staging(&self) -> Option<&str> {
        non_empty(&self.lookaside_staging)
    }

    /// The deprecated spelling of `lookaside`, used only when that is unset.
    pub fn sigstore(&self) -> Option<&str> {
        non_empty(&self.sigstore)
    }

    /// The deprecated spelling of `lookaside-staging`.
    pub fn sigstore_staging(&self) -> Option<&str> {
        non_empty(&self.sigstore_staging)
    }

    /// `None` when the key is absent, so that a more general scope decides.
    pub fn use_sigstore_attachments(&self) -> Option<bool> {
        self.use_sigstore_attachments
    }

    /// criguard's `criguard-sigstore-bundles`; `None` when absent.
    pub fn sigstore_bundles(&self) -> Option<bool> {
        self.sigstore_bundles
    }

    /// The location this section alone gives for `access`: for writing
    /// `lookaside-staging`, `sigstore-staging`, then the reading locations;
    /// for reading `lookaside`, then `sigstore`.
    pub fn lookaside_for(&self, access: LookasideAccess) -> Option<&str> {
        let staging = match access {
            LookasideAccess::Write => self.lookaside_staging().or(self.sigstore_staging()),
            LookasideAccess::Read => None,
        };
        staging.or(self.lookaside()).or(self.sigstore())
    }
}

fn non_empty(value: &str) -> Option<&str> {
    (!value.is_empty()).then_some(value)
}

/// The merged contents of a registries.d directory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegistriesD {
    default_docker: Option<ScopeSettings>,
    docker: BTreeMap<String, ScopeSettings>,
}

impl RegistriesD {
    /// Parses and merges registries.d files, given as (name for messages,
    /// contents) in the order they are merged. Every scope, and
    /// `default-docker`, may be defined by one file only, so the order only
    /// changes which file an error names first.
    pub fn from_files<I>(files: I) -> Result<Self, Error>
    where
        I: IntoIterator<Item = (String, Vec<u8>)>,
    {
        let mut merged = Self::default();
        let mut default_docker_origin: Option<String> = None;
        let mut scope_origins: BTreeMap<String, String> = BTreeMap::new();
        for (name, contents) in files {
            let file = parse_file(&name, &contents)?;
            if let Some(section) = file.default_docker {
                if let Some(first) = &default_docker_origin {
                    return Err(Error::DuplicateDefaultDocker {
                        first: first.clone(),
                        second: name,
                    });
                }
                merged.default_docker = Some(section.into_settings());
                default_docker_origin = Some(name.clone());
            }
            for (scope, section) in file.docker.map(|map| map.entries).unwrap_or_default() {
                if let Some(first) = scope_origins.get(&scope) {
                    return Err(Error::DuplicateDockerNamespace {
                        namespace: scope,
                        first: first.clone(),
                        second: name,
                    });
                }
                scope_origins.insert(scope.clone(), name.clone());
                merged.docker.insert(scope, section.into_settings());
            }
        }
        Ok(merged)
    }

    /// Reads every `*.yaml` file of `dir`, in name order; other files are
    /// ignored. A directory that does not exist is an empty configuration,
    /// as upstream; anything else that cannot be read is an error.
    pub fn load_dir(dir: &Path) -> Result<Self, Error> {
        let read_error = |path: &Path, source| Error::Read {
            path: path.display().to_string(),
            source,
        };
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(err) => return Err(read_error(dir, err)),
        };
        let mut paths = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|err| read_error(dir, err))?;
            if entry.file_name().as_encoded_bytes().ends_with(b".yaml") {
                paths.push(entry.path());
            }
        }
        paths.sort();
        let mut files = Vec::with_capacity(paths.len());
        for path in paths {
            match read_limited(&path) {
                Ok(contents) => files.push((path.display().to_string(), contents)),
                // Removed since the directory was listed: not an error upstream.
                Err(Error::Read { source, .. })
                    if source.kind() == std::io::ErrorKind::NotFound => {}
                Err(err) => return Err(err),
            }
        }
        Self::from_files(files)
    }

    pub fn default_docker(&self) -> Option<&ScopeSettings> {
        self.default_docker.as_ref()
    }

    /// The settings written for exactly this `docker` scope.
    pub fn docker_scope(&self, scope: &str) -> Option<&ScopeSettings> {
        self.docker.get(scope)
    }

    /// Every `docker` scope, in name order.
    pub fn docker_scopes(&self) -> impl Iterator<Item = (&str, &ScopeSettings)> {
        self.docker
            .iter()
            .map(|(scope, settings)| (scope.as_str(), settings))
    }

    /// The sections that apply to `reference`, most specific first: its
    /// identity (`name:tag` or `name@digest`, when it has one), each
    /// enclosing namespace, then `default-docker`.
    fn sections_for<'a>(
        &'a self,
        reference: &Reference,
    ) -> impl Iterator<Item = &'a ScopeSettings> + 'a {
        let identity = reference.policy_identity().ok();
        let scopes = identity.into_iter().chain(reference.policy_namespaces());
        let docker = &self.docker;
        scopes
            .filter_map(move |scope| docker.get(&scope))
            .chain(self.default_docker.as_ref())
    }

    /// The configured lookaside location for `reference`, or `None` when
    /// nothing applies (the built-in default is then used).
    ///
    /// Each field falls through on its own: a scope that sets only
    /// `lookaside-staging` does not hide the `lookaside` of a more general
    /// scope from readers. This is what containers/image does, although its
    /// man page says only the most specific scope is used.
    pub fn configured_lookaside(
        &self,
        reference: &Reference,
        access: LookasideAccess,
    ) -> Option<&str> {
        self.sections_for(reference)
            .find_map(|section| section.lookaside_for(access))
    }

    /// The lookaside directory of `reference`'s repository: the configured
    /// location (or [`DEFAULT_LOOKASIDE`]) with `/` and the repository path
    /// without host appended (`library/busybox`). Pass the reference that
    /// is fetched, which is the mirror's when a mirror is used.
    pub fn lookaside_base(
        &self,
        reference: &Reference,
        access: LookasideAccess,
    ) -> Result<LookasideBase, Error> {
        let configured = self.configured_lookaside(reference, access);
        let text = configured.unwrap_or(DEFAULT_LOOKASIDE);
        let mut url = GoUrl::parse(text).map_err(|err| Error::InvalidLookasideUrl {
            url: text.to_owned(),
            reason: err.to_string(),
        })?;
        // Reference paths cannot contain `.` or `..` components, so this
        // cannot climb out of the base directory.
        url.append_to_path(&format!("/{}", reference.path()));
        Ok(LookasideBase::new(url))
    }

    /// Whether to look for sigstore signatures attached to the image in its
    /// registry: the first applicable section that sets the key decides;
    /// `false` if none does.
    pub fn use_sigstore_attachments(&self, reference: &Reference) -> bool {
        self.sections_for(reference)
            .find_map(ScopeSettings::use_sigstore_attachments)
            .unwrap_or(false)
    }

    /// Whether to look for sigstore bundles (cosign 3's signatures, OCI
    /// referrers of the image) for `reference`: criguard's extension,
    /// `criguard-sigstore-bundles: true`, which containers/image ignores
    /// as it ignores every key it does not know. The first applicable
    /// section that sets it decides; `false` if none does.
    pub fn sigstore_bundles(&self, reference: &Reference) -> bool {
        self.sections_for(reference)
            .find_map(ScopeSettings::sigstore_bundles)
            .unwrap_or(false)
    }
}

/// One registries.d file as written. Parsed leniently like Go's yaml.v3
/// into a struct: unknown keys are ignored, wrong types are errors.
#[derive(Deserialize)]
#[serde(expecting = "a mapping with `default-docker` and `docker`")]
struct FileContents {
    #[serde(rename = "default-docker")]
    default_docker: Option<SectionContents>,
    docker: Option<ScopeMap>,
}

#[derive(Deserialize, Default)]
#[serde(expecting = "a mapping of lookaside settings")]
struct SectionContents {
    lookaside: Option<String>,
    #[serde(rename = "lookaside-staging")]
    lookaside_staging: Option<String>,
    sigstore: Option<String>,
    #[serde(rename = "sigstore-staging")]
    sigstore_staging: Option<String>,
    #[serde(rename = "use-sigstore-attachments")]
    use_sigstore_attachments: Option<YamlBool>,
    #[serde(rename = "criguard-sigstore-bundles")]
    sigstore_bundles: Option<YamlBool>,
}

impl SectionContents {
    /// A null value is an unset one, as in Go. Non-null scalars of any type
    /// arrive as their source text (`lookaside: 123` is "123"), also as in Go.
    fn into_settings(self) -> ScopeSettings {
        ScopeSettings {
            lookaside: self.lookaside.unwrap_or_default(),
            lookaside_staging: self.lookaside_staging.unwrap_or_default(),
            sigstore: self.sigstore.unwrap_or_default(),
            sigstore_staging: self.sigstore_staging.unwrap_or_default(),
            use_sigstore_attachments: self.use_sigstore_attachments.map(|b| b.0),
            sigstore_bundles: self.sigstore_bundles.map(|b| b.0),
        }
    }
}

fn parse_file(name: &str, contents: &[u8]) -> Result<FileContents, Error> {
    check_size(name, contents)?;
    let syntax_error = |err: yaml_serde::Error| Error::Syntax {
        file: name.to_owned(),
        message: err.to_string(),
    };
    // Like Go's yaml.Unmarshal, only the first document counts, and an empty
    // or null document is an empty configuration.
    let Some(document) = yaml_serde::Deserializer::from_slice(contents).next() else {
        return Ok(FileContents {
            default_docker: None,
            docker: None,
        });
    };
    let parsed = Option::<FileContents>::deserialize(document).map_err(syntax_error)?;
    Ok(parsed.unwrap_or(FileContents {
        default_docker: None,
        docker: None,
    }))
}

/// The `docker` mapping, in file order. A scope may appear once per file:
/// yaml.v3 refuses repeated mapping keys, and silently keeping one of them
/// would hide a configuration mistake. A null section defines the scope with
/// nothing set, as in Go.
struct ScopeMap {
    entries: Vec<(String, SectionContents)>,
}

impl<'de> Deserialize<'de> for ScopeMap {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ScopeMapVisitor;

        impl<'de> Visitor<'de> for ScopeMapVisitor {
            type Value = ScopeMap;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping from scopes to sections")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ScopeMap, A::Error> {
                let mut entries: Vec<(String, SectionContents)> = Vec::new();
                let mut seen = std::collections::BTreeSet::new();
                while let Some(scope) = map.next_key::<String>()? {
                    let section = map.next_value::<Option<SectionContents>>()?;
                    if !seen.insert(scope.clone()) {
                        return Err(de::Error::custom(format!(
                            "mapping key {} already defined",
                            crate::go_url::go_quote(scope.as_bytes())
                        )));
                    }
                    entries.push((scope, section.unwrap_or_default()));
                }
                Ok(ScopeMap { entries })
            }
        }

        deserializer.deserialize_map(ScopeMapVisitor)
    }
}

/// A boolean as yaml.v3 decodes one into a Go `bool`: YAML's `true`/`false`,
/// or one of YAML 1.1's spellings (`yes`, `on`, `n`, …) even when quoted.
struct YamlBool(bool);

impl<'de> Deserialize<'de> for YamlBool {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct YamlBoolVisitor;

        impl Visitor<'_> for YamlBoolVisitor {
            type Value = YamlBool;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a boolean")
            }

            fn visit_bool<E: de::Error>(self, value: bool) -> Result<YamlBool, E> {
                Ok(YamlBool(value))
            }

            fn visit_str<E: de::Error>(self, value: &str) -> Result<YamlBool, E> {
                match value {
                    "y" | "Y" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" => Ok(YamlBool(true)),
                    "n" | "N" | "no" | "No" | "NO" | "off" | "Off" | "OFF" => Ok(YamlBool(false)),
                    _ => Err(de::Error::invalid_value(de::Unexpected::Str(value), &self)),
                }
            }
        }

        deserializer.deserialize_any(YamlBoolVisitor)
    }
}

#[cfg(test)]
mod tests;
