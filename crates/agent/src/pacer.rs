//! When the agent renders: never before both kinds have been listed in
//! full (an empty cache must not replace a good set), and once per burst
//! of changes, a short while after its first change, so that `kubectl
//! apply -f dir/` of many objects is one write, not many.

use std::time::{Duration, Instant};

/// The two kinds the agent watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Watched {
    Cluster,
    Namespaced,
}

/// The render schedule, sans IO: events in, the next due time out.
#[derive(Debug, Clone)]
pub struct Pacer {
    listed_cluster: bool,
    listed_namespaced: bool,
    due: Option<Instant>,
    debounce: Duration,
}

impl Pacer {
    pub fn new(debounce: Duration) -> Pacer {
        Pacer {
            listed_cluster: false,
            listed_namespaced: false,
            // The first render is due as soon as both are listed.
            due: None,
            debounce,
        }
    }

    /// A kind's list is complete (a watcher's `InitDone`, also after a
    /// re-list). Renders then, at the latest.
    pub fn listed(&mut self, kind: Watched, now: Instant) {
        match kind {
            Watched::Cluster => self.listed_cluster = true,
            Watched::Namespaced => self.listed_namespaced = true,
        }
        self.changed(now);
    }

    /// An object was added, changed or deleted.
    pub fn changed(&mut self, now: Instant) {
        if self.due.is_none() {
            self.due = Some(now + self.debounce);
        }
    }

    /// Whether both kinds have been listed in full.
    pub fn synced(&self) -> bool {
        self.listed_cluster && self.listed_namespaced
    }

    /// When to render next: `None` while nothing is pending or a kind has
    /// not been listed yet.
    pub fn due(&self) -> Option<Instant> {
        self.due.filter(|_| self.synced())
    }

    /// A render ran; the next one waits for a change.
    pub fn rendered(&mut self) {
        self.due = None;
    }

    /// A render's result could not be written: try again at `at` even
    /// without a change.
    pub fn retry_at(&mut self, at: Instant) {
        self.due = Some(at);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEBOUNCE: Duration = Duration::from_millis(300);

    #[test]
    fn nothing_is_due_until_both_kinds_are_listed() {
        let t0 = Instant::now();
        let mut pacer = Pacer::new(DEBOUNCE);
        pacer.changed(t0);
        assert_eq!(pacer.due(), None);
        pacer.listed(Watched::Cluster, t0);
        assert_eq!(pacer.due(), None);
        pacer.listed(Watched::Namespaced, t0 + DEBOUNCE);
        // Due from the first change, not pushed back by later events.
        assert_eq!(pacer.due(), Some(t0 + DEBOUNCE));
    }

    #[test]
    fn a_burst_is_one_render_and_the_next_change_schedules_again() {
        let t0 = Instant::now();
        let mut pacer = Pacer::new(DEBOUNCE);
        pacer.listed(Watched::Cluster, t0);
        pacer.listed(Watched::Namespaced, t0);
        pacer.rendered();
        assert_eq!(pacer.due(), None);
        let t1 = t0 + Duration::from_secs(5);
        pacer.changed(t1);
        pacer.changed(t1 + Duration::from_millis(100));
        pacer.changed(t1 + Duration::from_millis(200));
        assert_eq!(pacer.due(), Some(t1 + DEBOUNCE));
        pacer.rendered();
        assert_eq!(pacer.due(), None);
    }

    #[test]
    fn a_failed_write_is_retried_without_a_change() {
        let t0 = Instant::now();
        let mut pacer = Pacer::new(DEBOUNCE);
        pacer.listed(Watched::Cluster, t0);
        pacer.listed(Watched::Namespaced, t0);
        pacer.rendered();
        pacer.retry_at(t0 + Duration::from_secs(5));
        assert_eq!(pacer.due(), Some(t0 + Duration::from_secs(5)));
        assert!(pacer.synced());
    }
}
