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
use std::sync::{Arc, Mutex, RwLock};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::error::{ApiError, ApiResult};
use crate::seal::barrier::Barrier;
use crate::seal::edit::{Edit, edit_json, read_json};
use crate::state::LookupKey;
use crate::storage::blocking;

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
    pub fn validate(&self) -> ApiResult<()> {
        if self.token_ttl > 0 && self.token_max_ttl > 0 && self.token_ttl > self.token_max_ttl {
            return Err(ApiError::bad(
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

fn poisoned() -> ApiError {
    ApiError::Internal("userpass store lock poisoned".to_owned())
}

fn internal(what: &str, e: impl std::fmt::Display) -> ApiError {
    ApiError::Internal(format!("{what}: {e}"))
}

const NO_USER: &str = "username does not exist";

fn no_user() -> ApiError {
    ApiError::bad(NO_USER)
}

fn is_no_user(e: &ApiError) -> bool {
    matches!(e, ApiError::BadRequest(m) if m == NO_USER)
}

/// Vault's user names are case-insensitive: stored and looked up lowercased.
pub fn normalize(name: &str) -> String {
    name.to_lowercase()
}

/// A caller's one-shot edit of a stored object, made repeatable for
/// compare-and-swap: it runs once, on the first version read; when another
/// node wrote in between, the fields it changed (those whose JSON differs from
/// the version it saw) are set again on the newer version, so both writers'
/// changes survive.
pub(crate) struct Replay<T, F> {
    edit: Option<F>,
    changes: serde_json::Map<String, serde_json::Value>,
    _value: std::marker::PhantomData<fn(T) -> T>,
}

impl<T, F> Replay<T, F>
where
    T: Serialize + DeserializeOwned,
    F: FnOnce(&mut T) -> ApiResult<()>,
{
    pub(crate) fn new(edit: F) -> Self {
        Self {
            edit: Some(edit),
            changes: serde_json::Map::new(),
            _value: std::marker::PhantomData,
        }
    }

    /// `base` with the edit applied.
    pub(crate) fn apply(&mut self, mut base: T) -> ApiResult<T> {
        if let Some(edit) = self.edit.take() {
            let before = json_object(&base)?;
            edit(&mut base)?;
            self.changes = json_object(&base)?
                .into_iter()
                .filter(|(k, v)| before.get(k) != Some(v))
                .collect();
            return Ok(base);
        }
        let mut object = json_object(&base)?;
        object.extend(self.changes.clone());
        serde_json::from_value(serde_json::Value::Object(object)).map_err(|e| internal("edit", e))
    }
}

fn json_object<T: Serialize>(value: &T) -> ApiResult<serde_json::Map<String, serde_json::Value>> {
    match serde_json::to_value(value).map_err(|e| internal("edit", e))? {
        serde_json::Value::Object(map) => Ok(map),
        other => Err(internal("edit", format!("not an object: {other}"))),
    }
}

/// Every user stored under `dir`, by name.
fn read_users(barrier: &Barrier, dir: &str) -> ApiResult<BTreeMap<String, Arc<Entry>>> {
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
/// cache then takes what was stored. `write` is held around both, and by
/// refreshes, so a refresh never publishes an older version over a local write.
#[derive(Debug)]
pub struct UserpassStore {
    barrier: Arc<Barrier>,
    lookup: Arc<LookupKey>,
    /// `<prefix>users/`
    dir: String,
    users: RwLock<BTreeMap<String, Arc<Entry>>>,
    /// Held while users are written, deleted or refreshed from storage.
    write: Mutex<()>,
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
    ) -> ApiResult<Self> {
        Self::load_with(barrier, lookup, prefix, Params::default())
    }

    fn load_with(
        barrier: Arc<Barrier>,
        lookup: Arc<LookupKey>,
        prefix: String,
        params: Params,
    ) -> ApiResult<Self> {
        let dir = format!("{prefix}users/");
        let users = read_users(&barrier, &dir)?;
        let dummy_hash = hash_password(&params, "transitd userpass dummy password")?;
        Ok(Self {
            barrier,
            lookup,
            dir,
            users: RwLock::new(users),
            write: Mutex::default(),
            params,
            dummy_hash,
        })
    }

    /// Re-read every user from storage into this store (after missed change
    /// notifications).
    pub fn reload(&self) -> ApiResult<()> {
        let _w = self.write.lock().map_err(|_| poisoned())?;
        let users = read_users(&self.barrier, &self.dir)?;
        *self.users.write().map_err(|_| poisoned())? = users;
        Ok(())
    }

    /// Another node wrote or deleted the entry at `path`: re-read it. Paths
    /// outside this mount's users are ignored.
    pub fn apply_change(&self, path: &str) -> ApiResult<()> {
        let Some(leaf) = path.strip_prefix(&self.dir) else {
            return Ok(());
        };
        if leaf.is_empty() || leaf.contains('/') {
            return Ok(());
        }
        let _w = self.write.lock().map_err(|_| poisoned())?;
        match read_json::<Stored>(&self.barrier, path)? {
            Some(stored) => {
                if self.path(&stored.name) != path {
                    return Err(ApiError::Internal(format!(
                        "{path} holds a user stored under another name"
                    )));
                }
                let name = stored.name.clone();
                self.publish(&name, Some(stored))
            }
            None => {
                let mut users = self.users.write().map_err(|_| poisoned())?;
                users.retain(|name, _| self.path(name) != path);
                Ok(())
            }
        }
    }

    fn path(&self, name: &str) -> String {
        format!("{}{}", self.dir, self.lookup.name(name))
    }

    /// Put what storage now holds for `name` into the cache; the caller holds
    /// `write`.
    fn publish(&self, name: &str, stored: Option<Stored>) -> ApiResult<()> {
        let mut users = self.users.write().map_err(|_| poisoned())?;
        match stored {
            Some(stored) => users.insert(name.to_owned(), Arc::new(stored.into_entry())),
            None => users.remove(name),
        };
        Ok(())
    }

    pub fn get(&self, name: &str) -> ApiResult<Option<User>> {
        Ok(self
            .users
            .read()
            .map_err(|_| poisoned())?
            .get(&normalize(name))
            .map(|e| e.user.clone()))
    }

    /// Every user name, sorted.
    pub fn list(&self) -> ApiResult<Vec<String>> {
        Ok(self
            .users
            .read()
            .map_err(|_| poisoned())?
            .keys()
            .cloned()
            .collect())
    }

    /// Create or update a user. `edit` changes the user's settings (it gets
    /// the stored user, or a blank one named `name` when creating). A new
    /// user needs a password; an existing one keeps its own unless one is
    /// given. Returns true when the user was created.
    pub fn write(
        &self,
        name: &str,
        password: Option<&str>,
        edit: impl FnOnce(&mut User) -> ApiResult<()>,
    ) -> ApiResult<bool> {
        let name = normalize(name);
        if name.is_empty() {
            return Err(ApiError::bad("missing username"));
        }
        // Hash before taking the lock: argon2 is the slow part.
        let new_hash = match password.filter(|p| !p.is_empty()) {
            Some(p) => Some(blocking(|| hash_password(&self.params, p))?),
            None => None,
        };
        let mut edit = Replay::new(edit);
        let mut created = false;
        let _w = self.write.lock().map_err(|_| poisoned())?;
        let stored = edit_json(
            &self.barrier,
            &self.path(&name),
            "the user",
            |current: Option<Stored>| {
                created = current.is_none();
                let (base, hash) = match (current, &new_hash) {
                    (Some(s), Some(h)) => (s.user(), h.clone()),
                    (Some(s), None) => (s.user(), s.password_hash),
                    (None, Some(h)) => (
                        User {
                            name: name.clone(),
                            ..User::default()
                        },
                        h.clone(),
                    ),
                    (None, None) => {
                        return Err(ApiError::bad(
                            "must provide either password or password_hash",
                        ));
                    }
                };
                let mut user = edit.apply(base)?;
                user.name.clone_from(&name);
                user.token.validate()?;
                Ok(Edit::Put(Stored::new(user, hash)))
            },
        )?;
        self.publish(&name, stored)?;
        Ok(created)
    }

    /// Change an existing user's password (Vault's `users/:name/password`).
    pub fn set_password(&self, name: &str, password: &str) -> ApiResult<()> {
        if password.is_empty() {
            return Err(ApiError::bad(
                "must provide either password or password_hash",
            ));
        }
        let name = normalize(name);
        let path = self.path(&name);
        // Spare the hashing for a missing user; storage decides if the cache
        // has not heard of the user yet.
        if self.get(&name)?.is_none() && read_json::<Stored>(&self.barrier, &path)?.is_none() {
            return Err(no_user());
        }
        let hash = blocking(|| hash_password(&self.params, password))?;
        let _w = self.write.lock().map_err(|_| poisoned())?;
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
        self.settle(&name, stored)
    }

    /// Change an existing user's settings only (Vault's `users/:name/policies`).
    pub fn update(
        &self,
        name: &str,
        edit: impl FnOnce(&mut User) -> ApiResult<()>,
    ) -> ApiResult<()> {
        let name = normalize(name);
        let mut edit = Replay::new(edit);
        let _w = self.write.lock().map_err(|_| poisoned())?;
        let stored = edit_json(
            &self.barrier,
            &self.path(&name),
            "the user",
            |current: Option<Stored>| {
                let stored = current.ok_or_else(no_user)?;
                let mut user = edit.apply(stored.user())?;
                user.name.clone_from(&name);
                user.token.validate()?;
                Ok(Edit::Put(Stored::new(user, stored.password_hash)))
            },
        );
        self.settle(&name, stored)
    }

    /// Publish the outcome of a change to an existing user. A user found
    /// missing in storage is dropped from the cache too (another node deleted
    /// it and this node has not heard yet). The caller holds `write`.
    fn settle(&self, name: &str, outcome: ApiResult<Option<Stored>>) -> ApiResult<()> {
        match outcome {
            Ok(stored) => self.publish(name, stored),
            Err(e) => {
                if is_no_user(&e) {
                    self.publish(name, None)?;
                }
                Err(e)
            }
        }
    }

    /// Delete a user (a missing one is not an error). Tokens it obtained
    /// stay valid until they expire or are revoked, as in Vault.
    pub fn delete(&self, name: &str) -> ApiResult<()> {
        let name = normalize(name);
        let _w = self.write.lock().map_err(|_| poisoned())?;
        let stored = edit_json(
            &self.barrier,
            &self.path(&name),
            "the user",
            |_: Option<Stored>| Ok(Edit::Delete),
        )?;
        self.publish(&name, stored)
    }

    /// Check a user's password: the user when it matches, `None` when the
    /// user does not exist or the password is wrong. Both failures cost one
    /// argon2id verification with the same parameters.
    pub fn login(&self, name: &str, password: &str) -> ApiResult<Option<User>> {
        let name = normalize(name);
        let entry = self
            .users
            .read()
            .map_err(|_| poisoned())?
            .get(&name)
            .cloned();
        let hash = entry.as_ref().map_or(&self.dummy_hash, |e| &e.hash);
        let matches = blocking(|| verify_password(hash, password))?;
        Ok(entry.filter(|_| matches).map(|e| e.user.clone()))
    }
}

fn argon2id(params: Params) -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// A fresh argon2id hash of `password` with a random 16-byte salt, as a PHC
/// string (`$argon2id$v=19$m=...,t=...,p=...$salt$hash`).
fn hash_password(params: &Params, password: &str) -> ApiResult<Zeroizing<String>> {
    let mut salt = [0u8; 16];
    transit_keys::secret::fill_random(&mut salt)
        .map_err(|_| ApiError::Internal("random number generator failed".to_owned()))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| internal("argon2 salt", e))?;
    let hash = argon2id(params.clone())
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| internal("argon2 hash", e))?;
    Ok(Zeroizing::new(hash.to_string()))
}

/// Whether `password` matches the PHC string `hash` (verified with the
/// parameters recorded in the hash; the final comparison is constant-time).
fn verify_password(hash: &str, password: &str) -> ApiResult<bool> {
    let parsed = PasswordHash::new(hash).map_err(|e| internal("stored password hash", e))?;
    match argon2id(Params::default()).verify_password(password.as_bytes(), &parsed) {
        Ok(()) => Ok(true),
        Err(argon2::password_hash::Error::Password) => Ok(false),
        Err(e) => Err(internal("argon2 verify", e)),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::seal::barrier::{BarrierKeyring, SecretKey};
    use crate::storage::{MemoryStorage, Storage};

    pub(crate) fn barrier() -> (Arc<MemoryStorage>, Arc<Barrier>, Arc<LookupKey>) {
        let storage = Arc::new(MemoryStorage::new());
        let barrier = Arc::new(Barrier::new(
            Arc::clone(&storage) as Arc<dyn Storage>,
            BarrierKeyring::generate().unwrap(),
        ));
        let lookup = Arc::new(LookupKey::new(SecretKey::random().unwrap()));
        (storage, barrier, lookup)
    }

    /// Cheap argon2 parameters: debug builds run argon2 unoptimised.
    pub(crate) fn cheap() -> Params {
        Params::new(256, 1, 1, None).unwrap()
    }

    fn store(params: Params) -> (Arc<MemoryStorage>, UserpassStore) {
        let (storage, barrier, lookup) = barrier();
        let store =
            UserpassStore::load_with(barrier, lookup, "auth/uuid-1/".to_owned(), params).unwrap();
        (storage, store)
    }

    fn all_bytes(storage: &MemoryStorage) -> Vec<(String, Vec<u8>)> {
        storage
            .list("")
            .unwrap()
            .into_iter()
            .map(|p| {
                let v = storage.get(&p).unwrap().unwrap();
                (p, v)
            })
            .collect()
    }

    fn contains(haystack: &[u8], needle: &[u8]) -> bool {
        haystack.windows(needle.len()).any(|w| w == needle)
    }

    #[test]
    fn crud_and_reload() {
        let (storage, s) = store(cheap());
        assert!(
            s.write("Alice", None, |_| Ok(())).is_err(),
            "password required"
        );
        assert!(
            s.write("Alice", Some("pw-1"), |u| {
                u.token.token_policies = vec!["dev".to_owned()];
                u.token.token_ttl = 60;
                Ok(())
            })
            .unwrap()
        );
        let alice = s.get("ALICE").unwrap().unwrap();
        assert_eq!(alice.name, "alice");
        assert_eq!(alice.token.token_policies, vec!["dev"]);
        assert_eq!(alice.token.token_ttl, 60);
        // Update without a password keeps the old one.
        assert!(
            !s.write("alice", None, |u| {
                u.token.token_num_uses = 3;
                Ok(())
            })
            .unwrap()
        );
        assert!(s.login("alice", "pw-1").unwrap().is_some());
        assert_eq!(s.get("alice").unwrap().unwrap().token.token_ttl, 60);
        // Invalid settings change nothing.
        assert!(
            s.write("alice", None, |u| {
                u.token.token_max_ttl = 10;
                Ok(())
            })
            .is_err()
        );
        assert_eq!(s.get("alice").unwrap().unwrap().token.token_max_ttl, 0);
        s.write("bob", Some("pw-b"), |_| Ok(())).unwrap();
        assert_eq!(s.list().unwrap(), vec!["alice", "bob"]);
        s.set_password("bob", "pw-b2").unwrap();
        assert!(s.login("bob", "pw-b").unwrap().is_none());
        assert!(s.login("bob", "pw-b2").unwrap().is_some());
        assert!(s.set_password("carol", "x").is_err());
        s.update("bob", |u| {
            u.token.token_policies = vec!["ops".to_owned()];
            Ok(())
        })
        .unwrap();
        assert!(s.update("carol", |_| Ok(())).is_err());

        // Everything survives a reload from storage.
        let reloaded = UserpassStore::load_with(
            Arc::clone(&s.barrier),
            Arc::clone(&s.lookup),
            "auth/uuid-1/".to_owned(),
            cheap(),
        )
        .unwrap();
        assert_eq!(reloaded.list().unwrap(), vec!["alice", "bob"]);
        assert_eq!(reloaded.get("alice").unwrap(), s.get("alice").unwrap());
        assert!(reloaded.login("bob", "pw-b2").unwrap().is_some());

        s.delete("alice").unwrap();
        s.delete("nobody").unwrap();
        assert!(s.get("alice").unwrap().is_none());
        assert!(s.login("alice", "pw-1").unwrap().is_none());
        assert_eq!(s.list().unwrap(), vec!["bob"]);
        assert_eq!(storage.list("auth/uuid-1/users/").unwrap().len(), 1);
    }

    #[test]
    fn login_outcomes() {
        let (_, s) = store(cheap());
        s.write("alice", Some("correct horse"), |_| Ok(())).unwrap();
        assert_eq!(
            s.login("Alice", "correct horse").unwrap().unwrap().name,
            "alice"
        );
        assert!(s.login("alice", "wrong").unwrap().is_none());
        assert!(s.login("alice", "").unwrap().is_none());
        assert!(s.login("mallory", "correct horse").unwrap().is_none());
    }

    #[test]
    fn passwords_and_names_never_in_clear() {
        let (storage, s) = store(cheap());
        s.write("alice", Some("hunter2-very-secret"), |_| Ok(()))
            .unwrap();
        s.set_password("alice", "second-secret-pw").unwrap();
        for (path, value) in all_bytes(&storage) {
            for needle in ["hunter2", "second-secret", "alice", "argon2"] {
                assert!(!contains(&value, needle.as_bytes()), "{needle} in {path}");
                assert!(!path.contains(needle), "{needle} in path {path}");
            }
        }
        // Through the barrier: a PHC argon2id hash, no password.
        let path = s.path("alice");
        let plain = s.barrier.get(&path).unwrap().unwrap();
        let stored: Stored = serde_json::from_slice(&plain).unwrap();
        assert!(stored.password_hash.starts_with("$argon2id$v=19$"));
        assert!(!contains(&plain, b"second-secret"));
        assert!(!format!("{:?}", s).contains(stored.password_hash.as_str()));
    }

    #[test]
    fn default_parameters_are_argon2id_19mib_t2_p1() {
        let p = Params::default();
        assert_eq!((p.m_cost(), p.t_cost(), p.p_cost()), (19 * 1024, 2, 1));
    }

    /// Prints (does not assert) login times for an existing user with the
    /// right and the wrong password and for a missing user, with the real
    /// parameters. Run with `--nocapture` to see them.
    #[test]
    fn login_timing_existing_vs_missing() {
        use std::time::{Duration, Instant};
        let (_, s) = store(Params::default());
        s.write("alice", Some("correct horse"), |_| Ok(())).unwrap();
        let cases = [
            ("alice", "correct horse"),
            ("alice", "wrong password"),
            ("nobody", "wrong password"),
        ];
        // Warm up (the first argon2 runs of a process are slower), then
        // interleave the three cases so drift hits them alike.
        for _ in 0..3 {
            let _ = s.login("alice", "x").unwrap();
        }
        let mut times: [Vec<Duration>; 3] = Default::default();
        for _ in 0..10 {
            for (i, (name, pw)) in cases.iter().enumerate() {
                let t = Instant::now();
                let _ = s.login(name, pw).unwrap();
                times[i].push(t.elapsed());
            }
        }
        for v in &mut times {
            v.sort();
        }
        let [ok, bad, missing] = &times;
        for (what, v) in [
            ("existing user, right password", ok),
            ("existing user, wrong password", bad),
            ("missing user", missing),
        ] {
            println!(
                "userpass login timing ({what}): min {:?} median {:?} max {:?}",
                v[0],
                v[v.len() / 2],
                v[v.len() - 1]
            );
        }
    }

    // ----- several nodes on one storage -----------------------------------

    /// Two stores over one storage: two nodes whose caches hear of each
    /// other's changes only through `apply_change`.
    fn two_nodes() -> (Arc<MemoryStorage>, UserpassStore, UserpassStore) {
        let (storage, barrier, lookup) = barrier();
        let node = || {
            UserpassStore::load_with(
                Arc::clone(&barrier),
                Arc::clone(&lookup),
                "auth/uuid-1/".to_owned(),
                cheap(),
            )
            .unwrap()
        };
        let (a, b) = (node(), node());
        (storage, a, b)
    }

    #[test]
    fn a_stale_node_does_not_undo_the_other_nodes_change() {
        let (_, a, b) = two_nodes();
        a.write("alice", Some("pw-1"), |u| {
            u.token.token_policies = vec!["p0".to_owned()];
            u.token.token_ttl = 60;
            Ok(())
        })
        .unwrap();
        b.apply_change(&a.path("alice")).unwrap();
        assert_eq!(b.get("alice").unwrap(), a.get("alice").unwrap());

        // A changes the policies; B, not told, changes the password, then
        // the TTL through a full write.
        a.update("alice", |u| {
            u.token.token_policies = vec!["p1".to_owned()];
            Ok(())
        })
        .unwrap();
        b.set_password("alice", "pw-2").unwrap();
        let fresh = UserpassStore::load_with(
            Arc::clone(&a.barrier),
            Arc::clone(&a.lookup),
            "auth/uuid-1/".to_owned(),
            cheap(),
        )
        .unwrap();
        let stored = fresh.get("alice").unwrap().unwrap();
        assert_eq!(stored.token.token_policies, vec!["p1"], "A's change kept");
        assert!(fresh.login("alice", "pw-2").unwrap().is_some(), "B's too");
        // B's own cache took what storage holds, A's change included.
        assert_eq!(
            b.get("alice").unwrap().unwrap().token.token_policies,
            vec!["p1"]
        );

        a.write("alice", None, |u| {
            u.token.token_num_uses = 7;
            Ok(())
        })
        .unwrap();
        b.write("alice", None, |u| {
            u.token.token_ttl = 90;
            Ok(())
        })
        .unwrap();
        let user = b.get("alice").unwrap().unwrap();
        assert_eq!(
            (user.token.token_num_uses, user.token.token_ttl),
            (7, 90),
            "both edits applied"
        );
        assert_eq!(user.token.token_policies, vec!["p1"]);
        // A hears of B's writes and sees all of it.
        a.apply_change(&a.path("alice")).unwrap();
        assert_eq!(a.get("alice").unwrap(), Some(user));
        assert!(a.login("alice", "pw-2").unwrap().is_some());
        assert!(a.login("alice", "pw-1").unwrap().is_none());
    }

    #[test]
    fn a_replayed_edit_sets_only_the_fields_it_changed() {
        let (_, a, _) = two_nodes();
        a.write("alice", Some("pw"), |_| Ok(())).unwrap();
        let path = a.path("alice");
        let mut runs = 0;
        a.update("alice", |u| {
            runs += 1;
            // Another node writes between this read and the swap.
            let mut other: Stored = read_json(&a.barrier, &path).unwrap().unwrap();
            other.token.token_ttl = 30;
            a.barrier
                .put(&path, &serde_json::to_vec(&other).unwrap())
                .unwrap();
            u.token.token_policies = vec!["mine".to_owned()];
            Ok(())
        })
        .unwrap();
        assert_eq!(runs, 1, "the caller's edit runs once");
        let user = a.get("alice").unwrap().unwrap();
        assert_eq!(user.token.token_ttl, 30);
        assert_eq!(user.token.token_policies, vec!["mine"]);
    }

    #[test]
    fn changes_for_users_another_node_deleted_or_created() {
        let (storage, a, b) = two_nodes();
        a.write("alice", Some("pw"), |_| Ok(())).unwrap();
        // B has not heard of alice: it still changes her, from storage.
        b.update("alice", |u| {
            u.token.token_ttl = 5;
            Ok(())
        })
        .unwrap();
        assert_eq!(b.get("alice").unwrap().unwrap().token.token_ttl, 5);
        a.delete("alice").unwrap();
        // B's cache still has alice; storage decides.
        assert!(b.update("alice", |_| Ok(())).is_err());
        assert!(b.get("alice").unwrap().is_none(), "dropped from B's cache");
        assert!(storage.list("auth/uuid-1/users/").unwrap().is_empty());
        // Creating with a password B never saw is refused without one.
        a.write("bob", Some("pw"), |_| Ok(())).unwrap();
        assert!(!b.write("bob", None, |_| Ok(())).unwrap(), "an update");
        assert!(b.login("bob", "pw").unwrap().is_some());
        assert!(b.set_password("carol", "x").is_err());
    }

    #[test]
    fn apply_change_follows_writes_and_deletions() {
        let (_, a, b) = two_nodes();
        a.write("alice", Some("pw"), |_| Ok(())).unwrap();
        a.write("bob", Some("pw"), |_| Ok(())).unwrap();
        b.apply_change(&a.path("alice")).unwrap();
        assert_eq!(b.list().unwrap(), vec!["alice"]);
        b.reload().unwrap();
        assert_eq!(b.list().unwrap(), vec!["alice", "bob"]);
        a.delete("alice").unwrap();
        assert!(b.login("alice", "pw").unwrap().is_some(), "not told yet");
        b.apply_change(&a.path("alice")).unwrap();
        assert_eq!(b.list().unwrap(), vec!["bob"]);
        assert!(b.login("alice", "pw").unwrap().is_none());
        // Paths that are not users of this mount change nothing and never panic.
        for path in [
            "",
            "auth/",
            "auth/uuid-1/",
            "auth/uuid-1/users/",
            "auth/uuid-1/users/x/y",
            "auth/uuid-9/users/abc",
            "auth/uuid-1/users/not-a-user",
        ] {
            b.apply_change(path).unwrap();
        }
        assert_eq!(b.list().unwrap(), vec!["bob"]);
        // An entry copied to another user's path is refused, not cached.
        let raw = a.barrier.get(&a.path("bob")).unwrap().unwrap();
        a.barrier.put(&a.path("mallory"), &raw).unwrap();
        assert!(b.apply_change(&a.path("mallory")).is_err());
        assert_eq!(b.list().unwrap(), vec!["bob"]);
    }

    /// Refreshes take the writer lock: one never publishes what it read
    /// before a local write over that write.
    #[test]
    fn writes_racing_with_refreshes_are_never_lost() {
        let (_, a, b) = two_nodes();
        let names: Vec<String> = (0..40).map(|i| format!("u{i}")).collect();
        let paths: Vec<String> = names.iter().map(|n| a.path(n)).collect();
        std::thread::scope(|s| {
            s.spawn(|| {
                for name in &names {
                    b.write(name, Some("pw"), |_| Ok(())).unwrap();
                }
            });
            s.spawn(|| {
                for _ in 0..5 {
                    for path in &paths {
                        b.apply_change(path).unwrap();
                    }
                    b.reload().unwrap();
                }
            });
        });
        assert_eq!(b.list().unwrap().len(), names.len());
    }
}
