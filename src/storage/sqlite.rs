//! Embedded SQLite storage: the default for a real server.
//!
//! One table, `entries(path, value)`, holding the seal barrier's ciphertexts.
//!
//! Durability: the [`Storage`] contract says a write that returned `Ok`
//! survives a crash of the process *and of the machine*. The database runs in
//! WAL mode (a commit is one sequential append to the `-wal` file, readers
//! never block the writer, and a torn write is detected by the WAL frame
//! checksums and rolled back on recovery) with `synchronous=FULL`: the WAL is
//! fsynced at every commit, before `put` returns. With the WAL default
//! `synchronous=NORMAL` the WAL is only synced at checkpoints, so a commit
//! survives `kill -9` but may be lost on power loss, which would break the
//! contract (a key rotation acknowledged to a client, then forgotten, loses
//! every ciphertext made with the new version). Writes are rare (key changes),
//! so the fsync per commit costs nothing that matters.
//!
//! Concurrency: a single connection behind a `Mutex`. The hot path (encrypt,
//! decrypt, sign...) works on keys already in memory and never reads storage;
//! storage is touched at unseal, on key changes and by `list`, so a connection
//! pool would buy nothing and cost reasoning about which connection sees what.
//! `busy_timeout` still covers another process holding the file (a backup tool,
//! the `sqlite3` shell), and compare-and-swap runs in a `BEGIN IMMEDIATE`
//! transaction so it stays atomic even against another connection.
//!
//! The file is created by us with mode 0600 before SQLite opens it; SQLite
//! creates its `-wal` and `-shm` files with the main file's mode.

use std::fmt;
use std::fs::OpenOptions;
use std::io::ErrorKind;
#[cfg(unix)]
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension, TransactionBehavior};

use super::sqlite_lock::DatabaseLock;
use super::{Storage, StorageError, StorageResult, prefix_successor};

/// How long a statement waits for another connection's lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_millis(5000);

/// Schema migrations, in order: step `i` takes `PRAGMA user_version` from `i`
/// to `i + 1`, in its own transaction. Append only; never edit a released step.
const MIGRATIONS: &[&str] = &[
    // 1: the key-value table. WITHOUT ROWID: the path is the clustered key,
    // so a lookup or a prefix range scan is one B-tree walk.
    "CREATE TABLE entries (
        path TEXT PRIMARY KEY NOT NULL,
        value BLOB NOT NULL
    ) WITHOUT ROWID;",
];

/// The schema version this binary writes and understands.
pub(super) const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// One object of a database's schema: type, name, table, SQL.
pub(super) type SchemaObject = (String, String, String, Option<String>);

/// Every object in a database's schema, sorted.
pub(super) fn schema_objects(conn: &Connection) -> rusqlite::Result<Vec<SchemaObject>> {
    let mut stmt = conn.prepare(
        "SELECT type, name, tbl_name, sql FROM sqlite_schema ORDER BY type, name, tbl_name",
    )?;
    let rows = stmt.query_map((), |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
    rows.collect()
}

/// The schema the first `version` migrations make, and nothing else: a
/// database from elsewhere (a snapshot) must match it exactly, since a
/// trigger or a view in it would run inside every write of ours.
pub(super) fn expected_schema(version: i64) -> rusqlite::Result<Vec<SchemaObject>> {
    let conn = Connection::open_in_memory()?;
    let steps = usize::try_from(version).unwrap_or(0);
    for step in MIGRATIONS.iter().take(steps) {
        conn.execute_batch(step)?;
    }
    schema_objects(&conn)
}

pub struct SqliteStorage {
    path: PathBuf,
    conn: Mutex<Connection>,
    /// Held while open, so that a snapshot restore cannot replace the file
    /// under us (`sqlite_lock.rs`).
    _in_use: DatabaseLock,
}

impl fmt::Debug for SqliteStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStorage")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl SqliteStorage {
    /// Open (creating if needed, mode 0600) the database at `path`, set it up
    /// for durable writes and bring its schema up to date. The parent
    /// directory must exist.
    pub fn open(path: &Path) -> StorageResult<Self> {
        let shown = path.display();
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        if !dir.is_dir() {
            return Err(StorageError::Unavailable(format!(
                "cannot open sqlite storage {shown}: directory {} does not exist",
                dir.display()
            )));
        }
        if create_private_file(path)? {
            sync_dir(dir)?;
            tracing::info!(path = %shown, "created sqlite storage file");
        }
        let in_use = DatabaseLock::shared(path)?;

        // No SQLITE_OPEN_CREATE: the file exists (we just made sure), and SQLite
        // must not create it with its default, wider mode. No SQLITE_OPEN_URI:
        // a path is a path. NO_MUTEX: our own Mutex serialises all use.
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let mut conn = Connection::open_with_flags(path, flags)
            .map_err(sql_err(format_args!("open {shown}")))?;
        configure(&conn).map_err(|e| prefix_err(e, &shown))?;
        migrate(&mut conn).map_err(|e| prefix_err(e, &shown))?;
        tracing::debug!(path = %shown, "opened sqlite storage");
        Ok(Self {
            path: path.to_owned(),
            conn: Mutex::new(conn),
            _in_use: in_use,
        })
    }

    fn conn(&self) -> StorageResult<MutexGuard<'_, Connection>> {
        self.conn
            .lock()
            .map_err(|_| StorageError::Unavailable("sqlite storage lock poisoned".to_owned()))
    }
}

