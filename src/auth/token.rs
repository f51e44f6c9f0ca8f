//! The token store: service tokens with policies, TTLs, use counts, parents and
//! accessors, as Vault's `auth/token` backend keeps them.
//!
//! A token is shown once, at creation. Storage and memory know it only by
//! HMAC-SHA256 under the lookup key (`auth/token/id/<hmac>`), so neither a copy
//! of the database nor a heap dump of the index yields a usable token. The
//! whole store is loaded at unseal; lookups on the request path read memory
//! only, except for tokens with a use limit, whose count is written back.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};

use serde::{Deserialize, Serialize};

use crate::error::{ApiError, ApiResult};
use crate::seal::barrier::Barrier;
use crate::state::LookupKey;
use crate::storage::blocking;

pub const ID_PREFIX: &str = "auth/token/id/";
/// Vault's default and maximum lease: 32 days.
pub const MAX_TTL_SECS: u64 = 768 * 3600;

pub type TokenId = [u8; 32];

/// What storage keeps of a token (never the token itself).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TokenEntry {
    pub accessor: String,
    /// The parent's id (hex HMAC); `None` for orphans.
    pub parent: Option<String>,
    pub policies: Vec<String>,
    #[serde(default)]
    pub meta: BTreeMap<String, String>,
    pub display_name: String,
    /// Uses left; 0 means unlimited.
    #[serde(default)]
    pub num_uses: u64,
    pub creation_time: i64,
    /// The TTL the token was created (or last renewed) with; 0: none.
    #[serde(default)]
    pub ttl_secs: u64,
    #[serde(default)]
    pub explicit_max_ttl_secs: u64,
    /// Unix seconds; `None`: never expires (root tokens).
    pub expire_time: Option<i64>,
    #[serde(default)]
    pub renewable: bool,
    /// The path that created it (`auth/token/create`, `auth/userpass/login/x`...).
    pub path: String,
}

impl TokenEntry {
    pub fn is_root(&self) -> bool {
        self.policies.iter().any(|p| p == "root")
    }

    pub fn expired(&self, now: i64) -> bool {
        self.expire_time.is_some_and(|t| t <= now)
    }

    /// Seconds left, 0 for tokens that never expire.
    pub fn ttl_left(&self, now: i64) -> u64 {
        self.expire_time
            .map_or(0, |t| u64::try_from(t - now).unwrap_or(0))
    }
}

/// What a new token should be.
#[derive(Clone, Debug, Default)]
pub struct TokenRequest {
    pub policies: Vec<String>,
    pub meta: BTreeMap<String, String>,
    pub display_name: String,
    pub num_uses: u64,
    pub ttl_secs: u64,
    pub explicit_max_ttl_secs: u64,
    pub renewable: bool,
    pub parent: Option<TokenId>,
    pub path: String,
}

/// A token as issued: the secret, shown once, and its entry.
#[derive(Debug)]
pub struct Issued {
    pub token: zeroize::Zeroizing<String>,
    pub id: TokenId,
    pub entry: Arc<TokenEntry>,
}

#[derive(Debug, Default)]
struct Index {
    by_id: HashMap<TokenId, Arc<TokenEntry>>,
    by_accessor: HashMap<String, TokenId>,
}

#[derive(Debug)]
pub struct TokenStore {
    barrier: Arc<Barrier>,
    lookup: Arc<LookupKey>,
    index: RwLock<Index>,
    /// Held while tokens are created, changed or revoked.
    write: Mutex<()>,
}

fn poisoned() -> ApiError {
    ApiError::Internal("token store lock poisoned".to_owned())
}

fn id_from_path(path: &str) -> ApiResult<TokenId> {
    let mut id = [0u8; 32];
    let hex_part = path
        .strip_prefix(ID_PREFIX)
        .ok_or_else(|| ApiError::Internal(format!("{path}: not a token path")))?;
    hex::decode_to_slice(hex_part, &mut id)
        .map_err(|_| ApiError::Internal(format!("{path}: malformed token path")))?;
    Ok(id)
}

fn read_index(barrier: &Barrier) -> ApiResult<Index> {
    let mut index = Index::default();
    for path in barrier.list(ID_PREFIX)? {
        let Some(raw) = barrier.get(&path)? else {
            // Revoked while we were listing.
            continue;
        };
        let entry: TokenEntry =
            serde_json::from_slice(&raw).map_err(|e| ApiError::Internal(format!("{path}: {e}")))?;
        let id = id_from_path(&path)?;
        index.by_accessor.insert(entry.accessor.clone(), id);
        index.by_id.insert(id, Arc::new(entry));
    }
    Ok(index)
}

