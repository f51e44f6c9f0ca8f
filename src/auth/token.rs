//! The token store: service tokens with policies, TTLs, use counts, parents and
//! accessors, as Vault's `auth/token` backend keeps them.
//!
//! A token is shown once, at creation. Storage and memory know it only by
//! HMAC-SHA256 under the lookup key (`auth/token/id/<hmac>`), so neither a copy
//! of the database nor a heap dump of the index yields a usable token. The
//! whole store is loaded at unseal; lookups on the request path read memory
//! only, except for tokens with a use limit, whose count is written back.
//!
//! Each child token also has an empty link entry
//! `auth/token/parent/<parent hmac>/<child hmac>`, so that revoking a token
//! finds its children in storage, including those another node created a
//! moment ago and this node has not heard of yet. A child's link is written
//! before the child, and the creator checks the parent in storage again after
//! writing the child; the revoker deletes the parent and then lists its links
//! once more. Whichever way the two interleave, the child is revoked.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::seal::barrier::Barrier;
use crate::seal::edit::{Edit, MAX_WRITE_ATTEMPTS, edit_json};
use crate::seal::lookup::LookupKey;
use crate::storage::blocking;
use crate::storage::layout::{TOKEN_IDS as ID_PREFIX, TOKEN_PARENTS as PARENT_PREFIX};
use crate::storage::{Cached, Contended, StoreError, StoreResult};

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
    /// (asked, allowed) seconds when the TTL asked for was cut.
    pub capped: Option<(u64, u64)>,
}

/// How long a new token lives: its TTL (default and maximum 32 days), cut to
/// its explicit maximum and, for a child, to what its parent has left (its
/// parent's revocation would take it then anyway). A root token given
/// neither a TTL nor an explicit maximum never expires. Returns the expiry
/// and, when the TTL was cut, (asked, allowed) in seconds.
fn lifetime(
    request: &TokenRequest,
    parent_expiry: Option<i64>,
    now: i64,
) -> (Option<i64>, Option<(u64, u64)>) {
    let is_root = request.policies.iter().any(|p| p == "root");
    if is_root && request.ttl_secs == 0 && request.explicit_max_ttl_secs == 0 {
        return (None, None);
    }
    let asked = if request.ttl_secs == 0 {
        MAX_TTL_SECS
    } else {
        request.ttl_secs
    };
    let mut allowed = MAX_TTL_SECS;
    if request.explicit_max_ttl_secs > 0 {
        allowed = allowed.min(request.explicit_max_ttl_secs);
    }
    if let Some(expiry) = parent_expiry {
        allowed = allowed.min(u64::try_from(expiry - now).unwrap_or(0).max(1));
    }
    let ttl = asked.min(allowed);
    let expiry = now.saturating_add(i64::try_from(ttl).unwrap_or(i64::MAX));
    (Some(expiry), (asked > allowed).then_some((asked, allowed)))
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
    /// Its writer lock is held while tokens are created, changed or revoked.
    index: Cached<Index>,
}

fn id_from_path(path: &str) -> StoreResult<TokenId> {
    path.strip_prefix(ID_PREFIX)
        .and_then(parse_id)
        .ok_or_else(|| StoreError::Internal(format!("{path}: malformed token path")))
}

fn read_index(barrier: &Barrier) -> StoreResult<Index> {
    let mut index = Index::default();
    for path in barrier.list(ID_PREFIX)? {
        let Some(raw) = barrier.get(&path)? else {
            // Revoked while we were listing.
            continue;
        };
        let entry: TokenEntry = serde_json::from_slice(&raw)
            .map_err(|e| StoreError::Internal(format!("{path}: {e}")))?;
        let id = id_from_path(&path)?;
        index.by_accessor.insert(entry.accessor.clone(), id);
        index.by_id.insert(id, Arc::new(entry));
    }
    Ok(index)
}

fn id_path(id: &TokenId) -> String {
    format!("{ID_PREFIX}{}", hex::encode(id))
}

fn link_path(parent: &TokenId, child: &TokenId) -> String {
    format!(
        "{PARENT_PREFIX}{}/{}",
        hex::encode(parent),
        hex::encode(child)
    )
}

fn parse_id(hex_id: &str) -> Option<TokenId> {
    let mut id = [0u8; 32];
    hex::decode_to_slice(hex_id, &mut id).ok().map(|()| id)
}

