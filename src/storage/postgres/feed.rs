//! The change feed: other nodes' writes, from the notifications that writes
//! send (see [`super::session`]), for caches.
//!
//! [`PostgresStorage::subscribe`](super::PostgresStorage::subscribe) turns those notifications into a
//! [`Change`] feed for caches: one dedicated connection per storage `LISTEN`s
//! on the channel, skips the notifications this instance caused (its node id,
//! random per instance), and reports the others as [`Change::Path`]. If that
//! connection is lost it reconnects forever (backoff 100 ms to 2 s) and then
//! sends [`Change::Resync`], since changes made in between were not seen. A
//! path that cannot go in a payload (empty, longer than 4096 bytes, or with a
//! control character) is announced as `<node id>` alone, a `Resync`.
//!
//! Anyone who can connect to the database can `NOTIFY` on the channel, so
//! only payloads of exactly the shape this module sends are believed: a node
//! id of 32 lowercase hex digits, then optionally one space and a path that
//! this module would send. Others are dropped, with a warning at most every
//! [`NOTIFY_WARN_EVERY`] that shows their length and first few characters,
//! never the payload. (A well-formed forgery only makes nodes re-read: whoever
//! can send it can write the table anyway.)
//!
//! Each subscriber has a queue of [`SUBSCRIBER_QUEUE`] changes, never more: a
//! consumer that does not keep up (or a flood of notifications) loses the
//! changes that do not fit, and gets a [`Change::Resync`] as soon as its queue
//! has room again, so it never misses a change without a later `Resync`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use ::postgres::Client;
use ::postgres::fallible_iterator::FallibleIterator;

use super::deadline::OPERATION_TIMEOUT;
use super::error::{db_err, describe};
use super::pool::{VALIDATE_TIMEOUT, lock};
use super::session::Settings;
use super::{Change, StorageResult};

/// Reconnection backoff of the change feed.
const LISTEN_BACKOFF_MIN: Duration = Duration::from_millis(100);
const LISTEN_BACKOFF_MAX: Duration = Duration::from_secs(2);

/// How often the change feed looks at its stop flag while waiting.
const LISTEN_POLL: Duration = Duration::from_millis(100);

/// How long the feed connection may be silent before it is checked with a
/// round trip (a dead server sends nothing, not even a close).
const LISTEN_PING_AFTER: Duration = Duration::from_secs(10);

/// Longest path sent in a notification payload, and accepted in one
/// (PostgreSQL's limit is 8000 bytes); a longer one is announced as
/// "something changed" (a resync).
pub(super) const MAX_NOTIFY_PATH: usize = 4096;

/// Length of a node id: a UUID's 32 lowercase hex digits.
const NODE_ID_LEN: usize = 32;

/// Most changes queued for one subscriber; past that, changes are dropped and
/// the subscriber gets a [`Change::Resync`] once it has room again.
pub const SUBSCRIBER_QUEUE: usize = 4096;

/// At most one warning this often about dropped notifications, and about
/// subscribers that do not keep up.
pub const NOTIFY_WARN_EVERY: Duration = Duration::from_secs(5);

/// The change feed: one `LISTEN` connection, fanned out to every subscriber.
pub(super) struct Feed {
    pub(super) settings: Arc<Settings>,
    pub(super) connect_timeout: Duration,
    pub(super) subscribers: Mutex<Vec<Subscriber>>,
    pub(super) state: Mutex<FeedState>,
    pub(super) ready: Condvar,
    pub(super) shutdown: AtomicBool,
    /// Notifications dropped for not having the shape this module sends.
    pub(super) rejected: AtomicU64,
    pub(super) overflow_log: Mutex<LogLimiter>,
}

#[derive(Default)]
pub(super) struct FeedState {
    started: bool,
    /// The first connection attempt is over (listening, or failed).
    first_attempt_done: bool,
}

/// One receiver of the feed: a bounded queue, and whether changes were
/// dropped since it last got a `Resync`.
pub(super) struct Subscriber {
    pub(super) tx: mpsc::SyncSender<Change>,
    pub(super) missed: bool,
}

impl Subscriber {
    /// Queue `change`, or remember that a `Resync` is owed; false if the
    /// receiver is gone.
    pub(super) fn offer(&mut self, change: &Change) -> bool {
        if self.missed {
            match self.tx.try_send(Change::Resync) {
                Ok(()) => self.missed = false,
                // Still full: the owed Resync covers this change too.
                Err(mpsc::TrySendError::Full(_)) => return true,
                Err(mpsc::TrySendError::Disconnected(_)) => return false,
            }
            if *change == Change::Resync {
                return true;
            }
            // If the change does not fit now, nothing was taken from the
            // queue since the Resync went in: that Resync, read after this
            // change was made, covers it.
            return match self.tx.try_send(change.clone()) {
                Ok(()) | Err(mpsc::TrySendError::Full(_)) => true,
                Err(mpsc::TrySendError::Disconnected(_)) => false,
            };
        }
        match self.tx.try_send(change.clone()) {
            Ok(()) => true,
            Err(mpsc::TrySendError::Full(_)) => {
                self.missed = true;
                true
            }
            Err(mpsc::TrySendError::Disconnected(_)) => false,
        }
    }

