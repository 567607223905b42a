//! Configuration that changes while the daemon serves: policies, and the
//! files that say how registries are reached and where signatures live.
//!
//! Each kind of configuration is a [`Reloadable`]; one watcher re-reads all
//! of them on change notifications about their folders and on a timer, for
//! file systems that send none (NFS, some container volumes).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Which kind of file a reload was about: a fixed set, so it can be a
/// metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigKind {
    /// The global policy, a namespace policy or the policy folder.
    Policy,
    RegistriesD,
    RegistriesConf,
    AuthFile,
}

impl ConfigKind {
    pub fn label(self) -> &'static str {
        match self {
            ConfigKind::Policy => "policy",
            ConfigKind::RegistriesD => "registries-d",
            ConfigKind::RegistriesConf => "registries-conf",
            ConfigKind::AuthFile => "auth-file",
        }
    }
}

/// What a reload did to one file or folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReloadOutcome {
    Applied {
        kind: ConfigKind,
        path: PathBuf,
    },
    /// Invalid, unreadable or gone: what that means for the images it
    /// governs is in `reason`.
    Refused {
        kind: ConfigKind,
        path: PathBuf,
        reason: String,
    },
    /// A namespace policy deleted: its namespace is on the global policy.
    Removed {
        kind: ConfigKind,
        path: PathBuf,
    },
}

/// Configuration that can be re-read while serving.
pub trait Reloadable: Send + Sync + 'static {
    /// Re-reads the files and applies what changed. An unchanged file,
    /// valid or not, gives no outcome, so a broken file is reported once
    /// rather than at every poll.
    fn reload(&self) -> Vec<ReloadOutcome>;

    /// The folders whose changes may change it.
    fn folders(&self) -> Vec<PathBuf>;
}

/// Reloads `sources` on file-system notifications about their folders and
/// every `poll` in any case, reporting each outcome to `report`. Runs until
/// the task is dropped.
pub async fn watch(
    sources: Vec<Arc<dyn Reloadable>>,
    poll: Duration,
    report: impl Fn(&ReloadOutcome),
) {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<()>(1);
    let mut folders: Vec<PathBuf> = sources.iter().flat_map(|s| s.folders()).collect();
    folders.sort();
    folders.dedup();
    // Kept alive for as long as the loop runs.
    let _watcher = notifier(&folders, tx);
    let mut timer = tokio::time::interval(poll);
    timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = timer.tick() => {}
            Some(()) = rx.recv() => {
                // Editors and `kubectl` write in several steps; settle.
                tokio::time::sleep(Duration::from_millis(100)).await;
                while rx.try_recv().is_ok() {}
            }
        }
        let sources = sources.clone();
        let outcomes = tokio::task::spawn_blocking(move || {
            sources.iter().flat_map(|s| s.reload()).collect::<Vec<_>>()
        })
        .await
        .unwrap_or_default();
        for outcome in &outcomes {
            report(outcome);
        }
    }
}

/// A watcher on every folder that exists now; the others, and every folder
/// when notifications are unavailable, are only polled.
fn notifier(
    folders: &[PathBuf],
    tx: tokio::sync::mpsc::Sender<()>,
) -> Option<notify::RecommendedWatcher> {
    use notify::Watcher as _;
    let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if event.is_ok() {
            // Full means a reload is already due.
            let _ = tx.try_send(());
        }
    });
    let mut watcher = match watcher {
        Ok(watcher) => watcher,
        Err(e) => {
            tracing::warn!(error = %e, "configuration files are only polled: no change notifications");
            return None;
        }
    };
    for folder in folders.iter().filter(|f| f.is_dir()) {
        if let Err(e) = watcher.watch(folder, notify::RecursiveMode::NonRecursive) {
            tracing::warn!(folder = %folder.display(), error = %e, "only polled: no change notifications");
        }
    }
    Some(watcher)
}

/// `path` and the folder it is in: a folder's own disappearance is seen
/// in its parent.
pub(crate) fn with_parent(path: &Path) -> impl Iterator<Item = PathBuf> {
    std::iter::once(path.to_owned()).chain(path.parent().map(Path::to_owned))
}
