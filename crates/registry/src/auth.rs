//! Registry credentials from containers-auth.json(5) and docker's
//! config.json, looked up as containers/image does.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use criguard_reference::Reference;
use serde::Deserialize;

use crate::Error;

/// Auth files are a few kilobytes; a huge one is a mistake.
const MAX_AUTH_FILE_SIZE: u64 = 4 << 20;

/// How to authenticate to one registry.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub enum Credentials {
    #[default]
    Anonymous,
    Basic {
        username: String,
        password: String,
    },
    /// A registry token sent as is (`Authorization: Bearer …`), such as the
    /// CRI's `registry_token`.
    Bearer(String),
}

/// Secrets stay out of logs and error messages.
impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Anonymous => f.write_str("Anonymous"),
            Self::Basic { username, .. } => f
                .debug_struct("Basic")
                .field("username", username)
                .field("password", &"<redacted>")
                .finish(),
            Self::Bearer(_) => f.debug_tuple("Bearer").field(&"<redacted>").finish(),
        }
    }
}

impl Credentials {
    pub fn is_anonymous(&self) -> bool {
        matches!(self, Self::Anonymous)
    }

    pub(crate) fn to_oci(&self) -> oci_client::secrets::RegistryAuth {
        use oci_client::secrets::RegistryAuth;
        match self {
            Self::Anonymous => RegistryAuth::Anonymous,
            Self::Basic { username, password } => {
                RegistryAuth::Basic(username.clone(), password.clone())
            }
            Self::Bearer(token) => RegistryAuth::Bearer(token.clone()),
        }
    }
}

/// A parsed auth file. Every entry is decoded when the file is loaded, so a
/// malformed entry is reported (with its key) before any registry is
/// contacted rather than turning into an anonymous request later.
///
/// `credHelpers`, `credsStore` and `identitytoken` are not supported: an
/// entry that only has an identity token gives no credentials.
#[derive(Debug, Clone, Default)]
pub struct AuthFile {
    path: PathBuf,
    /// Keys as written (`host`, `host/ns`, `host/ns/repo`, legacy URLs).
    entries: BTreeMap<String, Credentials>,
}

#[derive(Deserialize)]
struct FileContents {
    #[serde(default)]
    auths: BTreeMap<String, EntryContents>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct EntryContents {
    auth: String,
    username: String,
    password: String,
}

impl AuthFile {
    pub fn load(path: &Path) -> Result<AuthFile, Error> {
        let bytes =
            criguard_files::read_limited(path, MAX_AUTH_FILE_SIZE).map_err(|e| match e {
                criguard_files::ReadError::Io(source) => Error::AuthFileRead {
                    path: path.to_owned(),
                    source,
                },
                criguard_files::ReadError::TooLarge { .. } => Error::AuthFileSyntax {
                    path: path.to_owned(),
                    message: format!("the file is larger than {MAX_AUTH_FILE_SIZE} bytes"),
                },
            })?;
        Self::from_bytes(path, &bytes)
    }

    /// Parses the contents of `path` (used in messages only).
    pub fn from_bytes(path: &Path, bytes: &[u8]) -> Result<AuthFile, Error> {
        let syntax = |message: String| Error::AuthFileSyntax {
            path: path.to_owned(),
            message,
        };
        let contents: FileContents =
            serde_json::from_slice(bytes).map_err(|e| syntax(e.to_string()))?;
        let mut entries = BTreeMap::new();
        for (key, entry) in contents.auths {
            let credentials = decode_entry(&entry).map_err(|m| syntax(format!("{key:?}: {m}")))?;
            entries.insert(key, credentials);
        }
        Ok(AuthFile {
            path: path.to_owned(),
            entries,
        })
    }

