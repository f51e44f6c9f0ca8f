//! The audit log: Vault-shaped JSON entries, made tamper-evident.
//!
//! Entries have the shape of Vault's `file` audit device ([`format`]): one
//! JSON object per line, tokens and request/response data replaced by salted
//! HMACs (`hmac-sha256:<hex>`, the same values `sys/audit-hash` gives).
//! Beyond Vault, every line of a log is bound to the ones before it.
//!
//! # Line formats
//!
//! ```text
//! {"type":"header","version":1,"public_key":"<b64>","nonce":"<hex>","time":"<rfc3339>","seq":0,"chain":"<hex>"}
//! {"type":"checkpoint","seq":0,"chain":"<hex>","time":"<rfc3339>","signature":"<b64>"}
//! {"time":"..","type":"request","auth":{..},"request":{..},"seq":1,"chain":"<hex>"}
//! {"time":"..","type":"response","auth":{..},"request":{..},"response":{..},"error":"..","seq":2,"chain":"<hex>"}
//! ```
//!
//! * **Header** (first line of a new file, or of each stdout session): the raw
//!   Ed25519 public key that signs this file's checkpoints, and a random
//!   32-byte nonce so no two logs share a chain.
//! * **Chain**: every entry carries `seq` (1, 2, .. per file) and
//!   `chain = hex(SHA-256(previous chain, 32 raw bytes || body))`, where the
//!   body is the line's exact bytes without the final `,"chain":"…"` member
//!   (the rest of the object, closing brace included). The header's previous
//!   chain is 32 zero bytes. Editing, removing, inserting or reordering any line
//!   breaks the chain at that point, and `seq` tells which of these it was.
//! * **Checkpoints**: every `checkpoint_interval` entries (default 1000), on a
//!   clean stop and right after the header, the device appends a line repeating
//!   the `seq`/`chain` of the entry before it, signed with the device's Ed25519
//!   key over `seq (8 bytes, big-endian) || chain (32 raw bytes)`. Checkpoint
//!   lines are not part of the chain. File devices also replace
//!   `<FILE>.checkpoint` (temporary file, fsync, rename, directory fsync) with
//!   the latest checkpoint line, once the batch that holds it is durable.
//!
//! # What is caught, and what is not
//!
//! * Any change inside the file up to its last line: the chain.
//! * Lines cut off the end: the sidecar's signed checkpoint names a `seq` (and
//!   its chain) the file must still reach.
//! * The whole file rewritten with a recomputed chain: the rewriter needs the
//!   signing key to sign checkpoints. Without it the old sidecar's signature
//!   fails against the new header's key; if sidecar and header are both
//!   replaced by a key of the attacker's, only a pinned public key
//!   (`transitd audit verify -public-key=…`) tells.
//! * Not caught: the file cut back to an earlier checkpoint *and* the sidecar
//!   replaced by that (genuine, signed) earlier checkpoint line; or the file and
//!   its sidecar both deleted. Only a copy of the latest checkpoint kept
//!   elsewhere (shipped off the host, or a stdout/syslog copy), compared with
//!   a pinned key, shows those. Removing an intermediate checkpoint line is not
//!   caught either (the entries around it still chain; nothing is lost). Anyone
//!   holding the signing key (root on a running server) can rewrite everything:
//!   the scheme makes tampering evident to whoever holds an external copy of a
//!   later checkpoint, it does not prevent it.
//! * A stdout device has no sidecar: its truncation goes unnoticed unless its
//!   output is captured elsewhere with checkpoints.
//!
//! # Devices and the broker
//!
//! [`AuditBroker`] holds the enabled devices by path (`file/`..). The request
//! path ([`crate::api`]) queues entries with `AuditBroker::submit`, which
//! formats them once per device (each has its own salt) on the caller's
//! thread and hands them to every device's writer thread, and waits with
//! `Pending::wait` until each device has written and synced them (group
//! commit, see [`device`]); [`AuditBroker::log`] does both. Waiting succeeds
//! when at least one device recorded the entries and fails closed when every
//! device failed, as Vault does; with no device enabled it does nothing and
//! succeeds.
//!
//! A [`Session`] carries one request across its entries: per device, the
//! HMACs of its token and accessor (computed once, not four times per
//! entry) and whether its request entry was recorded (a lone response entry
//! goes only where it was). A request entry and its response entry can be
//! submitted together: each device then writes both in one batch, one after
//! the other, or neither (what lets a request that changes nothing wait for
//! one sync instead of two; see [`crate::api`]'s audit hook).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use ring::rand::SystemRandom;
use ring::signature::Ed25519KeyPair;
use zeroize::Zeroize;

