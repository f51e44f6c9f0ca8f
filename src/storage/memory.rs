//! In-memory storage: dev mode and tests. Forgets everything on exit.

use std::collections::BTreeMap;
use std::sync::Mutex;

use super::{Storage, StorageError, StorageResult};

#[derive(Debug, Default)]
pub struct MemoryStorage {
    entries: Mutex<BTreeMap<String, Vec<u8>>>,
    shared: bool,
}

impl MemoryStorage {
    pub fn new() -> Self {
        Self::default()
    }

    /// One that claims other nodes write to it too (with no change feed):
    /// several in-process nodes over one `Arc` of it behave like nodes whose
    /// notifications are late, for tests of the multi-node rules.
    pub fn shared() -> Self {
        Self {
            shared: true,
            ..Self::default()
        }
    }

    fn entries(&self) -> StorageResult<std::sync::MutexGuard<'_, BTreeMap<String, Vec<u8>>>> {
        self.entries
            .lock()
            .map_err(|_| StorageError::Unavailable("memory storage lock poisoned".to_owned()))
    }
}

impl Storage for MemoryStorage {
    fn kind(&self) -> &'static str {
        "inmem"
    }

    fn is_shared(&self) -> bool {
        self.shared
    }

    fn get(&self, path: &str) -> StorageResult<Option<Vec<u8>>> {
        Ok(self.entries()?.get(path).cloned())
    }

    fn put(&self, path: &str, value: &[u8]) -> StorageResult<()> {
        self.entries()?.insert(path.to_owned(), value.to_vec());
        Ok(())
    }

    fn delete(&self, path: &str) -> StorageResult<()> {
        self.entries()?.remove(path);
        Ok(())
    }

    fn list(&self, prefix: &str) -> StorageResult<Vec<String>> {
        Ok(self
            .entries()?
            .range(prefix.to_owned()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, _)| k.clone())
            .collect())
    }

    fn compare_and_swap(
        &self,
        path: &str,
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> StorageResult<bool> {
        let mut entries = self.entries()?;
        if entries.get(path).map(Vec::as_slice) != expected {
            return Ok(false);
        }
        match new {
            Some(v) => entries.insert(path.to_owned(), v.to_vec()),
            None => entries.remove(path),
        };
        Ok(true)
    }
}