/// (parent, child) of a link path.
fn parse_link(path: &str) -> Option<(TokenId, TokenId)> {
    let (parent, child) = path.strip_prefix(PARENT_PREFIX)?.split_once('/')?;
    Some((parse_id(parent)?, parse_id(child)?))
}

/// `s.` and 24 random alphanumerics, as OpenBao's service tokens look; also
/// used for accessors (without the prefix).
pub fn random_string(len: usize) -> StoreResult<String> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 64];
    while out.len() < len {
        transit_keys::secret::fill_random(&mut buf)
            .map_err(|_| StoreError::Internal("random number generator failed".to_owned()))?;
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

pub fn new_token() -> StoreResult<String> {
    Ok(format!("s.{}", random_string(24)?))
}

impl TokenStore {
    /// Load every token entry (at unseal). Entries that fail to open are an
    /// error: they were written by us, so a failure means tampering.
    pub(crate) fn load(barrier: Arc<Barrier>, lookup: Arc<LookupKey>) -> StoreResult<Self> {
        let index = read_index(&barrier)?;
        let store = Self {
            barrier,
            lookup,
            index: Cached::new("token store", index),
        };
        store.link_unlinked_children()?;
        Ok(store)
    }

    /// Children stored before parent links existed get theirs (idempotent).
    fn link_unlinked_children(&self) -> StoreResult<()> {
        let linked: std::collections::HashSet<(TokenId, TokenId)> = self
            .barrier
            .list(PARENT_PREFIX)?
            .iter()
            .filter_map(|p| parse_link(p))
            .collect();
        let missing: Vec<(TokenId, TokenId)> = self
            .index
            .read()?
            .by_id
            .iter()
            .filter_map(|(child, e)| Some((parse_id(e.parent.as_deref()?)?, *child)))
            .filter(|pair| !linked.contains(pair))
            .collect();
        for (parent, child) in missing {
            self.barrier.put(&link_path(&parent, &child), b"")?;
        }
        Ok(())
    }

    /// Re-read every token (after missed change notifications).
    pub fn reload_all(&self) -> StoreResult<()> {
        // Under the writer lock, so a token issued or revoked here meanwhile is not undone.
        self.index.reload(|| read_index(&self.barrier))
    }

    /// Another node created, changed or revoked the token stored at `path`.
    pub fn apply_change(&self, path: &str) -> StoreResult<()> {
        let _w = self.index.writer()?;
        let id = id_from_path(path)?;
        let entry = match self.barrier.get(path)? {
            Some(raw) => Some(
                serde_json::from_slice::<TokenEntry>(&raw)
                    .map_err(|e| StoreError::Internal(format!("{path}: {e}")))?,
            ),
            None => None,
        };
        let mut index = self.index.write()?;
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
    pub fn lookup(&self, token: &str, now: i64) -> StoreResult<Option<(TokenId, Arc<TokenEntry>)>> {
        let id = self.id_of(token);
        Ok(self.get(&id)?.filter(|e| !e.expired(now)).map(|e| (id, e)))
    }

    pub fn get(&self, id: &TokenId) -> StoreResult<Option<Arc<TokenEntry>>> {
        Ok(self.index.read()?.by_id.get(id).cloned())
    }

    pub fn by_accessor(&self, accessor: &str) -> StoreResult<Option<(TokenId, Arc<TokenEntry>)>> {
        let index = self.index.read()?;
        Ok(index
            .by_accessor
            .get(accessor)
            .and_then(|id| index.by_id.get(id).map(|e| (*id, Arc::clone(e)))))
    }

    fn persist(&self, id: &TokenId, entry: &TokenEntry) -> StoreResult<()> {
        let raw = serde_json::to_vec(entry).map_err(|e| StoreError::Internal(e.to_string()))?;
        blocking(|| self.barrier.put(&id_path(id), &raw))?;
        Ok(())
    }

    fn publish(&self, id: TokenId, entry: TokenEntry) -> StoreResult<Arc<TokenEntry>> {
        let entry = Arc::new(entry);
        let mut index = self.index.write()?;
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
    ) -> StoreResult<Issued> {
        let _w = self.index.writer()?;
        // Checked under the write lock: a parent revoked meanwhile (or by its
        // own last use) can no longer have children.
        let parent_expiry = match &request.parent {
            None => None,
            Some(parent) => match self.get(parent)? {
                Some(p) if !p.expired(now) => p.expire_time,
                _ => return Err(StoreError::invalid("the parent token is no longer valid")),
            },
        };
        let token = zeroize::Zeroizing::new(match token {
            Some(t) => t.to_owned(),
            None => new_token()?,
        });
        let id = self.id_of(&token);
        let (expire_time, capped) = lifetime(&request, parent_expiry, now);
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
        let parent = request.parent;
        if let Some(parent) = &parent {
            blocking(|| self.barrier.put(&link_path(parent, &id), b""))?;
        }
        self.persist(&id, &entry)?;
        let entry = self.publish(id, entry)?;
        // Another node may have revoked the parent after our cache said it was
        // live; if it did so before listing our link, the child is ours to revoke.
        if let Some(parent) = &parent
            && self.barrier.storage().is_shared()
        {
            let stored: Option<TokenEntry> =
                crate::seal::edit::read_json(&self.barrier, &id_path(parent))?;
            if stored.is_none_or(|p| p.expired(now)) {
                self.revoke_locked(&id)?;
                return Err(StoreError::invalid("the parent token is no longer valid"));
            }
        }
        crate::metrics::metrics().token_creation.increment(1);
        Ok(Issued {
            token,
            id,
            entry,
            capped,
        })
    }

    /// Count one use of a limited token; the last use revokes it. Returns
    /// false when the token has no use left. Of callers racing for the last
    /// use on any nodes, exactly one gets it: each attempt decides afresh
    /// from what storage holds, and only the delete that wins spends it.
    pub fn use_once(&self, id: &TokenId) -> StoreResult<bool> {
        let _w = self.index.writer()?;
        let mut spent_last = false;
        let stored = edit_json(&self.barrier, &id_path(id), "the token", |current| {
            spent_last = false;
            Ok(match current {
                None => Edit::Keep,
                Some(TokenEntry { num_uses: 1, .. }) => {
                    spent_last = true;
                    Edit::Delete
                }
                Some(mut next) => {
                    next.num_uses = next.num_uses.saturating_sub(1);
                    Edit::Put(next)
                }
            })
        })?;
        match stored {
            Some(entry) => {
                self.publish(*id, entry)?;
                Ok(true)
            }
            None if spent_last => {
                // Its children go with it. A wrapping token's reply stays: the
                // caller that spent it is the one to take it.
                self.revoke_with_children(id)?;
                Ok(true)
            }
            None => {
                self.unpublish(id)?;
                Ok(false)
            }
        }
    }

    /// Change a token's entry starting from what storage holds (not from this
    /// node's cache, which may lag behind another node), written back with
    /// compare-and-swap and retried on conflict. A token gone from storage was
    /// revoked: it is dropped from the cache and `None` returned. `change`
    /// returning `None` deletes the entry.
    fn modify_stored(
        &self,
        id: &TokenId,
        mut change: impl FnMut(&TokenEntry) -> StoreResult<Option<TokenEntry>>,
    ) -> StoreResult<Option<Arc<TokenEntry>>> {
        let stored = edit_json(&self.barrier, &id_path(id), "the token", |current| {
            Ok(match current {
                None => Edit::Keep,
                Some(entry) => match change(&entry)? {
                    Some(next) => Edit::Put(next),
                    None => Edit::Delete,
                },
            })
        })?;
        match stored {
            Some(entry) => self.publish(*id, entry).map(Some),
            None => {
                self.unpublish(id)?;
                Ok(None)
            }
        }
    }

    fn unpublish(&self, id: &TokenId) -> StoreResult<()> {
        let mut index = self.index.write()?;
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
    ) -> StoreResult<Arc<TokenEntry>> {
        let _w = self.index.writer()?;
        let renewed = self.modify_stored(id, |entry| {
            if entry.expired(now) {
                return Err(StoreError::invalid("token not found"));
            }
            // A token that never expires (root) has no lease to renew.
            if entry.expire_time.is_none() || !entry.renewable {
                return Err(StoreError::invalid("lease is not renewable"));
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
            if let Some(parent) = entry.parent.as_deref().and_then(parse_id)
                && let Some(expires) = self.get(&parent)?.and_then(|p| p.expire_time)
            {
                limit = limit.min(expires);
            }
            let mut next = entry.clone();
            next.expire_time = Some(now.saturating_add(increment as i64).min(limit));
            Ok(Some(next))
        })?;
        renewed.ok_or_else(|| StoreError::invalid("token not found"))
    }

    /// Revoke a token and, as Vault does, every token created under it.
    pub fn revoke(&self, id: &TokenId) -> StoreResult<()> {
        let _w = self.index.writer()?;
        self.revoke_locked(id)
    }

    /// Revoked by any path but the spending of its last use, a wrapping
    /// token's reply goes too. The token goes first: a crash in between
    /// leaves a reply no live token reaches, deleted by the sweep at expiry.
    /// (Wrapping tokens have no parent, so only the root can be one.)
    fn revoke_locked(&self, id: &TokenId) -> StoreResult<()> {
        self.revoke_with_children(id)?;
        crate::auth::wrapping::forget_reply(&self.barrier, id)
    }

    fn revoke_with_children(&self, id: &TokenId) -> StoreResult<()> {
        let mut roots = vec![*id];
        for _ in 0..MAX_WRITE_ATTEMPTS {
            let mut revoked = Vec::new();
            for root in &roots {
                revoked.extend(self.revoke_tree(root)?);
            }
            if !self.barrier.storage().is_shared() {
                return Ok(());
            }
            // A child another node created while we revoked was linked before
            // its parent was deleted: it shows up now.
            roots.clear();
            for gone in &revoked {
                roots.extend(self.children_in_storage(gone)?);
            }
            if roots.is_empty() {
                return Ok(());
            }
        }
        Err(Contended::ChildTokens.into())
    }

    /// The children of `parent` this node knows of, and those linked to it
    /// in storage (another node's, not heard of yet); may repeat one.
    fn children_of(&self, parent: &TokenId) -> StoreResult<Vec<TokenId>> {
        let parent_hex = hex::encode(parent);
        let mut children: Vec<TokenId> = self
            .index
            .read()?
            .by_id
            .iter()
            .filter(|(_, e)| e.parent.as_deref() == Some(parent_hex.as_str()))
            .map(|(child, _)| *child)
            .collect();
        children.extend(self.children_in_storage(parent)?);
        Ok(children)
    }

    /// The children linked to `parent` in storage.
    fn children_in_storage(&self, parent: &TokenId) -> StoreResult<Vec<TokenId>> {
        let dir = format!("{PARENT_PREFIX}{}/", hex::encode(parent));
        Ok(blocking(|| self.barrier.list(&dir))?
            .iter()
            .filter_map(|p| parse_link(p).map(|(_, child)| child))
            .collect())
    }

    /// Revoke `id` and every descendant known in the cache or in storage,
    /// children first, so a crash midway never leaves a live child whose
    /// parent is gone. Returns what was revoked.
    fn revoke_tree(&self, id: &TokenId) -> StoreResult<Vec<TokenId>> {
        let parent_of = |id: &TokenId| -> StoreResult<Option<TokenId>> {
            Ok(self
                .get(id)?
                .and_then(|e| e.parent.as_deref().and_then(parse_id)))
        };
        let mut doomed: Vec<(TokenId, Option<TokenId>)> = vec![(*id, parent_of(id)?)];
        let mut seen: std::collections::HashSet<TokenId> = std::collections::HashSet::from([*id]);
        let mut i = 0;
        while i < doomed.len() {
            let parent = doomed[i].0;
            for child in self.children_of(&parent)? {
                if seen.insert(child) {
                    doomed.push((child, Some(parent)));
                }
            }
            i += 1;
        }
        for (victim, parent) in doomed.iter().rev() {
            blocking(|| self.barrier.delete(&id_path(victim)))?;
            if let Some(parent) = parent {
                blocking(|| self.barrier.delete(&link_path(parent, victim)))?;
            }
            self.unpublish(victim)?;
        }
        Ok(doomed.into_iter().map(|(id, _)| id).collect())
    }

    /// Revoke every token created under `prefix` (a disabled login method's,
    /// or `sys/leases/revoke-prefix`), and their children. `auth/userpass/`
    /// and `auth/userpass` both name the method's tokens; `auth/userpass/login/web`
    /// one user's (not `web2`'s). With shared storage, storage is read too:
    /// a token another node issued a moment ago, not yet heard of here, goes
    /// as well. Returns how many tokens matched.
    pub fn revoke_created_under(&self, prefix: &str) -> StoreResult<usize> {
        let dir = prefix.trim_end_matches('/');
        let under = |path: &str| {
            path.strip_prefix(dir)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        };
        let mut doomed: std::collections::HashSet<TokenId> = self
            .index
            .read()?
            .by_id
            .iter()
            .filter(|(_, e)| under(&e.path))
            .map(|(id, _)| *id)
            .collect();
        if self.barrier.storage().is_shared() {
            for path in blocking(|| self.barrier.list(ID_PREFIX))? {
                let stored: Option<TokenEntry> =
                    crate::seal::edit::read_json(&self.barrier, &path)?;
                if stored.is_some_and(|e| under(&e.path)) {
                    doomed.insert(id_from_path(&path)?);
                }
            }
        }
        for id in &doomed {
            self.revoke(id)?;
        }
        Ok(doomed.len())
    }

    /// Revoke a token but not its children, which become orphans (Vault's
    /// `revoke-orphan`). Each child's entry loses its parent first, then the
    /// link goes, then the token: a crash midway leaves either a live parent
    /// or orphans, never a child revoked with it.
    pub fn revoke_orphaning_children(&self, id: &TokenId) -> StoreResult<()> {
        let _w = self.index.writer()?;
        let children: std::collections::HashSet<TokenId> =
            self.children_of(id)?.into_iter().collect();
        for child in &children {
            self.modify_stored(child, |entry| {
                let mut next = entry.clone();
                next.parent = None;
                Ok(Some(next))
            })?;
            blocking(|| self.barrier.delete(&link_path(id, child)))?;
        }
        blocking(|| self.barrier.delete(&id_path(id)))?;
        self.unpublish(id)?;
        crate::auth::wrapping::forget_reply(&self.barrier, id)
    }

    /// The accessors of every live token (`LIST auth/token/accessors`).
    pub fn accessors(&self, now: i64) -> StoreResult<Vec<String>> {
        let mut accessors: Vec<String> = self
            .index
            .read()?
            .by_id
            .values()
            .filter(|e| !e.expired(now))
            .map(|e| e.accessor.clone())
            .collect();
        accessors.sort();
        Ok(accessors)
    }

    /// Remove expired tokens (and their children); returns how many were expired.
    pub fn sweep(&self, now: i64) -> StoreResult<usize> {
        let expired: Vec<TokenId> = self
            .index
            .read()?
            .by_id
            .iter()
            .filter(|(_, e)| e.expired(now))
            .map(|(id, _)| *id)
            .collect();
        for id in &expired {
            self.revoke(id)?;
        }
        self.sweep_links()?;
        Ok(expired.len())
    }

    /// Links left by a crash or a race: one whose child is gone is deleted, a
    /// child whose parent is gone is revoked. The cache only nominates; storage decides.
    fn sweep_links(&self) -> StoreResult<()> {
        let links = blocking(|| self.barrier.list(PARENT_PREFIX))?;
        for (parent, child) in links.iter().filter_map(|p| parse_link(p)) {
            let cached = |id: &TokenId| self.get(id).map(|e| e.is_some());
            if cached(&child)? && cached(&parent)? {
                continue;
            }
            let _w = self.index.writer()?;
            let stored = |id: &TokenId| blocking(|| self.barrier.get(&id_path(id)));
            if stored(&child)?.is_none() {
                blocking(|| self.barrier.delete(&link_path(&parent, &child)))?;
            } else if stored(&parent)?.is_none() {
                self.revoke_locked(&child)?;
                blocking(|| self.barrier.delete(&link_path(&parent, &child)))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seal::barrier::SecretKey;
    use crate::storage::{MemoryStorage, Storage};

    const NOW: i64 = 1_700_000_000;

    /// Two nodes' token stores over one shared storage, neither hearing of
    /// the other's changes unless told.
    fn two_nodes() -> (Arc<Barrier>, TokenStore, TokenStore) {
        let storage: Arc<dyn Storage> = Arc::new(MemoryStorage::shared());
        let barrier = Arc::new(Barrier::for_tests(storage));
        let lookup = Arc::new(LookupKey::new(SecretKey::random().unwrap()));
        let a = TokenStore::load(Arc::clone(&barrier), Arc::clone(&lookup)).unwrap();
        let b = TokenStore::load(Arc::clone(&barrier), lookup).unwrap();
        (barrier, a, b)
    }

    fn request(parent: Option<TokenId>) -> TokenRequest {
        TokenRequest {
            policies: vec!["default".to_owned()],
            parent,
            path: "auth/token/create".to_owned(),
            ..TokenRequest::default()
        }
    }

    fn stored(barrier: &Barrier, id: &TokenId) -> bool {
        barrier.get(&id_path(id)).unwrap().is_some()
    }

    #[test]
    fn the_last_use_goes_to_one_caller_even_when_another_node_spent_it_meanwhile() {
        let (_, a, b) = two_nodes();
        let limited = TokenRequest {
            num_uses: 1,
            ..request(None)
        };
        let token = a.create(limited, None, NOW).unwrap();
        b.apply_change(&id_path(&token.id)).unwrap();
        // B spends it; A's cache still shows one use left.
        assert!(b.use_once(&token.id).unwrap());
        assert!(a.get(&token.id).unwrap().is_some());
        assert!(!a.use_once(&token.id).unwrap(), "a use counted twice");
        assert!(a.get(&token.id).unwrap().is_none());
    }

    #[test]
    fn a_lifetime_is_cut_to_the_explicit_maximum_and_the_parents_remainder() {
        let asking = |policy: &str, ttl_secs, explicit_max_ttl_secs| TokenRequest {
            policies: vec![policy.to_owned()],
            ttl_secs,
            explicit_max_ttl_secs,
            ..TokenRequest::default()
        };
        let day = 24 * 3600;
        assert_eq!(lifetime(&asking("root", 0, 0), None, NOW), (None, None));
        assert_eq!(
            lifetime(&asking("root", 0, 3600), None, NOW),
            (Some(NOW + 3600), Some((MAX_TTL_SECS, 3600)))
        );
        assert_eq!(
            lifetime(&asking("p", day, 0), Some(NOW + 60), NOW),
            (Some(NOW + 60), Some((day, 60)))
        );
        assert_eq!(
            lifetime(&asking("p", 30, 0), Some(NOW + 60), NOW),
            (Some(NOW + 30), None)
        );
        assert_eq!(
            lifetime(&asking("p", 0, 0), None, NOW),
            (Some(NOW + MAX_TTL_SECS as i64), None)
        );
    }

    #[test]
    fn revoking_on_one_node_takes_children_made_on_another_a_moment_before() {
        let (barrier, a, b) = two_nodes();
        let parent = a.create(request(None), None, NOW).unwrap();
        b.apply_change(&id_path(&parent.id)).unwrap();
        let child = b.create(request(Some(parent.id)), None, NOW).unwrap();
        let grandchild = b.create(request(Some(child.id)), None, NOW).unwrap();
        // A never heard of the children.
        assert!(a.get(&child.id).unwrap().is_none());
        a.revoke(&parent.id).unwrap();
        for id in [parent.id, child.id, grandchild.id] {
            assert!(!stored(&barrier, &id), "a descendant survived its parent");
        }
        assert!(barrier.list(PARENT_PREFIX).unwrap().is_empty());
    }

    #[test]
    fn a_child_made_after_its_parent_was_revoked_elsewhere_is_refused_and_gone() {
        let (barrier, a, b) = two_nodes();
        let parent = a.create(request(None), None, NOW).unwrap();
        b.apply_change(&id_path(&parent.id)).unwrap();
        a.revoke(&parent.id).unwrap();
        // B's cache still holds the parent.
        assert!(b.get(&parent.id).unwrap().is_some());
        let err = b.create(request(Some(parent.id)), None, NOW).unwrap_err();
        assert!(err.to_string().contains("parent token"), "{err}");
        assert!(
            barrier.list(ID_PREFIX).unwrap().is_empty(),
            "the child stayed"
        );
        assert!(barrier.list(PARENT_PREFIX).unwrap().is_empty());
    }

    #[test]
    fn children_stored_without_links_get_them_at_load_and_dangling_links_are_swept() {
        let (barrier, a, _) = two_nodes();
        let parent = a.create(request(None), None, NOW).unwrap();
        let child = a.create(request(Some(parent.id)), None, NOW).unwrap();
        // As an older transitd stored it: no link.
        barrier.delete(&link_path(&parent.id, &child.id)).unwrap();
        let c = TokenStore::load(Arc::clone(&barrier), Arc::clone(&a.lookup)).unwrap();
        assert!(
            barrier
                .get(&link_path(&parent.id, &child.id))
                .unwrap()
                .is_some()
        );
        // A crash between deleting a child and its link; a parent deleted
        // under a live child.
        let orphan = c.create(request(Some(parent.id)), None, NOW).unwrap();
        barrier.delete(&id_path(&orphan.id)).unwrap();
        barrier.delete(&id_path(&parent.id)).unwrap();
        c.apply_change(&id_path(&parent.id)).unwrap();
        c.sweep(NOW).unwrap();
        assert!(
            !stored(&barrier, &child.id),
            "the child of a gone parent lives"
        );
        assert!(barrier.list(PARENT_PREFIX).unwrap().is_empty());
    }
}
