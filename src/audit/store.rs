//! The audit device table (`sys/audit`), kept through the barrier at
//! `core/audit` with each device's HMAC salt and checkpoint signing key, and
//! the broker that writes to the enabled devices.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use super::{AuditBroker, DeviceConfig, generate_salt, generate_signing_key};
use crate::error::{ApiError, ApiResult};
use crate::seal::barrier::Barrier;
use crate::storage::blocking;

const TABLE_PATH: &str = "core/audit";

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
    fn config(&self) -> ApiResult<DeviceConfig> {
        let decode = |s: &str| {
            STANDARD.decode(s).map_err(|_| {
                ApiError::Internal(format!("audit device {}: corrupt secret", self.path))
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

fn poisoned() -> ApiError {
    ApiError::Internal("audit table lock poisoned".to_owned())
}

fn normalize(path: &str) -> String {
    format!("{}/", path.trim_matches('/'))
}

impl AuditStore {
    /// Open every configured device. A device that cannot be opened (its
    /// file unwritable, or tampered with) stops the unseal: the server never
    /// serves with less auditing than was configured.
    pub(crate) fn load(barrier: Arc<Barrier>) -> ApiResult<Self> {
        let table: Vec<StoredDevice> = match barrier.get(TABLE_PATH)? {
            None => Vec::new(),
            Some(raw) => serde_json::from_slice(&raw)
                .map_err(|e| ApiError::Internal(format!("{TABLE_PATH}: {e}")))?,
        };
        let broker = AuditBroker::new();
        for device in &table {
            broker.enable(&device.path, device.config()?).map_err(|e| {
                ApiError::Internal(format!(
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

    fn persist(&self, table: &[StoredDevice]) -> ApiResult<()> {
        let raw = serde_json::to_vec(table).map_err(|e| ApiError::Internal(e.to_string()))?;
        blocking(|| self.barrier.put(TABLE_PATH, &raw))?;
        Ok(())
    }

    pub fn enable(
        &self,
        path: &str,
        kind: &str,
        description: &str,
        options: BTreeMap<String, String>,
    ) -> ApiResult<()> {
        let path = normalize(path);
        let mut table = self.table.lock().map_err(|_| poisoned())?;
        if table.iter().any(|d| d.path == path) {
            return Err(ApiError::bad(format!("path already in use: {path}")));
        }
        let salt = generate_salt();
        let signing_key = generate_signing_key().map_err(|e| ApiError::Internal(e.to_string()))?;
        let stored = StoredDevice {
            path: path.clone(),
            kind: kind.to_owned(),
            description: description.to_owned(),
            options,
            salt: STANDARD.encode(&salt),
            signing_key: STANDARD.encode(&signing_key),
        };
        blocking(|| {
            self.broker
                .enable(&path, stored.config()?)
                .map_err(|e| ApiError::bad(e.to_string()))
        })?;
        let mut next = table.clone();
        next.push(stored);
        if let Err(e) = self.persist(&next) {
            let _ = blocking(|| self.broker.disable(&path));
            return Err(e);
        }
        *table = next;
        Ok(())
    }

    pub fn disable(&self, path: &str) -> ApiResult<()> {
        let path = normalize(path);
        let mut table = self.table.lock().map_err(|_| poisoned())?;
        let next: Vec<StoredDevice> = table.iter().filter(|d| d.path != path).cloned().collect();
        if next.len() == table.len() {
            return Ok(());
        }
        self.persist(&next)?;
        *table = next;
        blocking(|| self.broker.disable(&path)).map_err(|e| ApiError::Internal(e.to_string()))
    }

    /// Another node changed the device table: open this node's own copy of
    /// every new device, close removed ones.
    pub fn reload(&self) -> ApiResult<()> {
        let stored: Vec<StoredDevice> = match self.barrier.get(TABLE_PATH)? {
            None => Vec::new(),
            Some(raw) => serde_json::from_slice(&raw)
                .map_err(|e| ApiError::Internal(format!("{TABLE_PATH}: {e}")))?,
        };
        let mut table = self.table.lock().map_err(|_| poisoned())?;
        for old in table
            .iter()
            .filter(|o| !stored.iter().any(|n| n.path == o.path))
        {
            blocking(|| self.broker.disable(&old.path))
                .map_err(|e| ApiError::Internal(e.to_string()))?;
        }
        for new in stored
            .iter()
            .filter(|n| !table.iter().any(|o| o.path == n.path))
        {
            blocking(|| {
                self.broker.enable(&new.path, new.config()?).map_err(|e| {
                    ApiError::Internal(format!("audit device {} cannot be opened: {e}", new.path))
                })
            })?;
        }
        *table = stored;
        Ok(())
    }

    pub fn devices(&self) -> ApiResult<Vec<DeviceInfo>> {
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
