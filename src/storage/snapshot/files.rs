//! File steps shared by save and restore: private temporary files that
//! vanish unless kept, durable renames, and the check that a file is a
//! transitd SQLite store this binary can read.

use std::fs::{File, OpenOptions};
#[cfg(unix)]
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};

use crate::storage::sqlite::{SCHEMA_VERSION, expected_schema, schema_objects, sync_dir};

/// A file of ours, removed when dropped unless [`TempFile::keep`] was called.
#[derive(Debug)]
pub struct TempFile {
    path: PathBuf,
    kept: bool,
}

impl TempFile {
    /// A new empty file, mode 0600, named after `near` (same directory, so
    /// that a rename onto `near` is atomic): `<dir>/.<name>.<what>-<random>`.
    pub fn beside(near: &Path, what: &str) -> Result<(Self, File), String> {
        let name = near
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let path = parent(near).join(format!(".{name}.{what}-{}", uuid::Uuid::new_v4().simple()));
        let mut opts = OpenOptions::new();
        opts.read(true).write(true).create_new(true);
        #[cfg(unix)]
        opts.mode(0o600);
        let file = opts
            .open(&path)
            .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
        Ok((Self { path, kept: false }, file))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Renamed onto `target`, durably (the directory is synced).
    pub fn rename_onto(mut self, target: &Path) -> Result<(), String> {
        std::fs::rename(&self.path, target).map_err(|e| {
            format!(
                "cannot rename {} to {}: {e}",
                self.path.display(),
                target.display()
            )
        })?;
        self.kept = true;
        sync_parent(target)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.kept {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

pub fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

pub fn sync_parent(path: &Path) -> Result<(), String> {
    sync_dir(parent(path)).map_err(|e| e.to_string())
}

/// `<path><suffix>`: SQLite's companion files (`-wal`, `-shm`).
pub fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Open an existing database file without creating it.
pub fn open_existing(path: &Path, flags: OpenFlags) -> Result<Connection, String> {
    let conn = Connection::open_with_flags(path, flags | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(conn)
}

/// Refuse a file that is not a sound transitd store this binary reads:
/// damaged pages, no `entries` table, a schema newer than ours.
pub fn check_store(conn: &Connection, shown: &Path) -> Result<(), String> {
    let fail = |e: rusqlite::Error| format!("{} is not a transitd store: {e}", shown.display());
    let integrity: String = conn
        .query_row("PRAGMA integrity_check(1)", (), |r| r.get(0))
        .map_err(fail)?;
    if integrity != "ok" {
        return Err(format!(
            "{} is damaged (SQLite integrity check: {integrity})",
            shown.display()
        ));
    }
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(fail)?;
    let has_entries: bool = conn
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'entries')",
            (),
            |r| r.get(0),
        )
        .map_err(fail)?;
    if !has_entries || version < 1 {
        return Err(format!("{} is not a transitd store", shown.display()));
    }
    if version > SCHEMA_VERSION {
        return Err(format!(
            "{} has schema version {version}, newer than this transitd reads ({SCHEMA_VERSION})",
            shown.display()
        ));
    }
    if schema_objects(conn).map_err(fail)? != expected_schema(version).map_err(fail)? {
        return Err(format!(
            "{} holds schema objects (tables, triggers, views or indexes) that transitd does \
             not make; refused, since they would run inside the server's writes",
            shown.display()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::sqlite::SqliteStorage;

    /// A store as transitd makes it passes; the same store with any object
    /// of someone else's (a trigger that would rewrite the seal config under
    /// a rekey, a view, a table) is refused.
    #[test]
    fn only_the_schema_transitd_makes_is_accepted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        drop(SqliteStorage::open(&path).unwrap());
        let conn = open_existing(&path, OpenFlags::SQLITE_OPEN_READ_WRITE).unwrap();
        check_store(&conn, &path).unwrap();
        for extra in [
            "CREATE TABLE keep (v BLOB)",
            "CREATE TRIGGER pin AFTER UPDATE ON entries BEGIN SELECT 1; END",
            "CREATE VIEW v AS SELECT path FROM entries",
            "CREATE INDEX i ON entries (value)",
        ] {
            conn.execute_batch(&format!("SAVEPOINT s; {extra};"))
                .unwrap();
            let refused = check_store(&conn, &path).unwrap_err();
            assert!(refused.contains("schema objects"), "{extra}: {refused}");
            conn.execute_batch("ROLLBACK TO s; RELEASE s;").unwrap();
        }
        check_store(&conn, &path).unwrap();
    }
}
