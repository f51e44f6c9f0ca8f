//! The table of enabled login methods (`sys/auth`): `token/` always, plus any
//! number of userpass and AppRole mounts, each with its own storage prefix
//! `auth/<uuid>/`. The table is stored through the barrier at `core/auth`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};

use serde::{Deserialize, Serialize};

use super::approle::AppRoleStore;
use super::userpass::UserpassStore;
use crate::error::{ApiError, ApiResult};
use crate::seal::barrier::Barrier;
use crate::state::LookupKey;
use crate::storage::blocking;

pub const TABLE_PATH: &str = "core/auth";

/// A row of `core/auth`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MethodEntry {
    pub path: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub uuid: String,
    pub accessor: String,
    pub description: String,
}

#[derive(Debug)]
pub enum Backend {
    Userpass(UserpassStore),
    AppRole(AppRoleStore),
}

#[derive(Debug)]
pub struct Method {
    pub entry: MethodEntry,
    pub backend: Backend,
}

fn poisoned() -> ApiError {
    ApiError::Internal("auth method table lock poisoned".to_owned())
}

#[derive(Debug)]
pub struct Methods {
    barrier: Arc<Barrier>,
    lookup: Arc<LookupKey>,
    table: RwLock<BTreeMap<String, Arc<Method>>>,
    write: Mutex<()>,
}

fn open(barrier: &Arc<Barrier>, lookup: &Arc<LookupKey>, entry: MethodEntry) -> ApiResult<Method> {
    let prefix = format!("auth/{}/", entry.uuid);
    let backend = match entry.kind.as_str() {
        "userpass" => Backend::Userpass(UserpassStore::load(
            Arc::clone(barrier),
            Arc::clone(lookup),
            prefix,
        )?),
        "approle" => Backend::AppRole(AppRoleStore::load(
            Arc::clone(barrier),
            Arc::clone(lookup),
            prefix,
        )?),
        other => {
            return Err(ApiError::Internal(format!(
                "unknown auth method type {other:?} in storage"
            )));
        }
    };
    Ok(Method { entry, backend })
}

impl Methods {
    pub(crate) fn load(barrier: Arc<Barrier>, lookup: Arc<LookupKey>) -> ApiResult<Self> {
        let entries: Vec<MethodEntry> = match barrier.get(TABLE_PATH)? {
            None => Vec::new(),
            Some(raw) => serde_json::from_slice(&raw)
                .map_err(|e| ApiError::Internal(format!("{TABLE_PATH}: {e}")))?,
        };
        let mut table = BTreeMap::new();
        for entry in entries {
            let method = open(&barrier, &lookup, entry)?;
            table.insert(method.entry.path.clone(), Arc::new(method));
        }
        Ok(Self {
            barrier,
            lookup,
            table: RwLock::new(table),
            write: Mutex::default(),
        })
    }

    /// Re-read the table and reopen methods: all of them (`only: None`, after
    /// missed notifications, or when the table changed) or the one whose
    /// storage prefix `auth/<uuid>/` changed.
    pub fn reload(&self, only: Option<&str>) -> ApiResult<()> {
        let _w = self.write.lock().map_err(|_| poisoned())?;
        let entries: Vec<MethodEntry> = match self.barrier.get(TABLE_PATH)? {
            None => Vec::new(),
            Some(raw) => serde_json::from_slice(&raw)
                .map_err(|e| ApiError::Internal(format!("{TABLE_PATH}: {e}")))?,
        };
        let current = self.table.read().map_err(|_| poisoned())?.clone();
        let mut next = BTreeMap::new();
        for entry in entries {
            let keep = current
                .get(&entry.path)
                .filter(|m| m.entry.uuid == entry.uuid && only.is_some_and(|u| u != entry.uuid));
            let method = match keep {
                Some(m) => Arc::clone(m),
                None => Arc::new(open(&self.barrier, &self.lookup, entry)?),
            };
            next.insert(method.entry.path.clone(), method);
        }
        *self.table.write().map_err(|_| poisoned())? = next;
        Ok(())
    }

