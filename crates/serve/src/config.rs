//! `/etc/criguard/config.toml`, and the settings the daemon runs with.
//!
//! Every setting can also be given as a flag; a flag wins over the file,
//! the file over the default. Unknown keys are errors: a misspelt
//! `policy_dir` must not silently leave a node on the global policy.

use std::path::{Path, PathBuf};
use std::time::Duration;

use criguard_policy::DEFAULT_POLICY;
use criguard_registries::DEFAULT_REGISTRIES_D;
use serde::Deserialize;

use crate::{Error, Mode, OnInvalidPolicy, TagPinnedPulls};

pub const DEFAULT_CONFIG: &str = "/etc/criguard/config.toml";
const DEFAULT_LISTEN: &str = "/run/criguard/criguard.sock";
const DEFAULT_RUNTIME_ENDPOINT: &str = "/run/containerd/containerd.sock";
/// `<dir>/<namespace>.json`, CRI-O's `signature_policy_dir` rule.
const DEFAULT_POLICY_DIR: &str = "/etc/criguard/policies";
const DEFAULT_METRICS_ADDRESS: &str = "127.0.0.1:9891";
/// Where verified pulls are kept across restarts.
const DEFAULT_STATE_DIR: &str = "/var/lib/criguard";
/// The largest config file read.
const MAX_CONFIG_SIZE: u64 = 1 << 20;

/// The file, or the flags, before defaults are applied: `None` is "not
/// said here".
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// The socket the kubelet connects to (`unix:///path` or a path).
    pub listen: Option<String>,
    /// The runtime's socket (`unix:///path` or a path).
    pub runtime_endpoint: Option<String>,
    /// The global policy.
    pub policy: Option<PathBuf>,
    /// Per-namespace policies, `<dir>/<namespace>.json`.
    pub policy_dir: Option<PathBuf>,
    pub registries_d: Option<PathBuf>,
    /// registries.conf; by default /etc/containers/registries.conf and its
    /// `.d` directory.
    pub registries_conf: Option<PathBuf>,
    /// Credentials for signature fetches the kubelet sent none for.
    pub authfile: Option<PathBuf>,
    /// Each registry request, connecting included.
    pub registry_timeout_seconds: Option<u64>,
    /// How long an allowed decision is reused.
    pub cache_ttl_seconds: Option<u64>,
    /// How many decisions (and, separately, pull records) are kept; an
    /// entry counts as one per KiB it holds, so each cache holds at most
    /// this many KiB too. Signature lists have their own 64 MiB bound.
    pub cache_size: Option<u64>,
    /// How long a tag's resolution to a digest is reused; 0 resolves every
    /// pull. A reused resolution still pins the pull to a verified digest,
    /// only perhaps not the newest one.
    pub resolve_ttl_seconds: Option<u64>,
    /// How often policy files are re-read even without a change
    /// notification (file systems that send none).
    pub policy_poll_seconds: Option<u64>,
    /// What a policy file that becomes invalid while serving means:
    /// `reject` (the default) every image it governs until it is fixed,
    /// since its last valid version may be looser than what it now tries
    /// to say; `keep-last-valid` keeps enforcing that version.
    pub on_invalid_policy: Option<OnInvalidPolicy>,
    /// `enforce` or `audit`: the mode of namespaces without a
    /// `<policy-dir>/<namespace>.mode` file.
    pub default_mode: Option<Mode>,
    /// Where what pulls verified is kept, so that creates after a restart
    /// are decided again without the registry.
    pub state_dir: Option<PathBuf>,
    /// `host:port` for `/metrics`; an empty string turns metrics off.
    pub metrics_address: Option<String>,
    pub log_format: Option<LogFormat>,
    /// Methods criguard does not know (`/package.Service/Method`) that may
    /// be forwarded unchecked; any other unknown method is refused, so
    /// that a new way to bring an image in is closed until someone looks.
    pub forward_methods: Option<Vec<String>>,
    /// How a verified (pinned) pull also gets the name the kubelet asked
    /// for in the runtime: `containerd` (the default; turns itself off
    /// with a warning on a runtime without containerd's images service)
    /// or `off`.
    pub tag_pinned_pulls: Option<TagPinnedPulls>,
    /// The audit set's global policy and folder of namespace policies
    /// (`criguard policy render` writes them under `audit/`): images the
    /// enforced policies allow are judged again by them, and a refusal is
    /// logged and counted as `would_reject`, never enforced. Both or
    /// neither; unset by default.
    pub audit_policy: Option<PathBuf>,
    pub audit_policy_dir: Option<PathBuf>,
    /// A sigstore `trusted_root.json`, read once at start (never fetched):
    /// its Rekor v2 logs and timestamp authorities let cosign 3 bundles
    /// with Rekor v2 entries and RFC 3161 timestamps verify, for policies
    /// that name those logs' keys. Unset: such bundles are refused.
    pub trusted_root: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// Everything the daemon runs with, defaults applied and checked.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: PathBuf,
    pub runtime_endpoint: PathBuf,
    pub policy: PathBuf,
    pub policy_dir: PathBuf,
    pub registries_d: PathBuf,
    pub registries_conf: Option<PathBuf>,
    pub authfile: Option<PathBuf>,
    pub registry_timeout: Duration,
    pub cache_ttl: Duration,
    pub cache_size: u64,
    pub resolve_ttl: Duration,
    pub policy_poll: Duration,
    pub on_invalid_policy: OnInvalidPolicy,
    pub default_mode: Mode,
    pub state_dir: PathBuf,
    pub metrics_address: Option<String>,
    pub log_format: LogFormat,
    /// Checked: each is a method criguard may forward.
    pub forward_methods: Vec<String>,
    pub tag_pinned_pulls: TagPinnedPulls,
    /// The audit set, `(global policy, namespace folder)`, when configured.
    pub audit_policies: Option<(PathBuf, PathBuf)>,
    pub trusted_root: Option<PathBuf>,
}

