//! The barrier: every entry is AES-256-GCM encrypted before it reaches storage.
//!
//! An entry is `[format 1][term u32 BE][nonce 12][ciphertext || tag 16]`. The
//! associated data is the format byte, the term and the storage path, so an
//! entry copied to another path (or relabelled with another term) fails to open.
//! Nonces are random per entry: barrier writes are rare (key changes), so the
//! 2^32-writes-per-key bound of random 96-bit nonces is far away; terms exist so
//! the barrier key can be rotated before it is.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use zeroize::Zeroizing;

use crate::metrics::{BarrierOp, metrics};
use crate::storage::{Storage, StorageError, StoreError};

const FORMAT: u8 = 1;
const HEADER_LEN: usize = 1 + 4 + NONCE_LEN;
const TAG_LEN: usize = 16;
pub const KEY_LEN: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum BarrierError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// Wrong key, tampered bytes, or an entry moved from another path.
    #[error("storage entry {0:?} failed to open")]
    Open(String),
    #[error("storage entry {0:?} uses unknown key term {1}")]
    UnknownTerm(String, u32),
    #[error("random number generator failed")]
    Random,
}

pub type BarrierResult<T> = Result<T, BarrierError>;

impl From<BarrierError> for StoreError {
    fn from(e: BarrierError) -> Self {
        match e {
            BarrierError::Storage(StorageError::Unavailable(cause)) => {
                tracing::error!(%cause, "storage unavailable");
                Self::Unavailable(cause)
            }
            other => Self::Internal(other.to_string()),
        }
    }
}

/// A 256-bit key that only lives in zeroizing memory.
pub struct SecretKey(Zeroizing<[u8; KEY_LEN]>);

impl SecretKey {
    pub fn random() -> BarrierResult<Self> {
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        transit_keys::secret::fill_random(key.as_mut()).map_err(|_| BarrierError::Random)?;
        Ok(Self(key))
    }

    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        if bytes.len() != KEY_LEN {
            return None;
        }
        key.copy_from_slice(bytes);
        Some(Self(key))
    }

    pub fn expose(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// The key schedule lives only for one call: ring does not zeroize it.
    fn aead(&self) -> LessSafeKey {
        // AES_256_GCM takes exactly KEY_LEN bytes, which is all `self` can hold.
        match UnboundKey::new(&AES_256_GCM, self.0.as_ref()) {
            Ok(k) => LessSafeKey::new(k),
            Err(_) => unreachable!("a 32-byte key is always a valid AES-256 key"),
        }
    }
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(redacted)")
    }
}

fn aad(term: u32, path: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(5 + path.len());
    aad.push(FORMAT);
    aad.extend_from_slice(&term.to_be_bytes());
    aad.extend_from_slice(path.as_bytes());
    aad
}

/// Encrypt `plaintext` for storage at `path` under `key` (labelled `term`).
pub fn seal_entry(
    key: &SecretKey,
    term: u32,
    path: &str,
    plaintext: &[u8],
) -> BarrierResult<Vec<u8>> {
    let mut nonce = [0u8; NONCE_LEN];
    transit_keys::secret::fill_random(&mut nonce).map_err(|_| BarrierError::Random)?;
    let mut out = Vec::with_capacity(HEADER_LEN + plaintext.len() + TAG_LEN);
    out.push(FORMAT);
    out.extend_from_slice(&term.to_be_bytes());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(plaintext);
    let tag = key
        .aead()
        .seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad(term, path)),
            &mut out[HEADER_LEN..],
        )
        .map_err(|_| BarrierError::Open(path.to_owned()))?;
    out.extend_from_slice(tag.as_ref());
    Ok(out)
}

/// The term an entry claims to be sealed under (not yet authenticated).
pub fn entry_term(path: &str, entry: &[u8]) -> BarrierResult<u32> {
    if entry.len() < HEADER_LEN + TAG_LEN || entry[0] != FORMAT {
        return Err(BarrierError::Open(path.to_owned()));
    }
    let mut term = [0u8; 4];
    term.copy_from_slice(&entry[1..5]);
    Ok(u32::from_be_bytes(term))
}

/// Decrypt an entry read from `path`.
pub fn open_entry(key: &SecretKey, path: &str, entry: &[u8]) -> BarrierResult<Zeroizing<Vec<u8>>> {
    let term = entry_term(path, entry)?;
    let mut nonce = [0u8; NONCE_LEN];
    nonce.copy_from_slice(&entry[5..HEADER_LEN]);
    let mut buf = Zeroizing::new(entry[HEADER_LEN..].to_vec());
    let len = key
        .aead()
        .open_in_place(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad(term, path)),
            &mut buf,
        )
        .map_err(|_| BarrierError::Open(path.to_owned()))?
        .len();
    buf.truncate(len);
    Ok(buf)
}