fn id_path(id: &TokenId) -> String {
    format!("{ID_PREFIX}{}", hex::encode(id))
}

/// `s.` and 24 random alphanumerics, as OpenBao's service tokens look; also
/// used for accessors (without the prefix).
pub fn random_string(len: usize) -> ApiResult<String> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 64];
    while out.len() < len {
        transit_keys::secret::fill_random(&mut buf)
            .map_err(|_| ApiError::Internal("random number generator failed".to_owned()))?;
        // Rejection sampling keeps the choice uniform (248 = 4 * 62).
        for b in buf.iter().filter(|b| **b < 248) {
            if out.len() == len {
                break;
            }
            out.push(char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]));
        }
    }
    Ok(out)
}

pub fn new_token() -> ApiResult<String> {
    Ok(format!("s.{}", random_string(24)?))
}

impl TokenStore {
    /// Load every token entry (at unseal). Entries that fail to open are an
    /// error: they were written by us, so a failure means tampering.
    pub(crate) fn load(barrier: Arc<Barrier>, lookup: Arc<LookupKey>) -> ApiResult<Self> {
        let index = read_index(&barrier)?;
        Ok(Self {
            barrier,
            lookup,
            index: RwLock::new(index),
            write: Mutex::default(),
        })
    }

    /// Re-read every token (after missed change notifications).
    pub fn reload_all(&self) -> ApiResult<()> {
        // Under the writer lock, so a token issued or revoked here meanwhile is not undone.
        let _w = self.write.lock().map_err(|_| poisoned())?;
        let index = read_index(&self.barrier)?;
        *self.index.write().map_err(|_| poisoned())? = index;
        Ok(())
    }

    /// Another node created, changed or revoked the token stored at `path`.
    pub fn apply_change(&self, path: &str) -> ApiResult<()> {
        let _w = self.write.lock().map_err(|_| poisoned())?;
        let id = id_from_path(path)?;
        let entry = match self.barrier.get(path)? {
            Some(raw) => Some(
                serde_json::from_slice::<TokenEntry>(&raw)
                    .map_err(|e| ApiError::Internal(format!("{path}: {e}")))?,
            ),
            None => None,
        };
        let mut index = self.index.write().map_err(|_| poisoned())?;
        if let Some(old) = index.by_id.remove(&id) {
            index.by_accessor.remove(&old.accessor);
        }
        if let Some(entry) = entry {
            index.by_accessor.insert(entry.accessor.clone(), id);
            index.by_id.insert(id, Arc::new(entry));
        }
        Ok(())
    }

    pub fn id_of(&self, token: &str) -> TokenId {
        self.lookup.digest(token)
    }

    /// The live entry of a presented token (expired ones are refused; the
    /// sweeper removes them).
    pub fn lookup(&self, token: &str, now: i64) -> ApiResult<Option<(TokenId, Arc<TokenEntry>)>> {
        let id = self.id_of(token);
        Ok(self.get(&id)?.filter(|e| !e.expired(now)).map(|e| (id, e)))
    }

    pub fn get(&self, id: &TokenId) -> ApiResult<Option<Arc<TokenEntry>>> {
        Ok(self
            .index
            .read()
            .map_err(|_| poisoned())?
            .by_id
            .get(id)
            .cloned())
    }

    pub fn by_accessor(&self, accessor: &str) -> ApiResult<Option<(TokenId, Arc<TokenEntry>)>> {
        let index = self.index.read().map_err(|_| poisoned())?;
        Ok(index
            .by_accessor
            .get(accessor)
            .and_then(|id| index.by_id.get(id).map(|e| (*id, Arc::clone(e)))))
    }

    fn persist(&self, id: &TokenId, entry: &TokenEntry) -> ApiResult<()> {
        let raw = serde_json::to_vec(entry).map_err(|e| ApiError::Internal(e.to_string()))?;
        blocking(|| self.barrier.put(&id_path(id), &raw))?;
        Ok(())
    }

    fn publish(&self, id: TokenId, entry: TokenEntry) -> ApiResult<Arc<TokenEntry>> {
        let entry = Arc::new(entry);
        let mut index = self.index.write().map_err(|_| poisoned())?;
        index.by_accessor.insert(entry.accessor.clone(), id);
        index.by_id.insert(id, Arc::clone(&entry));
        Ok(entry)
    }

