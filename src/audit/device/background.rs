//! The background syncer of a file device with `durability=background`:
//! the writer answers its callers once a batch is written (in the page
//! cache: a process crash loses nothing), and this thread makes it durable
//! (`sync_data`) at most `sync_interval` after the oldest write not yet
//! synced. A power loss can take what was written since the last sync that
//! finished: at most `sync_interval` plus one sync's duration of entries.
//!
//! In this mode the syncer is the only way to the sidecar (and from there
//! to the anchor): the writer hands each batch's checkpoint line over with
//! the batch, and the syncer posts it only after a sync that started after
//! the batch was written has succeeded. So neither ever vouches for an
//! entry a power loss can take away; a file cut back to its last synced
//! length still verifies, its lost tail simply absent (as after a crash in
//! fsync mode before the entries were acknowledged).
//!
//! A failed sync is remembered ([`BackgroundSync::failure`]): the writer then
//! syncs each batch itself before answering, as in fsync mode, so no caller
//! hears "recorded" while the disk fails, until a sync succeeds again
//! ([`BackgroundSync::recovered`]). Checkpoint lines handed over before the
//! failure are dropped, never posted: the next durable one replaces them.

use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::Ack;
use super::sidecar::SidecarPoster;
use super::sink::SyncTarget;
use crate::audit::error::AuditError;

/// The syncer thread and what the writer shares with it.
pub(super) struct BackgroundSync {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
}

struct State {
    /// The file being written now (replaced when the writer follows a
    /// rotated file).
    file: Arc<dyn SyncTarget>,
    /// When the oldest write not yet synced was made.
    dirty_since: Option<Instant>,
    /// The newest checkpoint line not yet posted (a newer one replaces it).
    line: Option<Vec<u8>>,
    /// Callers of a forced checkpoint: answered once the sidecar holds
    /// everything handed over before them.
    acks: Vec<Ack>,
    /// Forced checkpoints wait: sync now, not at the deadline.
    urgent: bool,
    /// Why the last sync failed, until a sync succeeds again.
    failure: Option<String>,
    closed: bool,
}

/// What one round of the syncer takes from the shared state.
struct Round {
    dirty_since: Option<Instant>,
    line: Option<Vec<u8>>,
    acks: Vec<Ack>,
    file: Arc<dyn SyncTarget>,
}

impl BackgroundSync {
    pub(super) fn start(
        target: String,
        file: Box<dyn SyncTarget>,
        sync_interval: Duration,
        sidecar: Option<SidecarPoster>,
    ) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                file: Arc::from(file),
                dirty_since: None,
                line: None,
                acks: Vec::new(),
                urgent: false,
                failure: None,
                closed: false,
            }),
            wake: Condvar::new(),
        });
        let worker = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("audit-sync".to_owned())
            .spawn(move || worker.run(&target, sync_interval, sidecar.as_ref()))?;
        Ok(Self {
            shared,
            thread: Some(thread),
        })
    }

    /// After a batch: `written` says the file took bytes not yet synced;
    /// `line` (a checkpoint in the batch, or one already durable) and
    /// `acks` go on to the sidecar after the next sync that covers them.
    pub(super) fn hand_over(&self, written: bool, line: Option<Vec<u8>>, acks: Vec<Ack>) {
        if !written && line.is_none() && acks.is_empty() {
            return;
        }
        let mut state = self.shared.lock();
        if written && state.dirty_since.is_none() {
            state.dirty_since = Some(Instant::now());
        }
        if line.is_some() {
            state.line = line;
        }
        state.urgent |= !acks.is_empty();
        state.acks.extend(acks);
        drop(state);
        self.shared.wake.notify_one();
    }

    /// Why the last background sync failed, if no sync succeeded since.
    pub(super) fn failure(&self) -> Option<String> {
        self.shared.lock().failure.clone()
    }

    /// The writer synced a batch itself: the disk takes syncs again.
    pub(super) fn recovered(&self) {
        self.shared.lock().failure = None;
    }

    /// Syncs `file` from now on (the writer followed its file to a new one,
    /// after syncing the old one itself).
    pub(super) fn switch(&self, file: Box<dyn SyncTarget>) {
        self.shared.lock().file = Arc::from(file);
    }

    /// Syncs what is pending, posts its line, and stops the thread.
    pub(super) fn stop(&mut self) {
        let Some(thread) = self.thread.take() else {
            return;
        };
        self.shared.lock().closed = true;
        self.shared.wake.notify_one();
        if thread.join().is_err() {
            tracing::error!("audit background sync thread panicked");
        }
    }
}