impl Storage for SqliteStorage {
    fn kind(&self) -> &'static str {
        "sqlite"
    }

    fn get(&self, path: &str) -> StorageResult<Option<Vec<u8>>> {
        let conn = self.conn()?;
        read_value(&conn, path).map_err(sql_err(format_args!("get {path:?}")))
    }

    fn put(&self, path: &str, value: &[u8]) -> StorageResult<()> {
        let conn = self.conn()?;
        write_value(&conn, path, Some(value)).map_err(sql_err(format_args!("put {path:?}")))
    }

    fn delete(&self, path: &str) -> StorageResult<()> {
        let conn = self.conn()?;
        write_value(&conn, path, None).map_err(sql_err(format_args!("delete {path:?}")))
    }

    fn list(&self, prefix: &str) -> StorageResult<Vec<String>> {
        let conn = self.conn()?;
        // A range scan on the primary key, not LIKE: LIKE treats `%` and `_`
        // as wildcards and is case-insensitive for ASCII. TEXT compares with
        // the BINARY collation (memcmp of the UTF-8), which orders exactly
        // like Rust's `str`, so ORDER BY matches `MemoryStorage`.
        let result = match prefix_successor(prefix) {
            Some(end) => conn
                .prepare_cached(
                    "SELECT path FROM entries WHERE path >= ?1 AND path < ?2 ORDER BY path",
                )
                .and_then(|mut stmt| {
                    stmt.query_map((prefix, end.as_str()), |row| row.get(0))?
                        .collect()
                }),
            // Empty prefix, or one made only of char::MAX: no upper bound.
            None => conn
                .prepare_cached("SELECT path FROM entries WHERE path >= ?1 ORDER BY path")
                .and_then(|mut stmt| stmt.query_map((prefix,), |row| row.get(0))?.collect()),
        };
        result.map_err(sql_err(format_args!("list {prefix:?}")))
    }

    fn compare_and_swap(
        &self,
        path: &str,
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> StorageResult<bool> {
        let mut conn = self.conn()?;
        cas(&mut conn, path, expected, new)
            .map_err(sql_err(format_args!("compare-and-swap {path:?}")))
    }
}

fn cas(
    conn: &mut Connection,
    path: &str,
    expected: Option<&[u8]>,
    new: Option<&[u8]>,
) -> rusqlite::Result<bool> {
    // IMMEDIATE takes the write lock before the read, so no other connection
    // can commit between our comparison and our write.
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    if read_value(&tx, path)?.as_deref() != expected {
        // Dropping `tx` rolls back; nothing was written anyway.
        return Ok(false);
    }
    write_value(&tx, path, new)?;
    tx.commit()?;
    Ok(true)
}

