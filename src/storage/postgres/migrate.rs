//! The schema: transitd's tables, created when missing and brought up to
//! date when the storage connects.
//!
//! Two tables in one schema (`public` unless configured):
//! `transitd_entries(path, value, version)` holds the seal barrier's
//! ciphertexts, and `transitd_schema_version` the version of that layout.
//! [`PostgresStorage::connect`](super::PostgresStorage::connect) creates the schema and tables when missing and
//! brings an older layout up to date, in one transaction serialised by
//! `pg_advisory_xact_lock`, so that nodes starting together neither race nor
//! apply a step twice. A database written by a newer transitd is refused
//! ([`StorageError::Corrupt`]) rather than misread.

use ::postgres::Client;

use super::StorageError;
use super::StorageResult;
use super::error::{column_err, db_err};
use super::session::Settings;

/// The advisory lock class of migrations (`'trns'`); the second key is the
/// hash of the schema name.
const ADVISORY_LOCK_CLASS: i32 = 0x7472_6e73;

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
pub(super) const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Bring the schema up to date, in one transaction under an advisory lock.
pub(super) fn migrate(client: &mut Client, s: &Settings) -> StorageResult<()> {
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
