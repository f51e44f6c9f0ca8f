//! Encryption counts per key material, cluster-wide, without waiting on
//! storage in the steady state.
//!
//! The stored entry of a key material (`usage/<HMAC of the material>`,
//! [`Reservations`]) holds how many encryptions under that material have been
//! *reserved* by all nodes together, whatever key names, versions and mounts
//! hold it: the limit protects the nonces of one key, so a restored backup,
//! a re-import or an `import_version` of known material continues its count.
//! Entries are never deleted (not when a key is deleted, trimmed or its
//! mount removed: a backup of it may come back), which costs one small sealed
//! row per version ever made. This node's allowances are kept by key name
//! and version (the hot path computes no HMAC) and each reserves from its
//! version's material entry; `Mount::publish` drops a name's allowances when
//! the name comes to hold other material. A node reserves a block by
//! compare-and-swap (`seal/edit.rs`) before it spends any of it, and spends
//! locally with one atomic subtraction per encryption ([`Allowance`]). So
//! the stored count is always at least what was spent: a crash (even
//! `kill -9`) loses only unspent reservations, which makes the count too
//! high, never too low. A clean shutdown does not give reservations back
//! (a give-back racing a crash could not be told apart from a lost write).
//!
//! A refill is started in the background when less than half a block is
//! left, topping it up to a block, so a node never holds more than one block
//! unspent (what a crash can add to the count), and only a burst that empties the allowance before the refill
//! lands waits on storage. The block adapts to the rate: it doubles when the
//! previous block lasted under ten seconds and halves when it lasted over two
//! minutes, between [`MIN_BLOCK`] and [`MAX_BLOCK`], and never exceeds a
//! sixteenth of the version's limit, so one node cannot hold the whole
//! budget of a small limit. A reservation never goes past the limit.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::poisoned;
use crate::seal::barrier::Barrier;
use crate::seal::edit::{Edit, edit_json, read_json};
use crate::storage::{StoreError, StoreResult};

/// The smallest reservation (a quiet key costs one storage write per this many encryptions).
pub const MIN_BLOCK: u64 = 256;
/// The largest reservation: at most this many counted encryptions per node are
/// lost to a crash.
pub const MAX_BLOCK: u64 = 1 << 20;
/// A block spent faster than this doubles the next one: a busy node holds
/// about this long of its own rate, which is how long it keeps encrypting
/// through a database outage (a crash costs at most one block of over-count,
/// 2^20 of 2^32 at worst).
const FAST: Duration = Duration::from_secs(10);
/// How many rounds of compare-and-swap attempts a reservation makes.
const CONTENDED_ROUNDS: u64 = 8;
/// A block that lasted longer than this halves the next one.
const SLOW: Duration = Duration::from_secs(120);

/// A key material's stored entry: encryptions reserved under it, by every node.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Reservations {
    reserved: u64,
}

/// The counts of one key, per version (what reads and backups show).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub versions: BTreeMap<u32, u64>,
}

/// When a version's key rotates by itself: once 7/8 of its limit is reserved.
/// The last eighth (2^29 encryptions under the default bound) covers what
/// other nodes still hold and what they spend until they hear of the new
/// version; a small limit (under 8) rotates only when it is reached.
pub fn rotation_threshold(limit: u64) -> u64 {
    limit - limit / 8
}

/// What one node may still spend of one version without asking storage.
#[derive(Debug)]
struct Allowance {
    /// Reserved in storage, not yet spent here.
    left: AtomicU64,
    /// The size of the next reservation.
    block: AtomicU64,
    /// A background refill is queued or running.
    refilling: AtomicBool,
    /// Held while reserving (one reservation at a time); when the last one was made.
    reserving: Mutex<Option<Instant>>,
}

impl Allowance {
    fn new() -> Self {
        Self {
            left: AtomicU64::new(0),
            block: AtomicU64::new(MIN_BLOCK),
            refilling: AtomicBool::new(false),
            reserving: Mutex::new(None),
        }
    }

    /// Spend `n` if this node holds that many.
    fn take(&self, n: u64) -> Option<u64> {
        self.left
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |left| {
                left.checked_sub(n)
            })
            .ok()
            .map(|before| before - n)
    }
}

/// The outcome of spending on the hot path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Taken {
    /// Spent from the local allowance; `refill`: start a background refill now.
    Spent { refill: bool },
    /// Not enough here: reserve from storage first.
    Short,
}

