//! Roles: create, update, read, delete.

use super::*;

impl AppRoleStore {
    /// Every role name, sorted.
    pub fn list_roles(&self) -> StoreResult<Vec<String>> {
        Ok(self.index.read()?.roles.keys().cloned().collect())
    }

    /// Role `name` as this node's cache holds it (no storage access: cheap,
    /// for authorization on the async workers).
    pub fn cached_role(&self, name: &str) -> StoreResult<Option<Role>> {
        Ok(self.index.read()?.roles.get(name).map(|s| s.role.clone()))
    }

    /// Role `name`: from the cache, or from storage when this node has not
    /// heard of it (another node created it a moment ago and its
    /// notification is still on the way). May block: off the async workers.
    pub fn get_role(&self, name: &str) -> StoreResult<Option<Role>> {
        if let Some(role) = self.cached_role(name)? {
            return Ok(Some(role));
        }
        // Under the writer lock, so a deletion on this node cannot slip between the
        // read and the publication.
        let _w = self.index.writer()?;
        let role = read_json::<Role>(&self.barrier, &self.role_path(name))?;
        if role.is_some() {
            self.publish_role(name, role.clone(), false)?;
        }
        Ok(role)
    }

    /// Create or update a role. `edit` gets the stored role, or a new one
    /// (`bind_secret_id` true, no role ID yet: a random UUID is given unless
    /// `edit` sets one). Returns true when the role was created.
    pub fn write_role(
        &self,
        name: &str,
        edit: impl FnOnce(&mut Role) -> StoreResult<()>,
    ) -> StoreResult<bool> {
        self.save_role(name, true, edit)
    }

    /// Set a role's role ID (Vault's `role/:name/role-id`); unique per mount.
    pub fn set_role_id(&self, name: &str, role_id: &str) -> StoreResult<()> {
        if role_id.is_empty() {
            return Err(StoreError::invalid("missing role_id"));
        }
        self.save_role(name, false, |role| {
            role_id.clone_into(&mut role.role_id);
            Ok(())
        })
        .map(|_| ())
    }

    fn save_role(
        &self,
        name: &str,
        create: bool,
        edit: impl FnOnce(&mut Role) -> StoreResult<()>,
    ) -> StoreResult<bool> {
        if name.is_empty() {
            return Err(StoreError::invalid("missing role_name"));
        }
        if name.len() > MAX_HMAC_INPUT {
            return Err(StoreError::invalid(format!(
                "role_name is longer than maximum of {MAX_HMAC_INPUT} bytes"
            )));
        }
        let path = self.role_path(name);
        let mut edit = Replay::new(edit);
        let _w = self.index.writer()?;
        if create && read_json::<Role>(&self.barrier, &path)?.is_none() {
            // Secret IDs left under this name by an earlier role (a deletion
            // cut short) must not come back to life with the new one.
            self.delete_stored_secrets(name)?;
        }
        let mut created = false;
        let stored = edit_json(&self.barrier, &path, "the role", |current: Option<Role>| {
            created = current.is_none();
            if created && !create {
                return Err(StoreError::Missing(Missing::RoleToUpdate));
            }
            let mut role = edit.apply(current.unwrap_or_else(|| blank_role(name)))?;
            role.name = name.to_owned();
            if created && role.role_id.is_empty() {
                role.role_id = random_uuid()?;
            }
            if role.role_id.is_empty() {
                return Err(StoreError::invalid(
                    "invalid role_id supplied, or failed to generate a role_id",
                ));
            }
            if role.role_id.len() > MAX_HMAC_INPUT {
                return Err(StoreError::invalid(format!(
                    "role_id is longer than maximum of {MAX_HMAC_INPUT} bytes"
                )));
            }
            role.token.validate()?;
            let digest = role_id_digest(&self.lookup, &role.role_id);
            if self
                .index
                .read()?
                .by_role_id
                .get(&digest)
                .is_some_and(|owner| *owner != name)
            {
                return Err(StoreError::invalid("role_id already in use"));
            }
            Ok(Edit::Put(role))
        });
        let stored = match stored {
            Err(e) if created => {
                // Not in storage: another node deleted it.
                self.publish_role(name, None, false)?;
                return Err(e);
            }
            other => other?,
        };
        self.publish_role(name, stored, created)?;
        Ok(created)
    }

    /// Delete a role and every secret ID issued against it (a missing role
    /// is not an error). The secret IDs go first, so a crash midway leaves
    /// the role with fewer secret IDs, never secret IDs without a role.
    pub fn delete_role(&self, name: &str) -> StoreResult<()> {
        let _w = self.index.writer()?;
        self.delete_stored_secrets(name)?;
        self.delete_entry::<Role>(&self.role_path(name))?;
        self.publish_role(name, None, false)
    }
}
