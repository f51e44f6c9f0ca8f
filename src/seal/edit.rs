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
use crate::error::{ApiError, ApiResult};
use crate::storage::blocking;

/// How many times a change is recomputed when other writers keep winning,
/// before the caller gets a retryable 503.
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
    what: &str,
    mut change: impl FnMut(Option<&[u8]>) -> ApiResult<Edit<Zeroizing<Vec<u8>>>>,
) -> ApiResult<Option<Zeroizing<Vec<u8>>>> {
    for _ in 0..MAX_WRITE_ATTEMPTS {
        let stored = blocking(|| barrier.get_with_raw(path))?;
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
            blocking(|| barrier.put_if(path, raw.as_deref(), next.as_deref().map(Vec::as_slice)))?;
        if written {
            return Ok(next);
        }
    }
    Err(ApiError::Unavailable(format!(
        "{what} is being changed concurrently; retry"
    )))
}

/// [`edit_raw`] for an entry stored as JSON. Returns the value stored afterwards.
pub fn edit_json<T: Serialize + DeserializeOwned>(
    barrier: &Barrier,
    path: &str,
    what: &str,
    mut change: impl FnMut(Option<T>) -> ApiResult<Edit<T>>,
) -> ApiResult<Option<T>> {
    let stored = edit_raw(barrier, path, what, |plain| {
        let current = plain.map(|p| decode(path, p)).transpose()?;
        Ok(match change(current)? {
            Edit::Put(value) => Edit::Put(Zeroizing::new(
                serde_json::to_vec(&value).map_err(|e| ApiError::Internal(e.to_string()))?,
            )),
            Edit::Delete => Edit::Delete,
            Edit::Keep => Edit::Keep,
        })
    })?;
    stored.map(|plain| decode(path, &plain)).transpose()
}

/// The JSON entry at `path`, read from storage (not from any cache).
pub fn read_json<T: DeserializeOwned>(barrier: &Barrier, path: &str) -> ApiResult<Option<T>> {
    blocking(|| barrier.get(path))?
        .map(|plain| decode(path, &plain))
        .transpose()
}

fn decode<T: DeserializeOwned>(path: &str, plain: &[u8]) -> ApiResult<T> {
    serde_json::from_slice(plain).map_err(|e| ApiError::Internal(format!("{path}: {e}")))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::seal::barrier::BarrierKeyring;
    use crate::storage::{MemoryStorage, Storage};

    fn barrier() -> (Arc<MemoryStorage>, Barrier) {
        let storage = Arc::new(MemoryStorage::default());
        let dyn_storage: Arc<dyn Storage> = storage.clone();
        (
            storage,
            Barrier::new(dyn_storage, BarrierKeyring::generate().unwrap()),
        )
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
        let err = edit_json(&b, "p", "n", |_: Option<u32>| -> ApiResult<Edit<u32>> {
            Err(ApiError::bad("no"))
        });
        assert!(err.is_err());
        assert_eq!(read_json::<u32>(&b, "p").unwrap(), Some(1));
    }

    #[test]
    fn losing_every_race_is_a_retryable_503() {
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
            matches!(&err, ApiError::Unavailable(m) if m.contains("the thing")),
            "{err:?}"
        );
    }
}
