//! The AppRole login method, as Vault's `auth/approle` keeps it: roles with a
//! role ID (a UUID unless set), secret IDs issued against them, and logins
//! with both.
//!
//! Storage, all through the barrier, under the mount's prefix:
//! * `role/<HMAC of the lowercased role name>`: the role, its role ID and the
//!   settings of the tokens a login issues;
//! * `secret_id/<HMAC of the role name>/<HMAC of the secret ID>`: one secret
//!   ID's accessor, use count, expiry and metadata. The secret ID itself is
//!   never stored, in clear or sealed: it is shown once, at creation, and
//!   known afterwards only by its HMAC under the lookup key.
//!
//! The whole mount is loaded at unseal. A login looks the role up by the HMAC
//! of the role ID and the secret by the HMAC of the secret ID (never by
//! comparing the secrets themselves); every way of failing (unknown role ID,
//! unknown, expired or used-up secret ID) costs about the same and answers the
//! same "invalid role or secret ID". A limited secret ID's remaining uses are
//! written back before the login succeeds; the last use, or expiry, deletes it.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::token::MAX_TTL_SECS;
use super::userpass::TokenParams;
use crate::error::{ApiError, ApiResult};
use crate::seal::barrier::Barrier;
use crate::state::LookupKey;
use crate::storage::blocking;

/// Vault's limit on role names and secret IDs (they are HMAC inputs).
pub const MAX_HMAC_INPUT: usize = 4096;

/// The one answer to every failed login.
pub const INVALID_LOGIN: &str = "invalid role or secret ID";

type Digest = [u8; 32];

/// A role as stored and as the API shows it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Role {
    /// Lowercased, as Vault stores new role names.
    pub name: String,
    pub role_id: String,
    pub bind_secret_id: bool,
    /// Uses of each new secret ID; 0: unlimited.
    #[serde(default)]
    pub secret_id_num_uses: u64,
    /// Lifetime of each new secret ID in seconds; 0: no expiry.
    #[serde(default)]
    pub secret_id_ttl: u64,
    #[serde(flatten)]
    pub token: TokenParams,
    /// The policies were last set through the deprecated `policies` field.
    #[serde(default)]
    pub legacy_policies: bool,
}

impl std::fmt::Debug for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Role")
            .field("name", &self.name)
            .field("role_id", &"<redacted>")
            .field("bind_secret_id", &self.bind_secret_id)
            .field("secret_id_num_uses", &self.secret_id_num_uses)
            .field("secret_id_ttl", &self.secret_id_ttl)
            .field("token", &self.token)
            .finish()
    }
}

/// What is kept of a secret ID (never the secret ID itself).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretIdInfo {
    pub accessor: String,
    /// Uses left; 0: unlimited.
    pub num_uses: u64,
    /// The lifetime it was created with, in seconds; 0: no expiry.
    pub ttl: u64,
    pub creation_time: i64,
    /// Unix seconds; `None`: never expires.
    pub expiration_time: Option<i64>,
    pub last_updated_time: i64,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

impl SecretIdInfo {
    pub fn expired(&self, now: i64) -> bool {
        self.expiration_time.is_some_and(|t| t <= now)
    }
}

#[derive(Serialize, Deserialize)]
struct StoredSecretId {
    role: String,
    #[serde(flatten)]
    info: SecretIdInfo,
}

/// How to make a secret ID (Vault's `secret-id` and `custom-secret-id`).
#[derive(Debug, Default)]
pub struct SecretIdRequest {
    /// A caller-chosen secret ID; `None`: a random UUID.
    pub secret_id: Option<Zeroizing<String>>,
    /// Overrides the role's `secret_id_num_uses` (never above it).
    pub num_uses: Option<u64>,
    /// Overrides the role's `secret_id_ttl` (never above it).
    pub ttl: Option<u64>,
    pub metadata: BTreeMap<String, String>,
}

/// A secret ID as issued: shown once.
#[derive(Debug)]
pub struct NewSecretId {
    pub secret_id: Zeroizing<String>,
    pub accessor: String,
    pub ttl: u64,
    pub num_uses: u64,
}

/// A successful login: the role, and the metadata of the secret ID used.
#[derive(Debug, Clone)]
pub struct AppRoleLogin {
    pub role: Role,
    pub metadata: BTreeMap<String, String>,
}

#[derive(Debug)]
struct RoleState {
    role: Role,
    secrets: HashMap<Digest, SecretIdInfo>,
    accessors: HashMap<String, Digest>,
}

#[derive(Debug, Default)]
struct Index {
    roles: BTreeMap<String, RoleState>,
    /// HMAC of a role ID -> role name.
    by_role_id: HashMap<Digest, String>,
}