    /// The method mounted at the start of `path` (after `auth/`), and the rest.
    pub fn resolve<'p>(&self, path: &'p str) -> ApiResult<Option<(Arc<Method>, &'p str)>> {
        let table = self.table.read().map_err(|_| poisoned())?;
        Ok(table
            .iter()
            .filter_map(|(m, method)| {
                let rest = path.strip_prefix(m.as_str())?;
                (rest.is_empty() || rest.starts_with('/'))
                    .then(|| (Arc::clone(method), rest.trim_start_matches('/')))
            })
            .max_by_key(|(method, _)| method.entry.path.len()))
    }

    pub fn all(&self) -> ApiResult<Vec<Arc<Method>>> {
        Ok(self
            .table
            .read()
            .map_err(|_| poisoned())?
            .values()
            .cloned()
            .collect())
    }

    pub fn entries(&self) -> ApiResult<Vec<MethodEntry>> {
        Ok(self
            .table
            .read()
            .map_err(|_| poisoned())?
            .values()
            .map(|m| m.entry.clone())
            .collect())
    }

    fn persist(&self, table: &BTreeMap<String, Arc<Method>>) -> ApiResult<()> {
        let entries: Vec<&MethodEntry> = table.values().map(|m| &m.entry).collect();
        let raw = serde_json::to_vec(&entries).map_err(|e| ApiError::Internal(e.to_string()))?;
        blocking(|| self.barrier.put(TABLE_PATH, &raw))?;
        Ok(())
    }

    pub fn enable(&self, path: &str, kind: &str, description: &str) -> ApiResult<()> {
        if !matches!(kind, "userpass" | "approle") {
            return Err(ApiError::bad(format!(
                "transitd supports the userpass and approle auth methods, not {kind:?}"
            )));
        }
        if path.is_empty() || path.split('/').any(str::is_empty) {
            return Err(ApiError::bad("invalid auth method path"));
        }
        let _w = self.write.lock().map_err(|_| poisoned())?;
        let mut next = self.table.read().map_err(|_| poisoned())?.clone();
        let clash = path == "token"
            || path.starts_with("token/")
            || next.keys().any(|m| {
                m == path
                    || path.starts_with(&format!("{m}/"))
                    || m.starts_with(&format!("{path}/"))
            });
        if clash {
            return Err(ApiError::bad(format!(
                "path is already in use at auth/{path}/"
            )));
        }
        let entry = MethodEntry {
            path: path.to_owned(),
            kind: kind.to_owned(),
            uuid: uuid::Uuid::new_v4().to_string(),
            accessor: format!(
                "auth_{kind}_{}",
                &uuid::Uuid::new_v4().simple().to_string()[..8]
            ),
            description: description.to_owned(),
        };
        let method = open(&self.barrier, &self.lookup, entry)?;
        next.insert(path.to_owned(), Arc::new(method));
        self.persist(&next)?;
        *self.table.write().map_err(|_| poisoned())? = next;
        Ok(())
    }

    /// Disable a method and delete its users, roles and secret IDs. (The
    /// caller revokes the tokens it issued, as Vault does.)
    pub fn disable(&self, path: &str) -> ApiResult<()> {
        let _w = self.write.lock().map_err(|_| poisoned())?;
        let mut next = self.table.read().map_err(|_| poisoned())?.clone();
        let Some(removed) = next.remove(path) else {
            return Ok(());
        };
        self.persist(&next)?;
        *self.table.write().map_err(|_| poisoned())? = next;
        let prefix = format!("auth/{}/", removed.entry.uuid);
        blocking(|| -> ApiResult<()> {
            for entry in self.barrier.list(&prefix)? {
                self.barrier.delete(&entry)?;
            }
            Ok(())
        })
    }
}
