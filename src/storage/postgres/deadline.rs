//! Deadlines: a write is either never sent or waited for.
//!
//! An operation has [`OPERATION_TIMEOUT`] from the call to get its statement
//! *sent*: waiting for a worker, checking or opening a connection and
//! preparing the statement all count. Each job has an atomic state (queued,
//! preparing, sent, abandoned); the worker moves it to "sent" right before it
//! sends the statement, the caller to "abandoned" when the deadline passes,
//! and whichever comes first decides:
//!
//! - A write (`put`, `delete`, a compare-and-swap that may change something)
//!   not sent by its deadline is never sent, even if a worker already took
//!   it: the caller gets `Unavailable` and nothing happened.
//! - A write sent before its deadline is waited for, so that its caller gets
//!   its real outcome and is never told "failed" for a write that commits
//!   later. Once sent, a write takes at most the
//!   `statement_timeout` (4 s; it includes lock waits, `lock_timeout` being
//!   the same, and the commit) if the server works, plus the time TCP needs
//!   to notice a server or network that died meanwhile: `tcp_user_timeout`
//!   (10 s) for unacknowledged data, and for a silent connection keepalive
//!   probes after 15 s, every 5 s, the first unanswered one past
//!   `tcp_user_timeout` closing the connection: at most 20 s. So **a sent
//!   write finishes within 24 s** (4 s with a working server), and its caller
//!   waits at most [`OPERATION_TIMEOUT`] + 24 s in all. (A connection string
//!   setting `tcp_user_timeout` or `keepalives*` itself changes the 20 s.) The
//!   one case TCP cannot see is a server host that is up but whose
//!   PostgreSQL never answers (stopped process, storage hung in the commit's
//!   `fsync`): [`SENT_WAIT_LIMIT`] past its deadline the caller stops waiting
//!   and gets `Unavailable` saying that the write's outcome is unknown.
//! - A read has no effect: its caller gives up at the deadline whatever the
//!   state, and a worker does not send a read whose caller gave up.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ::postgres::error::Severity;

use super::error::db_err;
use super::session::{Conn, Query, Settings};
use super::{PostgresStorage, StorageError, StorageResult};

/// How long an operation may take to get its statement sent (queueing,
/// connecting, preparing): a write not sent by then never is, and its caller
/// gets `Unavailable`; a read is given up then whatever its state. A write
/// sent in time is waited for; see the module documentation.
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(5);

/// The server-side `statement_timeout` and `lock_timeout`, in milliseconds:
/// how long a sent statement may run on a working server.
pub(super) const STATEMENT_TIMEOUT_MS: u32 = 4000;

/// TCP settings, unless the connection string sets them: a dead server or
/// network is noticed within 10 s of unacknowledged data, or for a silent
/// connection at the second keepalive probe (15 s + 5 s), which finds
/// `tcp_user_timeout` exceeded.
pub(super) const TCP_USER_TIMEOUT_MS: u64 = 10_000;
pub(super) const KEEPALIVES_IDLE_MS: u64 = 15_000;
pub(super) const KEEPALIVES_INTERVAL_MS: u64 = 5_000;
pub(super) const KEEPALIVES_RETRIES: u32 = 3;

/// The longest a sent write takes with the settings above: the statement
/// (with its lock waits and commit), then TCP noticing a dead peer.
const SENT_WRITE_BOUND_MS: u64 = STATEMENT_TIMEOUT_MS as u64
    + if TCP_USER_TIMEOUT_MS > KEEPALIVES_IDLE_MS + KEEPALIVES_INTERVAL_MS {
        TCP_USER_TIMEOUT_MS
    } else {
        KEEPALIVES_IDLE_MS + KEEPALIVES_INTERVAL_MS
    };

/// How long a caller waits for a sent write past its deadline before giving
/// up with "outcome unknown": only a server that neither answers nor lets TCP
/// see it is dead (hung, not gone) gets there.
pub const SENT_WAIT_LIMIT: Duration = Duration::from_secs(30);
const _: () = assert!(SENT_WRITE_BOUND_MS < SENT_WAIT_LIMIT.as_millis() as u64);

