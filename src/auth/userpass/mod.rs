//! The userpass login method: named users with a password, as Vault's
//! `auth/userpass` keeps them.
//!
//! Each user is one entry through the barrier at
//! `<prefix>users/<HMAC of the lowercased name>`, holding the name, an
//! argon2id hash of the password (PHC string) and the settings of the tokens a
//! login issues. The whole mount is loaded at unseal; logins read memory only.
//! Changes are computed from storage and written by compare-and-swap (other
//! nodes may share it); other nodes' changes reach the cache through
//! [`UserpassStore::apply_change`].
//!
//! A login costs one argon2id verification whether or not the user exists: for
//! a missing user the password is checked against a dummy hash made with the
//! same parameters, so response time does not tell which names exist. The
//! comparison of the computed and stored hash is argon2's own, constant-time.

use std::collections::BTreeMap;
use std::sync::Arc;

use argon2::Params;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::seal::barrier::Barrier;
use crate::seal::edit::{Edit, edit_json, read_json};
use crate::seal::lookup::LookupKey;
use crate::storage::blocking;
use crate::storage::layout::USERPASS_USERS;
use crate::storage::{Cached, Missing, StoreError, StoreResult};

mod password;
mod replay;
#[cfg(test)]
pub(crate) mod tests;

use password::{hash_password, verify_password};
pub(crate) use replay::Replay;

/// What a login method puts on the tokens it issues (Vault's `token_*`
/// fields; shared by userpass users and AppRole roles).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenParams {
    #[serde(default)]
    pub token_policies: Vec<String>,
    /// Seconds; 0: the token store's default.
    #[serde(default)]
    pub token_ttl: u64,
    /// Seconds; 0: no limit beyond the system maximum.
    #[serde(default)]
    pub token_max_ttl: u64,
    #[serde(default)]
    pub token_explicit_max_ttl: u64,
    /// 0: unlimited.
    #[serde(default)]
    pub token_num_uses: u64,
    #[serde(default)]
    pub token_no_default_policy: bool,
}

impl TokenParams {
    /// Vault's consistency check of the token fields.
    pub fn validate(&self) -> StoreResult<()> {
        if self.token_ttl > 0 && self.token_max_ttl > 0 && self.token_ttl > self.token_max_ttl {
            return Err(StoreError::invalid(
                "'token_ttl' cannot be greater than 'token_max_ttl'",
            ));
        }
        Ok(())
    }
}

/// A user as the API shows it (never with its password hash).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// Lowercased, as Vault stores user names.
    pub name: String,
    #[serde(flatten)]
    pub token: TokenParams,
    /// The policies were last set through the deprecated `policies` field
    /// (reads then show `policies` too, as Vault does).
    #[serde(default)]
    pub legacy_policies: bool,
}

#[derive(Serialize, Deserialize)]
struct Stored {
    name: String,
    #[serde(with = "zeroizing_string")]
    password_hash: Zeroizing<String>,
    #[serde(flatten)]
    token: TokenParams,
    #[serde(default)]
    legacy_policies: bool,
}

/// Serde for a zeroizing string (the password hash, as it goes through memory).
mod zeroizing_string {
    use serde::{Deserialize, Deserializer, Serializer};
    use zeroize::Zeroizing;

    pub fn serialize<S: Serializer>(value: &Zeroizing<String>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(value)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Zeroizing<String>, D::Error> {
        String::deserialize(d).map(Zeroizing::new)
    }
}

impl Stored {
    fn new(user: User, password_hash: Zeroizing<String>) -> Self {
        Self {
            name: user.name,
            password_hash,
            token: user.token,
            legacy_policies: user.legacy_policies,
        }
    }

    fn user(&self) -> User {
        User {
            name: self.name.clone(),
            token: self.token.clone(),
            legacy_policies: self.legacy_policies,
        }
    }

    fn into_entry(self) -> Entry {
        Entry {
            user: self.user(),
            hash: self.password_hash,
        }
    }
}

struct Entry {
    user: User,
    /// argon2id PHC string.
    hash: Zeroizing<String>,
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entry")
            .field("user", &self.user)
            .field("hash", &"<redacted>")
            .finish()
    }
}

fn internal(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Internal(format!("{what}: {e}"))
}

fn no_user() -> StoreError {
    Missing::User.into()
}

