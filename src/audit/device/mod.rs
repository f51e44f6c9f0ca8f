//! Audit devices: a file (or stdout) fed by one writer thread with group
//! commit, carrying the hash chain and the signed checkpoints.
//!
//! Callers format their entry on their own task (hashing with the device's
//! salt), then queue it on the device's channel with a oneshot sender; a
//! request entry and its response entry can be queued as one message, which
//! lands in one batch, its entries next to each other (all written or none).
//! [`FileDevice`] is that caller's side: it opens the device, formats and
//! queues entries and waits for their answer. The rest, by what it does:
//!
//! * `settings`: what a [`DeviceConfig`] asks for, checked;
//! * `sink`: where the lines go (a file and its sidecar, or a stream);
//! * `writer`: the writer thread (batches, chain, checkpoint lines, the
//!   sync, and what a failed write leaves behind);
//! * `background`: with `durability=background`, the thread that syncs
//!   what the writer wrote and only then passes its checkpoint lines on;
//! * `sidecar`: the `<FILE>.checkpoint` sidecar, replaced by a thread of its
//!   own off the commit path;
//! * `resume`: where a chain starts: a new header, or the chain of an existing
//!   file resumed after its head and tail are checked.

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ring::signature::{Ed25519KeyPair, KeyPair as _};
use tokio::sync::oneshot;
use zeroize::Zeroize;

use super::config::DeviceConfig;
use super::error::AuditError;
use super::format::{AuditRecord, Entry, FormatOptions, Formatter, SaltKey, TokenMemo};

mod anchor;
mod background;
mod resume;
mod rotate;
mod settings;
mod sidecar;
mod sink;
#[cfg(test)]
pub(crate) mod tests;
mod writer;

pub use anchor::CheckpointStore;
pub use settings::DEFAULT_CHECKPOINT_INTERVAL;
pub use sidecar::sidecar_path;
pub(crate) use sink::{Sink, WriterSink};

use background::BackgroundSync;
use resume::{new_chain, open_file};
use settings::{Durability, Settings, Target};
use sidecar::SidecarWorker;
use writer::{ChainState, Msg, Queued, Writer};

/// The sending end of a caller's oneshot answer (its receiving end is a
/// [`Receipt`]).
type Ack = oneshot::Sender<Result<(), AuditError>>;

/// A running audit device: a file, or stdout (same chain and checkpoint
/// lines, no sidecar, a new header each time it is opened).
pub struct FileDevice {
    /// Unique per opened device: tells apart two devices (two salts) that
    /// were at the same path at different times.
    id: u64,
    target: String,
    canonical: Option<PathBuf>,
    formatter: Formatter,
    public_key: Vec<u8>,
    tx: mpsc::Sender<Msg>,
    thread: Mutex<Option<JoinHandle<Result<(), AuditError>>>>,
}

impl fmt::Debug for FileDevice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileDevice")
            .field("target", &self.target)
            .field("public_key", &B64.encode(&self.public_key))
            .field("format", &self.formatter.options())
            .finish_non_exhaustive()
    }
}

/// A received oneshot answer for one queued entry.
pub(crate) type Receipt = oneshot::Receiver<Result<(), AuditError>>;

impl FileDevice {
    /// Opens (creating, or resuming the chain of) the device's file, or starts
    /// a new chain on stdout, and starts its writer thread. Blocking: file I/O
    /// and an fsync; call it from `spawn_blocking` in async code.
    pub fn open(mut config: DeviceConfig) -> Result<Self, AuditError> {
        let result = Self::open_inner(&config);
        config.salt.zeroize();
        config.signing_key.zeroize();
        result
    }