/// The outcome of one reservation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reserved {
    /// Whether the `need` the caller asked for was granted (and spent).
    pub granted: bool,
    /// The stored count of the version afterwards; `None`: storage was not
    /// needed (a concurrent reservation had already refilled enough).
    pub total: Option<u64>,
}

/// The encryption counts of one mount's keys, on this node.
#[derive(Debug, Default)]
pub struct Usage {
    allowances: RwLock<HashMap<String, HashMap<u32, Arc<Allowance>>>>,
    /// Encryptions that found their allowance empty and waited on storage.
    waits: AtomicU64,
}

impl Usage {
    fn allowance(&self, name: &str, version: u32) -> StoreResult<Arc<Allowance>> {
        if let Some(a) = self
            .allowances
            .read()
            .map_err(|_| poisoned())?
            .get(name)
            .and_then(|versions| versions.get(&version))
        {
            return Ok(Arc::clone(a));
        }
        let mut all = self.allowances.write().map_err(|_| poisoned())?;
        let a = all
            .entry(name.to_owned())
            .or_default()
            .entry(version)
            .or_insert_with(|| Arc::new(Allowance::new()));
        Ok(Arc::clone(a))
    }

    /// Spend `n` encryptions of `version` from this node's allowance: the hot
    /// path, no storage.
    pub fn take(&self, name: &str, version: u32, n: u64) -> StoreResult<Taken> {
        let all = self.allowances.read().map_err(|_| poisoned())?;
        let Some(a) = all.get(name).and_then(|v| v.get(&version)) else {
            self.waits.fetch_add(1, Ordering::Relaxed);
            return Ok(Taken::Short);
        };
        Ok(match a.take(n) {
            Some(left) => Taken::Spent {
                refill: left < a.block.load(Ordering::Relaxed) / 2
                    && !a.refilling.swap(true, Ordering::AcqRel),
            },
            None => {
                self.waits.fetch_add(1, Ordering::Relaxed);
                Taken::Short
            }
        })
    }

    /// How many encryptions found this node's allowance empty and went to storage.
    #[cfg(test)]
    pub fn waits(&self) -> u64 {
        self.waits.load(Ordering::Relaxed)
    }

    /// Reserve a block of `version` in the stored entry at `path` (its material's), never past
    /// `limit`, and spend `need` of it at once (0: a refill ahead of need).
    /// Storage first, then the local allowance: what is spent is always stored.
    pub fn reserve(
        &self,
        barrier: &Barrier,
        path: &str,
        name: &str,
        version: u32,
        limit: u64,
        need: u64,
    ) -> StoreResult<Reserved> {
        let a = self.allowance(name, version)?;
        let mut last = a.reserving.lock().map_err(|_| poisoned())?;
        // Whoever held the lock before may have refilled enough.
        if need > 0 && a.take(need).is_some() {
            return Ok(Reserved {
                granted: true,
                total: None,
            });
        }
        // Cleared first: a failed write lets the next spend ask again.
        a.refilling.store(false, Ordering::Release);
        let block = next_block(&a, *last, limit);
        let mut outcome = (0, 0);
        // Nodes reserving from one entry at once (a small limit makes small
        // blocks) can lose the compare-and-swap more often than one edit
        // retries; this is the slow path, off the async workers: back off
        // with jitter and try again before answering "contended".
        for round in 1.. {
            let edited = edit_json(barrier, path, "the encryption counts", |stored| {
                let stored: Reservations = stored.unwrap_or_default();
                let total = stored.reserved;
                // A refill tops the allowance up to one block: a node never holds
                // more than a block (or what one request needed) unspent.
                let wanted = match need {
                    0 => block.saturating_sub(a.left.load(Ordering::Acquire)),
                    need => block.max(need),
                };
                let grant = wanted.min(limit.saturating_sub(total));
                outcome = (grant, total);
                if grant < need.max(1) {
                    return Ok(Edit::Keep);
                }
                outcome = (grant, total + grant);
                Ok(Edit::Put(Reservations {
                    reserved: total + grant,
                }))
            });
            match edited {
                Ok(_) => break,
                Err(StoreError::Contended(_)) if round < CONTENDED_ROUNDS => {
                    let jitter = rand::random::<u64>() % 4;
                    std::thread::sleep(Duration::from_millis(round * 2 + jitter));
                }
                Err(e) => return Err(e),
            }
        }
        let (grant, total) = outcome;
        *last = Some(Instant::now());
        if grant < need.max(1) {
            return Ok(Reserved {
                granted: need == 0,
                total: Some(total),
            });
        }
        a.left.fetch_add(grant - need, Ordering::AcqRel);
        Ok(Reserved {
            granted: true,
            total: Some(total),
        })
    }