/// Every user stored under `dir`, by name.
fn read_users(barrier: &Barrier, dir: &str) -> StoreResult<BTreeMap<String, Arc<Entry>>> {
    let mut users = BTreeMap::new();
    for path in blocking(|| barrier.list(dir))? {
        // `None`: deleted (by another node) since the listing.
        if let Some(stored) = read_json::<Stored>(barrier, &path)? {
            users.insert(stored.name.clone(), Arc::new(stored.into_entry()));
        }
    }
    Ok(users)
}

/// The users of one userpass mount.
///
/// Every change is computed from storage and written with compare-and-swap
/// (another node may have changed the user since this node cached it); the
/// cache then takes what was stored. The writer lock is held around both, and by
/// refreshes, so a refresh never publishes an older version over a local write.
#[derive(Debug)]
pub struct UserpassStore {
    barrier: Arc<Barrier>,
    lookup: Arc<LookupKey>,
    /// `<prefix>users/`
    dir: String,
    /// Users by name; its writer lock is held while users are written,
    /// deleted or refreshed from storage.
    users: Cached<BTreeMap<String, Arc<Entry>>>,
    /// argon2id cost of new hashes (existing ones verify with their own).
    params: Params,
    /// Verified against when the user does not exist, at the same cost.
    dummy_hash: Zeroizing<String>,
}

impl UserpassStore {
    /// Load every user of the mount whose storage lives under `prefix`
    /// (`auth/<mount uuid>/`), at unseal or when the mount is enabled.
    pub(crate) fn load(
        barrier: Arc<Barrier>,
        lookup: Arc<LookupKey>,
        prefix: String,
    ) -> StoreResult<Self> {
        Self::load_with(barrier, lookup, prefix, Params::default())
    }

    fn load_with(
        barrier: Arc<Barrier>,
        lookup: Arc<LookupKey>,
        prefix: String,
        params: Params,
    ) -> StoreResult<Self> {
        let dir = format!("{prefix}{USERPASS_USERS}");
        let users = read_users(&barrier, &dir)?;
        let dummy_hash = hash_password(&params, "transitd userpass dummy password")?;
        Ok(Self {
            barrier,
            lookup,
            dir,
            users: Cached::new("userpass store", users),
            params,
            dummy_hash,
        })
    }

    /// Re-read every user from storage into this store (after missed change
    /// notifications).
    pub fn reload(&self) -> StoreResult<()> {
        self.users.reload(|| read_users(&self.barrier, &self.dir))
    }

    /// Another node wrote or deleted the entry at `path`: re-read it. Paths
    /// outside this mount's users are ignored.
    pub fn apply_change(&self, path: &str) -> StoreResult<()> {
        let Some(leaf) = path.strip_prefix(&self.dir) else {
            return Ok(());
        };
        if leaf.is_empty() || leaf.contains('/') {
            return Ok(());
        }
        let _w = self.users.writer()?;
        match read_json::<Stored>(&self.barrier, path)? {
            Some(stored) => {
                if self.path(&stored.name) != path {
                    return Err(StoreError::Internal(format!(
                        "{path} holds a user stored under another name"
                    )));
                }
                let name = stored.name.clone();
                self.publish(&name, Some(stored))
            }
            None => {
                let mut users = self.users.write()?;
                users.retain(|name, _| self.path(name) != path);
                Ok(())
            }
        }
    }

    fn path(&self, name: &str) -> String {
        format!("{}{}", self.dir, self.lookup.name(name))
    }

    /// Put what storage now holds for `name` into the cache; the caller holds
    /// the writer lock.
    fn publish(&self, name: &str, stored: Option<Stored>) -> StoreResult<()> {
        let mut users = self.users.write()?;
        match stored {
            Some(stored) => users.insert(name.to_owned(), Arc::new(stored.into_entry())),
            None => users.remove(name),
        };
        Ok(())
    }

    pub fn get(&self, name: &str) -> StoreResult<Option<User>> {
        Ok(self.users.read()?.get(name).map(|e| e.user.clone()))
    }

    /// Every user name, sorted.
    pub fn list(&self) -> StoreResult<Vec<String>> {
        Ok(self.users.read()?.keys().cloned().collect())
    }

