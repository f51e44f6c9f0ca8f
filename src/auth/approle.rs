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
//! counted in storage, by compare-and-swap, before the login succeeds (so
//! nodes sharing the storage grant no more logins than it has uses); the last
//! use, or expiry, deletes it. Unlimited ones are checked in memory only.
//!
//! Every change is computed from storage, not from this node's cache, and
//! other nodes' changes reach the cache through [`AppRoleStore::apply_change`].

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::token::MAX_TTL_SECS;
use super::userpass::{Replay, TokenParams};
use crate::error::{ApiError, ApiResult};
use crate::seal::barrier::Barrier;
use crate::seal::edit::{Edit, edit_json, read_json};
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

#[derive(Clone, Serialize, Deserialize)]
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
    /// HMAC of the role ID (its key in `by_role_id`).
    role_digest: Digest,
    /// HMAC of the role name, as in the role's storage paths.
    dir: String,
    secrets: HashMap<Digest, SecretIdInfo>,
    accessors: HashMap<String, Digest>,
}

#[derive(Debug, Default)]
struct Index {
    roles: BTreeMap<String, RoleState>,
    /// HMAC of a role ID -> role name.
    by_role_id: HashMap<Digest, String>,
    /// HMAC of a role name (its storage paths) -> role name.
    by_dir: HashMap<String, String>,
}

impl Index {
    /// Cache a role, keeping its cached secret IDs; true if it was not cached.
    fn put_role(&mut self, role: Role, role_digest: Digest, dir: String) -> bool {
        let name = role.name.clone();
        let added = match self.roles.get_mut(&name) {
            Some(state) => {
                if self.by_role_id.get(&state.role_digest) == Some(&name) {
                    self.by_role_id.remove(&state.role_digest);
                }
                state.role = role;
                state.role_digest = role_digest;
                false
            }
            None => {
                self.by_dir.insert(dir.clone(), name.clone());
                self.roles.insert(
                    name.clone(),
                    RoleState {
                        role,
                        role_digest,
                        dir,
                        secrets: HashMap::new(),
                        accessors: HashMap::new(),
                    },
                );
                true
            }
        };
        self.by_role_id.insert(role_digest, name);
        added
    }

    fn remove_role(&mut self, name: &str) {
        if let Some(state) = self.roles.remove(name) {
            if self
                .by_role_id
                .get(&state.role_digest)
                .is_some_and(|n| n == name)
            {
                self.by_role_id.remove(&state.role_digest);
            }
            if self.by_dir.get(&state.dir).is_some_and(|n| n == name) {
                self.by_dir.remove(&state.dir);
            }
        }
    }

    /// Cache (or with `None`, forget) one secret ID of a cached role.
    fn put_secret(&mut self, name: &str, digest: Digest, info: Option<SecretIdInfo>) {
        let Some(state) = self.roles.get_mut(name) else {
            return;
        };
        if let Some(old) = state.secrets.remove(&digest)
            && state.accessors.get(&old.accessor) == Some(&digest)
        {
            state.accessors.remove(&old.accessor);
        }
        if let Some(info) = info {
            state.accessors.insert(info.accessor.clone(), digest);
            state.secrets.insert(digest, info);
        }
    }
}

