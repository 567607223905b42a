//! Registry clients per set of credentials, over a registry configuration
//! that reloads while serving.
//!
//! registries.d, registries.conf and the auth file are watched like the
//! policies: a valid change applies (and bumps [`RegistryAccess::generation`],
//! so that nothing learnt with the old configuration is reused), an invalid
//! or unreadable one is refused, logged and counted, and the last valid
//! version stays. Keeping it is safe where keeping a policy is not: these
//! files never make an image pass, they say where its signatures are and
//! how to reach its registry, and every image still needs the signatures
//! its policy asks for. A configured file or the registries.d folder that
//! disappears is refused the same way (a folder missing from the start
//! holds no configuration, as containers/image reads it).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use criguard_reference::Digest;
use criguard_registries::{
    DEFAULT_REGISTRIES_CONF, DEFAULT_REGISTRIES_CONF_DIR, RegistriesConf, RegistriesD,
};
use criguard_registry::digest::sha256;
use criguard_registry::{AuthFile, Credentials, Platform, Registry, RegistryConfig};
use criguard_verification::{ImageSource, RegistrySource, SourceError};

use crate::Error;
use crate::reload::{ConfigKind, ReloadOutcome, Reloadable, with_parent};

/// Makes the image source for a set of credentials. One client per set,
/// so tokens and connection pools never mix between pull secrets.
/// Implemented for real registries, and by an in-memory fake in tests.
pub trait RegistryAccess: Send + Sync + 'static {
    type Source: ImageSource<Image: Clone + Send + Sync + 'static> + Send + Sync + 'static;

    /// The source that uses `credentials`; `None`: the node's auth file.
    fn source(&self, credentials: Option<Credentials>) -> Result<Self::Source, SourceError>;

    /// Changes whenever the registry configuration does. Sources, and what
    /// was resolved or fetched with them, belong to the generation they
    /// were made in: a source made after a change may be of the next
    /// generation already, never of an earlier one. A configuration that
    /// never changes stays at 0.
    fn generation(&self) -> u64 {
        0
    }
}

/// The largest file read to notice a change; the loaders have their own,
/// smaller limits, so a larger file is refused by them anyway.
const MAX_WATCHED_FILE_SIZE: u64 = 16 << 20;

/// Registries as registries.conf, registries.d and the auth file describe
/// them, resolving multi-arch images to this node's platform. Clones share
/// the configuration: the daemon keeps one to reload it.
#[derive(Clone)]
pub struct Registries {
    shared: Arc<Shared>,
}

struct Shared {
    files: Files,
    platform: Platform,
    current: RwLock<Arc<Snapshot>>,
    /// What each watched part looked like when last read; one reload at a
    /// time.
    seen: Mutex<[Seen; 3]>,
}

/// Where the configuration comes from, as configured.
struct Files {
    registries_d: PathBuf,
    /// `None`: the system registries.conf and its drop-in folder.
    registries_conf: Option<PathBuf>,
    /// `None`: skopeo's search order.
    authfile: Option<PathBuf>,
}

/// One consistent configuration.
struct Snapshot {
    base: RegistryConfig,
    registries_d: Arc<RegistriesD>,
    generation: u64,
}

#[derive(Clone)]
struct Seen {
    /// The paths and contents (or read errors) of its files.
    fingerprint: Digest,
    /// Whether the configured file or folder existed, so that one that
    /// disappears is told from one that was never there.
    existed: bool,
}

/// The parts reloaded separately, so that a broken auth file does not hold
/// back a registries.d change.
#[derive(Debug, Clone, Copy)]
enum Which {
    RegistriesD,
    RegistriesConf,
    AuthFile,
}

const PARTS: [Which; 3] = [Which::RegistriesD, Which::RegistriesConf, Which::AuthFile];

impl Which {
    fn kind(self) -> ConfigKind {
        match self {
            Which::RegistriesD => ConfigKind::RegistriesD,
            Which::RegistriesConf => ConfigKind::RegistriesConf,
            Which::AuthFile => ConfigKind::AuthFile,
        }
    }
}

/// A newly loaded part.
enum Part {
    RegistriesD(RegistriesD),
    RegistriesConf(RegistriesConf),
    AuthFile(Option<AuthFile>),
}

