//! PostgreSQL storage: several transitd nodes sharing one database.
//!
//! [`PostgresStorage`] is the [`Storage`] backend and [`PostgresConfig`] says
//! how to reach the database; the rest is split by what it does:
//!
//! - [`conn_string`]: the connection string, parsed, and shown without its
//!   password.
//! - [`tls`]: the rustls connector that `sslmode` and `sslrootcert` ask for.
//! - [`migrate`]: the tables, created and brought up to date by `connect`.
//! - [`session`]: opening a session, and the statements run on it.
//! - [`pool`]: the worker threads and pooled connections operations run on,
//!   and when an operation is retried.
//! - [`deadline`]: how long a caller waits: a write is either never sent or
//!   waited for.
//! - [`feed`]: other nodes' changes, from `LISTEN`/`NOTIFY`.
//! - [`error`]: driver errors as storage errors.
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
//! in [`deadline`]. That works the same on any thread, needs no
//! nested `block_on`, and bounds how long a caller can be stuck behind a dead
//! network.
//!
//! Limits: a path must be a valid PostgreSQL `text` (no NUL character) and at
//! most about 2,700 bytes (the B-tree index limit); transitd's paths are far
//! shorter. Poolers in transaction mode (PgBouncer) are not supported: the
//! storage uses prepared statements and `LISTEN`.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use ::postgres::config::SslMode;

use super::{Change, Storage, StorageError, StorageResult, prefix_successor};

mod conn_string;
mod deadline;
mod error;
mod feed;
mod migrate;
mod pool;
mod session;
#[cfg(test)]
pub(crate) mod tests;
mod tls;

pub use self::conn_string::redact_connection_url;
use self::conn_string::{ConnectionString, TlsPolicy, pg_connect_timeout, server_name};
use self::deadline::{
    Effect, Job, KEEPALIVES_IDLE_MS, KEEPALIVES_INTERVAL_MS, KEEPALIVES_RETRIES, OPERATION_TIMEOUT,
    TCP_USER_TIMEOUT_MS,
};
use self::error::{column_err, db_err, describe};
use self::feed::{Feed, FeedState, LogLimiter, NOTIFY_WARN_EVERY};
use self::migrate::migrate;
use self::pool::{Pool, Workers};
use self::session::{Queries, Query, Settings};
use self::tls::{Tls, build_tls};

/// Longest schema name: the notification channel `transitd_<schema>` must fit
/// in PostgreSQL's 63-byte identifiers.
const MAX_SCHEMA_LEN: usize = 63 - CHANNEL_PREFIX.len();
const CHANNEL_PREFIX: &str = "transitd_";

/// Defaults of [`PostgresConfig`].
pub const DEFAULT_MAX_PARALLEL: usize = 8;
pub const DEFAULT_SCHEMA: &str = "public";
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest accepted `max_parallel`.
pub const MAX_MAX_PARALLEL: usize = 1024;

/// How to reach the database.
#[derive(Clone, PartialEq, Eq)]
pub struct PostgresConfig {
    /// A libpq connection string (URL or key/value); see the module
    /// documentation of [`tls`] for the TLS settings.
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