pub mod chain;
pub mod device;
pub mod format;
pub mod store;
pub mod verify;

pub use device::{DEFAULT_CHECKPOINT_INTERVAL, FileDevice, sidecar_path};
pub use format::{
    AuditRecord, AuthInfo, FormatOptions, Kind, RequestInfo, ResponseInfo, hash_value,
};
pub use verify::{VerifyReport, verify_file};

/// What can go wrong with auditing.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AuditError {
    #[error("invalid audit device configuration: {0}")]
    Config(String),
    #[error("an audit device is already enabled at {0}")]
    AlreadyEnabled(String),
    #[error("no audit device is enabled at {0}")]
    NotEnabled(String),
    #[error("audit device {target}: {message}")]
    Io { target: String, message: String },
    #[error(
        "audit log {target} failed its integrity check: {message}; run `transitd audit verify`, \
         then move the file and its .checkpoint aside to start a new log"
    )]
    Tampered { target: String, message: String },
    #[error("audit device {0} is stopped")]
    Stopped(String),
    #[error("audit entry could not be formatted: {0}")]
    Format(String),
    #[error("no audit device recorded the entry: {}", .0.join("; "))]
    AllFailed(Vec<String>),
}

/// How to enable a device.
///
/// `kind` is `file` (options `file_path` or `path`: a file, or `stdout`) or
/// `stdout`. Other options, Vault's where they exist: `hmac_accessor`
/// (default true), `log_raw` (default false), `mode` (octal, default `0600`,
/// executable bits dropped, `0000` keeps an existing file's mode), `format`
/// (only `json`), `checkpoint_interval` (entries between checkpoints, default
/// 1000). `prefix` and `file_path=discard` are refused.
///
/// `salt` keys the HMAC of hashed values (Vault keeps a UUID string per
/// device; its bytes are the key). `signing_key` is an Ed25519 private key as
/// PKCS#8 (v1 or v2); keep it per device and stable across restarts, since a
/// file's header names the key that must sign all its checkpoints. Both are
/// wiped when the config is dropped.
#[derive(Clone, Default)]
pub struct DeviceConfig {
    pub kind: String,
    pub options: BTreeMap<String, String>,
    pub salt: Vec<u8>,
    pub signing_key: Vec<u8>,
}

impl fmt::Debug for DeviceConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceConfig")
            .field("kind", &self.kind)
            .field("options", &self.options)
            .field("salt", &"<redacted>")
            .field("signing_key", &"<redacted>")
            .finish()
    }
}

impl Drop for DeviceConfig {
    fn drop(&mut self) {
        self.salt.zeroize();
        self.signing_key.zeroize();
    }
}

/// A new Ed25519 signing key, PKCS#8 v2, for [`DeviceConfig::signing_key`].
pub fn generate_signing_key() -> Result<Vec<u8>, AuditError> {
    Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
        .map(|doc| doc.as_ref().to_vec())
        .map_err(|_| AuditError::Config("no randomness for a signing key".to_owned()))
}

/// A new salt in Vault's form: a random UUID string's bytes.
pub fn generate_salt() -> Vec<u8> {
    uuid::Uuid::new_v4().to_string().into_bytes()
}

/// Vault mounts audit devices at paths ending in `/`.
fn normalize_path(path: &str) -> Result<String, AuditError> {
    let trimmed = path.trim_start_matches('/');
    if trimmed.is_empty() || trimmed == "/" {
        return Err(AuditError::Config(
            "an audit device needs a path".to_owned(),
        ));
    }
    Ok(if trimmed.ends_with('/') {
        trimmed.to_owned()
    } else {
        format!("{trimmed}/")
    })
}