impl Drop for BackgroundSync {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn run(&self, target: &str, sync_interval: Duration, sidecar: Option<&SidecarPoster>) {
        while let Some(round) = self.next_round(sync_interval) {
            let synced = match round.dirty_since {
                None => Ok(()),
                Some(since) => round.file.sync().inspect(|()| {
                    crate::metrics::metrics()
                        .audit_sync_lag
                        .record(since.elapsed().as_secs_f64());
                }),
            };
            match synced {
                Ok(()) => match sidecar {
                    Some(sidecar) => sidecar.post(round.line, round.acks),
                    None => {
                        for ack in round.acks {
                            let _ = ack.send(Ok(()));
                        }
                    }
                },
                Err(e) => {
                    let message = format!(
                        "background sync failed: {e}; entries are synced before they are \
                         acknowledged until a sync succeeds"
                    );
                    tracing::error!(device = %target, error = %e, "audit background sync failed");
                    self.lock().failure = Some(message.clone());
                    for ack in round.acks {
                        let _ = ack.send(Err(AuditError::Io {
                            target: target.to_owned(),
                            message: message.clone(),
                        }));
                    }
                }
            }
        }
    }

    /// Waits until a sync is due (the oldest unsynced write is
    /// `sync_interval` old, a forced checkpoint waits, or the device
    /// closes) or there is something durable to pass on; `None`: closed
    /// with nothing left.
    fn next_round(&self, sync_interval: Duration) -> Option<Round> {
        let mut state = self.lock();
        loop {
            let passing_on = state.line.is_some() || !state.acks.is_empty();
            match state.dirty_since {
                Some(since) => {
                    let due = since + sync_interval;
                    let now = Instant::now();
                    if state.urgent || state.closed || now >= due {
                        break;
                    }
                    state = self
                        .wake
                        .wait_timeout(state, due - now)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0;
                }
                None if passing_on => break,
                None if state.closed => return None,
                None => {
                    state = self
                        .wake
                        .wait(state)
                        .unwrap_or_else(PoisonError::into_inner);
                }
            }
        }
        state.urgent = false;
        Some(Round {
            dirty_since: state.dirty_since.take(),
            line: state.line.take(),
            acks: std::mem::take(&mut state.acks),
            file: Arc::clone(&state.file),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::fs::{self, File};
    use std::io::{self, Write as _};
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

    use ring::signature::Ed25519KeyPair;

    use super::*;
    use crate::audit::chain::Checkpoint;
    use crate::audit::device::anchor::CheckpointStore;
    use crate::audit::device::resume::open_file;
    use crate::audit::device::settings::Durability;
    use crate::audit::device::sidecar_path;
    use crate::audit::device::sink::{FileSink, Sink};
    use crate::audit::device::tests::{MemoryAnchor, record};
    use crate::audit::format::{FormatOptions, SaltKey};
    use crate::audit::verify::{VerifyReport, verify_file};
    use crate::audit::{FileDevice, generate_signing_key};

    /// What the tests see of, and do to, a device's syncs.
    #[derive(Clone, Default)]
    struct Probe {
        /// The file's length when the last successful sync began: what a
        /// power loss now leaves of the file.
        synced_len: Arc<AtomicU64>,
        /// Every sync (and every write that syncs) fails while set.
        failing: Arc<AtomicBool>,
        /// Background syncs wait while set.
        held: Arc<(Mutex<bool>, Condvar)>,
    }

    impl Probe {
        fn hold(&self, held: bool) {
            *self.held.0.lock().unwrap() = held;
            self.held.1.notify_all();
        }

        fn sync(&self, file: &File) -> io::Result<()> {
            let len = file.metadata()?.len();
            if self.failing.load(Ordering::SeqCst) {
                return Err(io::Error::other("injected: I/O error"));
            }
            file.sync_data()?;
            self.synced_len.fetch_max(len, Ordering::SeqCst);
            Ok(())
        }
    }

    struct ProbedFile {
        file: File,
        probe: Probe,
    }

    impl SyncTarget for ProbedFile {
        fn sync(&self) -> io::Result<()> {
            let mut held = self.probe.held.0.lock().unwrap();
            while *held {
                held = self.probe.held.1.wait(held).unwrap();
            }
            drop(held);
            self.probe.sync(&self.file)
        }
    }

    /// A file sink whose syncs the probe sees and can fail.
    struct ProbedSink {
        inner: FileSink,
        probe: Probe,
    }

    impl Sink for ProbedSink {
        fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
            if self.probe.failing.load(Ordering::SeqCst) {
                // Written, then the sync fails: `rollback` must cut it off.
                self.inner.file.write_all(bytes)?;
                return Err(io::Error::other("injected: I/O error"));
            }
            self.inner.write(bytes)?;
            self.probe.sync(&self.inner.file)
        }
        fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
            self.inner.write(bytes)
        }
        fn sync(&mut self) -> io::Result<()> {
            self.probe.sync(&self.inner.file)
        }
        fn sync_target(&self) -> io::Result<Box<dyn SyncTarget>> {
            Ok(Box::new(ProbedFile {
                file: self.inner.file.try_clone()?,
                probe: self.probe.clone(),
            }))
        }
        fn rollback(&mut self) -> io::Result<()> {
            self.inner.rollback()
        }
        fn sidecar(&self) -> Option<(PathBuf, u32)> {
            self.inner.sidecar()
        }
    }

    struct Probed {
        device: FileDevice,
        probe: Probe,
        anchor: Arc<MemoryAnchor>,
    }

    fn probed_device(path: &Path, checkpoint_interval: u64, sync_interval: Duration) -> Probed {
        let pkcs8 = generate_signing_key().unwrap();
        let key = Ed25519KeyPair::from_pkcs8(&pkcs8).unwrap();
        let (inner, state) = open_file(path, Some(0o600), &key, None).unwrap();
        let probe = Probe::default();
        // Opening syncs the header.
        probe.synced_len.store(inner.len, Ordering::SeqCst);
        let anchor = MemoryAnchor::shared();
        let device = FileDevice::spawn_anchored(
            path.display().to_string(),
            Box::new(ProbedSink {
                inner,
                probe: probe.clone(),
            }),
            key,
            SaltKey::new(b"salt"),
            FormatOptions::default(),
            checkpoint_interval,
            state,
            Some(anchor.clone()),
            Durability::Background { sync_interval },
        )
        .unwrap();
        Probed {
            device,
            probe,
            anchor,
        }
    }

    /// What a power loss leaves right now: the sidecar (read first: it
    /// only ever moves forward) and the file cut to its last synced length.
    fn power_loss_copy(path: &Path, probe: &Probe, copy: &Path) {
        let sidecar = fs::read(sidecar_path(path)).unwrap();
        let synced = probe.synced_len.load(Ordering::SeqCst);
        let mut bytes = fs::read(path).unwrap();
        bytes.truncate(usize::try_from(synced).unwrap());
        fs::write(copy, bytes).unwrap();
        fs::write(sidecar_path(copy), sidecar).unwrap();
    }

    /// Entries are answered before they are synced, and the background
    /// syncer syncs them later with no further write or request.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn answered_once_written_and_synced_later() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        // A checkpoint after every entry: no idle checkpoint batch comes later.
        let Probed { device, probe, .. } = probed_device(&path, 1, Duration::from_millis(5));
        probe.hold(true);
        let logged = tokio::time::timeout(Duration::from_secs(30), device.log(&record(0))).await;
        logged
            .expect("the answer waited for the held sync")
            .unwrap();
        let len = fs::metadata(&path).unwrap().len();
        assert!(probe.synced_len.load(Ordering::SeqCst) < len);
        let sidecar_seq = || {
            Checkpoint::parse(&fs::read(sidecar_path(&path)).unwrap())
                .unwrap()
                .seq
        };
        assert_eq!(sidecar_seq(), 0, "the sidecar named an unsynced entry");
        probe.hold(false);
        let deadline = Instant::now() + Duration::from_secs(10);
        while sidecar_seq() != 1 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(sidecar_seq(), 1, "the entry was never synced");
        assert!(probe.synced_len.load(Ordering::SeqCst) >= len);
        device.close().unwrap();
    }

