//! Loading the mount, following other nodes' changes, and the storage paths.

use super::*;

impl AppRoleStore {
    /// Load every role and secret ID of the mount whose storage lives under
    /// `prefix` (`auth/<mount uuid>/`). Secret IDs whose role is gone (a
    /// crash in the middle of a role deletion) are deleted, unless other
    /// nodes share the storage.
    pub(crate) fn load(
        barrier: Arc<Barrier>,
        lookup: Arc<LookupKey>,
        prefix: String,
    ) -> StoreResult<Self> {
        let store = Self {
            barrier,
            lookup,
            prefix,
            index: Cached::new("approle store", Index::default()),
        };
        // With shared storage the role may have been created after our
        // listing: never delete on a guess there.
        let sweep = !store.barrier.storage().is_shared();
        let index = store.read_index(sweep)?;
        *store.index.write()? = index;
        Ok(store)
    }

    /// Re-read every role and secret ID from storage into this store (after
    /// missed change notifications).
    pub fn reload(&self) -> StoreResult<()> {
        self.index.reload(|| self.read_index(false))
    }

    fn read_index(&self, sweep_orphans: bool) -> StoreResult<Index> {
        let mut index = Index::default();
        for path in blocking(|| {
            self.barrier
                .list(&format!("{}{APPROLE_ROLES}", self.prefix))
        })? {
            // `None`: deleted (by another node) since the listing.
            if let Some(role) = read_json::<Role>(&self.barrier, &path)? {
                let dir = self.checked_dir(&path, &role)?;
                let digest = role_id_digest(&self.lookup, &role.role_id);
                index.put_role(role, digest, dir);
            }
        }
        for path in blocking(|| {
            self.barrier
                .list(&format!("{}{APPROLE_SECRET_IDS}", self.prefix))
        })? {
            let Some(Key::Secret(dir, digest)) = self.parse_path(&path) else {
                return Err(StoreError::Internal(format!(
                    "{path}: malformed secret ID path"
                )));
            };
            let Some(name) = index.by_dir.get(dir).cloned() else {
                if sweep_orphans {
                    self.delete_entry::<StoredSecretId>(&path)?;
                }
                continue;
            };
            if let Some(stored) = read_json::<StoredSecretId>(&self.barrier, &path)? {
                index.put_secret(&name, digest, Some(stored.info));
            }
        }
        Ok(index)
    }

    /// Another node wrote or deleted the entry at `path`: re-read it. Paths
    /// that are not this mount's roles or secret IDs are ignored.
    pub fn apply_change(&self, path: &str) -> StoreResult<()> {
        let Some(key) = self.parse_path(path) else {
            return Ok(());
        };
        let _w = self.index.writer()?;
        let cached = |dir: &str| -> StoreResult<Option<String>> {
            Ok(self.index.read()?.by_dir.get(dir).cloned())
        };
        match key {
            Key::Role(dir) => match read_json::<Role>(&self.barrier, path)? {
                Some(role) => {
                    self.checked_dir(path, &role)?;
                    let name = role.name.clone();
                    self.publish_role(&name, Some(role), false)
                }
                None => match cached(dir)? {
                    Some(name) => self.publish_role(&name, None, false),
                    None => Ok(()),
                },
            },
            Key::Secret(dir, digest) => {
                let Some(name) = cached(dir)? else {
                    // The role's own change may not have arrived yet: load it
                    // now, with every secret ID stored for it (this one too).
                    let role_path = format!("{}{APPROLE_ROLES}{dir}", self.prefix);
                    return match read_json::<Role>(&self.barrier, &role_path)? {
                        Some(role) => {
                            self.checked_dir(&role_path, &role)?;
                            let name = role.name.clone();
                            self.publish_role(&name, Some(role), true)
                        }
                        None => Ok(()),
                    };
                };
                let stored = read_json::<StoredSecretId>(&self.barrier, path)?;
                if stored.as_ref().is_some_and(|s| s.role != name) {
                    return Err(StoreError::Internal(format!(
                        "{path} holds a secret ID of another role"
                    )));
                }
                self.index
                    .write()?
                    .put_secret(&name, digest, stored.map(|s| s.info));
                Ok(())
            }
        }
    }

