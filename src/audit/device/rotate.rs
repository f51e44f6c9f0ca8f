//! Following a device's file to whatever is at its path now: after a
//! rename (log rotation), a deletion, a replacement or a file cut short
//! under the writer, and on `SIGHUP`.
//!
//! The writer signs what the old file holds (a last checkpoint, through the
//! descriptor it still has) and syncs it, then opens the path as a device opens its file
//! at start, with the chain state it had as the point to continue from: an
//! empty or missing file gets a header naming that `seq` and chain (so
//! `transitd audit verify OLD NEW` checks both as one chain), an existing
//! file must be this log and reach that point. When the path cannot be
//! opened the batch fails (fail closed: entries are never acknowledged into
//! a file nobody can find), and the next batch tries again.

use super::sink::FileChange;
use super::writer::Writer;
use crate::audit::chain::Start;
use crate::audit::error::AuditError;

impl Writer {
    /// Follows the file if the one at its path is no longer the one open;
    /// `why` says what asked, for the log.
    pub(super) fn follow_file(&mut self, why: &str) -> Result<(), AuditError> {
        let moved = self
            .sink
            .moved()
            .map_err(|e| self.io_error(format!("cannot check the file at its path: {e}")))?;
        if moved == FileChange::Same {
            return Ok(());
        }
        // Sign the old file's end through the descriptor still open, unless
        // that file is the one at the path (cut short: the line would land
        // at its start, before the new header).
        if moved == FileChange::Gone && self.state.seq > self.state.last_checkpoint {
            let line = self.checkpoint_line();
            match self.sink.append(&line) {
                Ok(()) => self.state.last_checkpoint = self.state.seq,
                // The next file's header still names the chain it ended with.
                Err(e) => tracing::warn!(
                    device = %self.target,
                    error = %e,
                    "no last checkpoint in the audit file that was moved away"
                ),
            }
        }
        // The next file's header vouches for the old file's end: that end
        // must be durable first (in background mode it may not be yet).
        self.sink
            .sync()
            .map_err(|e| self.io_error(format!("the file left behind cannot be synced: {e}")))?;
        let from = Start {
            seq: self.state.seq,
            chain: self.state.chain,
        };
        match self.sink.reopen(&self.key, &from) {
            Ok((sink, state)) => {
                if let Some(background) = &self.background {
                    let file = sink.sync_target().map_err(|e| {
                        self.io_error(format!("the new file cannot be synced: {e}"))
                    })?;
                    background.switch(file);
                }
                tracing::warn!(
                    device = %self.target,
                    reason = why,
                    seq = from.seq,
                    "audit file renamed, deleted, replaced or cut short: the chain continues in the file now at its path (verify the old and new files together)"
                );
                self.sink = sink;
                self.state = state;
                if state.seq == state.last_checkpoint {
                    // The new file holds this checkpoint durably.
                    self.unsigned_since = None;
                    self.to_sidecar(true, Some(self.checkpoint_line()), Vec::new());
                } else {
                    self.unsigned_since = Some(std::time::Instant::now());
                }
                Ok(())
            }
            Err(e) => {
                tracing::error!(
                    device = %self.target,
                    reason = why,
                    error = %e,
                    "audit file gone from its path and cannot be reopened: the device refuses entries until it can"
                );
                Err(self.io_error(format!(
                    "the file at its path changed and cannot be reopened ({e}); entries are refused until it can"
                )))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::path::Path;
    use std::time::{Duration, Instant};

    use crate::audit::FileDevice;
    use crate::audit::chain::Checkpoint;
    use crate::audit::device::sidecar_path;
    use crate::audit::device::tests::{entry_seqs, file_config, record};
    use crate::audit::generate_signing_key;
    use crate::audit::verify::{Expect, VerifyReport, verify_file, verify_files};

    /// Polls (a bounded wait for an event, not a timing assertion) until the
    /// sidecar names `seq`.
    fn wait_for_sidecar(path: &Path, seq: u64) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            let current = fs::read(sidecar_path(path))
                .ok()
                .and_then(|b| Checkpoint::parse(&b))
                .map(|cp| cp.seq);
            if current == Some(seq) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// Entries written and then left alone get a signed checkpoint (in the
    /// file and the sidecar) without waiting for `checkpoint_interval` more
    /// entries or a clean stop.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn idle_writer_signs_its_last_entries() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let key = generate_signing_key().unwrap();
        let dev = FileDevice::open(file_config(&path, &key, 1000)).unwrap();
        for i in 0..3 {
            dev.log(&record(i)).await.unwrap();
        }
        assert!(
            wait_for_sidecar(&path, 3),
            "no checkpoint signed the idle entries"
        );
        // A copy taken now (what a crash leaves) has nothing unsigned.
        let report = verify_file(&path, Some(dev.public_key()));
        assert_eq!(report.unsigned_entries(), Some(0), "{report}");
        dev.close().unwrap();
    }

    /// Log rotation by rename (logrotate's default): the next batch goes to a
    /// new file at the path, whose header continues the chain; both files
    /// verify as one chain, and the old one ends with a checkpoint.
    #[tokio::test]
    async fn renamed_file_is_followed_by_a_continuing_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let rotated = dir.path().join("audit.log.1");
        let key = generate_signing_key().unwrap();
        let dev = FileDevice::open(file_config(&path, &key, 1000)).unwrap();
        for i in 0..4 {
            dev.log(&record(i)).await.unwrap();
        }
        fs::rename(&path, &rotated).unwrap();
        for i in 4..6 {
            dev.log(&record(i)).await.unwrap();
        }
        dev.close().unwrap();
        assert_eq!(entry_seqs(&rotated), vec![1, 2, 3, 4]);
        assert_eq!(entry_seqs(&path), vec![5, 6]);
        let pk = dev.public_key();
        let both = verify_files(
            &[rotated.clone(), path.clone()],
            &Expect {
                public_key: Some(pk),
                checkpoint: None,
            },
        );
        assert!(
            matches!(&both, VerifyReport::Ok(v) if v.files == 2 && v.last_seq == 6),
            "{both}"
        );
        assert!(verify_file(&rotated, Some(pk)).is_ok());
        // Out of order, or with the first file missing from the middle.
        assert!(!verify_files(&[path.clone(), rotated.clone()], &Expect::default()).is_ok());
    }

    /// A file deleted while the server runs: entries are not acknowledged
    /// into the unlinked file; a new file continues the chain.
    #[tokio::test]
    async fn deleted_file_is_detected_and_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let key = generate_signing_key().unwrap();
        let dev = FileDevice::open(file_config(&path, &key, 1000)).unwrap();
        for i in 0..3 {
            dev.log(&record(i)).await.unwrap();
        }
        fs::remove_file(&path).unwrap();
        dev.log(&record(3)).await.unwrap();
        assert_eq!(entry_seqs(&path), vec![4]);
        dev.close().unwrap();
        let alone = verify_file(&path, None);
        assert!(
            alone
                .to_string()
                .contains("entries up to seq 3 are not in the files given"),
            "{alone}"
        );
    }