    /// Issue a token: durable before it is returned. `token` fixes the secret
    /// (the dev root token); otherwise a random one is made.
    pub fn create(
        &self,
        request: TokenRequest,
        token: Option<&str>,
        now: i64,
    ) -> ApiResult<Issued> {
        let _w = self.write.lock().map_err(|_| poisoned())?;
        // Checked under the write lock: a parent revoked meanwhile (or by its
        // own last use) can no longer have children.
        if let Some(parent) = &request.parent
            && self.get(parent)?.is_none_or(|p| p.expired(now))
        {
            return Err(ApiError::bad("the parent token is no longer valid"));
        }
        let token = zeroize::Zeroizing::new(match token {
            Some(t) => t.to_owned(),
            None => new_token()?,
        });
        let id = self.id_of(&token);
        let is_root = request.policies.iter().any(|p| p == "root");
        // Root tokens may live forever; every other token expires.
        let expire_time = if is_root && request.ttl_secs == 0 {
            None
        } else {
            let ttl = match (request.ttl_secs, request.explicit_max_ttl_secs) {
                (0, 0) => MAX_TTL_SECS,
                (0, max) => max.min(MAX_TTL_SECS),
                (ttl, 0) => ttl.min(MAX_TTL_SECS),
                (ttl, max) => ttl.min(max).min(MAX_TTL_SECS),
            };
            Some(now.saturating_add(i64::try_from(ttl).unwrap_or(i64::MAX)))
        };
        let entry = TokenEntry {
            accessor: random_string(24)?,
            parent: request.parent.map(hex::encode),
            policies: request.policies,
            meta: request.meta,
            display_name: request.display_name,
            num_uses: request.num_uses,
            creation_time: now,
            ttl_secs: expire_time.map_or(0, |t| u64::try_from(t - now).unwrap_or(0)),
            explicit_max_ttl_secs: request.explicit_max_ttl_secs,
            expire_time,
            renewable: request.renewable && expire_time.is_some(),
            path: request.path,
        };
        self.persist(&id, &entry)?;
        let entry = self.publish(id, entry)?;
        Ok(Issued { token, id, entry })
    }

    /// Count one use of a limited token; the last use revokes it. Returns
    /// false when the token has no use left.
    pub fn use_once(&self, id: &TokenId) -> ApiResult<bool> {
        let _w = self.write.lock().map_err(|_| poisoned())?;
        let mut last_use = false;
        let outcome = self.modify_stored(id, |entry| match entry.num_uses {
            1 => {
                last_use = true;
                Ok(None)
            }
            n => {
                let mut next = entry.clone();
                next.num_uses = n.saturating_sub(1);
                Ok(Some(next))
            }
        })?;
        if outcome.is_none() {
            if last_use {
                // Its children go with it.
                self.revoke_locked(id)?;
                return Ok(true);
            }
            return Ok(false);
        }
        Ok(true)
    }

    /// Change a token's entry starting from what storage holds (not from this
    /// node's cache, which may lag behind another node), written back with
    /// compare-and-swap and retried on conflict. A token gone from storage was
    /// revoked: it is dropped from the cache and `None` returned. `change`
    /// returning `None` deletes the entry.
    fn modify_stored(
        &self,
        id: &TokenId,
        mut change: impl FnMut(&TokenEntry) -> ApiResult<Option<TokenEntry>>,
    ) -> ApiResult<Option<Arc<TokenEntry>>> {
        let path = id_path(id);
        for _ in 0..8 {
            let Some((plain, raw)) = blocking(|| self.barrier.get_with_raw(&path))? else {
                self.unpublish(id)?;
                return Ok(None);
            };
            let entry: TokenEntry = serde_json::from_slice(&plain)
                .map_err(|e| ApiError::Internal(format!("{path}: {e}")))?;
            let next = change(&entry)?;
            let bytes = next
                .as_ref()
                .map(|e| serde_json::to_vec(e).map_err(|e| ApiError::Internal(e.to_string())))
                .transpose()?;
            if blocking(|| self.barrier.put_if(&path, Some(&raw), bytes.as_deref()))? {
                return match next {
                    Some(next) => self.publish(*id, next).map(Some),
                    None => {
                        self.unpublish(id)?;
                        Ok(None)
                    }
                };
            }
        }
        Err(ApiError::Unavailable(
            "the token is being changed concurrently; retry".to_owned(),
        ))
    }

