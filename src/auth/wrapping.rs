//! Response wrapping: replies kept sealed behind single-use wrapping tokens.
//!
//! A wrapping token is an ordinary token of the token store (policy
//! `response-wrapping`, one use, no parent); the reply it wraps is stored
//! through the barrier at `sys/wrapping/<HMAC of the token>`, so storage
//! shows neither the token nor the reply. There is no cache: every node
//! reads storage, so a reply wrapped on one node unwraps on any other.
//!
//! A reply is handed out at most once: [`WrapStore::take`] deletes it by
//! compare-and-swap, and only the caller whose delete wins gets it, however
//! many nodes race. It is handed out only while its token lives: the API
//! checks the token, and revoking a wrapping token (any path but spending
//! its one use) deletes its reply ([`forget_reply`]).

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::token::{Issued, MAX_TTL_SECS, TokenEntry, TokenId, TokenRequest, TokenStore};
use crate::seal::barrier::Barrier;
use crate::seal::edit::{Edit, edit_json, read_json};
use crate::storage::layout::WRAPPED_REPLIES as PREFIX;
use crate::storage::{StoreError, StoreResult, blocking};

/// The built-in policy of every wrapping token.
pub const POLICY: &str = "response-wrapping";

/// The longest a reply may stay wrapped: a token's maximum lifetime.
pub const MAX_WRAP_TTL_SECS: u64 = MAX_TTL_SECS;

/// A wrapping TTL we make: at least a second, at most a token's maximum
/// lifetime (OpenBao takes longer ones; our tokens cannot live longer).
pub fn check_ttl(secs: u64) -> StoreResult<()> {
    if secs == 0 || secs > MAX_WRAP_TTL_SECS {
        return Err(StoreError::invalid(format!(
            "the wrapping TTL must be between 1s and {MAX_WRAP_TTL_SECS}s"
        )));
    }
    Ok(())
}

/// A wrapped reply as stored (sealed by the barrier).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WrappedReply {
    /// The path whose reply this is (`sys/wrapping/wrap` for wrapped data).
    pub creation_path: String,
    /// RFC 3339 with nanoseconds, as `wrap_info` shows it.
    pub creation_time: String,
    pub ttl_secs: u64,
    /// Unix seconds after which the reply is gone.
    pub expire_time: i64,
    pub data: Option<Value>,
    pub auth: Option<Value>,
    #[serde(default)]
    pub warnings: Vec<String>,
}

/// What a new wrapping gives its caller (`wrap_info`, less the wrapped
/// accessor, which is the wrapped reply's).
#[derive(Debug)]
pub struct Wrapping {
    pub token: zeroize::Zeroizing<String>,
    pub accessor: String,
    pub reply: WrappedReply,
}

fn path_of(id: &TokenId) -> String {
    format!("{PREFIX}{}", hex::encode(id))
}

/// Delete the reply wrapped behind `id`, if any: its token was revoked.
pub(crate) fn forget_reply(barrier: &Barrier, id: &TokenId) -> StoreResult<()> {
    Ok(blocking(|| barrier.delete(&path_of(id)))?)
}

/// Whether `entry` is a wrapping token's: its one policy is [`POLICY`].
pub fn is_wrapping_token(entry: &TokenEntry) -> bool {
    entry.policies == [POLICY]
}

#[derive(Debug)]
pub struct WrapStore {
    barrier: Arc<Barrier>,
}

impl WrapStore {
    pub(crate) fn new(barrier: Arc<Barrier>) -> Self {
        Self { barrier }
    }

    /// Store `reply` behind a new wrapping token. The token is written
    /// first: a crash before the reply is stored leaves a token that
    /// unwraps nothing and expires; a failed write of the reply revokes it.
    pub fn wrap(
        &self,
        tokens: &TokenStore,
        mut reply: WrappedReply,
        now: i64,
    ) -> StoreResult<Wrapping> {
        check_ttl(reply.ttl_secs)?;
        let Issued {
            token, id, entry, ..
        } = tokens.create(
            TokenRequest {
                policies: vec![POLICY.to_owned()],
                display_name: POLICY.to_owned(),
                num_uses: 1,
                ttl_secs: reply.ttl_secs,
                explicit_max_ttl_secs: reply.ttl_secs,
                renewable: false,
                parent: None,
                path: reply.creation_path.clone(),
                ..TokenRequest::default()
            },
            None,
            now,
        )?;
        reply.expire_time = entry.expire_time.unwrap_or(now);
        let raw = serde_json::to_vec(&reply).map_err(|e| StoreError::Internal(e.to_string()))?;
        if let Err(e) = blocking(|| self.barrier.put(&path_of(&id), &raw)) {
            tokens.revoke(&id)?;
            return Err(e.into());
        }
        Ok(Wrapping {
            token,
            accessor: entry.accessor.clone(),
            reply,
        })
    }

    /// The reply wrapped behind `id`, left in place (lookup, rewrap).
    pub fn peek(&self, id: &TokenId, now: i64) -> StoreResult<Option<WrappedReply>> {
        Ok(read_json::<WrappedReply>(&self.barrier, &path_of(id))?.filter(|r| r.expire_time > now))
    }