    /// Under concurrent load, whatever moment power is lost, the file cut
    /// to its last synced length verifies against the sidecar, and the
    /// anchor names no entry beyond it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn checkpoints_never_vouch_for_unsynced_entries() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let copy = dir.path().join("power-loss.log");
        let Probed {
            device,
            probe,
            anchor,
        } = probed_device(&path, 2, Duration::from_millis(3));
        let public_key = device.public_key().to_vec();
        let device = Arc::new(device);
        let mut tasks = Vec::new();
        for t in 0..8 {
            let device = Arc::clone(&device);
            tasks.push(tokio::spawn(async move {
                for i in 0..40 {
                    device.log(&record(t * 100 + i)).await.unwrap();
                }
            }));
        }
        let mut snapshots = 0;
        while !tasks.iter().all(|t| t.is_finished()) || snapshots < 20 {
            let anchored = anchor.load().unwrap().map_or(0, |a| a.seq);
            power_loss_copy(&path, &probe, &copy);
            match verify_file(&copy, Some(&public_key)) {
                VerifyReport::Ok(v) => assert!(anchored <= v.last_seq, "anchor {anchored}: {v:?}"),
                other => panic!("power loss after snapshot {snapshots}: {other}"),
            }
            snapshots += 1;
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        for t in tasks {
            t.await.unwrap();
        }
        device.checkpoint().await.unwrap();
        power_loss_copy(&path, &probe, &copy);
        let report = verify_file(&copy, Some(&public_key));
        assert!(
            matches!(&report, VerifyReport::Ok(v) if v.last_seq == 320 && v.sidecar_seq == Some(320)),
            "{report}"
        );
        device.close().unwrap();
    }

