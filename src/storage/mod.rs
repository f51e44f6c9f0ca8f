//! Physical storage: opaque bytes under string paths.
//!
//! Backends never see plaintext: everything above them goes through the seal
//! barrier (`crate::seal::barrier`), which encrypts each entry bound to its path.
//! Every method is synchronous and may block (disk, network); callers on the
//! async runtime go through [`blocking`].

use std::fmt::Debug;

mod cached;
#[cfg(test)]
pub(crate) mod conformance;
mod error;
pub mod layout;
mod memory;
mod postgres;
pub mod snapshot;
mod sqlite;
mod sqlite_lock;

#[cfg(test)]
pub(crate) use self::postgres::tests::support::TestSchema;
pub use self::postgres::{PostgresConfig, PostgresStorage, redact_connection_url};
pub use cached::Cached;
pub use error::{Contended, Missing, StoreError, StoreResult};
pub use memory::MemoryStorage;
pub use sqlite::SqliteStorage;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// The backend could not be reached or failed; the operation may be retried.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// The stored data is not what this version of transitd can read.
    #[error("storage corrupt: {0}")]
    Corrupt(String),
}

pub type StorageResult<T> = Result<T, StorageError>;

/// A change made to the storage by someone else (another transitd node
/// sharing the same database), for nodes that cache what they read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// The entry at this path was written or deleted.
    Path(String),
    /// Changes may have been missed (the feed was interrupted): anything
    /// cached may be stale and must be read again.
    Resync,
}

/// A durable key-value store. A write that returned `Ok` survives a crash of
/// the process (and, for the embedded backend, of the machine).
pub trait Storage: Send + Sync + Debug {
    /// The backend's name, as `sys/seal-status` reports it (`inmem`, `sqlite`).
    fn kind(&self) -> &'static str;
    /// Whether other processes (other transitd nodes) write to this storage
    /// too, so cached state can go stale.
    fn is_shared(&self) -> bool {
        false
    }
    fn get(&self, path: &str) -> StorageResult<Option<Vec<u8>>>;
    fn put(&self, path: &str, value: &[u8]) -> StorageResult<()>;
    /// Deleting a missing path is not an error.
    fn delete(&self, path: &str) -> StorageResult<()>;
    /// Every path that starts with `prefix`, sorted.
    fn list(&self, prefix: &str) -> StorageResult<Vec<String>>;
    /// Atomically: if the current value equals `expected` (`None`: absent), store
    /// `new` (`None`: delete) and return true; otherwise change nothing and
    /// return false.
    fn compare_and_swap(
        &self,
        path: &str,
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> StorageResult<bool>;

    /// A feed of the changes other writers make to this storage, for a
    /// backend shared between nodes; `None` (the default) when nobody else can
    /// write to it. Each call returns a new receiver that gets every change
    /// made after the call returns; changes this instance makes itself are not
    /// reported.
    fn subscribe(&self) -> Option<std::sync::mpsc::Receiver<Change>> {
        None
    }
}

/// The smallest string greater than every string that starts with `prefix`,
/// or `None` if there is none (empty prefix, or only `char::MAX`s). Since UTF-8
/// preserves code point order under byte comparison, `[prefix, successor)` is
/// exactly the set of strings starting with `prefix`: the range query every
/// SQL backend lists with (never `LIKE`, whose `%` and `_` are wildcards).
pub(crate) fn prefix_successor(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        // The next scalar value, skipping the surrogate gap.
        if let Some(next) = (u32::from(last) + 1..=u32::from(char::MAX)).find_map(char::from_u32) {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// Run a blocking storage call from wherever we are: on a multi-threaded
/// runtime's worker it tells the runtime first, so other requests move to
/// other threads; elsewhere (blocking threads, tests, start-up) it just runs.
pub fn blocking<R>(f: impl FnOnce() -> R) -> R {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        _ => f(),
    }
}

/// Run `f` off the caller's path: on the runtime's blocking pool when there
/// is a runtime, else (tests, start-up) right here.
pub fn in_background(f: impl FnOnce() + Send + 'static) {
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => drop(runtime.spawn_blocking(f)),
        Err(_) => f(),
    }
}
