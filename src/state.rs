//! Server state: the seal, and once unsealed, the mounts and their cached
//! keyrings.
//!
//! Reads (every crypto request) load the unsealed state without a lock and take
//! a short read lock to clone one `Arc<Keyring>`. Writers serialize per mount,
//! build a changed copy of the keyring off to the side, write it through the
//! barrier (durable before anything else sees it), then publish it by swapping
//! the `Arc`. Sealing drops the unsealed state: once in-flight requests finish,
//! every keyring and the barrier keys are zeroized as they drop.
//!
//! Storage layout (all through the barrier unless noted):
//! `core/seal-config` (plain), `core/keyring` (sealed by the root key),
//! `core/lookup-key` (HMAC key naming stored keys and tokens), `core/cluster`,
//! `core/mounts`, `logical/<mount uuid>/config`,
//! `logical/<mount uuid>/keys/<HMAC of key name>`, `auth/token/id/<HMAC of token>`.
//! Names are HMACed so the database shows neither key names nor tokens.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};

use arc_swap::ArcSwapOption;
use serde::{Deserialize, Serialize};
use transit_keys::Keyring;

use crate::audit::store::AuditStore;
use crate::auth::methods::Methods;
use crate::auth::policy_store::PolicyStore;
use crate::auth::token::{TokenRequest, TokenStore};
use crate::error::{ApiError, ApiResult};
use crate::seal::barrier::{Barrier, BarrierError, SecretKey};
use crate::seal::edit::{Edit, edit_json, edit_raw, read_json};
use crate::seal::{Seal, SealError, SealKind};
use crate::storage::{MemoryStorage, Storage, StorageError, blocking};

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

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct MountConfig {
    pub disable_upsert: bool,
    pub cache_size: u64,
}

fn poisoned() -> ApiError {
    ApiError::Internal("lock poisoned".to_owned())
}

impl From<BarrierError> for ApiError {
    fn from(e: BarrierError) -> Self {
        match e {
            BarrierError::Storage(StorageError::Unavailable(cause)) => {
                tracing::error!(%cause, "storage unavailable");
                Self::Unavailable("storage is unavailable; the change was not made".to_owned())
            }
            other => Self::Internal(other.to_string()),
        }
    }
}

impl From<SealError> for ApiError {
    fn from(e: SealError) -> Self {
        match e {
            SealError::Invalid(m) => Self::BadRequest(m),
            SealError::Failed(m) => Self::Internal(m),
        }
    }
}

const LOOKUP_KEY_PATH: &str = "core/lookup-key";
/// Compare-and-swap attempts before a write gives up with a retryable 503.
const CLUSTER_PATH: &str = "core/cluster";
const MOUNTS_PATH: &str = "core/mounts";

/// HMAC-SHA256 under the lookup key, hex: how names appear in storage paths,
/// and how a presented token is found (on every request: the key schedule is
/// prepared once, as for the transit HMAC keys).
pub(crate) struct LookupKey {
    hmac: ring::hmac::Key,
}

impl std::fmt::Debug for LookupKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LookupKey(redacted)")
    }
}

impl LookupKey {
    /// The raw key (zeroizing) is dropped once the key schedule is built.
    pub(crate) fn new(raw: SecretKey) -> Self {
        Self {
            hmac: ring::hmac::Key::new(ring::hmac::HMAC_SHA256, raw.expose()),
        }
    }

    pub(crate) fn digest(&self, value: &str) -> [u8; 32] {
        let tag = ring::hmac::sign(&self.hmac, value.as_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        out
    }

    pub(crate) fn name(&self, value: &str) -> String {
        hex::encode(self.digest(value))
    }
}

/// A mount's row in `core/mounts`.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct MountEntry {
    path: String,
    uuid: String,
    accessor: String,
    description: String,
}

/// One transit mount: its own independent set of keys.
#[derive(Debug)]
pub struct Mount {
    pub path: String,
    pub uuid: String,
    pub accessor: String,
    pub description: String,
    keys: RwLock<HashMap<String, Arc<Keyring>>>,
    /// Held while a keyring or the config of this mount is being changed.
    write: Mutex<()>,
    /// When each key was last read from storage on a reader's behalf: a read
    /// that started after a request arrived answers for that request too.
    reread_at: Mutex<HashMap<String, std::time::Instant>>,
    config: RwLock<MountConfig>,
    barrier: Arc<Barrier>,
    lookup: Arc<LookupKey>,
}

impl Mount {
    fn new(entry: MountEntry, barrier: Arc<Barrier>, lookup: Arc<LookupKey>) -> Self {
        Self {
            path: entry.path,
            uuid: entry.uuid,
            accessor: entry.accessor,
            description: entry.description,
            keys: RwLock::default(),
            write: Mutex::default(),
            reread_at: Mutex::default(),
            config: RwLock::default(),
            barrier,
            lookup,
        }
    }

