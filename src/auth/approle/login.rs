//! Logging in with a role ID and a secret ID.

use super::*;

impl AppRoleStore {
    /// Check a role ID and (if the role binds one) a secret ID. Unknown role
    /// IDs and unknown, expired or used-up secret IDs all fail with
    /// [`INVALID_LOGIN`]. A limited secret ID loses one use in storage, by
    /// compare-and-swap (so that all nodes together grant no more than its
    /// uses), before this returns; expired and used-up ones are deleted.
    pub fn login(
        &self,
        role_id: &str,
        secret_id: Option<&str>,
        now: i64,
    ) -> StoreResult<AppRoleLogin> {
        let role_id = role_id.trim();
        if role_id.is_empty() {
            return Err(StoreError::invalid("missing role_id"));
        }
        let invalid = || StoreError::invalid(INVALID_LOGIN);
        let secret_id = secret_id.map_or("", str::trim);
        // Both HMACs are computed up front, whatever the outcome.
        let role_digest = role_id_digest(&self.lookup, role_id);
        let secret_digest = self.secret_digest(secret_id);
        let (name, role, cached) = {
            let index = self.index.read()?;
            let state = index
                .by_role_id
                .get(&role_digest)
                .and_then(|name| index.roles.get(name));
            let Some(state) = state else {
                return Err(invalid());
            };
            (
                state.role.name.clone(),
                state.role.clone(),
                state.secrets.get(&secret_digest).cloned(),
            )
        };
        if !role.bind_secret_id {
            return Ok(AppRoleLogin {
                role,
                metadata: BTreeMap::new(),
            });
        }
        if secret_id.is_empty() {
            return Err(StoreError::invalid("missing secret_id"));
        }
        match cached {
            None => return Err(invalid()),
            // Nothing to count: the cache is enough.
            Some(info) if info.num_uses == 0 && !info.expired(now) => {
                return Ok(AppRoleLogin {
                    role,
                    metadata: info.metadata,
                });
            }
            Some(_) => {}
        }
        let _w = self.index.writer()?;
        let mut granted = None;
        let stored = edit_json(
            &self.barrier,
            &self.secret_path(&name, &secret_digest),
            "the secret ID",
            |current: Option<StoredSecretId>| {
                granted = None;
                let Some(mut stored) = current else {
                    // Used up or destroyed on another node.
                    return Ok(Edit::Keep);
                };
                if stored.info.expired(now) {
                    return Ok(Edit::Delete);
                }
                granted = Some(stored.info.metadata.clone());
                Ok(match stored.info.num_uses {
                    0 => Edit::Keep,
                    1 => Edit::Delete,
                    n => {
                        stored.info.num_uses = n - 1;
                        stored.info.last_updated_time = now;
                        Edit::Put(stored)
                    }
                })
            },
        )?;
        self.index
            .write()?
            .put_secret(&name, secret_digest, stored.map(|s| s.info));
        let metadata = granted.ok_or_else(invalid)?;
        Ok(AppRoleLogin { role, metadata })
    }
}
