//! The checkpoint sidecar, `<FILE>.checkpoint`: a file device's latest
//! checkpoint line, kept beside the log so that lines cut off its end show;
//! the same thread then saves that checkpoint to the device's anchor (sealed
//! storage, see `anchor`), so neither claims more than the file holds.
//!
//! The sidecar checkpoint (temporary file, two fsyncs, rename) is replaced by
//! a small thread of its own, so queued callers do not wait for it: the
//! writer hands it the newest checkpoint line only after the batch holding
//! that line is durable, and it writes only the newest line it holds, in
//! order, so the sidecar never claims more than the file holds durably.
//! [`FileDevice::checkpoint`](super::FileDevice::checkpoint) and
//! [`FileDevice::close`](super::FileDevice::close) return only once the
//! sidecar is written.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;

use super::Ack;
use super::anchor::CheckpointStore;
use crate::audit::chain::Checkpoint;
use crate::audit::error::AuditError;

/// `<FILE>.checkpoint`: where a file device keeps its latest checkpoint line.
pub fn sidecar_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".checkpoint");
    PathBuf::from(s)
}

/// Writes `path` by way of a temporary file: write, fsync, rename, fsync the
/// directory.
pub(super) fn write_atomically(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// What the sidecar thread is asked to do next.
#[derive(Default)]
struct SidecarSlot {
    /// The newest checkpoint line not yet written (a newer one replaces it).
    line: Option<Vec<u8>>,
    /// Callers of [`FileDevice::checkpoint`], answered after the next write
    /// (or at once with the last write's outcome when there is no line).
    acks: Vec<Ack>,
    closed: bool,
}

struct SidecarShared {
    slot: Mutex<SidecarSlot>,
    wake: Condvar,
}

impl SidecarShared {
    fn post(&self, line: Option<Vec<u8>>, acks: Vec<Ack>) {
        if line.is_none() && acks.is_empty() {
            return;
        }
        let mut slot = self.slot.lock().unwrap_or_else(PoisonError::into_inner);
        if line.is_some() {
            slot.line = line;
        }
        slot.acks.extend(acks);
        drop(slot);
        self.wake.notify_one();
    }
}

/// [`SidecarWorker::post`] from another thread.
#[derive(Clone)]
pub(super) struct SidecarPoster(Arc<SidecarShared>);

impl SidecarPoster {
    /// As [`SidecarWorker::post`]: `line` must be durable in the file.
    pub(super) fn post(&self, line: Option<Vec<u8>>, acks: Vec<Ack>) {
        self.0.post(line, acks);
    }
}

/// The thread that replaces `<FILE>.checkpoint` (temporary file, fsync,
/// rename, directory fsync: two fsyncs), off the writer's commit path. The
/// writer hands it a checkpoint line only once the batch holding that line
/// is durable, and the thread only ever writes the newest line it was
/// handed, in order: the sidecar never claims more than the file holds.
pub(super) struct SidecarWorker {
    shared: Arc<SidecarShared>,
    thread: Option<JoinHandle<Result<(), String>>>,
}

impl SidecarWorker {
    pub(super) fn start(
        target: String,
        path: PathBuf,
        mode: u32,
        anchor: Option<Arc<dyn CheckpointStore>>,
    ) -> io::Result<Self> {
        let shared = Arc::new(SidecarShared {
            slot: Mutex::new(SidecarSlot::default()),
            wake: Condvar::new(),
        });
        let worker = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("audit-sidecar".to_owned())
            .spawn(move || Self::run(&worker, &target, &path, mode, anchor.as_deref()))?;
        Ok(Self {
            shared,
            thread: Some(thread),
        })
    }

    fn run(
        shared: &SidecarShared,
        target: &str,
        path: &Path,
        mode: u32,
        anchor: Option<&dyn CheckpointStore>,
    ) -> Result<(), String> {
        let mut last: Result<(), String> = Ok(());
        loop {
            let (line, acks) = {
                let mut slot = shared.slot.lock().unwrap_or_else(PoisonError::into_inner);
                loop {
                    if slot.line.is_some() || !slot.acks.is_empty() {
                        break (slot.line.take(), std::mem::take(&mut slot.acks));
                    }
                    if slot.closed {
                        return last;
                    }
                    slot = shared
                        .wake
                        .wait(slot)
                        .unwrap_or_else(PoisonError::into_inner);
                }
            };
            if let Some(line) = line {
                last = write_atomically(path, &line, mode).map_err(|e| e.to_string());
                if let Err(e) = &last {
                    // The entries are durable in the log; a stale sidecar only
                    // weakens truncation detection until the next checkpoint.
                    tracing::error!(device = %target, error = %e, "audit checkpoint sidecar not updated");
                }
                if let (Some(anchor), Some(cp)) = (anchor, Checkpoint::parse(&line)) {
                    let saved = anchor.save(cp.seq, &cp.chain);
                    if let Err(e) = &saved {
                        // As above: only a rollback since the last save goes unseen at open.
                        tracing::error!(device = %target, error = %e, "sealed audit checkpoint not updated");
                    }
                    last = last.and(saved);
                }
            }
            for ack in acks {
                let _ = ack.send(last.clone().map_err(|e| AuditError::Io {
                    target: target.to_owned(),
                    message: format!("checkpoint sidecar not updated: {e}"),
                }));
            }
        }
    }

    /// Hands over the newest checkpoint line (durable in the file) and/or
    /// callers to answer once the sidecar is written.
    pub(super) fn post(&self, line: Option<Vec<u8>>, acks: Vec<Ack>) {
        self.shared.post(line, acks);
    }

    /// A handle that posts to this sidecar from another thread (the
    /// background syncer, which hands lines over once they are durable).
    pub(super) fn poster(&self) -> SidecarPoster {
        SidecarPoster(Arc::clone(&self.shared))
    }

    /// Writes what was handed over, stops the thread and returns the
    /// outcome of its last write.
    pub(super) fn finish(mut self) -> Result<(), String> {
        self.stop()
    }

    fn stop(&mut self) -> Result<(), String> {
        let Some(thread) = self.thread.take() else {
            return Ok(());
        };
        self.shared
            .slot
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .closed = true;
        self.shared.wake.notify_one();
        thread
            .join()
            .unwrap_or_else(|_| Err("sidecar thread panicked".to_owned()))
    }
}

impl Drop for SidecarWorker {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::FileDevice;
    use crate::audit::chain::Checkpoint;
    use crate::audit::device::tests::{file_config, record};
    use crate::audit::generate_signing_key;
    use crate::audit::verify::{VerifyReport, verify_file};

    /// The sidecar is replaced off the commit path, yet never names an entry
    /// that is not durable yet, and holds the newest checkpoint once
    /// `checkpoint()` or `close()` returns.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sidecar_follows_durable_checkpoints() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let key = generate_signing_key().unwrap();
        let dev = FileDevice::open(file_config(&path, &key, 3)).unwrap();
        let sidecar_seq = || {
            Checkpoint::parse(&fs::read(sidecar_path(&path)).unwrap())
                .unwrap()
                .seq
        };
        for i in 0..40u64 {
            dev.log(&record(i as usize)).await.unwrap();
            // Entry i + 1 is durable; nothing after it exists yet.
            assert!(sidecar_seq() <= i + 1);
        }
        dev.checkpoint().await.unwrap();
        assert_eq!(sidecar_seq(), 40);
        dev.log(&record(40)).await.unwrap();
        dev.close().unwrap();
        assert_eq!(sidecar_seq(), 41);
        assert!(matches!(
            verify_file(&path, Some(dev.public_key())),
            VerifyReport::Ok(ref s) if s.last_seq == 41 && s.sidecar_seq == Some(41)
        ));
    }
}
