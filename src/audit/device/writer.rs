//! The writer thread of a device: group commit, the chain and its
//! checkpoint lines, and what a failed write leaves behind.
//!
//! The writer thread takes everything queued, numbers and chains each entry
//! straight into the batch buffer, adds a checkpoint line wherever
//! `checkpoint_interval` entries have passed since the last one, writes the
//! whole batch with one `write_all`, makes it durable (`sync_data` for
//! files), and only then answers every caller of the batch. With
//! `durability=background` it answers once the batch is written and leaves
//! the sync (and the checkpoint line's way to the sidecar) to the
//! background syncer (`background`), unless the last background sync
//! failed: then it syncs the batch itself first, until a sync succeeds.
//!
//! A failed write answers every caller of the batch with the error. A file
//! device then truncates back to the end of its last good batch and rewinds
//! its sequence and chain, so a failed entry leaves no trace and later entries
//! chain on cleanly; if even that fails (and always for stdout, which cannot
//! take bytes back) the device refuses every later entry until it is disabled
//! and enabled again, because the file's chain state is no longer known.
//!
//! No entry stays unsigned for long: a batch written a second or more after
//! the oldest entry not yet covered by a checkpoint carries a checkpoint, and
//! a writer left idle with such entries signs one when that second is up
//! (one signature and one small write a second at most, so the cost under
//! load is nil; see `benches/audit.rs`).
//!
//! Before each batch the writer checks (`stat` of the path against `fstat`
//! of the open file) that its file is still the one at its path; a file
//! renamed, deleted, replaced or cut short is followed by a new file that
//! continues the chain (see `rotate`), as `SIGHUP` asks for.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use ring::signature::Ed25519KeyPair;
use time::OffsetDateTime;

use super::Ack;
use super::background::BackgroundSync;
use super::sidecar::SidecarWorker;
use super::sink::Sink;
use crate::audit::chain::{self, Chain};
use crate::audit::error::AuditError;

const MAX_BATCH_ENTRIES: usize = 4096;
const MAX_BATCH_BYTES: usize = 8 << 20;

/// How long an acknowledged entry may stay without a signed checkpoint.
pub(super) const SIGN_WITHIN: Duration = Duration::from_secs(1);

/// Entries waiting for the writer: one, or a request entry and its
/// response entry, written in the same batch one after the other, or not
/// at all; one answer for all of them.
pub(super) struct Queued {
    pub(super) entries: Vec<Vec<u8>>,
    pub(super) ack: Ack,
}

pub(super) enum Msg {
    Entry(Queued),
    Checkpoint {
        ack: Ack,
    },
    /// `SIGHUP`: follow the file to whatever is at its path now.
    Reopen {
        ack: Ack,
    },
    Shutdown,
}

/// Where the chain stands.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ChainState {
    pub(super) seq: u64,
    pub(super) chain: Chain,
    pub(super) last_checkpoint: u64,
}

/// The writer thread's side of a device.
pub(super) struct Writer {
    pub(super) target: String,
    pub(super) sink: Box<dyn Sink>,
    pub(super) key: Ed25519KeyPair,
    pub(super) state: ChainState,
    pub(super) interval: u64,
    /// Set when a failed write could not be undone.
    pub(super) failed: Option<String>,
    pub(super) sidecar: Option<SidecarWorker>,
    /// `durability=background`: the thread that syncs written batches.
    pub(super) background: Option<BackgroundSync>,
    /// The batch being built, kept between batches for its capacity.
    pub(super) buf: Vec<u8>,
    /// When the oldest entry not covered by a checkpoint was written.
    pub(super) unsigned_since: Option<Instant>,
}

