//! The audit device table (`sys/audit`), kept through the barrier at
//! `core/audit` with each device's HMAC salt and checkpoint signing key, and
//! the broker that writes to the enabled devices.
//!
//! Each file device also keeps its latest checkpoint (`seq` and chain)
//! through the barrier ([`SealedCheckpoint`]), at
//! `audit-checkpoint/<hex SHA-256 of the device's public key, this node's
//! host name and the file's canonical path>`: one per device *and* node,
//! since every node writes its own copy of the file (and with PostgreSQL all
//! nodes share the storage). A new device (a new key) never meets an old
//! device's checkpoint. A node whose host name changes finds no checkpoint
//! and starts comparing again from its next one (logged).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ring::digest;
use ring::signature::{Ed25519KeyPair, KeyPair as _};
use serde::{Deserialize, Serialize};

use super::chain::{Chain, Start};
use super::device::{CheckpointStore, canonical_path};
use super::{AuditBroker, DeviceConfig, generate_salt, generate_signing_key};
use crate::seal::barrier::Barrier;
use crate::seal::edit::{Edit, edit_json, read_json};
use crate::storage::blocking;
use crate::storage::layout::{AUDIT_CHECKPOINTS, AUDIT_TABLE as TABLE_PATH};
use crate::storage::{StoreError, StoreResult};

/// A row of `core/audit`; the secrets are only ever stored sealed.
#[derive(Clone, Serialize, Deserialize)]
struct StoredDevice {
    path: String,
    #[serde(rename = "type")]
    kind: String,
    description: String,
    options: BTreeMap<String, String>,
    salt: String,
    signing_key: String,
}

impl std::fmt::Debug for StoredDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredDevice")
            .field("path", &self.path)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

impl StoredDevice {
    /// The file this device writes on this node (`None`: stdout).
    fn file_path(&self) -> Option<&str> {
        if self.kind == "stdout" {
            return None;
        }
        self.options
            .get("file_path")
            .or_else(|| self.options.get("path"))
            .map(String::as_str)
            .filter(|p| !p.eq_ignore_ascii_case("stdout"))
    }

    /// Where this node keeps this file device's latest checkpoint.
    fn checkpoint_path(&self) -> StoreResult<Option<String>> {
        let Some(file) = self.file_path() else {
            return Ok(None);
        };
        let pkcs8 = STANDARD.decode(&self.signing_key).map_err(|_| {
            StoreError::Internal(format!("audit device {}: corrupt secret", self.path))
        })?;
        let key = Ed25519KeyPair::from_pkcs8_maybe_unchecked(&pkcs8).map_err(|_| {
            StoreError::Internal(format!("audit device {}: corrupt signing key", self.path))
        })?;
        let mut ctx = digest::Context::new(&digest::SHA256);
        ctx.update(key.public_key().as_ref());
        ctx.update(b"\0");
        ctx.update(node_name().as_bytes());
        ctx.update(b"\0");
        ctx.update(
            canonical_path(Path::new(file))
                .as_os_str()
                .as_encoded_bytes(),
        );
        Ok(Some(format!(
            "{AUDIT_CHECKPOINTS}{}",
            hex::encode(ctx.finish().as_ref())
        )))
    }

    fn config(&self, barrier: &Arc<Barrier>) -> StoreResult<DeviceConfig> {
        let decode = |s: &str| {
            STANDARD.decode(s).map_err(|_| {
                StoreError::Internal(format!("audit device {}: corrupt secret", self.path))
            })
        };
        Ok(DeviceConfig {
            kind: self.kind.clone(),
            options: self.options.clone(),
            salt: decode(&self.salt)?,
            signing_key: decode(&self.signing_key)?,
            checkpoints: self.checkpoint_path()?.map(|path| {
                Arc::new(SealedCheckpoint {
                    barrier: Arc::clone(barrier),
                    path,
                }) as Arc<dyn CheckpointStore>
            }),
        })
    }
}

/// This node's name in checkpoint keys: its host name.
fn node_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

/// A file device's latest checkpoint on this node, kept through the barrier.
#[derive(Debug)]
pub struct SealedCheckpoint {
    barrier: Arc<Barrier>,
    path: String,
}

#[derive(Serialize, Deserialize)]
struct StoredCheckpoint {
    seq: u64,
    chain: String,
}

