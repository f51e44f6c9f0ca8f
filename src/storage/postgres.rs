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
//! caller waits for the answer on a channel, at most [`OPERATION_TIMEOUT`].
//! That works the same on any thread, needs no nested `block_on`, and bounds
//! how long a caller can be stuck behind a dead network.
//!
//! Each worker borrows a connection from a shared pool of idle ones (the most
//! recently used first, checked with a round trip if it sat idle for more than
//! [`IDLE_CHECK_AFTER`]) or opens a new one, so there are never more than
//! `max_parallel` connections for operations (plus one for the change feed
//! once someone subscribes). A connection that failed is dropped, and the next
//! operation opens a new one: when the database is down every call fails with
//! `Unavailable("postgresql: ...")` as soon as the connection attempt fails,
//! and the storage works again as soon as the database is back. Every session
//! runs with a `statement_timeout` and a `lock_timeout` below the caller's
//! deadline, so a stuck query is cancelled by the server too.
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
//! sends [`Change::Resync`], since changes made in between were not seen.
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
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use ::postgres::config::{Host, SslMode};
use ::postgres::error::SqlState;
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

/// How long a caller waits for one operation (queueing, connecting and the
/// statement) before getting `Unavailable`.
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(5);

/// The server-side `statement_timeout` and `lock_timeout`, in milliseconds:
/// below [`OPERATION_TIMEOUT`], so the server gives up first.
const STATEMENT_TIMEOUT_MS: u32 = 4000;

/// A pooled connection idle for longer than this is checked with a round trip
/// before use: the server may have restarted or closed it meanwhile.
pub const IDLE_CHECK_AFTER: Duration = Duration::from_secs(1);

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