/// The enabled audit devices.
#[derive(Debug, Default)]
pub struct AuditBroker {
    devices: RwLock<BTreeMap<String, Arc<FileDevice>>>,
    /// Configured devices this node could not open (path -> why): they count
    /// as failing on every request, so a node never serves with fewer devices
    /// than configured while believing it has none.
    unopened: RwLock<BTreeMap<String, String>>,
    /// Serialises enable and disable (which do file I/O) without holding
    /// `devices` while they do.
    admin: Mutex<()>,
}

impl AuditBroker {
    pub fn new() -> Self {
        Self::default()
    }

    fn snapshot(&self) -> Vec<(String, Arc<FileDevice>)> {
        self.devices
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(p, d)| (p.clone(), d.clone()))
            .collect()
    }

    /// Opens a device and enables it at `path` (`file` and `file/` are the
    /// same path). Refuses a path already in use and a second device on the
    /// same file (or a second stdout device): two writers would interleave two
    /// chains. Blocking (file I/O); use `spawn_blocking` from async code.
    pub fn enable(&self, path: &str, config: DeviceConfig) -> Result<(), AuditError> {
        let path = normalize_path(path)?;
        let _admin = self.admin.lock().unwrap_or_else(PoisonError::into_inner);
        // `None`: no target to compare (the open below reports the problem);
        // `Some(None)`: stdout; `Some(Some(path))`: a file.
        let wanted: Option<Option<std::path::PathBuf>> = match config.kind.as_str() {
            "stdout" => Some(None),
            "file" => config
                .options
                .get("file_path")
                .or_else(|| config.options.get("path"))
                .map(|p| {
                    (!p.eq_ignore_ascii_case("stdout"))
                        .then(|| device::canonical_path(std::path::Path::new(p)))
                }),
            _ => None,
        };
        for (p, d) in self.snapshot() {
            if p == path {
                return Err(AuditError::AlreadyEnabled(path));
            }
            let same = match (&wanted, d.canonical_target()) {
                (Some(Some(w)), Some(c)) => w.as_path() == c,
                (Some(None), None) => true,
                _ => false,
            };
            if same {
                return Err(AuditError::Config(format!(
                    "{} is already written by the audit device at {p}",
                    d.target()
                )));
            }
        }
        let device = FileDevice::open(config)?;
        self.devices
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(path, Arc::new(device));
        Ok(())
    }

    /// Enables an already running device (tests: devices on injected sinks).
    #[cfg(test)]
    pub(crate) fn insert_device(&self, path: &str, device: FileDevice) -> Result<(), AuditError> {
        let path = normalize_path(path)?;
        let mut devices = self.devices.write().unwrap_or_else(PoisonError::into_inner);
        if devices.contains_key(&path) {
            return Err(AuditError::AlreadyEnabled(path));
        }
        devices.insert(path, Arc::new(device));
        Ok(())
    }

    /// Records that the configured device at `path` cannot be opened here.
    pub fn mark_unopened(&self, path: &str, why: String) {
        if let Ok(path) = normalize_path(path) {
            self.unopened
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(path, why);
        }
    }

    /// Forgets an unopened device (opened since, or no longer configured).
    pub fn forget_unopened(&self, path: &str) -> bool {
        normalize_path(path).is_ok_and(|path| {
            self.unopened
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&path)
                .is_some()
        })
    }

    /// Whether some configured device could not be opened on this node.
    pub fn has_unopened(&self) -> bool {
        !self
            .unopened
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .is_empty()
    }

    /// Whether a device is enabled (and open) at `path`.
    pub fn is_open(&self, path: &str) -> bool {
        normalize_path(path).is_ok_and(|path| {
            self.devices
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .contains_key(&path)
        })
    }

    /// Removes the device at `path`: it writes what is queued, a final
    /// checkpoint and its sidecar, then stops. The device is gone even when
    /// that final write fails (the error says so). Blocking.
    pub fn disable(&self, path: &str) -> Result<(), AuditError> {
        let path = normalize_path(path)?;
        let _admin = self.admin.lock().unwrap_or_else(PoisonError::into_inner);
        let device = self
            .devices
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&path)
            .ok_or(AuditError::NotEnabled(path))?;
        device.close()
    }

    /// The enabled paths with their targets (file path or `stdout`).
    pub fn list(&self) -> Vec<(String, String)> {
        self.snapshot()
            .into_iter()
            .map(|(p, d)| (p, d.target().to_owned()))
            .collect()
    }

    /// No device configured (an unopened one counts as configured).
    pub fn is_empty(&self) -> bool {
        self.devices
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .is_empty()
            && self
                .unopened
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .is_empty()
    }

    /// `sys/audit-hash`: `value` hashed with the salt of the device at `path`.
    pub fn hash(&self, path: &str, value: &str) -> Option<String> {
        let path = normalize_path(path).ok()?;
        let devices = self.devices.read().unwrap_or_else(PoisonError::into_inner);
        devices.get(&path).map(|d| d.hash(value))
    }

    /// The Ed25519 public key (raw 32 bytes) of the device at `path`.
    pub fn public_key(&self, path: &str) -> Option<Vec<u8>> {
        let path = normalize_path(path).ok()?;
        let devices = self.devices.read().unwrap_or_else(PoisonError::into_inner);
        devices.get(&path).map(|d| d.public_key().to_vec())
    }

    /// Records `record` on every enabled device and waits until they have
    /// written and synced it. `Ok` when at least one device recorded it (the
    /// others' failures are logged), `Err(AllFailed)` when none did, `Ok` at
    /// once when no device is enabled.
    pub async fn log(&self, record: &AuditRecord) -> Result<(), AuditError> {
        let mut session = Session::default();
        self.submit(&[&record.entry()], &mut session)
            .wait(&mut session)
            .await
    }

    /// Whether an entry submitted now could be recorded at all: some device
    /// is open (a configured device that this node could not open always
    /// fails).
    pub(crate) fn can_record(&self) -> bool {
        !self
            .devices
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .is_empty()
    }

    /// Formats `entries` for every enabled device (with the device's
    /// memoized token hashes from `session`) and queues them, without
    /// waiting: the returned [`Pending`] waits. Several entries (a request
    /// entry and its response entry) go to each device as one message,
    /// written together in one batch or not at all. A lone response entry
    /// goes only to the devices that did not fail its request entry.
    pub(crate) fn submit(&self, entries: &[&format::Entry<'_>], session: &mut Session) -> Pending {
        let devices = self.snapshot();
        let unopened: Vec<String> = {
            let unopened = self.unopened.read().unwrap_or_else(PoisonError::into_inner);
            unopened
                .iter()
                .map(|(path, why)| format!("{path}: cannot be opened on this node: {why}"))
                .collect()
        };
        if devices.is_empty() && unopened.is_empty() {
            return Pending {
                waits: Vec::new(),
                failures: Vec::new(),
                nothing_to_do: true,
                is_request: false,
            };
        }
        let lone = |kind| matches!(entries, [e] if e.kind == kind);
        let (is_request, is_response) = (lone(Kind::Request), lone(Kind::Response));
        let mut waits = Vec::with_capacity(devices.len());
        for (path, device) in devices {
            let slot = session.slot(device.id());
            if is_response && matches!(slot.request, RequestMark::Failed) {
                let err = AuditError::Io {
                    target: device.target().to_owned(),
                    message: "the request entry of this response was not recorded".to_owned(),
                };
                waits.push((path, device, Err(err)));
                continue;
            }
            let submitted = device.submit(entries, &mut slot.memo);
            if is_request {
                slot.request = match &submitted {
                    Ok(_) => RequestMark::Queued,
                    Err(_) => RequestMark::Failed,
                };
            }
            waits.push((path, device, submitted));
        }
        Pending {
            waits,
            failures: unopened,
            nothing_to_do: false,
            is_request,
        }
    }
}

