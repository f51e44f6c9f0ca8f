//! Server state: the mounts and their cached keyrings.
//!
//! Reads (every crypto request) take a short read lock to clone one
//! `Arc<Keyring>`; writers serialize per mount, build a changed copy of the
//! keyring off to the side, and publish it by swapping the `Arc`.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};

use transit_keys::Keyring;
use zeroize::Zeroizing;

use crate::error::{ApiError, ApiResult};

/// Request limits; explicit settings instead of OpenBao's hidden JSON ceilings.
#[derive(Clone, Debug)]
pub struct Limits {
    pub max_body_bytes: usize,
    pub max_batch_items: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: 32 << 20,
            max_batch_items: 100_000,
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct MountConfig {
    pub disable_upsert: bool,
    pub cache_size: u64,
}

/// One transit mount: its own independent set of keys.
#[derive(Debug)]
pub struct Mount {
    pub path: String,
    pub uuid: String,
    pub accessor: String,
    pub description: String,
    keys: RwLock<HashMap<String, Arc<Keyring>>>,
    /// Held while a keyring of this mount is being changed.
    write: Mutex<()>,
    config: RwLock<MountConfig>,
}

fn poisoned() -> ApiError {
    ApiError::Internal("lock poisoned".to_owned())
}

impl Mount {
    pub fn new(path: &str, description: &str) -> Self {
        Self {
            path: path.to_owned(),
            uuid: uuid::Uuid::new_v4().to_string(),
            accessor: format!(
                "transit_{}",
                &uuid::Uuid::new_v4().simple().to_string()[..8]
            ),
            description: description.to_owned(),
            keys: RwLock::default(),
            write: Mutex::default(),
            config: RwLock::default(),
        }
    }

    pub fn key(&self, name: &str) -> ApiResult<Option<Arc<Keyring>>> {
        Ok(self.keys.read().map_err(|_| poisoned())?.get(name).cloned())
    }

    pub fn key_names(&self) -> ApiResult<Vec<String>> {
        let mut names: Vec<String> = self
            .keys
            .read()
            .map_err(|_| poisoned())?
            .keys()
            .cloned()
            .collect();
        names.sort();
        Ok(names)
    }

    /// Run `change` on the current keyring (or `None`) with writers excluded; the
    /// keyring it returns is published, `Ok(None)` deletes the key.
    pub fn update<T>(
        &self,
        name: &str,
        change: impl FnOnce(Option<&Keyring>) -> ApiResult<(Option<Keyring>, T)>,
    ) -> ApiResult<T> {
        let _writer = self.write.lock().map_err(|_| poisoned())?;
        let current = self.key(name)?;
        let (next, out) = change(current.as_deref())?;
        let mut keys = self.keys.write().map_err(|_| poisoned())?;
        match next {
            Some(ring) => {
                keys.insert(name.to_owned(), Arc::new(ring));
            }
            None => {
                keys.remove(name);
            }
        }
        Ok(out)
    }

    pub fn config(&self) -> ApiResult<MountConfig> {
        Ok(self.config.read().map_err(|_| poisoned())?.clone())
    }

    pub fn set_config(&self, config: MountConfig) -> ApiResult<()> {
        *self.config.write().map_err(|_| poisoned())? = config;
        Ok(())
    }
}

#[derive(Debug)]
pub struct AppState {
    root_token: Zeroizing<String>,
    mounts: RwLock<BTreeMap<String, Arc<Mount>>>,
    pub limits: Limits,
    pub cluster_name: String,
    pub cluster_id: String,
}

impl AppState {
    /// Dev mode: in memory, unsealed, transit mounted at `transit/`.
    pub fn dev(root_token: &str, limits: Limits) -> Self {
        let state = Self {
            root_token: Zeroizing::new(root_token.to_owned()),
            mounts: RwLock::default(),
            limits,
            cluster_name: "transitd-dev".to_owned(),
            cluster_id: uuid::Uuid::new_v4().to_string(),
        };
        if let Ok(mut mounts) = state.mounts.write() {
            mounts.insert("transit".to_owned(), Arc::new(Mount::new("transit", "")));
        }
        state
    }

    /// Constant-time check of a presented token.
    pub fn token_is_valid(&self, token: &str) -> bool {
        use ring::digest::{SHA256, digest};
        use subtle::ConstantTimeEq;
        // Compare digests so the time does not depend on where, or whether, lengths differ.
        let a = digest(&SHA256, token.as_bytes());
        let b = digest(&SHA256, self.root_token.as_bytes());
        a.as_ref().ct_eq(b.as_ref()).into()
    }

    /// The mount whose path is the longest prefix of `path`, and the rest.
    pub fn resolve<'p>(&self, path: &'p str) -> ApiResult<Option<(Arc<Mount>, &'p str)>> {
        let mounts = self.mounts.read().map_err(|_| poisoned())?;
        let found = mounts
            .iter()
            .filter_map(|(m, mount)| {
                let rest = path.strip_prefix(m.as_str())?;
                (rest.is_empty() || rest.starts_with('/'))
                    .then(|| (mount, rest.trim_start_matches('/')))
            })
            .max_by_key(|(mount, _)| mount.path.len())
            .map(|(mount, rest)| (Arc::clone(mount), rest));
        Ok(found)
    }

    pub fn mounts(&self) -> ApiResult<Vec<Arc<Mount>>> {
        Ok(self
            .mounts
            .read()
            .map_err(|_| poisoned())?
            .values()
            .cloned()
            .collect())
    }

    pub fn enable_mount(&self, path: &str, description: &str) -> ApiResult<()> {
        let mut mounts = self.mounts.write().map_err(|_| poisoned())?;
        let clash = mounts.keys().any(|m| {
            m == path || path.starts_with(&format!("{m}/")) || m.starts_with(&format!("{path}/"))
        });
        if clash || path.starts_with("sys") || path.starts_with("auth") {
            return Err(ApiError::bad(format!("path is already in use at {path}/")));
        }
        mounts.insert(path.to_owned(), Arc::new(Mount::new(path, description)));
        Ok(())
    }

    pub fn disable_mount(&self, path: &str) -> ApiResult<()> {
        self.mounts.write().map_err(|_| poisoned())?.remove(path);
        Ok(())
    }
}