/// What a job may do to the database, which decides when its caller may give
/// up on it and whether it may be retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Effect {
    /// Reads, and the idempotent migration: given up at the deadline whatever
    /// their state, retried after a lost connection.
    None,
    /// Writes: never sent after the deadline, waited for once sent, never
    /// sent twice.
    Write,
}

/// The states of a [`Ticket`].
const QUEUED: u8 = 0;
/// A worker took the job: it checks or opens a connection, prepares the
/// statement. Nothing with an effect has been sent.
const PREPARING: u8 = 1;
/// The statement may have reached the server.
const SENT: u8 = 2;
/// The caller gave up first: the statement is never sent.
const ABANDONED: u8 = 3;

/// The state of one job, shared by its caller and the worker running it:
/// whoever moves it first, the worker to [`SENT`] or the caller to
/// [`ABANDONED`], decides whether the statement is sent.
pub(super) struct Ticket {
    state: AtomicU8,
    pub(super) effect: Effect,
    /// The statement must be sent before this, or never.
    deadline: Instant,
}

impl Ticket {
    fn new(effect: Effect, deadline: Instant) -> Self {
        Self {
            state: AtomicU8::new(QUEUED),
            effect,
            deadline,
        }
    }

    /// A worker takes the job: false if its caller already gave up.
    pub(super) fn take(&self) -> bool {
        Instant::now() < self.deadline
            && self
                .state
                .compare_exchange(QUEUED, PREPARING, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
    }

    /// Called right before sending the statement: an error if it must not be
    /// sent (its caller gave up, its deadline passed, or it is a write that
    /// was sent already).
    pub(super) fn send(&self) -> StorageResult<()> {
        if Instant::now() >= self.deadline {
            // Not waiting for the caller's thread to wake up: the deadline
            // decides, even if nobody has moved the state yet.
            self.abandon();
        }
        match self
            .state
            .compare_exchange(PREPARING, SENT, Ordering::SeqCst, Ordering::SeqCst)
        {
            Ok(_) => Ok(()),
            // A read retried on a new connection.
            Err(SENT) if self.effect == Effect::None => Ok(()),
            Err(SENT) => Err(StorageError::Unavailable(
                "a write is never sent twice".to_owned(),
            )),
            Err(_) => Err(StorageError::Unavailable(
                "not sent: its caller gave up".to_owned(),
            )),
        }
    }

    /// The caller gives up: true if the statement will never be sent, or
    /// does not matter (a read); false if it is a sent write, to wait for.
    fn abandon(&self) -> bool {
        if self.effect == Effect::None {
            self.state.store(ABANDONED, Ordering::SeqCst);
            return true;
        }
        let mut current = self.state.load(Ordering::SeqCst);
        loop {
            match current {
                SENT => return false,
                ABANDONED => return true,
                _ => match self.state.compare_exchange(
                    current,
                    ABANDONED,
                    Ordering::SeqCst,
                    Ordering::SeqCst,
                ) {
                    Ok(_) => return true,
                    Err(now) => current = now,
                },
            }
        }
    }

    fn is_sent(&self) -> bool {
        self.state.load(Ordering::SeqCst) == SENT
    }

    fn is_abandoned(&self) -> bool {
        self.state.load(Ordering::SeqCst) == ABANDONED
    }

    /// Whether a failure of the connection may be retried on a new one:
    /// never for a write once sent, since it may have been applied.
    pub(super) fn may_retry(&self) -> bool {
        !self.is_abandoned() && (self.effect == Effect::None || !self.is_sent())
    }
}

/// A unit of work for a worker; it sends its own answer. Dropped unrun if its
/// caller has already given up.
pub(super) struct Job {
    pub(super) ticket: Arc<Ticket>,
    pub(super) work: Box<dyn FnOnce() + Send>,
}

impl PostgresStorage {
    /// Send `work` to a worker and wait for its answer: see "Deadlines" in
    /// the module documentation. `timeout`: the time to get the statement
    /// sent. `work` calls [`Ticket::send`] right before sending it.
    pub(super) fn run<T: Send + 'static>(
        &self,
        what: String,
        timeout: Duration,
        effect: Effect,
        work: impl FnMut(&mut Conn, &Settings, &Ticket) -> StorageResult<T> + Send + 'static,
    ) -> StorageResult<T> {
        let (tx, rx) = mpsc::sync_channel(1);
        let ticket = Arc::new(Ticket::new(effect, Instant::now() + timeout));
        let pool = Arc::clone(&self.pool);
        let job_ticket = Arc::clone(&ticket);
        let job = Job {
            ticket: Arc::clone(&ticket),
            work: Box::new(move || {
                let _ = tx.send(pool.with_conn(&job_ticket, work));
            }),
        };
        let fail = |m: String| self.settings.fail(&what, StorageError::Unavailable(m));
        // Counted before it can be picked up, so that the count never lags.
        self.pool.job_queued();
        if self.jobs.send(job).is_err() {
            return Err(fail("the storage is shut down".to_owned()));
        }
        let no_answer = format!(
            "no answer from {} within {} ms",
            self.settings.server,
            timeout.as_millis()
        );
        let not_sent = |no_answer: String| {
            fail(if effect == Effect::Write {
                format!("{no_answer}; nothing was written")
            } else {
                no_answer
            })
        };
        match rx.recv_timeout(timeout) {
            // The worker found the deadline passed before sending.
            Ok(Err(_)) if ticket.is_abandoned() => return Err(not_sent(no_answer)),
            Ok(result) => return result.map_err(|e| self.settings.fail(&what, e)),
            // Timed out; or the job was dropped unrun (its deadline passed in
            // the queue), or it panicked.
            Err(_) => {}
        }
        if ticket.abandon() {
            return Err(not_sent(no_answer));
        }
        // A sent write: its outcome is the answer. It comes within
        // SENT_WRITE_BOUND_MS unless the server hangs without TCP noticing.
        match rx.recv_timeout(SENT_WAIT_LIMIT) {
            Ok(result) => result.map_err(|e| self.settings.fail(&what, e)),
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(fail(
                "the write failed after it was sent: it may or may not be applied".to_owned(),
            )),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                tracing::error!(
                    server = %self.settings.server,
                    operation = %self.settings.scrub(what.clone()),
                    "a postgresql write is still unanswered {} s past its deadline; \
                     giving up on it, its outcome is unknown",
                    SENT_WAIT_LIMIT.as_secs()
                );
                Err(fail(format!(
                    "no answer from {} within {} s past the deadline of a write \
                     already sent: it may or may not be applied",
                    self.settings.server,
                    SENT_WAIT_LIMIT.as_secs()
                )))
            }
        }
    }

    /// Run a write that returns one row per changed entry (each row being its
    /// notification); true if an entry changed. Sent at most once: never
    /// retried once sent (see "Retries" in the module documentation of
    /// [`super::pool`]).
    pub(super) fn write(
        &self,
        what: String,
        q: Query,
        path: String,
        values: Vec<Vec<u8>>,
    ) -> StorageResult<bool> {
        self.run(
            what,
            self.operation_timeout,
            Effect::Write,
            move |conn, s, ticket| {
                let st = conn.statement(q, s)?;
                let payload = s.payload(&path);
                let mut params: Vec<&(dyn ::postgres::types::ToSql + Sync)> = vec![&path];
                for v in &values {
                    params.push(v);
                }
                params.push(&s.channel);
                params.push(&payload);
                ticket.send()?;
                let changed = conn.client.execute(&st, &params).map_err(|e| {
                    // An ERROR answer means the statement failed and was
                    // rolled back; a lost connection or a session ended by
                    // the server (FATAL, possibly after the commit) leave its
                    // outcome unknown.
                    let failed = e
                        .as_db_error()
                        .is_some_and(|db| db.parsed_severity() == Some(Severity::Error));
                    let e = db_err(e);
                    if failed { e } else { outcome_unknown(e) }
                })?;
                Ok(changed > 0)
            },
        )
    }
}

/// A write's failure after it was sent, whose outcome is unknown.
fn outcome_unknown(e: StorageError) -> StorageError {
    const NOTE: &str = " (the connection failed or the session ended after the write was \
                        sent: it may have been applied)";
    match e {
        StorageError::Unavailable(m) => StorageError::Unavailable(m + NOTE),
        StorageError::Corrupt(m) => StorageError::Corrupt(m + NOTE),
    }
}