    fn prefix(&self) -> String {
        format!("logical/{}/", self.uuid)
    }

    fn key_path(&self, name: &str) -> String {
        format!("{}keys/{}", self.prefix(), self.lookup.name(name))
    }

    fn config_path(&self) -> String {
        format!("{}config", self.prefix())
    }

    /// Read this mount's keys and config from storage.
    /// Writers are excluded meanwhile, so a local change cannot be overwritten
    /// by the older state read here.
    fn load(&self) -> ApiResult<()> {
        let _writer = self.write.lock().map_err(|_| poisoned())?;
        let mut keys = HashMap::new();
        for path in self.barrier.list(&format!("{}keys/", self.prefix()))? {
            let Some(bytes) = self.barrier.get(&path)? else {
                // Deleted (by another node) since the listing.
                continue;
            };
            let ring = Keyring::from_stored_bytes(&bytes)
                .map_err(|e| ApiError::Internal(format!("{path}: {e}")))?;
            if path != self.key_path(ring.name()) {
                return Err(ApiError::Internal(format!(
                    "{path} holds a key stored under another name"
                )));
            }
            keys.insert(ring.name().to_owned(), Arc::new(ring));
        }
        let config = match self.barrier.get(&self.config_path())? {
            Some(raw) => serde_json::from_slice(&raw)
                .map_err(|e| ApiError::Internal(format!("mount config: {e}")))?,
            None => MountConfig::default(),
        };
        *self.keys.write().map_err(|_| poisoned())? = keys;
        *self.config.write().map_err(|_| poisoned())? = config;
        Ok(())
    }

