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

mod login;
mod roles;
mod secret_ids;
mod store;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::token::MAX_TTL_SECS;
use super::userpass::{Replay, TokenParams};
use crate::seal::barrier::Barrier;
use crate::seal::edit::{Edit, edit_json, read_json};
use crate::seal::lookup::LookupKey;
use crate::storage::blocking;
use crate::storage::layout::{APPROLE_ROLES, APPROLE_SECRET_IDS};
use crate::storage::{Cached, Missing, StoreError, StoreResult};

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

fn no_role(name: &str) -> StoreError {
    StoreError::invalid(format!("role {name:?} does not exist"))
}

/// A random (v4) UUID from the system CSPRNG.
pub fn random_uuid() -> StoreResult<String> {
    let mut bytes = [0u8; 16];
    transit_keys::secret::fill_random(&mut bytes)
        .map_err(|_| StoreError::Internal("random number generator failed".to_owned()))?;
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
/// (other nodes may share it), then the cache takes what was stored. The
/// index's writer lock is held around both, and by refreshes, so a refresh
/// never publishes an older version over a local write.
#[derive(Debug)]
pub struct AppRoleStore {
    barrier: Arc<Barrier>,
    lookup: Arc<LookupKey>,
    prefix: String,
    /// Its writer lock is held while roles or secret IDs change (limited
    /// secret IDs change at login) or are refreshed from storage.
    index: Cached<Index>,
}

fn role_id_digest(lookup: &LookupKey, role_id: &str) -> Digest {
    let input = Zeroizing::new(format!("approle role_id\0{role_id}"));
    lookup.digest(&input)
}