fn poisoned() -> ApiError {
    ApiError::Internal("approle store lock poisoned".to_owned())
}

fn internal(what: &str, e: impl std::fmt::Display) -> ApiError {
    ApiError::Internal(format!("{what}: {e}"))
}

fn no_role(name: &str) -> ApiError {
    ApiError::bad(format!("role {name:?} does not exist"))
}

/// Role names are case-insensitive: stored and looked up lowercased.
pub fn normalize(name: &str) -> String {
    name.to_lowercase()
}

/// A random (v4) UUID from the system CSPRNG.
pub fn random_uuid() -> ApiResult<String> {
    let mut bytes = [0u8; 16];
    transit_keys::secret::fill_random(&mut bytes)
        .map_err(|_| ApiError::Internal("random number generator failed".to_owned()))?;
    Ok(uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .hyphenated()
        .to_string())
}

/// The roles and secret IDs of one AppRole mount.
#[derive(Debug)]
pub struct AppRoleStore {
    barrier: Arc<Barrier>,
    lookup: Arc<LookupKey>,
    prefix: String,
    index: RwLock<Index>,
    /// Held while roles or secret IDs change, and during logins (which may
    /// use up a secret ID).
    write: Mutex<()>,
}

impl AppRoleStore {
    /// Load every role and secret ID of the mount whose storage lives under
    /// `prefix` (`auth/<mount uuid>/`). Secret IDs whose role is gone (a
    /// crash in the middle of a role deletion) are deleted.
    pub(crate) fn load(
        barrier: Arc<Barrier>,
        lookup: Arc<LookupKey>,
        prefix: String,
    ) -> ApiResult<Self> {
        let mut index = Index::default();
        let mut by_dir: HashMap<String, String> = HashMap::new();
        for path in barrier.list(&format!("{prefix}role/"))? {
            let Some(raw) = barrier.get(&path)? else {
                // Deleted (by another node) since the listing.
                continue;
            };
            let role: Role = serde_json::from_slice(&raw).map_err(|e| internal(&path, e))?;
            by_dir.insert(lookup.name(&role.name), role.name.clone());
            index
                .by_role_id
                .insert(role_id_digest(&lookup, &role.role_id), role.name.clone());
            index.roles.insert(
                role.name.clone(),
                RoleState {
                    role,
                    secrets: HashMap::new(),
                    accessors: HashMap::new(),
                },
            );
        }
        let secret_dir = format!("{prefix}secret_id/");
        for path in barrier.list(&secret_dir)? {
            let parsed = path
                .strip_prefix(&secret_dir)
                .and_then(|rest| rest.split_once('/'))
                .and_then(|(dir, hex_id)| {
                    let mut digest = [0u8; 32];
                    hex::decode_to_slice(hex_id, &mut digest).ok()?;
                    Some((dir, digest))
                });
            let Some((dir, digest)) = parsed else {
                return Err(ApiError::Internal(format!(
                    "{path}: malformed secret ID path"
                )));
            };
            let Some(state) = by_dir.get(dir).and_then(|name| index.roles.get_mut(name)) else {
                // With shared storage the role may have been created after our
                // listing: never delete on a guess there.
                if !barrier.storage().is_shared() {
                    blocking(|| barrier.delete(&path))?;
                }
                continue;
            };
            let Some(raw) = barrier.get(&path)? else {
                continue;
            };
            let stored: StoredSecretId =
                serde_json::from_slice(&raw).map_err(|e| internal(&path, e))?;
            state.accessors.insert(stored.info.accessor.clone(), digest);
            state.secrets.insert(digest, stored.info);
        }
        Ok(Self {
            barrier,
            lookup,
            prefix,
            index: RwLock::new(index),
            write: Mutex::default(),
        })
    }

    fn role_path(&self, name: &str) -> String {
        format!("{}role/{}", self.prefix, self.lookup.name(name))
    }

    fn secret_path(&self, name: &str, digest: &Digest) -> String {
        format!(
            "{}secret_id/{}/{}",
            self.prefix,
            self.lookup.name(name),
            hex::encode(digest)
        )
    }

    fn secret_digest(&self, secret_id: &str) -> Digest {
        let input = Zeroizing::new(format!("approle secret_id\0{secret_id}"));
        self.lookup.digest(&input)
    }

    // ----- roles -----------------------------------------------------------

    /// Every role name, sorted.
    pub fn list_roles(&self) -> ApiResult<Vec<String>> {
        Ok(self
            .index
            .read()
            .map_err(|_| poisoned())?
            .roles
            .keys()
            .cloned()
            .collect())
    }

