//! `snapshot restore`: put a snapshot in place of a stopped node's database.
//!
//! Order, each step before anything that costs more or changes more:
//! 1. the snapshot is read whole and checked (header, length, SHA-256);
//!    a bad one is refused before anything is created or locked;
//! 2. the exclusive lock (`sqlite_lock.rs`): refused while a server or a
//!    snapshot save has the database open; a killed restore's copy, if any,
//!    is removed;
//! 3. the content is copied to a temporary file beside the database (checked
//!    again while copying: the snapshot file may have changed), synced, and
//!    checked by SQLite (integrity, table, schema version);
//! 4. the current database's WAL is folded into it (a WAL left beside the
//!    new file would be replayed onto it), then the current file is kept
//!    aside by a hard link, so the database path never goes missing;
//! 5. one rename puts the new file in place, and the directory is synced.
//!
//! A `kill -9` anywhere leaves the database path holding the old database or
//! the new one, whole. The one exception is a current database SQLite cannot
//! open (so its WAL cannot be folded): its WAL is kept aside and removed
//! before the rename, and a crash between those two steps leaves the damaged
//! file without its WAL. Such a database was unusable already.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use rusqlite::OpenFlags;

use super::files::{TempFile, check_store, open_existing, parent, sync_parent, with_suffix};
use super::format::{Header, read_verified};
use crate::storage::sqlite_lock::DatabaseLock;

/// What the temporary copy of the incoming database is called ([`TempFile::beside`]).
const INCOMING: &str = "restore";

/// What a restore did.
#[derive(Debug)]
pub struct Restored {
    pub header: Header,
    /// Where the database that was replaced was kept (with its `-wal` when
    /// that could not be folded in); `None` when there was none or it was
    /// discarded.
    pub kept_aside: Option<PathBuf>,
}

/// Replace the database at `db` with the snapshot at `snapshot`; the old
/// database is kept aside unless `keep_old` is false.
pub fn restore(snapshot: &Path, db: &Path, keep_old: bool) -> Result<Restored, String> {
    let open_snapshot =
        || File::open(snapshot).map_err(|e| format!("cannot open {}: {e}", snapshot.display()));
    let checked = read_verified(&mut io::BufReader::new(open_snapshot()?), &mut io::sink())
        .map_err(|e| format!("{}: {e}", snapshot.display()))?;
    if !parent(db).is_dir() {
        return Err(format!("directory {} does not exist", parent(db).display()));
    }
    // The rename would replace the link, not the database it points at: the
    // server would then open the restored file or the old one depending on
    // how its configuration names it.
    if std::fs::symlink_metadata(db).is_ok_and(|m| m.file_type().is_symlink()) {
        return Err(format!(
            "{} is a symbolic link; name the database file itself in the configuration",
            db.display()
        ));
    }
    let _restoring = DatabaseLock::exclusive(db)?;
    remove_leftovers(db);

    let (incoming, mut file) = TempFile::beside(db, INCOMING)?;
    let header = read_verified(&mut io::BufReader::new(open_snapshot()?), &mut file)
        .map_err(|e| format!("{}: {e}", snapshot.display()))?;
    if header != checked {
        return Err(format!(
            "{} changed while being restored",
            snapshot.display()
        ));
    }
    file.flush()
        .and_then(|()| file.sync_all())
        .map_err(|e| format!("{}: {e}", incoming.path().display()))?;
    drop(file);
    {
        let conn = open_existing(incoming.path(), OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        check_store(&conn, incoming.path())
            .map_err(|e| format!("{}: the snapshot's content: {e}", snapshot.display()))?;
    }

    let wal = with_suffix(db, "-wal");
    let db_exists = db.exists();
    if db_exists && let Err(e) = fold_wal(db) {
        tracing::warn!(error = %e, "the current database's WAL could not be folded in; keeping it aside");
    }
    let wal_left = std::fs::metadata(&wal).is_ok_and(|m| m.len() > 0);
    let kept_aside = if db_exists || wal_left {
        let aside = aside_name(db)?;
        if db_exists {
            std::fs::hard_link(db, &aside).map_err(|e| {
                format!(
                    "cannot keep {} aside as {}: {e}",
                    db.display(),
                    aside.display()
                )
            })?;
        }
        if wal_left {
            let aside_wal = with_suffix(&aside, "-wal");
            std::fs::hard_link(&wal, &aside_wal).map_err(|e| {
                format!(
                    "cannot keep {} aside as {}: {e}",
                    wal.display(),
                    aside_wal.display()
                )
            })?;
        }
        sync_parent(db)?;
        Some(aside)
    } else {
        None
    };
    for companion in [&wal, &with_suffix(db, "-shm")] {
        match std::fs::remove_file(companion) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("cannot remove {}: {e}", companion.display())),
        }
    }
    incoming.rename_onto(db)?;

    let kept_aside = match kept_aside {
        Some(aside) if !keep_old => {
            for path in [with_suffix(&aside, "-wal"), aside.clone()] {
                let _ = std::fs::remove_file(path);
            }
            sync_parent(db)?;
            None
        }
        other => other,
    };
    Ok(Restored { header, kept_aside })
}

/// Remove the temporary copies of restores that were killed: under the
/// exclusive lock, no other restore is running.
fn remove_leftovers(db: &Path) {
    let Some(name) = db.file_name() else { return };
    let prefix = format!(".{}.{INCOMING}-", name.to_string_lossy());
    let Ok(dir) = std::fs::read_dir(parent(db)) else {
        return;
    };
    for entry in dir.flatten() {
        if entry.file_name().to_string_lossy().starts_with(&prefix) {
            tracing::info!(path = %entry.path().display(), "removing a killed restore's copy");
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Checkpoint every committed WAL frame into the database file and truncate
/// the WAL; closing the last connection then removes it.
fn fold_wal(db: &Path) -> Result<(), String> {
    let conn = open_existing(db, OpenFlags::SQLITE_OPEN_READ_WRITE)?;
    let busy: i64 = conn
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", (), |r| r.get(0))
        .map_err(|e| format!("checkpoint {}: {e}", db.display()))?;
    if busy != 0 {
        return Err(format!("checkpoint {}: busy", db.display()));
    }
    conn.close()
        .map_err(|(_, e)| format!("close {}: {e}", db.display()))
}

/// `<db>.pre-restore-<unix seconds>[-n]`, a name not yet taken.
fn aside_name(db: &Path) -> Result<PathBuf, String> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    (0..1000)
        .map(|n| match n {
            0 => with_suffix(db, &format!(".pre-restore-{now}")),
            n => with_suffix(db, &format!(".pre-restore-{now}-{n}")),
        })
        .find(|p| !p.exists() && !with_suffix(p, "-wal").exists())
        .ok_or_else(|| format!("no free name to keep {} aside", db.display()))
}