impl Registries {
    /// Loads registries.d, registries.conf (`None`: the system one and its
    /// drop-in folder) and the auth file (`None`: skopeo's search order).
    /// Any problem refuses the start.
    pub fn load(
        registries_d: &Path,
        registries_conf: Option<&Path>,
        authfile: Option<&Path>,
        timeout: Duration,
    ) -> Result<Registries, Error> {
        let files = Files {
            registries_d: registries_d.to_owned(),
            registries_conf: registries_conf.map(Path::to_owned),
            authfile: authfile.map(Path::to_owned),
        };
        // Before loading: a change in between is then seen by the first
        // reload rather than missed.
        let seen = PARTS.map(|which| files.seen(which));
        let registries_d = RegistriesD::load_dir(registries_d)?;
        let base = RegistryConfig::from_system_files(registries_conf, authfile, None, timeout)?;
        Ok(Registries {
            shared: Arc::new(Shared {
                files,
                platform: Platform::host(),
                current: RwLock::new(Arc::new(Snapshot {
                    base,
                    registries_d: Arc::new(registries_d),
                    generation: 0,
                })),
                seen: Mutex::new(seen),
            }),
        })
    }

    fn snapshot(&self) -> Arc<Snapshot> {
        Arc::clone(
            &self
                .shared
                .current
                .read()
                .unwrap_or_else(PoisonError::into_inner),
        )
    }

    /// Re-reads the files that changed since they were last read; each
    /// valid change makes a new generation.
    pub fn reload(&self) -> Vec<ReloadOutcome> {
        let files = &self.shared.files;
        let mut seen = self
            .shared
            .seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut outcomes = Vec::new();
        for (which, seen) in PARTS.into_iter().zip(seen.iter_mut()) {
            let now = files.seen(which);
            if now.fingerprint == seen.fingerprint {
                continue;
            }
            let vanished = seen.existed && !now.existed;
            *seen = now;
            let (kind, path) = (which.kind(), files.path(which));
            let loaded = if vanished {
                Err("it has disappeared".to_owned())
            } else {
                files.load(which)
            };
            match loaded {
                Ok(part) => {
                    self.apply(part);
                    outcomes.push(ReloadOutcome::Applied { kind, path });
                }
                Err(problem) => outcomes.push(ReloadOutcome::Refused {
                    kind,
                    path,
                    reason: format!("{problem}; the last valid version stays in force"),
                }),
            }
        }
        outcomes
    }

    /// Puts `part` in force, in a new generation unless it is what is in
    /// force already (a comment edited, a file rewritten as it was).
    fn apply(&self, part: Part) {
        let mut current = self
            .shared
            .current
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let mut base = current.base.clone();
        let mut registries_d = Arc::clone(&current.registries_d);
        match part {
            Part::RegistriesD(new) if new == *registries_d => return,
            Part::RegistriesD(new) => registries_d = Arc::new(new),
            Part::RegistriesConf(new) if base.registries_conf.as_ref() == Some(&new) => return,
            Part::RegistriesConf(new) => base.registries_conf = Some(new),
            Part::AuthFile(new) => base.auth_file = new,
        }
        *current = Arc::new(Snapshot {
            base,
            registries_d,
            generation: current.generation.wrapping_add(1),
        });
    }
}

impl Files {
    /// The configured file or folder, for messages.
    fn path(&self, which: Which) -> PathBuf {
        match which {
            Which::RegistriesD => self.registries_d.clone(),
            Which::RegistriesConf => self
                .registries_conf
                .clone()
                .unwrap_or_else(|| DEFAULT_REGISTRIES_CONF.into()),
            Which::AuthFile => self
                .authfile
                .clone()
                .unwrap_or_else(|| "the default auth file".into()),
        }
    }

    /// What the files of a part hold now.
    fn seen(&self, which: Which) -> Seen {
        let mut all = Vec::new();
        let existed = match which {
            Which::RegistriesD => fingerprint_dir(&mut all, &self.registries_d, b".yaml"),
            Which::RegistriesConf => match &self.registries_conf {
                Some(path) => fingerprint_file(&mut all, path),
                None => {
                    fingerprint_file(&mut all, Path::new(DEFAULT_REGISTRIES_CONF));
                    fingerprint_dir(&mut all, Path::new(DEFAULT_REGISTRIES_CONF_DIR), b".conf");
                    // The system files may come and go, as for
                    // containers/image.
                    false
                }
            },
            Which::AuthFile => match &self.authfile {
                Some(path) => fingerprint_file(&mut all, path),
                None => {
                    for path in
                        criguard_registry::default_auth_file_paths(|name| std::env::var_os(name))
                    {
                        fingerprint_file(&mut all, &path);
                    }
                    false
                }
            },
        };
        Seen {
            fingerprint: sha256(&all),
            existed,
        }
    }