fn read_value(conn: &Connection, path: &str) -> rusqlite::Result<Option<Vec<u8>>> {
    conn.prepare_cached("SELECT value FROM entries WHERE path = ?1")?
        .query_row((path,), |row| row.get(0))
        .optional()
}

/// Store `value` under `path`, or delete `path` if `value` is `None`.
fn write_value(conn: &Connection, path: &str, value: Option<&[u8]>) -> rusqlite::Result<()> {
    match value {
        Some(v) => conn
            .prepare_cached(
                "INSERT INTO entries (path, value) VALUES (?1, ?2)
                 ON CONFLICT (path) DO UPDATE SET value = excluded.value",
            )?
            .execute((path, v)),
        None => conn
            .prepare_cached("DELETE FROM entries WHERE path = ?1")?
            .execute((path,)),
    }
    .map(drop)
}

/// Create `path` with mode 0600 if it does not exist (returns true), or check
/// that the existing one is a regular file (returns false). Creating it
/// ourselves means there is never a moment where it has wider permissions.
fn create_private_file(path: &Path) -> StorageResult<bool> {
    let shown = path.display();
    let mut opts = OpenOptions::new();
    opts.read(true).write(true).create_new(true);
    #[cfg(unix)]
    opts.mode(0o600);
    match opts.open(path) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {
            let meta = std::fs::metadata(path).map_err(|e| {
                StorageError::Unavailable(format!("cannot open sqlite storage {shown}: {e}"))
            })?;
            if !meta.is_file() {
                return Err(StorageError::Unavailable(format!(
                    "cannot open sqlite storage {shown}: not a regular file"
                )));
            }
            #[cfg(unix)]
            {
                let mode = meta.permissions().mode() & 0o777;
                if mode & 0o077 != 0 {
                    tracing::warn!(
                        path = %shown,
                        mode = format_args!("{mode:o}"),
                        "sqlite storage file is accessible to group or others; chmod 600 recommended",
                    );
                }
            }
            Ok(false)
        }
        Err(e) => Err(StorageError::Unavailable(format!(
            "cannot create sqlite storage {shown}: {e}"
        ))),
    }
}

/// Make a newly created file's directory entry durable. SQLite syncs the
/// directory when it creates a journal or WAL file, but not for the main
/// database file, which it assumes someone else created.
pub(super) fn sync_dir(dir: &Path) -> StorageResult<()> {
    #[cfg(unix)]
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| {
            StorageError::Unavailable(format!("cannot sync directory {}: {e}", dir.display()))
        })?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Connection settings. Only `journal_mode` is stored in the file; the others
/// are per connection and must be set at every open.
fn configure(conn: &Connection) -> StorageResult<()> {
    // First, so that switching to WAL (which needs a lock) waits for others.
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(sql_err("set busy_timeout"))?;
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
        .map_err(sql_err("set journal_mode"))?;
    if !mode.eq_ignore_ascii_case("wal") {
        // SQLite answers with the mode it kept when it cannot switch (e.g.
        // `memory` for an in-memory database, or a VFS without shared memory).
        return Err(StorageError::Unavailable(format!(
            "journal_mode=WAL refused, database stays in {mode:?} mode"
        )));
    }
    // FULL: fsync the WAL at every commit, so an acknowledged write survives
    // power loss, not only a process crash (see the module documentation).
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(sql_err("set synchronous"))?;
    // macOS: fsync() does not flush the drive's cache; F_FULLFSYNC does. A
    // no-op elsewhere.
    conn.pragma_update(None, "fullfsync", true)
        .map_err(sql_err("set fullfsync"))?;
    conn.pragma_update(None, "foreign_keys", true)
        .map_err(sql_err("set foreign_keys"))?;
    Ok(())
}

