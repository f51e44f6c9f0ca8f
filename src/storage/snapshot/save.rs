//! `snapshot save`: a consistent copy of a live SQLite store.
//!
//! `VACUUM INTO` runs in one read transaction: in WAL mode it sees the
//! database as of its start while the server keeps committing, and never
//! blocks the server's writes. It rebuilds the pages rather than copying
//! them, so free pages (which may hold old sealed values) are left behind.
//! The copy is set to rollback-journal mode so that it is one
//! self-contained file, checked as a restore would check it, then written
//! behind the header: to a temporary file beside the destination, synced
//! and renamed, so a crash leaves the old file or the whole new one.

use std::fs::File;
use std::io::{self, Seek, Write};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::OpenFlags;

use super::files::{TempFile, check_store, open_existing};
use super::format::{Header, KIND_SQLITE};
use crate::storage::sqlite_lock::DatabaseLock;

/// Where a snapshot goes.
#[derive(Debug)]
pub enum Destination<'a> {
    /// Written atomically: the file appears whole or not at all.
    File(&'a Path),
    /// Streamed (`-`): whoever reads it must check it is complete.
    Stdout,
}

/// Copy the store at `db` into a snapshot at `to`.
pub fn save(db: &Path, to: &Destination<'_>) -> Result<Header, String> {
    if !db.is_file() {
        return Err(format!("{} is not a database file", db.display()));
    }
    // Shared: the server keeps running; a restore cannot start meanwhile.
    let _in_use = DatabaseLock::shared(db).map_err(|e| e.to_string())?;
    // The copy is made where the snapshot goes (stdout: beside the database),
    // so it is on the same disk as what it becomes.
    let work_near = match to {
        Destination::File(path) => *path,
        Destination::Stdout => db,
    };
    let (copy, _) = TempFile::beside(work_near, "vacuum")?;
    {
        // Whether it is a transitd store is checked on the copy, in full.
        let source = open_existing(db, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        let into = copy.path().to_string_lossy().into_owned();
        source
            .execute("VACUUM INTO ?1", (into,))
            .map_err(|e| format!("cannot copy {}: {e}", db.display()))?;
    }
    {
        let c = open_existing(copy.path(), OpenFlags::SQLITE_OPEN_READ_WRITE)?;
        let mode: String = c
            .pragma_update_and_check(None, "journal_mode", "DELETE", |r| r.get(0))
            .map_err(|e| format!("cannot prepare the copy: {e}"))?;
        if !mode.eq_ignore_ascii_case("delete") {
            return Err(format!("the copy stayed in journal mode {mode:?}"));
        }
        check_store(&c, copy.path())?;
    }
    let mut content = File::open(copy.path()).map_err(io_err(copy.path()))?;
    let len = content.metadata().map_err(io_err(copy.path()))?.len();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let header = Header::of(KIND_SQLITE, &mut content, len, now).map_err(io_err(copy.path()))?;
    content.rewind().map_err(io_err(copy.path()))?;
    match to {
        Destination::File(path) => {
            let (out, mut file) = TempFile::beside(path, "tmp")?;
            write_snapshot(&header, &mut content, &mut file).map_err(io_err(out.path()))?;
            file.sync_all().map_err(io_err(out.path()))?;
            drop(file);
            out.rename_onto(path)?;
        }
        Destination::Stdout => {
            let mut stdout = io::stdout().lock();
            write_snapshot(&header, &mut content, &mut stdout)
                .map_err(|e| format!("cannot write the snapshot to stdout: {e}"))?;
        }
    }
    Ok(header)
}

fn write_snapshot(header: &Header, content: &mut File, out: &mut impl Write) -> io::Result<()> {
    out.write_all(&header.to_bytes())?;
    let copied = io::copy(content, out)?;
    if copied != header.content_len {
        return Err(io::Error::other("the copy changed while being written"));
    }
    out.flush()
}

fn io_err(path: &Path) -> impl Fn(io::Error) -> String + '_ {
    move |e| format!("{}: {e}", path.display())
}