    /// Whether other nodes write to this mount's storage too.
    pub fn is_shared(&self) -> bool {
        self.barrier.storage().is_shared()
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

    pub fn key_count(&self) -> ApiResult<usize> {
        Ok(self.keys.read().map_err(|_| poisoned())?.len())
    }

    /// Run `change` on the current keyring (or `None`) with writers excluded; the
    /// keyring it returns is made durable and then published, `Ok(None)` deletes
    /// the key. If storage fails, nothing changes.
    ///
    /// The current keyring is read from storage, not from the cache, and written
    /// back with compare-and-swap: when several nodes share the storage, two
    /// concurrent changes (say, two rotations) both apply, one after the other,
    /// instead of one silently overwriting the other. `change` may therefore run
    /// more than once.
    pub fn update<T>(
        &self,
        name: &str,
        mut change: impl FnMut(Option<&Keyring>) -> ApiResult<(Option<Keyring>, T)>,
    ) -> ApiResult<T> {
        let _writer = self.write.lock().map_err(|_| poisoned())?;
        let path = self.key_path(name);
        let mut outcome = None;
        edit_raw(&self.barrier, &path, "the key", |plain| {
            let current = plain
                .map(Keyring::from_stored_bytes)
                .transpose()
                .map_err(|e| ApiError::Internal(format!("{path}: {e}")))?;
            let (next, out) = change(current.as_ref())?;
            let edit = match &next {
                Some(ring) => Edit::Put(ring.to_stored_bytes()?),
                None => Edit::Delete,
            };
            outcome = Some((next, out));
            Ok(edit)
        })?;
        let (next, out) =
            outcome.ok_or_else(|| ApiError::Internal("a key change ran no change".to_owned()))?;
        self.publish(name, next.map(Arc::new))?;
        Ok(out)
    }

    fn publish(&self, name: &str, ring: Option<Arc<Keyring>>) -> ApiResult<()> {
        let mut keys = self.keys.write().map_err(|_| poisoned())?;
        match ring {
            Some(ring) => keys.insert(name.to_owned(), ring),
            None => keys.remove(name),
        };
        Ok(())
    }

    /// The key for reading something made with its version `version` (a
    /// ciphertext, signature or HMAC). With storage shared by several nodes
    /// this node's copy may lag behind another node's rotation or creation:
    /// if it is missing or older than `version`, the key is read from storage
    /// first, so a valid input never fails because of a stale cache.
    ///
    /// Concurrent requests share one storage read: a read that started after a
    /// request arrived is as good as the request's own. (Sequential requests
    /// naming a version that does not exist cost one indexed read each.)
    pub fn key_for_version(&self, name: &str, version: i64) -> ApiResult<Option<Arc<Keyring>>> {
        let cached = self.key(name)?;
        let fresh = cached
            .as_ref()
            .is_some_and(|r| i64::from(r.latest_version()) >= version);
        if fresh || !self.is_shared() {
            return Ok(cached);
        }
        let arrived = std::time::Instant::now();
        // Under the writer lock: what is read here cannot overwrite a newer local write.
        let _writer = self.write.lock().map_err(|_| poisoned())?;
        {
            let mut reread = self.reread_at.lock().map_err(|_| poisoned())?;
            if reread.get(name).is_some_and(|at| *at >= arrived) {
                drop(reread);
                return self.key(name);
            }
            if reread.len() >= 1024 {
                // Only requests waiting right now benefit from an entry.
                reread.clear();
            }
            reread.insert(name.to_owned(), std::time::Instant::now());
        }
        self.reread_locked(name)
    }

    /// Read one key from storage into the cache; the writer lock is held.
    fn reread_locked(&self, name: &str) -> ApiResult<Option<Arc<Keyring>>> {
        let path = self.key_path(name);
        let ring = match blocking(|| self.barrier.get(&path))? {
            Some(bytes) => Some(Arc::new(
                Keyring::from_stored_bytes(&bytes)
                    .map_err(|e| ApiError::Internal(format!("{path}: {e}")))?,
            )),
            None => None,
        };
        self.publish(name, ring.clone())?;
        Ok(ring)
    }

    /// A storage path of this mount changed elsewhere: bring the cache up to date.
    fn apply_change(&self, path: &str) -> ApiResult<()> {
        // Under the writer lock: a local write in flight either lands before
        // this read (and is read back) or after it (and is published last).
        let _writer = self.write.lock().map_err(|_| poisoned())?;
        if path == self.config_path() {
            let config = match self.barrier.get(path)? {
                Some(raw) => serde_json::from_slice(&raw)
                    .map_err(|e| ApiError::Internal(format!("mount config: {e}")))?,
                None => MountConfig::default(),
            };
            *self.config.write().map_err(|_| poisoned())? = config;
            return Ok(());
        }
        match self.barrier.get(path)? {
            Some(bytes) => {
                let ring = Keyring::from_stored_bytes(&bytes)
                    .map_err(|e| ApiError::Internal(format!("{path}: {e}")))?;
                if path != self.key_path(ring.name()) {
                    return Err(ApiError::Internal(format!(
                        "{path} holds a key stored under another name"
                    )));
                }
                let name = ring.name().to_owned();
                self.publish(&name, Some(Arc::new(ring)))
            }
            None => {
                // Deleted: find which cached name lives at this path.
                let gone: Vec<String> = self
                    .keys
                    .read()
                    .map_err(|_| poisoned())?
                    .keys()
                    .filter(|n| self.key_path(n) == path)
                    .cloned()
                    .collect();
                for name in gone {
                    self.publish(&name, None)?;
                }
                Ok(())
            }
        }
    }

    pub fn config(&self) -> ApiResult<MountConfig> {
        Ok(self.config.read().map_err(|_| poisoned())?.clone())
    }

    /// Change the stored config (by compare-and-swap, so two nodes changing
    /// different settings keep both) and return what is stored now.
    pub fn update_config(
        &self,
        mut change: impl FnMut(&mut MountConfig),
    ) -> ApiResult<MountConfig> {
        let _writer = self.write.lock().map_err(|_| poisoned())?;
        let config = edit_json(
            &self.barrier,
            &self.config_path(),
            "the mount config",
            |c| {
                let mut config: MountConfig = c.unwrap_or_default();
                change(&mut config);
                Ok(Edit::Put(config))
            },
        )?
        .unwrap_or_default();
        *self.config.write().map_err(|_| poisoned())? = config.clone();
        Ok(config)
    }
}

/// Everything that exists only while unsealed.
#[derive(Debug)]
pub struct Unsealed {
    barrier: Arc<Barrier>,
    lookup: Arc<LookupKey>,
    pub cluster_id: String,
    mounts: RwLock<BTreeMap<String, Arc<Mount>>>,
    /// Held while the mount table changes.
    mount_table: Mutex<()>,
    pub tokens: TokenStore,
    pub policies: PolicyStore,
    pub methods: Methods,
    pub audit: AuditStore,
}

#[derive(Serialize, Deserialize)]
struct ClusterInfo {
    id: String,
}

impl Unsealed {
    /// Load the whole state from storage (at unseal).
    fn load(barrier: Arc<Barrier>) -> ApiResult<Self> {
        let lookup = barrier
            .get(LOOKUP_KEY_PATH)?
            .and_then(|raw| SecretKey::from_slice(&raw))
            .ok_or_else(|| ApiError::Internal("the lookup key is missing".to_owned()))?;
        let lookup = Arc::new(LookupKey::new(lookup));
        let cluster: ClusterInfo = read_json(&barrier, CLUSTER_PATH)?
            .ok_or_else(|| ApiError::Internal("cluster info is missing".to_owned()))?;
        // Written at init: if it is gone, storage is damaged. Refuse to unseal
        // rather than treat every key as an orphan and delete it.
        let entries: Vec<MountEntry> = read_json(&barrier, MOUNTS_PATH)?.ok_or_else(|| {
            ApiError::Internal("the mount table (core/mounts) is missing from storage".to_owned())
        })?;
        let mut mounts = BTreeMap::new();
        for entry in entries {
            let mount = Mount::new(entry, Arc::clone(&barrier), Arc::clone(&lookup));
            mount.load()?;
            mounts.insert(mount.path.clone(), Arc::new(mount));
        }
        let tokens = TokenStore::load(Arc::clone(&barrier), Arc::clone(&lookup))?;
        let policies = PolicyStore::load(Arc::clone(&barrier), Arc::clone(&lookup))?;
        let methods = Methods::load(Arc::clone(&barrier), Arc::clone(&lookup))?;
        let audit = AuditStore::load(Arc::clone(&barrier))?;
        let unsealed = Self {
            barrier,
            lookup,
            cluster_id: cluster.id,
            mounts: RwLock::new(mounts),
            mount_table: Mutex::default(),
            tokens,
            policies,
            methods,
            audit,
        };
        // With shared storage the sweep runs in the background instead, not
        // in every node's start.
        if !unsealed.barrier.storage().is_shared() {
            unsealed.remove_orphans()?;
        }
        Ok(unsealed)
    }