    /// The stored count at `path` (an upper bound of what was spent).
    pub fn stored(barrier: &Barrier, path: &str) -> StoreResult<u64> {
        Ok(read_json::<Reservations>(barrier, path)?
            .unwrap_or_default()
            .reserved)
    }

    /// Raise the stored count at `path` to at least `count` (a restored
    /// backup's): counts only ever go up. Idempotent.
    pub fn raise(barrier: &Barrier, path: &str, count: u64) -> StoreResult<()> {
        if count == 0 {
            return Ok(());
        }
        edit_json(barrier, path, "the encryption counts", |stored| {
            let current: Reservations = stored.unwrap_or_default();
            Ok(if count > current.reserved {
                Edit::Put(Reservations { reserved: count })
            } else {
                Edit::Keep
            })
        })?;
        Ok(())
    }

    /// Drop this node's allowances of `name` (its key was deleted or replaced:
    /// they were reserved under material the name may no longer hold).
    pub fn forget(&self, name: &str) -> StoreResult<()> {
        self.allowances
            .write()
            .map_err(|_| poisoned())?
            .remove(name);
        Ok(())
    }

    /// Drop every allowance of this mount (after a full reload).
    pub fn forget_all(&self) -> StoreResult<()> {
        self.allowances.write().map_err(|_| poisoned())?.clear();
        Ok(())
    }

    /// Drop this node's allowances of versions below `min_available`
    /// (trimmed: they can never encrypt again under this name). Their stored
    /// counts stay: the material may be held elsewhere or come back.
    pub fn forget_below(&self, name: &str, min_available: u32) -> StoreResult<()> {
        if let Some(versions) = self
            .allowances
            .write()
            .map_err(|_| poisoned())?
            .get_mut(name)
        {
            versions.retain(|v, _| *v >= min_available);
        }
        Ok(())
    }
}

