//! The barrier: every entry is AES-256-GCM encrypted before it reaches storage.
//!
//! An entry is `[format 1][term u32 BE][nonce 12][ciphertext || tag 16]`. The
//! associated data is the format byte, the term and the storage path, so an
//! entry copied to another path (or relabelled with another term) fails to open.
//! Nonces are random per entry: barrier writes are rare (key changes), so the
//! 2^32-writes-per-key bound of random 96-bit nonces is far away; terms exist so
//! the barrier key can be rotated before it is.
//!
//! The keyring of terms is itself one entry, `core/keyring`, sealed under the
//! root key (term 0). `sys/rotate` adds a term by one compare-and-swap of that
//! entry, so a crash leaves the old keyring or the new one, never a mix; other
//! nodes re-read it when the change feed names it, or when they meet an entry
//! of a term they do not know yet.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Instant;

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use zeroize::Zeroizing;

use crate::metrics::{BarrierOp, metrics};
use crate::storage::layout::KEYRING as KEYRING_PATH;
use crate::storage::{Contended, Storage, StorageError, StoreError};

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
    /// `core/keyring` is missing, does not open with the root key, or is malformed.
    #[error("the barrier keyring is unreadable: {0}")]
    Keyring(&'static str),
    /// Every barrier key term has been used.
    #[error("the barrier key term cannot grow past {}", u32::MAX)]
    TermsExhausted,
    /// Other nodes kept rotating at the same moment.
    #[error("the barrier keyring is being changed concurrently; retry")]
    Contended,
}

pub type BarrierResult<T> = Result<T, BarrierError>;

impl From<BarrierError> for StoreError {
    fn from(e: BarrierError) -> Self {
        match e {
            BarrierError::Storage(StorageError::Unavailable(cause)) => {
                tracing::error!(%cause, "storage unavailable");
                Self::Unavailable(cause)
            }
            BarrierError::Contended => Self::Contended(Contended::Entry("the barrier keyring")),
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

/// One barrier key term.
#[derive(Debug)]
struct Term {
    key: SecretKey,
    /// Unix seconds; 0 for terms stored before install times were recorded.
    installed: i64,
}

/// The barrier's keys by term; new entries use the newest.
#[derive(Debug)]
pub struct BarrierKeyring {
    terms: BTreeMap<u32, Term>,
}

/// Leads the encoding that records install times; the first encoding starts
/// with a big-endian count, whose first byte is 0 for any real keyring.
const KEYRING_V2: u8 = 2;
const TERM_LEN_V1: usize = 4 + KEY_LEN;
const TERM_LEN_V2: usize = 4 + 8 + KEY_LEN;

fn now_unix() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

impl BarrierKeyring {
    pub fn generate() -> BarrierResult<Self> {
        let term = Term {
            key: SecretKey::random()?,
            installed: now_unix(),
        };
        Ok(Self {
            terms: BTreeMap::from([(1, term)]),
        })
    }

    fn active(&self) -> (u32, &Term) {
        match self.terms.iter().next_back() {
            Some((number, term)) => (*number, term),
            None => {
                unreachable!("a barrier keyring is never empty: built with one term, never shrunk")
            }
        }
    }

    /// The active term's number and install time (unix seconds).
    pub fn active_term(&self) -> (u32, i64) {
        let (number, term) = self.active();
        (number, term.installed)
    }

    /// This keyring plus a new random term after the active one.
    fn rotated(&self) -> BarrierResult<Self> {
        let next = self
            .active()
            .0
            .checked_add(1)
            .ok_or(BarrierError::TermsExhausted)?;
        let mut terms = BTreeMap::new();
        for (number, term) in &self.terms {
            let key = SecretKey::from_slice(term.key.expose())
                .ok_or(BarrierError::Keyring("key length"))?;
            terms.insert(
                *number,
                Term {
                    key,
                    installed: term.installed,
                },
            );
        }
        let term = Term {
            key: SecretKey::random()?,
            installed: now_unix(),
        };
        terms.insert(next, term);
        Ok(Self { terms })
    }

    /// `[2][count u32]` then `[term u32][installed i64][key 32]` per term, big-endian.
    pub fn encode(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::with_capacity(5 + self.terms.len() * TERM_LEN_V2));
        out.push(KEYRING_V2);
        out.extend_from_slice(&(self.terms.len() as u32).to_be_bytes());
        for (number, term) in &self.terms {
            out.extend_from_slice(&number.to_be_bytes());
            out.extend_from_slice(&term.installed.to_be_bytes());
            out.extend_from_slice(term.key.expose());
        }
        out
    }

    /// Reads both encodings: the current one and the first (`[count u32]`
    /// then `[term u32][key 32]`, no install times).
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let (with_times, body) = match bytes.split_first() {
            Some((&KEYRING_V2, rest)) => (true, rest),
            _ => (false, bytes),
        };
        let (count, mut rest) = body.split_first_chunk::<4>()?;
        let count = u32::from_be_bytes(*count) as usize;
        let term_len = if with_times { TERM_LEN_V2 } else { TERM_LEN_V1 };
        if count == 0 || Some(rest.len()) != count.checked_mul(term_len) {
            return None;
        }
        let mut terms = BTreeMap::new();
        for _ in 0..count {
            let (number, after) = rest.split_first_chunk::<4>()?;
            let (installed, after) = if with_times {
                let (t, after) = after.split_first_chunk::<8>()?;
                (i64::from_be_bytes(*t), after)
            } else {
                (0, after)
            };
            let (key, after) = after.split_at_checked(KEY_LEN)?;
            let term = Term {
                key: SecretKey::from_slice(key)?,
                installed,
            };
            if terms.insert(u32::from_be_bytes(*number), term).is_some() {
                return None;
            }
            rest = after;
        }
        Some(Self { terms })
    }

    /// The keyring as stored at `core/keyring`: sealed under the root key.
    pub fn seal(&self, root: &SecretKey) -> BarrierResult<Vec<u8>> {
        seal_entry(root, 0, KEYRING_PATH, &self.encode())
    }

    /// Open what [`Self::seal`] stored. `Open` means the root key is wrong.
    pub fn open(root: &SecretKey, stored: &[u8]) -> BarrierResult<Self> {
        let plain = open_entry(root, KEYRING_PATH, stored)?;
        Self::decode(&plain).ok_or(BarrierError::Keyring("malformed"))
    }
}

/// An entry read through the barrier: (plaintext, the sealed bytes as stored).
pub type Opened = (Zeroizing<Vec<u8>>, Vec<u8>);

/// Storage seen through the barrier: plaintext above, sealed bytes below.
#[derive(Debug)]
pub struct Barrier {
    storage: Arc<dyn Storage>,
    /// Opens `core/keyring`, to follow rotations made here or elsewhere.
    root: SecretKey,
    keyring: RwLock<Arc<BarrierKeyring>>,
    /// Entries this node sealed since it unsealed (`sys/key-status`).
    encryptions: AtomicU64,
}

/// Attempts at the keyring's compare-and-swap before giving up.
const ROTATE_ATTEMPTS: usize = 5;

/// A barrier over `storage` with a fresh root key and keyring, for tests.
#[cfg(test)]
impl Barrier {
    #[allow(clippy::unwrap_used)]
    pub(crate) fn for_tests(storage: Arc<dyn Storage>) -> Self {
        Self::new(
            storage,
            SecretKey::random().unwrap(),
            BarrierKeyring::generate().unwrap(),
        )
    }
}

impl Barrier {
    pub fn new(storage: Arc<dyn Storage>, root: SecretKey, keyring: BarrierKeyring) -> Self {
        Self {
            storage,
            root,
            keyring: RwLock::new(Arc::new(keyring)),
            encryptions: AtomicU64::new(0),
        }
    }

