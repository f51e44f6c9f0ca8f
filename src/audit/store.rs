//! The audit device table (`sys/audit`), kept through the barrier at
//! `core/audit` with each device's HMAC salt and checkpoint signing key, and
//! the broker that writes to the enabled devices.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use super::{AuditBroker, DeviceConfig, generate_salt, generate_signing_key};
use crate::seal::barrier::Barrier;
use crate::seal::edit::{Edit, edit_json, read_json};
use crate::storage::blocking;
use crate::storage::layout::AUDIT_TABLE as TABLE_PATH;
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
    fn config(&self) -> StoreResult<DeviceConfig> {
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
        })
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
            broker.enable(&device.path, device.config()?).map_err(|e| {
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
                .enable(&path, stored.config()?)
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
        *table = devices.unwrap_or_default();
        self.broker.forget_unopened(&path);
        if !self.broker.is_open(&path) {
            return Ok(());
        }
        blocking(|| self.broker.disable(&path)).map_err(|e| StoreError::Internal(e.to_string()))
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
                    .enable(&device.path, device.config()?)
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
            }
        }
        *table = stored;
        Ok(())
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
    use crate::seal::barrier::BarrierKeyring;
    use crate::storage::{MemoryStorage, Storage};

    fn two_nodes() -> (AuditStore, AuditStore) {
        let storage: Arc<dyn Storage> = Arc::new(MemoryStorage::shared());
        let barrier = Arc::new(Barrier::new(storage, BarrierKeyring::generate().unwrap()));
        (
            AuditStore::load(Arc::clone(&barrier)).unwrap(),
            AuditStore::load(barrier).unwrap(),
        )
    }

    fn file_options(path: &std::path::Path) -> BTreeMap<String, String> {
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