    /// `copytruncate`: the file is copied, then cut to zero under the
    /// writer. The next batch sees the length change and starts the cut
    /// file again with a header that continues the chain from the copy.
    #[tokio::test]
    async fn copytruncate_is_followed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let copy = dir.path().join("audit.log.1");
        let key = generate_signing_key().unwrap();
        let dev = FileDevice::open(file_config(&path, &key, 1000)).unwrap();
        for i in 0..3 {
            dev.log(&record(i)).await.unwrap();
        }
        fs::copy(&path, &copy).unwrap();
        fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(0)
            .unwrap();
        dev.log(&record(3)).await.unwrap();
        dev.close().unwrap();
        assert_eq!(entry_seqs(&path), vec![4]);
        let both = verify_files(&[copy, path], &Expect::default());
        assert!(
            matches!(&both, VerifyReport::Ok(v) if v.last_seq == 4),
            "{both}"
        );
    }

    /// `SIGHUP` (`reopen`) follows a rotated file at once, before any entry.
    #[tokio::test]
    async fn reopen_follows_a_rotated_file_now() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let rotated = dir.path().join("audit.log.1");
        let key = generate_signing_key().unwrap();
        let dev = FileDevice::open(file_config(&path, &key, 1000)).unwrap();
        dev.log(&record(0)).await.unwrap();
        dev.reopen().await.unwrap();
        assert!(!rotated.exists());
        fs::rename(&path, &rotated).unwrap();
        // logrotate's `create`: an empty file with the right mode first.
        fs::write(&path, b"").unwrap();
        dev.reopen().await.unwrap();
        let header = fs::read_to_string(&path).unwrap();
        assert!(header.contains("\"prev_chain\":\""), "{header}");
        assert!(wait_for_sidecar(&path, 1));
        dev.close().unwrap();
        assert!(verify_files(&[rotated, path], &Expect::default()).is_ok());
    }
}
