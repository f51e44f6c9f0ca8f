//! PostgreSQL storage: several transitd nodes sharing one database.
//!
//! Two tables in one schema (`public` unless configured):
//! `transitd_entries(path, value, version)` holds the seal barrier's
//! ciphertexts, and `transitd_schema_version` the version of that layout.
//! [`PostgresStorage::connect`] creates the schema and tables when missing and
//! brings an older layout up to date, in one transaction serialised by
//! `pg_advisory_xact_lock`, so that nodes starting together neither race nor
//! apply a step twice. A database written by a newer transitd is refused
//! ([`StorageError::Corrupt`]) rather than misread.
//!
//! # Threads
//!
//! The [`Storage`] trait is synchronous and is called from anywhere: request
//! handlers (through [`super::blocking`]), start-up code, tests running inside
//! a current-thread tokio runtime. The driver is the synchronous `postgres`
//! crate, whose every call runs a private tokio runtime with `block_on`, which
//! panics inside another runtime. So no driver call is ever made on the
//! caller's thread: each operation is sent to a small pool of worker threads
//! owned by the storage (at most `max_parallel`, started on demand), and the
//! caller waits for the answer on a channel, within the limits described
//! under "Deadlines" below. That works the same on any thread, needs no
//! nested `block_on`, and bounds how long a caller can be stuck behind a dead
//! network.
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
//! # Deadlines: a write is either never sent or waited for
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
//!
//! # Writes and the change feed
//!
//! Every statement is a single statement (its own transaction): `put` is an
//! upsert bumping `version`; compare-and-swap is one conditional `INSERT ...
//! ON CONFLICT DO NOTHING`, `UPDATE ... WHERE value = $expected` or `DELETE
//! ... WHERE value = $expected`, which PostgreSQL makes atomic by row locking
//! (a concurrent writer waits, then re-checks the condition against the
//! committed row). Each write that changed a row also calls
//! `pg_notify('transitd_<schema>', '<node id> <path>')` in the same statement,
//! so the notification is sent exactly when the change commits. A delete of a
//! missing path, or a compare-and-swap that failed, changes nothing and sends
//! nothing.
//!
//! [`PostgresStorage::subscribe`] turns those notifications into a
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
//!
//! # Connection string and TLS
//!
//! `connection_url` is a libpq connection string, URL (`postgres://user:pw@host/db?sslmode=...`)
//! or key/value (`host=... user=... sslmode=...`), parsed by tokio-postgres,
//! plus `sslrootcert`, handled here. `sslmode` has the libpq meanings:
//! `disable` (plain), `allow`/`prefer` (the default; TLS if the server offers
//! it), `require` (TLS or fail); these three encrypt but do not authenticate
//! the server, unless `sslrootcert` is given, which makes them check the
//! certificate chain like `verify-ca`. `verify-ca` checks that the server's
//! certificate chains to a trusted root, `verify-full` also that it names the
//! host. Trusted roots are the Mozilla roots (`webpki-roots`), or only those in
//! the PEM file `sslrootcert` names (`sslrootcert=system`: the Mozilla roots).
//! Client certificates (`sslcert`, `sslkey`) are not supported. TLS is rustls
//! with the ring provider.
//!
//! No message or log line contains the password of the connection string:
//! messages name the server as `host:port/dbname`, and
//! [`redact_connection_url`] shows a connection string without it.
//!
//! Limits: a path must be a valid PostgreSQL `text` (no NUL character) and at
//! most about 2,700 bytes (the B-tree index limit); transitd's paths are far
//! shorter. Poolers in transaction mode (PgBouncer) are not supported: the
//! storage uses prepared statements and `LISTEN`.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use ::postgres::config::{Host, SslMode};
use ::postgres::error::{Severity, SqlState};
use ::postgres::fallible_iterator::FallibleIterator;
use ::postgres::{Client, NoTls, Statement};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::{Change, Storage, StorageError, StorageResult, prefix_successor};

/// How long an operation may take to get its statement sent (queueing,
/// connecting, preparing): a write not sent by then never is, and its caller
/// gets `Unavailable`; a read is given up then whatever its state. A write
/// sent in time is waited for; see the module documentation.
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(5);

/// The server-side `statement_timeout` and `lock_timeout`, in milliseconds:
/// how long a sent statement may run on a working server.
const STATEMENT_TIMEOUT_MS: u32 = 4000;

/// TCP settings, unless the connection string sets them: a dead server or
/// network is noticed within 10 s of unacknowledged data, or for a silent
/// connection at the second keepalive probe (15 s + 5 s), which finds
/// `tcp_user_timeout` exceeded.
const TCP_USER_TIMEOUT_MS: u64 = 10_000;
const KEEPALIVES_IDLE_MS: u64 = 15_000;
const KEEPALIVES_INTERVAL_MS: u64 = 5_000;
const KEEPALIVES_RETRIES: u32 = 3;

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

/// A pooled connection idle for longer than this is checked with a round trip
/// before use: the server may have restarted or closed it meanwhile.
pub const IDLE_CHECK_AFTER: Duration = Duration::from_secs(1);

/// The same for a write, which cannot be retried once sent: a session closed
/// by the server is only seen by sending something, and a check costs a round
/// trip (about a statement's), so it is skipped only on a connection this
/// busy.
pub const WRITE_CHECK_AFTER: Duration = Duration::from_millis(100);

/// How long the check of an idle connection may take.
const VALIDATE_TIMEOUT: Duration = Duration::from_secs(2);

/// Reconnection backoff of the change feed.
const LISTEN_BACKOFF_MIN: Duration = Duration::from_millis(100);
const LISTEN_BACKOFF_MAX: Duration = Duration::from_secs(2);

/// How often the change feed looks at its stop flag while waiting.
const LISTEN_POLL: Duration = Duration::from_millis(100);

/// How long the feed connection may be silent before it is checked with a
/// round trip (a dead server sends nothing, not even a close).
const LISTEN_PING_AFTER: Duration = Duration::from_secs(10);

/// The advisory lock class of migrations (`'trns'`); the second key is the
/// hash of the schema name.
const ADVISORY_LOCK_CLASS: i32 = 0x7472_6e73;

/// Longest schema name: the notification channel `transitd_<schema>` must fit
/// in PostgreSQL's 63-byte identifiers.
const MAX_SCHEMA_LEN: usize = 63 - CHANNEL_PREFIX.len();
const CHANNEL_PREFIX: &str = "transitd_";

/// Longest path sent in a notification payload, and accepted in one
/// (PostgreSQL's limit is 8000 bytes); a longer one is announced as
/// "something changed" (a resync).
const MAX_NOTIFY_PATH: usize = 4096;

/// Length of a node id: a UUID's 32 lowercase hex digits.
const NODE_ID_LEN: usize = 32;

/// Most changes queued for one subscriber; past that, changes are dropped and
/// the subscriber gets a [`Change::Resync`] once it has room again.
pub const SUBSCRIBER_QUEUE: usize = 4096;

/// At most one warning this often about dropped notifications, and about
/// subscribers that do not keep up.
pub const NOTIFY_WARN_EVERY: Duration = Duration::from_secs(5);

/// Defaults of [`PostgresConfig`].
pub const DEFAULT_MAX_PARALLEL: usize = 8;
pub const DEFAULT_SCHEMA: &str = "public";
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest accepted `max_parallel`.
pub const MAX_MAX_PARALLEL: usize = 1024;

/// Schema migrations, in order: step `i` takes the version from `i` to
/// `i + 1`. `{schema}` is replaced by the quoted schema name. Append only;
/// never edit a released step.
const MIGRATIONS: &[&str] = &[
    // 1: the key-value table. COLLATE "C": paths compare and sort bytewise
    // (UTF-8 order, like Rust's `str`) whatever the database's default
    // collation, which `list`'s range scan and ordering rely on.
    "CREATE TABLE {schema}.transitd_entries (
        path TEXT COLLATE \"C\" PRIMARY KEY,
        value BYTEA NOT NULL,
        version BIGINT NOT NULL DEFAULT 1
    )",
];

/// The schema version this binary writes and understands.
const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// How to reach the database.
#[derive(Clone, PartialEq, Eq)]
pub struct PostgresConfig {
    /// A libpq connection string (URL or key/value); see the module
    /// documentation for the TLS settings.
    pub connection_url: String,
    /// Most connections used for operations (default 8).
    pub max_parallel: usize,
    /// The schema holding transitd's tables, created if missing (default
    /// `public`). Letters, digits and `_`, not starting with a digit, at most
    /// 54 characters; case-sensitive (it is always quoted).
    pub schema: String,
    /// Limit of one connection attempt (default 5 s), unless the connection
    /// string sets `connect_timeout`.
    pub connect_timeout: Duration,
}

impl PostgresConfig {
    /// The defaults, with this connection string.
    pub fn new(connection_url: impl Into<String>) -> Self {
        Self {
            connection_url: connection_url.into(),
            max_parallel: DEFAULT_MAX_PARALLEL,
            schema: DEFAULT_SCHEMA.to_owned(),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
        }
    }

    /// Check a schema name: what [`PostgresStorage::connect`] accepts.
    pub fn validate_schema(schema: &str) -> Result<(), String> {
        let mut chars = schema.chars();
        let Some(first) = chars.next() else {
            return Err("schema name must not be empty".to_owned());
        };
        if !(first.is_ascii_alphabetic() || first == '_')
            || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return Err(format!(
                "invalid schema name {schema:?}: use letters, digits and _, not starting with a digit"
            ));
        }
        if schema.len() > MAX_SCHEMA_LEN {
            return Err(format!(
                "schema name {schema:?} is longer than {MAX_SCHEMA_LEN} characters"
            ));
        }
        if schema.to_ascii_lowercase().starts_with("pg_") {
            return Err(format!(
                "invalid schema name {schema:?}: names starting with pg_ are reserved by PostgreSQL"
            ));
        }
        Ok(())
    }
}

impl fmt::Debug for PostgresConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresConfig")
            .field(
                "connection_url",
                &redact_connection_url(&self.connection_url),
            )
            .field("max_parallel", &self.max_parallel)
            .field("schema", &self.schema)
            .field("connect_timeout", &self.connect_timeout)
            .finish()
    }
}

/// A PostgreSQL database shared by transitd nodes. See the module
/// documentation.
pub struct PostgresStorage {
    settings: Arc<Settings>,
    pool: Arc<Pool>,
    jobs: mpsc::Sender<Job>,
    feed: Arc<Feed>,
    /// [`OPERATION_TIMEOUT`]; shorter in tests.
    operation_timeout: Duration,
}

impl fmt::Debug for PostgresStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStorage")
            .field("server", &self.settings.server)
            .field("schema", &self.settings.schema)
            .field("node_id", &self.settings.node_id)
            .field("max_parallel", &self.pool.max)
            .finish_non_exhaustive()
    }
}

impl Drop for PostgresStorage {
    fn drop(&mut self) {
        // The workers stop when `jobs` is dropped (right after this); the
        // feed thread looks at this flag.
        self.feed.shutdown.store(true, Ordering::SeqCst);
    }
}

/// Everything needed to open a connection and run the statements, shared by
/// the workers and the feed.
struct Settings {
    pg: ::postgres::Config,
    tls: Tls,
    /// `host:port/dbname`, for messages.
    server: String,
    schema: String,
    /// `"schema"`, for SQL text.
    quoted_schema: String,
    channel: String,
    node_id: String,
    /// To scrub from messages, in case a driver message ever quoted it.
    password: Option<String>,
    queries: Queries,
}

enum Tls {
    Off,
    Rustls(MakeRustlsConnect),
}

