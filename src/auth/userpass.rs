//! The userpass login method: named users with a password, as Vault's
//! `auth/userpass` keeps them.
//!
//! Each user is one entry through the barrier at
//! `<prefix>users/<HMAC of the lowercased name>`, holding the name, an
//! argon2id hash of the password (PHC string) and the settings of the tokens a
//! login issues. The whole mount is loaded at unseal; logins read memory only.
//!
//! A login costs one argon2id verification whether or not the user exists: for
//! a missing user the password is checked against a dummy hash made with the
//! same parameters, so response time does not tell which names exist. The
//! comparison of the computed and stored hash is argon2's own, constant-time.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::error::{ApiError, ApiResult};
use crate::seal::barrier::Barrier;
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
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct User {
    /// Lowercased, as Vault stores user names.
    pub name: String,
    pub token: TokenParams,
    /// The policies were last set through the deprecated `policies` field
    /// (reads then show `policies` too, as Vault does).
    pub legacy_policies: bool,
}

#[derive(Serialize, Deserialize)]
struct Stored {
    name: String,
    password_hash: String,
    #[serde(flatten)]
    token: TokenParams,
    #[serde(default)]
    legacy_policies: bool,
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

/// Vault's user names are case-insensitive: stored and looked up lowercased.
pub fn normalize(name: &str) -> String {
    name.to_lowercase()
}

/// The users of one userpass mount.
#[derive(Debug)]
pub struct UserpassStore {
    barrier: Arc<Barrier>,
    lookup: Arc<LookupKey>,
    /// `<prefix>users/`
    dir: String,
    users: RwLock<BTreeMap<String, Arc<Entry>>>,
    /// Held while users are written or deleted.
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
        let mut users = BTreeMap::new();
        for path in barrier.list(&dir)? {
            let Some(raw) = barrier.get(&path)? else {
                // Deleted (by another node) since the listing.
                continue;
            };
            let stored: Stored = serde_json::from_slice(&raw).map_err(|e| internal(&path, e))?;
            let entry = Entry {
                user: User {
                    name: stored.name,
                    token: stored.token,
                    legacy_policies: stored.legacy_policies,
                },
                hash: Zeroizing::new(stored.password_hash),
            };
            users.insert(entry.user.name.clone(), Arc::new(entry));
        }
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

    fn path(&self, name: &str) -> String {
        format!("{}{}", self.dir, self.lookup.name(name))
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

    fn persist(&self, user: &User, hash: &str) -> ApiResult<()> {
        let stored = Stored {
            name: user.name.clone(),
            password_hash: hash.to_owned(),
            token: user.token.clone(),
            legacy_policies: user.legacy_policies,
        };
        let raw = Zeroizing::new(serde_json::to_vec(&stored).map_err(|e| internal("user", e))?);
        blocking(|| self.barrier.put(&self.path(&user.name), &raw))?;
        Ok(())
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
        let _w = self.write.lock().map_err(|_| poisoned())?;
        let existing = self
            .users
            .read()
            .map_err(|_| poisoned())?
            .get(&name)
            .cloned();
        let created = existing.is_none();
        let (mut user, hash) = match (existing, new_hash) {
            (Some(e), Some(h)) => (e.user.clone(), h),
            (Some(e), None) => (e.user.clone(), e.hash.clone()),
            (None, Some(h)) => (
                User {
                    name: name.clone(),
                    ..User::default()
                },
                h,
            ),
            (None, None) => {
                return Err(ApiError::bad(
                    "must provide either password or password_hash",
                ));
            }
        };
        edit(&mut user)?;
        user.name = name.clone();
        user.token.validate()?;
        self.persist(&user, &hash)?;
        self.users
            .write()
            .map_err(|_| poisoned())?
            .insert(name, Arc::new(Entry { user, hash }));
        Ok(created)
    }

    /// Change an existing user's password (Vault's `users/:name/password`).
    pub fn set_password(&self, name: &str, password: &str) -> ApiResult<()> {
        if password.is_empty() {
            return Err(ApiError::bad(
                "must provide either password or password_hash",
            ));
        }
        if self.get(name)?.is_none() {
            return Err(ApiError::bad("username does not exist"));
        }
        let name = normalize(name);
        let hash = blocking(|| hash_password(&self.params, password))?;
        let _w = self.write.lock().map_err(|_| poisoned())?;
        let user = self
            .users
            .read()
            .map_err(|_| poisoned())?
            .get(&name)
            .map(|e| e.user.clone())
            .ok_or_else(|| ApiError::bad("username does not exist"))?;
        self.persist(&user, &hash)?;
        self.users
            .write()
            .map_err(|_| poisoned())?
            .insert(name, Arc::new(Entry { user, hash }));
        Ok(())
    }

    /// Change an existing user's settings only (Vault's `users/:name/policies`).
    pub fn update(
        &self,
        name: &str,
        edit: impl FnOnce(&mut User) -> ApiResult<()>,
    ) -> ApiResult<()> {
        let name = normalize(name);
        let _w = self.write.lock().map_err(|_| poisoned())?;
        let entry = self
            .users
            .read()
            .map_err(|_| poisoned())?
            .get(&name)
            .cloned()
            .ok_or_else(|| ApiError::bad("username does not exist"))?;
        let mut user = entry.user.clone();
        edit(&mut user)?;
        user.name = name.clone();
        user.token.validate()?;
        self.persist(&user, &entry.hash)?;
        self.users.write().map_err(|_| poisoned())?.insert(
            name,
            Arc::new(Entry {
                user,
                hash: entry.hash.clone(),
            }),
        );
        Ok(())
    }

    /// Delete a user (a missing one is not an error). Tokens it obtained
    /// stay valid until they expire or are revoked, as in Vault.
    pub fn delete(&self, name: &str) -> ApiResult<()> {
        let name = normalize(name);
        let _w = self.write.lock().map_err(|_| poisoned())?;
        blocking(|| self.barrier.delete(&self.path(&name)))?;
        self.users.write().map_err(|_| poisoned())?.remove(&name);
        Ok(())
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
}