    fn keyring(&self) -> Arc<BarrierKeyring> {
        match self.keyring.read() {
            Ok(k) => Arc::clone(&k),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    fn install(&self, keyring: BarrierKeyring) {
        let keyring = Arc::new(keyring);
        match self.keyring.write() {
            Ok(mut k) => *k = keyring,
            Err(poisoned) => *poisoned.into_inner() = keyring,
        }
    }

    /// Whether `candidate` is the root key (constant time).
    pub fn is_root_key(&self, candidate: &SecretKey) -> bool {
        use subtle::ConstantTimeEq as _;
        bool::from(self.root.expose().ct_eq(candidate.expose()))
    }

    /// The root key sealed by `unseal_key` for `path`: what Shamir shares
    /// unlock (`seal/stored_keys.rs`). The root key itself never leaves here.
    pub fn root_sealed_by(&self, unseal_key: &SecretKey, path: &str) -> BarrierResult<Vec<u8>> {
        seal_entry(unseal_key, 0, path, self.root.expose())
    }

    /// (active term, its install time in unix seconds, entries this node sealed)
    pub fn key_status(&self) -> (u32, i64, u64) {
        let (term, installed) = self.keyring().active_term();
        (term, installed, self.encryptions.load(Ordering::Relaxed))
    }

    /// Re-read `core/keyring` (another node rotated). Blocking. A stored
    /// keyring older than ours (a stale read) is not taken.
    pub fn refresh(&self) -> BarrierResult<()> {
        let stored = self
            .storage
            .get(KEYRING_PATH)?
            .ok_or(BarrierError::Keyring("missing"))?;
        let keyring = BarrierKeyring::open(&self.root, &stored)?;
        if keyring.active().0 > self.keyring().active().0 {
            self.install(keyring);
        }
        Ok(())
    }

    /// `sys/rotate`: add a new term and seal new entries with it. One
    /// compare-and-swap of `core/keyring`: a crash leaves the old keyring or
    /// the new one. Blocking. Returns the new term.
    pub fn rotate(&self) -> BarrierResult<u32> {
        for _ in 0..ROTATE_ATTEMPTS {
            let stored = self
                .storage
                .get(KEYRING_PATH)?
                .ok_or(BarrierError::Keyring("missing"))?;
            let current = BarrierKeyring::open(&self.root, &stored)?;
            let next = current.rotated()?;
            let sealed = next.seal(&self.root)?;
            crate::crash_point::here("rotate-before-commit");
            if self
                .storage
                .compare_and_swap(KEYRING_PATH, Some(&stored), Some(&sealed))?
            {
                crate::crash_point::here("rotate-after-commit");
                let term = next.active().0;
                self.install(next);
                self.encryptions.store(0, Ordering::Relaxed);
                return Ok(term);
            }
        }
        Err(BarrierError::Contended)
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
        let mut keyring = self.keyring();
        if !keyring.terms.contains_key(&term) {
            // Written by a node that rotated before our feed told us.
            self.refresh()?;
            keyring = self.keyring();
        }
        let key = &keyring
            .terms
            .get(&term)
            .ok_or_else(|| BarrierError::UnknownTerm(path.to_owned(), term))?
            .key;
        open_entry(key, path, entry)
    }

    pub fn seal(&self, path: &str, plaintext: &[u8]) -> BarrierResult<Vec<u8>> {
        let keyring = self.keyring();
        let (number, term) = keyring.active();
        self.encryptions.fetch_add(1, Ordering::Relaxed);
        seal_entry(&term.key, number, path, plaintext)
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
            SecretKey::random().unwrap(),
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
        assert_eq!(d.active().1.key.expose(), k.active().1.key.expose());
        assert_eq!(d.active_term(), k.active_term());
        assert!(BarrierKeyring::decode(&[]).is_none());
        assert!(BarrierKeyring::decode(&[0, 0, 0, 0]).is_none());
        let mut long = k.encode().to_vec();
        long.push(0);
        assert!(BarrierKeyring::decode(&long).is_none());
    }

    #[test]
    fn keyrings_of_the_first_encoding_still_open() {
        let key = [7u8; KEY_LEN];
        let mut v1 = 1u32.to_be_bytes().to_vec();
        v1.extend_from_slice(&1u32.to_be_bytes());
        v1.extend_from_slice(&key);
        let k = BarrierKeyring::decode(&v1).unwrap();
        assert_eq!(k.active_term(), (1, 0));
        assert_eq!(k.active().1.key.expose(), &key);
        // Two copies of one term are refused, not silently merged.
        let mut twice = 2u32.to_be_bytes().to_vec();
        twice.extend_from_slice(&v1[4..]);
        twice.extend_from_slice(&v1[4..]);
        assert!(BarrierKeyring::decode(&twice).is_none());
    }

    #[test]
    fn rotation_adds_a_term_that_other_nodes_pick_up() {
        let storage: Arc<dyn Storage> = Arc::new(MemoryStorage::shared());
        let root = SecretKey::random().unwrap();
        let keyring = BarrierKeyring::generate().unwrap();
        storage
            .put(KEYRING_PATH, &keyring.seal(&root).unwrap())
            .unwrap();
        let copy = || {
            let stored = storage.get(KEYRING_PATH).unwrap().unwrap();
            let keyring = BarrierKeyring::open(&root, &stored).unwrap();
            Barrier::new(
                Arc::clone(&storage),
                SecretKey::from_slice(root.expose()).unwrap(),
                keyring,
            )
        };
        let (a, b) = (copy(), copy());
        a.put("old", b"before").unwrap();
        assert_eq!(a.key_status().0, 1);
        assert_eq!(a.rotate().unwrap(), 2);
        assert_eq!(a.key_status().0, 2);
        a.put("new", b"after").unwrap();
        let raw = storage.get("new").unwrap().unwrap();
        assert_eq!(entry_term("new", &raw).unwrap(), 2);
        assert_eq!(a.get("old").unwrap().unwrap().as_slice(), b"before");
        // B has not heard of term 2 yet: meeting it makes B re-read the keyring.
        assert_eq!(b.key_status().0, 1);
        assert_eq!(b.get("new").unwrap().unwrap().as_slice(), b"after");
        assert_eq!(b.key_status().0, 2);
        // B rotates from what is stored, not from what it holds.
        assert_eq!(b.rotate().unwrap(), 3);
        a.refresh().unwrap();
        assert_eq!(a.key_status().0, 3);
        // A keyring sealed under another root key is refused.
        let stranger = Barrier::new(
            Arc::clone(&storage),
            SecretKey::random().unwrap(),
            BarrierKeyring::generate().unwrap(),
        );
        assert!(matches!(stranger.rotate(), Err(BarrierError::Open(_))));
        assert_eq!(copy().key_status().0, 3);
        // A term nobody wrote stays an error.
        let mut forged = raw.clone();
        forged[1..5].copy_from_slice(&9u32.to_be_bytes());
        assert!(matches!(
            a.open("new", &forged),
            Err(BarrierError::UnknownTerm(_, 9))
        ));
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