impl SealedCheckpoint {
    fn read(&self) -> StoreResult<Option<Start>> {
        let Some(stored) = read_json::<StoredCheckpoint>(&self.barrier, &self.path)? else {
            return Ok(None);
        };
        let mut chain: Chain = [0; 32];
        hex::decode_to_slice(&stored.chain, &mut chain)
            .map_err(|_| StoreError::Internal(format!("{}: corrupt checkpoint", self.path)))?;
        Ok(Some(Start {
            seq: stored.seq,
            chain,
        }))
    }
}

impl CheckpointStore for SealedCheckpoint {
    fn load(&self) -> Result<Option<Start>, String> {
        self.read().map_err(|e| e.to_string())
    }

    fn save(&self, seq: u64, chain: &Chain) -> Result<(), String> {
        let stored = StoredCheckpoint {
            seq,
            chain: hex::encode(chain),
        };
        let bytes = serde_json::to_vec(&stored).map_err(|e| e.to_string())?;
        self.barrier
            .put(&self.path, &bytes)
            .map_err(|e| e.to_string())
    }
}

/// One enabled device as `sys/audit` lists it.
#[derive(Debug, Clone)]
pub struct DeviceInfo {
    pub path: String,
    pub kind: String,
    pub description: String,
    pub options: BTreeMap<String, String>,
}

#[derive(Debug)]
pub struct AuditStore {
    barrier: Arc<Barrier>,
    pub broker: AuditBroker,
    table: Mutex<Vec<StoredDevice>>,
}

fn poisoned() -> StoreError {
    StoreError::Internal("audit table lock poisoned".to_owned())
}

fn normalize(path: &str) -> String {
    format!("{}/", path.trim_matches('/'))
}

impl AuditStore {
    /// Open every configured device. A device that cannot be opened (its
    /// file unwritable, or tampered with) stops the unseal: the server never
    /// serves with less auditing than was configured.
    pub(crate) fn load(barrier: Arc<Barrier>) -> StoreResult<Self> {
        let table: Vec<StoredDevice> = match barrier.get(TABLE_PATH)? {
            None => Vec::new(),
            Some(raw) => serde_json::from_slice(&raw)
                .map_err(|e| StoreError::Internal(format!("{TABLE_PATH}: {e}")))?,
        };
        let broker = AuditBroker::new();
        for device in &table {
            broker
                .enable(&device.path, device.config(&barrier)?)
                .map_err(|e| {
                    StoreError::Internal(format!(
                        "audit device {} cannot be opened: {e}",
                        device.path
                    ))
                })?;
        }
        Ok(Self {
            barrier,
            broker,
            table: Mutex::new(table),
        })
    }

    pub fn enable(
        &self,
        path: &str,
        kind: &str,
        description: &str,
        options: BTreeMap<String, String>,
    ) -> StoreResult<()> {
        let path = normalize(path);
        let mut table = self.table.lock().map_err(|_| poisoned())?;
        if table.iter().any(|d| d.path == path) {
            return Err(StoreError::invalid(format!("path already in use: {path}")));
        }
        let salt = generate_salt();
        let signing_key =
            generate_signing_key().map_err(|e| StoreError::Internal(e.to_string()))?;
        let stored = StoredDevice {
            path: path.clone(),
            kind: kind.to_owned(),
            description: description.to_owned(),
            options,
            salt: STANDARD.encode(&salt),
            signing_key: STANDARD.encode(&signing_key),
        };
        // Opened first: a device that cannot work here is refused before
        // anything is stored.
        blocking(|| {
            self.broker
                .enable(&path, stored.config(&self.barrier)?)
                .map_err(|e| StoreError::invalid(e.to_string()))
        })?;
        // Against the stored table: another node may have enabled this path a moment ago.
        let written = edit_json(&self.barrier, TABLE_PATH, "the audit table", |current| {
            let mut devices: Vec<StoredDevice> = current.unwrap_or_default();
            if devices.iter().any(|d| d.path == path) {
                return Err(StoreError::invalid(format!("path already in use: {path}")));
            }
            devices.push(stored.clone());
            Ok(Edit::Put(devices))
        });
        match written {
            Ok(devices) => {
                *table = devices.unwrap_or_default();
                Ok(())
            }
            Err(e) => {
                let _ = blocking(|| self.broker.disable(&path));
                Err(e)
            }
        }
    }