/// Longest path sent in a notification payload (PostgreSQL's limit is 8000
/// bytes); a longer one is announced as "something changed" (a resync).
const MAX_NOTIFY_PATH: usize = 7900;

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

    /// The payload of the notification for a change of `path`.
    fn payload(&self, path: &str) -> String {
        if path.len() > MAX_NOTIFY_PATH {
            self.node_id.clone()
        } else {
            format!("{} {path}", self.node_id)
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

/// A unit of work for a worker; it sends its own answer. Dropped unrun if its
/// caller has already given up.
struct Job {
    deadline: Instant,
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
            if Instant::now() < job.deadline {
                // A panic must not cost the pool a worker; the job's answer
                // channel is dropped, which its caller reports.
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job.work));
            }
            lock(&self.workers).idle += 1;
        }
    }

    /// Run `f` on a connection: an idle one or a new one. With `retry`, for
    /// idempotent work, a failure on a reused connection that turns out to be
    /// closed (the server restarted, or closed it, since its last use) is
    /// retried once on a new connection.
    fn with_conn<T>(
        &self,
        retry: bool,
        mut f: impl FnMut(&mut Conn, &Settings) -> StorageResult<T>,
    ) -> StorageResult<T> {
        let (mut conn, reused) = self.checkout()?;
        let mut result = f(&mut conn, &self.settings);
        if result.is_err() && retry && reused && conn.client.is_closed() {
            tracing::debug!(server = %self.settings.server, "retrying on a new postgresql connection");
            conn = Conn::new(self.settings.open()?);
            result = f(&mut conn, &self.settings);
        }
        if !conn.client.is_closed() {
            conn.last_used = Instant::now();
            lock(&self.idle).push(conn);
        }
        result
    }

    /// A connection, and whether it was reused.
    fn checkout(&self) -> StorageResult<(Conn, bool)> {
        loop {
            let candidate = lock(&self.idle).pop();
            let Some(mut conn) = candidate else {
                return Ok((Conn::new(self.settings.open()?), false));
            };
            if conn.client.is_closed() {
                continue;
            }
            if conn.last_used.elapsed() > IDLE_CHECK_AFTER
                && conn.client.is_valid(VALIDATE_TIMEOUT).is_err()
            {
                tracing::debug!(server = %self.settings.server, "dropping a dead postgresql connection");
                continue;
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
        if !has("tcp_user_timeout") {
            pg.tcp_user_timeout(Duration::from_secs(10));
        }
        if !has("keepalives_idle") {
            pg.keepalives_idle(Duration::from_secs(15));
        }
        if !has("keepalives_interval") {
            pg.keepalives_interval(Duration::from_secs(5));
        }
        if !has("keepalives_retries") {
            pg.keepalives_retries(3);
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
        });
        let storage = Self {
            settings,
            pool,
            jobs,
            feed,
        };
        let timeout = storage.feed.connect_timeout + OPERATION_TIMEOUT;
        // Idempotent: one transaction, which re-reads the version.
        storage.run("migrate schema".to_owned(), timeout, true, |conn, s| {
            migrate(&mut conn.client, s)
        })?;
        tracing::info!(
            server = %storage.settings.server,
            schema = %storage.settings.schema,
            node_id = %storage.settings.node_id,
            "opened postgresql storage"
        );
        Ok(storage)
    }

    /// Send `work` to a worker and wait for its answer, at most `timeout`.
    /// `idempotent`: running it twice has the effect of running it once, so
    /// it may be retried after a connection failure.
    fn run<T: Send + 'static>(
        &self,
        what: String,
        timeout: Duration,
        idempotent: bool,
        work: impl FnMut(&mut Conn, &Settings) -> StorageResult<T> + Send + 'static,
    ) -> StorageResult<T> {
        let (tx, rx) = mpsc::sync_channel(1);
        let pool = Arc::clone(&self.pool);
        let job = Job {
            deadline: Instant::now() + timeout,
            work: Box::new(move || {
                let _ = tx.send(pool.with_conn(idempotent, work));
            }),
        };
        // Counted before it can be picked up, so that the count never lags.
        self.pool.job_queued();
        if self.jobs.send(job).is_err() {
            return Err(self.settings.fail(
                &what,
                StorageError::Unavailable("the storage is shut down".to_owned()),
            ));
        }
        match rx.recv_timeout(timeout) {
            Ok(result) => result.map_err(|e| self.settings.fail(&what, e)),
            // Disconnected: the job was dropped unrun (its deadline passed in
            // the queue) or panicked.
            Err(mpsc::RecvTimeoutError::Timeout | mpsc::RecvTimeoutError::Disconnected) => {
                Err(self.settings.fail(
                    &what,
                    StorageError::Unavailable(format!(
                        "no answer from {} within {} ms",
                        self.settings.server,
                        timeout.as_millis()
                    )),
                ))
            }
        }
    }

    /// Run a write that returns one row per changed entry (each row being its
    /// notification); true if an entry changed. Only `put` and `delete` are
    /// idempotent: a compare-and-swap retried after its first attempt
    /// committed unseen would report a spurious failure.
    fn write(
        &self,
        what: String,
        q: Query,
        path: String,
        values: Vec<Vec<u8>>,
    ) -> StorageResult<bool> {
        let idempotent = matches!(q, Query::Put | Query::Delete);
        self.run(what, OPERATION_TIMEOUT, idempotent, move |conn, s| {
            let st = conn.statement(q, s)?;
            let payload = s.payload(&path);
            let mut params: Vec<&(dyn ::postgres::types::ToSql + Sync)> = vec![&path];
            for v in &values {
                params.push(v);
            }
            params.push(&s.channel);
            params.push(&payload);
            let changed = conn.client.execute(&st, &params).map_err(db_err)?;
            Ok(changed > 0)
        })
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
            OPERATION_TIMEOUT,
            true,
            move |conn, s| {
                let st = conn.statement(Query::Get, s)?;
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
            OPERATION_TIMEOUT,
            true,
            move |conn, s| {
                // A range scan on the primary key, not LIKE (whose `%` and `_`
                // are wildcards); the column's "C" collation compares bytewise.
                let rows = match prefix_successor(&owned) {
                    Some(end) => {
                        let st = conn.statement(Query::ListRange, s)?;
                        conn.client.query(&st, &[&owned, &end])
                    }
                    None => {
                        let st = conn.statement(Query::ListFrom, s)?;
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
            (None, None) => self.run(what, OPERATION_TIMEOUT, true, move |conn, s| {
                let st = conn.statement(Query::CasAbsent, s)?;
                let row = conn.client.query_one(&st, &[&owned]).map_err(db_err)?;
                row.try_get::<_, bool>(0).map_err(column_err)
            }),
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
    subscribers: Mutex<Vec<mpsc::Sender<Change>>>,
    state: Mutex<FeedState>,
    ready: Condvar,
    shutdown: AtomicBool,
}

#[derive(Default)]
struct FeedState {
    started: bool,
    /// The first connection attempt is over (listening, or failed).
    first_attempt_done: bool,
}

impl Feed {
    fn subscribe(feed: &Arc<Self>) -> mpsc::Receiver<Change> {
        let (tx, rx) = mpsc::channel();
        lock(&feed.subscribers).push(tx);
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

    fn broadcast(&self, change: &Change) {
        lock(&self.subscribers).retain(|s| s.send(change.clone()).is_ok());
    }

    /// The feed thread: (re)connect forever, until the storage is dropped.
    fn listen(&self) {
        let mut backoff = LISTEN_BACKOFF_MIN;
        // Whether changes may have been missed: an attempt failed or a
        // connection was lost. Not on the first, successful connection.
        let mut interrupted = false;
        let mut failures = 0u32;
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
                    let why = self.pump(&mut client);
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
    fn pump(&self, client: &mut Client) -> String {
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
                    let (node, path) = match n.payload().split_once(' ') {
                        Some((node, path)) => (node, Some(path)),
                        None => (n.payload(), None),
                    };
                    if node == self.settings.node_id {
                        continue;
                    }
                    match path {
                        Some(path) => self.broadcast(&Change::Path(path.to_owned())),
                        // A path too long for a payload.
                        None => self.broadcast(&Change::Resync),
                    }
                }
                Ok(None) => {
                    if client.is_closed() {
                        return "connection closed".to_owned();
                    }
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

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    /// Whether this storage's sessions use TLS, asked of the server.
    fn session_uses_tls(s: &PostgresStorage) -> bool {
        s.run("ssl".to_owned(), OPERATION_TIMEOUT, false, |conn, _| {
            Ok(conn
                .client
                .query_one(
                    "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                    &[],
                )
                .unwrap()
                .get::<_, bool>(0))
        })
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
        assert_eq!(
            changes.recv_timeout(Duration::from_secs(5)),
            Ok(Change::Resync)
        );
        direct.put("b", b"1").unwrap();
        assert_eq!(
            changes.recv_timeout(Duration::from_secs(1)),
            Ok(Change::Path("b".to_owned()))
        );
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
    }

    impl Proxy {
        fn start() -> Self {
            let mut proxy = Self {
                port: 0,
                up: Arc::new(AtomicBool::new(false)),
                conns: Arc::new(Mutex::new(Vec::new())),
                acceptor: None,
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
            self.acceptor = Some(thread::spawn(move || {
                while up.load(Ordering::SeqCst) {
                    match listener.accept() {
                        Ok((client, _)) => {
                            client.set_nonblocking(false).unwrap();
                            let Ok(server) = TcpStream::connect("127.0.0.1:5432") else {
                                continue;
                            };
                            let mut all = lock(&conns);
                            all.push(client.try_clone().unwrap());
                            all.push(server.try_clone().unwrap());
                            for (mut from, mut to) in [
                                (client.try_clone().unwrap(), server.try_clone().unwrap()),
                                (server, client),
                            ] {
                                thread::spawn(move || {
                                    let _ = std::io::copy(&mut from, &mut to);
                                    let _ = to.shutdown(Shutdown::Both);
                                });
                            }
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
            for c in lock(&self.conns).drain(..) {
                let _ = c.shutdown(Shutdown::Both);
            }
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
        assert_eq!(
            changes.recv_timeout(Duration::from_secs(5)),
            Ok(Change::Resync)
        );
        // Works again without a restart.
        assert_eq!(s.get("before").unwrap().as_deref(), Some(&b"1"[..]));
        s.put("after", b"2").unwrap();
        assert_eq!(direct.get("after").unwrap().as_deref(), Some(&b"2"[..]));
        direct.put("y", b"1").unwrap();
        assert_eq!(
            changes.recv_timeout(Duration::from_secs(1)),
            Ok(Change::Path("y".to_owned()))
        );
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
        assert_eq!(
            changes.recv_timeout(Duration::from_secs(5)),
            Ok(Change::Resync)
        );
        direct.put("z", b"1").unwrap();
        assert_eq!(
            changes.recv_timeout(Duration::from_secs(1)),
            Ok(Change::Path("z".to_owned()))
        );
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
        assert_eq!(s.settings.payload("a b"), format!("{node} a b"));
        assert_eq!(s.settings.payload(&"x".repeat(MAX_NOTIFY_PATH + 1)), *node);
        assert_eq!(s.settings.channel, format!("transitd_{}", schema.name));
    }
}
