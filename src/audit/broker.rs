//! The broker: the enabled devices by path (and the configured ones this node
//! could not open), what enabling and disabling them checks, one request's
//! entries carried to every device and waited for (`Session`, `Pending`),
//! failing closed when no device recorded them, and whether each device is
//! failing (`DeviceHealth`: logged once when it starts failing and once
//! when it records again, not per request).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use time::OffsetDateTime;

use super::config::DeviceConfig;
use super::device::{self, FileDevice};
use super::error::AuditError;
use super::format::{self, AuditRecord, Kind};

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

/// An enabled device and whether its last write failed.
#[derive(Debug)]
struct Enabled {
    device: FileDevice,
    health: DeviceHealth,
}

/// Whether a device's last write failed, and since when. Transitions are
/// logged (once each way), so a full disk is one error line, not one per
/// request.
#[derive(Debug, Default)]
struct DeviceHealth {
    /// Fast path for the common case: a working device stays working.
    failing: AtomicBool,
    detail: Mutex<Option<Failing>>,
}

/// Why and since when a device fails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failing {
    /// When its first failed write came (`None`: it never opened here).
    pub since: Option<OffsetDateTime>,
    pub error: String,
}

impl DeviceHealth {
    fn note(&self, path: &str, result: &Result<(), AuditError>) {
        if result.is_ok() && !self.failing.load(Ordering::Acquire) {
            return;
        }
        let mut detail = self.detail.lock().unwrap_or_else(PoisonError::into_inner);
        match result {
            Ok(()) => {
                if detail.take().is_some() {
                    tracing::warn!(device = %path, "audit device records again");
                }
            }
            Err(e) => {
                if detail.is_none() {
                    tracing::error!(device = %path, error = %e, "audit device failing: it records nothing until it recovers, and requests fail unless another device records them");
                    *detail = Some(Failing {
                        since: Some(OffsetDateTime::now_utc()),
                        error: e.to_string(),
                    });
                } else if let Some(d) = detail.as_mut() {
                    d.error = e.to_string();
                }
            }
        }
        self.failing.store(detail.is_some(), Ordering::Release);
    }

    fn get(&self) -> Option<Failing> {
        if !self.failing.load(Ordering::Acquire) {
            return None;
        }
        self.detail
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// The enabled audit devices.
#[derive(Debug, Default)]
pub struct AuditBroker {
    devices: RwLock<BTreeMap<String, Arc<Enabled>>>,
    /// Configured devices this node could not open (path -> why): they count
    /// as failing on every request, so a node never serves with fewer devices
    /// than configured while believing it has none.
    unopened: RwLock<BTreeMap<String, String>>,
    /// Serialises enable and disable (which do file I/O) without holding
    /// `devices` while they do.
    admin: Mutex<()>,
}

impl Enabled {
    fn new(device: FileDevice) -> Self {
        Self {
            device,
            health: DeviceHealth::default(),
        }
    }
}

impl AuditBroker {
    pub fn new() -> Self {
        Self::default()
    }

    fn snapshot(&self) -> Vec<(String, Arc<Enabled>)> {
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
            let same = match (&wanted, d.device.canonical_target()) {
                (Some(Some(w)), Some(c)) => w.as_path() == c,
                (Some(None), None) => true,
                _ => false,
            };
            if same {
                return Err(AuditError::Config(format!(
                    "{} is already written by the audit device at {p}",
                    d.device.target()
                )));
            }
        }
        let device = FileDevice::open(config)?;
        self.devices
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(path, Arc::new(Enabled::new(device)));
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
        devices.insert(path, Arc::new(Enabled::new(device)));
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
    /// checkpoint and its sidecar, then stops. A device that cannot write
    /// them (the very reason to remove a failing device, a full disk) is
    /// removed all the same: that is logged, and not an error, since the
    /// removal itself succeeded (its log then ends without a final
    /// checkpoint). Blocking.
    pub fn disable(&self, path: &str) -> Result<(), AuditError> {
        let path = normalize_path(path)?;
        let _admin = self.admin.lock().unwrap_or_else(PoisonError::into_inner);
        let enabled = self
            .devices
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&path)
            .ok_or_else(|| AuditError::NotEnabled(path.clone()))?;
        if let Err(e) = enabled.device.close() {
            tracing::error!(device = %path, error = %e, "audit device removed; its last writes failed, so its log ends without a final checkpoint");
        }
        Ok(())
    }

    /// `SIGHUP`: every device follows its file to what is at its path now
    /// (see `FileDevice::reopen`); each device's outcome, by path.
    pub async fn reopen(&self) -> Vec<(String, Result<(), AuditError>)> {
        let mut outcomes = Vec::new();
        for (path, device) in self.snapshot() {
            outcomes.push((path, device.device.reopen().await));
        }
        outcomes
    }

    /// The enabled paths with their targets (file path or `stdout`).
    pub fn list(&self) -> Vec<(String, String)> {
        self.snapshot()
            .into_iter()
            .map(|(p, d)| (p, d.device.target().to_owned()))
            .collect()
    }

    /// Whether the device at `path` is failing (its last write failed, or
    /// it cannot be opened on this node), and since when. `None` for a
    /// working device and for a path with no device.
    pub fn failing(&self, path: &str) -> Option<Failing> {
        let path = normalize_path(path).ok()?;
        if let Some(why) = self
            .unopened
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&path)
        {
            return Some(Failing {
                since: None,
                error: format!("cannot be opened on this node: {why}"),
            });
        }
        let devices = self.devices.read().unwrap_or_else(PoisonError::into_inner);
        devices.get(&path)?.health.get()
    }

