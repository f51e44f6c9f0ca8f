//! Read-modify-write of one barrier entry by compare-and-swap: the one way
//! shared state changes.
//!
//! A cache may lag behind another node's write, so a change is always computed
//! from what storage holds now and written back only if nobody wrote in
//! between; otherwise it is computed again from the newer entry. Two nodes
//! changing one entry at once therefore both apply, one after the other, and
//! neither silently undoes the other.

use serde::Serialize;
use serde::de::DeserializeOwned;
use zeroize::Zeroizing;

use super::barrier::Barrier;
use crate::storage::{Contended, StoreError, StoreResult, blocking};

/// How many times a change is recomputed when other writers keep winning,
/// before the caller gets a retryable [`Contended`] error.
pub const MAX_WRITE_ATTEMPTS: usize = 8;

/// What to do with the entry.
#[derive(Debug)]
pub enum Edit<T> {
    /// Store this value.
    Put(T),
    /// Delete the entry.
    Delete,
    /// Leave storage as it is.
    Keep,
}

/// Run `change` on the plaintext stored at `path` (`None`: absent) and apply
/// what it returns atomically. Returns the plaintext stored afterwards.
/// `change` may run more than once; `what` names the entry in the error when
/// every attempt lost a race.
pub fn edit_raw(
    barrier: &Barrier,
    path: &str,
    what: &'static str,
    change: impl FnMut(Option<&[u8]>) -> StoreResult<Edit<Zeroizing<Vec<u8>>>>,
) -> StoreResult<Option<Zeroizing<Vec<u8>>>> {
    edit_raw_with(barrier, path, what, change)
}

/// [`edit_raw`] for a `change` that fails with the caller's own error type
/// (a handler's, passed through a store).
pub fn edit_raw_with<E: From<StoreError>>(
    barrier: &Barrier,
    path: &str,
    what: &'static str,
    mut change: impl FnMut(Option<&[u8]>) -> Result<Edit<Zeroizing<Vec<u8>>>, E>,
) -> Result<Option<Zeroizing<Vec<u8>>>, E> {
    for _ in 0..MAX_WRITE_ATTEMPTS {
        let stored = blocking(|| barrier.get_with_raw(path)).map_err(StoreError::from)?;
        let (plain, raw) = match stored {
            Some((plain, raw)) => (Some(plain), Some(raw)),
            None => (None, None),
        };
        let next = match change(plain.as_deref().map(Vec::as_slice))? {
            Edit::Keep => return Ok(plain),
            Edit::Delete => None,
            Edit::Put(bytes) => Some(bytes),
        };
        if raw.is_none() && next.is_none() {
            return Ok(None);
        }
        let written =
            blocking(|| barrier.put_if(path, raw.as_deref(), next.as_deref().map(Vec::as_slice)))
                .map_err(StoreError::from)?;
        if written {
            return Ok(next);
        }
    }
    Err(StoreError::from(Contended::Entry(what)).into())
}

/// [`edit_raw`] for an entry stored as JSON. Returns the value stored afterwards.
pub fn edit_json<T: Serialize + DeserializeOwned>(
    barrier: &Barrier,
    path: &str,
    what: &'static str,
    mut change: impl FnMut(Option<T>) -> StoreResult<Edit<T>>,
) -> StoreResult<Option<T>> {
    let stored = edit_raw(barrier, path, what, |plain| {
        let current = plain.map(|p| decode(path, p)).transpose()?;
        Ok(match change(current)? {
            Edit::Put(value) => Edit::Put(Zeroizing::new(
                serde_json::to_vec(&value).map_err(|e| StoreError::Internal(e.to_string()))?,
            )),
            Edit::Delete => Edit::Delete,
            Edit::Keep => Edit::Keep,
        })
    })?;
    stored.map(|plain| decode(path, &plain)).transpose()
}

/// The JSON entry at `path`, read from storage (not from any cache).
pub fn read_json<T: DeserializeOwned>(barrier: &Barrier, path: &str) -> StoreResult<Option<T>> {
    blocking(|| barrier.get(path))?
        .map(|plain| decode(path, &plain))
        .transpose()
}

fn decode<T: DeserializeOwned>(path: &str, plain: &[u8]) -> StoreResult<T> {
    serde_json::from_slice(plain).map_err(|e| StoreError::Internal(format!("{path}: {e}")))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::storage::{MemoryStorage, Storage};

    fn barrier() -> (Arc<MemoryStorage>, Barrier) {
        let storage = Arc::new(MemoryStorage::default());
        let dyn_storage: Arc<dyn Storage> = storage.clone();
        (storage, Barrier::for_tests(dyn_storage))
    }

    #[test]
    fn put_keep_delete() {
        let (_, b) = barrier();
        let out = edit_json(&b, "p", "n", |cur: Option<u32>| {
            assert_eq!(cur, None);
            Ok(Edit::Put(1))
        })
        .unwrap();
        assert_eq!(out, Some(1));
        let out = edit_json(&b, "p", "n", |cur: Option<u32>| {
            assert_eq!(cur, Some(1));
            Ok(Edit::Keep)
        })
        .unwrap();
        assert_eq!(out, Some(1));
        assert_eq!(
            edit_json(&b, "p", "n", |_: Option<u32>| Ok(Edit::Delete)).unwrap(),
            None
        );
        assert_eq!(read_json::<u32>(&b, "p").unwrap(), None);
        // Deleting what is absent writes nothing and succeeds.
        assert_eq!(
            edit_json(&b, "p", "n", |_: Option<u32>| Ok(Edit::Delete)).unwrap(),
            None
        );
    }

    #[test]
    fn a_write_in_between_makes_the_change_run_again_on_the_newer_value() {
        let (_, b) = barrier();
        b.put("p", b"1").unwrap();
        let runs = AtomicUsize::new(0);
        let out = edit_json(&b, "p", "n", |cur: Option<u32>| {
            if runs.fetch_add(1, Ordering::SeqCst) == 0 {
                // Another node writes after our read.
                b.put("p", b"10").unwrap();
            }
            Ok(Edit::Put(cur.unwrap() + 1))
        })
        .unwrap();
        assert_eq!(
            out,
            Some(11),
            "the increment applied on top of the other write"
        );
        assert_eq!(runs.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn an_error_from_the_change_writes_nothing() {
        let (_, b) = barrier();
        b.put("p", b"1").unwrap();
        let err = edit_json(&b, "p", "n", |_: Option<u32>| -> StoreResult<Edit<u32>> {
            Err(StoreError::invalid("no"))
        });
        assert!(err.is_err());
        assert_eq!(read_json::<u32>(&b, "p").unwrap(), Some(1));
    }

    #[test]
    fn losing_every_race_is_a_retryable_contention() {
        let (_, b) = barrier();
        b.put("p", b"1").unwrap();
        let n = AtomicUsize::new(100);
        let err = edit_json(&b, "p", "the thing", |cur: Option<u32>| {
            b.put("p", n.fetch_add(1, Ordering::SeqCst).to_string().as_bytes())
                .unwrap();
            Ok(Edit::Put(cur.unwrap()))
        })
        .unwrap_err();
        assert!(
            matches!(&err, StoreError::Contended(Contended::Entry("the thing"))),
            "{err:?}"
        );
    }
}