impl Settings {
    /// Open and set up one session.
    fn open(&self) -> StorageResult<Client> {
        let connected = match &self.tls {
            Tls::Off => self.pg.connect(NoTls),
            Tls::Rustls(tls) => self.pg.connect(tls.clone()),
        };
        let mut client = connected.map_err(|e| {
            StorageError::Unavailable(format!(
                "cannot connect to {}: {}",
                self.server,
                describe(&e)
            ))
        })?;
        client
            .batch_execute(&format!(
                "SET statement_timeout = {STATEMENT_TIMEOUT_MS};
                 SET lock_timeout = {STATEMENT_TIMEOUT_MS};
                 SET idle_in_transaction_session_timeout = 60000;"
            ))
            .map_err(db_err)?;
        Ok(client)
    }

    /// The payload of the notification for a change of `path`: a path the
    /// receivers would refuse is announced as "something changed".
    fn payload(&self, path: &str) -> String {
        if notifiable_path(path) {
            format!("{} {path}", self.node_id)
        } else {
            self.node_id.clone()
        }
    }

    /// Remove the password from a message, should it ever appear in one.
    fn scrub(&self, message: String) -> String {
        match &self.password {
            Some(pw) if pw.len() >= 3 && message.contains(pw.as_str()) => {
                message.replace(pw.as_str(), "<redacted>")
            }
            _ => message,
        }
    }

    fn fail(&self, what: &str, e: StorageError) -> StorageError {
        match e {
            StorageError::Corrupt(m) => {
                StorageError::Corrupt(self.scrub(format!("postgresql: {what}: {m}")))
            }
            StorageError::Unavailable(m) => {
                StorageError::Unavailable(self.scrub(format!("postgresql: {what}: {m}")))
            }
        }
    }
}

/// The statements, by name, and their SQL text for one schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Query {
    Get,
    Put,
    Delete,
    ListRange,
    ListFrom,
    CasAbsent,
    CasInsert,
    CasUpdate,
    CasDelete,
}

struct Queries {
    texts: HashMap<Query, String>,
}

impl Queries {
    fn new(quoted_schema: &str) -> Self {
        let t = format!("{quoted_schema}.transitd_entries");
        let texts = [
            (Query::Get, format!("SELECT value FROM {t} WHERE path = $1")),
            (
                Query::Put,
                format!(
                    "WITH w AS (
                        INSERT INTO {t} AS e (path, value) VALUES ($1, $2)
                        ON CONFLICT (path) DO UPDATE
                        SET value = EXCLUDED.value, version = e.version + 1
                        RETURNING 1
                    ) SELECT pg_notify($3, $4) FROM w"
                ),
            ),
            (
                Query::Delete,
                format!(
                    "WITH d AS (DELETE FROM {t} WHERE path = $1 RETURNING 1)
                     SELECT pg_notify($2, $3) FROM d"
                ),
            ),
            (
                Query::ListRange,
                format!("SELECT path FROM {t} WHERE path >= $1 AND path < $2 ORDER BY path"),
            ),
            (
                Query::ListFrom,
                format!("SELECT path FROM {t} WHERE path >= $1 ORDER BY path"),
            ),
            (
                Query::CasAbsent,
                format!("SELECT NOT EXISTS (SELECT 1 FROM {t} WHERE path = $1)"),
            ),
            (
                Query::CasInsert,
                format!(
                    "WITH w AS (
                        INSERT INTO {t} (path, value) VALUES ($1, $2)
                        ON CONFLICT (path) DO NOTHING
                        RETURNING 1
                    ) SELECT pg_notify($3, $4) FROM w"
                ),
            ),
            (
                Query::CasUpdate,
                format!(
                    "WITH w AS (
                        UPDATE {t} SET value = $2, version = version + 1
                        WHERE path = $1 AND value = $3
                        RETURNING 1
                    ) SELECT pg_notify($4, $5) FROM w"
                ),
            ),
            (
                Query::CasDelete,
                format!(
                    "WITH d AS (DELETE FROM {t} WHERE path = $1 AND value = $2 RETURNING 1)
                     SELECT pg_notify($3, $4) FROM d"
                ),
            ),
        ]
        .into_iter()
        .collect();
        Self { texts }
    }

    fn text(&self, q: Query) -> &str {
        self.texts.get(&q).map_or("", String::as_str)
    }
}

/// One open session and the statements prepared on it.
struct Conn {
    client: Client,
    statements: HashMap<Query, Statement>,
    last_used: Instant,
}

impl Conn {
    fn new(client: Client) -> Self {
        Self {
            client,
            statements: HashMap::new(),
            last_used: Instant::now(),
        }
    }

    fn statement(&mut self, q: Query, settings: &Settings) -> StorageResult<Statement> {
        if let Some(s) = self.statements.get(&q) {
            return Ok(s.clone());
        }
        let s = self
            .client
            .prepare(settings.queries.text(q))
            .map_err(db_err)?;
        self.statements.insert(q, s.clone());
        Ok(s)
    }
}