    fn open_inner(config: &DeviceConfig) -> Result<Self, AuditError> {
        let settings = Settings::from_config(config)?;
        if config.salt.is_empty() {
            return Err(AuditError::Config("the device needs a salt".to_owned()));
        }
        let key =
            Ed25519KeyPair::from_pkcs8_maybe_unchecked(&config.signing_key).map_err(|_| {
                AuditError::Config("signing_key is not an Ed25519 PKCS#8 key".to_owned())
            })?;
        let hmac_key = SaltKey::new(&config.salt);
        match &settings.target {
            Target::Stdout => Self::with_sink(
                "stdout".to_owned(),
                Box::new(WriterSink(io::stdout())),
                key,
                hmac_key,
                settings.format,
                settings.interval,
            ),
            Target::File(path) => {
                let target = path.display().to_string();
                let canonical = canonical_path(path);
                let anchor = match &config.checkpoints {
                    Some(store) => store.load().map_err(|e| AuditError::Io {
                        target: target.clone(),
                        message: format!("the sealed checkpoint cannot be read: {e}"),
                    })?,
                    None => None,
                };
                let (sink, state) = open_file(path, settings.mode, &key, anchor)?;
                let mut device = Self::spawn_anchored(
                    target,
                    Box::new(sink),
                    key,
                    hmac_key,
                    settings.format,
                    settings.interval,
                    state,
                    config.checkpoints.clone(),
                    settings.durability,
                )?;
                device.canonical = Some(canonical);
                Ok(device)
            }
        }
    }

    /// A device on any sink, starting a new chain (header and a first
    /// checkpoint) on it.
    pub(crate) fn with_sink(
        target: String,
        mut sink: Box<dyn Sink>,
        key: Ed25519KeyPair,
        hmac_key: SaltKey,
        format: FormatOptions,
        interval: u64,
    ) -> Result<Self, AuditError> {
        let (bytes, state) = new_chain(&key, &crate::audit::chain::Start::GENESIS)?;
        sink.append(&bytes).map_err(|e| AuditError::Io {
            target: target.clone(),
            message: format!("header not written: {e}"),
        })?;
        Self::spawn(target, sink, key, hmac_key, format, interval, state)
    }