    /// Create or update a user. `edit` changes the user's settings (it gets
    /// the stored user, or a blank one named `name` when creating). A new
    /// user needs a password; an existing one keeps its own unless one is
    /// given. Returns true when the user was created.
    pub fn write(
        &self,
        name: &str,
        password: Option<&str>,
        edit: impl FnOnce(&mut User) -> StoreResult<()>,
    ) -> StoreResult<bool> {
        if name.is_empty() {
            return Err(StoreError::invalid("missing username"));
        }
        // Hash before taking the lock: argon2 is the slow part.
        let new_hash = match password.filter(|p| !p.is_empty()) {
            Some(p) => Some(blocking(|| hash_password(&self.params, p))?),
            None => None,
        };
        let mut edit = Replay::new(edit);
        let mut created = false;
        let _w = self.users.writer()?;
        let stored = edit_json(
            &self.barrier,
            &self.path(name),
            "the user",
            |current: Option<Stored>| {
                created = current.is_none();
                let (base, hash) = match (current, &new_hash) {
                    (Some(s), Some(h)) => (s.user(), h.clone()),
                    (Some(s), None) => (s.user(), s.password_hash),
                    (None, Some(h)) => (
                        User {
                            name: name.to_owned(),
                            ..User::default()
                        },
                        h.clone(),
                    ),
                    (None, None) => {
                        return Err(StoreError::invalid(
                            "must provide either password or password_hash",
                        ));
                    }
                };
                let mut user = edit.apply(base)?;
                user.name = name.to_owned();
                user.token.validate()?;
                Ok(Edit::Put(Stored::new(user, hash)))
            },
        )?;
        self.publish(name, stored)?;
        Ok(created)
    }

    /// Change an existing user's password (Vault's `users/:name/password`).
    pub fn set_password(&self, name: &str, password: &str) -> StoreResult<()> {
        if password.is_empty() {
            return Err(StoreError::invalid(
                "must provide either password or password_hash",
            ));
        }
        let path = self.path(name);
        // Spare the hashing for a missing user; storage decides if the cache
        // has not heard of the user yet.
        if self.get(name)?.is_none() && read_json::<Stored>(&self.barrier, &path)?.is_none() {
            return Err(no_user());
        }
        let hash = blocking(|| hash_password(&self.params, password))?;
        let _w = self.users.writer()?;
        let stored = edit_json(
            &self.barrier,
            &path,
            "the user",
            |current: Option<Stored>| {
                let mut stored = current.ok_or_else(no_user)?;
                stored.password_hash = hash.clone();
                Ok(Edit::Put(stored))
            },
        );
        self.settle(name, stored)
    }

    /// Change an existing user's settings only (Vault's `users/:name/policies`).
    pub fn update(
        &self,
        name: &str,
        edit: impl FnOnce(&mut User) -> StoreResult<()>,
    ) -> StoreResult<()> {
        let mut edit = Replay::new(edit);
        let _w = self.users.writer()?;
        let stored = edit_json(
            &self.barrier,
            &self.path(name),
            "the user",
            |current: Option<Stored>| {
                let stored = current.ok_or_else(no_user)?;
                let mut user = edit.apply(stored.user())?;
                user.name = name.to_owned();
                user.token.validate()?;
                Ok(Edit::Put(Stored::new(user, stored.password_hash)))
            },
        );
        self.settle(name, stored)
    }

    /// Publish the outcome of a change to an existing user. A user found
    /// missing in storage is dropped from the cache too (another node deleted
    /// it and this node has not heard yet). The caller holds the writer lock.
    fn settle(&self, name: &str, outcome: StoreResult<Option<Stored>>) -> StoreResult<()> {
        match outcome {
            Ok(stored) => self.publish(name, stored),
            Err(e) => {
                if matches!(e, StoreError::Missing(Missing::User)) {
                    self.publish(name, None)?;
                }
                Err(e)
            }
        }
    }

    /// Delete a user (a missing one is not an error). Tokens it obtained
    /// stay valid until they expire or are revoked, as in Vault.
    pub fn delete(&self, name: &str) -> StoreResult<()> {
        let _w = self.users.writer()?;
        let stored = edit_json(
            &self.barrier,
            &self.path(name),
            "the user",
            |_: Option<Stored>| Ok(Edit::Delete),
        )?;
        self.publish(name, stored)
    }

    /// Check a user's password: the user when it matches, `None` when the
    /// user does not exist or the password is wrong. Both failures cost one
    /// argon2id verification with the same parameters.
    pub fn login(&self, name: &str, password: &str) -> StoreResult<Option<User>> {
        let entry = self.users.read()?.get(name).cloned();
        let hash = entry.as_ref().map_or(&self.dummy_hash, |e| &e.hash);
        let matches = blocking(|| verify_password(hash, password))?;
        Ok(entry.filter(|_| matches).map(|e| e.user.clone()))
    }
}