    /// Another node changed `path` in the shared storage: refresh what caches it.
    pub fn apply_change(&self, path: &str) -> ApiResult<()> {
        if path == MOUNTS_PATH {
            return self.reload_mounts();
        }
        if let Some(rest) = path.strip_prefix("logical/") {
            let uuid = rest.split('/').next().unwrap_or_default();
            let mount = self
                .mounts
                .read()
                .map_err(|_| poisoned())?
                .values()
                .find(|m| m.uuid == uuid)
                .cloned();
            return match mount {
                Some(m) => m.apply_change(path),
                None => Ok(()),
            };
        }
        if path.starts_with(crate::auth::token::ID_PREFIX) {
            return self.tokens.apply_change(path);
        }
        if path.starts_with("auth/token/") {
            // Parent links: read from storage when a token is revoked, never cached.
            return Ok(());
        }
        if path.starts_with("sys/policy/") {
            return self.policies.apply_change(path);
        }
        if path == crate::auth::methods::TABLE_PATH || path.starts_with("auth/") {
            return self.methods.apply_change(path);
        }
        if path == "core/audit" {
            return self.audit.reload();
        }
        Ok(())
    }

    /// After missed notifications: re-read everything shared.
    pub fn reload_all(&self) -> ApiResult<()> {
        self.reload_mounts()?;
        for mount in self.mounts()? {
            mount.load()?;
        }
        self.tokens.reload_all()?;
        self.policies.reload_all()?;
        self.methods.reload_all()?;
        self.audit.reload()
    }

    /// Re-read the mount table: new mounts are loaded, removed ones dropped,
    /// unchanged ones kept as they are.
    fn reload_mounts(&self) -> ApiResult<()> {
        let _writer = self.mount_table.lock().map_err(|_| poisoned())?;
        let entries: Vec<MountEntry> = read_json(&self.barrier, MOUNTS_PATH)?.ok_or_else(|| {
            ApiError::Internal("the mount table (core/mounts) is missing from storage".to_owned())
        })?;
        self.install_mounts(entries)
    }

    /// Make the cached mounts match `entries` (the mount table lock is held):
    /// new mounts are loaded, removed ones dropped, unchanged ones kept.
    fn install_mounts(&self, entries: Vec<MountEntry>) -> ApiResult<()> {
        let current = self.mounts.read().map_err(|_| poisoned())?.clone();
        let mut next = BTreeMap::new();
        for entry in entries {
            let mount = match current.get(&entry.path).filter(|m| m.uuid == entry.uuid) {
                Some(m) => Arc::clone(m),
                None => {
                    let m = Mount::new(entry, Arc::clone(&self.barrier), Arc::clone(&self.lookup));
                    m.load()?;
                    Arc::new(m)
                }
            };
            next.insert(mount.path.clone(), mount);
        }
        *self.mounts.write().map_err(|_| poisoned())? = next;
        Ok(())
    }

