//! Applying other nodes' changes to this node's caches, as the storage's
//! change feed announces them (a thread of its own, for as long as the
//! process lives).
//!
//! Changes are collapsed before they are applied: every change waiting in the
//! feed is drained into a set of paths (the same path announced twice is read
//! once), and a resync request (or more waiting paths than
//! [`MAX_PENDING_PATHS`]) replaces them all by one full reload. A change that
//! fails for a transient reason ([`StoreError::is_transient`]: storage
//! unavailable, a lost race) stays pending and is retried with backoff; any
//! other failure (a malformed path, perhaps a forged
//! notification) is logged and dropped, never answered with a full reload.
//! Full reloads are at least [`MIN_RELOAD_INTERVAL`] apart, so a flood of
//! notifications costs a bounded amount of storage reads.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;

use crate::storage::Change;
use crate::storage::{StoreError, StoreResult};

/// More paths than this waiting: reading everything is cheaper and bounded.
pub const MAX_PENDING_PATHS: usize = 10_000;
pub const MIN_RELOAD_INTERVAL: Duration = Duration::from_secs(1);
const RETRY_MIN: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(5);
const WARN_EVERY: Duration = Duration::from_secs(5);

/// What a node's caches must do when storage changed elsewhere.
pub trait ApplyChanges {
    fn apply_change(&self, path: &str) -> StoreResult<()>;
    fn reload_all(&self) -> StoreResult<()>;
}

/// Changes received and not yet applied.
#[derive(Debug, Default)]
pub struct Pending {
    paths: BTreeSet<String>,
    reload: bool,
}

