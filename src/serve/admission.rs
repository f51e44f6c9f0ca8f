//! Which connections a listener keeps open.
//!
//! A listener holds at most [`ConnectionLimits::max_connections`]. At the
//! limit, a new connection takes the place of the one that has been idle
//! (no request in flight, no reply being sent) the longest; if every one is
//! busy, the new connection is closed at once. So a flood of idle
//! connections (each costs a file descriptor and nothing else) can neither
//! exhaust the descriptors nor keep a new client such as a health check out:
//! it only pushes the flood's own oldest connections out.
//!
//! Not covered: a flood of *busy* connections (requests whose bodies arrive
//! slowly) holds its places until the body deadline (30 s); it is bounded by
//! the limit, not prevented.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

/// How many connections a listener keeps, and how long a client has to send
/// a request's headers (`listener "tcp"`: `max_connections`,
/// `http_read_header_timeout`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionLimits {
    pub max_connections: usize,
    /// Counted from the connection's start, and again from the end of each
    /// reply: an idle keep-alive connection is closed after it too.
    pub header_read_timeout: Duration,
}

/// File descriptors kept free besides the connections: storage, audit files,
/// the listeners themselves, TLS certificate reloads.
pub const RESERVED_FDS: u64 = 256;

impl ConnectionLimits {
    pub const DEFAULT: Self = Self {
        max_connections: 4096,
        // Longer than Vault's 10 s: here it is also how long an idle
        // keep-alive connection stays open (Vault has a separate 5 min).
        header_read_timeout: Duration::from_secs(30),
    };
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Raises the soft limit on open files to the hard limit, and returns the
/// limit in force (what the connections of every listener must fit in,
/// with [`RESERVED_FDS`] to spare).
pub fn raise_fd_limit() -> Result<u64, String> {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)
        .map_err(|e| format!("cannot read the open file limit: {e}"))?;
    if soft >= hard {
        return Ok(soft);
    }
    match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
        Ok(()) => Ok(hard),
        Err(e) => {
            tracing::warn!(soft, hard, error = %e, "cannot raise the open file limit");
            Ok(soft)
        }
    }
}

/// One open connection, as the table sees it.
#[derive(Debug)]
pub(super) struct Slot {
    /// Requests in flight (a reply not yet sent counts).
    busy: AtomicUsize,
    /// When the last request ended (or the connection opened).
    idle_since: Mutex<Instant>,
    /// Told when a new connection takes this one's place.
    evicted: Notify,
}

impl Slot {
    /// Resolves when the connection must close (it was idle the longest
    /// when a new one needed its place).
    pub(super) async fn evicted(&self) {
        self.evicted.notified().await;
    }

    /// Marks a request in flight until the guard drops.
    pub(super) fn busy(self: &Arc<Self>) -> BusyGuard {
        self.busy.fetch_add(1, Ordering::SeqCst);
        BusyGuard(Arc::clone(self))
    }

    pub(super) fn is_idle(&self) -> bool {
        self.busy.load(Ordering::SeqCst) == 0
    }

    fn idle_since(&self) -> Instant {
        *self
            .idle_since
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A request in flight on a connection; its end makes the connection idle.
#[derive(Debug)]
pub(super) struct BusyGuard(Arc<Slot>);

impl Drop for BusyGuard {
    fn drop(&mut self) {
        *self
            .0
            .idle_since
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Instant::now();
        self.0.busy.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The open connections of one listener.
#[derive(Debug)]
pub(super) struct Admission {
    max: usize,
    table: Mutex<Table>,
}

#[derive(Debug, Default)]
struct Table {
    next_id: u64,
    open: HashMap<u64, Arc<Slot>>,
}

impl Admission {
    pub(super) fn new(max: usize) -> Arc<Self> {
        Arc::new(Self {
            max: max.max(1),
            table: Mutex::new(Table::default()),
        })
    }

    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A place for a new connection, or `None` when every place is taken by
    /// a busy connection. At the limit, the connection idle the longest is
    /// told to close and loses its place.
    pub(super) fn admit(self: &Arc<Self>) -> Option<Admitted> {
        let mut table = self.table();
        if table.open.len() >= self.max {
            let oldest_idle = table
                .open
                .iter()
                .filter(|(_, slot)| slot.is_idle())
                .min_by_key(|(_, slot)| slot.idle_since())
                .map(|(id, _)| *id)?;
            if let Some(slot) = table.open.remove(&oldest_idle) {
                slot.evicted.notify_one();
            }
        }
        let id = table.next_id;
        table.next_id += 1;
        let slot = Arc::new(Slot {
            busy: AtomicUsize::new(0),
            idle_since: Mutex::new(Instant::now()),
            evicted: Notify::new(),
        });
        table.open.insert(id, Arc::clone(&slot));
        Some(Admitted {
            admission: Arc::clone(self),
            id,
            slot,
        })
    }

    #[cfg(test)]
    pub(super) fn open(&self) -> usize {
        self.table().open.len()
    }
}

/// A connection's place; dropped when the connection ends.
#[derive(Debug)]
pub(super) struct Admitted {
    admission: Arc<Admission>,
    id: u64,
    pub(super) slot: Arc<Slot>,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        self.admission.table().open.remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_the_limit_the_oldest_idle_connection_makes_room() {
        let admission = Admission::new(2);
        let first = admission.admit().unwrap();
        let second = admission.admit().unwrap();
        let _busy = second.slot.busy();
        let third = admission.admit().expect("the idle one makes room");
        assert_eq!(admission.open(), 2);
        // The first was told to close; its place is already the third's.
        let evicted = first.slot.evicted.notified();
        assert!(
            futures_now(evicted),
            "the idle connection was told to close"
        );
        let _busy_too = third.slot.busy();
        assert!(admission.admit().is_none(), "every place busy: refused");
        drop(third);
        assert!(
            admission.admit().is_some(),
            "a closed connection frees its place"
        );
    }

    /// Whether a `Notify` already holds a permit (without a runtime).
    fn futures_now(notified: tokio::sync::futures::Notified<'_>) -> bool {
        use std::future::Future as _;
        let mut notified = std::pin::pin!(notified);
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        notified.as_mut().poll(&mut cx).is_ready()
    }
}