/// What a job may do to the database, which decides when its caller may give
/// up on it and whether it may be retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Effect {
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
struct Ticket {
    state: AtomicU8,
    effect: Effect,
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
    fn take(&self) -> bool {
        Instant::now() < self.deadline
            && self
                .state
                .compare_exchange(QUEUED, PREPARING, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
    }

    /// Called right before sending the statement: an error if it must not be
    /// sent (its caller gave up, its deadline passed, or it is a write that
    /// was sent already).
    fn send(&self) -> StorageResult<()> {
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
    fn may_retry(&self) -> bool {
        !self.is_abandoned() && (self.effect == Effect::None || !self.is_sent())
    }
}

/// A unit of work for a worker; it sends its own answer. Dropped unrun if its
/// caller has already given up.
struct Job {
    ticket: Arc<Ticket>,
    work: Box<dyn FnOnce() + Send>,
}

/// The idle connections and the workers' bookkeeping.
struct Pool {
    settings: Arc<Settings>,
    max: usize,
    idle: Mutex<Vec<Conn>>,
    workers: Mutex<Workers>,
    queue: Mutex<mpsc::Receiver<Job>>,
}

#[derive(Default)]
struct Workers {
    spawned: usize,
    idle: usize,
    pending: usize,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing guarded here is left half-updated by a panic.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Pool {
    /// Start a worker if the queued jobs outnumber the idle workers.
    fn job_queued(self: &Arc<Self>) {
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
    fn with_conn<T>(
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

impl PostgresStorage {
    /// Connect to the database, create the schema and tables if missing and
    /// bring them up to date. Works from any thread, inside a tokio runtime
    /// or not.
    pub fn connect(config: &PostgresConfig) -> StorageResult<Self> {
        let invalid = |m: String| StorageError::Unavailable(format!("postgresql: {m}"));
        PostgresConfig::validate_schema(&config.schema).map_err(invalid)?;
        if config.max_parallel == 0 || config.max_parallel > MAX_MAX_PARALLEL {
            return Err(invalid(format!(
                "max_parallel must be between 1 and {MAX_MAX_PARALLEL}, got {}",
                config.max_parallel
            )));
        }
        let parsed = ConnectionString::parse(&config.connection_url)
            .map_err(|m| invalid(format!("invalid connection_url: {m}")))?;
        let mut pg: ::postgres::Config = parsed
            .driver
            .parse()
            .map_err(|e| invalid(format!("invalid connection_url: {}", describe(&e))))?;
        let has = |key: &str| parsed.keys.iter().any(|k| k == key);
        if !has("connect_timeout") {
            pg.connect_timeout(config.connect_timeout);
        }
        if !has("application_name") {
            pg.application_name("transitd");
        }
        // Notice a dead peer within seconds rather than the system's hours.
        // These bound how long a sent write can take (SENT_WRITE_BOUND_MS).
        if !has("tcp_user_timeout") {
            pg.tcp_user_timeout(Duration::from_millis(TCP_USER_TIMEOUT_MS));
        }
        if !has("keepalives_idle") {
            pg.keepalives_idle(Duration::from_millis(KEEPALIVES_IDLE_MS));
        }
        if !has("keepalives_interval") {
            pg.keepalives_interval(Duration::from_millis(KEEPALIVES_INTERVAL_MS));
        }
        if !has("keepalives_retries") {
            pg.keepalives_retries(KEEPALIVES_RETRIES);
        }
        let tls = build_tls(parsed.tls, parsed.root_cert.as_deref()).map_err(invalid)?;
        let tls = match tls {
            Some(tls) => {
                pg.ssl_mode(if parsed.tls == TlsPolicy::Prefer {
                    SslMode::Prefer
                } else {
                    SslMode::Require
                });
                Tls::Rustls(tls)
            }
            None => {
                pg.ssl_mode(SslMode::Disable);
                Tls::Off
            }
        };
        if parsed.tls == TlsPolicy::Require && parsed.root_cert.is_none() {
            tracing::warn!(
                "postgresql storage: sslmode=require encrypts but does not authenticate the server; \
                 use sslmode=verify-full"
            );
        }
        let quoted_schema = format!("\"{}\"", config.schema);
        let settings = Arc::new(Settings {
            server: server_name(&pg),
            password: pg
                .get_password()
                .map(|p| String::from_utf8_lossy(p).into_owned()),
            pg,
            tls,
            schema: config.schema.clone(),
            channel: format!("{CHANNEL_PREFIX}{}", config.schema),
            node_id: uuid::Uuid::new_v4().simple().to_string(),
            queries: Queries::new(&quoted_schema),
            quoted_schema,
        });
        let (jobs, queue) = mpsc::channel();
        let pool = Arc::new(Pool {
            settings: Arc::clone(&settings),
            max: config.max_parallel,
            idle: Mutex::new(Vec::new()),
            workers: Mutex::new(Workers::default()),
            queue: Mutex::new(queue),
        });
        let feed = Arc::new(Feed {
            settings: Arc::clone(&settings),
            connect_timeout: pg_connect_timeout(&settings.pg, config.connect_timeout),
            subscribers: Mutex::new(Vec::new()),
            state: Mutex::new(FeedState::default()),
            ready: Condvar::new(),
            shutdown: AtomicBool::new(false),
            rejected: AtomicU64::new(0),
            overflow_log: Mutex::new(LogLimiter::new(NOTIFY_WARN_EVERY)),
        });
        let storage = Self {
            settings,
            pool,
            jobs,
            feed,
            operation_timeout: OPERATION_TIMEOUT,
        };
        let timeout = storage.feed.connect_timeout + OPERATION_TIMEOUT;
        // Idempotent (one transaction, which re-reads the version), so it
        // may be given up or retried like a read.
        storage.run(
            "migrate schema".to_owned(),
            timeout,
            Effect::None,
            |conn, s, ticket| {
                ticket.send()?;
                migrate(&mut conn.client, s)
            },
        )?;
        tracing::info!(
            server = %storage.settings.server,
            schema = %storage.settings.schema,
            node_id = %storage.settings.node_id,
            "opened postgresql storage"
        );
        Ok(storage)
    }

    /// Send `work` to a worker and wait for its answer: see "Deadlines" in
    /// the module documentation. `timeout`: the time to get the statement
    /// sent. `work` calls [`Ticket::send`] right before sending it.
    fn run<T: Send + 'static>(
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
    /// retried once sent (see "Retries" in the module documentation).
    fn write(
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

impl Storage for PostgresStorage {
    fn kind(&self) -> &'static str {
        "postgresql"
    }

    /// Other nodes write to the same database.
    fn is_shared(&self) -> bool {
        true
    }

    fn get(&self, path: &str) -> StorageResult<Option<Vec<u8>>> {
        let owned = path.to_owned();
        self.run(
            format!("get {path:?}"),
            self.operation_timeout,
            Effect::None,
            move |conn, s, ticket| {
                let st = conn.statement(Query::Get, s)?;
                ticket.send()?;
                let row = conn.client.query_opt(&st, &[&owned]).map_err(db_err)?;
                row.map(|r| r.try_get::<_, Vec<u8>>(0).map_err(column_err))
                    .transpose()
            },
        )
    }

    fn put(&self, path: &str, value: &[u8]) -> StorageResult<()> {
        self.write(
            format!("put {path:?}"),
            Query::Put,
            path.to_owned(),
            vec![value.to_vec()],
        )
        .map(drop)
    }

    fn delete(&self, path: &str) -> StorageResult<()> {
        self.write(
            format!("delete {path:?}"),
            Query::Delete,
            path.to_owned(),
            vec![],
        )
        .map(drop)
    }

    fn list(&self, prefix: &str) -> StorageResult<Vec<String>> {
        let owned = prefix.to_owned();
        self.run(
            format!("list {prefix:?}"),
            self.operation_timeout,
            Effect::None,
            move |conn, s, ticket| {
                // A range scan on the primary key, not LIKE (whose `%` and `_`
                // are wildcards); the column's "C" collation compares bytewise.
                let rows = match prefix_successor(&owned) {
                    Some(end) => {
                        let st = conn.statement(Query::ListRange, s)?;
                        ticket.send()?;
                        conn.client.query(&st, &[&owned, &end])
                    }
                    None => {
                        let st = conn.statement(Query::ListFrom, s)?;
                        ticket.send()?;
                        conn.client.query(&st, &[&owned])
                    }
                }
                .map_err(db_err)?;
                rows.iter()
                    .map(|r| r.try_get::<_, String>(0).map_err(column_err))
                    .collect()
            },
        )
    }

    fn compare_and_swap(
        &self,
        path: &str,
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> StorageResult<bool> {
        let what = format!("compare-and-swap {path:?}");
        let owned = path.to_owned();
        match (expected, new) {
            (None, None) => self.run(
                what,
                self.operation_timeout,
                Effect::None,
                move |conn, s, ticket| {
                    let st = conn.statement(Query::CasAbsent, s)?;
                    ticket.send()?;
                    let row = conn.client.query_one(&st, &[&owned]).map_err(db_err)?;
                    row.try_get::<_, bool>(0).map_err(column_err)
                },
            ),
            (None, Some(new)) => self.write(what, Query::CasInsert, owned, vec![new.to_vec()]),
            (Some(expected), Some(new)) => self.write(
                what,
                Query::CasUpdate,
                owned,
                vec![new.to_vec(), expected.to_vec()],
            ),
            (Some(expected), None) => {
                self.write(what, Query::CasDelete, owned, vec![expected.to_vec()])
            }
        }
    }

    /// Changes made by other instances (other nodes), from a `LISTEN`
    /// connection started by the first call. When this returns, the feed is
    /// listening (or its first connection attempt failed, and
    /// [`Change::Resync`] will come once it succeeds).
    fn subscribe(&self) -> Option<mpsc::Receiver<Change>> {
        Some(Feed::subscribe(&self.feed))
    }
}

/// Bring the schema up to date, in one transaction under an advisory lock.
fn migrate(client: &mut Client, s: &Settings) -> StorageResult<()> {
    let q = &s.quoted_schema;
    let mut tx = client.transaction().map_err(db_err)?;
    // Taken first: every later statement sees what a node that held the lock
    // before us committed.
    tx.execute(
        "SELECT pg_advisory_xact_lock($1, hashtext($2))",
        &[&ADVISORY_LOCK_CLASS, &s.schema],
    )
    .map_err(db_err)?;
    // Checked before creating, so that a role without CREATE on the database
    // can use a schema made for it.
    let schema_exists: bool = tx
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)",
            &[&s.schema],
        )
        .map_err(db_err)?
        .try_get(0)
        .map_err(column_err)?;
    if !schema_exists {
        tx.batch_execute(&format!("CREATE SCHEMA {q}"))
            .map_err(db_err)?;
        tracing::info!(schema = %s.schema, "created postgresql schema");
    }
    let version_table = format!("{q}.transitd_schema_version");
    let table_exists: bool = tx
        .query_one("SELECT to_regclass($1) IS NOT NULL", &[&version_table])
        .map_err(db_err)?
        .try_get(0)
        .map_err(column_err)?;
    if !table_exists {
        tx.batch_execute(&format!(
            "CREATE TABLE {version_table} (
                singleton BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (singleton),
                version BIGINT NOT NULL
            )"
        ))
        .map_err(db_err)?;
    }
    let version: i64 = tx
        .query_opt(&format!("SELECT version FROM {version_table}"), &[])
        .map_err(db_err)?
        .map(|r| r.try_get(0).map_err(column_err))
        .transpose()?
        .unwrap_or(0);
    if version == SCHEMA_VERSION {
        // Nothing to do; the transaction only read.
        return Ok(());
    }
    let start = usize::try_from(version)
        .ok()
        .filter(|&v| v < MIGRATIONS.len())
        .ok_or_else(|| {
            StorageError::Corrupt(format!(
                "database schema version {version} is newer than this transitd supports \
                 (schema version {SCHEMA_VERSION}); upgrade transitd or restore a backup"
            ))
        })?;
    for step in &MIGRATIONS[start..] {
        tx.batch_execute(&step.replace("{schema}", q))
            .map_err(db_err)?;
    }
    tx.execute(
        &format!(
            "INSERT INTO {version_table} (singleton, version) VALUES (TRUE, $1)
             ON CONFLICT (singleton) DO UPDATE SET version = EXCLUDED.version"
        ),
        &[&SCHEMA_VERSION],
    )
    .map_err(db_err)?;
    tx.commit().map_err(db_err)?;
    tracing::info!(
        schema = %s.schema,
        from = version,
        to = SCHEMA_VERSION,
        "postgresql storage schema migrated"
    );
    Ok(())
}

/// The change feed: one `LISTEN` connection, fanned out to every subscriber.
struct Feed {
    settings: Arc<Settings>,
    connect_timeout: Duration,
    subscribers: Mutex<Vec<Subscriber>>,
    state: Mutex<FeedState>,
    ready: Condvar,
    shutdown: AtomicBool,
    /// Notifications dropped for not having the shape this module sends.
    rejected: AtomicU64,
    overflow_log: Mutex<LogLimiter>,
}

#[derive(Default)]
struct FeedState {
    started: bool,
    /// The first connection attempt is over (listening, or failed).
    first_attempt_done: bool,
}

/// One receiver of the feed: a bounded queue, and whether changes were
/// dropped since it last got a `Resync`.
struct Subscriber {
    tx: mpsc::SyncSender<Change>,
    missed: bool,
}

impl Subscriber {
    /// Queue `change`, or remember that a `Resync` is owed; false if the
    /// receiver is gone.
    fn offer(&mut self, change: &Change) -> bool {
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
    fn catch_up(&mut self) -> bool {
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
struct LogLimiter {
    every: Duration,
    last: Option<Instant>,
    suppressed: u64,
}

impl LogLimiter {
    fn new(every: Duration) -> Self {
        Self {
            every,
            last: None,
            suppressed: 0,
        }
    }

    /// Whether to log now, and if so how many lines were suppressed since
    /// the last one.
    fn allow(&mut self, now: Instant) -> Option<u64> {
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

/// Whether `s` is a node id as [`PostgresStorage::connect`] makes them.
fn is_node_id(s: &str) -> bool {
    s.len() == NODE_ID_LEN && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Whether a path is sent as is in a notification payload (and accepted in
/// one): not empty, at most [`MAX_NOTIFY_PATH`] bytes, no control character.
fn notifiable_path(path: &str) -> bool {
    !path.is_empty() && path.len() <= MAX_NOTIFY_PATH && !path.chars().any(char::is_control)
}

/// The node id and path of a payload of the shape this module sends
/// (`<node id> <path>`, or `<node id>` alone for "something changed"), or
/// `None` for anything else.
fn parse_payload(payload: &str) -> Option<(&str, Option<&str>)> {
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
fn payload_preview(payload: &str) -> String {
    payload
        .chars()
        .take(8)
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '?' })
        .collect()
}

impl Feed {
    fn subscribe(feed: &Arc<Self>) -> mpsc::Receiver<Change> {
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

/// A driver error as a storage error: damaged data is `Corrupt`, the rest
/// (network, server down, timeouts, permissions...) `Unavailable`.
fn db_err(e: ::postgres::Error) -> StorageError {
    let corrupt = e
        .code()
        .is_some_and(|c| *c == SqlState::DATA_CORRUPTED || *c == SqlState::INDEX_CORRUPTED);
    if corrupt {
        StorageError::Corrupt(describe(&e))
    } else {
        StorageError::Unavailable(describe(&e))
    }
}

/// A column that does not hold what the schema says.
fn column_err(e: ::postgres::Error) -> StorageError {
    StorageError::Corrupt(format!("unexpected column content: {}", describe(&e)))
}

/// A driver error and its causes on one line. A server error shows its
/// severity, message and SQLSTATE, not its detail (which may quote data).
fn describe(e: &::postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!(
            "{}: {} (SQLSTATE {})",
            db.severity(),
            db.message(),
            db.code().code()
        );
    }
    let mut message = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.ends_with(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    message.replace('\n', " ")
}

/// `host:port/dbname` of the first host, for messages.
fn server_name(pg: &::postgres::Config) -> String {
    let host = match pg.get_hosts().first() {
        Some(Host::Tcp(h)) => h.clone(),
        #[cfg(unix)]
        Some(Host::Unix(p)) => p.display().to_string(),
        None => pg
            .get_hostaddrs()
            .first()
            .map_or_else(|| "localhost".to_owned(), ToString::to_string),
    };
    let port = pg.get_ports().first().copied().unwrap_or(5432);
    let more = if pg.get_hosts().len() > 1 { ",..." } else { "" };
    let db = pg
        .get_dbname()
        .or_else(|| pg.get_user())
        .unwrap_or_default();
    format!("{host}:{port}{more}/{db}")
}

fn pg_connect_timeout(pg: &::postgres::Config, default: Duration) -> Duration {
    pg.get_connect_timeout().copied().unwrap_or(default)
}

/// What `sslmode` asks for, with libpq's meanings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TlsPolicy {
    Disable,
    /// `allow`, `prefer` (the default): TLS if the server offers it.
    Prefer,
    /// TLS or fail.
    Require,
    VerifyCa,
    VerifyFull,
}

/// A connection string split into what tokio-postgres parses and what is
/// handled here.
#[derive(Debug)]
struct ConnectionString {
    /// The string for tokio-postgres: without `sslrootcert`, with `sslmode`
    /// mapped to a value it knows.
    driver: String,
    tls: TlsPolicy,
    root_cert: Option<String>,
    /// The parameter names present (URL query or key/value).
    keys: Vec<String>,
}

impl ConnectionString {
    fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s.is_empty() {
            return Err("empty".to_owned());
        }
        let mut out = Self {
            driver: String::new(),
            tls: TlsPolicy::Prefer,
            root_cert: None,
            keys: Vec::new(),
        };
        if let Some(url) = split_url(s) {
            out.driver.push_str(url.base);
            let mut params = Vec::new();
            if let Some(query) = url.query {
                for param in query.split('&').filter(|p| !p.is_empty()) {
                    let (raw_key, raw_value) = param
                        .split_once('=')
                        .ok_or_else(|| "a URL parameter has no value".to_owned())?;
                    let key = percent_decode(raw_key)?;
                    match key.as_str() {
                        "sslrootcert" => out.root_cert = Some(percent_decode(raw_value)?),
                        "sslmode" => {
                            out.tls = tls_policy(&percent_decode(raw_value)?)?;
                            params.push(format!("sslmode={}", driver_ssl_mode(out.tls)));
                        }
                        _ => params.push(param.to_owned()),
                    }
                    out.keys.push(key);
                }
            }
            if !params.is_empty() {
                out.driver.push('?');
                out.driver.push_str(&params.join("&"));
            }
        } else {
            let mut params = Vec::new();
            for (key, value) in key_values(s)? {
                match key {
                    "sslrootcert" => out.root_cert = Some(value),
                    "sslmode" => {
                        out.tls = tls_policy(&value)?;
                        params.push(format!("sslmode={}", driver_ssl_mode(out.tls)));
                    }
                    _ => params.push(format!("{key}='{}'", escape_value(&value))),
                }
                out.keys.push(key.to_owned());
            }
            out.driver = params.join(" ");
        }
        if out.root_cert.as_deref() == Some("") {
            out.root_cert = None;
        }
        Ok(out)
    }
}

fn tls_policy(mode: &str) -> Result<TlsPolicy, String> {
    Ok(match mode {
        "disable" => TlsPolicy::Disable,
        "allow" | "prefer" => TlsPolicy::Prefer,
        "require" => TlsPolicy::Require,
        "verify-ca" => TlsPolicy::VerifyCa,
        "verify-full" => TlsPolicy::VerifyFull,
        other => {
            return Err(format!(
                "unknown sslmode {other:?} (known: disable, allow, prefer, require, verify-ca, verify-full)"
            ));
        }
    })
}

fn driver_ssl_mode(policy: TlsPolicy) -> &'static str {
    match policy {
        TlsPolicy::Disable => "disable",
        TlsPolicy::Prefer => "prefer",
        TlsPolicy::Require | TlsPolicy::VerifyCa | TlsPolicy::VerifyFull => "require",
    }
}

/// A `postgres://` or `postgresql://` URL, cut where tokio-postgres cuts it.
struct UrlParts<'a> {
    /// Up to the `?`.
    base: &'a str,
    query: Option<&'a str>,
    /// `scheme://` and the credentials before `@`, if any.
    scheme: &'a str,
    credentials: Option<&'a str>,
}

fn split_url(s: &str) -> Option<UrlParts<'_>> {
    let scheme = ["postgres://", "postgresql://"]
        .into_iter()
        .find(|p| s.starts_with(p))?;
    let rest = &s[scheme.len()..];
    // Like tokio-postgres: the credentials run to the first `@` anywhere.
    let (credentials, after) = match rest.find('@') {
        Some(i) => (Some(&rest[..i]), i + 1),
        None => (None, 0),
    };
    let (base, query) = match rest[after..].find('?') {
        Some(i) => {
            let cut = scheme.len() + after + i;
            (&s[..cut], Some(&s[cut + 1..]))
        }
        None => (s, None),
    };
    Some(UrlParts {
        base,
        query,
        scheme: &s[..scheme.len()],
        credentials,
    })
}

fn percent_decode(s: &str) -> Result<String, String> {
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| "a URL parameter is not valid UTF-8 once decoded".to_owned())
}

/// The pairs of a key/value connection string, parsed like tokio-postgres:
/// `key = value`, values either `'quoted'` or bare, `\` escaping a character.
fn key_values(s: &str) -> Result<Vec<(&str, String)>, String> {
    let mut pairs = Vec::new();
    let mut rest = s;
    loop {
        rest = rest.trim_start();
        if rest.is_empty() {
            return Ok(pairs);
        }
        let key_len = rest
            .find(|c: char| c.is_whitespace() || c == '=')
            .unwrap_or(rest.len());
        let key = &rest[..key_len];
        if key.is_empty() {
            return Err("expected a parameter name".to_owned());
        }
        rest = rest[key_len..].trim_start();
        rest = rest
            .strip_prefix('=')
            .ok_or_else(|| format!("expected = after {key}"))?
            .trim_start();
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let quoted = rest.starts_with('\'');
        if quoted {
            chars.next();
        }
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, escaped)) = chars.next() {
                        value.push(escaped);
                    }
                }
                '\'' if quoted => {
                    end = Some(i + 1);
                    break;
                }
                c if !quoted && c.is_whitespace() => {
                    end = Some(i);
                    break;
                }
                c => value.push(c),
            }
        }
        let end = match end {
            Some(end) => end,
            None if quoted => return Err(format!("unterminated quoted value of {key}")),
            None => rest.len(),
        };
        if !quoted && value.is_empty() {
            return Err(format!("{key} has no value"));
        }
        rest = &rest[end..];
        pairs.push((key, value));
    }
}

fn escape_value(value: &str) -> String {
    value.replace('\\', "\\\\").replace('\'', "\\'")
}

/// A connection string with its password replaced by `<redacted>`, for logs
/// and `Debug` output: in a URL, the password of `user:password@` and a
/// `password=` parameter; in the key/value form, the `password` value.
pub fn redact_connection_url(s: &str) -> String {
    const REDACTED: &str = "<redacted>";
    if let Some(url) = split_url(s) {
        let mut out = url.scheme.to_owned();
        let mut rest = &url.base[url.scheme.len()..];
        if let Some(creds) = url.credentials {
            match creds.split_once(':') {
                Some((user, _)) => {
                    out.push_str(user);
                    out.push(':');
                    out.push_str(REDACTED);
                }
                None => out.push_str(creds),
            }
            out.push('@');
            rest = rest.get(creds.len() + 1..).unwrap_or_default();
        }
        out.push_str(rest);
        if let Some(query) = url.query {
            let params: Vec<String> = query
                .split('&')
                .map(|p| match p.split_once('=') {
                    Some((k, _)) if percent_decode(k).is_ok_and(|k| k == "password") => {
                        format!("{k}={REDACTED}")
                    }
                    _ => p.to_owned(),
                })
                .collect();
            out.push('?');
            out.push_str(&params.join("&"));
        }
        return out;
    }
    match key_values(s) {
        Ok(pairs) => pairs
            .into_iter()
            .map(|(k, v)| {
                if k == "password" {
                    format!("{k}={REDACTED}")
                } else if v.is_empty()
                    || v.contains(|c: char| c.is_whitespace() || c == '\'' || c == '\\')
                {
                    format!("{k}='{}'", escape_value(&v))
                } else {
                    format!("{k}={v}")
                }
            })
            .collect::<Vec<_>>()
            .join(" "),
        // Cannot tell where the password is: show nothing.
        Err(_) => "<unparsable connection string>".to_owned(),
    }
}

/// The rustls connector for `policy` (`None`: no TLS).
fn build_tls(
    policy: TlsPolicy,
    root_cert: Option<&str>,
) -> Result<Option<MakeRustlsConnect>, String> {
    if policy == TlsPolicy::Disable {
        return Ok(None);
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS set-up: {e}"))?;
    // libpq: with a root certificate file, require (and prefer) check the
    // chain like verify-ca.
    let verify = match (policy, root_cert) {
        (TlsPolicy::VerifyFull, _) => Some(true),
        (TlsPolicy::VerifyCa, _) | (_, Some(_)) => Some(false),
        _ => None,
    };
    let config = match verify {
        None => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoServerAuth { provider }))
            .with_no_client_auth(),
        Some(check_name) => {
            let roots = Arc::new(root_store(root_cert)?);
            if check_name {
                builder.with_root_certificates(roots).with_no_client_auth()
            } else {
                let inner = WebPkiServerVerifier::builder_with_provider(roots, provider)
                    .build()
                    .map_err(|e| format!("TLS set-up: {e}"))?;
                builder
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(ChainOnly { inner }))
                    .with_no_client_auth()
            }
        }
    };
    let mut config = config;
    // What libpq 17 sends; required by servers for sslnegotiation=direct,
    // ignored by older ones.
    config.alpn_protocols = vec![b"postgresql".to_vec()];
    Ok(Some(MakeRustlsConnect::new(config)))
}