    /// Deliver an owed `Resync` if there is room now; false if the receiver
    /// is gone.
    pub(super) fn catch_up(&mut self) -> bool {
        if !self.missed {
            return true;
        }
        match self.tx.try_send(Change::Resync) {
            Ok(()) => {
                self.missed = false;
                true
            }
            Err(mpsc::TrySendError::Full(_)) => true,
            Err(mpsc::TrySendError::Disconnected(_)) => false,
        }
    }
}

/// Lets one log line through per period, counting the others.
pub(super) struct LogLimiter {
    every: Duration,
    last: Option<Instant>,
    suppressed: u64,
}

impl LogLimiter {
    pub(super) fn new(every: Duration) -> Self {
        Self {
            every,
            last: None,
            suppressed: 0,
        }
    }

    /// Whether to log now, and if so how many lines were suppressed since
    /// the last one.
    pub(super) fn allow(&mut self, now: Instant) -> Option<u64> {
        match self.last {
            Some(last) if now.saturating_duration_since(last) < self.every => {
                self.suppressed += 1;
                None
            }
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.suppressed))
            }
        }
    }
}

/// Whether `s` is a node id as [`PostgresStorage::connect`](super::PostgresStorage::connect) makes them.
pub(super) fn is_node_id(s: &str) -> bool {
    s.len() == NODE_ID_LEN && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Whether a path is sent as is in a notification payload (and accepted in
/// one): not empty, at most [`MAX_NOTIFY_PATH`] bytes, no control character.
pub(super) fn notifiable_path(path: &str) -> bool {
    !path.is_empty() && path.len() <= MAX_NOTIFY_PATH && !path.chars().any(char::is_control)
}

/// The node id and path of a payload of the shape this module sends
/// (`<node id> <path>`, or `<node id>` alone for "something changed"), or
/// `None` for anything else.
pub(super) fn parse_payload(payload: &str) -> Option<(&str, Option<&str>)> {
    let (node, path) = match payload.split_once(' ') {
        Some((node, path)) => (node, Some(path)),
        None => (payload, None),
    };
    if !is_node_id(node) || path.is_some_and(|p| !notifiable_path(p)) {
        return None;
    }
    Some((node, path))
}

/// What a log line may show of an untrusted payload: its first few
/// characters, letters and digits only.
pub(super) fn payload_preview(payload: &str) -> String {
    payload
        .chars()
        .take(8)
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '?' })
        .collect()
}

impl Feed {
    pub(super) fn subscribe(feed: &Arc<Self>) -> mpsc::Receiver<Change> {
        let (tx, rx) = mpsc::sync_channel(SUBSCRIBER_QUEUE);
        lock(&feed.subscribers).push(Subscriber { tx, missed: false });
        let mut state = lock(&feed.state);
        if !state.started {
            state.started = true;
            let me = Arc::clone(feed);
            if let Err(e) = thread::Builder::new()
                .name("transitd-pg-listen".to_owned())
                .spawn(move || me.listen())
            {
                tracing::error!(error = %e, "cannot start the postgresql change feed thread");
                state.started = false;
                return rx;
            }
        }
        // Wait until changes committed after we return will be seen.
        let wait = feed.connect_timeout + OPERATION_TIMEOUT;
        let _unused = feed
            .ready
            .wait_timeout_while(state, wait, |s| !s.first_attempt_done)
            .unwrap_or_else(PoisonError::into_inner);
        rx
    }

    fn stopped(&self) -> bool {
        self.shutdown.load(Ordering::SeqCst)
    }

    fn first_attempt_done(&self) {
        let mut state = lock(&self.state);
        if !state.first_attempt_done {
            state.first_attempt_done = true;
            self.ready.notify_all();
        }
    }

    /// Queue a change for every subscriber, never waiting for one: a full
    /// queue drops it and owes that subscriber a `Resync`.
    fn broadcast(&self, change: &Change) {
        let mut subscribers = lock(&self.subscribers);
        let mut overflowed = 0usize;
        subscribers.retain_mut(|s| {
            let was_missing = s.missed;
            let kept = s.offer(change);
            if kept && s.missed && !was_missing {
                overflowed += 1;
            }
            kept
        });
        drop(subscribers);
        if overflowed > 0
            && let Some(suppressed) = lock(&self.overflow_log).allow(Instant::now())
        {
            tracing::warn!(
                subscribers = overflowed,
                capacity = SUBSCRIBER_QUEUE,
                suppressed,
                "a postgresql change feed subscriber is not keeping up; \
                 dropping changes, it will get a resync"
            );
        }
    }

