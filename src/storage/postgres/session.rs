//! One database session: opening it with its settings, and the statements
//! run on it, prepared once per connection.
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

use std::collections::HashMap;
use std::time::Instant;

use ::postgres::{Client, NoTls, Statement};

use super::deadline::STATEMENT_TIMEOUT_MS;
use super::error::{db_err, describe};
use super::feed::notifiable_path;
use super::tls::Tls;
use super::{StorageError, StorageResult};

/// Everything needed to open a connection and run the statements, shared by
/// the workers and the feed.
pub(super) struct Settings {
    pub(super) pg: ::postgres::Config,
    pub(super) tls: Tls,
    /// `host:port/dbname`, for messages.
    pub(super) server: String,
    pub(super) schema: String,
    /// `"schema"`, for SQL text.
    pub(super) quoted_schema: String,
    pub(super) channel: String,
    pub(super) node_id: String,
    /// To scrub from messages, in case a driver message ever quoted it.
    pub(super) password: Option<String>,
    pub(super) queries: Queries,
}

impl Settings {
    /// Open and set up one session.
    pub(super) fn open(&self) -> StorageResult<Client> {
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
    pub(super) fn payload(&self, path: &str) -> String {
        if notifiable_path(path) {
            format!("{} {path}", self.node_id)
        } else {
            self.node_id.clone()
        }
    }

    /// Remove the password from a message, should it ever appear in one.
    pub(super) fn scrub(&self, message: String) -> String {
        match &self.password {
            Some(pw) if pw.len() >= 3 && message.contains(pw.as_str()) => {
                message.replace(pw.as_str(), "<redacted>")
            }
            _ => message,
        }
    }

    pub(super) fn fail(&self, what: &str, e: StorageError) -> StorageError {
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
pub(super) enum Query {
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

pub(super) struct Queries {
    texts: HashMap<Query, String>,
}

impl Queries {
    pub(super) fn new(quoted_schema: &str) -> Self {
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
pub(super) struct Conn {
    pub(super) client: Client,
    statements: HashMap<Query, Statement>,
    pub(super) last_used: Instant,
}

impl Conn {
    pub(super) fn new(client: Client) -> Self {
        Self {
            client,
            statements: HashMap::new(),
            last_used: Instant::now(),
        }
    }

    pub(super) fn statement(&mut self, q: Query, settings: &Settings) -> StorageResult<Statement> {
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