    /// How many configured devices are failing (see [`Self::failing`]).
    pub fn failing_count(&self) -> usize {
        let unopened = self
            .unopened
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len();
        let devices = self.devices.read().unwrap_or_else(PoisonError::into_inner);
        unopened
            + devices
                .values()
                .filter(|d| d.health.failing.load(Ordering::Acquire))
                .count()
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
        devices.get(&path).map(|d| d.device.hash(value))
    }

    /// The Ed25519 public key (raw 32 bytes) of the device at `path`.
    pub fn public_key(&self, path: &str) -> Option<Vec<u8>> {
        let path = normalize_path(path).ok()?;
        let devices = self.devices.read().unwrap_or_else(PoisonError::into_inner);
        devices.get(&path).map(|d| d.device.public_key().to_vec())
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
        for (path, enabled) in devices {
            let device = &enabled.device;
            let slot = session.slot(device.id());
            if is_response && matches!(slot.request, RequestMark::Failed) {
                let err = AuditError::Io {
                    target: device.target().to_owned(),
                    message: "the request entry of this response was not recorded".to_owned(),
                };
                waits.push((path, enabled, Submitted::Skipped(err)));
                continue;
            }
            let submitted = device.submit(entries, &mut slot.memo);
            if is_request {
                slot.request = match &submitted {
                    Ok(_) => RequestMark::Queued,
                    Err(_) => RequestMark::Failed,
                };
            }
            let submitted = match submitted {
                Ok(rx) => Submitted::Queued(rx),
                Err(e) => Submitted::Refused(e),
            };
            waits.push((path, enabled, submitted));
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
    waits: Vec<(String, Arc<Enabled>, Submitted)>,
    /// Devices that failed before anything was queued (configured, not open here).
    failures: Vec<String>,
    nothing_to_do: bool,
    is_request: bool,
}

/// What became of one device's share of a submission.
enum Submitted {
    /// Queued on its writer: the receipt answers.
    Queued(device::Receipt),
    /// The device refused it (stopped, or the entry could not be formatted).
    Refused(AuditError),
    /// Not sent: a response whose request entry this device did not record.
    Skipped(AuditError),
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
    /// failures are noted in their health), `Err(AllFailed)` when none did,
    /// `Ok` when no device is configured. A lone request entry's outcome is
    /// noted in `session`.
    pub(crate) async fn wait(self, session: &mut Session) -> Result<(), AuditError> {
        if self.nothing_to_do {
            return Ok(());
        }
        let mut recorded = false;
        let mut failures = self.failures;
        for (path, enabled, submitted) in self.waits {
            let device = &enabled.device;
            let result = match submitted {
                Submitted::Queued(rx) => {
                    let result = device.wait(rx).await;
                    enabled.health.note(&path, &result);
                    result
                }
                Submitted::Refused(e) => {
                    let result = Err(e);
                    enabled.health.note(&path, &result);
                    result
                }
                // Says nothing new about the device.
                Submitted::Skipped(e) => Err(e),
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
                Err(e) => failures.push(format!("{path}: {e}")),
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
    use crate::audit::config::generate_signing_key;
    use crate::audit::format::hash_value;
    use crate::audit::verify::{VerifyReport, verify_file};

    fn config(path: &std::path::Path) -> DeviceConfig {
        DeviceConfig {
            kind: "file".to_owned(),
            options: BTreeMap::from([("file_path".to_owned(), path.display().to_string())]),
            salt: b"a-salt".to_vec(),
            signing_key: generate_signing_key().unwrap(),
            checkpoints: None,
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

    /// A device whose writes fail is reported as failing from its first
    /// failed write until its next good one; a device that cannot write its
    /// final checkpoint is removed all the same, without an error.
    #[tokio::test]
    async fn a_failing_device_is_reported_until_it_recovers_and_can_be_removed() {
        use std::sync::atomic::Ordering;
        let (good, bad) = (
            device::tests::MemoryLog::default(),
            device::tests::MemoryLog::default(),
        );
        let broker = AuditBroker::new();
        broker.insert_device("good", good.device()).unwrap();
        broker.insert_device("bad", bad.device()).unwrap();
        broker.log(&device::tests::record(0)).await.unwrap();
        assert_eq!(broker.failing_count(), 0);
        bad.fail_next.store(2, Ordering::SeqCst);
        broker.log(&device::tests::record(1)).await.unwrap();
        let failing = broker.failing("bad/").unwrap();
        assert!(
            failing.since.is_some() && failing.error.contains("disk full"),
            "{failing:?}"
        );
        assert_eq!(broker.failing_count(), 1);
        assert!(broker.failing("good/").is_none());
        broker.log(&device::tests::record(2)).await.unwrap();
        assert!(broker.failing("bad/").is_some());
        // The disk has room again.
        broker.log(&device::tests::record(3)).await.unwrap();
        assert!(broker.failing("bad/").is_none());
        assert_eq!(broker.failing_count(), 0);

        bad.fail_next.store(usize::MAX / 2, Ordering::SeqCst);
        broker.log(&device::tests::record(4)).await.unwrap();
        broker.disable("bad").unwrap();
        assert!(!broker.is_open("bad"));
        assert_eq!(broker.failing_count(), 0);
    }
}
