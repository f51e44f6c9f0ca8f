//! One transit mount and its cached keyrings.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use serde::{Deserialize, Serialize};
use transit_keys::Keyring;
use transit_keys::byok::WrappingKey;
use zeroize::Zeroizing;

use super::poisoned;
use super::usage::{Counts, Taken, Usage, rotation_threshold};
use crate::name_syntax::is_generic;
use crate::seal::barrier::Barrier;
use crate::seal::edit::{Edit, edit_json, edit_raw, edit_raw_with};
use crate::seal::lookup::LookupKey;
use crate::storage::layout::{self, MOUNT_CONFIG, MOUNT_KEYS, MOUNT_WRAPPING_KEY, USAGE};
use crate::storage::{Cached, StoreError, StoreResult};
use crate::storage::{blocking, in_background};

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct MountConfig {
    pub disable_upsert: bool,
    pub cache_size: u64,
}

/// A mount's row in `core/mounts`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct MountEntry {
    pub(super) path: String,
    pub(super) uuid: String,
    pub(super) accessor: String,
    pub(super) description: String,
}

/// What a change makes of a stored keyring.
enum KeyEdit {
    Put(Keyring),
    Delete,
    Keep,
}

/// One transit mount: its own independent set of keys.
#[derive(Debug)]
pub struct Mount {
    pub path: String,
    pub uuid: String,
    pub accessor: String,
    pub description: String,
    /// Keyrings by name; its writer lock is held while a keyring or the
    /// config of this mount is being changed or refreshed.
    keys: Cached<HashMap<String, Arc<Keyring>>>,
    /// When each key was last read from storage on a reader's behalf: a read
    /// that started after a request arrived answers for that request too.
    reread_at: Mutex<HashMap<String, std::time::Instant>>,
    /// Changed under the keys' writer lock.
    config: RwLock<MountConfig>,
    /// The BYOK wrapping key once read or made; held while it is being made,
    /// so concurrent first requests wait for one key instead of making several.
    wrapping_key: Mutex<Option<Arc<WrappingKey>>>,
    barrier: Arc<Barrier>,
    lookup: Arc<LookupKey>,
    /// This node's share of the keys' encryption counts.
    usage: Usage,
}

impl Mount {
    pub(super) fn new(entry: MountEntry, barrier: Arc<Barrier>, lookup: Arc<LookupKey>) -> Self {
        Self {
            path: entry.path,
            uuid: entry.uuid,
            accessor: entry.accessor,
            description: entry.description,
            keys: Cached::new("mount", HashMap::new()),
            reread_at: Mutex::default(),
            config: RwLock::default(),
            wrapping_key: Mutex::default(),
            barrier,
            lookup,
            usage: Usage::default(),
        }
    }

    fn prefix(&self) -> String {
        layout::mount_prefix(&self.uuid)
    }

    pub(super) fn key_path(&self, name: &str) -> String {
        format!("{}{MOUNT_KEYS}{}", self.prefix(), self.lookup.name(name))
    }

    /// Where the encryption count of `version`'s key material lives: named
    /// by the material, not the key, so every copy of it shares one count.
    fn usage_path(&self, ring: &Keyring, version: u32) -> StoreResult<String> {
        let v = ring.version(version).ok_or_else(|| {
            StoreError::Internal(format!("key {} has no version {version}", ring.name()))
        })?;
        Ok(format!(
            "{USAGE}{}",
            self.lookup.material_name(v.material_for_fingerprint())
        ))
    }

    fn config_path(&self) -> String {
        format!("{}{MOUNT_CONFIG}", self.prefix())
    }

    fn wrapping_key_path(&self) -> String {
        format!("{}{MOUNT_WRAPPING_KEY}", self.prefix())
    }