    /// Remove and return the reply wrapped behind `id`: of any number of
    /// callers on any nodes, exactly one gets it.
    pub fn take(&self, id: &TokenId, now: i64) -> StoreResult<Option<WrappedReply>> {
        let mut taken = None;
        edit_json(
            &self.barrier,
            &path_of(id),
            "the wrapped reply",
            |current: Option<WrappedReply>| {
                // A retry after a lost race sees the entry gone: nothing taken.
                taken = current;
                Ok(if taken.is_some() {
                    Edit::Delete
                } else {
                    Edit::Keep
                })
            },
        )?;
        Ok(taken.filter(|r| r.expire_time > now))
    }

    /// Delete the replies whose time is up; returns how many.
    pub fn sweep(&self, now: i64) -> StoreResult<usize> {
        let mut removed = 0;
        for path in blocking(|| self.barrier.list(PREFIX))? {
            let mut expired = false;
            edit_json(
                &self.barrier,
                &path,
                "the wrapped reply",
                |current: Option<WrappedReply>| {
                    expired = current.as_ref().is_some_and(|r| r.expire_time <= now);
                    Ok(if expired { Edit::Delete } else { Edit::Keep })
                },
            )?;
            removed += usize::from(expired);
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seal::barrier::SecretKey;
    use crate::seal::lookup::LookupKey;
    use crate::storage::{MemoryStorage, Storage};

    const NOW: i64 = 1_700_000_000;

    fn stores() -> (TokenStore, WrapStore) {
        let storage: Arc<dyn Storage> = Arc::new(MemoryStorage::shared());
        let barrier = Arc::new(Barrier::for_tests(storage));
        let lookup = Arc::new(LookupKey::new(SecretKey::random().unwrap()));
        let tokens = TokenStore::load(Arc::clone(&barrier), lookup).unwrap();
        (tokens, WrapStore::new(barrier))
    }

    fn reply(ttl_secs: u64) -> WrappedReply {
        WrappedReply {
            creation_path: "sys/wrapping/wrap".to_owned(),
            creation_time: "2026-01-01T00:00:00Z".to_owned(),
            ttl_secs,
            expire_time: 0,
            data: Some(serde_json::json!({"secret": "s3cr3t"})),
            auth: None,
            warnings: Vec::new(),
        }
    }

    #[test]
    fn a_reply_is_taken_once_and_its_token_is_single_use() {
        let (tokens, wraps) = stores();
        let w = wraps.wrap(&tokens, reply(60), NOW).unwrap();
        let (id, entry) = tokens.lookup(&w.token, NOW).unwrap().unwrap();
        assert_eq!(entry.policies, [POLICY]);
        assert_eq!(entry.num_uses, 1);
        assert!(entry.parent.is_none());
        assert_eq!(entry.expire_time, Some(NOW + 60));
        assert!(wraps.peek(&id, NOW).unwrap().is_some());
        let first = wraps.take(&id, NOW).unwrap().unwrap();
        assert_eq!(first.data.unwrap()["secret"], "s3cr3t");
        assert!(wraps.take(&id, NOW).unwrap().is_none());
        assert!(wraps.peek(&id, NOW).unwrap().is_none());
    }

    #[test]
    fn expired_replies_are_refused_and_swept() {
        let (tokens, wraps) = stores();
        let short = wraps.wrap(&tokens, reply(10), NOW).unwrap();
        let long = wraps.wrap(&tokens, reply(100), NOW).unwrap();
        let id = |t: &str| tokens.id_of(t);
        assert!(wraps.peek(&id(&short.token), NOW + 10).unwrap().is_none());
        assert_eq!(wraps.sweep(NOW + 10).unwrap(), 1);
        assert!(wraps.peek(&id(&long.token), NOW + 10).unwrap().is_some());
        assert_eq!(wraps.sweep(NOW + 10).unwrap(), 0);
    }

    #[test]
    fn revoking_a_wrapping_token_deletes_its_reply_but_spending_its_use_keeps_it() {
        let (tokens, wraps) = stores();
        let revocations: [fn(&TokenStore, &TokenId); 3] = [
            |t, id| t.revoke(id).unwrap(),
            |t, id| t.revoke_orphaning_children(id).unwrap(),
            |t, _| assert_eq!(t.revoke_created_under("sys/wrapping").unwrap(), 1),
        ];
        for revoke in revocations {
            let w = wraps.wrap(&tokens, reply(60), NOW).unwrap();
            let id = tokens.id_of(&w.token);
            revoke(&tokens, &id);
            assert!(tokens.get(&id).unwrap().is_none());
            assert!(
                wraps.take(&id, NOW).unwrap().is_none(),
                "the reply outlived its token"
            );
        }
        // The caller that spends the one use is the one to take the reply.
        let w = wraps.wrap(&tokens, reply(60), NOW).unwrap();
        let id = tokens.id_of(&w.token);
        assert!(tokens.use_once(&id).unwrap());
        assert!(!tokens.use_once(&id).unwrap());
        assert!(wraps.take(&id, NOW).unwrap().is_some());
    }

    #[test]
    fn a_ttl_out_of_bounds_is_refused_and_issues_nothing() {
        let (tokens, wraps) = stores();
        for ttl in [0, MAX_WRAP_TTL_SECS + 1] {
            assert!(matches!(
                wraps.wrap(&tokens, reply(ttl), NOW),
                Err(StoreError::Invalid(_))
            ));
        }
        assert_eq!(tokens.sweep(i64::MAX).unwrap(), 0);
    }
}
