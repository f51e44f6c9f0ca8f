//! Who is using a SQLite database: every process that opens it as storage
//! holds a shared lock, a snapshot restore holds the exclusive one.
//!
//! SQLite's own locks only last for a transaction, so a server that is idle
//! holds none; replacing the file under it would leave it writing to a
//! deleted inode. This lock lasts as long as the process has the database
//! open, and the kernel drops it when the process dies (even by `kill -9`),
//! so it never goes stale. It is an `flock` on a separate file,
//! `<database>.lock`, which a restore never replaces: a lock on the database
//! file itself would stay on the old inode after the swap.

use std::fs::{File, OpenOptions, TryLockError};
#[cfg(unix)]
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::StorageError;

/// A held lock; released when dropped.
#[derive(Debug)]
pub struct DatabaseLock {
    _file: File,
}

/// The lock file of the database at `db`.
pub fn lock_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

impl DatabaseLock {
    /// Taken by every process that uses the database; many may hold it.
    /// Refused while a restore replaces the database.
    pub fn shared(db: &Path) -> Result<Self, StorageError> {
        let file = open(db).map_err(StorageError::Unavailable)?;
        match file.try_lock_shared() {
            Ok(()) => Ok(Self { _file: file }),
            Err(TryLockError::WouldBlock) => Err(StorageError::Unavailable(format!(
                "{}: a snapshot restore is replacing this database; start after it ends",
                db.display()
            ))),
            Err(TryLockError::Error(e)) => Err(StorageError::Unavailable(format!(
                "cannot lock {}: {e}",
                lock_path(db).display()
            ))),
        }
    }

    /// Taken by a restore: refused while anyone else has the database open.
    pub fn exclusive(db: &Path) -> Result<Self, String> {
        let file = open(db)?;
        match file.try_lock() {
            Ok(()) => Ok(Self { _file: file }),
            Err(TryLockError::WouldBlock) => Err(format!(
                "{} is in use (a running transitd, or a snapshot being saved, holds {}); \
                 stop the server first",
                db.display(),
                lock_path(db).display()
            )),
            Err(TryLockError::Error(e)) => {
                Err(format!("cannot lock {}: {e}", lock_path(db).display()))
            }
        }
    }
}

fn open(db: &Path) -> Result<File, String> {
    let path = lock_path(db);
    let mut opts = OpenOptions::new();
    opts.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    opts.mode(0o600);
    opts.open(&path)
        .map_err(|e| format!("cannot open lock file {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_holders_keep_out_a_restore_and_a_restore_keeps_them_out() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("transitd.db");
        let a = DatabaseLock::shared(&db).unwrap();
        let b = DatabaseLock::shared(&db).unwrap();
        let refused = DatabaseLock::exclusive(&db).unwrap_err();
        assert!(refused.contains("is in use"), "{refused}");
        drop((a, b));
        let restore = DatabaseLock::exclusive(&db).unwrap();
        let refused = DatabaseLock::shared(&db).unwrap_err();
        assert!(refused.to_string().contains("restore"), "{refused}");
        drop(restore);
        DatabaseLock::shared(&db).unwrap();
    }
}