    /// A failed background sync: callers are no longer answered before a
    /// sync, so they see the failure, until a sync succeeds again; what was
    /// refused is not in the file, and the log verifies.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_sync_stops_answers_until_syncs_succeed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let Probed { device, probe, .. } = probed_device(&path, 1000, Duration::from_millis(5));
        device.log(&record(0)).await.unwrap();
        probe.failing.store(true, Ordering::SeqCst);
        // Written before the disk is known to fail: answered, as Vault does.
        device.log(&record(1)).await.unwrap();
        // A forced checkpoint syncs at once, and reports the failure.
        let err = device.checkpoint().await.unwrap_err();
        assert!(err.to_string().contains("background sync failed"), "{err}");
        for i in 2..4 {
            let err = device.log(&record(i)).await.unwrap_err();
            assert!(err.to_string().contains("injected"), "{err}");
        }
        probe.failing.store(false, Ordering::SeqCst);
        // Synced by the writer, then background syncing resumes.
        device.log(&record(4)).await.unwrap();
        device.log(&record(5)).await.unwrap();
        device.checkpoint().await.unwrap();
        device.close().unwrap();
        let ids: Vec<String> = fs::read_to_string(&path)
            .unwrap()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter_map(|v| v["request"]["id"].as_str().map(str::to_owned))
            .collect();
        assert_eq!(ids, ["req-0", "req-1", "req-4", "req-5"]);
        let report = verify_file(&path, Some(device.public_key()));
        assert!(
            matches!(&report, VerifyReport::Ok(v) if v.last_seq == 4 && v.sidecar_seq == Some(4)),
            "{report}"
        );
    }
}