    fn unpublish(&self, id: &TokenId) -> ApiResult<()> {
        let mut index = self.index.write().map_err(|_| poisoned())?;
        if let Some(e) = index.by_id.remove(id) {
            index.by_accessor.remove(&e.accessor);
        }
        Ok(())
    }

    /// Extend a token's life by `increment` (or its original TTL), never past
    /// its explicit maximum or the system maximum counted from creation.
    pub fn renew(
        &self,
        id: &TokenId,
        increment_secs: Option<u64>,
        now: i64,
    ) -> ApiResult<Arc<TokenEntry>> {
        let _w = self.write.lock().map_err(|_| poisoned())?;
        let renewed = self.modify_stored(id, |entry| {
            if entry.expired(now) {
                return Err(ApiError::bad("token not found"));
            }
            if entry.expire_time.is_none() {
                return Ok(Some(entry.clone()));
            }
            if !entry.renewable {
                return Err(ApiError::bad("lease is not renewable"));
            }
            let increment = increment_secs.filter(|i| *i > 0).unwrap_or(entry.ttl_secs);
            let mut limit = entry.creation_time.saturating_add(MAX_TTL_SECS as i64);
            if entry.explicit_max_ttl_secs > 0 {
                limit = limit.min(
                    entry
                        .creation_time
                        .saturating_add(entry.explicit_max_ttl_secs as i64),
                );
            }
            // A child never outlives its parent.
            if let Some(parent) = entry.parent.as_deref().and_then(|p| {
                let mut id = [0u8; 32];
                hex::decode_to_slice(p, &mut id).ok().map(|()| id)
            }) && let Some(expires) = self.get(&parent)?.and_then(|p| p.expire_time)
            {
                limit = limit.min(expires);
            }
            let mut next = entry.clone();
            next.expire_time = Some(now.saturating_add(increment as i64).min(limit));
            Ok(Some(next))
        })?;
        renewed.ok_or_else(|| ApiError::bad("token not found"))
    }

    /// Revoke a token and, as Vault does, every token created under it.
    pub fn revoke(&self, id: &TokenId) -> ApiResult<()> {
        let _w = self.write.lock().map_err(|_| poisoned())?;
        self.revoke_locked(id)
    }

    fn revoke_locked(&self, id: &TokenId) -> ApiResult<()> {
        // Children first (deepest last in the list), so a crash midway never
        // leaves a child whose parent is gone but which is still valid... and
        // if it does, the child stays revocable by accessor.
        let mut doomed = vec![*id];
        let mut i = 0;
        {
            let index = self.index.read().map_err(|_| poisoned())?;
            while i < doomed.len() {
                let parent = hex::encode(doomed[i]);
                doomed.extend(
                    index
                        .by_id
                        .iter()
                        .filter(|(_, e)| e.parent.as_deref() == Some(parent.as_str()))
                        .map(|(child, _)| *child),
                );
                i += 1;
            }
        }
        for victim in doomed.iter().rev() {
            blocking(|| self.barrier.delete(&id_path(victim)))?;
            let mut index = self.index.write().map_err(|_| poisoned())?;
            if let Some(e) = index.by_id.remove(victim) {
                index.by_accessor.remove(&e.accessor);
            }
        }
        Ok(())
    }

    /// Revoke every token created under a path prefix (a disabled login method's).
    pub fn revoke_created_under(&self, prefix: &str) -> ApiResult<usize> {
        let doomed: Vec<TokenId> = self
            .index
            .read()
            .map_err(|_| poisoned())?
            .by_id
            .iter()
            .filter(|(_, e)| e.path.starts_with(prefix))
            .map(|(id, _)| *id)
            .collect();
        for id in &doomed {
            self.revoke(id)?;
        }
        Ok(doomed.len())
    }

    /// Remove expired tokens (and their children); returns how many were expired.
    pub fn sweep(&self, now: i64) -> ApiResult<usize> {
        let expired: Vec<TokenId> = self
            .index
            .read()
            .map_err(|_| poisoned())?
            .by_id
            .iter()
            .filter(|(_, e)| e.expired(now))
            .map(|(id, _)| *id)
            .collect();
        for id in &expired {
            self.revoke(id)?;
        }
        Ok(expired.len())
    }
}
