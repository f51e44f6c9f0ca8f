//! Audit devices: a file (or stdout) fed by one writer thread with group
//! commit, carrying the hash chain and the signed checkpoints.
//!
//! Callers format their entry on their own task (hashing with the device's
//! salt), then queue it on the device's channel with a oneshot sender; a
//! request entry and its response entry can be queued as one message, which
//! lands in one batch, its entries next to each other (all written or none).
//! The writer thread takes everything queued, numbers and chains each entry
//! straight into the batch buffer, adds a checkpoint line wherever
//! `checkpoint_interval` entries have passed since the last one, writes the
//! whole batch with one `write_all`, makes it durable (`sync_data` for
//! files), and only then answers every caller of the batch.
//!
//! The sidecar checkpoint (temporary file, two fsyncs, rename) is replaced by
//! a small thread of its own, so queued callers do not wait for it: the
//! writer hands it the newest checkpoint line only after the batch holding
//! that line is durable, and it writes only the newest line it holds, in
//! order, so the sidecar never claims more than the file holds durably.
//! [`FileDevice::checkpoint`] and [`FileDevice::close`] return only once the
//! sidecar is written.
//!
//! A failed write answers every caller of the batch with the error. A file
//! device then truncates back to the end of its last good batch and rewinds
//! its sequence and chain, so a failed entry leaves no trace and later entries
//! chain on cleanly; if even that fails (and always for stdout, which cannot
//! take bytes back) the device refuses every later entry until it is disabled
//! and enabled again, because the file's chain state is no longer known. A
//! file that is deleted or renamed while open keeps receiving entries through
//! the open descriptor (there is no reopen).
//!
//! Reopening an existing file resumes its chain: the header must carry this
//! device's public key, the last chained line must chain from the one before
//! it, a checkpoint after it must be validly signed and match it, and the
//! sidecar must be validly signed and must not be ahead of (or disagree with)
//! the file's end. An incomplete last line, the trace of a crash in the middle
//! of a write that nobody was told succeeded, is cut off. Any other
//! disagreement refuses to open the device: run `transitd audit verify`, then
//! move the file and its sidecar aside to start a new log. Only the head and
//! tail are read; a full check of the middle is `verify`'s job.

use std::fmt;
use std::fs::{self, File, OpenOptions, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{Ed25519KeyPair, KeyPair as _};
use time::OffsetDateTime;
use tokio::sync::oneshot;
use zeroize::Zeroize;

use super::chain::{self, Chain, Checkpoint, Fields};
use super::format::{AuditRecord, Entry, FormatOptions, Formatter, SaltKey, TokenMemo};
use super::{AuditError, DeviceConfig};

/// Entries between two checkpoint lines unless `checkpoint_interval` says otherwise.
pub const DEFAULT_CHECKPOINT_INTERVAL: u64 = 1000;

const MAX_BATCH_ENTRIES: usize = 4096;
const MAX_BATCH_BYTES: usize = 8 << 20;
/// A header line is far shorter; a first line longer than this is not one.
const MAX_HEADER_BYTES: u64 = 64 * 1024;

/// `<FILE>.checkpoint`: where a file device keeps its latest checkpoint line.
pub fn sidecar_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".checkpoint");
    PathBuf::from(s)
}

type Ack = oneshot::Sender<Result<(), AuditError>>;

/// Entries waiting for the writer: one, or a request entry and its
/// response entry, written in the same batch one after the other, or not
/// at all; one answer for all of them.
struct Queued {
    entries: Vec<Vec<u8>>,
    ack: Ack,
}

enum Msg {
    Entry(Queued),
    Checkpoint { ack: Ack },
    Shutdown,
}

/// Where a device's lines go.
pub(crate) trait Sink: Send + 'static {
    /// Writes all of `bytes` and makes them durable.
    fn append(&mut self, bytes: &[u8]) -> io::Result<()>;
    /// Takes back whatever a failed `append` may have written.
    fn rollback(&mut self) -> io::Result<()>;
    /// Where checkpoint lines are kept outside the log (the sidecar file and
    /// its mode), if anywhere.
    fn sidecar(&self) -> Option<(PathBuf, u32)> {
        None
    }
}

/// A regular file opened for appending, plus its sidecar.
struct FileSink {
    file: File,
    /// End of the last durable batch.
    len: u64,
    sidecar: PathBuf,
    mode: u32,
}

