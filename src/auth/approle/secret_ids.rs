//! Secret IDs: issue, look up, destroy, tidy.

use super::*;

impl AppRoleStore {
    /// Issue a secret ID against a role.
    pub fn create_secret_id(
        &self,
        name: &str,
        request: SecretIdRequest,
        now: i64,
    ) -> StoreResult<NewSecretId> {
        let secret_id = match request.secret_id {
            Some(s) if s.is_empty() => return Err(StoreError::invalid("missing secret_id")),
            Some(s) => s,
            None => Zeroizing::new(random_uuid()?),
        };
        if secret_id.len() > MAX_HMAC_INPUT {
            return Err(StoreError::invalid(format!(
                "value is longer than maximum of {MAX_HMAC_INPUT} bytes"
            )));
        }
        let digest = self.secret_digest(&secret_id);
        let role_path = self.role_path(name);
        let _w = self.index.writer()?;
        // The role's limits as stored now, not as this node last heard them.
        let Some(role) = read_json::<Role>(&self.barrier, &role_path)? else {
            self.publish_role(name, None, false)?;
            return Err(no_role(name));
        };
        self.publish_role(name, Some(role.clone()), false)?;
        if !role.bind_secret_id {
            return Err(StoreError::invalid("bind_secret_id is not set on the role"));
        }
        let role_uses = role.secret_id_num_uses;
        let num_uses = match request.num_uses {
            // A limited role allows no unlimited (0) or larger count.
            Some(n) if role_uses > 0 && (n == 0 || n > role_uses) => {
                return Err(StoreError::invalid(
                    "num_uses cannot be higher than the role's secret_id_num_uses",
                ));
            }
            Some(n) => n,
            None => role_uses,
        };
        let role_ttl = role.secret_id_ttl;
        let ttl = match request.ttl {
            Some(t) if role_ttl > 0 && (t == 0 || t > role_ttl) => {
                return Err(StoreError::invalid(
                    "ttl cannot be longer than the role's secret_id_ttl",
                ));
            }
            Some(t) => t,
            None => role_ttl,
        };
        // Vault caps secret IDs at the mount's maximum lease TTL.
        let ttl = ttl.min(MAX_TTL_SECS);
        let accessor = loop {
            let candidate = random_uuid()?;
            let index = self.index.read()?;
            if !index
                .roles
                .get(name)
                .is_some_and(|s| s.accessors.contains_key(&candidate))
            {
                break candidate;
            }
        };
        let stored = StoredSecretId {
            role: name.to_owned(),
            info: SecretIdInfo {
                accessor: accessor.clone(),
                num_uses,
                ttl,
                creation_time: now,
                expiration_time: (ttl > 0).then(|| now.saturating_add(ttl as i64)),
                last_updated_time: now,
                metadata: request.metadata,
            },
        };
        let path = self.secret_path(name, &digest);
        edit_json(&self.barrier, &path, "the secret ID", |current| {
            if current.is_some() {
                return Err(StoreError::invalid("SecretID is already registered"));
            }
            Ok(Edit::Put(stored.clone()))
        })?;
        // A role deleted meanwhile by another node may have listed its secret
        // IDs before this one was written: check again, and take it back.
        if read_json::<Role>(&self.barrier, &role_path)?.is_none() {
            self.delete_entry::<StoredSecretId>(&path)?;
            self.publish_role(name, None, false)?;
            return Err(no_role(name));
        }
        self.index
            .write()?
            .put_secret(name, digest, Some(stored.info));
        Ok(NewSecretId {
            secret_id,
            accessor,
            ttl,
            num_uses,
        })
    }

    /// A live secret ID of the role, found by `find`; errors if the role is missing.
    fn find_secret(
        &self,
        name: &str,
        now: i64,
        find: impl FnOnce(&RoleState) -> Option<Digest>,
    ) -> StoreResult<Option<(Digest, SecretIdInfo)>> {
        let index = self.index.read()?;
        let state = index.roles.get(name).ok_or_else(|| no_role(name))?;
        Ok(find(state).and_then(|digest| {
            state
                .secrets
                .get(&digest)
                .filter(|info| !info.expired(now))
                .map(|info| (digest, info.clone()))
        }))
    }