/// The barrier's keys by term; new entries use the newest.
#[derive(Debug)]
pub struct BarrierKeyring {
    keys: BTreeMap<u32, SecretKey>,
}

impl BarrierKeyring {
    pub fn generate() -> BarrierResult<Self> {
        Ok(Self {
            keys: BTreeMap::from([(1, SecretKey::random()?)]),
        })
    }

    fn active(&self) -> (u32, &SecretKey) {
        match self.keys.iter().next_back() {
            Some((term, key)) => (*term, key),
            None => {
                unreachable!("a barrier keyring is never empty: built with one term, never shrunk")
            }
        }
    }

    /// `[count u32]` then `[term u32][key 32]` per term, big-endian.
    pub fn encode(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::with_capacity(4 + self.keys.len() * (4 + KEY_LEN)));
        out.extend_from_slice(&(self.keys.len() as u32).to_be_bytes());
        for (term, key) in &self.keys {
            out.extend_from_slice(&term.to_be_bytes());
            out.extend_from_slice(key.expose());
        }
        out
    }

    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let (count, mut rest) = bytes.split_first_chunk::<4>()?;
        let count = u32::from_be_bytes(*count) as usize;
        if count == 0 || rest.len() != count * (4 + KEY_LEN) {
            return None;
        }
        let mut keys = BTreeMap::new();
        for _ in 0..count {
            let (term, after) = rest.split_first_chunk::<4>()?;
            let (key, after) = after.split_at_checked(KEY_LEN)?;
            keys.insert(u32::from_be_bytes(*term), SecretKey::from_slice(key)?);
            rest = after;
        }
        Some(Self { keys })
    }
}

/// An entry read through the barrier: (plaintext, the sealed bytes as stored).
pub type Opened = (Zeroizing<Vec<u8>>, Vec<u8>);

/// Storage seen through the barrier: plaintext above, sealed bytes below.
#[derive(Debug)]
pub struct Barrier {
    storage: Arc<dyn Storage>,
    keyring: BarrierKeyring,
}