impl Sink for FileSink {
    fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.file.write_all(bytes)?;
        self.file.sync_data()?;
        self.len += bytes.len() as u64;
        Ok(())
    }

    fn rollback(&mut self) -> io::Result<()> {
        self.file.set_len(self.len)?;
        self.file.sync_data()
    }

    fn sidecar(&self) -> Option<(PathBuf, u32)> {
        Some((self.sidecar.clone(), self.mode))
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

/// Writes `path` by way of a temporary file: write, fsync, rename, fsync the
/// directory.
fn write_atomically(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
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

/// Where the chain stands.
#[derive(Debug, Clone, Copy)]
struct ChainState {
    seq: u64,
    chain: Chain,
    last_checkpoint: u64,
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

/// The thread that replaces `<FILE>.checkpoint` (temporary file, fsync,
/// rename, directory fsync: two fsyncs), off the writer's commit path. The
/// writer hands it a checkpoint line only once the batch holding that line
/// is durable, and the thread only ever writes the newest line it was
/// handed, in order: the sidecar never claims more than the file holds.
struct SidecarWorker {
    shared: Arc<SidecarShared>,
    thread: Option<JoinHandle<Result<(), String>>>,
}

impl SidecarWorker {
    fn start(target: String, path: PathBuf, mode: u32) -> io::Result<Self> {
        let shared = Arc::new(SidecarShared {
            slot: Mutex::new(SidecarSlot::default()),
            wake: Condvar::new(),
        });
        let worker = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("audit-sidecar".to_owned())
            .spawn(move || Self::run(&worker, &target, &path, mode))?;
        Ok(Self {
            shared,
            thread: Some(thread),
        })
    }

    fn run(shared: &SidecarShared, target: &str, path: &Path, mode: u32) -> Result<(), String> {
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
    fn post(&self, line: Option<Vec<u8>>, acks: Vec<Ack>) {
        if line.is_none() && acks.is_empty() {
            return;
        }
        let mut slot = self
            .shared
            .slot
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if line.is_some() {
            slot.line = line;
        }
        slot.acks.extend(acks);
        drop(slot);
        self.shared.wake.notify_one();
    }

    /// Writes what was handed over, stops the thread and returns the
    /// outcome of its last write.
    fn finish(mut self) -> Result<(), String> {
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

/// The writer thread's side of a device.
struct Writer {
    target: String,
    sink: Box<dyn Sink>,
    key: Ed25519KeyPair,
    state: ChainState,
    interval: u64,
    /// Set when a failed write could not be undone.
    failed: Option<String>,
    sidecar: Option<SidecarWorker>,
    /// The batch being built, kept between batches for its capacity.
    buf: Vec<u8>,
}

impl Writer {
    fn run(mut self, rx: mpsc::Receiver<Msg>) -> Result<(), AuditError> {
        let mut stopping = false;
        while !stopping {
            let Ok(first) = rx.recv() else {
                break;
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
            for msg in batch {
                match msg {
                    Msg::Entry(q) if stopping => {
                        let _ = q.ack.send(Err(AuditError::Stopped(self.target.clone())));
                    }
                    Msg::Checkpoint { ack } if stopping => {
                        let _ = ack.send(Err(AuditError::Stopped(self.target.clone())));
                    }
                    Msg::Entry(q) => entries.push(q),
                    Msg::Checkpoint { ack } => forced.push(ack),
                    Msg::Shutdown => stopping = true,
                }
            }
            self.commit(entries, forced);
        }
        self.final_checkpoint()
    }

    fn io_error(&self, message: String) -> AuditError {
        AuditError::Io {
            target: self.target.clone(),
            message,
        }
    }

    fn checkpoint_line(&self) -> Vec<u8> {
        chain::checkpoint_line(
            &self.key,
            self.state.seq,
            &self.state.chain,
            OffsetDateTime::now_utc(),
        )
    }

    /// Hands `line` (durable in the file by now) and `forced` callers to the
    /// sidecar thread; without a sidecar the callers are answered at once.
    fn to_sidecar(&self, line: Option<Vec<u8>>, forced: Vec<Ack>) {
        match &self.sidecar {
            Some(sidecar) => sidecar.post(line, forced),
            None => {
                for ack in forced {
                    let _ = ack.send(Ok(()));
                }
            }
        }
    }

    /// Writes one batch and answers its callers.
    fn commit(&mut self, entries: Vec<Queued>, forced: Vec<Ack>) {
        if entries.is_empty() && forced.is_empty() {
            return;
        }
        if let Some(message) = &self.failed {
            let err = self.io_error(message.clone());
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
        if !forced.is_empty() && self.state.seq > self.state.last_checkpoint {
            let line = self.checkpoint_line();
            buf.extend_from_slice(&line);
            last_checkpoint_line = Some(line);
            self.state.last_checkpoint = self.state.seq;
        }
        if buf.is_empty() {
            // Nothing new: a forced checkpoint is answered once the sidecar
            // holds the newest line handed over so far.
            self.to_sidecar(None, forced);
            self.buf = buf;
            return;
        }
        match self.sink.append(&buf) {
            Ok(()) => {
                for ack in acks {
                    let _ = ack.send(Ok(()));
                }
                // The batch holding the line is durable: the sidecar may say so.
                self.to_sidecar(last_checkpoint_line, forced);
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
                tracing::error!(device = %self.target, error = %e, "audit write failed");
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

/// Where a device writes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    File(PathBuf),
    Stdout,
}

/// What a [`DeviceConfig`] asks for, checked.
#[derive(Debug)]
struct Settings {
    target: Target,
    /// `None`: keep an existing file's mode (Vault's `mode=0000`).
    mode: Option<u32>,
    interval: u64,
    format: FormatOptions,
}

/// Go's `strconv.ParseBool`.
fn parse_bool(name: &str, v: &str) -> Result<bool, AuditError> {
    match v {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err(AuditError::Config(format!(
            "{name}: {v:?} is not a boolean"
        ))),
    }
}

impl Settings {
    fn from_config(config: &DeviceConfig) -> Result<Self, AuditError> {
        let opt = |k: &str| config.options.get(k).map(String::as_str);
        let target = match config.kind.as_str() {
            "file" => {
                let path = opt("file_path")
                    .or_else(|| opt("path"))
                    .ok_or_else(|| AuditError::Config("file_path is required".to_owned()))?;
                if path.eq_ignore_ascii_case("stdout") {
                    Target::Stdout
                } else if path.eq_ignore_ascii_case("discard") {
                    return Err(AuditError::Config(
                        "file_path=discard is not supported: a discarded entry is not audited"
                            .to_owned(),
                    ));
                } else if path.is_empty() {
                    return Err(AuditError::Config("file_path is empty".to_owned()));
                } else {
                    Target::File(PathBuf::from(path))
                }
            }
            "stdout" => Target::Stdout,
            other => {
                return Err(AuditError::Config(format!(
                    "unsupported audit device type {other:?}"
                )));
            }
        };
        if let Some(f) = opt("format")
            && f != "json"
        {
            return Err(AuditError::Config(format!(
                "unsupported format {f:?}: only json"
            )));
        }
        if opt("prefix").is_some_and(|p| !p.is_empty()) {
            return Err(AuditError::Config(
                "prefix is not supported: every line must be a chained JSON object".to_owned(),
            ));
        }
        let mut format = FormatOptions::default();
        if let Some(v) = opt("hmac_accessor") {
            format.hmac_accessor = parse_bool("hmac_accessor", v)?;
        }
        if let Some(v) = opt("log_raw") {
            format.log_raw = parse_bool("log_raw", v)?;
        }
        let interval = match opt("checkpoint_interval") {
            None => DEFAULT_CHECKPOINT_INTERVAL,
            Some(v) => match v.parse::<u64>() {
                Ok(n) if n >= 1 => n,
                _ => {
                    return Err(AuditError::Config(format!(
                        "checkpoint_interval: {v:?} is not a whole number of entries >= 1"
                    )));
                }
            },
        };
        let mode = match opt("mode") {
            None => Some(0o600),
            Some(v) => match u32::from_str_radix(v, 8) {
                Ok(0) => None,
                // Like Vault: never executable.
                Ok(m) if m <= 0o777 => Some(m & !0o111),
                _ => {
                    return Err(AuditError::Config(format!(
                        "mode: {v:?} is not an octal file mode"
                    )));
                }
            },
        };
        Ok(Self {
            target,
            mode,
            interval,
            format,
        })
    }
}

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
                let (sink, state) = open_file(path, settings.mode, &key)?;
                let mut device = Self::spawn(
                    target,
                    Box::new(sink),
                    key,
                    hmac_key,
                    settings.format,
                    settings.interval,
                    state,
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
        let (bytes, state) = new_chain(&key)?;
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
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        let public_key = key.public_key().as_ref().to_vec();
        let (tx, rx) = mpsc::channel();
        let sidecar = sink
            .sidecar()
            .map(|(path, mode)| SidecarWorker::start(target.clone(), path, mode))
            .transpose()
            .map_err(|e| AuditError::Io {
                target: target.clone(),
                message: format!("sidecar thread not started: {e}"),
            })?;
        let writer = Writer {
            target: target.clone(),
            sink,
            key,
            state,
            interval,
            failed: None,
            sidecar,
            buf: Vec::new(),
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
    /// they are durable (or failed).
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

    /// Records one entry; returns once it is durable.
    pub async fn log(&self, record: &AuditRecord) -> Result<(), AuditError> {
        let rx = self.submit(&[&record.entry()], &mut TokenMemo::default())?;
        self.wait(rx).await
    }

    /// Writes a checkpoint now (if any entry came since the last one) and
    /// updates the sidecar.
    pub async fn checkpoint(&self) -> Result<(), AuditError> {
        let (ack, rx) = oneshot::channel();
        self.tx
            .send(Msg::Checkpoint { ack })
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

/// A header with a fresh random nonce and a checkpoint of it.
fn new_chain(key: &Ed25519KeyPair) -> Result<(Vec<u8>, ChainState), AuditError> {
    let mut nonce = [0u8; 32];
    SystemRandom::new()
        .fill(&mut nonce)
        .map_err(|_| AuditError::Config("no randomness for the header nonce".to_owned()))?;
    let now = OffsetDateTime::now_utc();
    let body = chain::header_body(key, &nonce, now);
    let chain_value = chain::link(&chain::GENESIS, &body);
    let mut bytes = chain::seal(&body, &chain_value);
    bytes.extend_from_slice(&chain::checkpoint_line(key, 0, &chain_value, now));
    Ok((
        bytes,
        ChainState {
            seq: 0,
            chain: chain_value,
            last_checkpoint: 0,
        },
    ))
}

/// Opens `path` for appending and works out where its chain stands.
fn open_file(
    path: &Path,
    mode: Option<u32>,
    key: &Ed25519KeyPair,
) -> Result<(FileSink, ChainState), AuditError> {
    let target = path.display().to_string();
    let io_err = |what: &str, e: io::Error| AuditError::Io {
        target: target.clone(),
        message: format!("{what}: {e}"),
    };
    let existed = path.exists();
    let file = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .mode(mode.unwrap_or(0o600))
        .open(path)
        .map_err(|e| io_err("cannot open for appending", e))?;
    let meta = file.metadata().map_err(|e| io_err("cannot stat", e))?;
    if !meta.is_file() {
        return Err(AuditError::Config(format!(
            "{target} is not a regular file (use file_path=stdout for a stream)"
        )));
    }
    let sidecar_mode = mode.unwrap_or(0o600);
    if existed && let Some(m) = mode {
        file.set_permissions(Permissions::from_mode(m))
            .map_err(|e| io_err("cannot set mode", e))?;
    }
    let mut sink = FileSink {
        file,
        len: meta.len(),
        sidecar: sidecar_path(path),
        mode: sidecar_mode,
    };
    let state = resume(&mut sink, key, &target).map_err(|e| match e {
        ResumeError::Io(what, e) => io_err(&what, e),
        ResumeError::Tampered(message) => AuditError::Tampered {
            target: target.clone(),
            message,
        },
        ResumeError::KeyMismatch => AuditError::Tampered {
            target: target.clone(),
            message: "the file's header names another signing key (rotate the file to change keys)"
                .to_owned(),
        },
    })?;
    Ok((sink, state))
}

enum ResumeError {
    Io(String, io::Error),
    Tampered(String),
    KeyMismatch,
}

fn rio(what: &str) -> impl FnOnce(io::Error) -> ResumeError + '_ {
    move |e| ResumeError::Io(what.to_owned(), e)
}

/// The line that ends just before `end` (which follows a `\n`, or is the
/// file's end after the last `\n`): its start offset and bytes without `\n`.
fn line_before(file: &File, end: u64) -> io::Result<(u64, Vec<u8>)> {
    // `end - 1` is the line's own '\n'.
    let stop = end.saturating_sub(1);
    let mut start = stop;
    let mut chunk = vec![0u8; 8192];
    loop {
        if start == 0 {
            break;
        }
        let from = start.saturating_sub(chunk.len() as u64);
        let n = usize::try_from(start - from).unwrap_or(chunk.len());
        file.read_exact_at(&mut chunk[..n], from)?;
        if let Some(i) = chunk[..n].iter().rposition(|&b| b == b'\n') {
            start = from + i as u64 + 1;
            break;
        }
        start = from;
    }
    let mut line = vec![0u8; usize::try_from(stop - start).map_err(io::Error::other)?];
    file.read_exact_at(&mut line, start)?;
    Ok((start, line))
}

/// Offset just past the last `\n` at or before `len`, if any.
fn end_of_last_line(file: &File, len: u64) -> io::Result<Option<u64>> {
    let mut pos = len;
    let mut chunk = vec![0u8; 8192];
    while pos > 0 {
        let from = pos.saturating_sub(chunk.len() as u64);
        let n = usize::try_from(pos - from).unwrap_or(chunk.len());
        file.read_exact_at(&mut chunk[..n], from)?;
        if let Some(i) = chunk[..n].iter().rposition(|&b| b == b'\n') {
            return Ok(Some(from + i as u64 + 1));
        }
        pos = from;
    }
    Ok(None)
}

/// A chained line read back: its seq, chain value and body.
struct Chained {
    seq: u64,
    chain: Chain,
    body: Vec<u8>,
}

fn parse_chained(line: &[u8], what: &str) -> Result<(Fields, Chained), ResumeError> {
    let bad = || ResumeError::Tampered(format!("{what} is not a well-formed chained line"));
    let fields = Fields::parse(line).ok_or_else(bad)?;
    let (body, chain_value) = chain::split(line).ok_or_else(bad)?;
    let seq = fields.seq.ok_or_else(bad)?;
    if fields.chain_value() != Some(chain_value) {
        return Err(bad());
    }
    Ok((
        fields,
        Chained {
            seq,
            chain: chain_value,
            body,
        },
    ))
}

fn resume(
    sink: &mut FileSink,
    key: &Ed25519KeyPair,
    target: &str,
) -> Result<ChainState, ResumeError> {
    let public_key = key.public_key().as_ref().to_vec();
    let mut len = sink.len;
    if len > 0 {
        match end_of_last_line(&sink.file, len).map_err(rio("cannot read"))? {
            Some(end) if end == len => {}
            Some(end) => {
                tracing::warn!(
                    device = %target,
                    bytes = len - end,
                    "audit log ends in an incomplete line (a write interrupted by a crash, never acknowledged); cutting it off"
                );
                sink.file
                    .set_len(end)
                    .map_err(rio("cannot cut off the incomplete line"))?;
                sink.file.sync_data().map_err(rio("cannot sync"))?;
                len = end;
            }
            None if len <= MAX_HEADER_BYTES => {
                tracing::warn!(device = %target, "audit log holds only an incomplete header; starting it again");
                sink.file
                    .set_len(0)
                    .map_err(rio("cannot cut off the incomplete header"))?;
                len = 0;
            }
            None => {
                return Err(ResumeError::Tampered(
                    "the file holds no complete line".to_owned(),
                ));
            }
        }
        sink.len = len;
    }
    if len == 0 {
        // A sidecar past seq 0 next to an empty (or recreated) file means a
        // log with entries was emptied or deleted: keep the evidence.
        match fs::read(&sink.sidecar) {
            Ok(bytes) => match Checkpoint::parse(&bytes) {
                Some(cp) if cp.seq == 0 => {}
                Some(cp) => {
                    return Err(ResumeError::Tampered(format!(
                        "the file is empty but its checkpoint sidecar records seq {}: \
                         the log was emptied or deleted",
                        cp.seq
                    )));
                }
                None => {
                    return Err(ResumeError::Tampered(
                        "the file is empty and its checkpoint sidecar is malformed".to_owned(),
                    ));
                }
            },
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(ResumeError::Io(
                    "cannot read the checkpoint sidecar".to_owned(),
                    e,
                ));
            }
        }
        let (bytes, state) = new_chain(key).map_err(|e| ResumeError::Tampered(e.to_string()))?;
        sink.append(&bytes)
            .map_err(rio("cannot write the header"))?;
        if let Some(cp) = bytes.split_inclusive(|&b| b == b'\n').nth(1) {
            write_atomically(&sink.sidecar, cp, sink.mode)
                .map_err(rio("cannot write the checkpoint sidecar"))?;
        }
        return Ok(state);
    }

    // Header: first line.
    let mut head = vec![0u8; usize::try_from(len.min(MAX_HEADER_BYTES)).unwrap_or(0)];
    sink.file
        .read_exact_at(&mut head, 0)
        .map_err(rio("cannot read the header"))?;
    let header_line = head
        .split(|&b| b == b'\n')
        .next()
        .filter(|_| head.contains(&b'\n'))
        .ok_or_else(|| ResumeError::Tampered("the first line is not a header".to_owned()))?;
    let (fields, header) = parse_chained(header_line, "the header")?;
    if !fields.is_header() || header.seq != 0 || fields.version != Some(chain::FORMAT_VERSION) {
        return Err(ResumeError::Tampered(
            "the first line is not a version 1 header".to_owned(),
        ));
    }
    if fields.public_key_bytes().as_deref() != Some(public_key.as_slice()) {
        return Err(ResumeError::KeyMismatch);
    }
    if chain::link(&chain::GENESIS, &header.body) != header.chain {
        return Err(ResumeError::Tampered(
            "the header does not match its chain value".to_owned(),
        ));
    }

    // Tail: trailing checkpoint lines, the last chained line and the one before it.
    let mut pos = len;
    let mut trailing_checkpoint: Option<Checkpoint> = None;
    let mut last: Option<Chained> = None;
    let mut before_last: Option<Chained> = None;
    while pos > 0 {
        let (start, line) = line_before(&sink.file, pos).map_err(rio("cannot read the tail"))?;
        pos = start;
        let fields = Fields::parse(&line).ok_or_else(|| {
            ResumeError::Tampered(format!("the line at byte {start} is not valid JSON"))
        })?;
        if fields.is_checkpoint() {
            if last.is_none() && trailing_checkpoint.is_none() {
                trailing_checkpoint = Some(Checkpoint::parse(&line).ok_or_else(|| {
                    ResumeError::Tampered(format!("the checkpoint at byte {start} is malformed"))
                })?);
            }
            continue;
        }
        let (_, chained) = parse_chained(&line, &format!("the line at byte {start}"))?;
        if last.is_none() {
            let is_header = start == 0;
            last = Some(chained);
            if is_header {
                break;
            }
        } else {
            before_last = Some(chained);
            break;
        }
    }
    let last = last.ok_or_else(|| ResumeError::Tampered("no chained line found".to_owned()))?;
    if let Some(prev) = &before_last
        && (last.seq != prev.seq + 1 || chain::link(&prev.chain, &last.body) != last.chain)
    {
        return Err(ResumeError::Tampered(format!(
            "the last entry (seq {}) does not chain from the one before it (seq {})",
            last.seq, prev.seq
        )));
    }
    if let Some(cp) = &trailing_checkpoint
        && (cp.seq != last.seq || cp.chain != last.chain || !cp.signature_ok(&public_key))
    {
        return Err(ResumeError::Tampered(format!(
            "the final checkpoint (seq {}) does not match the last entry (seq {}) or is not validly signed",
            cp.seq, last.seq
        )));
    }
    let sidecar = match fs::read(&sink.sidecar) {
        Ok(bytes) => Some(Checkpoint::parse(&bytes).ok_or_else(|| {
            ResumeError::Tampered("the checkpoint sidecar is malformed".to_owned())
        })?),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => {
            return Err(ResumeError::Io(
                "cannot read the checkpoint sidecar".to_owned(),
                e,
            ));
        }
    };
    if let Some(cp) = &sidecar {
        if !cp.signature_ok(&public_key) {
            return Err(ResumeError::Tampered(
                "the checkpoint sidecar is not validly signed".to_owned(),
            ));
        }
        if cp.seq > last.seq {
            return Err(ResumeError::Tampered(format!(
                "truncated: the file ends at seq {} but the signed checkpoint covers seq {}",
                last.seq, cp.seq
            )));
        }
        if cp.seq == last.seq && cp.chain != last.chain {
            return Err(ResumeError::Tampered(format!(
                "the chain at seq {} differs from the signed checkpoint",
                cp.seq
            )));
        }
    }
    if trailing_checkpoint.is_none() {
        tracing::warn!(
            device = %target,
            seq = last.seq,
            "audit log has no final checkpoint: the previous writer did not stop cleanly"
        );
    }
    let last_checkpoint = if trailing_checkpoint.is_some() {
        last.seq
    } else {
        sidecar.map_or(0, |cp| cp.seq)
    };
    Ok(ChainState {
        seq: last.seq,
        chain: last.chain,
        last_checkpoint,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::BTreeMap;
    use std::sync::atomic::AtomicUsize;

    use serde_json::json;

    use super::*;
    use crate::audit::format::{AuthInfo, Kind, RequestInfo};
    use crate::audit::verify::{VerifyReport, verify_file};
    use crate::audit::{AuditBroker, generate_signing_key};

    pub(crate) fn record(i: usize) -> AuditRecord {
        AuditRecord {
            kind: if i.is_multiple_of(2) {
                Kind::Request
            } else {
                Kind::Response
            },
            time: OffsetDateTime::now_utc(),
            auth: Some(AuthInfo {
                client_token: format!("s.token{i}"),
                token_type: "service".to_owned(),
                ..AuthInfo::default()
            }),
            request: RequestInfo {
                id: format!("req-{i}"),
                operation: "update".to_owned(),
                path: "transit/encrypt/k".to_owned(),
                client_token: format!("s.token{i}"),
                data: json!({"plaintext": format!("p{i}")}),
                ..RequestInfo::default()
            },
            response: None,
            error: None,
        }
    }

    pub(crate) fn file_config(path: &Path, key: &[u8], interval: u64) -> DeviceConfig {
        DeviceConfig {
            kind: "file".to_owned(),
            options: BTreeMap::from([
                ("file_path".to_owned(), path.display().to_string()),
                ("checkpoint_interval".to_owned(), interval.to_string()),
            ]),
            salt: b"salt-1".to_vec(),
            signing_key: key.to_vec(),
        }
    }

    fn entry_seqs(path: &Path) -> Vec<u64> {
        fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|l| Fields::parse(l.as_bytes()).unwrap())
            .filter(|f| !f.is_checkpoint() && !f.is_header())
            .map(|f| f.seq.unwrap())
            .collect()
    }

    #[test]
    fn new_file_has_header_checkpoint_and_private_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let key = generate_signing_key().unwrap();
        let dev = FileDevice::open(file_config(&path, &key, 1000)).unwrap();
        dev.close().unwrap();
        let text = fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(lines[0].starts_with("{\"type\":\"header\",\"version\":1,\"public_key\":\""));
        assert!(lines[0].contains("\"seq\":0,\"chain\":\""));
        assert!(lines[1].starts_with("{\"type\":\"checkpoint\",\"seq\":0,"));
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            fs::read_to_string(sidecar_path(&path)).unwrap(),
            format!("{}\n", lines[1])
        );
        assert!(matches!(
            verify_file(&path, Some(dev.public_key())),
            VerifyReport::Ok(_)
        ));
    }

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
            std::thread::sleep(std::time::Duration::from_millis(3));
            self.appends.fetch_add(1, Ordering::SeqCst);
            self.out.lock().unwrap().extend_from_slice(bytes);
            Ok(())
        }
        fn rollback(&mut self) -> io::Result<()> {
            Err(io::Error::other("no"))
        }
    }

    /// An in-memory log whose appends fail on demand; a failed append is
    /// taken back, so the device stays usable.
    #[derive(Clone, Default)]
    pub(crate) struct MemoryLog {
        pub out: Arc<Mutex<Vec<u8>>>,
        /// How many of the next appends fail.
        pub fail_next: Arc<AtomicUsize>,
        pub appends: Arc<AtomicUsize>,
    }

    struct MemorySink {
        log: MemoryLog,
        good_len: usize,
    }

    impl Sink for MemorySink {
        fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
            let mut out = self.log.out.lock().unwrap();
            let failing = self
                .log
                .fail_next
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok();
            self.log.appends.fetch_add(1, Ordering::SeqCst);
            if failing {
                out.extend_from_slice(&bytes[..bytes.len() / 2]);
                return Err(io::Error::other("injected: disk full"));
            }
            out.extend_from_slice(bytes);
            self.good_len = out.len();
            Ok(())
        }
        fn rollback(&mut self) -> io::Result<()> {
            self.log.out.lock().unwrap().truncate(self.good_len);
            Ok(())
        }
    }

    impl MemoryLog {
        pub(crate) fn device(&self) -> FileDevice {
            test_device(
                Box::new(MemorySink {
                    log: self.clone(),
                    good_len: 0,
                }),
                1000,
            )
        }

        /// The entries written so far (header and checkpoints left out).
        pub(crate) fn entries(&self) -> Vec<serde_json::Value> {
            String::from_utf8(self.out.lock().unwrap().clone())
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
                .filter(|v| v["type"] == "request" || v["type"] == "response")
                .collect()
        }
    }

    pub(crate) fn test_device(sink: Box<dyn Sink>, interval: u64) -> FileDevice {
        let pkcs8 = generate_signing_key().unwrap();
        let key = Ed25519KeyPair::from_pkcs8(&pkcs8).unwrap();
        let hmac_key = SaltKey::new(b"salt");
        FileDevice::with_sink(
            "test".to_owned(),
            sink,
            key,
            hmac_key,
            FormatOptions::default(),
            interval,
        )
        .unwrap()
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

    #[tokio::test]
    async fn resume_after_reopen_continues_seq_and_chain() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let key = generate_signing_key().unwrap();
        let dev = FileDevice::open(file_config(&path, &key, 4)).unwrap();
        for i in 0..10 {
            dev.log(&record(i)).await.unwrap();
        }
        dev.close().unwrap();
        drop(dev);
        let dev = FileDevice::open(file_config(&path, &key, 4)).unwrap();
        for i in 10..15 {
            dev.log(&record(i)).await.unwrap();
        }
        dev.close().unwrap();
        assert_eq!(entry_seqs(&path), (1..=15).collect::<Vec<u64>>());
        match verify_file(&path, Some(dev.public_key())) {
            VerifyReport::Ok(s) => {
                assert_eq!(s.last_seq, 15);
                assert_eq!(s.sidecar_seq, Some(15));
            }
            other => panic!("{other}"),
        }
    }

    #[tokio::test]
    async fn resume_after_crash_cuts_incomplete_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let key = generate_signing_key().unwrap();
        let dev = FileDevice::open(file_config(&path, &key, 1000)).unwrap();
        for i in 0..3 {
            dev.log(&record(i)).await.unwrap();
        }
        dev.close().unwrap();
        drop(dev);
        // A crash mid-write: half a line after the final checkpoint, and the
        // writer never got to write a checkpoint for it.
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"time\":\"2024-01-01T00:00:00Z\",\"type\":\"req")
            .unwrap();
        drop(f);
        let dev = FileDevice::open(file_config(&path, &key, 1000)).unwrap();
        dev.log(&record(3)).await.unwrap();
        dev.close().unwrap();
        assert_eq!(entry_seqs(&path), vec![1, 2, 3, 4]);
        assert!(matches!(verify_file(&path, None), VerifyReport::Ok(_)));
    }

    #[tokio::test]
    async fn reopen_refuses_other_key_and_truncated_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let key = generate_signing_key().unwrap();
        let dev = FileDevice::open(file_config(&path, &key, 1000)).unwrap();
        for i in 0..5 {
            dev.log(&record(i)).await.unwrap();
        }
        dev.close().unwrap();
        drop(dev);

        let other = generate_signing_key().unwrap();
        let err = FileDevice::open(file_config(&path, &other, 1000)).unwrap_err();
        assert!(matches!(err, AuditError::Tampered { .. }), "{err}");

        // Drop the last entry and the final checkpoint, keep the sidecar.
        let text = fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        fs::write(&path, format!("{}\n", lines[..lines.len() - 2].join("\n"))).unwrap();
        let err = FileDevice::open(file_config(&path, &key, 1000)).unwrap_err();
        assert!(err.to_string().contains("truncated"), "{err}");

        // Deleted (or emptied) file, sidecar left behind.
        fs::remove_file(&path).unwrap();
        let err = FileDevice::open(file_config(&path, &key, 1000)).unwrap_err();
        assert!(err.to_string().contains("emptied or deleted"), "{err}");
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
        let (inner, state) = open_file(&path, Some(0o600), &key).unwrap();
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

    #[test]
    fn config_errors() {
        let key = generate_signing_key().unwrap();
        let mut c = file_config(Path::new("/tmp/x"), &key, 10);
        c.options.remove("file_path");
        assert!(matches!(FileDevice::open(c), Err(AuditError::Config(_))));
        let mut c = file_config(Path::new("/tmp/x"), &key, 10);
        c.options
            .insert("checkpoint_interval".to_owned(), "0".to_owned());
        assert!(matches!(FileDevice::open(c), Err(AuditError::Config(_))));
        let mut c = file_config(Path::new("/tmp/x"), &key, 10);
        c.signing_key = b"not a key".to_vec();
        assert!(matches!(FileDevice::open(c), Err(AuditError::Config(_))));
        let mut c = file_config(Path::new("discard"), &key, 10);
        c.kind = "file".to_owned();
        assert!(matches!(FileDevice::open(c), Err(AuditError::Config(_))));
        let mut c = file_config(Path::new("/tmp/x"), &key, 10);
        c.kind = "socket".to_owned();
        assert!(matches!(FileDevice::open(c), Err(AuditError::Config(_))));
    }
}