    /// This mount's RSA-4096 BYOK wrapping key, made on first use (about a
    /// second: callers run off the async workers) and stored sealed. Made by
    /// compare-and-swap on an absent entry, so nodes racing to make it all
    /// end up with the one that was stored first; it never changes after.
    pub fn wrapping_key(&self) -> StoreResult<Arc<WrappingKey>> {
        let mut slot = self.wrapping_key.lock().map_err(|_| poisoned())?;
        if let Some(key) = slot.as_ref() {
            return Ok(Arc::clone(key));
        }
        let corrupt = |e: transit_keys::Error| StoreError::Internal(format!("wrapping key: {e}"));
        let path = self.wrapping_key_path();
        let mut made: Option<Arc<WrappingKey>> = None;
        let stored = edit_raw(&self.barrier, &path, "the wrapping key", |current| {
            if current.is_some() {
                return Ok(Edit::Keep);
            }
            let key = match &made {
                Some(key) => Arc::clone(key),
                None => Arc::new(WrappingKey::generate().map_err(corrupt)?),
            };
            made = Some(Arc::clone(&key));
            Ok(Edit::Put(Zeroizing::new(key.pkcs8().expose().to_vec())))
        })?
        .ok_or_else(|| StoreError::Internal("wrapping key: nothing stored".to_owned()))?;
        let key = match made {
            Some(key) if key.pkcs8().expose() == stored.as_slice() => key,
            _ => Arc::new(
                WrappingKey::from_pkcs8(transit_keys::secret::SecretBytes::from_slice(&stored))
                    .map_err(corrupt)?,
            ),
        };
        *slot = Some(Arc::clone(&key));
        Ok(key)
    }

    /// Read this mount's keys and config from storage.
    /// Writers are excluded meanwhile, so a local change cannot be overwritten
    /// by the older state read here.
    pub(super) fn load(&self) -> StoreResult<()> {
        let _writer = self.keys.writer()?;
        let mut keys = HashMap::new();
        for path in self
            .barrier
            .list(&format!("{}{MOUNT_KEYS}", self.prefix()))?
        {
            let Some(bytes) = self.barrier.get(&path)? else {
                // Deleted (by another node) since the listing.
                continue;
            };
            let ring = Keyring::from_stored_bytes(&bytes)
                .map_err(|e| StoreError::Internal(format!("{path}: {e}")))?;
            if path != self.key_path(ring.name()) {
                return Err(StoreError::Internal(format!(
                    "{path} holds a key stored under another name"
                )));
            }
            keys.insert(ring.name().to_owned(), Arc::new(ring));
        }
        let config = match self.barrier.get(&self.config_path())? {
            Some(raw) => serde_json::from_slice(&raw)
                .map_err(|e| StoreError::Internal(format!("mount config: {e}")))?,
            None => MountConfig::default(),
        };
        *self.keys.write()? = keys;
        *self.config.write().map_err(|_| poisoned())? = config;
        // A full reload may follow missed changes (a key deleted and made
        // again): allowances are reserved anew rather than trusted.
        self.usage.forget_all()?;
        Ok(())
    }

    /// Whether other nodes write to this mount's storage too.
    pub fn is_shared(&self) -> bool {
        self.barrier.storage().is_shared()
    }

    pub fn key(&self, name: &str) -> StoreResult<Option<Arc<Keyring>>> {
        Ok(self.keys.read()?.get(name).cloned())
    }

    pub fn key_names(&self) -> StoreResult<Vec<String>> {
        let mut names: Vec<String> = self.keys.read()?.keys().cloned().collect();
        names.sort();
        Ok(names)
    }

    pub fn key_count(&self) -> StoreResult<usize> {
        Ok(self.keys.read()?.len())
    }

    /// Run `change` on the current keyring (or `None`) with writers excluded; the
    /// keyring it returns is made durable and then published, `Ok(None)` deletes
    /// the key. If storage fails, nothing changes.
    ///
    /// The current keyring is read from storage, not from the cache, and written
    /// back with compare-and-swap: when several nodes share the storage, two
    /// concurrent changes (say, two rotations) both apply, one after the other,
    /// instead of one silently overwriting the other. `change` may therefore run
    /// more than once. It fails with the caller's own error type, which this
    /// returns as it is.
    pub fn update<T, E: From<StoreError>>(
        &self,
        name: &str,
        mut change: impl FnMut(Option<&Keyring>) -> Result<(Option<Keyring>, T), E>,
    ) -> Result<T, E> {
        self.edit(name, |current| {
            let (next, out) = change(current)?;
            Ok((next.map_or(KeyEdit::Delete, KeyEdit::Put), out))
        })
    }