    /// The properties of a secret ID (`None`: unknown or expired).
    pub fn lookup_secret_id(
        &self,
        name: &str,
        secret_id: &str,
        now: i64,
    ) -> StoreResult<Option<SecretIdInfo>> {
        let digest = self.secret_digest(secret_id);
        Ok(self
            .find_secret(name, now, |_| Some(digest))?
            .map(|(_, info)| info))
    }

    /// The properties of the secret ID with this accessor.
    pub fn lookup_accessor(
        &self,
        name: &str,
        accessor: &str,
        now: i64,
    ) -> StoreResult<Option<SecretIdInfo>> {
        Ok(self
            .find_secret(name, now, |s| s.accessors.get(accessor).copied())?
            .map(|(_, info)| info))
    }

    /// Destroy a secret ID (an unknown one is not an error), in storage even
    /// if this node has not heard of it.
    pub fn destroy_secret_id(&self, name: &str, secret_id: &str) -> StoreResult<()> {
        let digest = self.secret_digest(secret_id);
        let _w = self.index.writer()?;
        if !self.role_exists(name)? {
            return Err(no_role(name));
        }
        self.delete_entry::<StoredSecretId>(&self.secret_path(name, &digest))?;
        self.index.write()?.put_secret(name, digest, None);
        Ok(())
    }

    /// Destroy the secret ID with this accessor; false if storage has none.
    /// An accessor this node has not heard of is looked for in storage.
    pub fn destroy_accessor(&self, name: &str, accessor: &str) -> StoreResult<bool> {
        let _w = self.index.writer()?;
        if !self.role_exists(name)? {
            return Err(no_role(name));
        }
        let cached = self
            .index
            .read()?
            .roles
            .get(name)
            .and_then(|s| s.accessors.get(accessor).copied());
        let digest = match cached {
            Some(digest) => Some(digest),
            None => self
                .stored_secrets(name)?
                .into_iter()
                .find(|(_, info)| info.accessor == accessor)
                .map(|(digest, _)| digest),
        };
        let Some(digest) = digest else {
            return Ok(false);
        };
        let mut destroyed = false;
        let stored = edit_json(
            &self.barrier,
            &self.secret_path(name, &digest),
            "the secret ID",
            |current: Option<StoredSecretId>| {
                destroyed = current.is_some_and(|s| s.info.accessor == accessor);
                Ok(if destroyed { Edit::Delete } else { Edit::Keep })
            },
        )?;
        self.index
            .write()?
            .put_secret(name, digest, stored.map(|s| s.info));
        Ok(destroyed)
    }

    /// The accessors of a role's secret IDs, sorted.
    pub fn list_accessors(&self, name: &str) -> StoreResult<Vec<String>> {
        let index = self.index.read()?;
        let state = index.roles.get(name).ok_or_else(|| no_role(name))?;
        let mut accessors: Vec<String> = state.accessors.keys().cloned().collect();
        accessors.sort();
        Ok(accessors)
    }

    /// Delete every expired secret ID this node knows of (if storage agrees
    /// it is expired); returns how many.
    pub fn tidy(&self, now: i64) -> StoreResult<usize> {
        let expired: Vec<(String, Digest)> = self
            .index
            .read()?
            .roles
            .iter()
            .flat_map(|(name, state)| {
                state
                    .secrets
                    .iter()
                    .filter(|(_, info)| info.expired(now))
                    .map(|(digest, _)| (name.clone(), *digest))
            })
            .collect();
        let mut removed = 0;
        for (name, digest) in &expired {
            let _w = self.index.writer()?;
            let mut deleted = false;
            let stored = edit_json(
                &self.barrier,
                &self.secret_path(name, digest),
                "the secret ID",
                |current: Option<StoredSecretId>| {
                    deleted = current.as_ref().is_some_and(|s| s.info.expired(now));
                    Ok(if deleted { Edit::Delete } else { Edit::Keep })
                },
            )?;
            self.index
                .write()?
                .put_secret(name, *digest, stored.map(|s| s.info));
            removed += usize::from(deleted);
        }
        Ok(removed)
    }
}