impl Pending {
    pub fn add(&mut self, change: Change) {
        if self.reload {
            return;
        }
        match change {
            Change::Path(path) if self.paths.len() < MAX_PENDING_PATHS => {
                self.paths.insert(path);
            }
            Change::Path(_) | Change::Resync => {
                self.reload = true;
                self.paths.clear();
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        !self.reload && self.paths.is_empty()
    }
}

/// Rate-limited warnings: at most one line per [`WARN_EVERY`], with a count.
#[derive(Debug)]
struct Throttle {
    last: Option<Instant>,
    suppressed: u64,
}

impl Throttle {
    fn warn(&mut self, message: &str, error: &StoreError) {
        let now = Instant::now();
        if self.last.is_some_and(|t| now - t < WARN_EVERY) {
            self.suppressed += 1;
            return;
        }
        tracing::warn!(%error, suppressed = self.suppressed, "{message}");
        self.last = Some(now);
        self.suppressed = 0;
    }
}

/// Applies pending changes; remembers when the next attempt may run.
#[derive(Debug)]
pub struct Applier {
    pub pending: Pending,
    backoff: Duration,
    next_attempt: Instant,
    retry_log: Throttle,
    drop_log: Throttle,
}

impl Default for Applier {
    fn default() -> Self {
        Self {
            pending: Pending::default(),
            backoff: RETRY_MIN,
            next_attempt: Instant::now(),
            retry_log: Throttle {
                last: None,
                suppressed: 0,
            },
            drop_log: Throttle {
                last: None,
                suppressed: 0,
            },
        }
    }
}

impl Applier {
    /// How long to wait before [`Applier::apply`] may run (zero: now).
    pub fn wait(&self) -> Duration {
        self.next_attempt.saturating_duration_since(Instant::now())
    }

    /// Apply everything pending. What failed for a transient reason stays
    /// pending, and the next attempt waits for a growing backoff.
    pub fn apply(&mut self, target: &impl ApplyChanges) {
        let mut failed = false;
        if self.pending.reload {
            match target.reload_all() {
                Ok(()) => {
                    self.pending.reload = false;
                    crate::metrics::metrics().change_reloads.increment(1);
                }
                Err(e) => {
                    self.retry_log
                        .warn("reloading the state other nodes share failed; retrying", &e);
                    failed = true;
                }
            }
            self.next_attempt = Instant::now() + MIN_RELOAD_INTERVAL;
        } else {
            for path in std::mem::take(&mut self.pending.paths) {
                match target.apply_change(&path) {
                    Ok(()) => {}
                    Err(e) if e.is_transient() => {
                        self.retry_log
                            .warn("applying another node's change failed; retrying", &e);
                        self.pending.paths.insert(path);
                        failed = true;
                    }
                    Err(e) => self.drop_log.warn(
                        "a change announced by the storage could not be applied; ignored",
                        &e,
                    ),
                }
            }
        }
        if failed {
            self.next_attempt = self.next_attempt.max(Instant::now() + self.backoff);
            self.backoff = (self.backoff * 2).min(RETRY_MAX);
        } else {
            self.backoff = RETRY_MIN;
        }
    }
}

/// Start the thread that applies `changes` to whatever state is unsealed.
/// While sealed, changes are not applied but `missed` is set, so the next
/// unseal reads everything again.
pub fn follow<T: ApplyChanges + Send + Sync + 'static>(
    changes: Receiver<Change>,
    unsealed: Arc<ArcSwapOption<T>>,
    missed: Arc<AtomicBool>,
) {
    let spawned = std::thread::Builder::new()
        .name("transitd-changes".to_owned())
        .spawn(move || {
            let mut applier = Applier::default();
            // When the oldest change not yet applied arrived.
            let mut waiting_since: Option<Instant> = None;
            loop {
                let received = if applier.pending.is_empty() {
                    changes.recv().map_err(|_| RecvTimeoutError::Disconnected)
                } else {
                    changes.recv_timeout(applier.wait())
                };
                match received {
                    Ok(change) => {
                        waiting_since.get_or_insert_with(Instant::now);
                        applier.pending.add(change);
                    }
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => return,
                }
                while let Ok(change) = changes.try_recv() {
                    applier.pending.add(change);
                }
                if !applier.wait().is_zero() {
                    continue;
                }
                match unsealed.load_full() {
                    Some(current) => {
                        applier.apply(&*current);
                        if applier.pending.is_empty()
                            && let Some(since) = waiting_since.take()
                        {
                            let m = crate::metrics::metrics();
                            m.change_apply.record(since.elapsed().as_secs_f64());
                        }
                    }
                    None => {
                        waiting_since = None;
                        missed.store(true, Ordering::SeqCst);
                        applier.pending = Pending::default();
                    }
                }
            }
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the change follower");
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    /// Records calls; fails the paths (and reloads) it is told to.
    #[derive(Default)]
    struct Recorder {
        calls: Mutex<Vec<String>>,
        unavailable: Mutex<BTreeSet<String>>,
    }

    impl ApplyChanges for Recorder {
        fn apply_change(&self, path: &str) -> StoreResult<()> {
            self.calls.lock().unwrap().push(path.to_owned());
            if self.unavailable.lock().unwrap().contains(path) {
                return Err(StoreError::Unavailable("down".to_owned()));
            }
            if path.starts_with("bad") {
                return Err(StoreError::Internal("malformed".to_owned()));
            }
            Ok(())
        }
        fn reload_all(&self) -> StoreResult<()> {
            self.calls.lock().unwrap().push("RELOAD".to_owned());
            if self.unavailable.lock().unwrap().contains("RELOAD") {
                return Err(StoreError::Unavailable("down".to_owned()));
            }
            Ok(())
        }
    }

    fn path(p: &str) -> Change {
        Change::Path(p.to_owned())
    }

    #[test]
    fn repeated_paths_are_read_once_and_a_resync_replaces_them_all() {
        let r = Recorder::default();
        let mut a = Applier::default();
        for c in [path("x"), path("y"), path("x"), path("x")] {
            a.pending.add(c);
        }
        a.apply(&r);
        assert_eq!(*r.calls.lock().unwrap(), ["x", "y"]);
        r.calls.lock().unwrap().clear();
        for c in [path("x"), Change::Resync, path("y"), Change::Resync] {
            a.pending.add(c);
        }
        a.apply(&r);
        assert_eq!(*r.calls.lock().unwrap(), ["RELOAD"]);
        assert!(a.pending.is_empty());
    }

    #[test]
    fn a_flood_of_paths_becomes_one_reload_and_reloads_are_spaced() {
        let r = Recorder::default();
        let mut a = Applier::default();
        for i in 0..=MAX_PENDING_PATHS {
            a.pending.add(path(&format!("p{i}")));
        }
        assert!(a.pending.paths.is_empty() && a.pending.reload);
        a.apply(&r);
        assert_eq!(r.calls.lock().unwrap().len(), 1);
        assert!(
            a.wait() > MIN_RELOAD_INTERVAL / 2,
            "the next attempt may come at once after a reload"
        );
    }

    #[test]
    fn unavailable_storage_keeps_the_change_pending_with_growing_backoff() {
        let r = Recorder::default();
        r.unavailable.lock().unwrap().insert("x".to_owned());
        let mut a = Applier::default();
        a.pending.add(path("x"));
        a.pending.add(path("y"));
        a.apply(&r);
        let first = a.wait();
        assert!(first > Duration::ZERO && !a.pending.is_empty());
        a.next_attempt = Instant::now();
        a.apply(&r);
        assert!(a.wait() > first, "the backoff did not grow");
        r.unavailable.lock().unwrap().clear();
        a.next_attempt = Instant::now();
        a.apply(&r);
        assert!(a.pending.is_empty());
        assert_eq!(*r.calls.lock().unwrap(), ["x", "y", "x", "x"]);
        assert_eq!(a.backoff, RETRY_MIN);
    }

    #[test]
    fn a_change_that_lost_every_race_is_retried() {
        struct Contested;
        impl ApplyChanges for Contested {
            fn apply_change(&self, _: &str) -> StoreResult<()> {
                Err(crate::storage::Contended::Entry("the key").into())
            }
            fn reload_all(&self) -> StoreResult<()> {
                Ok(())
            }
        }
        let mut a = Applier::default();
        a.pending.add(path("x"));
        a.apply(&Contested);
        assert!(!a.pending.is_empty(), "the change was dropped");
        assert!(a.wait() > Duration::ZERO);
    }

    #[test]
    fn a_malformed_path_is_dropped_without_a_reload() {
        let r = Recorder::default();
        let mut a = Applier::default();
        a.pending.add(path("bad/one"));
        a.apply(&r);
        assert_eq!(*r.calls.lock().unwrap(), ["bad/one"]);
        assert!(a.pending.is_empty());
        assert!(a.wait().is_zero());
    }

    #[test]
    fn a_failed_reload_is_retried() {
        let r = Recorder::default();
        r.unavailable.lock().unwrap().insert("RELOAD".to_owned());
        let mut a = Applier::default();
        a.pending.add(Change::Resync);
        a.apply(&r);
        assert!(a.pending.reload);
        r.unavailable.lock().unwrap().clear();
        a.next_attempt = Instant::now();
        a.apply(&r);
        assert!(a.pending.is_empty());
    }

    #[test]
    fn the_thread_applies_changes_and_notes_them_missed_while_sealed() {
        let (tx, rx) = std::sync::mpsc::channel();
        let unsealed = Arc::new(ArcSwapOption::<Recorder>::empty());
        let missed = Arc::new(AtomicBool::new(false));
        follow(rx, unsealed, Arc::clone(&missed));
        tx.send(path("x")).unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while !missed.load(Ordering::SeqCst) {
            assert!(
                Instant::now() < deadline,
                "the change was not noted as missed"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}