impl Writer {
    pub(super) fn run(mut self, rx: mpsc::Receiver<Msg>) -> Result<(), AuditError> {
        let mut stopping = false;
        while !stopping {
            let received = match self.unsigned_since {
                Some(since) => rx.recv_timeout(SIGN_WITHIN.saturating_sub(since.elapsed())),
                None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
            };
            let first = match received {
                Ok(msg) => msg,
                Err(RecvTimeoutError::Timeout) => {
                    self.commit(Vec::new(), Vec::new(), true);
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => break,
            };
            let mut batch = vec![first];
            let mut bytes = 0usize;
            while batch.len() < MAX_BATCH_ENTRIES && bytes < MAX_BATCH_BYTES {
                match rx.try_recv() {
                    Ok(msg) => {
                        if let Msg::Entry(q) = &msg {
                            bytes += q.entries.iter().map(Vec::len).sum::<usize>();
                        }
                        batch.push(msg);
                    }
                    Err(_) => break,
                }
            }
            let mut entries = Vec::with_capacity(batch.len());
            let mut forced = Vec::new();
            let mut reopen = Vec::new();
            for msg in batch {
                match msg {
                    Msg::Entry(q) if stopping => {
                        let _ = q.ack.send(Err(AuditError::Stopped(self.target.clone())));
                    }
                    Msg::Checkpoint { ack } | Msg::Reopen { ack } if stopping => {
                        let _ = ack.send(Err(AuditError::Stopped(self.target.clone())));
                    }
                    Msg::Entry(q) => entries.push(q),
                    Msg::Checkpoint { ack } => forced.push(ack),
                    Msg::Reopen { ack } => reopen.push(ack),
                    Msg::Shutdown => stopping = true,
                }
            }
            if !reopen.is_empty() {
                let outcome = self.follow_file("SIGHUP");
                for ack in reopen {
                    let _ = ack.send(outcome.clone());
                }
            }
            let due = self
                .unsigned_since
                .is_some_and(|since| since.elapsed() >= SIGN_WITHIN);
            self.commit(entries, forced, due);
        }
        self.final_checkpoint()
    }

    pub(super) fn io_error(&self, message: String) -> AuditError {
        AuditError::Io {
            target: self.target.clone(),
            message,
        }
    }

    pub(super) fn checkpoint_line(&self) -> Vec<u8> {
        chain::checkpoint_line(
            &self.key,
            self.state.seq,
            &self.state.chain,
            OffsetDateTime::now_utc(),
        )
    }

    /// Hands `line` and `forced` callers on to the sidecar thread once the
    /// bytes holding the line are durable: at once when `synced`, else
    /// through the background syncer after its next sync. With a
    /// background syncer every line goes through it, so lines reach the
    /// sidecar in order. Without a sidecar the callers are answered at once.
    pub(super) fn to_sidecar(&self, synced: bool, line: Option<Vec<u8>>, forced: Vec<Ack>) {
        if let Some(background) = &self.background {
            return background.hand_over(!synced, line, forced);
        }
        match &self.sidecar {
            Some(sidecar) => sidecar.post(line, forced),
            None => {
                for ack in forced {
                    let _ = ack.send(Ok(()));
                }
            }
        }
    }

    /// After a failed batch: the idle checkpoint is tried again a second
    /// later (not at once, which would spin), or never on a failed device.
    fn retry_signing_later(&mut self) {
        if self.unsigned_since.is_some() {
            self.unsigned_since = self.failed.is_none().then(Instant::now);
        }
    }

    /// Writes one batch and answers its callers; `sign` (or a forced
    /// checkpoint) ends the batch with a checkpoint if any entry is unsigned.
    fn commit(&mut self, entries: Vec<Queued>, forced: Vec<Ack>, sign: bool) {
        if entries.is_empty() && forced.is_empty() && !sign {
            return;
        }
        let refused = match &self.failed {
            Some(message) => Err(self.io_error(message.clone())),
            None => self.follow_file("the file at its path changed"),
        };
        if let Err(err) = refused {
            self.retry_signing_later();
            for ack in entries.into_iter().map(|q| q.ack).chain(forced) {
                let _ = ack.send(Err(err.clone()));
            }
            return;
        }
        let saved = self.state;
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        let mut acks = Vec::with_capacity(entries.len());
        let mut last_checkpoint_line = None;
        for q in entries {
            // All of a message's entries, or none.
            if !q.entries.iter().all(|json| chain::is_object(json)) {
                let _ = q.ack.send(Err(AuditError::Format(
                    "entry is not a JSON object".to_owned(),
                )));
                continue;
            }
            for json in &q.entries {
                self.state.chain =
                    chain::append_object(&mut buf, json, self.state.seq + 1, &self.state.chain);
                self.state.seq += 1;
                if self.state.seq - self.state.last_checkpoint >= self.interval {
                    let line = self.checkpoint_line();
                    buf.extend_from_slice(&line);
                    last_checkpoint_line = Some(line);
                    self.state.last_checkpoint = self.state.seq;
                }
            }
            acks.push(q.ack);
        }
        if (sign || !forced.is_empty()) && self.state.seq > self.state.last_checkpoint {
            let line = self.checkpoint_line();
            buf.extend_from_slice(&line);
            last_checkpoint_line = Some(line);
            self.state.last_checkpoint = self.state.seq;
        }
        if buf.is_empty() {
            // Nothing new: a forced checkpoint is answered once the sidecar
            // holds the newest line handed over so far.
            self.to_sidecar(true, None, forced);
            self.buf = buf;
            return;
        }
        // A failed background sync means the disk may be dropping writes:
        // then this batch is synced before anyone hears "recorded".
        let recovering = self.background.as_ref().and_then(BackgroundSync::failure);
        let synced = self.background.is_none() || recovering.is_some();
        let written = if synced {
            self.sink.append(&buf)
        } else {
            self.sink.write(&buf)
        };
        match written {
            Ok(()) => {
                if let (Some(background), Some(failure)) = (&self.background, recovering) {
                    background.recovered();
                    tracing::warn!(device = %self.target, after = %failure, "audit file syncs again: background syncing resumes");
                }
                if self.state.seq == self.state.last_checkpoint {
                    self.unsigned_since = None;
                } else if self.unsigned_since.is_none() {
                    self.unsigned_since = Some(Instant::now());
                }
                for ack in acks {
                    let _ = ack.send(Ok(()));
                }
                // The sidecar may name the line once its batch is durable.
                self.to_sidecar(synced, last_checkpoint_line, forced);
            }
            Err(e) => {
                let message = format!("write failed: {e}");
                match self.sink.rollback() {
                    Ok(()) => self.state = saved,
                    Err(r) => {
                        self.failed = Some(format!(
                            "{message}; the partial write could not be taken back ({r}), so the device \
                             refuses entries until it is disabled and enabled again"
                        ));
                    }
                }
                self.retry_signing_later();
                tracing::debug!(device = %self.target, error = %e, "audit write failed");
                let err = self.io_error(message);
                for ack in acks.into_iter().chain(forced) {
                    let _ = ack.send(Err(err.clone()));
                }
            }
        }
        if buf.capacity() <= MAX_BATCH_BYTES {
            self.buf = buf;
        }
    }

    /// The checkpoint written on a clean stop; the sidecar thread finishes
    /// its work (and writes this line) before this returns.
    fn final_checkpoint(&mut self) -> Result<(), AuditError> {
        // Everything written is synced, and its line posted, first.
        if let Some(mut background) = self.background.take() {
            background.stop();
        }
        let sidecar = self.sidecar.take();
        if let Some(message) = &self.failed {
            return Err(self.io_error(message.clone()));
        }
        if self.state.seq == self.state.last_checkpoint {
            // Earlier sidecar failures were logged when they happened.
            drop(sidecar);
            return Ok(());
        }
        let line = self.checkpoint_line();
        self.sink
            .append(&line)
            .map_err(|e| self.io_error(format!("final checkpoint not written: {e}")))?;
        self.state.last_checkpoint = self.state.seq;
        match sidecar {
            Some(sidecar) => {
                sidecar.post(Some(line), Vec::new());
                sidecar
                    .finish()
                    .map_err(|e| self.io_error(format!("checkpoint sidecar not updated: {e}")))
            }
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::io::{self, Write};
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};

    use ring::signature::KeyPair as _;

    use super::*;
    use crate::audit::FileDevice;
    use crate::audit::chain::Fields;
    use crate::audit::device::resume::open_file;
    use crate::audit::device::sink::{FileSink, WriterSink};
    use crate::audit::device::tests::{MemoryLog, entry_seqs, file_config, record, test_device};
    use crate::audit::format::{FormatOptions, SaltKey, TokenMemo};
    use crate::audit::verify::{VerifyReport, verify_file};
    use crate::audit::{AuditBroker, generate_signing_key};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn group_commit_many_concurrent_callers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let key = generate_signing_key().unwrap();
        let dev = Arc::new(FileDevice::open(file_config(&path, &key, 7)).unwrap());
        let mut tasks = Vec::new();
        for i in 0..300 {
            let dev = dev.clone();
            tasks.push(tokio::spawn(async move { dev.log(&record(i)).await }));
        }
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        dev.close().unwrap();
        assert_eq!(entry_seqs(&path), (1..=300).collect::<Vec<u64>>());
        let text = fs::read_to_string(&path).unwrap();
        let ids: std::collections::BTreeSet<String> = text
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter_map(|v| v["request"]["id"].as_str().map(str::to_owned))
            .collect();
        assert_eq!(ids.len(), 300);
        match verify_file(&path, Some(dev.public_key())) {
            VerifyReport::Ok(s) => {
                assert_eq!(s.last_seq, 300);
                // 300 / 7 = 42 periodic checkpoints, the one after the header,
                // and the final one (300 is not a multiple of 7).
                assert_eq!(s.checkpoints, 44);
                assert_eq!(s.sidecar_seq, Some(300));
            }
            other => panic!("{other}"),
        }
    }

    /// A sink that counts its appends and takes a while for each.
    struct SlowSink {
        out: Arc<Mutex<Vec<u8>>>,
        appends: Arc<AtomicUsize>,
    }

    impl Sink for SlowSink {
        fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
            std::thread::sleep(Duration::from_millis(3));
            self.appends.fetch_add(1, Ordering::SeqCst);
            self.out.lock().unwrap().extend_from_slice(bytes);
            Ok(())
        }
        fn rollback(&mut self) -> io::Result<()> {
            Err(io::Error::other("no"))
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn group_commit_batches_queued_entries() {
        let out = Arc::new(Mutex::new(Vec::new()));
        let appends = Arc::new(AtomicUsize::new(0));
        let dev = Arc::new(test_device(
            Box::new(SlowSink {
                out: out.clone(),
                appends: appends.clone(),
            }),
            1000,
        ));
        let before = appends.load(Ordering::SeqCst);
        let mut tasks = Vec::new();
        for i in 0..200 {
            let dev = dev.clone();
            tasks.push(tokio::spawn(async move { dev.log(&record(i)).await }));
        }
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        let batches = appends.load(Ordering::SeqCst) - before;
        assert!(batches < 100, "200 entries took {batches} writes");
        dev.close().unwrap();
        let text = String::from_utf8(out.lock().unwrap().clone()).unwrap();
        let seqs: Vec<u64> = text
            .lines()
            .map(|l| Fields::parse(l.as_bytes()).unwrap())
            .filter(|f| !f.is_checkpoint() && !f.is_header())
            .map(|f| f.seq.unwrap())
            .collect();
        assert_eq!(seqs, (1..=200).collect::<Vec<u64>>());
    }

    /// A writer that fails every write, like a full disk.
    struct FailingWriter;

    impl Write for FailingWriter {
        fn write(&mut self, _buf: &[u8]) -> io::Result<usize> {
            Err(io::Error::other("injected: no space left on device"))
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// Accepts the header, fails afterwards.
    struct FailAfterHeader {
        writes: usize,
    }

    impl Write for FailAfterHeader {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.writes += 1;
            if self.writes > 1 {
                FailingWriter.write(buf)
            } else {
                Ok(buf.len())
            }
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn failing_writer_fails_at_open() {
        let pkcs8 = generate_signing_key().unwrap();
        let key = Ed25519KeyPair::from_pkcs8(&pkcs8).unwrap();
        let hmac_key = SaltKey::new(b"salt");
        let err = FileDevice::with_sink(
            "test".to_owned(),
            Box::new(WriterSink(FailingWriter)),
            key,
            hmac_key,
            FormatOptions::default(),
            10,
        )
        .unwrap_err();
        assert!(matches!(err, AuditError::Io { .. }));
    }

    #[tokio::test]
    async fn fail_closed_when_the_only_device_fails() {
        let broker = AuditBroker::new();
        let dev = test_device(Box::new(WriterSink(FailAfterHeader { writes: 0 })), 10);
        broker.insert_device("failing/", dev).unwrap();
        let err = broker.log(&record(0)).await.unwrap_err();
        assert!(matches!(err, AuditError::AllFailed(_)), "{err}");
        assert!(err.to_string().contains("no space left"), "{err}");
        // A stream cannot take a partial write back: the device stays failed.
        let err = broker.log(&record(1)).await.unwrap_err();
        assert!(err.to_string().contains("refuses entries"), "{err}");
    }

    #[tokio::test]
    async fn one_good_device_is_enough() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let broker = AuditBroker::new();
        broker
            .insert_device(
                "failing/",
                test_device(Box::new(WriterSink(FailAfterHeader { writes: 0 })), 10),
            )
            .unwrap();
        broker
            .enable(
                "file",
                file_config(&path, &generate_signing_key().unwrap(), 10),
            )
            .unwrap();
        broker.log(&record(0)).await.unwrap();
        broker.disable("file/").unwrap();
        assert_eq!(entry_seqs(&path), vec![1]);
    }

    /// A file sink whose writes fail on demand, to check the rollback.
    #[tokio::test]
    async fn failed_file_write_is_rolled_back_and_chain_continues() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let pkcs8 = generate_signing_key().unwrap();
        let key = Ed25519KeyPair::from_pkcs8(&pkcs8).unwrap();
        let (inner, state) = open_file(&path, Some(0o600), &key, None).unwrap();
        let fail = Arc::new(AtomicUsize::new(0));
        struct Flaky {
            inner: FileSink,
            fail: Arc<AtomicUsize>,
        }
        impl Sink for Flaky {
            fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
                if self.fail.load(Ordering::SeqCst) == 1 {
                    // Half of the batch reaches the file, then the disk is full.
                    self.inner.file.write_all(&bytes[..bytes.len() / 2])?;
                    return Err(io::Error::other("injected: disk full"));
                }
                self.inner.append(bytes)
            }
            fn rollback(&mut self) -> io::Result<()> {
                self.inner.rollback()
            }
            fn sidecar(&self) -> Option<(PathBuf, u32)> {
                self.inner.sidecar()
            }
        }
        let public_key = key.public_key().as_ref().to_vec();
        let dev = FileDevice::spawn(
            path.display().to_string(),
            Box::new(Flaky {
                inner,
                fail: fail.clone(),
            }),
            key,
            SaltKey::new(b"salt"),
            FormatOptions::default(),
            1000,
            state,
        )
        .unwrap();
        dev.log(&record(0)).await.unwrap();
        fail.store(1, Ordering::SeqCst);
        assert!(dev.log(&record(1)).await.is_err());
        fail.store(0, Ordering::SeqCst);
        dev.log(&record(2)).await.unwrap();
        dev.close().unwrap();
        assert_eq!(entry_seqs(&path), vec![1, 2]);
        assert!(matches!(
            verify_file(&path, Some(&public_key)),
            VerifyReport::Ok(_)
        ));
    }

    /// A request entry and its response entry queued together are written
    /// next to each other in one batch, or neither is.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_pair_of_entries_is_written_together_or_not_at_all() {
        let log = MemoryLog::default();
        let dev = Arc::new(log.device());
        let (request, response) = (record(0), record(1));
        log.fail_next.store(1, Ordering::SeqCst);
        let before = log.appends.load(Ordering::SeqCst);
        let rx = dev
            .submit(
                &[&request.entry(), &response.entry()],
                &mut TokenMemo::default(),
            )
            .unwrap();
        assert!(dev.wait(rx).await.is_err());
        assert_eq!(log.appends.load(Ordering::SeqCst), before + 1);
        assert!(log.entries().is_empty());
        // With other entries queued around them, from other tasks.
        let mut tasks = Vec::new();
        for i in 0..50 {
            let pair = Arc::clone(&dev);
            tasks.push(tokio::spawn(async move {
                let (a, b) = (record(2 * i), record(2 * i + 1));
                let rx = pair
                    .submit(&[&a.entry(), &b.entry()], &mut TokenMemo::default())
                    .unwrap();
                pair.wait(rx).await
            }));
            let dev = Arc::clone(&dev);
            tasks.push(tokio::spawn(
                async move { dev.log(&record(1000 + i)).await },
            ));
        }
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        let entries = log.entries();
        assert_eq!(entries.len(), 150);
        let ids: Vec<&str> = entries
            .iter()
            .map(|e| e["request"]["id"].as_str().unwrap())
            .collect();
        for (i, id) in ids.iter().enumerate() {
            let n: usize = id.trim_start_matches("req-").parse().unwrap();
            if n < 1000 && n.is_multiple_of(2) {
                assert_eq!(ids[i + 1], format!("req-{}", n + 1), "{ids:?}");
            }
        }
    }
}