    /// Entries of secrets engines and login methods that are no longer
    /// mounted (a removal interrupted by a crash, or, with shared storage, a
    /// node writing into a mount another node had just removed); returns how
    /// many were deleted.
    ///
    /// Safe while other nodes work: an entry is only ever written under a
    /// mount that its table already lists, and the tables are read after the
    /// listing, so a mount created meanwhile is never mistaken for a removed one.
    pub fn remove_orphans(&self) -> ApiResult<usize> {
        let listed: Vec<String> = blocking(|| -> ApiResult<Vec<String>> {
            let mut paths = self.barrier.list("logical/")?;
            paths.extend(
                self.barrier
                    .list("auth/")?
                    .into_iter()
                    .filter(|p| !p.starts_with("auth/token/")),
            );
            Ok(paths)
        })?;
        if listed.is_empty() {
            return Ok(0);
        }
        let mounts: Vec<MountEntry> = read_json(&self.barrier, MOUNTS_PATH)?.ok_or_else(|| {
            ApiError::Internal("the mount table (core/mounts) is missing from storage".to_owned())
        })?;
        let methods: Vec<crate::auth::methods::MethodEntry> =
            read_json(&self.barrier, crate::auth::methods::TABLE_PATH)?.unwrap_or_default();
        let live: HashSet<String> = mounts
            .iter()
            .map(|m| format!("logical/{}/", m.uuid))
            .chain(methods.iter().map(|m| format!("auth/{}/", m.uuid)))
            .collect();
        let mut removed = 0;
        for path in listed {
            let prefix_len = path
                .match_indices('/')
                .nth(1)
                .map_or(path.len(), |(i, _)| i + 1);
            if !live.contains(&path[..prefix_len]) {
                blocking(|| self.barrier.delete(&path))?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// First entries of a new server, written before it counts as initialized.
    fn bootstrap(barrier: &Arc<Barrier>, root_token: &str) -> ApiResult<()> {
        let lookup = SecretKey::random()?;
        barrier.put(LOOKUP_KEY_PATH, lookup.expose())?;
        let lookup = Arc::new(LookupKey::new(lookup));
        write_json(
            barrier,
            CLUSTER_PATH,
            &ClusterInfo {
                id: uuid::Uuid::new_v4().to_string(),
            },
        )?;
        let transit = new_mount_entry("transit", "");
        write_json(barrier, MOUNTS_PATH, &vec![transit])?;
        let tokens = TokenStore::load(Arc::clone(barrier), lookup)?;
        let root = TokenRequest {
            policies: vec!["root".to_owned()],
            display_name: "root".to_owned(),
            path: "auth/token/root".to_owned(),
            ..TokenRequest::default()
        };
        tokens.create(
            root,
            Some(root_token),
            time::OffsetDateTime::now_utc().unix_timestamp(),
        )?;
        Ok(())
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

    /// Edit the stored mount table (not this node's copy, which may lag behind
    /// another node's edit) with compare-and-swap, then bring the cache in line.
    fn change_mount_table(
        &self,
        mut change: impl FnMut(&mut Vec<MountEntry>) -> ApiResult<()>,
    ) -> ApiResult<()> {
        let entries = edit_json(&self.barrier, MOUNTS_PATH, "the mount table", |table| {
            let mut entries: Vec<MountEntry> = table.ok_or_else(|| {
                ApiError::Internal(
                    "the mount table (core/mounts) is missing from storage".to_owned(),
                )
            })?;
            change(&mut entries)?;
            Ok(Edit::Put(entries))
        })?
        .unwrap_or_default();
        self.install_mounts(entries)
    }

    pub fn enable_mount(&self, path: &str, description: &str) -> ApiResult<()> {
        let _writer = self.mount_table.lock().map_err(|_| poisoned())?;
        if path.starts_with("sys") || path.starts_with("auth") {
            return Err(ApiError::bad(format!("path is already in use at {path}/")));
        }
        self.change_mount_table(|entries| {
            let clash = entries.iter().any(|e| {
                let m = &e.path;
                *m == path
                    || path.starts_with(&format!("{m}/"))
                    || m.starts_with(&format!("{path}/"))
            });
            if clash {
                return Err(ApiError::bad(format!("path is already in use at {path}/")));
            }
            entries.push(new_mount_entry(path, description));
            Ok(())
        })
    }

    pub fn disable_mount(&self, path: &str) -> ApiResult<()> {
        let _writer = self.mount_table.lock().map_err(|_| poisoned())?;
        let mut removed = None;
        self.change_mount_table(|entries| {
            removed = entries
                .iter()
                .position(|e| e.path == path)
                .map(|i| entries.remove(i));
            Ok(())
        })?;
        let Some(removed) = removed else {
            return Ok(());
        };
        // The table first: a crash after it leaves orphans that the next unseal removes.
        let prefix = format!("logical/{}/", removed.uuid);
        blocking(|| -> ApiResult<()> {
            for entry in self.barrier.list(&prefix)? {
                self.barrier.delete(&entry)?;
            }
            Ok(())
        })
    }
}

fn new_mount_entry(path: &str, description: &str) -> MountEntry {
    MountEntry {
        path: path.to_owned(),
        uuid: uuid::Uuid::new_v4().to_string(),
        accessor: format!(
            "transit_{}",
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        ),
        description: description.to_owned(),
    }
}

fn write_json<T: Serialize>(barrier: &Barrier, path: &str, value: &T) -> ApiResult<()> {
    let raw = serde_json::to_vec(value).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(barrier.put(path, &raw)?)
}

/// What `sys/init` hands back, once.
#[derive(Debug)]
pub struct InitOutput {
    pub shares: Vec<zeroize::Zeroizing<Vec<u8>>>,
    pub root_token: zeroize::Zeroizing<String>,
}

#[derive(Debug)]
pub struct AppState {
    seal: Seal,
    unsealed: Arc<ArcSwapOption<Unsealed>>,
    /// Set when a change from another node arrived while this one was sealed
    /// or loading: the next unseal re-reads everything once more.
    missed_changes: Arc<std::sync::atomic::AtomicBool>,
    /// Serializes init, unseal and seal.
    transition: Mutex<()>,
    pub limits: Limits,
    pub cluster_name: String,
}

impl AppState {
    /// A sealed server over `storage` (call `auto_unseal` or take shares next).
    pub fn new(
        storage: Arc<dyn Storage>,
        seal: SealKind,
        limits: Limits,
        cluster_name: String,
    ) -> Self {
        let unsealed = Arc::new(ArcSwapOption::empty());
        let missed_changes = Arc::new(std::sync::atomic::AtomicBool::new(false));
        if let Some(changes) = storage.subscribe() {
            crate::changes::follow(changes, Arc::clone(&unsealed), Arc::clone(&missed_changes));
        }
        Self {
            seal: Seal::new(storage, seal),
            unsealed,
            missed_changes,
            transition: Mutex::default(),
            limits,
            cluster_name,
        }
    }

    /// Dev mode: in memory, initialized with one share, unsealed, transit
    /// mounted at `transit/`, `root_token` valid.
    pub fn dev(root_token: &str, limits: Limits) -> Self {
        let state = Self::new(
            Arc::new(MemoryStorage::new()),
            SealKind::Shamir,
            limits,
            "transitd-dev".to_owned(),
        );
        // Memory storage cannot fail, nor can a fresh init with valid parameters.
        let result = state.initialize(1, 1, Some(root_token)).and_then(|init| {
            let share = hex::encode(
                init.shares
                    .first()
                    .map(|s| s.as_slice())
                    .unwrap_or_default(),
            );
            state.unseal(&share).map(|_| ())
        });
        if let Err(e) = result {
            tracing::error!(error = %e, "dev mode failed to initialize");
        }
        state
    }

    pub fn seal_kind(&self) -> &SealKind {
        self.seal.kind()
    }

    pub fn storage_kind(&self) -> &'static str {
        self.seal.storage().kind()
    }

    pub fn seal_config(&self) -> ApiResult<Option<crate::seal::SealConfig>> {
        Ok(self.seal.config()?)
    }

    pub fn unseal_progress(&self) -> (usize, String) {
        self.seal.progress()
    }

    pub fn is_sealed(&self) -> bool {
        self.unsealed.load().is_none()
    }

    /// The unsealed state, or Vault's 503.
    pub fn unsealed(&self) -> ApiResult<Arc<Unsealed>> {
        self.unsealed
            .load_full()
            .ok_or_else(|| ApiError::Unavailable("Vault is sealed".to_owned()))
    }

    /// `sys/init`. The server stays sealed (Shamir) or unseals itself (static).
    pub fn initialize(
        &self,
        shares: u64,
        threshold: u64,
        root_token: Option<&str>,
    ) -> ApiResult<InitOutput> {
        let _t = self.transition.lock().map_err(|_| poisoned())?;
        let init = self.seal.initialize(shares, threshold)?;
        let root_token = zeroize::Zeroizing::new(match root_token {
            Some(t) if !t.is_empty() => t.to_owned(),
            _ => crate::auth::token::new_token()?,
        });
        let barrier = Arc::new(init.barrier);
        blocking(|| Unsealed::bootstrap(&barrier, &root_token))?;
        let (n, t) = match self.seal.kind() {
            SealKind::Shamir => (shares, threshold),
            SealKind::Static(_) => (0, 0),
        };
        self.seal.commit_init(n, t)?;
        if matches!(self.seal.kind(), SealKind::Static(_)) {
            self.install(barrier)?;
        }
        Ok(InitOutput {
            shares: init.shares,
            root_token,
        })
    }

    /// `sys/unseal` with one share; true once unsealed.
    pub fn unseal(&self, share: &str) -> ApiResult<bool> {
        let _t = self.transition.lock().map_err(|_| poisoned())?;
        if !self.is_sealed() {
            return Ok(true);
        }
        match self.seal.submit_share(share)? {
            None => Ok(false),
            Some(barrier) => {
                self.install(Arc::new(barrier))?;
                Ok(true)
            }
        }
    }

    pub fn reset_unseal(&self) {
        self.seal.reset();
    }

    /// Start-up with the static seal: unseal if initialized.
    pub fn auto_unseal(&self) -> ApiResult<bool> {
        let _t = self.transition.lock().map_err(|_| poisoned())?;
        if self.seal.check_type()?.is_none() || !matches!(self.seal.kind(), SealKind::Static(_)) {
            return Ok(false);
        }
        let barrier = self.seal.auto_unseal()?;
        self.install(Arc::new(barrier))?;
        Ok(true)
    }

    /// Refuse to start on storage initialized with another seal type.
    pub fn check_seal_type(&self) -> ApiResult<()> {
        self.seal.check_type()?;
        Ok(())
    }

    fn install(&self, barrier: Arc<Barrier>) -> ApiResult<()> {
        use std::sync::atomic::Ordering;
        self.missed_changes.store(false, Ordering::SeqCst);
        let unsealed = Arc::new(blocking(|| Unsealed::load(barrier))?);
        self.unsealed.store(Some(Arc::clone(&unsealed)));
        // Changes that arrived while loading were not applied: read again.
        if self.missed_changes.swap(false, Ordering::SeqCst) {
            blocking(|| unsealed.reload_all())?;
        }
        Ok(())
    }

    /// `sys/seal`: drop every key; they zeroize as the last request using them ends.
    pub fn seal(&self) -> ApiResult<()> {
        let _t = self.transition.lock().map_err(|_| poisoned())?;
        self.unsealed.store(None);
        self.seal.reset();
        Ok(())
    }

    /// Periodic upkeep while the server runs: expired tokens are removed.
    pub async fn maintain(self: Arc<Self>) {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
        for minute in 0u64.. {
            tick.tick().await;
            let Ok(unsealed) = self.unsealed() else {
                continue;
            };
            let now = time::OffsetDateTime::now_utc().unix_timestamp();
            // With shared storage, orphans are swept here (hourly), not at unseal.
            let sweep_orphans = minute % 60 == 59 && unsealed.barrier.storage().is_shared();
            let sweep = move || -> ApiResult<usize> {
                if sweep_orphans {
                    let n = unsealed.remove_orphans()?;
                    if n > 0 {
                        tracing::info!(entries = n, "entries of removed mounts deleted");
                    }
                }
                if unsealed.audit.broker.has_unopened() {
                    // Try again to open the audit devices that failed here.
                    unsealed.audit.reload()?;
                }
                let mut removed = unsealed.tokens.sweep(now)?;
                for method in unsealed.methods.all()? {
                    if let crate::auth::methods::Backend::AppRole(store) = &method.backend {
                        removed += store.tidy(now)?;
                    }
                }
                Ok(removed)
            };
            match tokio::task::spawn_blocking(sweep).await {
                Ok(Ok(0)) => {}
                Ok(Ok(n)) => tracing::info!(expired = n, "expired tokens and secret IDs removed"),
                Ok(Err(e)) => tracing::warn!(error = %e, "token sweep failed"),
                Err(e) => tracing::warn!(error = %e, "token sweep task failed"),
            }
        }
    }

    /// Whether a presented token is live (false while sealed).
    pub fn token_is_valid(&self, token: &str) -> bool {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        self.unsealed
            .load()
            .as_ref()
            .is_some_and(|u| u.tokens.lookup(token, now).ok().flatten().is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use transit_keys::{CreateOptions, KeyType};

    fn create_key(mount: &Mount, name: &str) {
        let now = time::OffsetDateTime::now_utc();
        mount
            .update(name, |_| {
                let ring =
                    Keyring::create(name, KeyType::Aes256Gcm96, &CreateOptions::default(), now)?;
                Ok((Some(ring), ()))
            })
            .unwrap();
    }

    #[test]
    fn sealing_drops_every_key_and_refuses_service() {
        let state = AppState::dev("root", Limits::default());
        let unsealed = state.unsealed().unwrap();
        let (mount, _) = unsealed.resolve("transit/keys/k").unwrap().unwrap();
        create_key(&mount, "k");
        let ring = Arc::downgrade(&mount.key("k").unwrap().unwrap());
        let whole = Arc::downgrade(&unsealed);
        drop((mount, unsealed));
        state.seal().unwrap();
        // Nothing keeps key material alive: it was dropped (and zeroized) on seal.
        assert!(ring.upgrade().is_none());
        assert!(whole.upgrade().is_none());
        assert!(matches!(state.unsealed(), Err(ApiError::Unavailable(_))));
        assert!(!state.token_is_valid("root"));
    }

    /// Two nodes' copies of one mount over shared storage, hearing nothing of
    /// each other's changes.
    fn two_mounts() -> (Mount, Mount) {
        let storage: Arc<dyn Storage> = Arc::new(MemoryStorage::shared());
        let barrier = Arc::new(Barrier::new(
            storage,
            crate::seal::barrier::BarrierKeyring::generate().unwrap(),
        ));
        let lookup = Arc::new(LookupKey::new(SecretKey::random().unwrap()));
        let entry = new_mount_entry("transit", "");
        let mount = || Mount::new(entry.clone(), Arc::clone(&barrier), Arc::clone(&lookup));
        (mount(), mount())
    }

    #[test]
    fn a_reader_asking_for_a_newer_version_or_an_unknown_key_reads_storage() {
        let (a, b) = two_mounts();
        let now = time::OffsetDateTime::now_utc();
        a.update("k", |_| {
            let ring = Keyring::create("k", KeyType::Ed25519, &CreateOptions::default(), now)?;
            Ok((Some(ring), ()))
        })
        .unwrap();
        // B never heard of the key: a reader's request finds it anyway.
        assert!(b.key("k").unwrap().is_none());
        let ring = b.key_for_version("k", 1).unwrap().unwrap();
        assert_eq!(ring.latest_version(), 1);
        a.update("k", |ring| {
            let mut ring = ring.unwrap().clone();
            ring.rotate(now)?;
            Ok((Some(ring), ()))
        })
        .unwrap();
        // Version 1 is enough: the cache answers. Version 2: storage does.
        assert_eq!(
            b.key_for_version("k", 1).unwrap().unwrap().latest_version(),
            1
        );
        assert_eq!(
            b.key_for_version("k", 2).unwrap().unwrap().latest_version(),
            2
        );
        // A version nobody made: the stored key, which will refuse it.
        assert_eq!(
            b.key_for_version("k", 9).unwrap().unwrap().latest_version(),
            2
        );
        assert!(b.key_for_version("nope", 1).unwrap().is_none());
    }

    #[test]
    fn orphans_of_removed_mounts_are_swept_and_nothing_else() {
        let state = AppState::new(
            Arc::new(MemoryStorage::shared()),
            SealKind::Shamir,
            Limits::default(),
            "c".to_owned(),
        );
        let init = state.initialize(1, 1, Some("root")).unwrap();
        assert!(
            state
                .unseal(&hex::encode(init.shares[0].as_slice()))
                .unwrap()
        );
        let unsealed = state.unsealed().unwrap();
        let (mount, _) = unsealed.resolve("transit/keys/k").unwrap().unwrap();
        create_key(&mount, "k");
        let b = &unsealed.barrier;
        b.put("logical/gone-uuid/keys/x", b"x").unwrap();
        b.put("auth/gone-uuid/users/y", b"y").unwrap();
        let before = b.list("").unwrap().len();
        assert_eq!(unsealed.remove_orphans().unwrap(), 2);
        assert_eq!(b.list("").unwrap().len(), before - 2);
        assert!(
            b.get(&mount.key_path("k")).unwrap().is_some(),
            "a live key was swept"
        );
        assert!(state.token_is_valid("root"));
    }

    #[test]
    fn a_failed_write_changes_nothing() {
        #[derive(Debug)]
        struct Broken;
        impl Storage for Broken {
            fn kind(&self) -> &'static str {
                "broken"
            }
            fn get(&self, _: &str) -> crate::storage::StorageResult<Option<Vec<u8>>> {
                Err(StorageError::Unavailable("down".into()))
            }
            fn put(&self, _: &str, _: &[u8]) -> crate::storage::StorageResult<()> {
                Err(StorageError::Unavailable("down".into()))
            }
            fn delete(&self, _: &str) -> crate::storage::StorageResult<()> {
                Err(StorageError::Unavailable("down".into()))
            }
            fn list(&self, _: &str) -> crate::storage::StorageResult<Vec<String>> {
                Ok(Vec::new())
            }
            fn compare_and_swap(
                &self,
                _: &str,
                _: Option<&[u8]>,
                _: Option<&[u8]>,
            ) -> crate::storage::StorageResult<bool> {
                Err(StorageError::Unavailable("down".into()))
            }
        }
        let barrier = Arc::new(Barrier::new(
            Arc::new(Broken),
            crate::seal::barrier::BarrierKeyring::generate().unwrap(),
        ));
        let lookup = Arc::new(LookupKey::new(SecretKey::random().unwrap()));
        let mount = Mount::new(new_mount_entry("transit", ""), barrier, lookup);
        let now = time::OffsetDateTime::now_utc();
        let err = mount
            .update("k", |_| {
                let ring =
                    Keyring::create("k", KeyType::Aes256Gcm96, &CreateOptions::default(), now)?;
                Ok((Some(ring), ()))
            })
            .unwrap_err();
        assert!(matches!(err, ApiError::Unavailable(_)));
        assert!(mount.key("k").unwrap().is_none());
        assert!(mount.update_config(|c| c.disable_upsert = true).is_err());
        assert!(!mount.config().unwrap().disable_upsert);
    }
}