/// The size of the next reservation, adapted to how long the last one lasted.
fn next_block(a: &Allowance, last: Option<Instant>, limit: u64) -> u64 {
    let mut block = a.block.load(Ordering::Relaxed);
    if let Some(at) = last {
        let lasted = at.elapsed();
        if lasted < FAST {
            block = (block * 2).min(MAX_BLOCK);
        } else if lasted > SLOW {
            block = (block / 2).max(MIN_BLOCK);
        }
    }
    a.block.store(block, Ordering::Relaxed);
    block.min((limit / 16).max(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{MemoryStorage, Storage};

    const PATH: &str = "usage/k";
    const PATH2: &str = "usage/k2";

    fn barrier() -> Arc<Barrier> {
        let storage: Arc<dyn Storage> = Arc::new(MemoryStorage::shared());
        Arc::new(Barrier::for_tests(storage))
    }

    /// The material of version 1 lives at PATH, of version 2 at PATH2.
    fn path(version: u32) -> &'static str {
        if version == 1 { PATH } else { PATH2 }
    }

    fn stored(b: &Barrier, version: u32) -> u64 {
        Usage::stored(b, path(version)).unwrap()
    }

    /// Spend one encryption as the server does: the allowance, else storage.
    fn spend(u: &Usage, b: &Barrier, version: u32, limit: u64) -> bool {
        match u.take("k", version, 1).unwrap() {
            Taken::Spent { .. } => true,
            Taken::Short => {
                u.reserve(b, path(version), "k", version, limit, 1)
                    .unwrap()
                    .granted
            }
        }
    }

    #[test]
    fn nothing_is_spent_before_it_is_stored_and_the_stored_count_bounds_it() {
        let b = barrier();
        let u = Usage::default();
        assert_eq!(u.take("k", 1, 1).unwrap(), Taken::Short);
        for spent in 1..=1000u64 {
            assert!(spend(&u, &b, 1, u64::MAX));
            let total = stored(&b, 1);
            assert!(total >= spent, "stored {total} < spent {spent}");
            assert!(total <= spent + MAX_BLOCK);
        }
        // Versions are counted apart.
        assert_eq!(stored(&b, 2), 0);
    }

    #[test]
    fn a_refill_is_asked_for_once_when_half_the_block_is_spent() {
        let b = barrier();
        let u = Usage::default();
        // The first reservation (MIN_BLOCK) spends one at once.
        assert!(u.reserve(&b, PATH, "k", 1, u64::MAX, 1).unwrap().granted);
        let mut asked = 0;
        let mut spent = 1;
        while let Taken::Spent { refill } = u.take("k", 1, 1).unwrap() {
            spent += 1;
            if refill {
                asked += 1;
                assert!(spent > MIN_BLOCK / 2, "asked after {spent}");
            }
        }
        assert_eq!(spent, MIN_BLOCK);
        assert_eq!(asked, 1, "one refill queued, not one per encryption");
        // The refill (need 0) tops the allowance up, and storage first.
        let r = u.reserve(&b, PATH, "k", 1, u64::MAX, 0).unwrap();
        assert!(r.granted);
        assert_eq!(r.total, Some(stored(&b, 1)));
        assert!(
            stored(&b, 1) > 2 * MIN_BLOCK - 1,
            "the quick block doubled the next one"
        );
        assert!(matches!(u.take("k", 1, 1).unwrap(), Taken::Spent { .. }));
    }

    #[test]
    fn nodes_sharing_storage_never_spend_more_than_the_limit_together() {
        let b = barrier();
        let nodes: Vec<Usage> = (0..3).map(|_| Usage::default()).collect();
        let limit = 1000;
        let spent: u64 = std::thread::scope(|s| {
            let handles: Vec<_> = nodes
                .iter()
                .map(|u| {
                    let b = &b;
                    s.spawn(move || {
                        let mut n = 0;
                        while spend(u, b, 1, limit) {
                            n += 1;
                        }
                        n
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!(
            spent, limit,
            "every encryption under the limit, none past it"
        );
        assert_eq!(stored(&b, 1), limit);
        // No node holds more than a sixteenth of a small limit at once.
        assert!(next_block(&Allowance::new(), None, limit) <= limit / 16);
    }

    #[test]
    fn concurrent_spenders_on_one_node_are_always_covered_by_storage() {
        let b = barrier();
        let u = Usage::default();
        let spent = AtomicU64::new(0);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..2000 {
                        assert!(spend(&u, &b, 1, u64::MAX));
                        let now = spent.fetch_add(1, Ordering::SeqCst) + 1;
                        // Storage is read after the spend is counted here.
                        assert!(stored(&b, 1) >= now);
                    }
                });
            }
        });
        assert!(stored(&b, 1) >= 8000);
    }

    #[test]
    fn a_version_at_its_limit_grants_nothing_and_counts_nothing() {
        let b = barrier();
        let u = Usage::default();
        for _ in 0..5 {
            assert!(spend(&u, &b, 1, 5));
        }
        let r = u.reserve(&b, PATH, "k", 1, 5, 1).unwrap();
        assert_eq!(
            r,
            Reserved {
                granted: false,
                total: Some(5)
            }
        );
        assert_eq!(stored(&b, 1), 5);
        // Another version has its own budget.
        assert!(spend(&u, &b, 2, 5));
    }

    #[test]
    fn forgetting_drops_local_allowances_and_trimmed_versions() {
        let b = barrier();
        let u = Usage::default();
        assert!(spend(&u, &b, 1, u64::MAX));
        assert!(spend(&u, &b, 2, u64::MAX));
        let counted = stored(&b, 1);
        u.forget_below("k", 2).unwrap();
        assert_eq!(stored(&b, 1), counted, "a trimmed material keeps its count");
        assert!(stored(&b, 2) > 0);
        assert_eq!(u.take("k", 1, 1).unwrap(), Taken::Short);
        u.forget("k").unwrap();
        assert_eq!(u.take("k", 2, 1).unwrap(), Taken::Short);
    }

    #[test]
    fn raising_never_lowers() {
        let b = barrier();
        let u = Usage::default();
        assert!(spend(&u, &b, 1, u64::MAX));
        let before = stored(&b, 1);
        Usage::raise(&b, PATH, 1).unwrap();
        Usage::raise(&b, PATH2, 7).unwrap();
        assert_eq!(stored(&b, 1), before);
        assert_eq!(stored(&b, 2), 7);
        Usage::raise(&b, PATH, before + 5).unwrap();
        assert_eq!(stored(&b, 1), before + 5);
    }

    #[test]
    fn the_threshold_leaves_an_eighth() {
        assert_eq!(rotation_threshold(1 << 32), (1 << 32) - (1 << 29));
        assert_eq!(rotation_threshold(100), 88);
        assert_eq!(rotation_threshold(5), 5);
    }
}