impl Barrier {
    pub fn new(storage: Arc<dyn Storage>, keyring: BarrierKeyring) -> Self {
        Self { storage, keyring }
    }

    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.storage
    }

    pub fn get(&self, path: &str) -> BarrierResult<Option<Zeroizing<Vec<u8>>>> {
        let started = Instant::now();
        let got = match self.storage.get(path)? {
            None => Ok(None),
            Some(entry) => self.open(path, &entry).map(Some),
        };
        metrics().barrier(BarrierOp::Get, started);
        got
    }

    pub fn open(&self, path: &str, entry: &[u8]) -> BarrierResult<Zeroizing<Vec<u8>>> {
        let term = entry_term(path, entry)?;
        let key = self
            .keyring
            .keys
            .get(&term)
            .ok_or_else(|| BarrierError::UnknownTerm(path.to_owned(), term))?;
        open_entry(key, path, entry)
    }

    pub fn seal(&self, path: &str, plaintext: &[u8]) -> BarrierResult<Vec<u8>> {
        let (term, key) = self.keyring.active();
        seal_entry(key, term, path, plaintext)
    }

    /// The decrypted entry and the sealed bytes it came from (to compare-and-swap on).
    pub fn get_with_raw(&self, path: &str) -> BarrierResult<Option<Opened>> {
        let started = Instant::now();
        let got = match self.storage.get(path)? {
            None => None,
            Some(entry) => Some((self.open(path, &entry)?, entry)),
        };
        metrics().barrier(BarrierOp::Get, started);
        Ok(got)
    }

    /// Write (or, with `None`, delete) only if the stored bytes are still
    /// `expected` (`None`: absent); false when another writer got there first.
    pub fn put_if(
        &self,
        path: &str,
        expected: Option<&[u8]>,
        plaintext: Option<&[u8]>,
    ) -> BarrierResult<bool> {
        let started = Instant::now();
        let sealed = plaintext.map(|p| self.seal(path, p)).transpose()?;
        let swapped = self
            .storage
            .compare_and_swap(path, expected, sealed.as_deref())?;
        let op = if plaintext.is_some() {
            BarrierOp::Put
        } else {
            BarrierOp::Delete
        };
        metrics().barrier(op, started);
        Ok(swapped)
    }

    /// Durable when it returns `Ok` (the backend's promise).
    pub fn put(&self, path: &str, plaintext: &[u8]) -> BarrierResult<()> {
        let started = Instant::now();
        let entry = self.seal(path, plaintext)?;
        self.storage.put(path, &entry)?;
        metrics().barrier(BarrierOp::Put, started);
        Ok(())
    }

    pub fn delete(&self, path: &str) -> BarrierResult<()> {
        let started = Instant::now();
        self.storage.delete(path)?;
        metrics().barrier(BarrierOp::Delete, started);
        Ok(())
    }

    pub fn list(&self, prefix: &str) -> BarrierResult<Vec<String>> {
        let started = Instant::now();
        let names = self.storage.list(prefix)?;
        metrics().barrier(BarrierOp::List, started);
        Ok(names)
    }

    /// Delete every entry under `prefix` (the data of a disabled mount or
    /// login method). Blocking. Not atomic: the caller removes the table row
    /// first, so a crash midway leaves orphans that the next unseal sweeps.
    pub fn delete_all_under(&self, prefix: &str) -> BarrierResult<()> {
        for path in self.list(prefix)? {
            self.delete(&path)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::MemoryStorage;

    fn barrier() -> Barrier {
        Barrier::new(
            Arc::new(MemoryStorage::new()),
            BarrierKeyring::generate().unwrap(),
        )
    }

    #[test]
    fn round_trip_and_no_plaintext_below() {
        let b = barrier();
        b.put("logical/a", b"secret bytes").unwrap();
        assert_eq!(
            b.get("logical/a").unwrap().unwrap().as_slice(),
            b"secret bytes"
        );
        let raw = b.storage().get("logical/a").unwrap().unwrap();
        assert!(!raw.windows(6).any(|w| w == b"secret"));
        assert_eq!(raw.len(), HEADER_LEN + 12 + TAG_LEN);
        assert!(b.get("logical/missing").unwrap().is_none());
    }

    #[test]
    fn entry_moved_to_another_path_fails() {
        let b = barrier();
        b.put("logical/a", b"x").unwrap();
        let raw = b.storage().get("logical/a").unwrap().unwrap();
        b.storage().put("logical/b", &raw).unwrap();
        assert!(matches!(b.get("logical/b"), Err(BarrierError::Open(_))));
    }

    #[test]
    fn tampering_and_truncation_fail() {
        let b = barrier();
        b.put("p", b"hello").unwrap();
        let raw = b.storage().get("p").unwrap().unwrap();
        for i in 0..raw.len() {
            let mut bad = raw.clone();
            bad[i] ^= 1;
            assert!(b.open("p", &bad).is_err(), "flip at {i}");
        }
        for n in 0..raw.len() {
            assert!(b.open("p", &raw[..n]).is_err());
        }
    }

    #[test]
    fn other_key_fails() {
        let a = barrier();
        a.put("p", b"hello").unwrap();
        let raw = a.storage().get("p").unwrap().unwrap();
        assert!(barrier().open("p", &raw).is_err());
    }

    #[test]
    fn nonces_differ() {
        let b = barrier();
        assert_ne!(b.seal("p", b"same").unwrap(), b.seal("p", b"same").unwrap());
    }

    #[test]
    fn keyring_encoding_round_trips_and_rejects_garbage() {
        let k = BarrierKeyring::generate().unwrap();
        let d = BarrierKeyring::decode(&k.encode()).unwrap();
        assert_eq!(d.active().1.expose(), k.active().1.expose());
        assert!(BarrierKeyring::decode(&[]).is_none());
        assert!(BarrierKeyring::decode(&[0, 0, 0, 0]).is_none());
        let mut long = k.encode().to_vec();
        long.push(0);
        assert!(BarrierKeyring::decode(&long).is_none());
    }

    #[test]
    fn an_unreachable_backend_is_retryable_and_anything_else_a_fault() {
        let down = BarrierError::Storage(StorageError::Unavailable("refused".into()));
        assert!(matches!(StoreError::from(down), StoreError::Unavailable(c) if c == "refused"));
        let corrupt = BarrierError::Storage(StorageError::Corrupt("bad row".into()));
        assert!(matches!(StoreError::from(corrupt), StoreError::Internal(_)));
        let moved = BarrierError::Open("logical/b".into());
        assert!(matches!(StoreError::from(moved), StoreError::Internal(_)));
    }
}