    /// Loads a part as the start-up does (`RegistriesD::load_dir`, and
    /// `RegistryConfig::from_system_files` one file at a time).
    fn load(&self, which: Which) -> Result<Part, String> {
        let message = |e: &dyn std::fmt::Display| e.to_string();
        match which {
            Which::RegistriesD => RegistriesD::load_dir(&self.registries_d)
                .map(Part::RegistriesD)
                .map_err(|e| message(&e)),
            Which::RegistriesConf => match &self.registries_conf {
                Some(path) => RegistriesConf::load(path, None),
                None => RegistriesConf::load(
                    Path::new(DEFAULT_REGISTRIES_CONF),
                    Some(Path::new(DEFAULT_REGISTRIES_CONF_DIR)),
                ),
            }
            .map(Part::RegistriesConf)
            .map_err(|e| message(&e)),
            Which::AuthFile => match &self.authfile {
                Some(path) => AuthFile::load(path).map(Some),
                None => AuthFile::load_default(),
            }
            .map(Part::AuthFile)
            .map_err(|e| message(&e)),
        }
    }
}

/// Appends `path` and its content's digest (or why it cannot be read);
/// returns whether it exists.
fn fingerprint_file(all: &mut Vec<u8>, path: &Path) -> bool {
    all.extend_from_slice(format!("\0{}\0", path.display()).as_bytes());
    match criguard_files::read_limited(path, MAX_WATCHED_FILE_SIZE) {
        Ok(content) => {
            all.extend_from_slice(sha256(&content).to_string().as_bytes());
            true
        }
        Err(e) => {
            all.extend_from_slice(format!("unreadable: {e}").as_bytes());
            !e.is_not_found()
        }
    }
}

/// Appends the folder's files whose names end with `suffix`, in name
/// order; returns whether the folder exists.
fn fingerprint_dir(all: &mut Vec<u8>, dir: &Path, suffix: &[u8]) -> bool {
    all.extend_from_slice(format!("\0{}/\0", dir.display()).as_bytes());
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            all.extend_from_slice(format!("unlistable: {e}").as_bytes());
            return e.kind() != std::io::ErrorKind::NotFound;
        }
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|entry| match entry {
            Ok(entry) => Some(entry.path()),
            Err(e) => {
                all.extend_from_slice(format!("unlistable entry: {e}").as_bytes());
                None
            }
        })
        .filter(|path| {
            path.file_name()
                .is_some_and(|name| name.as_encoded_bytes().ends_with(suffix))
        })
        .collect();
    paths.sort();
    for path in paths {
        fingerprint_file(all, &path);
    }
    true
}

impl Reloadable for Registries {
    fn reload(&self) -> Vec<ReloadOutcome> {
        Registries::reload(self)
    }

    fn folders(&self) -> Vec<PathBuf> {
        let files = &self.shared.files;
        let mut folders: Vec<PathBuf> = with_parent(&files.registries_d).collect();
        match &files.registries_conf {
            Some(path) => folders.extend(path.parent().map(Path::to_owned)),
            None => folders.extend(with_parent(Path::new(DEFAULT_REGISTRIES_CONF_DIR))),
        }
        match &files.authfile {
            Some(path) => folders.extend(path.parent().map(Path::to_owned)),
            None => folders.extend(
                criguard_registry::default_auth_file_paths(|name| std::env::var_os(name))
                    .iter()
                    .filter_map(|path| path.parent().map(Path::to_owned)),
            ),
        }
        folders
    }
}

impl RegistryAccess for Registries {
    type Source = RegistrySource;

    fn source(&self, credentials: Option<Credentials>) -> Result<RegistrySource, SourceError> {
        let snapshot = self.snapshot();
        let config = match credentials {
            None => snapshot.base.clone(),
            Some(credentials) => RegistryConfig {
                credentials: Some(credentials),
                ..snapshot.base.clone()
            },
        };
        Ok(RegistrySource::new(
            Arc::new(Registry::new(config)?),
            Arc::clone(&snapshot.registries_d),
            self.shared.platform.clone(),
        ))
    }

    fn generation(&self) -> u64 {
        self.snapshot().generation
    }
}

#[cfg(test)]
mod tests;