fn root_store(root_cert: Option<&str>) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    match root_cert {
        None | Some("system") => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        Some(file) => {
            let certs = CertificateDer::pem_file_iter(file)
                .map_err(|e| format!("cannot read sslrootcert {file:?}: {e}"))?;
            for cert in certs {
                let cert = cert.map_err(|e| format!("cannot read sslrootcert {file:?}: {e}"))?;
                roots
                    .add(cert)
                    .map_err(|e| format!("invalid certificate in sslrootcert {file:?}: {e}"))?;
            }
            if roots.is_empty() {
                return Err(format!("no certificate in sslrootcert {file:?}"));
            }
        }
    }
    Ok(roots)
}

/// `sslmode=prefer`/`require` without a root file: encryption without
/// authentication, as libpq does. Handshake signatures are still checked.
#[derive(Debug)]
struct NoServerAuth {
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for NoServerAuth {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// `sslmode=verify-ca`: the chain must lead to a trusted root, the name is
/// not checked. webpki checks the name only after the chain, so a name
/// mismatch means the chain was good.
#[derive(Debug)]
struct ChainOnly {
    inner: Arc<WebPkiServerVerifier>,
}

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForName
                | rustls::CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::{Shutdown, TcpListener, TcpStream};

    use super::*;

    /// The test database: a real PostgreSQL. Tests fail (not skip) without it.
    const TEST_URL: &str = "host=127.0.0.1 user=postgres dbname=test";

    /// A fresh schema, dropped at the end of the test even if it fails.
    struct TestSchema {
        name: String,
    }

    impl TestSchema {
        fn new() -> Self {
            let id = uuid::Uuid::new_v4().simple().to_string();
            Self {
                name: format!("transitd_test_{}", &id[..16]),
            }
        }

        fn config(&self) -> PostgresConfig {
            self.config_for(TEST_URL)
        }

        fn config_for(&self, url: &str) -> PostgresConfig {
            PostgresConfig {
                schema: self.name.clone(),
                ..PostgresConfig::new(url)
            }
        }

        fn open(&self) -> PostgresStorage {
            PostgresStorage::connect(&self.config()).unwrap()
        }

        /// Run SQL as the administrator, from a thread of its own (the sync
        /// driver cannot run inside a test's tokio runtime).
        fn admin(&self, sql: String) {
            thread::spawn(move || {
                let mut c = Client::connect(TEST_URL, NoTls).unwrap();
                c.batch_execute(&sql).unwrap();
            })
            .join()
            .unwrap();
        }

        fn admin_query_i64(&self, sql: String) -> i64 {
            thread::spawn(move || {
                let mut c = Client::connect(TEST_URL, NoTls).unwrap();
                c.query_one(&sql, &[]).unwrap().get::<_, i64>(0)
            })
            .join()
            .unwrap()
        }
    }

    impl Drop for TestSchema {
        fn drop(&mut self) {
            let sql = format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.name);
            let _ = thread::spawn(move || {
                if let Ok(mut c) = Client::connect(TEST_URL, NoTls) {
                    let _ = c.batch_execute(&sql);
                }
            })
            .join();
        }
    }

