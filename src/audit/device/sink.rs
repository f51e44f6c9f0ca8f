//! Where a device's lines go: a regular file opened for appending (each
//! batch made durable with `sync_data`, or only written when a background
//! syncer makes it durable later; a failed one taken back by cutting the
//! file to the end of the last good batch) with its sidecar, or any byte
//! stream such as stdout (flushed; nothing can be taken back). The writer
//! sees only the [`Sink`] trait, so tests run devices on injected sinks.

use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use ring::signature::Ed25519KeyPair;

use super::resume::open_file;
use super::writer::ChainState;
use crate::audit::chain::Start;
use crate::audit::error::AuditError;

/// Where a device's lines go.
pub(crate) trait Sink: Send + 'static {
    /// Writes all of `bytes` and makes them durable.
    fn append(&mut self, bytes: &[u8]) -> io::Result<()>;
    /// Writes all of `bytes` without waiting for them to be durable (the
    /// background syncer makes them so); a stream writes as `append` does.
    fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.append(bytes)
    }
    /// Makes everything written so far durable (a stream: nothing to do).
    fn sync(&mut self) -> io::Result<()> {
        Ok(())
    }
    /// A handle through which another thread makes what was written
    /// durable (a stream has none: it is never synced).
    fn sync_target(&self) -> io::Result<Box<dyn SyncTarget>> {
        Err(io::Error::other("a stream cannot be synced"))
    }
    /// Takes back whatever a failed `append` or `write` may have written.
    fn rollback(&mut self) -> io::Result<()>;
    /// Where checkpoint lines are kept outside the log (the sidecar file and
    /// its mode), if anywhere.
    fn sidecar(&self) -> Option<(PathBuf, u32)> {
        None
    }
    /// Whether what is at the sink's path is still what it writes to.
    fn moved(&self) -> io::Result<FileChange> {
        Ok(FileChange::Same)
    }
    /// Opens what is at the sink's path now, continuing the chain from `from`.
    fn reopen(
        &self,
        _key: &Ed25519KeyPair,
        _from: &Start,
    ) -> Result<(Box<dyn Sink>, ChainState), AuditError> {
        Err(AuditError::Config(
            "this sink cannot be reopened".to_owned(),
        ))
    }
}

/// Something written to that can be made durable from any thread.
pub(crate) trait SyncTarget: Send + Sync + 'static {
    fn sync(&self) -> io::Result<()>;
}

impl SyncTarget for File {
    /// `sync_data`, timed as `transitd_audit_fsync_seconds`.
    fn sync(&self) -> io::Result<()> {
        let started = std::time::Instant::now();
        self.sync_data()?;
        crate::metrics::metrics()
            .audit_fsync
            .record(started.elapsed().as_secs_f64());
        Ok(())
    }
}

/// What became of a sink's file since its last write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FileChange {
    Same,
    /// Renamed, deleted or replaced: the open file is no longer at the path.
    Gone,
    /// Still at the path, but its length changed under the writer (cut by
    /// `copytruncate`, or written by someone else).
    Changed,
}

/// A regular file opened for appending, plus its sidecar.
pub(super) struct FileSink {
    pub(super) path: PathBuf,
    /// The mode asked for (`None`: keep an existing file's).
    pub(super) open_mode: Option<u32>,
    pub(super) file: File,
    /// End of the last batch written whole (durable too in fsync mode).
    pub(super) len: u64,
    pub(super) sidecar: PathBuf,
    pub(super) mode: u32,
}

impl Sink for FileSink {
    fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        let before = self.len;
        self.write(bytes)?;
        if let Err(e) = SyncTarget::sync(&self.file) {
            // Not durable: `rollback` cuts the batch off again.
            self.len = before;
            return Err(e);
        }
        Ok(())
    }

    fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        let started = std::time::Instant::now();
        self.file.write_all(bytes)?;
        crate::metrics::metrics()
            .audit_write
            .record(started.elapsed().as_secs_f64());
        self.len += bytes.len() as u64;
        Ok(())
    }

    fn sync(&mut self) -> io::Result<()> {
        SyncTarget::sync(&self.file)
    }

    fn sync_target(&self) -> io::Result<Box<dyn SyncTarget>> {
        Ok(Box::new(self.file.try_clone()?))
    }

    fn rollback(&mut self) -> io::Result<()> {
        self.file.set_len(self.len)?;
        self.file.sync_data()
    }

    fn sidecar(&self) -> Option<(PathBuf, u32)> {
        Some((self.sidecar.clone(), self.mode))
    }

    /// One `fstat` and one `stat`: cheap next to the batch's `fsync`.
    fn moved(&self) -> io::Result<FileChange> {
        let open = self.file.metadata()?;
        let gone = match fs::metadata(&self.path) {
            Ok(at_path) => at_path.dev() != open.dev() || at_path.ino() != open.ino(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => true,
            Err(e) => return Err(e),
        };
        Ok(if gone {
            FileChange::Gone
        } else if open.len() != self.len {
            FileChange::Changed
        } else {
            FileChange::Same
        })
    }

    fn reopen(
        &self,
        key: &Ed25519KeyPair,
        from: &Start,
    ) -> Result<(Box<dyn Sink>, ChainState), AuditError> {
        let (sink, state) = open_file(&self.path, self.open_mode, key, Some(*from))?;
        Ok((Box::new(sink), state))
    }
}

/// Any byte stream (stdout); no sidecar, no way to take bytes back.
pub(crate) struct WriterSink<W>(pub W);

impl<W: Write + Send + 'static> Sink for WriterSink<W> {
    fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.0.write_all(bytes)?;
        self.0.flush()
    }

    fn rollback(&mut self) -> io::Result<()> {
        Err(io::Error::other(
            "a stream cannot take back a partial write",
        ))
    }
}
