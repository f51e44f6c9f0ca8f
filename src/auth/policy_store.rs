//! Named policies, stored through the barrier (`sys/policy/<HMAC of name>`,
//! holding the name and the HCL as written), all loaded at unseal, and the ACL
//! of each distinct set of policy names, built once and cached until a policy
//! changes.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use super::policy::{
    Acl, DEFAULT, Policy, RESPONSE_WRAPPING, ROOT, default_policy, response_wrapping_policy,
};
use crate::seal::barrier::Barrier;
use crate::seal::lookup::LookupKey;
use crate::storage::blocking;
use crate::storage::layout::POLICIES as PREFIX;
use crate::storage::{Cached, StoreError, StoreResult};

#[derive(Serialize, Deserialize)]
struct Stored {
    name: String,
    raw: String,
}

fn parse_stored(path: &str, raw: &[u8]) -> StoreResult<(String, Policy)> {
    let stored: Stored =
        serde_json::from_slice(raw).map_err(|e| StoreError::Internal(format!("{path}: {e}")))?;
    let policy = Policy::parse(&stored.name, &stored.raw)
        .map_err(|e| StoreError::Internal(format!("stored policy {}: {e}", stored.name)))?;
    Ok((stored.name, policy))
}

fn read_all(barrier: &Barrier) -> StoreResult<BTreeMap<String, Arc<Policy>>> {
    let mut policies = BTreeMap::new();
    policies.insert(DEFAULT.to_owned(), Arc::new(default_policy()));
    for path in barrier.list(PREFIX)? {
        if let Some(raw) = barrier.get(&path)? {
            let (name, policy) = parse_stored(&path, &raw)?;
            policies.insert(name, Arc::new(policy));
        }
    }
    // Built in and never stored (`put` refuses it).
    policies.insert(
        RESPONSE_WRAPPING.to_owned(),
        Arc::new(response_wrapping_policy()),
    );
    Ok(policies)
}

fn poisoned() -> StoreError {
    StoreError::Internal("policy store lock poisoned".to_owned())
}

#[derive(Debug)]
pub struct PolicyStore {
    barrier: Arc<Barrier>,
    lookup: Arc<LookupKey>,
    policies: Cached<BTreeMap<String, Arc<Policy>>>,
    /// ACLs by policy-name set, tagged with the generation they were built in.
    acls: Mutex<AclCache>,
}

/// (generation, ACL by sorted policy names)
type AclCache = (u64, HashMap<Vec<String>, Arc<Acl>>);

/// At most this many distinct policy sets are cached (a token's set is
/// chosen by whoever creates it).
const MAX_CACHED_ACLS: usize = 4096;

impl PolicyStore {
    pub(crate) fn load(barrier: Arc<Barrier>, lookup: Arc<LookupKey>) -> StoreResult<Self> {
        let policies = read_all(&barrier)?;
        Ok(Self {
            barrier,
            lookup,
            policies: Cached::new("policy store", policies),
            acls: Mutex::new((0, HashMap::new())),
        })
    }

    /// Re-read every policy (after missed change notifications).
    pub fn reload_all(&self) -> StoreResult<()> {
        self.policies.reload(|| read_all(&self.barrier))?;
        self.invalidate()
    }

    /// Another node wrote or deleted the policy stored at `path`.
    pub fn apply_change(&self, path: &str) -> StoreResult<()> {
        let _w = self.policies.writer()?;
        match self.barrier.get(path)? {
            Some(raw) => {
                let (name, policy) = parse_stored(path, &raw)?;
                self.policies.write()?.insert(name, Arc::new(policy));
            }
            None => {
                let mut policies = self.policies.write()?;
                let gone: Vec<String> = policies
                    .keys()
                    .filter(|n| self.path(n) == path)
                    .cloned()
                    .collect();
                for name in gone {
                    policies.remove(&name);
                    if name == DEFAULT {
                        policies.insert(DEFAULT.to_owned(), Arc::new(default_policy()));
                    }
                }
            }
        }
        self.invalidate()
    }