    fn spawn(
        target: String,
        sink: Box<dyn Sink>,
        key: Ed25519KeyPair,
        hmac_key: SaltKey,
        format: FormatOptions,
        interval: u64,
        state: ChainState,
    ) -> Result<Self, AuditError> {
        Self::spawn_anchored(
            target,
            sink,
            key,
            hmac_key,
            format,
            interval,
            state,
            None,
            Durability::Fsync,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn spawn_anchored(
        target: String,
        sink: Box<dyn Sink>,
        key: Ed25519KeyPair,
        hmac_key: SaltKey,
        format: FormatOptions,
        interval: u64,
        state: ChainState,
        anchor: Option<Arc<dyn CheckpointStore>>,
        durability: Durability,
    ) -> Result<Self, AuditError> {
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        let public_key = key.public_key().as_ref().to_vec();
        let (tx, rx) = mpsc::channel();
        let sidecar = sink
            .sidecar()
            .map(|(path, mode)| SidecarWorker::start(target.clone(), path, mode, anchor))
            .transpose()
            .map_err(|e| AuditError::Io {
                target: target.clone(),
                message: format!("sidecar thread not started: {e}"),
            })?;
        let background = match durability {
            Durability::Fsync => None,
            Durability::Background { sync_interval } => {
                let poster = sidecar.as_ref().map(SidecarWorker::poster);
                let started = sink.sync_target().and_then(|file| {
                    BackgroundSync::start(target.clone(), file, sync_interval, poster)
                });
                Some(started.map_err(|e| AuditError::Io {
                    target: target.clone(),
                    message: format!("background sync not started: {e}"),
                })?)
            }
        };
        let writer = Writer {
            target: target.clone(),
            sink,
            key,
            state,
            interval,
            failed: None,
            sidecar,
            background,
            buf: Vec::new(),
            unsigned_since: None,
        };
        let thread = std::thread::Builder::new()
            .name("audit-writer".to_owned())
            .spawn(move || writer.run(rx))
            .map_err(|e| AuditError::Io {
                target: target.clone(),
                message: format!("writer thread not started: {e}"),
            })?;
        Ok(Self {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            target,
            canonical: None,
            formatter: Formatter::new(hmac_key, format),
            public_key,
            tx,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// This open device's identity (never reused while the process runs).
    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    /// The file path, or `stdout`.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The raw 32-byte Ed25519 public key that signs this device's checkpoints
    /// (what `transitd audit verify -public-key=` takes, base64-encoded).
    pub fn public_key(&self) -> &[u8] {
        &self.public_key
    }

    pub(crate) fn canonical_target(&self) -> Option<&Path> {
        self.canonical.as_deref()
    }

    /// The salted HMAC of `value`, as `sys/audit-hash` answers it.
    pub fn hash(&self, value: &str) -> String {
        self.formatter.hash(value)
    }

    /// Formats entries (on the caller's thread; token HMACs come from and
    /// go to `memo`, this request's memo for this device) and queues them as
    /// one message: they are written one after the other in the same batch
    /// (one append, one sync), or none of them is. The receipt answers once
    /// they are durable, or only written with `durability=background` (or
    /// failed).
    pub(crate) fn submit(
        &self,
        entries: &[&Entry<'_>],
        memo: &mut TokenMemo,
    ) -> Result<Receipt, AuditError> {
        let entries = self
            .formatter
            .format_all(entries, memo)
            .map_err(|e| AuditError::Format(e.to_string()))?;
        let (ack, rx) = oneshot::channel();
        self.tx
            .send(Msg::Entry(Queued { entries, ack }))
            .map_err(|_| AuditError::Stopped(self.target.clone()))?;
        Ok(rx)
    }

    pub(crate) async fn wait(&self, rx: Receipt) -> Result<(), AuditError> {
        rx.await
            .map_err(|_| AuditError::Stopped(self.target.clone()))?
    }

    /// Records one entry; returns once it is durable (written, with
    /// `durability=background`).
    pub async fn log(&self, record: &AuditRecord) -> Result<(), AuditError> {
        let rx = self.submit(&[&record.entry()], &mut TokenMemo::default())?;
        self.wait(rx).await
    }

    /// Writes a checkpoint now (if any entry came since the last one) and
    /// updates the sidecar.
    pub async fn checkpoint(&self) -> Result<(), AuditError> {
        self.ask(|ack| Msg::Checkpoint { ack }).await
    }

    /// Follows the file to whatever is at its path now (`SIGHUP`, after log
    /// rotation): a file renamed or deleted is followed by a new one that
    /// continues the chain. The writer checks this before every batch anyway;
    /// this makes it happen now.
    pub async fn reopen(&self) -> Result<(), AuditError> {
        self.ask(|ack| Msg::Reopen { ack }).await
    }

    /// Send the writer a request and wait for its answer.
    async fn ask(&self, request: impl FnOnce(Ack) -> Msg) -> Result<(), AuditError> {
        let (ack, rx) = oneshot::channel();
        self.tx
            .send(request(ack))
            .map_err(|_| AuditError::Stopped(self.target.clone()))?;
        self.wait(rx).await
    }

    /// Writes everything queued, a final checkpoint and the sidecar, then
    /// stops the writer thread. Later entries fail with
    /// [`AuditError::Stopped`]. Blocking; idempotent.
    pub fn close(&self) -> Result<(), AuditError> {
        let handle = self
            .thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let Some(handle) = handle else {
            return Ok(());
        };
        let _ = self.tx.send(Msg::Shutdown);
        handle.join().unwrap_or_else(|_| {
            Err(AuditError::Io {
                target: self.target.clone(),
                message: "writer thread panicked".to_owned(),
            })
        })
    }
}

impl Drop for FileDevice {
    fn drop(&mut self) {
        if let Err(e) = self.close() {
            tracing::error!(device = %self.target, error = %e, "audit device did not close cleanly");
        }
    }
}

/// The path as the kernel resolves it, for spotting two devices on one file.
pub(crate) fn canonical_path(path: &Path) -> PathBuf {
    if let Ok(p) = fs::canonicalize(path) {
        return p;
    }
    match (path.parent(), path.file_name()) {
        (Some(dir), Some(name)) => {
            let dir = if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            };
            fs::canonicalize(dir).map_or_else(|_| path.to_path_buf(), |d| d.join(name))
        }
        _ => path.to_path_buf(),
    }
}