/// One request's entries across the devices: each device's memoized token
/// HMACs (the token and accessor are hashed once per device per request,
/// not four times per entry) and where its request entry stands.
#[derive(Debug, Default)]
pub struct Session {
    devices: Vec<SessionDevice>,
}

#[derive(Debug)]
struct SessionDevice {
    id: u64,
    memo: format::TokenMemo,
    request: RequestMark,
}

/// A lone request entry on one device.
#[derive(Debug, Clone, Copy)]
enum RequestMark {
    /// None was submitted to this device (none yet, or it was enabled since).
    None,
    Queued,
    Recorded,
    Failed,
}

impl Session {
    fn slot(&mut self, id: u64) -> &mut SessionDevice {
        match self.devices.iter().position(|d| d.id == id) {
            Some(i) => &mut self.devices[i],
            None => {
                self.devices.push(SessionDevice {
                    id,
                    memo: format::TokenMemo::default(),
                    request: RequestMark::None,
                });
                let last = self.devices.len() - 1;
                &mut self.devices[last]
            }
        }
    }
}

/// Entries queued on the devices, not yet known to be durable.
#[must_use = "an audit entry must be waited for before the request it records is answered"]
pub struct Pending {
    waits: Vec<(String, Arc<FileDevice>, Result<device::Receipt, AuditError>)>,
    /// Devices that failed before anything was queued (configured, not open here).
    failures: Vec<String>,
    nothing_to_do: bool,
    is_request: bool,
}