    fn path(&self, name: &str) -> String {
        format!("{PREFIX}{}", self.lookup.name(name))
    }

    pub fn names(&self) -> StoreResult<Vec<String>> {
        // Like `root`, `response-wrapping` is internal and not listed (as in OpenBao).
        let mut names: Vec<String> = self
            .policies
            .read()?
            .keys()
            .filter(|n| *n != RESPONSE_WRAPPING)
            .cloned()
            .collect();
        names.push(ROOT.to_owned());
        names.sort();
        Ok(names)
    }

    pub fn get(&self, name: &str) -> StoreResult<Option<Arc<Policy>>> {
        Ok(self.policies.read()?.get(name).cloned())
    }

    /// `name` is canonical (`api/names.rs: policy`): the store neither trims
    /// nor folds it, so the name authorization checked is the one written.
    pub fn put(&self, name: &str, hcl: &str) -> StoreResult<()> {
        if name == ROOT {
            return Err(StoreError::invalid("cannot update root policy"));
        }
        if name == RESPONSE_WRAPPING {
            return Err(StoreError::invalid(
                "cannot update response-wrapping policy",
            ));
        }
        let policy = Policy::parse(name, hcl)
            .map_err(|e| StoreError::invalid(format!("failed to parse policy: {e}")))?;
        let _w = self.policies.writer()?;
        let stored = Stored {
            name: name.to_owned(),
            raw: hcl.to_owned(),
        };
        let raw = serde_json::to_vec(&stored).map_err(|e| StoreError::Internal(e.to_string()))?;
        blocking(|| self.barrier.put(&self.path(name), &raw))?;
        self.policies
            .write()?
            .insert(name.to_owned(), Arc::new(policy));
        self.invalidate()?;
        Ok(())
    }

    pub fn delete(&self, name: &str) -> StoreResult<()> {
        match name {
            ROOT => return Err(StoreError::invalid("cannot delete root policy")),
            DEFAULT => return Err(StoreError::invalid("cannot delete default policy")),
            RESPONSE_WRAPPING => {
                return Err(StoreError::invalid(
                    "cannot delete response-wrapping policy",
                ));
            }
            _ => {}
        }
        let _w = self.policies.writer()?;
        blocking(|| self.barrier.delete(&self.path(name)))?;
        self.policies.write()?.remove(name);
        self.invalidate()?;
        Ok(())
    }

    fn invalidate(&self) -> StoreResult<()> {
        let mut cache = self.acls.lock().map_err(|_| poisoned())?;
        cache.0 += 1;
        cache.1.clear();
        Ok(())
    }

    /// The ACL of a token with these policies (unknown names grant nothing).
    pub fn acl(&self, names: &[String]) -> StoreResult<Arc<Acl>> {
        if names.iter().any(|n| n == ROOT) {
            return Ok(Arc::new(Acl::root()));
        }
        let generation = {
            let cache = self.acls.lock().map_err(|_| poisoned())?;
            if let Some(acl) = cache.1.get(names) {
                return Ok(Arc::clone(acl));
            }
            cache.0
        };
        let policies: Vec<Policy> = {
            let all = self.policies.read()?;
            names
                .iter()
                .filter_map(|n| all.get(n))
                .map(|p| (**p).clone())
                .collect()
        };
        let acl = Arc::new(Acl::new(&policies));
        let mut cache = self.acls.lock().map_err(|_| poisoned())?;
        // A policy changed while this ACL was built from the old text: use it
        // for this request only, never cache it.
        if cache.0 == generation {
            if cache.1.len() >= MAX_CACHED_ACLS {
                cache.1.clear();
            }
            cache.1.insert(names.to_vec(), Arc::clone(&acl));
        }
        Ok(acl)
    }
}