/// Apply the missing migrations, each in its own transaction. The version is
/// read inside the (IMMEDIATE, so write-locked) transaction, so two processes
/// opening the same new file at once cannot both apply a step.
fn migrate(conn: &mut Connection) -> StorageResult<()> {
    loop {
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql_err("begin migration"))?;
        let version: i64 = tx
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .map_err(sql_err("read user_version"))?;
        if version == SCHEMA_VERSION {
            return Ok(());
        }
        let step = usize::try_from(version)
            .ok()
            .and_then(|v| MIGRATIONS.get(v))
            .ok_or_else(|| {
                StorageError::Corrupt(format!(
                    "database schema version {version} is newer than this transitd supports \
                     (schema version {SCHEMA_VERSION}); upgrade transitd or restore a backup"
                ))
            })?;
        let next = version + 1;
        tx.execute_batch(step)
            .map_err(sql_err(format_args!("migrate schema to version {next}")))?;
        // user_version lives in the database header, so it commits (or rolls
        // back) with the step.
        tx.pragma_update(None, "user_version", next)
            .map_err(sql_err("write user_version"))?;
        tx.commit()
            .map_err(sql_err(format_args!("commit schema version {next}")))?;
        tracing::info!(version = next, "sqlite storage schema migrated");
    }
}

/// Map a SQLite error to a storage error, with `context` naming the operation
/// and path (never a value). Damaged files are `Corrupt`, the rest (I/O,
/// locks, full disk...) `Unavailable`.
fn sql_err(context: impl fmt::Display) -> impl FnOnce(rusqlite::Error) -> StorageError {
    move |e| {
        let corrupt = matches!(
            e.sqlite_error_code(),
            Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase)
        ) || matches!(
            e,
            rusqlite::Error::InvalidColumnType(..) | rusqlite::Error::FromSqlConversionFailure(..)
        );
        let msg = format!("sqlite {context}: {e}");
        if corrupt {
            StorageError::Corrupt(msg)
        } else {
            StorageError::Unavailable(msg)
        }
    }
}