    pub fn disable(&self, path: &str) -> StoreResult<()> {
        let path = normalize(path);
        let mut table = self.table.lock().map_err(|_| poisoned())?;
        let devices = edit_json(&self.barrier, TABLE_PATH, "the audit table", |current| {
            let devices: Vec<StoredDevice> = current.unwrap_or_default();
            if !devices.iter().any(|d| d.path == path) {
                return Ok(Edit::Keep);
            }
            Ok(Edit::Put(
                devices.into_iter().filter(|d| d.path != path).collect(),
            ))
        })?;
        let removed = table.iter().find(|d| d.path == path).cloned();
        *table = devices.unwrap_or_default();
        self.broker.forget_unopened(&path);
        let closed = if self.broker.is_open(&path) {
            blocking(|| self.broker.disable(&path)).map_err(|e| StoreError::Internal(e.to_string()))
        } else {
            Ok(())
        };
        if let Some(device) = removed {
            self.forget_checkpoint(&device);
        }
        closed
    }

    /// Drops this node's checkpoint of a device no longer enabled (after its
    /// writer stopped, so nothing saves it again). Other nodes drop theirs as
    /// they close their copy; a failure leaves only an unreachable entry.
    fn forget_checkpoint(&self, device: &StoredDevice) {
        if let Ok(Some(path)) = device.checkpoint_path()
            && let Err(e) = blocking(|| self.barrier.delete(&path))
        {
            tracing::warn!(device = %device.path, error = %e, "the sealed checkpoint of a disabled audit device was not removed");
        }
    }

    /// Bring this node's devices in line with the stored table (another node
    /// changed it, or changes were missed): each node opens its own copy of
    /// every configured device. New devices are opened before removed ones are
    /// closed; a device that cannot be opened here is kept as failing (every
    /// request fails unless another device records it) and retried next time,
    /// never silently left out.
    pub fn reload(&self) -> StoreResult<()> {
        let stored: Vec<StoredDevice> = read_json(&self.barrier, TABLE_PATH)?.unwrap_or_default();
        let mut table = self.table.lock().map_err(|_| poisoned())?;
        for device in &stored {
            if self.broker.is_open(&device.path) {
                continue;
            }
            let opened = blocking(|| -> StoreResult<()> {
                self.broker
                    .enable(&device.path, device.config(&self.barrier)?)
                    .map_err(|e| StoreError::Internal(e.to_string()))
            });
            match opened {
                Ok(()) => {
                    self.broker.forget_unopened(&device.path);
                }
                Err(e) => {
                    tracing::error!(device = %device.path, error = %e, "a configured audit device cannot be opened on this node; requests fail unless another device records them");
                    self.broker.mark_unopened(&device.path, e.to_string());
                }
            }
        }
        for old in table
            .iter()
            .filter(|o| !stored.iter().any(|n| n.path == o.path))
        {
            self.broker.forget_unopened(&old.path);
            if self.broker.is_open(&old.path) {
                blocking(|| self.broker.disable(&old.path))
                    .map_err(|e| StoreError::Internal(e.to_string()))?;
                self.forget_checkpoint(old);
            }
        }
        *table = stored;
        Ok(())
    }

    /// The latest checkpoint this node's copy of the file device at `path`
    /// saved (`None`: no such file device, or none saved yet): what
    /// `transitd audit verify -checkpoint=SEQ:HEX` compares the file with.
    pub fn checkpoint(&self, path: &str) -> StoreResult<Option<(u64, Chain)>> {
        let path = normalize(path);
        let device = {
            let table = self.table.lock().map_err(|_| poisoned())?;
            table.iter().find(|d| d.path == path).cloned()
        };
        let Some(stored_path) = device.map(|d| d.checkpoint_path()).transpose()?.flatten() else {
            return Ok(None);
        };
        let sealed = SealedCheckpoint {
            barrier: Arc::clone(&self.barrier),
            path: stored_path,
        };
        Ok(sealed.read()?.map(|s| (s.seq, s.chain)))
    }