    /// Rotate `name` if its `auto_rotate_period` has passed at `now`. Decided
    /// again on the stored keyring inside the compare-and-swap of a manual
    /// rotation, so nodes that all find it due yield one new version, not one
    /// each. Returns the new version, `None` when it was not due (any more).
    pub fn rotate_if_due(&self, name: &str, now: time::OffsetDateTime) -> StoreResult<Option<u32>> {
        self.edit(name, |current| match current {
            Some(ring) if ring.rotation_due(now) => {
                let mut next = ring.clone();
                let version = next.rotate(now).map_err(StoreError::from)?;
                Ok((KeyEdit::Put(next), Some(version)))
            }
            _ => Ok((KeyEdit::Keep, None)),
        })
    }

    /// [`Self::update`], with the choice to leave the stored key as it is.
    fn edit<T, E: From<StoreError>>(
        &self,
        name: &str,
        mut change: impl FnMut(Option<&Keyring>) -> Result<(KeyEdit, T), E>,
    ) -> Result<T, E> {
        let _writer = self.keys.writer()?;
        let path = self.key_path(name);
        let mut outcome = None;
        edit_raw_with(&self.barrier, &path, "the key", |plain| -> Result<_, E> {
            let current = plain
                .map(Keyring::from_stored_bytes)
                .transpose()
                .map_err(|e| StoreError::Internal(format!("{path}: {e}")))?;
            let (next, out) = change(current.as_ref())?;
            // Every way a key comes to exist (create, encrypt's upsert,
            // restore, import) passes here.
            if current.is_none() && matches!(next, KeyEdit::Put(_)) && !is_generic(name) {
                return Err(StoreError::invalid(format!(
                    "invalid key name {name:?}: a new key's name is letters, digits, '_', '-', \
                     '.' and '@', starting and ending with a letter, digit or '_'"
                ))
                .into());
            }
            let edit = match &next {
                KeyEdit::Put(ring) => Edit::Put(ring.to_stored_bytes().map_err(StoreError::from)?),
                KeyEdit::Delete => Edit::Delete,
                KeyEdit::Keep => Edit::Keep,
            };
            let trimmed_from = match (&current, &next) {
                (Some(before), KeyEdit::Put(after))
                    if after.min_available_version() > before.min_available_version() =>
                {
                    Some(after.min_available_version())
                }
                _ => None,
            };
            outcome = Some((next, out, trimmed_from));
            Ok(edit)
        })?;
        let (next, out, trimmed_from) =
            outcome.ok_or_else(|| StoreError::Internal("a key change ran no change".to_owned()))?;
        match next {
            KeyEdit::Put(ring) => self.publish(name, Some(Arc::new(ring)))?,
            // The material's counts stay (see `state/usage.rs`).
            KeyEdit::Delete => self.publish(name, None)?,
            KeyEdit::Keep => {}
        }
        if let Some(min_available) = trimmed_from {
            self.usage.forget_below(name, min_available)?;
        }
        Ok(out)
    }