impl fmt::Debug for Pending {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pending")
            .field("devices", &self.waits.len())
            .field("failures", &self.failures)
            .finish_non_exhaustive()
    }
}

impl Pending {
    /// Waits until every device has written and synced the entries (or
    /// failed). `Ok` when at least one device recorded them (the others'
    /// failures are logged), `Err(AllFailed)` when none did, `Ok` when no
    /// device is configured. A lone request entry's outcome is noted in
    /// `session`.
    pub(crate) async fn wait(self, session: &mut Session) -> Result<(), AuditError> {
        if self.nothing_to_do {
            return Ok(());
        }
        let mut recorded = false;
        let mut failures = self.failures;
        for (path, device, submitted) in self.waits {
            let result = match submitted {
                Ok(rx) => device.wait(rx).await,
                Err(e) => Err(e),
            };
            if self.is_request {
                session.slot(device.id()).request = if result.is_ok() {
                    RequestMark::Recorded
                } else {
                    RequestMark::Failed
                };
            }
            match result {
                Ok(()) => recorded = true,
                Err(e) => {
                    tracing::error!(device = %path, error = %e, "audit device failed to record an entry");
                    failures.push(format!("{path}: {e}"));
                }
            }
        }
        if recorded {
            Ok(())
        } else {
            Err(AuditError::AllFailed(failures))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(path: &std::path::Path) -> DeviceConfig {
        DeviceConfig {
            kind: "file".to_owned(),
            options: BTreeMap::from([("file_path".to_owned(), path.display().to_string())]),
            salt: b"a-salt".to_vec(),
            signing_key: generate_signing_key().unwrap(),
        }
    }

    #[tokio::test]
    async fn no_device_means_no_op() {
        let broker = AuditBroker::new();
        broker.log(&device::tests::record(0)).await.unwrap();
        assert!(broker.hash("file/", "x").is_none());
    }

    #[tokio::test]
    async fn enable_hash_log_disable() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.log");
        let b = dir.path().join("b.log");
        let broker = AuditBroker::new();
        broker.enable("file", config(&a)).unwrap();
        assert!(matches!(
            broker.enable("file/", config(&b)),
            Err(AuditError::AlreadyEnabled(_))
        ));
        assert!(matches!(
            broker.enable("other", config(&a)),
            Err(AuditError::Config(_))
        ));
        broker.enable("second/", config(&b)).unwrap();
        assert_eq!(
            broker.hash("file/", "s.root"),
            Some(hash_value(b"a-salt", "s.root"))
        );
        assert_eq!(
            broker.hash("file", "s.root"),
            broker.hash("file/", "s.root")
        );
        broker.log(&device::tests::record(1)).await.unwrap();
        assert_eq!(broker.list().len(), 2);
        broker.disable("file/").unwrap();
        broker.disable("second").unwrap();
        assert!(matches!(
            broker.disable("file/"),
            Err(AuditError::NotEnabled(_))
        ));
        assert!(broker.is_empty());
        for p in [&a, &b] {
            assert!(matches!(verify_file(p, None), VerifyReport::Ok(ref s) if s.last_seq == 1));
        }
    }

    #[test]
    fn config_debug_redacts_secrets() {
        // `DeviceConfig` wipes itself on drop, so no `..Default::default()`.
        let mut c = DeviceConfig::default();
        c.kind = "file".to_owned();
        c.salt = b"secret-salt".to_vec();
        assert!(!format!("{c:?}").contains("secret-salt"));
    }
}