    pub fn devices(&self) -> StoreResult<Vec<DeviceInfo>> {
        Ok(self
            .table
            .lock()
            .map_err(|_| poisoned())?
            .iter()
            .map(|d| DeviceInfo {
                path: d.path.clone(),
                kind: d.kind.clone(),
                description: d.description.clone(),
                options: d.options.clone(),
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{MemoryStorage, Storage};

    fn two_nodes() -> (AuditStore, AuditStore) {
        let storage: Arc<dyn Storage> = Arc::new(MemoryStorage::shared());
        let barrier = Arc::new(Barrier::for_tests(storage));
        (
            AuditStore::load(Arc::clone(&barrier)).unwrap(),
            AuditStore::load(barrier).unwrap(),
        )
    }

    fn file_options(path: &Path) -> BTreeMap<String, String> {
        BTreeMap::from([("file_path".to_owned(), path.to_string_lossy().into_owned())])
    }

    fn stored_paths(store: &AuditStore) -> Vec<String> {
        read_json::<Vec<StoredDevice>>(&store.barrier, TABLE_PATH)
            .unwrap()
            .unwrap_or_default()
            .into_iter()
            .map(|d| d.path)
            .collect()
    }

    #[test]
    fn two_nodes_enabling_devices_at_once_keep_both() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = two_nodes();
        a.enable("one", "file", "", file_options(&dir.path().join("1.log")))
            .unwrap();
        // B has not heard of A's device.
        b.enable("two", "file", "", file_options(&dir.path().join("2.log")))
            .unwrap();
        assert_eq!(stored_paths(&a), ["one/", "two/"]);
        let err = b
            .enable("one", "file", "", file_options(&dir.path().join("3.log")))
            .unwrap_err();
        assert!(err.to_string().contains("already in use"), "{err}");
        assert!(!b.broker.is_open("one"), "the refused device stayed open");
        b.disable("one").unwrap();
        assert_eq!(stored_paths(&a), ["two/"]);
    }

    /// Each node's copy of a device keeps its own sealed checkpoint (two
    /// copies told apart here by their file paths; nodes also by host name),
    /// which follows the file's signed checkpoints and goes when the device
    /// is disabled.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sealed_checkpoint_per_device_and_node() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = two_nodes();
        let path_a = dir.path().join("a.log");
        a.enable("file", "file", "", file_options(&path_a)).unwrap();
        // B's copy of the same device writes its own file.
        let mut stored = a.table.lock().unwrap()[0].clone();
        stored.options.insert(
            "file_path".to_owned(),
            dir.path().join("b.log").display().to_string(),
        );
        assert_ne!(
            stored.checkpoint_path().unwrap(),
            a.table.lock().unwrap()[0].checkpoint_path().unwrap()
        );
        let record = crate::audit::device::tests::record(1);
        for _ in 0..3 {
            a.broker.log(&record).await.unwrap();
        }
        a.broker.disable("file").unwrap();
        let sidecar = crate::audit::chain::Checkpoint::parse(
            &std::fs::read(crate::audit::sidecar_path(&path_a)).unwrap(),
        )
        .unwrap();
        assert_eq!(a.checkpoint("file").unwrap(), Some((3, sidecar.chain)));
        assert_eq!(
            b.checkpoint("file").unwrap(),
            None,
            "B has not loaded the table"
        );
        a.disable("file").unwrap();
        assert_eq!(a.checkpoint("file").unwrap(), None);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn a_device_this_node_cannot_open_fails_requests_until_it_opens() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        let (a, b) = two_nodes();
        a.enable("file", "file", "", file_options(&sub.join("audit.log")))
            .unwrap();
        // Where B would open its copy, a file now stands in for the directory.
        std::fs::remove_dir_all(&sub).unwrap();
        std::fs::write(&sub, b"not a directory").unwrap();
        b.reload().unwrap();
        assert!(!b.broker.is_empty(), "B counts the device as configured");
        let record = crate::audit::device::tests::record(1);
        assert!(
            b.broker.log(&record).await.is_err(),
            "B served a request with no device recording it"
        );
        std::fs::remove_file(&sub).unwrap();
        std::fs::create_dir(&sub).unwrap();
        b.reload().unwrap();
        assert!(b.broker.is_open("file"));
        b.broker.log(&record).await.unwrap();
        // Removed elsewhere: closed here too.
        a.disable("file").unwrap();
        b.reload().unwrap();
        assert!(b.broker.is_empty());
    }
}