impl ConfigFile {
    /// Reads `path`. A missing file is an error only when `required` (it
    /// was named on the command line); the default path may be absent.
    pub fn load(path: &Path, required: bool) -> Result<ConfigFile, Error> {
        let bytes = match criguard_files::read_limited(path, MAX_CONFIG_SIZE)
            .map_err(std::io::Error::from)
        {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => {
                return Ok(ConfigFile::default());
            }
            Err(source) => {
                return Err(Error::Read {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        let text = String::from_utf8(bytes).map_err(|_| Error::Config {
            path: path.to_owned(),
            message: "not UTF-8".to_owned(),
        })?;
        toml::from_str(&text).map_err(|e| Error::Config {
            path: path.to_owned(),
            message: e.to_string(),
        })
    }

    /// `self` with every setting `overrides` has replaced.
    pub fn overridden_by(self, overrides: ConfigFile) -> ConfigFile {
        ConfigFile {
            listen: overrides.listen.or(self.listen),
            runtime_endpoint: overrides.runtime_endpoint.or(self.runtime_endpoint),
            policy: overrides.policy.or(self.policy),
            policy_dir: overrides.policy_dir.or(self.policy_dir),
            registries_d: overrides.registries_d.or(self.registries_d),
            registries_conf: overrides.registries_conf.or(self.registries_conf),
            authfile: overrides.authfile.or(self.authfile),
            registry_timeout_seconds: overrides
                .registry_timeout_seconds
                .or(self.registry_timeout_seconds),
            cache_ttl_seconds: overrides.cache_ttl_seconds.or(self.cache_ttl_seconds),
            cache_size: overrides.cache_size.or(self.cache_size),
            resolve_ttl_seconds: overrides.resolve_ttl_seconds.or(self.resolve_ttl_seconds),
            policy_poll_seconds: overrides.policy_poll_seconds.or(self.policy_poll_seconds),
            on_invalid_policy: overrides.on_invalid_policy.or(self.on_invalid_policy),
            default_mode: overrides.default_mode.or(self.default_mode),
            state_dir: overrides.state_dir.or(self.state_dir),
            metrics_address: overrides.metrics_address.or(self.metrics_address),
            log_format: overrides.log_format.or(self.log_format),
            forward_methods: overrides.forward_methods.or(self.forward_methods),
            tag_pinned_pulls: overrides.tag_pinned_pulls.or(self.tag_pinned_pulls),
            audit_policy: overrides.audit_policy.or(self.audit_policy),
            audit_policy_dir: overrides.audit_policy_dir.or(self.audit_policy_dir),
            trusted_root: overrides.trusted_root.or(self.trusted_root),
        }
    }

    /// Applies the defaults; `origin` names where a bad value came from.
    pub fn settings(self, origin: &Path) -> Result<Settings, Error> {
        let bad = |message: String| Error::Config {
            path: origin.to_owned(),
            message,
        };
        let socket = |value: Option<String>, default: &str, key: &str| {
            criguard_cri::socket_path(value.as_deref().unwrap_or(default))
                .map_err(|e| bad(format!("{key}: {e}")))
        };
        let seconds = |value: Option<u64>, default: u64, key: &str, min: u64| {
            let value = value.unwrap_or(default);
            if value < min {
                return Err(bad(format!("{key} must be at least {min}")));
            }
            Ok(Duration::from_secs(value))
        };
        let absolute = |path: PathBuf, key: &str| {
            if path.is_absolute() {
                Ok(path)
            } else {
                Err(bad(format!("{key} {} is not absolute", path.display())))
            }
        };
        let listen = socket(self.listen, DEFAULT_LISTEN, "listen")?;
        let runtime_endpoint = socket(
            self.runtime_endpoint,
            DEFAULT_RUNTIME_ENDPOINT,
            "runtime_endpoint",
        )?;
        if listen == runtime_endpoint {
            return Err(bad(
                "listen and runtime_endpoint are the same socket".to_owned()
            ));
        }
        let audit_policies = match (self.audit_policy, self.audit_policy_dir) {
            (None, None) => None,
            (Some(global), Some(dir)) => Some((global, absolute(dir, "audit_policy_dir")?)),
            _ => {
                return Err(bad(
                    "audit_policy and audit_policy_dir must be set together".to_owned(),
                ));
            }
        };
        let cache_size = self.cache_size.unwrap_or(10_000);
        if cache_size == 0 {
            return Err(bad("cache_size must be at least 1".to_owned()));
        }
        Ok(Settings {
            listen,
            runtime_endpoint,
            policy: self.policy.unwrap_or_else(|| DEFAULT_POLICY.into()),
            policy_dir: absolute(
                self.policy_dir.unwrap_or_else(|| DEFAULT_POLICY_DIR.into()),
                "policy_dir",
            )?,
            registries_d: self
                .registries_d
                .unwrap_or_else(|| DEFAULT_REGISTRIES_D.into()),
            registries_conf: self.registries_conf,
            authfile: self.authfile,
            registry_timeout: seconds(
                self.registry_timeout_seconds,
                criguard_registry::DEFAULT_TIMEOUT.as_secs(),
                "registry_timeout_seconds",
                1,
            )?,
            cache_ttl: seconds(self.cache_ttl_seconds, 600, "cache_ttl_seconds", 0)?,
            cache_size,
            resolve_ttl: seconds(self.resolve_ttl_seconds, 30, "resolve_ttl_seconds", 0)?,
            policy_poll: seconds(self.policy_poll_seconds, 10, "policy_poll_seconds", 1)?,
            on_invalid_policy: self.on_invalid_policy.unwrap_or_default(),
            default_mode: self.default_mode.unwrap_or_default(),
            state_dir: absolute(
                self.state_dir.unwrap_or_else(|| DEFAULT_STATE_DIR.into()),
                "state_dir",
            )?,
            metrics_address: Some(
                self.metrics_address
                    .unwrap_or_else(|| DEFAULT_METRICS_ADDRESS.to_owned()),
            )
            .filter(|a| !a.is_empty()),
            log_format: self.log_format.unwrap_or(LogFormat::Text),
            forward_methods: {
                let listed = self.forward_methods.unwrap_or_default();
                criguard_cri::Methods::new(&listed).map_err(|e| bad(e.to_string()))?;
                listed
            },
            tag_pinned_pulls: self.tag_pinned_pulls.unwrap_or_default(),
            audit_policies,
            trusted_root: self
                .trusted_root
                .map(|path| absolute(path, "trusted_root"))
                .transpose()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_win_over_the_file_and_the_file_over_defaults() {
        let file: ConfigFile = toml::from_str(
            "listen = \"unix:///tmp/a.sock\"\npolicy_dir = \"/p\"\ncache_ttl_seconds = 5\n",
        )
        .unwrap();
        let flags = ConfigFile {
            policy_dir: Some("/q".into()),
            ..ConfigFile::default()
        };
        let settings = file.overridden_by(flags).settings(Path::new("c")).unwrap();
        assert_eq!(settings.listen, Path::new("/tmp/a.sock"));
        assert_eq!(settings.policy_dir, Path::new("/q"));
        assert_eq!(settings.cache_ttl, Duration::from_secs(5));
        assert_eq!(
            settings.runtime_endpoint,
            Path::new("/run/containerd/containerd.sock")
        );
        assert_eq!(settings.metrics_address.as_deref(), Some("127.0.0.1:9891"));
        assert_eq!(settings.trusted_root, None);
        let file: ConfigFile = toml::from_str("trusted_root = \"/etc/a.json\"").unwrap();
        let flag = ConfigFile {
            trusted_root: Some("/b.json".into()),
            ..ConfigFile::default()
        };
        let settings = file.overridden_by(flag).settings(Path::new("c")).unwrap();
        assert_eq!(settings.trusted_root.as_deref(), Some(Path::new("/b.json")));
    }

    #[test]
    fn mistakes_are_reported() {
        assert!(toml::from_str::<ConfigFile>("policy_directory = \"/p\"").is_err());
        for bad in [
            "listen = \"relative.sock\"",
            "policy_dir = \"relative\"",
            "registry_timeout_seconds = 0",
            "cache_size = 0",
            "listen = \"/a\"\nruntime_endpoint = \"unix:///a\"",
            "forward_methods = [\"/runtime.v1.ImageService/PullImage\"]",
            "audit_policy = \"/a/policy.json\"",
            "audit_policy = \"/a/policy.json\"\naudit_policy_dir = \"relative\"",
            "trusted_root = \"trusted_root.json\"",
        ] {
            let file: ConfigFile = toml::from_str(bad).unwrap();
            assert!(file.settings(Path::new("c")).is_err(), "{bad}");
        }
        assert!(toml::from_str::<ConfigFile>("on_invalid_policy = \"keep\"").is_err());
        assert!(toml::from_str::<ConfigFile>("tag_pinned_pulls = \"cri-o\"").is_err());
        let off: ConfigFile = toml::from_str("tag_pinned_pulls = \"off\"").unwrap();
        assert_eq!(
            off.settings(Path::new("c")).unwrap().tag_pinned_pulls,
            TagPinnedPulls::Off
        );
        let keep: ConfigFile = toml::from_str("on_invalid_policy = \"keep-last-valid\"").unwrap();
        assert_eq!(
            keep.settings(Path::new("c")).unwrap().on_invalid_policy,
            OnInvalidPolicy::KeepLastValid
        );
        let off: ConfigFile = toml::from_str("metrics_address = \"\"").unwrap();
        assert_eq!(off.settings(Path::new("c")).unwrap().metrics_address, None);
    }

    #[test]
    fn the_shipped_example_says_the_defaults() {
        let shipped: ConfigFile =
            toml::from_str(include_str!("../../../deploy/config.toml")).unwrap();
        let shipped = shipped.settings(Path::new("deploy/config.toml")).unwrap();
        let defaults = ConfigFile::default().settings(Path::new("none")).unwrap();
        assert_eq!(format!("{shipped:?}"), format!("{defaults:?}"));
    }

    #[test]
    fn a_missing_default_file_is_fine_a_missing_named_one_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("config.toml");
        assert!(ConfigFile::load(&missing, false).is_ok());
        assert!(ConfigFile::load(&missing, true).is_err());
    }
}
