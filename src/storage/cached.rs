//! The shape every caching store shares: this node's copy of some entries
//! in storage, and the writer lock that orders changes to them.
//!
//! Requests read the copy ([`Cached::read`]) without touching storage. Every
//! change holds the writer lock ([`Cached::writer`]) from reading storage
//! until the cache took what was stored ([`Cached::write`]); so do refreshes,
//! whether of one entry (another node's change) or of everything
//! ([`Cached::reload`], after missed changes). A refresh therefore never
//! publishes what it read before a local write over that write.

use std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

use super::{StoreError, StoreResult};

#[derive(Debug)]
pub struct Cached<T> {
    /// Names the store in the error a poisoned lock gives.
    name: &'static str,
    value: RwLock<T>,
    writer: Mutex<()>,
}

impl<T> Cached<T> {
    pub fn new(name: &'static str, value: T) -> Self {
        Self {
            name,
            value: RwLock::new(value),
            writer: Mutex::new(()),
        }
    }

    fn poisoned(&self) -> StoreError {
        StoreError::Internal(format!("{} lock poisoned", self.name))
    }

    /// The copy, for reading; hold it briefly.
    pub fn read(&self) -> StoreResult<RwLockReadGuard<'_, T>> {
        self.value.read().map_err(|_| self.poisoned())
    }

    /// The writer lock: held while storage is read or changed and the
    /// outcome published, by local changes and refreshes alike.
    pub fn writer(&self) -> StoreResult<MutexGuard<'_, ()>> {
        self.writer.lock().map_err(|_| self.poisoned())
    }

    /// The copy, for publishing what storage now holds. The caller holds
    /// [`Cached::writer`] (or has the only reference).
    pub fn write(&self) -> StoreResult<RwLockWriteGuard<'_, T>> {
        self.value.write().map_err(|_| self.poisoned())
    }

    /// Replace the whole copy by what `read` finds in storage, with other
    /// writers excluded meanwhile.
    pub fn reload(&self, read: impl FnOnce() -> StoreResult<T>) -> StoreResult<()> {
        let _writer = self.writer()?;
        let fresh = read()?;
        *self.write()? = fresh;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::mpsc::channel;

    use super::*;

    #[test]
    fn reload_replaces_the_copy_and_a_failed_read_keeps_it() {
        let cached = Cached::new("test", vec![1]);
        cached.reload(|| Ok(vec![2, 3])).unwrap();
        assert_eq!(*cached.read().unwrap(), [2, 3]);
        let err = cached.reload(|| Err(StoreError::Unavailable("down".to_owned())));
        assert!(matches!(err, Err(StoreError::Unavailable(_))));
        assert_eq!(*cached.read().unwrap(), [2, 3]);
    }

    /// A reload that starts while a writer works reads storage only after
    /// the writer published.
    #[test]
    fn a_reload_waits_for_the_writer_in_flight() {
        let cached = Arc::new(Cached::new("test", Vec::<&str>::new()));
        let log = Arc::new(Mutex::new(Vec::new()));
        let (started_tx, started_rx) = channel();
        let writer = cached.writer().unwrap();
        let reloader = {
            let (cached, log) = (Arc::clone(&cached), Arc::clone(&log));
            std::thread::spawn(move || {
                started_tx.send(()).unwrap();
                cached
                    .reload(|| {
                        log.lock().unwrap().push("reload read storage");
                        Ok(vec!["fresh"])
                    })
                    .unwrap();
            })
        };
        started_rx.recv().unwrap();
        log.lock().unwrap().push("writer published");
        cached.write().unwrap().push("written");
        drop(writer);
        reloader.join().unwrap();
        assert_eq!(
            *log.lock().unwrap(),
            ["writer published", "reload read storage"]
        );
        assert_eq!(*cached.read().unwrap(), ["fresh"]);
    }

    #[test]
    fn a_poisoned_lock_is_an_internal_error_naming_the_store() {
        let cached = Arc::new(Cached::new("token store", 0));
        let poisoner = Arc::clone(&cached);
        let _ = std::thread::spawn(move || {
            let _guard = poisoner.write().unwrap();
            panic!("poison the lock");
        })
        .join();
        let err = cached.read().map(|_| ()).unwrap_err();
        assert!(
            matches!(&err, StoreError::Internal(m) if m == "token store lock poisoned"),
            "{err:?}"
        );
        assert!(cached.writer().is_ok(), "the writer lock is separate");
    }
}