    /// skopeo's search order; the first file that exists is used, and none
    /// is not an error.
    pub fn load_default() -> Result<Option<AuthFile>, Error> {
        for path in default_paths(|name| std::env::var_os(name)) {
            match Self::load(&path) {
                Ok(file) => return Ok(Some(file)),
                Err(Error::AuthFileRead { source, .. })
                    if source.kind() == std::io::ErrorKind::NotFound => {}
                Err(err) => return Err(err),
            }
        }
        Ok(None)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The most specific entry for the reference's repository: `host/ns/repo`,
    /// then each parent namespace, then `host`; for the host alone, legacy
    /// keys (`https://index.docker.io/v1/`, `http://host/…`) count too.
    pub fn credentials_for(&self, reference: &Reference) -> Credentials {
        let name = reference.name();
        let mut key = name;
        loop {
            if let Some(credentials) = self.entries.get(key) {
                return credentials.clone();
            }
            match key.rfind('/') {
                Some(slash) => key = &key[..slash],
                None => break,
            }
        }
        let registry = normalize_registry(reference.domain());
        self.entries
            .iter()
            .find(|(k, _)| normalize_key(k) == registry)
            .map(|(_, credentials)| credentials.clone())
            .unwrap_or_default()
    }
}

fn decode_entry(entry: &EntryContents) -> Result<Credentials, String> {
    if !entry.auth.is_empty() {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(entry.auth.trim())
            .map_err(|e| format!("\"auth\" is not valid base64: {e}"))?;
        let decoded = String::from_utf8(decoded).map_err(|_| "\"auth\" is not UTF-8".to_owned())?;
        // Like docker and containers/image, a value without a colon is
        // ignored rather than refused.
        return Ok(match decoded.split_once(':') {
            Some((username, password)) => Credentials::Basic {
                username: username.to_owned(),
                password: password.to_owned(),
            },
            None => Credentials::Anonymous,
        });
    }
    if !entry.username.is_empty() || !entry.password.is_empty() {
        return Ok(Credentials::Basic {
            username: entry.username.clone(),
            password: entry.password.clone(),
        });
    }
    Ok(Credentials::Anonymous)
}

/// containers/image's `normalizeAuthFileKey`: URL keys are reduced to their
/// host, and Docker Hub's host names to one.
fn normalize_key(key: &str) -> &str {
    let stripped = key
        .strip_prefix("http://")
        .or_else(|| key.strip_prefix("https://"));
    let host = match stripped {
        Some(rest) => rest.split('/').next().unwrap_or(rest),
        None => key,
    };
    normalize_registry(host)
}

fn normalize_registry(registry: &str) -> &str {
    match registry {
        "registry-1.docker.io" | "docker.io" => "index.docker.io",
        other => other,
    }
}

/// The auth files skopeo considers, in order, given an environment lookup.
pub fn default_paths(env: impl Fn(&str) -> Option<OsString>) -> Vec<PathBuf> {
    let non_empty = |name: &str| env(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    let mut paths = Vec::new();
    if let Some(path) = non_empty("REGISTRY_AUTH_FILE") {
        paths.push(path);
    }
    if let Some(dir) = non_empty("XDG_RUNTIME_DIR") {
        paths.push(dir.join("containers/auth.json"));
    }
    let home = non_empty("HOME");
    match non_empty("XDG_CONFIG_HOME") {
        Some(config) => paths.push(config.join("containers/auth.json")),
        None => {
            if let Some(home) = &home {
                paths.push(home.join(".config/containers/auth.json"));
            }
        }
    }
    if let Some(home) = &home {
        paths.push(home.join(".docker/config.json"));
    }
    paths
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    fn file(json: &str) -> AuthFile {
        AuthFile::from_bytes(Path::new("auth.json"), json.as_bytes()).unwrap()
    }

    fn r(s: &str) -> Reference {
        Reference::parse_normalized(s).unwrap()
    }

    fn basic(u: &str, p: &str) -> Credentials {
        Credentials::Basic {
            username: u.into(),
            password: p.into(),
        }
    }

    #[test]
    fn most_specific_key_wins() {
        let f = file(&format!(
            r#"{{"auths": {{
                "quay.io": {{"auth": "{}"}},
                "quay.io/ns": {{"auth": "{}"}},
                "quay.io/ns/repo": {{"auth": "{}"}}
            }}}}"#,
            b64("host:h"),
            b64("ns:n"),
            b64("repo:r:with:colons")
        ));
        assert_eq!(
            f.credentials_for(&r("quay.io/ns/repo:1")),
            basic("repo", "r:with:colons")
        );
        assert_eq!(f.credentials_for(&r("quay.io/ns/other")), basic("ns", "n"));
        assert_eq!(f.credentials_for(&r("quay.io/ns/repo2")), basic("ns", "n"));
        assert_eq!(f.credentials_for(&r("quay.io/x/y")), basic("host", "h"));
        assert_eq!(
            f.credentials_for(&r("quay.io:443/x/y")),
            Credentials::Anonymous
        );
        assert_eq!(
            f.credentials_for(&r("example.com/a")),
            Credentials::Anonymous
        );
    }

    #[test]
    fn docker_hub_legacy_keys() {
        let f = file(&format!(
            r#"{{"auths": {{"https://index.docker.io/v1/": {{"auth": "{}"}}}}}}"#,
            b64("hub:secret")
        ));
        assert_eq!(f.credentials_for(&r("busybox")), basic("hub", "secret"));
        assert_eq!(
            f.credentials_for(&r("docker.io/someone/app")),
            basic("hub", "secret")
        );
        assert_eq!(f.credentials_for(&r("quay.io/a/b")), Credentials::Anonymous);

        let plain = file(r#"{"auths": {"docker.io": {"username": "u", "password": "p"}}}"#);
        assert_eq!(plain.credentials_for(&r("busybox")), basic("u", "p"));

        // An exact key beats a legacy URL key for the same registry.
        let both = file(&format!(
            r#"{{"auths": {{"https://index.docker.io/v1/": {{"auth": "{}"}}, "docker.io": {{"auth": "{}"}}}}}}"#,
            b64("legacy:1"),
            b64("exact:2")
        ));
        assert_eq!(both.credentials_for(&r("busybox")), basic("exact", "2"));
    }

    #[test]
    fn url_keys_reduce_to_their_host() {
        let f = file(&format!(
            r#"{{"auths": {{"http://registry.example:5000/v2/": {{"auth": "{}"}}}}}}"#,
            b64("a:b")
        ));
        assert_eq!(
            f.credentials_for(&r("registry.example:5000/x")),
            basic("a", "b")
        );
        assert_eq!(
            f.credentials_for(&r("registry.example/x")),
            Credentials::Anonymous
        );
    }

    #[test]
    fn entries_without_credentials_and_bad_entries() {
        let f = file(r#"{"auths": {"quay.io": {}}, "credsStore": "desktop"}"#);
        assert_eq!(f.credentials_for(&r("quay.io/a/b")), Credentials::Anonymous);
        let no_colon = file(&format!(
            r#"{{"auths": {{"quay.io": {{"auth": "{}"}}}}}}"#,
            b64("x")
        ));
        assert_eq!(
            no_colon.credentials_for(&r("quay.io/a")),
            Credentials::Anonymous
        );

        let err = AuthFile::from_bytes(
            Path::new("/x/auth.json"),
            br#"{"auths": {"quay.io": {"auth": "%%%"}}}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("/x/auth.json") && err.contains("\"quay.io\""),
            "{err}"
        );
        assert!(err.contains("base64"), "{err}");

        let err = AuthFile::from_bytes(Path::new("a.json"), b"{").unwrap_err();
        assert!(matches!(err, Error::AuthFileSyntax { .. }), "{err}");
    }

    #[test]
    fn debug_hides_secrets() {
        let text = format!(
            "{:?} {:?}",
            basic("user", "hunter2"),
            Credentials::Bearer("tok".into())
        );
        assert!(text.contains("user"));
        assert!(
            !text.contains("hunter2") && !text.contains("tok\""),
            "{text}"
        );
    }

    #[test]
    fn default_path_order() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                vars.iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| OsString::from(v))
            }
        };
        assert_eq!(
            default_paths(env(&[
                ("REGISTRY_AUTH_FILE", "/a.json"),
                ("XDG_RUNTIME_DIR", "/run/user/1"),
                ("HOME", "/home/u"),
            ])),
            [
                "/a.json",
                "/run/user/1/containers/auth.json",
                "/home/u/.config/containers/auth.json",
                "/home/u/.docker/config.json"
            ]
            .map(PathBuf::from)
        );
        assert_eq!(
            default_paths(env(&[
                ("HOME", "/h"),
                ("XDG_CONFIG_HOME", "/cfg"),
                ("REGISTRY_AUTH_FILE", "")
            ])),
            ["/cfg/containers/auth.json", "/h/.docker/config.json"].map(PathBuf::from)
        );
        assert!(default_paths(env(&[])).is_empty());
    }

    #[test]
    fn load_reads_a_file_and_reports_missing_ones() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("auth.json");
        std::fs::write(
            &path,
            format!(
                r#"{{"auths": {{"localhost:5000": {{"auth": "{}"}}}}}}"#,
                b64("u:p")
            ),
        )
        .unwrap();
        let f = AuthFile::load(&path).unwrap();
        assert_eq!(f.path(), path);
        assert_eq!(f.credentials_for(&r("localhost:5000/x")), basic("u", "p"));
        let missing = AuthFile::load(&dir.path().join("nope.json")).unwrap_err();
        assert!(matches!(missing, Error::AuthFileRead { .. }), "{missing}");
        assert!(missing.to_string().contains("nope.json"));
    }
}