/// What a storage path of the mount holds.
enum Key<'p> {
    /// `role/<dir>`
    Role(&'p str),
    /// `secret_id/<dir>/<hex digest>`
    Secret(&'p str, Digest),
}

fn poisoned() -> ApiError {
    ApiError::Internal("approle store lock poisoned".to_owned())
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

fn blank_role(name: &str) -> Role {
    Role {
        name: name.to_owned(),
        role_id: String::new(),
        bind_secret_id: true,
        secret_id_num_uses: 0,
        secret_id_ttl: 0,
        token: TokenParams::default(),
        legacy_policies: false,
    }
}

/// The roles and secret IDs of one AppRole mount.
///
/// Every change is computed from storage and written with compare-and-swap
/// (other nodes may share it), then the cache takes what was stored. `write`
/// is held around both, and by refreshes, so a refresh never publishes an
/// older version over a local write.
#[derive(Debug)]
pub struct AppRoleStore {
    barrier: Arc<Barrier>,
    lookup: Arc<LookupKey>,
    prefix: String,
    index: RwLock<Index>,
    /// Held while roles or secret IDs change (limited secret IDs change at
    /// login) or are refreshed from storage.
    write: Mutex<()>,
}

impl AppRoleStore {
    /// Load every role and secret ID of the mount whose storage lives under
    /// `prefix` (`auth/<mount uuid>/`). Secret IDs whose role is gone (a
    /// crash in the middle of a role deletion) are deleted, unless other
    /// nodes share the storage.
    pub(crate) fn load(
        barrier: Arc<Barrier>,
        lookup: Arc<LookupKey>,
        prefix: String,
    ) -> ApiResult<Self> {
        let store = Self {
            barrier,
            lookup,
            prefix,
            index: RwLock::default(),
            write: Mutex::default(),
        };
        // With shared storage the role may have been created after our
        // listing: never delete on a guess there.
        let sweep = !store.barrier.storage().is_shared();
        let index = store.read_index(sweep)?;
        *store.index.write().map_err(|_| poisoned())? = index;
        Ok(store)
    }

    /// Re-read every role and secret ID from storage into this store (after
    /// missed change notifications).
    pub fn reload(&self) -> ApiResult<()> {
        let _w = self.write.lock().map_err(|_| poisoned())?;
        let index = self.read_index(false)?;
        *self.index.write().map_err(|_| poisoned())? = index;
        Ok(())
    }

    fn read_index(&self, sweep_orphans: bool) -> ApiResult<Index> {
        let mut index = Index::default();
        for path in blocking(|| self.barrier.list(&format!("{}role/", self.prefix)))? {
            // `None`: deleted (by another node) since the listing.
            if let Some(role) = read_json::<Role>(&self.barrier, &path)? {
                let dir = self.checked_dir(&path, &role)?;
                let digest = role_id_digest(&self.lookup, &role.role_id);
                index.put_role(role, digest, dir);
            }
        }
        for path in blocking(|| self.barrier.list(&format!("{}secret_id/", self.prefix)))? {
            let Some(Key::Secret(dir, digest)) = self.parse_path(&path) else {
                return Err(ApiError::Internal(format!(
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
    pub fn apply_change(&self, path: &str) -> ApiResult<()> {
        let Some(key) = self.parse_path(path) else {
            return Ok(());
        };
        let _w = self.write.lock().map_err(|_| poisoned())?;
        let cached = |dir: &str| -> ApiResult<Option<String>> {
            Ok(self
                .index
                .read()
                .map_err(|_| poisoned())?
                .by_dir
                .get(dir)
                .cloned())
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
                    let role_path = format!("{}role/{dir}", self.prefix);
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
                    return Err(ApiError::Internal(format!(
                        "{path} holds a secret ID of another role"
                    )));
                }
                self.index.write().map_err(|_| poisoned())?.put_secret(
                    &name,
                    digest,
                    stored.map(|s| s.info),
                );
                Ok(())
            }
        }
    }

    fn parse_path<'p>(&self, path: &'p str) -> Option<Key<'p>> {
        let rest = path.strip_prefix(self.prefix.as_str())?;
        if let Some(dir) = rest.strip_prefix("role/") {
            return (!dir.is_empty() && !dir.contains('/')).then_some(Key::Role(dir));
        }
        let (dir, hex_id) = rest.strip_prefix("secret_id/")?.split_once('/')?;
        let mut digest = [0u8; 32];
        hex::decode_to_slice(hex_id, &mut digest).ok()?;
        (!dir.is_empty()).then_some(Key::Secret(dir, digest))
    }

    /// The role's storage directory name, checked against where it was read.
    fn checked_dir(&self, path: &str, role: &Role) -> ApiResult<String> {
        let dir = self.lookup.name(&role.name);
        if path != format!("{}role/{dir}", self.prefix) {
            return Err(ApiError::Internal(format!(
                "{path} holds a role stored under another name"
            )));
        }
        Ok(dir)
    }

    /// Put what storage holds for role `name` into the cache (`None`: it is
    /// gone, with its secret IDs). A role new to the cache, or with `fresh`,
    /// gets its secret IDs read from storage. The caller holds `write`.
    fn publish_role(&self, name: &str, role: Option<Role>, fresh: bool) -> ApiResult<()> {
        let Some(role) = role else {
            self.index
                .write()
                .map_err(|_| poisoned())?
                .remove_role(name);
            return Ok(());
        };
        let dir = self.lookup.name(name);
        let cached = self
            .index
            .read()
            .map_err(|_| poisoned())?
            .roles
            .contains_key(name);
        let secrets = if fresh || !cached {
            Some(self.stored_secrets(name)?)
        } else {
            None
        };
        let digest = role_id_digest(&self.lookup, &role.role_id);
        let mut index = self.index.write().map_err(|_| poisoned())?;
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
    fn stored_secrets(&self, name: &str) -> ApiResult<HashMap<Digest, SecretIdInfo>> {
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
    /// too. The caller holds `write`.
    fn delete_stored_secrets(&self, name: &str) -> ApiResult<()> {
        for path in blocking(|| self.barrier.list(&self.secret_dir(name)))? {
            self.delete_entry::<StoredSecretId>(&path)?;
            if let Some(Key::Secret(_, digest)) = self.parse_path(&path) {
                self.index
                    .write()
                    .map_err(|_| poisoned())?
                    .put_secret(name, digest, None);
            }
        }
        Ok(())
    }

    /// Delete one entry; true if there was one.
    fn delete_entry<T: Serialize + DeserializeOwned>(&self, path: &str) -> ApiResult<bool> {
        let mut existed = false;
        edit_json(&self.barrier, path, "the entry", |current: Option<T>| {
            existed = current.is_some();
            Ok(Edit::Delete)
        })?;
        Ok(existed)
    }

    fn role_path(&self, name: &str) -> String {
        format!("{}role/{}", self.prefix, self.lookup.name(name))
    }

    fn secret_dir(&self, name: &str) -> String {
        format!("{}secret_id/{}/", self.prefix, self.lookup.name(name))
    }

    fn secret_path(&self, name: &str, digest: &Digest) -> String {
        format!("{}{}", self.secret_dir(name), hex::encode(digest))
    }

    fn secret_digest(&self, secret_id: &str) -> Digest {
        let input = Zeroizing::new(format!("approle secret_id\0{secret_id}"));
        self.lookup.digest(&input)
    }

    /// Whether role `name` exists: in the cache, or else in storage (which
    /// this node may not have heard from yet). The caller holds `write`.
    fn role_exists(&self, name: &str) -> ApiResult<bool> {
        if self
            .index
            .read()
            .map_err(|_| poisoned())?
            .roles
            .contains_key(name)
        {
            return Ok(true);
        }
        let role = read_json::<Role>(&self.barrier, &self.role_path(name))?;
        let exists = role.is_some();
        self.publish_role(name, role, false)?;
        Ok(exists)
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

    /// Role `name` as this node's cache holds it (no storage access: cheap,
    /// for authorization on the async workers).
    pub fn cached_role(&self, name: &str) -> ApiResult<Option<Role>> {
        Ok(self
            .index
            .read()
            .map_err(|_| poisoned())?
            .roles
            .get(&normalize(name))
            .map(|s| s.role.clone()))
    }

    /// Role `name`: from the cache, or from storage when this node has not
    /// heard of it (another node created it a moment ago and its
    /// notification is still on the way). May block: off the async workers.
    pub fn get_role(&self, name: &str) -> ApiResult<Option<Role>> {
        if let Some(role) = self.cached_role(name)? {
            return Ok(Some(role));
        }
        let name = normalize(name);
        // Under `write`, so a deletion on this node cannot slip between the
        // read and the publication.
        let _w = self.write.lock().map_err(|_| poisoned())?;
        let role = read_json::<Role>(&self.barrier, &self.role_path(&name))?;
        if role.is_some() {
            self.publish_role(&name, role.clone(), false)?;
        }
        Ok(role)
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
        let path = self.role_path(&name);
        let mut edit = Replay::new(edit);
        let _w = self.write.lock().map_err(|_| poisoned())?;
        if create && read_json::<Role>(&self.barrier, &path)?.is_none() {
            // Secret IDs left under this name by an earlier role (a deletion
            // cut short) must not come back to life with the new one.
            self.delete_stored_secrets(&name)?;
        }
        let mut created = false;
        let stored = edit_json(&self.barrier, &path, "the role", |current: Option<Role>| {
            created = current.is_none();
            if created && !create {
                return Err(ApiError::UnsupportedPath);
            }
            let mut role = edit.apply(current.unwrap_or_else(|| blank_role(&name)))?;
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
            let digest = role_id_digest(&self.lookup, &role.role_id);
            if self
                .index
                .read()
                .map_err(|_| poisoned())?
                .by_role_id
                .get(&digest)
                .is_some_and(|owner| *owner != name)
            {
                return Err(ApiError::bad("role_id already in use"));
            }
            Ok(Edit::Put(role))
        });
        let stored = match stored {
            Err(e) if created => {
                // Not in storage: another node deleted it.
                self.publish_role(&name, None, false)?;
                return Err(e);
            }
            other => other?,
        };
        self.publish_role(&name, stored, created)?;
        Ok(created)
    }

    /// Delete a role and every secret ID issued against it (a missing role
    /// is not an error). The secret IDs go first, so a crash midway leaves
    /// the role with fewer secret IDs, never secret IDs without a role.
    pub fn delete_role(&self, name: &str) -> ApiResult<()> {
        let name = normalize(name);
        let _w = self.write.lock().map_err(|_| poisoned())?;
        self.delete_stored_secrets(&name)?;
        self.delete_entry::<Role>(&self.role_path(&name))?;
        self.publish_role(&name, None, false)
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
        let role_path = self.role_path(&name);
        let _w = self.write.lock().map_err(|_| poisoned())?;
        // The role's limits as stored now, not as this node last heard them.
        let Some(role) = read_json::<Role>(&self.barrier, &role_path)? else {
            self.publish_role(&name, None, false)?;
            return Err(no_role(&name));
        };
        self.publish_role(&name, Some(role.clone()), false)?;
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
        let stored = StoredSecretId {
            role: name.clone(),
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
        let path = self.secret_path(&name, &digest);
        edit_json(&self.barrier, &path, "the secret ID", |current| {
            if current.is_some() {
                return Err(ApiError::bad("SecretID is already registered"));
            }
            Ok(Edit::Put(stored.clone()))
        })?;
        // A role deleted meanwhile by another node may have listed its secret
        // IDs before this one was written: check again, and take it back.
        if read_json::<Role>(&self.barrier, &role_path)?.is_none() {
            self.delete_entry::<StoredSecretId>(&path)?;
            self.publish_role(&name, None, false)?;
            return Err(no_role(&name));
        }
        self.index
            .write()
            .map_err(|_| poisoned())?
            .put_secret(&name, digest, Some(stored.info));
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

    /// Destroy a secret ID (an unknown one is not an error), in storage even
    /// if this node has not heard of it.
    pub fn destroy_secret_id(&self, name: &str, secret_id: &str) -> ApiResult<()> {
        let name = normalize(name);
        let digest = self.secret_digest(secret_id);
        let _w = self.write.lock().map_err(|_| poisoned())?;
        if !self.role_exists(&name)? {
            return Err(no_role(&name));
        }
        self.delete_entry::<StoredSecretId>(&self.secret_path(&name, &digest))?;
        self.index
            .write()
            .map_err(|_| poisoned())?
            .put_secret(&name, digest, None);
        Ok(())
    }

    /// Destroy the secret ID with this accessor; false if storage has none.
    /// An accessor this node has not heard of is looked for in storage.
    pub fn destroy_accessor(&self, name: &str, accessor: &str) -> ApiResult<bool> {
        let name = normalize(name);
        let _w = self.write.lock().map_err(|_| poisoned())?;
        if !self.role_exists(&name)? {
            return Err(no_role(&name));
        }
        let cached = self
            .index
            .read()
            .map_err(|_| poisoned())?
            .roles
            .get(&name)
            .and_then(|s| s.accessors.get(accessor).copied());
        let digest = match cached {
            Some(digest) => Some(digest),
            None => self
                .stored_secrets(&name)?
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
            &self.secret_path(&name, &digest),
            "the secret ID",
            |current: Option<StoredSecretId>| {
                destroyed = current.is_some_and(|s| s.info.accessor == accessor);
                Ok(if destroyed { Edit::Delete } else { Edit::Keep })
            },
        )?;
        self.index.write().map_err(|_| poisoned())?.put_secret(
            &name,
            digest,
            stored.map(|s| s.info),
        );
        Ok(destroyed)
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

    /// Delete every expired secret ID this node knows of (if storage agrees
    /// it is expired); returns how many.
    pub fn tidy(&self, now: i64) -> ApiResult<usize> {
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
        let mut removed = 0;
        for (name, digest) in &expired {
            let _w = self.write.lock().map_err(|_| poisoned())?;
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
            self.index.write().map_err(|_| poisoned())?.put_secret(
                name,
                *digest,
                stored.map(|s| s.info),
            );
            removed += usize::from(deleted);
        }
        Ok(removed)
    }

    // ----- login -----------------------------------------------------------

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
        let (name, role, cached) = {
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
        let _w = self.write.lock().map_err(|_| poisoned())?;
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
        self.index.write().map_err(|_| poisoned())?.put_secret(
            &name,
            secret_digest,
            stored.map(|s| s.info),
        );
        let metadata = granted.ok_or_else(invalid)?;
        Ok(AppRoleLogin { role, metadata })
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

    // ----- several nodes on one storage -----------------------------------

    /// A second node over `a`'s storage, loaded now (it knows what is stored
    /// now, and hears of later changes only through `apply_change`).
    fn other_node(a: &AppRoleStore) -> AppRoleStore {
        reload(a)
    }

    fn limited_role(s: &AppRoleStore, uses: u64) -> String {
        s.write_role("ci", |r| {
            r.secret_id_num_uses = uses;
            Ok(())
        })
        .unwrap();
        s.get_role("ci").unwrap().unwrap().role_id
    }

    #[test]
    fn a_role_created_on_another_node_is_found_before_its_notification() {
        let (_, a) = store();
        let b = other_node(&a);
        let role_id = limited_role(&a, 0);
        // B never heard of it, yet reads it (and can issue secret IDs for it).
        assert_eq!(b.get_role("CI").unwrap().unwrap().role_id, role_id);
        assert!(
            b.create_secret_id("ci", SecretIdRequest::default(), 0)
                .is_ok()
        );
        assert!(b.get_role("nope").unwrap().is_none());
    }

    #[test]
    fn a_one_use_secret_id_logs_in_once_across_nodes() {
        let (storage, a) = store();
        let role_id = limited_role(&a, 1);
        let b = other_node(&a);
        let sid = a
            .create_secret_id("ci", SecretIdRequest::default(), 0)
            .unwrap();
        let path = storage.list(&format!("{PREFIX}secret_id/")).unwrap()[0].clone();
        b.apply_change(&path).unwrap();
        assert!(
            b.lookup_secret_id("ci", &sid.secret_id, 0)
                .unwrap()
                .is_some()
        );

        assert!(a.login(&role_id, Some(&sid.secret_id), 1).is_ok());
        // B still has it cached with its one use.
        assert!(
            b.lookup_secret_id("ci", &sid.secret_id, 1)
                .unwrap()
                .is_some()
        );
        assert_eq!(
            err(b.login(&role_id, Some(&sid.secret_id), 1)),
            INVALID_LOGIN
        );
        assert!(
            b.lookup_secret_id("ci", &sid.secret_id, 1)
                .unwrap()
                .is_none(),
            "dropped from B's cache"
        );
    }

    #[test]
    fn uses_are_counted_across_nodes_without_any_refresh() {
        let (_, a) = store();
        let role_id = limited_role(&a, 3);
        let sid = a
            .create_secret_id("ci", SecretIdRequest::default(), 0)
            .unwrap();
        let b = other_node(&a);
        let granted = (0..8)
            .filter(|i| {
                let node = if i % 2 == 0 { &a } else { &b };
                node.login(&role_id, Some(&sid.secret_id), 1).is_ok()
            })
            .count();
        assert_eq!(granted, 3);
    }

    #[test]
    fn concurrent_logins_on_two_nodes_grant_exactly_the_uses() {
        let (_, a) = store();
        let role_id = limited_role(&a, 5);
        let sid = a
            .create_secret_id("ci", SecretIdRequest::default(), 0)
            .unwrap();
        let b = other_node(&a);
        let granted = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|s| {
            for node in [&a, &b, &a, &b] {
                let (granted, role_id, secret) = (&granted, &role_id, &sid.secret_id);
                s.spawn(move || {
                    for _ in 0..5 {
                        match node.login(role_id, Some(secret), 1) {
                            Ok(_) => {
                                granted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                            }
                            Err(e) => assert_eq!(e.to_string(), INVALID_LOGIN),
                        }
                    }
                });
            }
        });
        assert_eq!(granted.into_inner(), 5);
    }

    #[test]
    fn deleting_a_role_deletes_secret_ids_another_node_made() {
        let (storage, a) = store();
        let role_id = limited_role(&a, 0);
        let b = other_node(&a);
        let sid = b
            .create_secret_id("ci", SecretIdRequest::default(), 0)
            .unwrap();
        assert!(a.list_accessors("ci").unwrap().is_empty(), "A never heard");
        a.delete_role("ci").unwrap();
        assert!(storage.list(PREFIX).unwrap().is_empty());
        // Recreated under the same name, the role gets none of them back.
        a.write_role("ci", |r| {
            r.role_id.clone_from(&role_id);
            Ok(())
        })
        .unwrap();
        let fresh = other_node(&a);
        assert_eq!(
            err(fresh.login(&role_id, Some(&sid.secret_id), 0)),
            INVALID_LOGIN
        );
    }

    #[test]
    fn secret_ids_left_by_an_earlier_role_do_not_come_back() {
        let (storage, a) = store();
        let role_id = limited_role(&a, 0);
        let sid = a
            .create_secret_id("ci", SecretIdRequest::default(), 0)
            .unwrap();
        // A deletion cut short after the role went (or a secret ID written
        // by another node just after the deleter listed them).
        storage.delete(&a.role_path("ci")).unwrap();
        a.write_role("ci", |r| {
            r.role_id.clone_from(&role_id);
            Ok(())
        })
        .unwrap();
        assert!(a.list_accessors("ci").unwrap().is_empty());
        assert_eq!(
            err(a.login(&role_id, Some(&sid.secret_id), 0)),
            INVALID_LOGIN
        );
        assert!(
            storage
                .list(&format!("{PREFIX}secret_id/"))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn a_custom_secret_id_is_registered_once_across_nodes() {
        let (_, a) = store();
        limited_role(&a, 0);
        let b = other_node(&a);
        let custom = || SecretIdRequest {
            secret_id: Some(Zeroizing::new("shared-custom".to_owned())),
            ..SecretIdRequest::default()
        };
        a.create_secret_id("ci", custom(), 0).unwrap();
        assert_eq!(
            err(b.create_secret_id("ci", custom(), 0)),
            "SecretID is already registered"
        );
    }

    #[test]
    fn destroying_on_a_node_that_never_heard_of_the_secret_id() {
        let (storage, a) = store();
        let role_id = limited_role(&a, 0);
        let b = other_node(&a);
        let x = a
            .create_secret_id("ci", SecretIdRequest::default(), 0)
            .unwrap();
        let y = a
            .create_secret_id("ci", SecretIdRequest::default(), 0)
            .unwrap();
        b.destroy_secret_id("ci", &x.secret_id).unwrap();
        assert!(b.destroy_accessor("ci", &y.accessor).unwrap());
        assert!(!b.destroy_accessor("ci", &y.accessor).unwrap());
        assert!(
            storage
                .list(&format!("{PREFIX}secret_id/"))
                .unwrap()
                .is_empty()
        );
        // A's cache still has them as unlimited: it hears of the deletions.
        for sid in [&x, &y] {
            a.apply_change(&a.secret_path("ci", &a.secret_digest(&sid.secret_id)))
                .unwrap();
            assert_eq!(
                err(a.login(&role_id, Some(&sid.secret_id), 0)),
                INVALID_LOGIN
            );
        }
        // A role only storage knows of is found there.
        let c = {
            let (_, barrier, lookup) = barrier();
            AppRoleStore::load(barrier, lookup, PREFIX.to_owned()).unwrap()
        };
        assert_eq!(
            err(c.destroy_secret_id("ci", "x")),
            "role \"ci\" does not exist"
        );
    }

    #[test]
    fn tidy_deletes_only_what_storage_still_holds_expired() {
        let (storage, a) = store();
        a.write_role("ci", |r| {
            r.secret_id_ttl = 10;
            Ok(())
        })
        .unwrap();
        a.create_secret_id("ci", SecretIdRequest::default(), 0)
            .unwrap();
        let b = other_node(&a);
        assert_eq!(b.tidy(50).unwrap(), 1);
        assert_eq!(a.tidy(50).unwrap(), 0, "already gone");
        assert!(a.list_accessors("ci").unwrap().is_empty());
        assert!(
            storage
                .list(&format!("{PREFIX}secret_id/"))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn apply_change_in_any_order_and_for_deletions() {
        let (storage, a) = store();
        let b = other_node(&a);
        let role_id = limited_role(&a, 0);
        let sid = a
            .create_secret_id("ci", SecretIdRequest::default(), 0)
            .unwrap();
        let secret_path = storage.list(&format!("{PREFIX}secret_id/")).unwrap()[0].clone();
        let role_path = a.role_path("ci");
        // The secret ID's change arrives before its role's.
        b.apply_change(&secret_path).unwrap();
        assert!(b.login(&role_id, Some(&sid.secret_id), 0).is_ok());
        b.apply_change(&role_path).unwrap();
        assert_eq!(b.list_accessors("ci").unwrap(), vec![sid.accessor.clone()]);

        // A new role ID replaces the old one in B's index.
        a.set_role_id("ci", "new-id").unwrap();
        b.apply_change(&role_path).unwrap();
        assert_eq!(
            err(b.login(&role_id, Some(&sid.secret_id), 0)),
            INVALID_LOGIN
        );
        assert!(b.login("new-id", Some(&sid.secret_id), 0).is_ok());

        a.destroy_secret_id("ci", &sid.secret_id).unwrap();
        b.apply_change(&secret_path).unwrap();
        assert!(b.list_accessors("ci").unwrap().is_empty());
        a.delete_role("ci").unwrap();
        b.apply_change(&role_path).unwrap();
        assert!(b.list_roles().unwrap().is_empty());
        assert_eq!(err(b.login("new-id", None, 0)), INVALID_LOGIN);
        // new-id is free again on B.
        b.write_role("other", |r| {
            r.role_id = "new-id".to_owned();
            Ok(())
        })
        .unwrap();

        // Forged or malformed paths change nothing and never panic.
        for path in [
            "",
            "auth/",
            PREFIX,
            "auth/uuid-2/role/",
            "auth/uuid-2/role/a/b",
            "auth/uuid-2/secret_id/",
            "auth/uuid-2/secret_id/dir",
            "auth/uuid-2/secret_id//00",
            "auth/uuid-2/secret_id/dir/not-hex",
            "auth/uuid-2/secret_id/dir/0a0a",
            "auth/uuid-2/secret_id/dir/é",
            "auth/uuid-9/role/abc",
            "auth/uuid-2/other",
        ] {
            b.apply_change(path).unwrap();
        }
        let zero = format!(
            "{PREFIX}secret_id/{}/{}",
            b.lookup.name("other"),
            "00".repeat(32)
        );
        b.apply_change(&zero).unwrap();
        assert_eq!(b.list_roles().unwrap(), vec!["other"]);
        assert!(b.list_accessors("other").unwrap().is_empty());

        b.reload().unwrap();
        assert_eq!(b.list_roles().unwrap(), vec!["other"]);
        assert!(b.login("new-id", None, 0).is_err());
    }

    #[test]
    fn a_stale_node_does_not_undo_a_role_change() {
        let (_, a) = store();
        limited_role(&a, 2);
        let b = other_node(&a);
        a.write_role("ci", |r| {
            r.token.token_policies = vec!["from-a".to_owned()];
            Ok(())
        })
        .unwrap();
        b.write_role("ci", |r| {
            r.secret_id_ttl = 99;
            Ok(())
        })
        .unwrap();
        let role = b.get_role("ci").unwrap().unwrap();
        assert_eq!(role.token.token_policies, vec!["from-a"]);
        assert_eq!((role.secret_id_ttl, role.secret_id_num_uses), (99, 2));
        // A role another node deleted is not recreated by set_role_id.
        a.delete_role("ci").unwrap();
        assert!(matches!(
            b.set_role_id("ci", "x"),
            Err(ApiError::UnsupportedPath)
        ));
        assert!(b.get_role("ci").unwrap().is_none());
    }
}