    /// Deliver the `Resync`s owed to subscribers that have room again, and
    /// forget the ones that are gone.
    fn catch_up(&self) {
        lock(&self.subscribers).retain_mut(Subscriber::catch_up);
    }

    /// The feed thread: (re)connect forever, until the storage is dropped.
    fn listen(&self) {
        let mut backoff = LISTEN_BACKOFF_MIN;
        // Whether changes may have been missed: an attempt failed or a
        // connection was lost. Not on the first, successful connection.
        let mut interrupted = false;
        let mut failures = 0u32;
        let mut malformed_log = LogLimiter::new(NOTIFY_WARN_EVERY);
        while !self.stopped() {
            match self.open_listener() {
                Ok(mut client) => {
                    if interrupted {
                        tracing::info!(server = %self.settings.server, "postgresql change feed reconnected");
                        self.broadcast(&Change::Resync);
                    }
                    self.first_attempt_done();
                    backoff = LISTEN_BACKOFF_MIN;
                    failures = 0;
                    let why = self.pump(&mut client, &mut malformed_log);
                    if self.stopped() {
                        return;
                    }
                    tracing::warn!(
                        server = %self.settings.server,
                        error = %self.settings.scrub(why),
                        "postgresql change feed lost its connection; reconnecting"
                    );
                    interrupted = true;
                }
                Err(e) => {
                    self.first_attempt_done();
                    interrupted = true;
                    failures += 1;
                    // Once per outage, then quietly.
                    if failures == 1 {
                        tracing::warn!(
                            error = %self.settings.fail("change feed", e),
                            "postgresql change feed cannot connect; retrying"
                        );
                    } else {
                        tracing::debug!(error = %e, "postgresql change feed still cannot connect");
                    }
                }
            }
            let until = Instant::now() + backoff;
            while !self.stopped() && Instant::now() < until {
                self.catch_up();
                thread::sleep(LISTEN_POLL.min(until.saturating_duration_since(Instant::now())));
            }
            backoff = (backoff * 2).min(LISTEN_BACKOFF_MAX);
        }
    }

    fn open_listener(&self) -> StorageResult<Client> {
        let mut client = self.settings.open()?;
        client
            .batch_execute(&format!("LISTEN \"{}\"", self.settings.channel))
            .map_err(db_err)?;
        Ok(client)
    }

    /// Deliver notifications until the connection fails (returns why) or the
    /// storage is dropped.
    fn pump(&self, client: &mut Client, malformed_log: &mut LogLimiter) -> String {
        let mut last_heard = Instant::now();
        loop {
            if self.stopped() {
                return "stopped".to_owned();
            }
            let next = client.notifications().timeout_iter(LISTEN_POLL).next();
            match next {
                Ok(Some(n)) => {
                    last_heard = Instant::now();
                    if n.channel() != self.settings.channel {
                        continue;
                    }
                    let Some((node, path)) = parse_payload(n.payload()) else {
                        self.reject(n.payload(), malformed_log);
                        continue;
                    };
                    if node == self.settings.node_id {
                        continue;
                    }
                    match path {
                        Some(path) => self.broadcast(&Change::Path(path.to_owned())),
                        // A path that does not fit in a payload.
                        None => self.broadcast(&Change::Resync),
                    }
                }
                Ok(None) => {
                    if client.is_closed() {
                        return "connection closed".to_owned();
                    }
                    self.catch_up();
                    if last_heard.elapsed() >= LISTEN_PING_AFTER {
                        if let Err(e) = client.is_valid(VALIDATE_TIMEOUT) {
                            return describe(&e);
                        }
                        last_heard = Instant::now();
                    }
                }
                Err(e) => return describe(&e),
            }
        }
    }

    /// Drop a notification this module did not send, with a rate-limited
    /// warning that does not show it.
    fn reject(&self, payload: &str, log: &mut LogLimiter) {
        let total = self.rejected.fetch_add(1, Ordering::Relaxed) + 1;
        if let Some(suppressed) = log.allow(Instant::now()) {
            tracing::warn!(
                channel = %self.settings.channel,
                length = payload.len(),
                starts_with = %payload_preview(payload),
                suppressed,
                total,
                "dropped a postgresql change notification not sent by transitd \
                 (anyone who can connect to the database can send one)"
            );
        }
    }
}