    fn parse_path<'p>(&self, path: &'p str) -> Option<Key<'p>> {
        let rest = path.strip_prefix(self.prefix.as_str())?;
        if let Some(dir) = rest.strip_prefix(APPROLE_ROLES) {
            return (!dir.is_empty() && !dir.contains('/')).then_some(Key::Role(dir));
        }
        let (dir, hex_id) = rest.strip_prefix(APPROLE_SECRET_IDS)?.split_once('/')?;
        let mut digest = [0u8; 32];
        hex::decode_to_slice(hex_id, &mut digest).ok()?;
        (!dir.is_empty()).then_some(Key::Secret(dir, digest))
    }

    /// The role's storage directory name, checked against where it was read.
    fn checked_dir(&self, path: &str, role: &Role) -> StoreResult<String> {
        let dir = self.lookup.name(&role.name);
        if path != format!("{}{APPROLE_ROLES}{dir}", self.prefix) {
            return Err(StoreError::Internal(format!(
                "{path} holds a role stored under another name"
            )));
        }
        Ok(dir)
    }

    /// Put what storage holds for role `name` into the cache (`None`: it is
    /// gone, with its secret IDs). A role new to the cache, or with `fresh`,
    /// gets its secret IDs read from storage. The caller holds the writer lock.
    pub(super) fn publish_role(
        &self,
        name: &str,
        role: Option<Role>,
        fresh: bool,
    ) -> StoreResult<()> {
        let Some(role) = role else {
            self.index.write()?.remove_role(name);
            return Ok(());
        };
        let dir = self.lookup.name(name);
        let cached = self.index.read()?.roles.contains_key(name);
        let secrets = if fresh || !cached {
            Some(self.stored_secrets(name)?)
        } else {
            None
        };
        let digest = role_id_digest(&self.lookup, &role.role_id);
        let mut index = self.index.write()?;
        index.put_role(role, digest, dir);
        if let Some(secrets) = secrets
            && let Some(state) = index.roles.get_mut(name)
        {
            state.accessors = secrets
                .iter()
                .map(|(digest, info)| (info.accessor.clone(), *digest))
                .collect();
            state.secrets = secrets;
        }
        Ok(())
    }

    /// The secret IDs storage holds for role `name`.
    pub(super) fn stored_secrets(&self, name: &str) -> StoreResult<HashMap<Digest, SecretIdInfo>> {
        let mut secrets = HashMap::new();
        for path in blocking(|| self.barrier.list(&self.secret_dir(name)))? {
            let Some(Key::Secret(_, digest)) = self.parse_path(&path) else {
                continue;
            };
            if let Some(stored) = read_json::<StoredSecretId>(&self.barrier, &path)? {
                secrets.insert(digest, stored.info);
            }
        }
        Ok(secrets)
    }

    /// Delete every secret ID storage holds for role `name` (including those
    /// another node created and this one has not heard of), from the cache
    /// too. The caller holds the writer lock.
    pub(super) fn delete_stored_secrets(&self, name: &str) -> StoreResult<()> {
        for path in blocking(|| self.barrier.list(&self.secret_dir(name)))? {
            self.delete_entry::<StoredSecretId>(&path)?;
            if let Some(Key::Secret(_, digest)) = self.parse_path(&path) {
                self.index.write()?.put_secret(name, digest, None);
            }
        }
        Ok(())
    }

    /// Delete one entry; true if there was one.
    pub(super) fn delete_entry<T: Serialize + DeserializeOwned>(
        &self,
        path: &str,
    ) -> StoreResult<bool> {
        let mut existed = false;
        edit_json(&self.barrier, path, "the entry", |current: Option<T>| {
            existed = current.is_some();
            Ok(Edit::Delete)
        })?;
        Ok(existed)
    }

    pub(super) fn role_path(&self, name: &str) -> String {
        format!("{}{APPROLE_ROLES}{}", self.prefix, self.lookup.name(name))
    }

    fn secret_dir(&self, name: &str) -> String {
        format!(
            "{}{APPROLE_SECRET_IDS}{}/",
            self.prefix,
            self.lookup.name(name)
        )
    }

    pub(super) fn secret_path(&self, name: &str, digest: &Digest) -> String {
        format!("{}{}", self.secret_dir(name), hex::encode(digest))
    }

    pub(super) fn secret_digest(&self, secret_id: &str) -> Digest {
        let input = Zeroizing::new(format!("approle secret_id\0{secret_id}"));
        self.lookup.digest(&input)
    }

    /// Whether role `name` exists: in the cache, or else in storage (which
    /// this node may not have heard from yet). The caller holds the writer lock.
    pub(super) fn role_exists(&self, name: &str) -> StoreResult<bool> {
        if self.index.read()?.roles.contains_key(name) {
            return Ok(true);
        }
        let role = read_json::<Role>(&self.barrier, &self.role_path(name))?;
        let exists = role.is_some();
        self.publish_role(name, role, false)?;
        Ok(exists)
    }
}