    /// After an interruption the feed first asks for a resync, then reports
    /// other instances' writes (here: `direct` writing `path`) as before.
    fn resync_then_paths(changes: &mpsc::Receiver<Change>, direct: &PostgresStorage, path: &str) {
        assert_eq!(
            changes.recv_timeout(Duration::from_secs(5)),
            Ok(Change::Resync)
        );
        direct.put(path, b"1").unwrap();
        assert_eq!(
            changes.recv_timeout(Duration::from_secs(1)),
            Ok(Change::Path(path.to_owned()))
        );
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    /// Whether this storage's sessions use TLS, asked of the server.
    fn session_uses_tls(s: &PostgresStorage) -> bool {
        s.run(
            "ssl".to_owned(),
            OPERATION_TIMEOUT,
            Effect::None,
            |conn, _, _| {
                Ok(conn
                    .client
                    .query_one(
                        "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                        &[],
                    )
                    .unwrap()
                    .get::<_, bool>(0))
            },
        )
        .unwrap()
    }

    fn unavailable(r: StorageResult<PostgresStorage>) -> String {
        match r {
            Err(StorageError::Unavailable(m)) => m,
            Err(e) => panic!("expected Unavailable, got {e:?}"),
            Ok(s) => panic!("expected Unavailable, got {s:?}"),
        }
    }

    #[test]
    fn put_get_delete() {
        let schema = TestSchema::new();
        let s = schema.open();
        assert_eq!(s.kind(), "postgresql");
        assert!(s.is_shared());
        crate::storage::conformance::put_get_delete(&s);
        // put bumps the row version.
        s.put("v", b"1").unwrap();
        s.put("v", b"2").unwrap();
        s.put("v", b"3").unwrap();
        let version = schema.admin_query_i64(format!(
            "SELECT version FROM \"{}\".transitd_entries WHERE path = 'v'",
            schema.name
        ));
        assert_eq!(version, 3);
        // A second instance sees the same data.
        let other = schema.open();
        assert_eq!(other.get("v").unwrap().as_deref(), Some(&b"3"[..]));
    }

    #[test]
    fn list_is_a_true_prefix_match() {
        let schema = TestSchema::new();
        crate::storage::conformance::list_is_a_true_prefix_match(&schema.open());
    }

    #[test]
    fn compare_and_swap() {
        let schema = TestSchema::new();
        crate::storage::conformance::compare_and_swap(&schema.open());
    }

    #[test]
    fn compare_and_swap_is_atomic_across_instances() {
        // Two instances (as two nodes would have), four threads, 25
        // increments each through CAS loops: no increment may be lost.
        let schema = TestSchema::new();
        let nodes = [Arc::new(schema.open()), Arc::new(schema.open())];
        nodes[0].put("n", b"0").unwrap();
        let threads: Vec<_> = (0..4)
            .map(|i| {
                let s = Arc::clone(&nodes[i % 2]);
                thread::spawn(move || {
                    let mut conflicts = 0u32;
                    for _ in 0..25 {
                        loop {
                            let cur = s.get("n").unwrap().unwrap();
                            let n: u32 = std::str::from_utf8(&cur).unwrap().parse().unwrap();
                            let next = (n + 1).to_string();
                            if s.compare_and_swap("n", Some(&cur), Some(next.as_bytes()))
                                .unwrap()
                            {
                                break;
                            }
                            conflicts += 1;
                        }
                    }
                    conflicts
                })
            })
            .collect();
        let conflicts: u32 = threads.into_iter().map(|t| t.join().unwrap()).sum();
        assert_eq!(nodes[1].get("n").unwrap().as_deref(), Some(&b"100"[..]));
        eprintln!("CAS contention: 100 increments, {conflicts} conflicts retried");
        // Never more connections than max_parallel per instance.
        for node in &nodes {
            assert!(lock(&node.pool.idle).len() <= node.pool.max);
            assert!(lock(&node.pool.workers).spawned <= node.pool.max);
        }
    }

    #[test]
    fn pool_never_exceeds_max_parallel() {
        let schema = TestSchema::new();
        let s = Arc::new(
            PostgresStorage::connect(&PostgresConfig {
                max_parallel: 2,
                ..schema.config()
            })
            .unwrap(),
        );
        let threads: Vec<_> = (0..6)
            .map(|i| {
                let s = Arc::clone(&s);
                thread::spawn(move || {
                    for j in 0..10 {
                        s.put(&format!("t{i}/{j}"), b"x").unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(s.list("").unwrap().len(), 60);
        let sessions = schema.admin_query_i64(format!(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'transitd' \
             AND query LIKE '%\"{}\"%'",
            schema.name
        ));
        assert!(sessions <= 2, "{sessions} sessions");
        assert!(lock(&s.pool.workers).spawned <= 2);
        assert!(lock(&s.pool.idle).len() <= 2);
    }

    #[test]
    fn notifications_reach_other_instances() {
        let schema = TestSchema::new();
        let a = schema.open();
        let b = schema.open();
        let changes = b.subscribe().unwrap();
        let changes_of_a = a.subscribe().unwrap();
        // B's own write is not reported to B.
        b.put("mine", b"x").unwrap();
        assert_eq!(
            changes_of_a.recv_timeout(Duration::from_secs(2)).unwrap(),
            Change::Path("mine".to_owned())
        );

        // Latency from the start of the write call (so including its round
        // trip and commit) and from its return.
        let mut from_call = Vec::new();
        let mut from_return = Vec::new();
        let mut expect = |what: &str, path: &str, write: &dyn Fn()| {
            let called = Instant::now();
            write();
            let returned = Instant::now();
            let got = changes.recv_timeout(Duration::from_millis(100));
            let (total, after) = (called.elapsed(), returned.elapsed());
            assert_eq!(
                got,
                Ok(Change::Path(path.to_owned())),
                "{what}: no notification within 100 ms"
            );
            assert!(after < Duration::from_millis(100), "{what}: {after:?}");
            from_call.push(total);
            from_return.push(after);
        };
        expect("put", "k/1", &|| a.put("k/1", b"v").unwrap());
        expect("put again", "k/1", &|| a.put("k/1", b"w").unwrap());
        expect("delete", "k/1", &|| a.delete("k/1").unwrap());
        expect("cas insert", "k/2", &|| {
            assert!(a.compare_and_swap("k/2", None, Some(b"1")).unwrap());
        });
        expect("cas update", "k/2", &|| {
            assert!(a.compare_and_swap("k/2", Some(b"1"), Some(b"2")).unwrap());
        });
        // Writes that changed nothing notify nobody: the next change seen is
        // the one after them.
        expect("failed cas, missing delete, then put", "k/3", &|| {
            assert!(!a.compare_and_swap("k/2", Some(b"1"), Some(b"3")).unwrap());
            assert!(!a.compare_and_swap("k/2", None, Some(b"3")).unwrap());
            a.delete("never").unwrap();
            a.put("k/3", b"x").unwrap();
        });
        expect("cas delete", "k/2", &|| {
            assert!(a.compare_and_swap("k/2", Some(b"2"), None).unwrap());
        });
        expect("path with spaces", "a path/with spaces", &|| {
            a.put("a path/with spaces", b"x").unwrap();
        });

        // Several subscribers each get every change.
        let second = b.subscribe().unwrap();
        a.put("k/4", b"x").unwrap();
        for rx in [&changes, &second] {
            assert_eq!(
                rx.recv_timeout(Duration::from_millis(500)),
                Ok(Change::Path("k/4".to_owned()))
            );
        }
        // B wrote again meanwhile: still nothing of its own, and no Resync.
        b.put("mine", b"y").unwrap();
        b.delete("mine").unwrap();
        thread::sleep(Duration::from_millis(200));
        assert_eq!(changes.try_recv(), Err(mpsc::TryRecvError::Empty));
        assert_eq!(second.try_recv(), Err(mpsc::TryRecvError::Empty));
        // A sees B's writes.
        let seen: Vec<Change> =
            std::iter::from_fn(|| changes_of_a.recv_timeout(Duration::from_millis(500)).ok())
                .take(2)
                .collect();
        assert_eq!(seen, vec![Change::Path("mine".to_owned()); 2]);

        for (name, mut l) in [
            ("from the write call", from_call),
            ("from its return", from_return),
        ] {
            l.sort();
            eprintln!(
                "notification latency {name}: min {:?}, median {:?}, max {:?} ({} writes)",
                l[0],
                l[l.len() / 2],
                l[l.len() - 1],
                l.len()
            );
        }
    }

    #[test]
    fn dropped_subscribers_are_forgotten() {
        let schema = TestSchema::new();
        let a = schema.open();
        let b = schema.open();
        drop(b.subscribe().unwrap());
        let kept = b.subscribe().unwrap();
        a.put("x", b"1").unwrap();
        assert_eq!(
            kept.recv_timeout(Duration::from_secs(1)),
            Ok(Change::Path("x".to_owned()))
        );
        assert_eq!(lock(&b.feed.subscribers).len(), 1);
    }

    #[test]
    fn migration_is_idempotent_and_safe_when_nodes_start_together() {
        let schema = TestSchema::new();
        let barrier = Arc::new(std::sync::Barrier::new(3));
        let starts: Vec<_> = (0..3)
            .map(|_| {
                let config = schema.config();
                let barrier = Arc::clone(&barrier);
                thread::spawn(move || {
                    barrier.wait();
                    PostgresStorage::connect(&config)
                })
            })
            .collect();
        let nodes: Vec<PostgresStorage> = starts
            .into_iter()
            .map(|t| t.join().unwrap().unwrap())
            .collect();
        nodes[0].put("a", b"1").unwrap();
        assert_eq!(nodes[2].get("a").unwrap().as_deref(), Some(&b"1"[..]));
        let version = schema.admin_query_i64(format!(
            "SELECT version FROM \"{}\".transitd_schema_version",
            schema.name
        ));
        assert_eq!(version, SCHEMA_VERSION);
        let rows = schema.admin_query_i64(format!(
            "SELECT count(*) FROM \"{}\".transitd_schema_version",
            schema.name
        ));
        assert_eq!(rows, 1);
        // Connecting again changes nothing and keeps the data.
        drop(nodes);
        let again = schema.open();
        assert_eq!(again.get("a").unwrap().as_deref(), Some(&b"1"[..]));
        // The path column sorts bytewise whatever the database default.
        let collation = schema.admin_query_i64(format!(
            "SELECT count(*) FROM information_schema.columns WHERE table_schema = '{}' \
             AND table_name = 'transitd_entries' AND column_name = 'path' \
             AND collation_name = 'C'",
            schema.name
        ));
        assert_eq!(collation, 1);
    }

    #[test]
    fn uses_an_existing_schema_and_creates_a_missing_one() {
        let schema = TestSchema::new();
        schema.admin(format!("CREATE SCHEMA \"{}\"", schema.name));
        let s = schema.open();
        s.put("x", b"y").unwrap();
        // Mixed case is kept (the name is always quoted).
        let mixed = TestSchema {
            name: format!(
                "Transitd_Test_{}",
                &uuid::Uuid::new_v4().simple().to_string()[..12]
            ),
        };
        let m = mixed.open();
        assert_eq!(m.get("x").unwrap(), None);
        let exists = mixed.admin_query_i64(format!(
            "SELECT count(*) FROM pg_namespace WHERE nspname = '{}'",
            mixed.name
        ));
        assert_eq!(exists, 1);
    }

    #[test]
    fn refuses_a_newer_schema() {
        let schema = TestSchema::new();
        drop(schema.open());
        schema.admin(format!(
            "UPDATE \"{}\".transitd_schema_version SET version = {}",
            schema.name,
            SCHEMA_VERSION + 1
        ));
        let err = PostgresStorage::connect(&schema.config()).unwrap_err();
        let StorageError::Corrupt(msg) = err else {
            panic!("expected Corrupt, got {err:?}");
        };
        assert!(
            msg.contains(&format!("version {}", SCHEMA_VERSION + 1)),
            "{msg}"
        );
        assert!(msg.contains(&format!("version {SCHEMA_VERSION}")), "{msg}");
        // Refusing changed nothing.
        let version = schema.admin_query_i64(format!(
            "SELECT version FROM \"{}\".transitd_schema_version",
            schema.name
        ));
        assert_eq!(version, SCHEMA_VERSION + 1);
    }

    #[test]
    fn rejects_bad_schema_names_and_max_parallel() {
        for bad in [
            "",
            "1abc",
            "a-b",
            "a b",
            "a\"b",
            "pg_x",
            "PG_x",
            "é",
            &"s".repeat(55),
        ] {
            let config = PostgresConfig {
                schema: bad.to_owned(),
                ..PostgresConfig::new(TEST_URL)
            };
            let msg = unavailable(PostgresStorage::connect(&config));
            assert!(msg.starts_with("postgresql: "), "{msg}");
            assert!(msg.contains("schema name"), "{bad:?}: {msg}");
        }
        for ok in ["public", "_x", "Transit_1", &"s".repeat(54)] {
            PostgresConfig::validate_schema(ok).unwrap();
        }
        for bad in [0, MAX_MAX_PARALLEL + 1] {
            let config = PostgresConfig {
                max_parallel: bad,
                ..PostgresConfig::new(TEST_URL)
            };
            let msg = unavailable(PostgresStorage::connect(&config));
            assert!(msg.contains("max_parallel"), "{msg}");
        }
    }

    #[tokio::test]
    async fn works_inside_a_current_thread_runtime() {
        let schema = TestSchema::new();
        let s = schema.open();
        s.put("a", b"1").unwrap();
        assert_eq!(s.get("a").unwrap().as_deref(), Some(&b"1"[..]));
        assert!(s.compare_and_swap("a", Some(b"1"), Some(b"2")).unwrap());
        // Through the helper request handlers use.
        let got = super::super::blocking(|| s.get("a")).unwrap();
        assert_eq!(got.as_deref(), Some(&b"2"[..]));
        let rx = s.subscribe().unwrap();
        let other = schema.open();
        other.put("b", b"x").unwrap();
        assert_eq!(
            rx.recv_timeout(Duration::from_secs(1)),
            Ok(Change::Path("b".to_owned()))
        );
        // The runtime itself still runs.
        tokio::task::yield_now().await;
        drop(s);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn works_from_a_multi_thread_runtime() {
        let schema = TestSchema::new();
        let s = Arc::new(super::super::blocking(|| schema.open()));
        let tasks: Vec<_> = (0..4)
            .map(|i| {
                let s = Arc::clone(&s);
                tokio::spawn(async move {
                    super::super::blocking(|| s.put(&format!("k{i}"), b"v")).unwrap();
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(
            super::super::blocking(|| s.list("k")).unwrap(),
            strings(&["k0", "k1", "k2", "k3"])
        );
    }

    #[test]
    fn closed_port_is_unavailable_quickly_without_the_password() {
        let schema = TestSchema::new();
        let started = Instant::now();
        let msg = unavailable(PostgresStorage::connect(
            &schema.config_for("postgresql://postgres:hunter2-secret@127.0.0.1:1/test"),
        ));
        assert!(
            started.elapsed() < Duration::from_secs(6),
            "{:?}",
            started.elapsed()
        );
        assert!(msg.starts_with("postgresql: "), "{msg}");
        assert!(msg.contains("127.0.0.1:1/test"), "{msg}");
        assert!(!msg.contains("hunter2"), "{msg}");
    }

    /// A server that accepts connections and never answers.
    fn black_hole() -> (u16, Arc<Mutex<Vec<TcpStream>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let held = Arc::new(Mutex::new(Vec::new()));
        let keep = Arc::clone(&held);
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                lock(&keep).push(stream);
            }
        });
        (port, held)
    }

    #[test]
    fn an_unresponsive_server_is_unavailable_within_the_deadline() {
        let schema = TestSchema::new();
        let (port, held) = black_hole();
        let config = PostgresConfig {
            connect_timeout: Duration::from_secs(1),
            ..schema.config_for(&format!(
                "host=127.0.0.1 port={port} user=postgres dbname=test sslmode=disable"
            ))
        };
        let started = Instant::now();
        let msg = unavailable(PostgresStorage::connect(&config));
        let elapsed = started.elapsed();
        // The caller's deadline: connect_timeout + OPERATION_TIMEOUT.
        assert!(elapsed >= Duration::from_secs(5), "{elapsed:?}");
        assert!(elapsed < Duration::from_secs(7), "{elapsed:?}");
        assert!(
            msg.starts_with("postgresql: migrate schema: no answer from"),
            "{msg}"
        );
        // Closing the connections frees the stuck worker.
        for s in lock(&held).drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    #[test]
    fn survives_the_server_closing_its_sessions() {
        // What a server restart or an administrator's pg_terminate_backend
        // does to idle pooled connections and to the feed's connection.
        let schema = TestSchema::new();
        let app = format!("t{}", &schema.name[14..]);
        let s = PostgresStorage::connect(
            &schema.config_for(&format!("{TEST_URL} application_name={app}")),
        )
        .unwrap();
        let direct = schema.open();
        let changes = s.subscribe().unwrap();
        s.put("a", b"1").unwrap();
        let killed = schema.admin_query_i64(format!(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE application_name = '{app}'"
        ));
        assert!(killed >= 2, "{killed}");
        assert_eq!(
            changes.recv_timeout(Duration::from_secs(5)),
            Ok(Change::Resync)
        );
        // The dead connection, idle for less than IDLE_CHECK_AFTER, fails
        // the read, which is retried on a new connection: nothing reported.
        assert_eq!(s.get("a").unwrap().as_deref(), Some(&b"1"[..]));
        // Again, past IDLE_CHECK_AFTER: the check before use finds it dead.
        schema.admin_query_i64(format!(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE application_name = '{app}'"
        ));
        thread::sleep(IDLE_CHECK_AFTER + Duration::from_millis(100));
        s.put("a", b"2").unwrap();
        assert_eq!(s.get("a").unwrap().as_deref(), Some(&b"2"[..]));
        resync_then_paths(&changes, &direct, "b");
    }

    #[test]
    fn tls_modes_against_the_local_server() {
        // The local server has TLS with a self-signed certificate for
        // "localhost" (Debian's snakeoil); these cases follow libpq.
        let schema = TestSchema::new();
        let plain = schema.open();
        let open = |extra: &str| {
            PostgresStorage::connect(
                &schema.config_for(&format!("host=127.0.0.1 user=postgres dbname=test {extra}")),
            )
        };
        // prefer (the default) and require: encrypted, not authenticated.
        assert!(session_uses_tls(&plain));
        assert!(session_uses_tls(&open("sslmode=require").unwrap()));
        assert!(session_uses_tls(&open("sslmode=allow").unwrap()));
        assert!(!session_uses_tls(&open("sslmode=disable").unwrap()));
        // verify-full against the public roots: a clean error, no panic.
        let msg = unavailable(open("sslmode=verify-full"));
        assert!(msg.contains("TLS"), "{msg}");
        assert!(msg.contains("certificate"), "{msg}");
        let msg = unavailable(open("sslmode=verify-ca"));
        assert!(msg.contains("certificate"), "{msg}");
        // With the server's certificate as the root.
        let cert = "/etc/ssl/certs/ssl-cert-snakeoil.pem";
        assert!(session_uses_tls(
            &open(&format!("sslmode=verify-ca sslrootcert={cert}")).unwrap()
        ));
        // require + sslrootcert checks the chain like verify-ca.
        assert!(session_uses_tls(
            &open(&format!("sslmode=require sslrootcert={cert}")).unwrap()
        ));
        // verify-full also checks the name: 127.0.0.1 is not "localhost".
        let msg = unavailable(open(&format!("sslmode=verify-full sslrootcert={cert}")));
        assert!(msg.contains("certificate"), "{msg}");
        let localhost = PostgresStorage::connect(&schema.config_for(&format!(
            "postgresql://postgres@localhost/test?sslmode=verify-full&sslrootcert={cert}"
        )))
        .unwrap();
        assert!(session_uses_tls(&localhost));
        // A missing root file.
        let msg = unavailable(open(
            "sslmode=verify-full sslrootcert=/nonexistent/root.pem",
        ));
        assert!(msg.contains("sslrootcert"), "{msg}");
        // An unknown mode.
        let msg = unavailable(open("sslmode=sometimes"));
        assert!(msg.contains("unknown sslmode"), "{msg}");
    }

    /// A server that answers "no TLS" to the TLS request, then closes.
    fn server_without_tls() -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let mut request = [0u8; 8];
                if stream.read_exact(&mut request).is_ok() {
                    let _ = stream.write_all(b"N");
                }
                let _ = stream.shutdown(Shutdown::Both);
            }
        });
        port
    }

    #[test]
    fn tls_required_from_a_server_without_tls_is_unavailable() {
        let schema = TestSchema::new();
        let port = server_without_tls();
        for mode in ["require", "verify-full"] {
            let started = Instant::now();
            let msg = unavailable(PostgresStorage::connect(&schema.config_for(&format!(
                "postgres://postgres:pw-not-shown@127.0.0.1:{port}/test?sslmode={mode}"
            ))));
            assert!(started.elapsed() < Duration::from_secs(6));
            assert!(msg.starts_with("postgresql: "), "{msg}");
            assert!(msg.contains("TLS"), "{msg}");
            assert!(!msg.contains("pw-not-shown"), "{msg}");
        }
    }

    /// A TCP proxy to the test server that can be cut and restored, to play
    /// a database outage.
    struct Proxy {
        port: u16,
        up: Arc<AtomicBool>,
        conns: Arc<Mutex<Vec<TcpStream>>>,
        acceptor: Option<thread::JoinHandle<()>>,
        /// How long a new connection waits before it reaches the server: a
        /// slow connect.
        delay: Arc<Mutex<Duration>>,
    }

    impl Proxy {
        fn start() -> Self {
            let mut proxy = Self {
                port: 0,
                up: Arc::new(AtomicBool::new(false)),
                conns: Arc::new(Mutex::new(Vec::new())),
                acceptor: None,
                delay: Arc::new(Mutex::new(Duration::ZERO)),
            };
            proxy.resume();
            proxy
        }

        fn resume(&mut self) {
            let listener = TcpListener::bind(("127.0.0.1", self.port)).unwrap();
            self.port = listener.local_addr().unwrap().port();
            listener.set_nonblocking(true).unwrap();
            self.up.store(true, Ordering::SeqCst);
            let up = Arc::clone(&self.up);
            let conns = Arc::clone(&self.conns);
            let delay = Arc::clone(&self.delay);
            self.acceptor = Some(thread::spawn(move || {
                while up.load(Ordering::SeqCst) {
                    match listener.accept() {
                        Ok((client, _)) => {
                            client.set_nonblocking(false).unwrap();
                            lock(&conns).push(client.try_clone().unwrap());
                            let conns = Arc::clone(&conns);
                            let delay = *lock(&delay);
                            thread::spawn(move || {
                                thread::sleep(delay);
                                let Ok(server) = TcpStream::connect("127.0.0.1:5432") else {
                                    return;
                                };
                                lock(&conns).push(server.try_clone().unwrap());
                                for (mut from, mut to) in [
                                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                                    (server, client),
                                ] {
                                    thread::spawn(move || {
                                        let _ = std::io::copy(&mut from, &mut to);
                                        let _ = to.shutdown(Shutdown::Both);
                                    });
                                }
                            });
                        }
                        Err(_) => thread::sleep(Duration::from_millis(5)),
                    }
                }
            }));
        }

        /// Stop accepting and cut every connection.
        fn cut(&mut self) {
            self.up.store(false, Ordering::SeqCst);
            if let Some(a) = self.acceptor.take() {
                a.join().unwrap();
            }
            self.sever();
        }

        /// Cut the open connections, still accepting new ones: a connection
        /// lost in the middle of a statement, the server still reachable.
        fn sever(&self) {
            for c in lock(&self.conns).drain(..) {
                let _ = c.shutdown(Shutdown::Both);
            }
        }

        fn set_delay(&self, delay: Duration) {
            *lock(&self.delay) = delay;
        }

        fn url(&self) -> String {
            format!(
                "host=127.0.0.1 port={} user=postgres dbname=test sslmode=disable",
                self.port
            )
        }
    }

    impl Drop for Proxy {
        fn drop(&mut self) {
            self.cut();
        }
    }

    #[test]
    fn recovers_after_an_outage_and_resyncs_the_feed() {
        let schema = TestSchema::new();
        let mut proxy = Proxy::start();
        let direct = schema.open();
        let s = PostgresStorage::connect(&schema.config_for(&proxy.url())).unwrap();
        let changes = s.subscribe().unwrap();
        s.put("before", b"1").unwrap();
        direct.put("x", b"1").unwrap();
        assert_eq!(
            changes.recv_timeout(Duration::from_secs(1)),
            Ok(Change::Path("x".to_owned()))
        );

        proxy.cut();
        // Every call fails, fast, while the database is unreachable.
        for _ in 0..3 {
            let started = Instant::now();
            match s.get("before") {
                Err(StorageError::Unavailable(m)) => assert!(m.starts_with("postgresql: "), "{m}"),
                other => panic!("expected Unavailable, got {other:?}"),
            }
            assert!(
                started.elapsed() < Duration::from_secs(1),
                "{:?}",
                started.elapsed()
            );
        }
        assert!(matches!(
            s.put("during", b"x"),
            Err(StorageError::Unavailable(_))
        ));
        // Changes made meanwhile are not seen...
        direct.put("missed", b"1").unwrap();

        proxy.resume();
        // ... which the feed reports with a Resync once it is back.
        resync_then_paths(&changes, &direct, "y");
        // Works again without a restart.
        assert_eq!(s.get("before").unwrap().as_deref(), Some(&b"1"[..]));
        s.put("after", b"2").unwrap();
        assert_eq!(direct.get("after").unwrap().as_deref(), Some(&b"2"[..]));
    }

    #[test]
    fn feed_started_while_the_database_is_down_resyncs_when_it_is_back() {
        let schema = TestSchema::new();
        let mut proxy = Proxy::start();
        let direct = schema.open();
        let s = PostgresStorage::connect(&schema.config_for(&proxy.url())).unwrap();
        proxy.cut();
        let started = Instant::now();
        let changes = s.subscribe().unwrap();
        assert!(started.elapsed() < Duration::from_secs(6));
        proxy.resume();
        resync_then_paths(&changes, &direct, "z");
    }

    #[test]
    fn connection_strings() {
        let p = ConnectionString::parse(
            "postgres://u:p%40ss@db:5433/transit?sslmode=verify-full&sslrootcert=%2Fetc%2Froot.pem&connect_timeout=3",
        )
        .unwrap();
        assert_eq!(p.tls, TlsPolicy::VerifyFull);
        assert_eq!(p.root_cert.as_deref(), Some("/etc/root.pem"));
        assert_eq!(
            p.driver,
            "postgres://u:p%40ss@db:5433/transit?sslmode=require&connect_timeout=3"
        );
        assert_eq!(
            p.keys,
            strings(&["sslmode", "sslrootcert", "connect_timeout"])
        );
        let pg: ::postgres::Config = p.driver.parse().unwrap();
        assert_eq!(pg.get_password(), Some(&b"p@ss"[..]));
        assert_eq!(pg.get_ssl_mode(), SslMode::Require);

        // `?` inside the credentials belongs to the password, as for tokio-postgres.
        let p = ConnectionString::parse("postgresql://u:a?b@db/x").unwrap();
        assert_eq!(p.driver, "postgresql://u:a?b@db/x");
        assert_eq!(p.tls, TlsPolicy::Prefer);

        let p = ConnectionString::parse(
            "host=db user=me password='it\\'s \\\\x' sslmode = verify-ca sslrootcert='/a b/root.pem' dbname=x\\ y",
        )
        .unwrap();
        assert_eq!(p.tls, TlsPolicy::VerifyCa);
        assert_eq!(p.root_cert.as_deref(), Some("/a b/root.pem"));
        let pg: ::postgres::Config = p.driver.parse().unwrap();
        assert_eq!(pg.get_password(), Some(&b"it's \\x"[..]));
        assert_eq!(pg.get_dbname(), Some("x y"));
        assert_eq!(pg.get_user(), Some("me"));
        assert_eq!(pg.get_ssl_mode(), SslMode::Require);

        for (mode, policy) in [
            ("disable", TlsPolicy::Disable),
            ("allow", TlsPolicy::Prefer),
            ("prefer", TlsPolicy::Prefer),
            ("require", TlsPolicy::Require),
        ] {
            let p = ConnectionString::parse(&format!("host=db sslmode={mode}")).unwrap();
            assert_eq!(p.tls, policy, "{mode}");
        }
        assert!(ConnectionString::parse("host=db sslmode=bogus").is_err());
        assert!(ConnectionString::parse("").is_err());
        assert!(ConnectionString::parse("host").is_err());
        assert!(ConnectionString::parse("host='db").is_err());
        assert!(ConnectionString::parse("postgres://db/x?novalue").is_err());
    }

    #[test]
    fn redacts_passwords() {
        for (input, shown) in [
            (
                "postgres://u:secret@db:5432/x?sslmode=require",
                "postgres://u:<redacted>@db:5432/x?sslmode=require",
            ),
            ("postgresql://u@db/x", "postgresql://u@db/x"),
            ("postgresql://db/x", "postgresql://db/x"),
            (
                "postgres://u:se:cr@et@db/x?password=secret&a=b",
                "postgres://u:<redacted>@et@db/x?password=<redacted>&a=b",
            ),
            (
                "postgres://db/x?pass%77ord=secret",
                "postgres://db/x?pass%77ord=<redacted>",
            ),
            (
                "host=db password=secret user=u",
                "host=db password=<redacted> user=u",
            ),
            (
                "host=db password='sec ret' dbname='a b'",
                "host=db password=<redacted> dbname='a b'",
            ),
            ("host='db", "<unparsable connection string>"),
        ] {
            let out = redact_connection_url(input);
            assert_eq!(out, shown, "{input}");
            assert!(!out.contains("secret") && !out.contains("sec ret"), "{out}");
        }
        let config = PostgresConfig::new("postgres://u:secret@db/x");
        let debug = format!("{config:?}");
        assert!(!debug.contains("secret"), "{debug}");
        assert!(debug.contains("u:<redacted>@db"), "{debug}");
    }

    #[test]
    fn notification_payloads() {
        let schema = TestSchema::new();
        let s = schema.open();
        let node = &s.settings.node_id;
        assert!(is_node_id(node), "{node}");
        assert_eq!(s.settings.payload("a b"), format!("{node} a b"));
        let longest = "x".repeat(MAX_NOTIFY_PATH);
        assert_eq!(s.settings.payload(&longest), format!("{node} {longest}"));
        // Paths that receivers would refuse are sent as "something changed".
        for refused in [
            &"x".repeat(MAX_NOTIFY_PATH + 1),
            "",
            "a\nb",
            "a\u{1b}b",
            "a\u{85}",
        ] {
            assert_eq!(s.settings.payload(refused), *node, "{refused:?}");
        }
        // Whatever is sent is accepted as sent.
        for path in ["a b", " lead", "é/ü", "trail ", &longest, "\u{1b}"] {
            let payload = s.settings.payload(path);
            let expected = notifiable_path(path).then_some(path);
            assert_eq!(
                parse_payload(&payload),
                Some((node.as_str(), expected)),
                "{path:?}"
            );
        }
        assert_eq!(s.settings.channel, format!("transitd_{}", schema.name));
    }

    #[test]
    fn payload_shapes() {
        let id = "0123456789abcdef0123456789abcdef";
        assert_eq!(parse_payload(id), Some((id, None)));
        assert_eq!(
            parse_payload(&format!("{id} a/b c")),
            Some((id, Some("a/b c")))
        );
        for bad in [
            String::new(),
            " ".to_owned(),
            "nothex a".to_owned(),
            format!("{} a", &id[..31]),
            format!("{} a", id.to_uppercase()),
            format!("{id}0 a"),
            format!("{id} "),
            format!("{id}\ta"),
            format!(" {id} a"),
            format!("{id} a\rb"),
            format!("{id} {}", "x".repeat(MAX_NOTIFY_PATH + 1)),
        ] {
            assert_eq!(parse_payload(&bad), None, "{bad:?}");
        }
        // A log line shows at most 8 characters, letters and digits.
        assert_eq!(payload_preview("ab\u{1b}[2Jcdefgh"), "ab??2Jcd");
        assert_eq!(payload_preview("é\n"), "??");
    }

    #[test]
    fn log_limiter_lets_one_line_through_per_period() {
        let mut l = LogLimiter::new(Duration::from_secs(5));
        let t = Instant::now();
        assert_eq!(l.allow(t), Some(0));
        assert_eq!(l.allow(t + Duration::from_secs(1)), None);
        assert_eq!(l.allow(t + Duration::from_secs(4)), None);
        assert_eq!(l.allow(t + Duration::from_secs(5)), Some(2));
        assert_eq!(l.allow(t + Duration::from_secs(6)), None);
    }

    #[test]
    fn a_full_subscriber_queue_owes_one_resync() {
        let (tx, rx) = mpsc::sync_channel(2);
        let mut sub = Subscriber { tx, missed: false };
        let path = |p: &str| Change::Path(p.to_owned());
        for p in ["a", "b", "c", "d"] {
            assert!(sub.offer(&path(p)));
        }
        assert!(sub.missed);
        assert!(sub.catch_up());
        assert!(sub.missed, "no room yet");
        assert_eq!(rx.try_recv(), Ok(path("a")));
        // The owed Resync takes the room; "e" does not fit behind it, but
        // that Resync, still queued, covers it: nothing more owed.
        assert!(sub.offer(&path("e")));
        assert!(!sub.missed);
        assert_eq!(
            rx.try_iter().collect::<Vec<_>>(),
            vec![path("b"), Change::Resync]
        );
        // A Resync offered while one is owed is delivered once.
        for p in ["f", "g", "h"] {
            assert!(sub.offer(&path(p)));
        }
        assert_eq!(rx.try_recv(), Ok(path("f")));
        assert!(sub.offer(&Change::Resync));
        assert!(!sub.missed);
        assert_eq!(
            rx.try_iter().collect::<Vec<_>>(),
            vec![path("g"), Change::Resync]
        );
        // Owed, then delivered by catch_up alone once there is room.
        for p in ["i", "j", "k"] {
            assert!(sub.offer(&path(p)));
        }
        assert_eq!(rx.try_recv(), Ok(path("i")));
        assert!(sub.catch_up());
        assert!(!sub.missed);
        assert_eq!(
            rx.try_iter().collect::<Vec<_>>(),
            vec![path("j"), Change::Resync]
        );
        drop(rx);
        assert!(!sub.offer(&path("l")));
    }

    fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
        let until = Instant::now() + Duration::from_secs(10);
        while !done() {
            assert!(Instant::now() < until, "timed out waiting until {what}");
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sessions waiting for a lock on the schema's table.
    fn lock_waiters(schema: &TestSchema) -> i64 {
        schema.admin_query_i64(format!(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' \
             AND query LIKE '%\"{}\".transitd_entries%'",
            schema.name
        ))
    }

    /// The row's version, 0 if missing.
    fn row_version(schema: &TestSchema, path: &str) -> i64 {
        schema.admin_query_i64(format!(
            "SELECT COALESCE((SELECT version FROM \"{}\".transitd_entries WHERE path = '{path}'), 0)",
            schema.name
        ))
    }

    /// An administrator's transaction holding the lock of the row at `path`,
    /// until it ends.
    fn lock_row<'a>(
        admin: &'a mut Client,
        schema: &TestSchema,
        path: &str,
    ) -> ::postgres::Transaction<'a> {
        let mut tx = admin.transaction().unwrap();
        let locked = tx
            .execute(
                &format!(
                    "SELECT 1 FROM \"{}\".transitd_entries WHERE path = $1 FOR UPDATE",
                    schema.name
                ),
                &[&path],
            )
            .unwrap();
        assert_eq!(locked, 1);
        tx
    }

    fn unavailable_msg<T: fmt::Debug>(r: StorageResult<T>) -> String {
        match r {
            Err(StorageError::Unavailable(m)) => m,
            other => panic!("expected Unavailable, got {other:?}"),
        }
    }

    /// Paths reported by a feed within `wait`.
    fn paths_seen(changes: &mpsc::Receiver<Change>, wait: Duration) -> Vec<Change> {
        std::iter::from_fn(|| changes.recv_timeout(wait).ok()).collect()
    }

    #[test]
    fn a_write_not_sent_by_its_deadline_never_is() {
        let schema = TestSchema::new();
        let direct = schema.open();
        let changes = direct.subscribe().unwrap();
        let deadline = Duration::from_millis(300);

        // 1. Queued behind the only worker, stuck in a write waiting for a
        // row lock.
        let mut s = PostgresStorage::connect(&PostgresConfig {
            max_parallel: 1,
            ..schema.config()
        })
        .unwrap();
        s.operation_timeout = deadline;
        let s = Arc::new(s);
        s.put("busy", b"1").unwrap();
        let mut admin = Client::connect(TEST_URL, NoTls).unwrap();
        let tx = lock_row(&mut admin, &schema, "busy");
        let busy = {
            let s = Arc::clone(&s);
            thread::spawn(move || s.put("busy", b"2"))
        };
        wait_until("the put waits for the lock", || lock_waiters(&schema) == 1);
        let started = Instant::now();
        let msg = unavailable_msg(s.put("queued", b"x"));
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
        assert!(msg.contains("nothing was written"), "{msg}");
        tx.commit().unwrap();
        busy.join().unwrap().unwrap();
        // The worker has passed the queued put by now (one worker, in order).
        assert_eq!(s.get("queued").unwrap(), None);

        // 2. Taken by a worker at once, but its connection takes longer than
        // the deadline to open: the worker must not send it afterwards.
        let mut proxy = Proxy::start();
        let mut slow = PostgresStorage::connect(&PostgresConfig {
            max_parallel: 1,
            ..schema.config_for(&proxy.url())
        })
        .unwrap();
        slow.operation_timeout = deadline;
        proxy.cut();
        proxy.set_delay(Duration::from_secs(1));
        proxy.resume();
        let started = Instant::now();
        let msg = unavailable_msg(slow.put("slow", b"x"));
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
        assert!(msg.contains("nothing was written"), "{msg}");
        // The connection is open by now, and pooled: the put was not sent.
        thread::sleep(Duration::from_millis(1500));
        proxy.set_delay(Duration::ZERO);
        assert_eq!(slow.get("slow").unwrap(), None);

        // Neither was ever applied, nor announced.
        thread::sleep(Duration::from_millis(300));
        assert_eq!(row_version(&schema, "queued"), 0);
        assert_eq!(row_version(&schema, "slow"), 0);
        assert_eq!(
            paths_seen(&changes, Duration::from_millis(300)),
            vec![Change::Path("busy".to_owned()); 2]
        );
    }

    #[test]
    fn a_sent_write_is_waited_for() {
        let schema = TestSchema::new();
        let mut s = schema.open();
        s.operation_timeout = Duration::from_millis(300);
        let s = Arc::new(s);
        let direct = schema.open();
        s.put("k", b"1").unwrap();
        let mut admin = Client::connect(TEST_URL, NoTls).unwrap();
        // Each write is sent at once, then waits for a row lock that is
        // released (or not) well after its caller's deadline.
        let blocked =
            |admin: &mut Client,
             release: bool,
             write: Box<dyn FnOnce() -> StorageResult<bool> + Send>| {
                let tx = lock_row(admin, &schema, "k");
                let writer = thread::spawn(move || {
                    let started = Instant::now();
                    (write(), started.elapsed())
                });
                wait_until("the write waits for the lock", || {
                    lock_waiters(&schema) == 1
                });
                thread::sleep(Duration::from_millis(700));
                if release {
                    tx.commit().unwrap();
                }
                let (result, took) = writer.join().unwrap();
                assert!(took >= Duration::from_millis(700), "{took:?}");
                result
            };

        let w = Arc::clone(&s);
        let put = blocked(
            &mut admin,
            true,
            Box::new(move || w.put("k", b"2").map(|()| true)),
        );
        assert!(put.unwrap());
        assert_eq!(direct.get("k").unwrap().as_deref(), Some(&b"2"[..]));
        assert_eq!(row_version(&schema, "k"), 2);

        // A compare-and-swap reports what happened: applied once, true.
        let w = Arc::clone(&s);
        let cas = blocked(
            &mut admin,
            true,
            Box::new(move || w.compare_and_swap("k", Some(b"2"), Some(b"3"))),
        );
        assert!(cas.unwrap());
        assert_eq!(direct.get("k").unwrap().as_deref(), Some(&b"3"[..]));
        assert_eq!(row_version(&schema, "k"), 3);

        // Never released: the server gives up at lock_timeout, and the caller,
        // who waited for that, is told the write failed, which it did.
        let w = Arc::clone(&s);
        let started = Instant::now();
        let put = blocked(
            &mut admin,
            false,
            Box::new(move || w.put("k", b"4").map(|()| true)),
        );
        let took = started.elapsed();
        let msg = unavailable_msg(put);
        // Whichever of lock_timeout and statement_timeout (equal) fires.
        assert!(msg.contains("55P03") || msg.contains("57014"), "{msg}");
        let statement_timeout = Duration::from_millis(u64::from(STATEMENT_TIMEOUT_MS));
        assert!(took >= statement_timeout, "{took:?}");
        assert!(
            took < statement_timeout + Duration::from_secs(3),
            "{took:?}"
        );
        assert_eq!(direct.get("k").unwrap().as_deref(), Some(&b"3"[..]));
        assert_eq!(row_version(&schema, "k"), 3);
    }

    #[test]
    fn a_write_is_not_retried_after_its_connection_is_lost() {
        let schema = TestSchema::new();
        let proxy = Proxy::start();
        let s = Arc::new(
            PostgresStorage::connect(&PostgresConfig {
                max_parallel: 1,
                ..schema.config_for(&proxy.url())
            })
            .unwrap(),
        );
        let direct = schema.open();
        let changes = direct.subscribe().unwrap();
        s.put("k", b"0").unwrap();
        assert_eq!(
            changes.recv_timeout(Duration::from_secs(2)),
            Ok(Change::Path("k".to_owned()))
        );
        let mut admin = Client::connect(TEST_URL, NoTls).unwrap();
        type Write = fn(&PostgresStorage, &[u8], &[u8]) -> StorageResult<()>;
        let writes: [(&str, Write); 2] = [
            ("put", |s, _, new| s.put("k", new)),
            ("compare-and-swap", |s, old, new| {
                s.compare_and_swap("k", Some(old), Some(new)).map(drop)
            }),
        ];
        let mut current = b"0".to_vec();
        for (round, (what, write)) in writes.into_iter().enumerate() {
            let version = row_version(&schema, "k");
            let new = format!("{}", round + 1).into_bytes();
            let tx = lock_row(&mut admin, &schema, "k");
            let writer = {
                let (s, old, new) = (Arc::clone(&s), current.clone(), new.clone());
                thread::spawn(move || write(&s, &old, &new))
            };
            wait_until("the write waits for the lock", || {
                lock_waiters(&schema) == 1
            });
            // Lost mid-statement, the server still reachable: a retry would
            // be waiting for the lock by now too.
            proxy.sever();
            thread::sleep(Duration::from_millis(300));
            assert!(lock_waiters(&schema) <= 1, "{what}: retried");
            let msg = unavailable_msg(writer.join().unwrap());
            assert!(msg.contains("may have been applied"), "{what}: {msg}");
            tx.commit().unwrap();
            // The server may still commit the first (and only) attempt.
            thread::sleep(Duration::from_millis(300));
            let applied = row_version(&schema, "k") - version;
            assert!(
                (0..=1).contains(&applied),
                "{what}: applied {applied} times"
            );
            if applied == 1 {
                current = new;
                assert_eq!(
                    changes.recv_timeout(Duration::from_secs(2)),
                    Ok(Change::Path("k".to_owned()))
                );
            }
            assert_eq!(direct.get("k").unwrap(), Some(current.clone()), "{what}");
            assert_eq!(
                paths_seen(&changes, Duration::from_millis(300)),
                vec![],
                "{what}"
            );
        }
        // Usable again, on a new connection.
        s.put("after", b"x").unwrap();
    }

    #[test]
    fn a_write_on_a_connection_the_server_closed_meanwhile_succeeds() {
        // Found closed before anything is sent, so it is replaced: a write,
        // which is never retried once sent, is not lost to a session that
        // the server ended (restart, pg_terminate_backend) since its last use.
        let schema = TestSchema::new();
        let app = format!("w{}", &schema.name[14..]);
        let s = PostgresStorage::connect(&PostgresConfig {
            max_parallel: 1,
            ..schema.config_for(&format!("{TEST_URL} application_name={app}"))
        })
        .unwrap();
        for round in 0..3 {
            s.put("k", format!("{round}").as_bytes()).unwrap();
            let killed = schema.admin_query_i64(format!(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
                 WHERE application_name = '{app}'"
            ));
            assert_eq!(killed, 1);
            wait_until("the session is gone", || {
                schema.admin_query_i64(format!(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = '{app}'"
                )) == 0
            });
            // Idle for less than IDLE_CHECK_AFTER (a read would not check
            // it), more than WRITE_CHECK_AFTER.
            thread::sleep(WRITE_CHECK_AFTER + Duration::from_millis(50));
            s.put("k", format!("{round}b").as_bytes()).unwrap();
            assert_eq!(s.get("k").unwrap(), Some(format!("{round}b").into_bytes()));
        }
    }

    #[test]
    fn forged_notifications_are_dropped() {
        let schema = TestSchema::new();
        let a = schema.open();
        let b = schema.open();
        let changes = a.subscribe().unwrap();
        let other = "0123456789abcdef0123456789abcdef";
        let forged = [
            String::new(),
            "nothex some/path".to_owned(),
            format!("{} p", &other[..31]),
            format!("{} p", other.to_uppercase()),
            format!("{other}0 p"),
            format!("g{} p", &other[1..]),
            format!("{other} "),
            format!("{other}\tp"),
            format!(" {other} p"),
            format!("{other} a\nb"),
            format!("{other} a\u{1b}[2J"),
            format!("{other} a\u{7f}"),
            format!("{other} a\u{85}"),
            format!("{other} {}", "x".repeat(MAX_NOTIFY_PATH + 1)),
            format!("{other} {}", "x".repeat(7900)),
        ];
        let mut admin = Client::connect(TEST_URL, NoTls).unwrap();
        admin
            .batch_execute(&format!(
                "NOTIFY \"{}\", 'not from transitd'",
                a.settings.channel
            ))
            .unwrap();
        for payload in &forged {
            admin
                .execute("SELECT pg_notify($1, $2)", &[&a.settings.channel, payload])
                .unwrap();
        }
        // The shape transitd sends for a path too long for a payload.
        admin
            .execute("SELECT pg_notify($1, $2)", &[&a.settings.channel, &other])
            .unwrap();
        b.put("good", b"1").unwrap();
        let seen: Vec<String> = paths_seen(&changes, Duration::from_millis(500))
            .iter()
            .map(|c| format!("{c:?}").chars().take(40).collect())
            .collect();
        assert_eq!(seen, ["Resync", "Path(\"good\")"]);
        assert_eq!(
            a.feed.rejected.load(Ordering::Relaxed),
            forged.len() as u64 + 1
        );
    }

    #[test]
    fn a_subscriber_that_does_not_read_gets_a_resync() {
        let schema = TestSchema::new();
        let a = schema.open();
        let b = schema.open();
        let changes = a.subscribe().unwrap();
        let flood = SUBSCRIBER_QUEUE + 1000;
        let mut admin = Client::connect(TEST_URL, NoTls).unwrap();
        admin
            .execute(
                "SELECT pg_notify($1, $2::text || g::text) FROM generate_series(1, $3::int) g",
                &[
                    &a.settings.channel,
                    &"0123456789abcdef0123456789abcdef flood/",
                    &i32::try_from(flood).unwrap(),
                ],
            )
            .unwrap();
        wait_until("the subscriber's queue overflows", || {
            lock(&a.feed.subscribers).iter().all(|s| s.missed)
        });
        // Let the feed go through the rest of the flood.
        thread::sleep(Duration::from_millis(500));
        let mut queued = 0;
        loop {
            match changes.recv_timeout(Duration::from_secs(2)) {
                Ok(Change::Path(p)) => {
                    assert!(p.starts_with("flood/"), "{p}");
                    queued += 1;
                }
                Ok(Change::Resync) => break,
                Err(e) => panic!("no Resync after {queued} changes: {e:?}"),
            }
        }
        // The queue held its capacity, no more; the rest was dropped.
        assert_eq!(queued, SUBSCRIBER_QUEUE);
        b.put("after", b"1").unwrap();
        let rest = paths_seen(&changes, Duration::from_millis(500));
        assert_eq!(rest.last(), Some(&Change::Path("after".to_owned())));
        assert!(queued + rest.len() < flood, "{}", rest.len());
        assert!(!rest.contains(&Change::Resync));
    }
}