    pub fn get_role(&self, name: &str) -> ApiResult<Option<Role>> {
        Ok(self
            .index
            .read()
            .map_err(|_| poisoned())?
            .roles
            .get(&normalize(name))
            .map(|s| s.role.clone()))
    }

    /// Create or update a role. `edit` gets the stored role, or a new one
    /// (`bind_secret_id` true, no role ID yet: a random UUID is given unless
    /// `edit` sets one). Returns true when the role was created.
    pub fn write_role(
        &self,
        name: &str,
        edit: impl FnOnce(&mut Role) -> ApiResult<()>,
    ) -> ApiResult<bool> {
        self.save_role(name, true, edit)
    }

    /// Set a role's role ID (Vault's `role/:name/role-id`); unique per mount.
    pub fn set_role_id(&self, name: &str, role_id: &str) -> ApiResult<()> {
        if role_id.is_empty() {
            return Err(ApiError::bad("missing role_id"));
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
        edit: impl FnOnce(&mut Role) -> ApiResult<()>,
    ) -> ApiResult<bool> {
        let name = normalize(name);
        if name.is_empty() {
            return Err(ApiError::bad("missing role_name"));
        }
        if name.len() > MAX_HMAC_INPUT {
            return Err(ApiError::bad(format!(
                "role_name is longer than maximum of {MAX_HMAC_INPUT} bytes"
            )));
        }
        let _w = self.write.lock().map_err(|_| poisoned())?;
        let existing = self
            .index
            .read()
            .map_err(|_| poisoned())?
            .roles
            .get(&name)
            .map(|s| s.role.clone());
        let created = existing.is_none();
        if created && !create {
            return Err(ApiError::UnsupportedPath);
        }
        let mut role = existing.clone().unwrap_or_else(|| Role {
            name: name.clone(),
            role_id: String::new(),
            bind_secret_id: true,
            secret_id_num_uses: 0,
            secret_id_ttl: 0,
            token: TokenParams::default(),
            legacy_policies: false,
        });
        edit(&mut role)?;
        role.name.clone_from(&name);
        if created && role.role_id.is_empty() {
            role.role_id = random_uuid()?;
        }
        if role.role_id.is_empty() {
            return Err(ApiError::bad(
                "invalid role_id supplied, or failed to generate a role_id",
            ));
        }
        if role.role_id.len() > MAX_HMAC_INPUT {
            return Err(ApiError::bad(format!(
                "role_id is longer than maximum of {MAX_HMAC_INPUT} bytes"
            )));
        }
        role.token.validate()?;
        let new_digest = role_id_digest(&self.lookup, &role.role_id);
        if self
            .index
            .read()
            .map_err(|_| poisoned())?
            .by_role_id
            .get(&new_digest)
            .is_some_and(|owner| *owner != name)
        {
            return Err(ApiError::bad("role_id already in use"));
        }
        let raw = serde_json::to_vec(&role).map_err(|e| internal("role", e))?;
        blocking(|| self.barrier.put(&self.role_path(&name), &raw))?;
        let mut index = self.index.write().map_err(|_| poisoned())?;
        if let Some(old) = &existing {
            index
                .by_role_id
                .remove(&role_id_digest(&self.lookup, &old.role_id));
        }
        index.by_role_id.insert(new_digest, name.clone());
        match index.roles.get_mut(&name) {
            Some(state) => state.role = role,
            None => {
                index.roles.insert(
                    name,
                    RoleState {
                        role,
                        secrets: HashMap::new(),
                        accessors: HashMap::new(),
                    },
                );
            }
        }
        Ok(created)
    }

    /// Delete a role and every secret ID issued against it (a missing role
    /// is not an error). The secret IDs go first, so a crash midway leaves
    /// the role with fewer secret IDs, never secret IDs without a role.
    pub fn delete_role(&self, name: &str) -> ApiResult<()> {
        let name = normalize(name);
        let _w = self.write.lock().map_err(|_| poisoned())?;
        let (role_id, digests): (String, Vec<Digest>) = {
            let index = self.index.read().map_err(|_| poisoned())?;
            let Some(state) = index.roles.get(&name) else {
                return Ok(());
            };
            (
                state.role.role_id.clone(),
                state.secrets.keys().copied().collect(),
            )
        };
        for digest in &digests {
            blocking(|| self.barrier.delete(&self.secret_path(&name, digest)))?;
        }
        blocking(|| self.barrier.delete(&self.role_path(&name)))?;
        let mut index = self.index.write().map_err(|_| poisoned())?;
        index.roles.remove(&name);
        index
            .by_role_id
            .remove(&role_id_digest(&self.lookup, &role_id));
        Ok(())
    }

    // ----- secret IDs ------------------------------------------------------

    /// Issue a secret ID against a role.
    pub fn create_secret_id(
        &self,
        name: &str,
        request: SecretIdRequest,
        now: i64,
    ) -> ApiResult<NewSecretId> {
        let name = normalize(name);
        let secret_id = match request.secret_id {
            Some(s) if s.is_empty() => return Err(ApiError::bad("missing secret_id")),
            Some(s) => s,
            None => Zeroizing::new(random_uuid()?),
        };
        if secret_id.len() > MAX_HMAC_INPUT {
            return Err(ApiError::bad(format!(
                "value is longer than maximum of {MAX_HMAC_INPUT} bytes"
            )));
        }
        let digest = self.secret_digest(&secret_id);
        let _w = self.write.lock().map_err(|_| poisoned())?;
        let (role, taken) = {
            let index = self.index.read().map_err(|_| poisoned())?;
            let state = index.roles.get(&name).ok_or_else(|| no_role(&name))?;
            (state.role.clone(), state.secrets.contains_key(&digest))
        };
        if !role.bind_secret_id {
            return Err(ApiError::bad("bind_secret_id is not set on the role"));
        }
        let role_uses = role.secret_id_num_uses;
        let num_uses = match request.num_uses {
            // A limited role allows no unlimited (0) or larger count.
            Some(n) if role_uses > 0 && (n == 0 || n > role_uses) => {
                return Err(ApiError::bad(
                    "num_uses cannot be higher than the role's secret_id_num_uses",
                ));
            }
            Some(n) => n,
            None => role_uses,
        };
        let role_ttl = role.secret_id_ttl;
        let ttl = match request.ttl {
            Some(t) if role_ttl > 0 && (t == 0 || t > role_ttl) => {
                return Err(ApiError::bad(
                    "ttl cannot be longer than the role's secret_id_ttl",
                ));
            }
            Some(t) => t,
            None => role_ttl,
        };
        // Vault caps secret IDs at the mount's maximum lease TTL.
        let ttl = ttl.min(MAX_TTL_SECS);
        if taken {
            return Err(ApiError::bad("SecretID is already registered"));
        }
        let accessor = loop {
            let candidate = random_uuid()?;
            let index = self.index.read().map_err(|_| poisoned())?;
            if !index
                .roles
                .get(&name)
                .is_some_and(|s| s.accessors.contains_key(&candidate))
            {
                break candidate;
            }
        };
        let info = SecretIdInfo {
            accessor: accessor.clone(),
            num_uses,
            ttl,
            creation_time: now,
            expiration_time: (ttl > 0).then(|| now.saturating_add(ttl as i64)),
            last_updated_time: now,
            metadata: request.metadata,
        };
        self.persist_secret(&name, &digest, &info)?;
        let mut index = self.index.write().map_err(|_| poisoned())?;
        let state = index.roles.get_mut(&name).ok_or_else(|| no_role(&name))?;
        state.accessors.insert(accessor.clone(), digest);
        state.secrets.insert(digest, info);
        Ok(NewSecretId {
            secret_id,
            accessor,
            ttl,
            num_uses,
        })
    }

    fn persist_secret(&self, name: &str, digest: &Digest, info: &SecretIdInfo) -> ApiResult<()> {
        let stored = StoredSecretId {
            role: name.to_owned(),
            info: info.clone(),
        };
        let raw = serde_json::to_vec(&stored).map_err(|e| internal("secret ID", e))?;
        blocking(|| self.barrier.put(&self.secret_path(name, digest), &raw))?;
        Ok(())
    }

    /// Delete one secret ID; the caller holds `write`.
    fn remove_secret(&self, name: &str, digest: &Digest) -> ApiResult<()> {
        blocking(|| self.barrier.delete(&self.secret_path(name, digest)))?;
        let mut index = self.index.write().map_err(|_| poisoned())?;
        if let Some(state) = index.roles.get_mut(name)
            && let Some(info) = state.secrets.remove(digest)
        {
            state.accessors.remove(&info.accessor);
        }
        Ok(())
    }

    /// A live secret ID of the role, found by `find`; errors if the role is missing.
    fn find_secret(
        &self,
        name: &str,
        now: i64,
        find: impl FnOnce(&RoleState) -> Option<Digest>,
    ) -> ApiResult<Option<(Digest, SecretIdInfo)>> {
        let index = self.index.read().map_err(|_| poisoned())?;
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
    ) -> ApiResult<Option<SecretIdInfo>> {
        let digest = self.secret_digest(secret_id);
        Ok(self
            .find_secret(&normalize(name), now, |_| Some(digest))?
            .map(|(_, info)| info))
    }

    /// The properties of the secret ID with this accessor.
    pub fn lookup_accessor(
        &self,
        name: &str,
        accessor: &str,
        now: i64,
    ) -> ApiResult<Option<SecretIdInfo>> {
        Ok(self
            .find_secret(&normalize(name), now, |s| {
                s.accessors.get(accessor).copied()
            })?
            .map(|(_, info)| info))
    }

    /// Destroy a secret ID (an unknown one is not an error).
    pub fn destroy_secret_id(&self, name: &str, secret_id: &str) -> ApiResult<()> {
        let name = normalize(name);
        let digest = self.secret_digest(secret_id);
        let _w = self.write.lock().map_err(|_| poisoned())?;
        let known = {
            let index = self.index.read().map_err(|_| poisoned())?;
            let state = index.roles.get(&name).ok_or_else(|| no_role(&name))?;
            state.secrets.contains_key(&digest)
        };
        if known {
            self.remove_secret(&name, &digest)?;
        }
        Ok(())
    }

    /// Destroy the secret ID with this accessor; false if there is none.
    pub fn destroy_accessor(&self, name: &str, accessor: &str) -> ApiResult<bool> {
        let name = normalize(name);
        let _w = self.write.lock().map_err(|_| poisoned())?;
        let digest = {
            let index = self.index.read().map_err(|_| poisoned())?;
            let state = index.roles.get(&name).ok_or_else(|| no_role(&name))?;
            state.accessors.get(accessor).copied()
        };
        match digest {
            Some(digest) => {
                self.remove_secret(&name, &digest)?;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// The accessors of a role's secret IDs, sorted.
    pub fn list_accessors(&self, name: &str) -> ApiResult<Vec<String>> {
        let name = normalize(name);
        let index = self.index.read().map_err(|_| poisoned())?;
        let state = index.roles.get(&name).ok_or_else(|| no_role(&name))?;
        let mut accessors: Vec<String> = state.accessors.keys().cloned().collect();
        accessors.sort();
        Ok(accessors)
    }

    /// Delete every expired secret ID; returns how many.
    pub fn tidy(&self, now: i64) -> ApiResult<usize> {
        let _w = self.write.lock().map_err(|_| poisoned())?;
        let expired: Vec<(String, Digest)> = self
            .index
            .read()
            .map_err(|_| poisoned())?
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
        for (name, digest) in &expired {
            self.remove_secret(name, digest)?;
        }
        Ok(expired.len())
    }

    // ----- login -----------------------------------------------------------

    /// Check a role ID and (if the role binds one) a secret ID. Unknown role
    /// IDs and unknown, expired or used-up secret IDs all fail with
    /// [`INVALID_LOGIN`]. A limited secret ID loses one use, durably, before
    /// this returns; expired and used-up ones are deleted.
    pub fn login(
        &self,
        role_id: &str,
        secret_id: Option<&str>,
        now: i64,
    ) -> ApiResult<AppRoleLogin> {
        let role_id = role_id.trim();
        if role_id.is_empty() {
            return Err(ApiError::bad("missing role_id"));
        }
        let invalid = || ApiError::bad(INVALID_LOGIN);
        let secret_id = secret_id.map_or("", str::trim);
        // Both HMACs are computed up front, whatever the outcome.
        let role_digest = role_id_digest(&self.lookup, role_id);
        let secret_digest = self.secret_digest(secret_id);
        let _w = self.write.lock().map_err(|_| poisoned())?;
        let (name, role, info) = {
            let index = self.index.read().map_err(|_| poisoned())?;
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
            return Err(ApiError::bad("missing secret_id"));
        }
        let Some(info) = info else {
            return Err(invalid());
        };
        if info.expired(now) {
            self.remove_secret(&name, &secret_digest)?;
            return Err(invalid());
        }
        match info.num_uses {
            0 => {}
            1 => self.remove_secret(&name, &secret_digest)?,
            n => {
                let mut next = info.clone();
                next.num_uses = n - 1;
                next.last_updated_time = now;
                self.persist_secret(&name, &secret_digest, &next)?;
                let mut index = self.index.write().map_err(|_| poisoned())?;
                if let Some(state) = index.roles.get_mut(&name) {
                    state.secrets.insert(secret_digest, next);
                }
            }
        }
        Ok(AppRoleLogin {
            role,
            metadata: info.metadata,
        })
    }
}

fn role_id_digest(lookup: &LookupKey, role_id: &str) -> Digest {
    let input = Zeroizing::new(format!("approle role_id\0{role_id}"));
    lookup.digest(&input)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::userpass::tests::barrier;
    use crate::storage::{MemoryStorage, Storage};

    const PREFIX: &str = "auth/uuid-2/";

    fn store() -> (Arc<MemoryStorage>, AppRoleStore) {
        let (storage, barrier, lookup) = barrier();
        let store = AppRoleStore::load(barrier, lookup, PREFIX.to_owned()).unwrap();
        (storage, store)
    }

    fn reload(s: &AppRoleStore) -> AppRoleStore {
        AppRoleStore::load(
            Arc::clone(&s.barrier),
            Arc::clone(&s.lookup),
            PREFIX.to_owned(),
        )
        .unwrap()
    }

    fn err(r: ApiResult<impl std::fmt::Debug>) -> String {
        r.unwrap_err().to_string()
    }

    #[test]
    fn roles_and_role_ids() {
        let (_, s) = store();
        assert!(
            s.write_role("CI", |r| {
                r.token.token_policies = vec!["deploy".to_owned()];
                Ok(())
            })
            .unwrap()
        );
        let ci = s.get_role("ci").unwrap().unwrap();
        assert_eq!(ci.name, "ci");
        assert!(ci.bind_secret_id);
        assert_eq!(ci.role_id.len(), 36);
        assert!(uuid::Uuid::parse_str(&ci.role_id).is_ok());
        assert!(!format!("{ci:?}").contains(&ci.role_id));
        // Updates keep the role ID.
        assert!(
            !s.write_role("ci", |r| {
                r.secret_id_num_uses = 5;
                Ok(())
            })
            .unwrap()
        );
        assert_eq!(s.get_role("ci").unwrap().unwrap().role_id, ci.role_id);

        s.set_role_id("ci", "custom-id").unwrap();
        assert_eq!(s.get_role("ci").unwrap().unwrap().role_id, "custom-id");
        assert_eq!(err(s.set_role_id("ci", "")), "missing role_id");
        assert!(matches!(
            s.set_role_id("nope", "x"),
            Err(ApiError::UnsupportedPath)
        ));
        s.write_role("web", |r| {
            r.role_id = "web-id".to_owned();
            Ok(())
        })
        .unwrap();
        assert_eq!(
            err(s.set_role_id("web", "custom-id")),
            "role_id already in use"
        );
        assert_eq!(
            err(s.write_role("other", |r| {
                r.role_id = "custom-id".to_owned();
                Ok(())
            })),
            "role_id already in use"
        );
        assert!(s.get_role("other").unwrap().is_none());
        assert_eq!(s.list_roles().unwrap(), vec!["ci", "web"]);
        // The old role ID no longer logs in; the new one does.
        let sid = s
            .create_secret_id("ci", SecretIdRequest::default(), 0)
            .unwrap();
        assert_eq!(
            err(s.login(&ci.role_id, Some(&sid.secret_id), 0)),
            INVALID_LOGIN
        );
        assert!(s.login("custom-id", Some(&sid.secret_id), 0).is_ok());

        let r = reload(&s);
        assert_eq!(r.list_roles().unwrap(), vec!["ci", "web"]);
        assert_eq!(r.get_role("ci").unwrap(), s.get_role("ci").unwrap());
        assert!(r.login("custom-id", Some(&sid.secret_id), 0).is_ok());

        s.delete_role("web").unwrap();
        s.delete_role("web").unwrap();
        assert_eq!(s.list_roles().unwrap(), vec!["ci"]);
        // A deleted role's role ID is free again.
        s.set_role_id("ci", "web-id").unwrap();
    }

    #[test]
    fn full_flow_with_uses_and_ttl() {
        let (storage, s) = store();
        s.write_role("ci", |r| {
            r.secret_id_num_uses = 2;
            r.secret_id_ttl = 600;
            r.token.token_policies = vec!["deploy".to_owned()];
            Ok(())
        })
        .unwrap();
        let role_id = s.get_role("ci").unwrap().unwrap().role_id;
        let mut meta = BTreeMap::new();
        meta.insert("job".to_owned(), "42".to_owned());
        let sid = s
            .create_secret_id(
                "ci",
                SecretIdRequest {
                    metadata: meta.clone(),
                    ..SecretIdRequest::default()
                },
                1000,
            )
            .unwrap();
        assert_eq!((sid.num_uses, sid.ttl), (2, 600));
        assert!(uuid::Uuid::parse_str(&sid.secret_id).is_ok());
        let info = s
            .lookup_secret_id("ci", &sid.secret_id, 1000)
            .unwrap()
            .unwrap();
        assert_eq!(info.accessor, sid.accessor);
        assert_eq!(info.expiration_time, Some(1600));
        assert_eq!(info.metadata, meta);
        assert_eq!(
            s.lookup_accessor("ci", &sid.accessor, 1000).unwrap(),
            Some(info)
        );
        assert_eq!(s.list_accessors("ci").unwrap(), vec![sid.accessor.clone()]);

        // Bad inputs.
        assert_eq!(
            err(s.login("", Some(&sid.secret_id), 1000)),
            "missing role_id"
        );
        assert_eq!(
            err(s.login("nope", Some(&sid.secret_id), 1000)),
            INVALID_LOGIN
        );
        assert_eq!(err(s.login(&role_id, None, 1000)), "missing secret_id");
        assert_eq!(err(s.login(&role_id, Some("wrong"), 1000)), INVALID_LOGIN);

        // Two uses, each written back durably, then gone.
        let ok = s.login(&role_id, Some(&sid.secret_id), 1001).unwrap();
        assert_eq!(ok.role.name, "ci");
        assert_eq!(ok.metadata, meta);
        let left = reload(&s)
            .lookup_secret_id("ci", &sid.secret_id, 1001)
            .unwrap()
            .unwrap();
        assert_eq!((left.num_uses, left.last_updated_time), (1, 1001));
        s.login(&role_id, Some(&sid.secret_id), 1002).unwrap();
        assert_eq!(
            err(s.login(&role_id, Some(&sid.secret_id), 1003)),
            INVALID_LOGIN
        );
        assert!(s.list_accessors("ci").unwrap().is_empty());
        assert!(
            storage
                .list(&format!("{PREFIX}secret_id/"))
                .unwrap()
                .is_empty()
        );

        // Expiry: refused at its expiration time, and removed.
        let sid = s
            .create_secret_id("ci", SecretIdRequest::default(), 2000)
            .unwrap();
        assert!(
            s.lookup_secret_id("ci", &sid.secret_id, 2599)
                .unwrap()
                .is_some()
        );
        assert!(
            s.lookup_secret_id("ci", &sid.secret_id, 2600)
                .unwrap()
                .is_none()
        );
        assert_eq!(
            err(s.login(&role_id, Some(&sid.secret_id), 2600)),
            INVALID_LOGIN
        );
        assert!(
            storage
                .list(&format!("{PREFIX}secret_id/"))
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            err(s.login(&role_id, Some(&sid.secret_id), 2000)),
            INVALID_LOGIN
        );

        // Overrides may only narrow the role's limits.
        let narrow = |num_uses, ttl| SecretIdRequest {
            num_uses,
            ttl,
            ..SecretIdRequest::default()
        };
        assert_eq!(
            err(s.create_secret_id("ci", narrow(Some(3), None), 0)),
            "num_uses cannot be higher than the role's secret_id_num_uses"
        );
        assert_eq!(
            err(s.create_secret_id("ci", narrow(Some(0), None), 0)),
            "num_uses cannot be higher than the role's secret_id_num_uses"
        );
        assert_eq!(
            err(s.create_secret_id("ci", narrow(None, Some(601)), 0)),
            "ttl cannot be longer than the role's secret_id_ttl"
        );
        let one = s
            .create_secret_id("ci", narrow(Some(1), Some(10)), 0)
            .unwrap();
        assert_eq!((one.num_uses, one.ttl), (1, 10));
        assert_eq!(
            err(s.create_secret_id("nope", SecretIdRequest::default(), 0)),
            "role \"nope\" does not exist"
        );
    }

    #[test]
    fn destroy_by_id_and_accessor_and_role() {
        let (storage, s) = store();
        s.write_role("ci", |_| Ok(())).unwrap();
        let role_id = s.get_role("ci").unwrap().unwrap().role_id;
        let a = s
            .create_secret_id("ci", SecretIdRequest::default(), 0)
            .unwrap();
        let b = s
            .create_secret_id("ci", SecretIdRequest::default(), 0)
            .unwrap();
        let c = s
            .create_secret_id("ci", SecretIdRequest::default(), 0)
            .unwrap();
        let mut all = vec![a.accessor.clone(), b.accessor.clone(), c.accessor.clone()];
        all.sort();
        assert_eq!(s.list_accessors("ci").unwrap(), all);

        s.destroy_secret_id("ci", &a.secret_id).unwrap();
        s.destroy_secret_id("ci", "unknown").unwrap();
        assert_eq!(err(s.login(&role_id, Some(&a.secret_id), 0)), INVALID_LOGIN);
        assert!(s.destroy_accessor("ci", &b.accessor).unwrap());
        assert!(!s.destroy_accessor("ci", &b.accessor).unwrap());
        assert_eq!(err(s.login(&role_id, Some(&b.secret_id), 0)), INVALID_LOGIN);
        assert!(s.lookup_accessor("ci", &b.accessor, 0).unwrap().is_none());
        assert!(s.login(&role_id, Some(&c.secret_id), 0).is_ok());
        assert_eq!(s.list_accessors("ci").unwrap(), vec![c.accessor.clone()]);
        assert_eq!(
            err(s.destroy_secret_id("nope", "x")),
            "role \"nope\" does not exist"
        );
        assert_eq!(
            err(s.list_accessors("nope")),
            "role \"nope\" does not exist"
        );

        // A custom secret ID, once only.
        let custom = SecretIdRequest {
            secret_id: Some(Zeroizing::new("my-custom-secret".to_owned())),
            ..SecretIdRequest::default()
        };
        s.create_secret_id("ci", custom, 0).unwrap();
        assert!(s.login(&role_id, Some("my-custom-secret"), 0).is_ok());
        let again = SecretIdRequest {
            secret_id: Some(Zeroizing::new("my-custom-secret".to_owned())),
            ..SecretIdRequest::default()
        };
        assert_eq!(
            err(s.create_secret_id("ci", again, 0)),
            "SecretID is already registered"
        );

        // Deleting the role deletes its secret IDs, in storage too.
        s.delete_role("ci").unwrap();
        assert!(storage.list(PREFIX).unwrap().is_empty());
        assert_eq!(err(s.login(&role_id, Some(&c.secret_id), 0)), INVALID_LOGIN);
        s.write_role("ci", |_| Ok(())).unwrap();
        assert!(s.list_accessors("ci").unwrap().is_empty());
    }

    #[test]
    fn role_id_only_when_bind_secret_id_is_false() {
        let (_, s) = store();
        s.write_role("svc", |r| {
            r.bind_secret_id = false;
            r.role_id = "svc-role-id".to_owned();
            Ok(())
        })
        .unwrap();
        let ok = s.login("svc-role-id", None, 0).unwrap();
        assert_eq!(ok.role.name, "svc");
        assert!(ok.metadata.is_empty());
        assert!(s.login(" svc-role-id ", Some("ignored"), 0).is_ok());
        assert_eq!(err(s.login("svc-role-i", None, 0)), INVALID_LOGIN);
        assert_eq!(
            err(s.create_secret_id("svc", SecretIdRequest::default(), 0)),
            "bind_secret_id is not set on the role"
        );
    }

    #[test]
    fn secrets_never_in_clear() {
        let (storage, s) = store();
        s.write_role("ci", |r| {
            r.role_id = "role-id-marker".to_owned();
            Ok(())
        })
        .unwrap();
        let custom = SecretIdRequest {
            secret_id: Some(Zeroizing::new("custom-secret-marker".to_owned())),
            ..SecretIdRequest::default()
        };
        s.create_secret_id("ci", custom, 0).unwrap();
        let random = s
            .create_secret_id("ci", SecretIdRequest::default(), 0)
            .unwrap();
        s.login("role-id-marker", Some(&random.secret_id), 0)
            .unwrap();
        let needles = [
            "custom-secret-marker",
            random.secret_id.as_str(),
            "role-id-marker",
            "\"ci\"",
        ];
        for path in storage.list("").unwrap() {
            let value = storage.get(&path).unwrap().unwrap();
            for needle in needles {
                assert!(!path.contains(needle), "{needle} in path {path}");
                assert!(
                    !value.windows(needle.len()).any(|w| w == needle.as_bytes()),
                    "{needle} in {path}"
                );
            }
        }
        // Sealed entries hold neither secret either.
        for path in storage.list(&format!("{PREFIX}secret_id/")).unwrap() {
            let plain = s.barrier.get(&path).unwrap().unwrap();
            for needle in ["custom-secret-marker", random.secret_id.as_str()] {
                assert!(!plain.windows(needle.len()).any(|w| w == needle.as_bytes()));
            }
        }
        assert!(!format!("{s:?}").contains("custom-secret-marker"));
    }

    #[test]
    fn tidy_and_orphans() {
        let (storage, s) = store();
        s.write_role("ci", |r| {
            r.secret_id_ttl = 10;
            Ok(())
        })
        .unwrap();
        s.create_secret_id("ci", SecretIdRequest::default(), 0)
            .unwrap();
        let keep = s
            .create_secret_id("ci", SecretIdRequest::default(), 100)
            .unwrap();
        assert_eq!(s.tidy(50).unwrap(), 1);
        assert_eq!(s.list_accessors("ci").unwrap(), vec![keep.accessor.clone()]);
        // A secret ID left behind by a role deleted midway is dropped at load.
        let role_path = s.role_path("ci");
        storage.delete(&role_path).unwrap();
        let r = reload(&s);
        assert!(r.list_roles().unwrap().is_empty());
        assert!(storage.list(PREFIX).unwrap().is_empty());
    }
}
