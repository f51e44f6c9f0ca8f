//! The worker threads every operation runs on, and the connections they
//! share.
//!
//! Each worker borrows a connection from a shared pool of idle ones (the most
//! recently used first) or opens a new one, so there are never more than
//! `max_parallel` connections for operations (plus one for the change feed
//! once someone subscribes). A connection that failed is dropped, and the next
//! operation opens a new one: when the database is down every call fails with
//! `Unavailable("postgresql: ...")` as soon as the connection attempt fails,
//! and the storage works again as soon as the database is back. Every session
//! runs with a `statement_timeout` and a `lock_timeout`, so a stuck query is
//! cancelled by the server too.
//!
//! # Retries
//!
//! An operation is retried (once, on a new connection) only if that cannot
//! apply a change twice. Before anything is sent, a pooled connection that
//! sat idle for more than [`IDLE_CHECK_AFTER`] ([`WRITE_CHECK_AFTER`] for a
//! write) is checked with an empty query, which finds a session that the
//! server closed meanwhile (restart, `pg_terminate_backend`). A connection
//! failing the check, or failing while the statement is prepared, is
//! replaced and the operation goes on: nothing with an effect was sent yet.
//! Once the statement was sent, a lost connection leaves its outcome unknown:
//! a read is retried once on a new connection, a write never is (a
//! compare-and-swap whose first attempt committed unseen would report `false`
//! and make its caller apply its change twice; a repeated `put` could
//! overwrite a newer write of another node). The write's caller gets
//! `Unavailable` saying that it may have been applied. The job state enforces
//! it: a write goes to "sent" once. (An `ERROR` answer of the server, such
//! as a timeout, means that the statement failed and was rolled back.)

use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use super::StorageResult;
use super::deadline::{Effect, Job, Ticket};
use super::session::{Conn, Settings};

/// A pooled connection idle for longer than this is checked with a round trip
/// before use: the server may have restarted or closed it meanwhile.
pub const IDLE_CHECK_AFTER: Duration = Duration::from_secs(1);

/// The same for a write, which cannot be retried once sent: a session closed
/// by the server is only seen by sending something, and a check costs a round
/// trip (about a statement's), so it is skipped only on a connection this
/// busy.
pub const WRITE_CHECK_AFTER: Duration = Duration::from_millis(100);

/// How long the check of an idle connection may take.
pub(super) const VALIDATE_TIMEOUT: Duration = Duration::from_secs(2);

/// The idle connections and the workers' bookkeeping.
pub(super) struct Pool {
    pub(super) settings: Arc<Settings>,
    pub(super) max: usize,
    pub(super) idle: Mutex<Vec<Conn>>,
    pub(super) workers: Mutex<Workers>,
    pub(super) queue: Mutex<mpsc::Receiver<Job>>,
}

#[derive(Default)]
pub(super) struct Workers {
    pub(super) spawned: usize,
    idle: usize,
    pending: usize,
}

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing guarded here is left half-updated by a panic.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Pool {
    /// Start a worker if the queued jobs outnumber the idle workers.
    pub(super) fn job_queued(self: &Arc<Self>) {
        let mut w = lock(&self.workers);
        w.pending += 1;
        if w.pending <= w.idle || w.spawned >= self.max {
            return;
        }
        w.spawned += 1;
        w.idle += 1;
        let index = w.spawned;
        drop(w);
        let pool = Arc::clone(self);
        let started = thread::Builder::new()
            .name(format!("transitd-pg-{index}"))
            .spawn(move || pool.work());
        if let Err(e) = started {
            tracing::error!(error = %e, "cannot start a postgresql storage worker thread");
            let mut w = lock(&self.workers);
            w.spawned -= 1;
            w.idle -= 1;
        }
    }

    fn work(&self) {
        loop {
            let job = lock(&self.queue).recv();
            let Ok(job) = job else {
                // The storage was dropped.
                return;
            };
            {
                let mut w = lock(&self.workers);
                w.pending = w.pending.saturating_sub(1);
                w.idle = w.idle.saturating_sub(1);
            }
            if job.ticket.take() {
                // A panic must not cost the pool a worker; the job's answer
                // channel is dropped, which its caller reports.
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job.work));
            }
            lock(&self.workers).idle += 1;
        }
    }

    /// Run `f` on a connection: an idle one or a new one. A failure that
    /// closed a reused connection (the server restarted, or closed it, since
    /// its last use) is retried once on a new connection if the ticket allows
    /// it: a read, or a write not sent yet.
    pub(super) fn with_conn<T>(
        &self,
        ticket: &Ticket,
        mut f: impl FnMut(&mut Conn, &Settings, &Ticket) -> StorageResult<T>,
    ) -> StorageResult<T> {
        let (mut conn, reused) = self.checkout(ticket.effect)?;
        let mut result = f(&mut conn, &self.settings, ticket);
        if result.is_err() && reused && conn.client.is_closed() && ticket.may_retry() {
            tracing::debug!(server = %self.settings.server, "retrying on a new postgresql connection");
            conn = Conn::new(self.settings.open()?);
            result = f(&mut conn, &self.settings, ticket);
        }
        if !conn.client.is_closed() {
            conn.last_used = Instant::now();
            lock(&self.idle).push(conn);
        }
        result
    }

    /// A connection, and whether it was reused. Sends nothing with an effect.
    fn checkout(&self, effect: Effect) -> StorageResult<(Conn, bool)> {
        // A session that the server closed (restart, pg_terminate_backend)
        // is found closed by the check rather than by the statement, which
        // could then not be retried if it is a write.
        let check_after = match effect {
            Effect::None => IDLE_CHECK_AFTER,
            Effect::Write => WRITE_CHECK_AFTER,
        };
        loop {
            let candidate = lock(&self.idle).pop();
            let Some(mut conn) = candidate else {
                return Ok((Conn::new(self.settings.open()?), false));
            };
            if conn.client.is_closed() {
                continue;
            }
            if conn.last_used.elapsed() > check_after
                && conn.client.is_valid(VALIDATE_TIMEOUT).is_err()
            {
                // The server or network is silent: the other idle
                // connections are no better, and checking each would cost
                // VALIDATE_TIMEOUT apiece.
                tracing::debug!(server = %self.settings.server, "dropping a dead postgresql connection");
                return Ok((Conn::new(self.settings.open()?), false));
            }
            return Ok((conn, true));
        }
    }
}