/// Add the database path to an error from the set-up steps.
fn prefix_err(e: StorageError, shown: &impl fmt::Display) -> StorageError {
    match e {
        StorageError::Unavailable(m) => StorageError::Unavailable(format!("{shown}: {m}")),
        StorageError::Corrupt(m) => StorageError::Corrupt(format!("{shown}: {m}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open_in(dir: &tempfile::TempDir) -> SqliteStorage {
        SqliteStorage::open(&dir.path().join("transitd.db")).unwrap()
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn put_get_delete() {
        let dir = tempfile::tempdir().unwrap();
        let s = open_in(&dir);
        assert_eq!(s.kind(), "sqlite");
        crate::storage::conformance::put_get_delete(&s);
    }

    #[test]
    fn list_is_a_true_prefix_match() {
        let dir = tempfile::tempdir().unwrap();
        crate::storage::conformance::list_is_a_true_prefix_match(&open_in(&dir));
    }

    #[test]
    fn compare_and_swap() {
        let dir = tempfile::tempdir().unwrap();
        crate::storage::conformance::compare_and_swap(&open_in(&dir));
    }

    #[test]
    fn compare_and_swap_is_atomic_across_connections() {
        // Several connections (as several processes would have) incrementing
        // one counter with CAS loops: no increment may be lost.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("transitd.db");
        SqliteStorage::open(&path).unwrap().put("n", b"0").unwrap();
        let threads: Vec<_> = (0..3)
            .map(|_| {
                let s = SqliteStorage::open(&path).unwrap();
                std::thread::spawn(move || {
                    for _ in 0..10 {
                        loop {
                            let cur = s.get("n").unwrap().unwrap();
                            let n: u32 = std::str::from_utf8(&cur).unwrap().parse().unwrap();
                            let next = (n + 1).to_string();
                            if s.compare_and_swap("n", Some(&cur), Some(next.as_bytes()))
                                .unwrap()
                            {
                                break;
                            }
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let s = SqliteStorage::open(&path).unwrap();
        assert_eq!(s.get("n").unwrap().as_deref(), Some(&b"30"[..]));
    }

    #[test]
    fn persists_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = open_in(&dir);
            s.put("a/1", b"one").unwrap();
            s.put("a/2", b"two").unwrap();
            s.put("gone", b"x").unwrap();
            s.delete("gone").unwrap();
            assert!(s.compare_and_swap("cas", None, Some(b"c")).unwrap());
        }
        let s = open_in(&dir);
        assert_eq!(s.get("a/1").unwrap().as_deref(), Some(&b"one"[..]));
        assert_eq!(s.get("a/2").unwrap().as_deref(), Some(&b"two"[..]));
        assert_eq!(s.get("gone").unwrap(), None);
        assert_eq!(s.get("cas").unwrap().as_deref(), Some(&b"c"[..]));
        assert_eq!(s.list("").unwrap(), strings(&["a/1", "a/2", "cas"]));
    }

    #[test]
    fn pragmas_are_set() {
        let dir = tempfile::tempdir().unwrap();
        let s = open_in(&dir);
        let conn = s.conn.lock().unwrap();
        let journal: String = conn
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .unwrap();
        assert_eq!(journal, "wal");
        // 2 = FULL
        let sync: i64 = conn
            .pragma_query_value(None, "synchronous", |r| r.get(0))
            .unwrap();
        assert_eq!(sync, 2);
        let fk: i64 = conn
            .pragma_query_value(None, "foreign_keys", |r| r.get(0))
            .unwrap();
        assert_eq!(fk, 1);
        let busy: i64 = conn
            .pragma_query_value(None, "busy_timeout", |r| r.get(0))
            .unwrap();
        assert_eq!(busy, 5000);
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
    }

    #[cfg(unix)]
    #[test]
    fn files_are_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("transitd.db");
        let s = SqliteStorage::open(&path).unwrap();
        s.put("a", b"x").unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        // While a connection is open after a write, the WAL and its index
        // exist; SQLite gives them the main file's mode.
        assert_eq!(mode(&dir.path().join("transitd.db-wal")), 0o600);
        assert_eq!(mode(&dir.path().join("transitd.db-shm")), 0o600);
    }

    #[test]
    fn refuses_newer_schema() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("transitd.db");
        drop(SqliteStorage::open(&path).unwrap());
        {
            let conn = Connection::open(&path).unwrap();
            conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
                .unwrap();
        }
        let err = SqliteStorage::open(&path).unwrap_err();
        let StorageError::Corrupt(msg) = err else {
            panic!("expected Corrupt, got {err:?}");
        };
        assert!(
            msg.contains(&format!("version {}", SCHEMA_VERSION + 1)),
            "{msg}"
        );
        assert!(msg.contains(&format!("version {SCHEMA_VERSION}")), "{msg}");
        // Refusing changed nothing.
        let conn = Connection::open(&path).unwrap();
        let v: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(v, SCHEMA_VERSION + 1);
    }

    #[test]
    fn migrates_an_empty_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("transitd.db");
        std::fs::File::create(&path).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
        let s = SqliteStorage::open(&path).unwrap();
        s.put("a", b"x").unwrap();
        assert_eq!(s.get("a").unwrap().as_deref(), Some(&b"x"[..]));
        let conn = s.conn.lock().unwrap();
        let v: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(v, SCHEMA_VERSION);
        let table: String = conn
            .query_row(
                "SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = 'entries'",
                (),
                |r| r.get(0),
            )
            .unwrap();
        assert!(table.contains("WITHOUT ROWID"), "{table}");
    }

    #[test]
    fn refuses_missing_parent_directory() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("no-such-dir").join("transitd.db");
        let err = SqliteStorage::open(&path).unwrap_err();
        let StorageError::Unavailable(msg) = err else {
            panic!("expected Unavailable, got {err:?}");
        };
        assert!(msg.contains("does not exist"), "{msg}");
        assert!(!path.exists());
    }

    #[test]
    fn refuses_a_file_that_is_not_a_database() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("transitd.db");
        std::fs::write(&path, [0x42u8; 4096]).unwrap();
        let err = SqliteStorage::open(&path).unwrap_err();
        assert!(matches!(err, StorageError::Corrupt(_)), "{err:?}");
        assert_eq!(std::fs::read(&path).unwrap(), vec![0x42u8; 4096]);
    }

    #[test]
    fn refuses_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        let err = SqliteStorage::open(dir.path()).unwrap_err();
        assert!(matches!(err, StorageError::Unavailable(_)), "{err:?}");
    }
}
