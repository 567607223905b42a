//! The loop the agent and the status writer share: two reflectors (the
//! cluster-wide and the namespaced kind) feed a [`Pacer`]; when it is
//! due, a [`Handler`] gets the cached objects of both kinds.
//!
//! The handler is never called before both kinds are listed in full, and
//! a reflector swaps its cache in only at the end of a list, so a re-list
//! after a lost watch never shows a partial cache: an empty or half-filled
//! cache never replaces good files. The API server going away only stops
//! the calls: the watchers retry with back-off, and errors are logged and
//! counted.

use std::fmt::Debug;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use kube::runtime::watcher::{self, Event};
use kube::runtime::{WatchStreamExt as _, reflector};
use kube::{Api, Resource};
use serde::de::DeserializeOwned;

use crate::metrics::Metrics;
use crate::pacer::{Pacer, Watched};

/// How long a handler that asked to retry waits without a change.
pub const RETRY_AFTER: Duration = Duration::from_secs(5);

/// Why the loop stopped: both watch streams ended, which watchers with
/// back-off never do on their own.
#[derive(Debug, thiserror::Error)]
#[error("the watches of the policy objects ended")]
pub struct WatchEnded;

/// What a handler asks of the loop after a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handled {
    /// Call again after the next change.
    Done,
    /// Call again after [`RETRY_AFTER`] even without a change (a write or
    /// a patch failed).
    Retry,
}

/// Acts on the complete cached state of both kinds.
pub trait Handler<C, N> {
    fn handle(
        &mut self,
        cluster: Vec<Arc<C>>,
        namespaced: Vec<Arc<N>>,
    ) -> impl Future<Output = Handled> + Send;
}

/// The two kinds' names, for logs and metric labels.
#[derive(Debug, Clone, Copy)]
pub struct KindNames {
    pub cluster: &'static str,
    pub namespaced: &'static str,
}

/// Watches `cluster` and `namespaced` (each an `Api::all`) and calls
/// `handler` once both are listed and after each burst of changes,
/// `debounce` after its first change. Runs until dropped.
pub async fn run<C, N>(
    cluster: Api<C>,
    namespaced: Api<N>,
    names: KindNames,
    mut handler: impl Handler<C, N>,
    debounce: Duration,
    metrics: Arc<Metrics>,
) -> WatchEnded
where
    C: Resource<DynamicType = ()> + Clone + Debug + DeserializeOwned + Send + Sync + 'static,
    N: Resource<DynamicType = ()> + Clone + Debug + DeserializeOwned + Send + Sync + 'static,
{
    let (cluster_store, cluster_writer) = reflector::store::<C>();
    let (namespaced_store, namespaced_writer) = reflector::store::<N>();
    let cluster_events = watcher(cluster)
        .reflect(cluster_writer)
        .map(|e| (Watched::Cluster, e.map(|e| seen(&e))));
    let namespaced_events = watcher(namespaced)
        .reflect(namespaced_writer)
        .map(|e| (Watched::Namespaced, e.map(|e| seen(&e))));
    let mut events = std::pin::pin!(futures_util::stream::select(
        cluster_events,
        namespaced_events
    ));
    let mut pacer = Pacer::new(debounce);
    loop {
        let next = match pacer.due() {
            Some(due) => {
                tokio::select! {
                    next = events.next() => Some(next),
                    () = tokio::time::sleep_until(due.into()) => None,
                }
            }
            None => Some(events.next().await),
        };
        match next {
            None => {
                pacer.rendered();
                let cluster = sorted(cluster_store.state());
                let namespaced = sorted(namespaced_store.state());
                if handler.handle(cluster, namespaced).await == Handled::Retry {
                    pacer.retry_at(Instant::now() + RETRY_AFTER);
                }
            }
            Some(None) => return WatchEnded,
            Some(Some((kind, Ok(event)))) => match event {
                Seen::Listed => {
                    pacer.listed(kind, Instant::now());
                    metrics.set_synced(pacer.synced());
                }
                Seen::Changed => pacer.changed(Instant::now()),
                Seen::Listing => {}
            },
            Some(Some((kind, Err(e)))) => {
                let kind = match kind {
                    Watched::Cluster => names.cluster,
                    Watched::Namespaced => names.namespaced,
                };
                metrics.watch_error(kind);
                tracing::warn!(%kind, error = %e, "cannot watch the policy objects; retrying, nothing written meanwhile stays as it is");
            }
        }
    }
}

/// What a watcher event means for the schedule.
#[derive(Debug, Clone, Copy)]
enum Seen {
    /// A list completed (the cache now holds it whole).
    Listed,
    /// An object was added, changed or deleted.
    Changed,
    /// Part of a list under way.
    Listing,
}

fn seen<K>(event: &Event<K>) -> Seen {
    match event {
        Event::InitDone => Seen::Listed,
        Event::Apply(_) | Event::Delete(_) => Seen::Changed,
        Event::Init | Event::InitApply(_) => Seen::Listing,
    }
}

/// A watcher that retries with kube's default back-off for as long as
/// the API server is away.
fn watcher<K>(
    api: Api<K>,
) -> impl futures_util::Stream<Item = Result<Event<K>, watcher::Error>> + Send
where
    K: Resource<DynamicType = ()> + Clone + Debug + DeserializeOwned + Send + Sync + 'static,
{
    watcher::watcher(api, watcher::Config::default()).default_backoff()
}

/// Objects in a stable order (namespace, name), so that what a handler
/// gets does not depend on the cache's hash order.
pub fn sorted<K: Resource>(mut objects: Vec<Arc<K>>) -> Vec<Arc<K>> {
    objects.sort_by(|a, b| {
        let key = |o: &Arc<K>| (o.meta().namespace.clone(), o.meta().name.clone());
        key(a).cmp(&key(b))
    });
    objects
}

/// The node agent: watches both kinds cluster-wide and writes through
/// `agent` until dropped.
pub async fn run_node_agent<S: crate::writer::Sink>(
    client: kube::Client,
    agent: crate::node_agent::NodeAgent<S>,
    debounce: Duration,
    metrics: Arc<Metrics>,
) -> WatchEnded {
    run(
        Api::<criguard_kube_policy::ClusterImagePolicy>::all(client.clone()),
        Api::<criguard_kube_policy::ImagePolicy>::all(client),
        KIND_NAMES,
        agent,
        debounce,
        metrics,
    )
    .await
}

/// The status writer: watches both kinds cluster-wide and patches their
/// status through `writer` until dropped.
pub async fn run_status_writer(
    client: kube::Client,
    writer: crate::status_writer::StatusWriter,
    debounce: Duration,
    metrics: Arc<Metrics>,
) -> WatchEnded {
    run(
        Api::<criguard_kube_policy::ClusterImagePolicy>::all(client.clone()),
        Api::<criguard_kube_policy::ImagePolicy>::all(client),
        KIND_NAMES,
        writer,
        debounce,
        metrics,
    )
    .await
}

const KIND_NAMES: KindNames = KindNames {
    cluster: "ClusterImagePolicy",
    namespaced: "ImagePolicy",
};