    /// Put `ring` (or its absence) in the cache. This node's allowances are
    /// kept by name and version: when a version of the name now holds other
    /// material (deleted and made again, a forced restore), they are dropped,
    /// as they were reserved under the old material's count.
    fn publish(&self, name: &str, ring: Option<Arc<Keyring>>) -> StoreResult<()> {
        let mut keys = self.keys.write()?;
        let old = match ring {
            Some(ring) => keys.insert(name.to_owned(), ring),
            None => keys.remove(name),
        };
        let replaced = match (old.as_deref(), keys.get(name)) {
            (None, _) => false,
            (Some(_), None) => true,
            (Some(old), Some(new)) => !same_material(old, new),
        };
        if replaced {
            self.usage.forget(name)?;
        }
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
    pub fn key_for_version(&self, name: &str, version: i64) -> StoreResult<Option<Arc<Keyring>>> {
        let cached = self.key(name)?;
        let fresh = cached
            .as_ref()
            .is_some_and(|r| i64::from(r.latest_version()) >= version);
        if fresh || !self.is_shared() {
            return Ok(cached);
        }
        let arrived = std::time::Instant::now();
        // Under the writer lock: what is read here cannot overwrite a newer local write.
        let _writer = self.keys.writer()?;
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
    fn reread_locked(&self, name: &str) -> StoreResult<Option<Arc<Keyring>>> {
        let path = self.key_path(name);
        let ring = match blocking(|| self.barrier.get(&path))? {
            Some(bytes) => Some(Arc::new(
                Keyring::from_stored_bytes(&bytes)
                    .map_err(|e| StoreError::Internal(format!("{path}: {e}")))?,
            )),
            None => None,
        };
        self.publish(name, ring.clone())?;
        Ok(ring)
    }

    /// A storage path of this mount changed elsewhere: bring the cache up to date.
    pub(super) fn apply_change(&self, path: &str) -> StoreResult<()> {
        // Under the writer lock: a local write in flight either lands before
        // this read (and is read back) or after it (and is published last).
        let _writer = self.keys.writer()?;
        if path == self.wrapping_key_path() {
            // Written once, never changed: read on first use.
            return Ok(());
        }
        if path == self.config_path() {
            let config = match self.barrier.get(path)? {
                Some(raw) => serde_json::from_slice(&raw)
                    .map_err(|e| StoreError::Internal(format!("mount config: {e}")))?,
                None => MountConfig::default(),
            };
            *self.config.write().map_err(|_| poisoned())? = config;
            return Ok(());
        }
        match self.barrier.get(path)? {
            Some(bytes) => {
                let ring = Keyring::from_stored_bytes(&bytes)
                    .map_err(|e| StoreError::Internal(format!("{path}: {e}")))?;
                if path != self.key_path(ring.name()) {
                    return Err(StoreError::Internal(format!(
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
                    .read()?
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

    /// Count one ciphertext that `ring` made with `version`, before it is
    /// released; the one check of the encryption limit. Spends from this
    /// node's reservation (one atomic operation) and only waits on storage
    /// when that is empty. `None`: counted, release it. A version at its
    /// limit counts nothing and its ciphertext must be dropped (never seen,
    /// its nonce never used): when the caller asked for the latest version
    /// (`latest_asked`) and the key can rotate, the key rotates and the newer
    /// keyring is returned to encrypt (and count) again; otherwise the
    /// encryption is refused (400).
    pub fn count_encryption(
        self: &Arc<Self>,
        ring: &Keyring,
        version: u32,
        latest_asked: bool,
    ) -> StoreResult<Option<Arc<Keyring>>> {
        let name = ring.name();
        let limit = ring.max_encryptions_per_version();
        match self.usage.take(name, version, 1)? {
            Taken::Spent { refill } => {
                if refill {
                    self.refill_in_background(ring, version, limit)?;
                }
                return Ok(None);
            }
            Taken::Short => {}
        }
        // Off the async workers: waiting for another reservation or storage.
        blocking(|| self.count_from_storage(ring, version, limit, latest_asked))
    }

    /// [`Self::count_encryption`] when this node's allowance is spent.
    fn count_from_storage(
        &self,
        ring: &Keyring,
        version: u32,
        limit: Option<u64>,
        latest_asked: bool,
    ) -> StoreResult<Option<Arc<Keyring>>> {
        let name = ring.name();
        let path = self.usage_path(ring, version)?;
        if self.reserve(name, &path, version, limit, 1)? {
            return Ok(None);
        }
        let limit = limit.unwrap_or(u64::MAX);
        let refused = |why: &str| {
            StoreError::invalid(format!(
                "version {version} of key {name} has reached its limit of {limit} encryptions; {why}"
            ))
        };
        if !latest_asked {
            return Err(refused("encrypt with a newer version"));
        }
        if !ring.can_rotate() {
            return Err(refused(
                "the key cannot rotate (an imported key without allow_rotation)",
            ));
        }
        match self.rotate_if_latest(name, version)? {
            (_, Some(fresh)) if fresh.latest_version() > version => Ok(Some(fresh)),
            _ => Err(refused("the key could not rotate")),
        }
    }

    /// The stored encryption counts of `ring`'s versions (an upper bound of
    /// what every node has made under each version's material, by any name:
    /// reservations not yet spent are included). Versions never counted are
    /// left out.
    pub fn encryption_counts(&self, ring: &Keyring) -> StoreResult<Counts> {
        let mut counts = Counts::default();
        for version in ring.min_available_version().max(1)..=ring.latest_version() {
            if ring.version(version).is_none() {
                continue;
            }
            let n = Usage::stored(&self.barrier, &self.usage_path(ring, version)?)?;
            if n > 0 {
                counts.versions.insert(version, n);
            }
        }
        Ok(counts)
    }

    /// Raise the stored counts of `ring`'s versions' material to at least
    /// `counts` (from a backup); never lowers. A version `ring` does not hold
    /// is skipped: nothing can encrypt under it here.
    pub fn raise_encryption_counts(
        &self,
        ring: &Keyring,
        counts: &std::collections::BTreeMap<u32, u64>,
    ) -> StoreResult<()> {
        for (version, n) in counts {
            if ring.version(*version).is_some() {
                Usage::raise(&self.barrier, &self.usage_path(ring, *version)?, *n)?;
            }
        }
        Ok(())
    }

    /// Reserve ahead of need, off the request path.
    fn refill_in_background(
        self: &Arc<Self>,
        ring: &Keyring,
        version: u32,
        limit: Option<u64>,
    ) -> StoreResult<()> {
        let mount = Arc::clone(self);
        let name = ring.name().to_owned();
        let path = self.usage_path(ring, version)?;
        let refill = move || {
            if let Err(e) = mount.reserve(&name, &path, version, limit, 0) {
                tracing::warn!(mount = %mount.path, key = %name, error = %e, "reserving encryptions failed");
            }
        };
        in_background(refill);
        Ok(())
    }

    /// Reserve encryptions of `version` (`need` of them spent at once; 0: a
    /// refill ahead of need), then rotate if the stored count reached the
    /// threshold. Whether `need` was granted.
    fn reserve(
        &self,
        name: &str,
        path: &str,
        version: u32,
        limit: Option<u64>,
        need: u64,
    ) -> StoreResult<bool> {
        let reserved = self.usage.reserve(
            &self.barrier,
            path,
            name,
            version,
            limit.unwrap_or(u64::MAX),
            need,
        )?;
        if let (Some(total), Some(limit)) = (reserved.total, limit) {
            self.rotate_near_limit(name, version, total, limit);
        }
        Ok(reserved.granted)
    }

    /// Once `total` of `version` reaches the rotation threshold, add a new
    /// version if `version` is still the latest. Failures are logged: the
    /// encryption that got here is already counted and may proceed.
    fn rotate_near_limit(&self, name: &str, version: u32, total: u64, limit: u64) {
        if total < rotation_threshold(limit) {
            return;
        }
        match self.rotate_if_latest(name, version) {
            Ok((true, Some(ring))) => {
                tracing::info!(mount = %self.path, key = %name, version = ring.latest_version(), "key rotated near its encryption limit");
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(mount = %self.path, key = %name, error = %e, "rotation near the encryption limit failed")
            }
        }
    }

    /// Rotate `name` if `version` is still its latest, decided on the stored
    /// keyring inside the compare-and-swap of every rotation: nodes that all
    /// find a version near its limit add one version between them. Returns
    /// whether this call rotated, and the key as stored afterwards (`None`: deleted).
    fn rotate_if_latest(
        &self,
        name: &str,
        version: u32,
    ) -> StoreResult<(bool, Option<Arc<Keyring>>)> {
        let now = time::OffsetDateTime::now_utc();
        let rotated = self.edit(name, |current| match current {
            Some(ring) if ring.latest_version() == version && ring.can_rotate() => {
                let mut next = ring.clone();
                next.rotate(now).map_err(StoreError::from)?;
                Ok((KeyEdit::Put(next), true))
            }
            _ => Ok::<_, StoreError>((KeyEdit::Keep, false)),
        })?;
        // Another node's rotation, if it won, reaches this cache here.
        Ok((rotated, self.key_for_version(name, i64::from(version) + 1)?))
    }

    pub fn config(&self) -> StoreResult<MountConfig> {
        Ok(self.config.read().map_err(|_| poisoned())?.clone())
    }

    /// Change the stored config (by compare-and-swap, so two nodes changing
    /// different settings keep both) and return what is stored now.
    pub fn update_config(
        &self,
        mut change: impl FnMut(&mut MountConfig),
    ) -> StoreResult<MountConfig> {
        let _writer = self.keys.writer()?;
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

pub(super) fn new_mount_entry(path: &str, description: &str) -> MountEntry {
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

/// Whether every version `old` and `new` both hold has the same key material
/// (compared in constant time: the bytes are secret).
fn same_material(old: &Keyring, new: &Keyring) -> bool {
    use subtle::ConstantTimeEq;
    (1..=old.latest_version().min(new.latest_version())).all(|n| {
        match (old.version(n), new.version(n)) {
            (Some(a), Some(b)) => bool::from(
                a.material_for_fingerprint()
                    .ct_eq(b.material_for_fingerprint()),
            ),
            _ => true,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seal::barrier::SecretKey;
    use crate::storage::{MemoryStorage, Storage, StorageError};
    use transit_keys::{CreateOptions, KeyType};

    /// Two nodes' copies of one mount over shared storage, hearing nothing of
    /// each other's changes.
    fn two_mounts() -> (Mount, Mount) {
        let storage: Arc<dyn Storage> = Arc::new(MemoryStorage::shared());
        let barrier = Arc::new(Barrier::for_tests(storage));
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
            Ok::<_, StoreError>((Some(ring), ()))
        })
        .unwrap();
        // B never heard of the key: a reader's request finds it anyway.
        assert!(b.key("k").unwrap().is_none());
        let ring = b.key_for_version("k", 1).unwrap().unwrap();
        assert_eq!(ring.latest_version(), 1);
        a.update("k", |ring| {
            let mut ring = ring.unwrap().clone();
            ring.rotate(now)?;
            Ok::<_, StoreError>((Some(ring), ()))
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
    fn two_nodes_making_the_wrapping_key_at_once_agree_on_one() {
        let (a, b) = two_mounts();
        let (ka, kb) = std::thread::scope(|s| {
            let ta = s.spawn(|| a.wrapping_key().unwrap());
            let tb = s.spawn(|| b.wrapping_key().unwrap());
            (ta.join().unwrap(), tb.join().unwrap())
        });
        assert_eq!(ka.public_pem(), kb.public_pem());
        // What is stored is that key, and a third reader finds it.
        let c = Mount::new(
            MountEntry {
                path: a.path.clone(),
                uuid: a.uuid.clone(),
                accessor: a.accessor.clone(),
                description: String::new(),
            },
            Arc::clone(&a.barrier),
            Arc::clone(&a.lookup),
        );
        assert_eq!(c.wrapping_key().unwrap().public_pem(), ka.public_pem());
        // Another node's write of it is no keyring: the change is taken in stride.
        b.apply_change(&a.wrapping_key_path()).unwrap();
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
            SecretKey::random().unwrap(),
            crate::seal::barrier::BarrierKeyring::generate().unwrap(),
        ));
        let lookup = Arc::new(LookupKey::new(SecretKey::random().unwrap()));
        let mount = Mount::new(new_mount_entry("transit", ""), barrier, lookup);
        let now = time::OffsetDateTime::now_utc();
        let err = mount
            .update("k", |_| {
                let ring =
                    Keyring::create("k", KeyType::Aes256Gcm96, &CreateOptions::default(), now)?;
                Ok::<_, StoreError>((Some(ring), ()))
            })
            .unwrap_err();
        assert!(matches!(err, StoreError::Unavailable(_)));
        assert!(mount.key("k").unwrap().is_none());
        assert!(mount.update_config(|c| c.disable_upsert = true).is_err());
        assert!(!mount.config().unwrap().disable_upsert);
    }

    /// A key with `limit` encryptions per version, as `mount` stores it.
    fn limited(mount: &Mount, name: &str, limit: i64, imported: bool) -> Arc<Keyring> {
        let now = time::OffsetDateTime::now_utc();
        let mut ring =
            Keyring::create(name, KeyType::Aes256Gcm96, &CreateOptions::default(), now).unwrap();
        ring.configure(&transit_keys::ConfigChange {
            max_encryptions_per_version: Some(limit),
            allow_plaintext_backup: Some(true),
            exportable: Some(true),
            ..Default::default()
        })
        .unwrap();
        if imported {
            // An imported key without allow_rotation, as a restore of its backup makes it.
            use base64::Engine as _;
            use base64::engine::general_purpose::STANDARD;
            let blob = transit_keys::backup::backup(&ring).unwrap();
            let mut doc: serde_json::Value =
                serde_json::from_slice(&STANDARD.decode(blob.as_str()).unwrap()).unwrap();
            doc["policy"]["Imported"] = serde_json::json!(true);
            let blob = STANDARD.encode(serde_json::to_vec(&doc).unwrap());
            ring = transit_keys::backup::restore(&blob, None).unwrap();
            assert!(!ring.can_rotate());
        }
        mount
            .update(name, |_| Ok::<_, StoreError>((Some(ring.clone()), ())))
            .unwrap();
        mount.key(name).unwrap().unwrap()
    }

    /// The stored counts of the key `name` now holds.
    fn counts(mount: &Mount, name: &str) -> std::collections::BTreeMap<u32, u64> {
        let ring = mount.key(name).unwrap().unwrap();
        mount.encryption_counts(&ring).unwrap().versions
    }

    /// Encrypt once with the latest version as the handlers do; the version used.
    fn encrypt_latest(mount: &Arc<Mount>, name: &str) -> StoreResult<u32> {
        let ring = mount.key(name)?.unwrap();
        let mut version = ring.latest_version();
        if let Some(fresh) = mount.count_encryption(&ring, version, true)? {
            version = fresh.latest_version();
            assert!(mount.count_encryption(&fresh, version, true)?.is_none());
        }
        Ok(version)
    }

    #[test]
    fn nodes_near_the_limit_rotate_the_key_once_between_them() {
        let (a, b) = two_mounts();
        let (a, b) = (Arc::new(a), Arc::new(b));
        limited(&a, "k", 64, false);
        b.load().unwrap();
        // Both nodes spend version 1 until one of them sees version 2.
        let mut made = 0u64;
        let nodes = [&a, &b];
        while nodes
            .iter()
            .all(|n| n.key("k").unwrap().unwrap().latest_version() == 1)
        {
            for node in nodes {
                encrypt_latest(node, "k").unwrap();
                made += 1;
            }
            assert!(made < 200, "no rotation after {made} encryptions");
        }
        // One node rotated. The other, hearing nothing here, spends version 1
        // up to its limit, then finds version 2 in storage instead of adding one.
        let mut on_two = 0;
        while nodes
            .iter()
            .any(|n| n.key("k").unwrap().unwrap().latest_version() == 1)
        {
            for node in nodes {
                on_two += u32::from(encrypt_latest(node, "k").unwrap() == 2);
            }
            assert!(on_two < 64, "the stale node never moved to version 2");
        }
        assert_eq!(a.key("k").unwrap().unwrap().latest_version(), 2);
        assert_eq!(
            b.key("k").unwrap().unwrap().latest_version(),
            2,
            "one new version, not two"
        );
        let counts = counts(&a, "k");
        assert!(counts[&1] <= 64, "version 1 never reserved past its limit");
        assert!(counts[&1] >= 56, "version 1 reached the threshold");
        assert!(counts[&2] > 0);
    }

    #[test]
    fn a_key_that_cannot_rotate_is_refused_at_its_limit_and_counts_nothing_more() {
        let (a, _) = two_mounts();
        let a = Arc::new(a);
        let ring = limited(&a, "k", 3, true);
        for _ in 0..3 {
            assert_eq!(encrypt_latest(&a, "k").unwrap(), 1);
        }
        let err = a.count_encryption(&ring, 1, true).unwrap_err();
        assert!(
            err.to_string().contains(
                "version 1 of key k has reached its limit of 3 encryptions; the key cannot rotate"
            ),
            "{err}"
        );
        assert!(matches!(err, StoreError::Invalid(_)));
        assert_eq!(counts(&a, "k")[&1], 3);
        assert_eq!(a.key("k").unwrap().unwrap().latest_version(), 1);
    }

    #[test]
    fn an_older_version_at_its_limit_is_refused_while_the_latest_serves() {
        let (a, _) = two_mounts();
        let a = Arc::new(a);
        let ring = limited(&a, "k", 2, false);
        for _ in 0..2 {
            assert!(a.count_encryption(&ring, 1, false).unwrap().is_none());
        }
        let err = a.count_encryption(&ring, 1, false).unwrap_err();
        assert!(
            err.to_string().contains("encrypt with a newer version"),
            "{err}"
        );
        // Asking for the latest rotates past it.
        let fresh = a.count_encryption(&ring, 1, true).unwrap().unwrap();
        assert_eq!(fresh.latest_version(), 2);
        assert_eq!(counts(&a, "k")[&1], 2);
    }

    #[test]
    fn deleting_a_key_keeps_its_materials_count_and_a_new_key_starts_apart() {
        let (a, _) = two_mounts();
        let a = Arc::new(a);
        let old = limited(&a, "k", 1000, false);
        encrypt_latest(&a, "k").unwrap();
        let before = counts(&a, "k")[&1];
        a.update("k", |_| Ok::<_, StoreError>((None, ()))).unwrap();
        assert_eq!(a.encryption_counts(&old).unwrap().versions[&1], before);
        // A new key under the name has new material: its own count, from
        // storage, not from the old allowance.
        limited(&a, "k", 1000, false);
        assert!(counts(&a, "k").is_empty());
        encrypt_latest(&a, "k").unwrap();
        assert!(counts(&a, "k")[&1] > 0);
    }

    #[test]
    fn a_copy_of_the_material_under_another_name_shares_its_count() {
        let (a, _) = two_mounts();
        let a = Arc::new(a);
        let ring = limited(&a, "k", 3, true);
        for _ in 0..3 {
            encrypt_latest(&a, "k").unwrap();
        }
        let blob = transit_keys::backup::backup(&ring).unwrap();
        let copy = transit_keys::backup::restore(&blob, Some("k2")).unwrap();
        a.update("k2", |_| Ok::<_, StoreError>((Some(copy.clone()), ())))
            .unwrap();
        assert_eq!(counts(&a, "k2")[&1], 3);
        let err = encrypt_latest(&a, "k2").unwrap_err();
        assert!(err.to_string().contains("reached its limit of 3"), "{err}");
    }

    #[test]
    fn with_background_refills_encryptions_rarely_wait_on_storage() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        let (a, _) = two_mounts();
        let a = Arc::new(a);
        let ring = limited(&a, "k", 1 << 32, false);
        const N: u64 = 200_000;
        let waits = runtime.block_on(async {
            let a = Arc::clone(&a);
            tokio::spawn(async move {
                for i in 0..N {
                    assert!(a.count_encryption(&ring, 1, true).unwrap().is_none());
                    if i % 1000 == 0 {
                        // Let the refill task run, as other requests would.
                        tokio::task::yield_now().await;
                    }
                }
                a.usage.waits()
            })
            .await
            .unwrap()
        });
        let stored = counts(&a, "k")[&1];
        println!("usage: {waits} of {N} encryptions waited on storage; stored count {stored}");
        assert!(stored >= N);
        assert!(waits * 100 < N, "{waits} waits of {N}");
    }
}
