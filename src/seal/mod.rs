//! Seal and unseal: the root key, its Shamir shares or auto-unseal (a static
//! key, or another server's transit key), and the barrier keyring it protects.
//!
//! On storage: `core/seal-config` (plain JSON: the seal type, share counts
//! and the keys they rebuild, each stored sealed (`stored_keys.rs`); written
//! last at init, so "initialized" means it exists),
//! `core/keyring` (the barrier keyring sealed by the root key) and, for an
//! auto seal, the root key wrapped by its key: in the seal configuration
//! (`wrapped_root_key`) once a seal migration put it there, so that one
//! write switches seal and wrapping together, else at `core/root-key`. The
//! root key itself is never stored in the clear; what unseals it, and what
//! the shares rebuild, is `stored_keys.rs`.

pub mod barrier;
pub mod edit;
pub mod generate_root;
pub mod lookup;
pub mod migration;
pub mod rekey;
pub mod shamir;
pub mod static_key;
pub mod stored_keys;
pub mod transit;

use std::sync::{Arc, Mutex};

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::storage::layout::{
    INIT_MARKER as INIT_MARKER_PATH, KEYRING as KEYRING_PATH, ROOT_KEY as ROOT_KEY_PATH,
    SEAL_CONFIG as SEAL_CONFIG_PATH,
};
use crate::storage::{Storage, StoreError, blocking};
use barrier::{Barrier, BarrierKeyring, SecretKey};
use static_key::StaticSeal;
use transit::{TransitError, TransitSeal};

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// The caller's input is wrong (400).
    #[error("{0}")]
    Invalid(String),
    /// Storage or the environment failed (500/503); the text goes to the log.
    #[error("{0}")]
    Failed(String),
    /// The auto-unseal key service did not answer; a retry may succeed.
    #[error("{0}")]
    Unavailable(String),
}

pub type SealResult<T> = Result<T, SealError>;

impl From<SealError> for StoreError {
    fn from(e: SealError) -> Self {
        match e {
            SealError::Invalid(m) => Self::Invalid(m),
            SealError::Failed(m) | SealError::Unavailable(m) => Self::Internal(m),
        }
    }
}

impl From<TransitError> for SealError {
    fn from(e: TransitError) -> Self {
        match e {
            TransitError::Unavailable(_) => Self::Unavailable(e.to_string()),
            TransitError::Rejected(_) => Self::Failed(e.to_string()),
        }
    }
}

fn failed(e: impl std::fmt::Display) -> SealError {
    SealError::Failed(e.to_string())
}

/// What `core/seal-config` records.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealConfig {
    #[serde(rename = "type")]
    pub kind: String,
    pub secret_shares: u64,
    pub secret_threshold: u64,
    /// Shamir: the root key sealed by the unseal key the shares rebuild
    /// (base64). Absent in stores from before unseal keys, whose shares
    /// rebuild the root key itself (`stored_keys.rs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stored_root_key: Option<String>,
    /// Auto seals: how many recovery shares, and how many rebuild the key.
    #[serde(default)]
    pub recovery_shares: u64,
    #[serde(default)]
    pub recovery_threshold: u64,
    /// Auto seals: the recovery key sealed by the barrier (base64); absent
    /// when the store has no recovery keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery_key: Option<String>,
    /// Auto seals after a seal migration: the root key wrapped by the seal
    /// (base64), kept here rather than at `core/root-key` so the migration's
    /// one compare-and-swap switches it with the type. Takes precedence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wrapped_root_key: Option<String>,
}

#[derive(Debug)]
pub enum SealKind {
    Shamir,
    Static(StaticSeal),
    /// Shared with the task that renews its token.
    Transit(Arc<TransitSeal>),
}

/// The seal a migration from Shamir unwraps with (no stanza names it).
static SHAMIR: SealKind = SealKind::Shamir;

impl SealKind {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Shamir => "shamir",
            Self::Static(_) => "static",
            Self::Transit(_) => "transit",
        }
    }

    /// An auto seal: the server unseals itself, no shares are handed out.
    pub fn is_auto(&self) -> bool {
        !matches!(self, Self::Shamir)
    }

    /// The root key wrapped by this auto seal (as stored).
    fn wrap(&self, root: &SecretKey) -> SealResult<Vec<u8>> {
        match self {
            Self::Shamir => Err(failed("Shamir does not wrap the root key")),
            Self::Static(seal) => seal.wrap(root).map_err(failed),
            Self::Transit(seal) => Ok(seal.wrap(root)?),
        }
    }

    /// The root key from its stored wrapping by this auto seal, and the
    /// wrapping to store instead when an older key made it.
    fn unwrap(&self, stored: &[u8]) -> SealResult<(SecretKey, Option<Vec<u8>>)> {
        match self {
            Self::Shamir => Err(SealError::Invalid(
                "no auto-unseal is configured".to_owned(),
            )),
            Self::Static(seal) => {
                let (root, by_previous) = seal.unwrap(stored).map_err(SealError::Failed)?;
                let rewrapped = by_previous
                    .then(|| seal.wrap(&root))
                    .transpose()
                    .map_err(failed)?;
                Ok((root, rewrapped))
            }
            Self::Transit(seal) => Ok(seal.unwrap(stored)?),
        }
    }
}

/// `core/seal-config`, if the storage is initialized. Blocking.
pub fn read_config(storage: &dyn Storage) -> SealResult<Option<SealConfig>> {
    let Some(raw) = blocking(|| storage.get(SEAL_CONFIG_PATH)).map_err(failed)? else {
        return Ok(None);
    };
    serde_json::from_slice(&raw)
        .map(Some)
        .map_err(|e| failed(format!("{SEAL_CONFIG_PATH} is unreadable: {e}")))
}

/// `core/seal-config` and its stored bytes (to compare-and-swap on). Blocking.
pub fn read_config_raw(storage: &dyn Storage) -> SealResult<(SealConfig, Vec<u8>)> {
    let raw = blocking(|| storage.get(SEAL_CONFIG_PATH))
        .map_err(failed)?
        .ok_or_else(|| SealError::Invalid("server is not yet initialized".to_owned()))?;
    let config = serde_json::from_slice(&raw)
        .map_err(|e| failed(format!("{SEAL_CONFIG_PATH} is unreadable: {e}")))?;
    Ok((config, raw))
}

/// Replace the seal configuration read as `before` by `after`, in one
/// compare-and-swap: the switch of shares (rekey) is this one write, so a
/// crash leaves the old configuration or the new one. Blocking.
pub fn replace_config(storage: &dyn Storage, before: &[u8], after: &SealConfig) -> SealResult<()> {
    let raw = serde_json::to_vec(after).map_err(failed)?;
    let swapped = blocking(|| storage.compare_and_swap(SEAL_CONFIG_PATH, Some(before), Some(&raw)))
        .map_err(failed)?;
    if !swapped {
        return Err(SealError::Invalid(
            "the seal configuration changed meanwhile (a rekey on another node?); start again"
                .to_owned(),
        ));
    }
    Ok(())
}

/// Shares entered so far for the unseal in progress.
#[derive(Debug, Default)]
struct Progress {
    shares: Vec<Zeroizing<Vec<u8>>>,
    nonce: String,
}

/// The outcome of `sys/init`: the shares are shown once and never stored.
#[derive(Debug)]
pub struct Initialized {
    pub shares: Vec<Zeroizing<Vec<u8>>>,
    pub recovery_shares: Vec<Zeroizing<Vec<u8>>>,
    pub barrier: Barrier,
    /// What [`Seal::commit_init`] writes.
    pub config: SealConfig,
}

/// How many shares of which key `sys/init` makes: unseal shares for Shamir,
/// recovery shares (optional, zero for none) for auto seals.
#[derive(Clone, Copy, Debug, Default)]
pub struct InitParams {
    pub secret_shares: u64,
    pub secret_threshold: u64,
    pub recovery_shares: u64,
    pub recovery_threshold: u64,
}

impl InitParams {
    /// Unseal shares only (Shamir).
    pub fn shares(secret_shares: u64, secret_threshold: u64) -> Self {
        Self {
            secret_shares,
            secret_threshold,
            ..Self::default()
        }
    }
}

#[derive(Debug)]
pub struct Seal {
    storage: Arc<dyn Storage>,
    kind: SealKind,
    /// The seal stanza marked `disabled`: what a migration moves away from.
    old: Option<SealKind>,
    progress: Mutex<Progress>,
    /// The init marker this process wrote, until its init is committed.
    claimed: Mutex<Option<Vec<u8>>>,
}

/// An init marker older than this on shared storage was left by a crash:
/// nobody's init takes that long.
const STALE_INIT_SECS: i64 = 120;

impl Seal {
    pub fn new(storage: Arc<dyn Storage>, kind: SealKind) -> Self {
        Self {
            storage,
            kind,
            old: None,
            progress: Mutex::default(),
            claimed: Mutex::default(),
        }
    }

    /// The same seal with `old` (the stanza marked `disabled`) to migrate from.
    pub fn with_old_seal(mut self, old: Option<SealKind>) -> Self {
        self.old = old;
        self
    }

    pub fn kind(&self) -> &SealKind {
        &self.kind
    }

    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.storage
    }

    pub fn config(&self) -> SealResult<Option<SealConfig>> {
        read_config(self.storage.as_ref())
    }

    /// Create the root key and barrier keyring. With Shamir the root key is
    /// stored sealed by an unseal key that is split and forgotten; with an
    /// auto seal it is stored wrapped, and a recovery key may be split.
    pub fn initialize(&self, params: InitParams) -> SealResult<Initialized> {
        // OpenBao checks the parameters first, even when already initialized.
        let shamir_seal = matches!(self.kind, SealKind::Shamir);
        if shamir_seal {
            shamir::check_params(params.secret_shares, params.secret_threshold)
                .map_err(SealError::Invalid)?;
        } else if params.recovery_shares > 0 || params.recovery_threshold > 0 {
            shamir::check_params(params.recovery_shares, params.recovery_threshold).map_err(
                |e| {
                    SealError::Invalid(e.replace(
                        "invalid seal configuration",
                        "invalid recovery configuration",
                    ))
                },
            )?;
        }
        if self.config()?.is_some() {
            return Err(SealError::Invalid(
                "Vault is already initialized".to_owned(),
            ));
        }
        self.claim_init()?;
        let root = SecretKey::random().map_err(failed)?;
        let keyring = BarrierKeyring::generate().map_err(failed)?;
        let sealed_keyring = keyring.seal(&root).map_err(failed)?;
        if self.kind.is_auto() {
            let wrapped = self.kind.wrap(&root)?;
            blocking(|| self.storage.put(ROOT_KEY_PATH, &wrapped)).map_err(failed)?;
        }
        blocking(|| self.storage.put(KEYRING_PATH, &sealed_keyring)).map_err(failed)?;
        let barrier = Barrier::new(Arc::clone(&self.storage), root, keyring);
        let bare = SealConfig {
            kind: self.kind.name().to_owned(),
            secret_shares: 0,
            secret_threshold: 0,
            stored_root_key: None,
            recovery_shares: 0,
            recovery_threshold: 0,
            recovery_key: None,
            wrapped_root_key: None,
        };
        let (config, shares, recovery_shares) = if shamir_seal {
            let (n, t) = (params.secret_shares, params.secret_threshold);
            let unseal = stored_keys::new_key(n, t)?;
            let config = stored_keys::with_unseal_key(&bare, &barrier, &unseal.key, n, t)?;
            (config, unseal.shares, Vec::new())
        } else if params.recovery_shares > 0 {
            let (n, t) = (params.recovery_shares, params.recovery_threshold);
            let recovery = stored_keys::new_key(n, t)?;
            let config = stored_keys::with_recovery_key(&bare, &barrier, &recovery.key, n, t)?;
            (config, Vec::new(), recovery.shares)
        } else {
            (bare, Vec::new(), Vec::new())
        };
        self.reset();
        Ok(Initialized {
            shares,
            recovery_shares,
            barrier,
            config,
        })
    }

    /// Mark initialization complete: from here on the server is initialized.
    /// Called after the caller has written its own first entries.
    pub fn commit_init(&self, config: &SealConfig) -> SealResult<()> {
        let raw = serde_json::to_vec(config).map_err(failed)?;
        let marker = self
            .claimed
            .lock()
            .map_err(failed)?
            .take()
            .ok_or_else(|| failed("no initialization in progress here"))?;
        // Only if our claim still stands: nobody took over a stalled init of ours.
        let ours = blocking(|| {
            self.storage
                .compare_and_swap(INIT_MARKER_PATH, Some(&marker), Some(&marker))
        })
        .map_err(failed)?;
        let committed = ours
            && blocking(|| {
                self.storage
                    .compare_and_swap(SEAL_CONFIG_PATH, None, Some(&raw))
            })
            .map_err(failed)?;
        if !committed {
            return Err(SealError::Invalid(
                "another node initialized the storage meanwhile".to_owned(),
            ));
        }
        blocking(|| {
            self.storage
                .compare_and_swap(INIT_MARKER_PATH, Some(&marker), None)
        })
        .map_err(failed)
        .map(|_| ())
    }

    /// Take the right to initialize: write the init marker (`<unix time>
    /// <random>`) where there is none, by compare-and-swap, so two nodes
    /// initializing one shared storage at once cannot both go on (the second
    /// is told to wait for the first). A marker without a seal configuration
    /// is an init that stopped half way: on storage nobody else uses, or once
    /// it is [`STALE_INIT_SECS`] old, its leftovers are removed and it is
    /// taken over.
    fn claim_init(&self) -> SealResult<()> {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let mut nonce = [0u8; 16];
        transit_keys::secret::fill_random(&mut nonce).map_err(|_| failed("random failed"))?;
        let marker = format!("{now} {}", hex::encode(nonce)).into_bytes();
        let current = blocking(|| self.storage.get(INIT_MARKER_PATH)).map_err(failed)?;
        if let Some(existing) = &current {
            let started = std::str::from_utf8(existing)
                .ok()
                .and_then(|m| m.split(' ').next()?.parse::<i64>().ok())
                .unwrap_or(0);
            if self.storage.is_shared() && now.saturating_sub(started) < STALE_INIT_SECS {
                return Err(SealError::Invalid(
                    "another node is initializing this storage; try again in a moment".to_owned(),
                ));
            }
        }
        let claimed = blocking(|| {
            self.storage
                .compare_and_swap(INIT_MARKER_PATH, current.as_deref(), Some(&marker))
        })
        .map_err(failed)?;
        if !claimed {
            return Err(SealError::Invalid(
                "another node is initializing this storage; try again in a moment".to_owned(),
            ));
        }
        let cleared = match self.config() {
            // Another node committed between our check and our claim.
            Ok(Some(_)) => Err(SealError::Invalid(
                "Vault is already initialized".to_owned(),
            )),
            Ok(None) => self.clear_unfinished_init(current.is_some()),
            Err(e) => Err(e),
        };
        if let Err(e) = cleared {
            let _ = blocking(|| {
                self.storage
                    .compare_and_swap(INIT_MARKER_PATH, Some(&marker), current.as_deref())
            });
            return Err(e);
        }
        *self.claimed.lock().map_err(failed)? = Some(marker);
        Ok(())
    }

    /// An init that stopped half way (crash, storage error) left entries under
    /// a keyring nobody has; they are removed before trying again. Entries
    /// without that marker and without a seal configuration are not ours to
    /// delete: refuse.
    fn clear_unfinished_init(&self, had_marker: bool) -> SealResult<()> {
        let paths: Vec<String> = blocking(|| self.storage.list(""))
            .map_err(failed)?
            .into_iter()
            .filter(|p| p != INIT_MARKER_PATH)
            .collect();
        if paths.is_empty() {
            return Ok(());
        }
        if !had_marker {
            return Err(SealError::Invalid(
                "storage is not empty but holds no seal configuration; refusing to initialize \
                 over it (point the server at an empty database)"
                    .to_owned(),
            ));
        }
        tracing::warn!(
            entries = paths.len(),
            "removing the leftovers of an unfinished init"
        );
        for path in paths {
            blocking(|| self.storage.delete(&path)).map_err(failed)?;
        }
        Ok(())
    }

    /// Where the stored seal stands against the configured seals; `None`
    /// before init. An impossible combination is an error (refuse to start).
    pub fn migration_phase(&self) -> SealResult<Option<migration::Phase>> {
        self.config()?
            .map(|stored| migration::phase(&stored, &self.kind, self.old.as_ref()))
            .transpose()
    }

    /// Take one unseal share (with `migrate`, one share of the seal being
    /// migrated away from). `Ok(None)`: more are needed; `Ok(Some)`: the
    /// threshold was met and the barrier opened (and, migrating, the seal
    /// switched).
    pub fn submit_share(&self, key: &str, migrate: bool) -> SealResult<Option<Barrier>> {
        let (config, raw) = match blocking(|| self.storage.get(SEAL_CONFIG_PATH)).map_err(failed)? {
            Some(raw) => (
                serde_json::from_slice::<SealConfig>(&raw)
                    .map_err(|e| failed(format!("{SEAL_CONFIG_PATH} is unreadable: {e}")))?,
                raw,
            ),
            None => return Err(SealError::Invalid("Vault is not initialized".to_owned())),
        };
        let phase = migration::phase(&config, &self.kind, self.old.as_ref())?;
        let threshold = migration::unseal_threshold(&config, &self.kind, phase, migrate)?;
        let share = decode_share(key)?;
        let mut progress = self
            .progress
            .lock()
            .map_err(|_| failed("unseal lock poisoned"))?;
        if progress
            .shares
            .iter()
            .any(|s| s.as_slice() == share.as_slice())
        {
            // Vault ignores a share it already has.
            return Ok(None);
        }
        if progress.shares.is_empty() {
            progress.nonce = uuid::Uuid::new_v4().to_string();
        }
        progress.shares.push(share);
        if (progress.shares.len() as u64) < threshold {
            return Ok(None);
        }
        let shares = std::mem::take(&mut progress.shares);
        progress.nonce.clear();
        drop(progress);
        // Whatever goes wrong from here, the attempt is over (progress was taken).
        let combined = combine_shares(&shares, threshold)?;
        match phase {
            migration::Phase::Pending => {
                let from = self.old.as_ref().unwrap_or(&SHAMIR);
                self.migrate(from, &config, &raw, combined).map(Some)
            }
            _ if self.kind.is_auto() => {
                // A migration finished with its stanza still configured: as
                // OpenBao, the recovery shares unseal (the seal unwraps).
                let (root, _) = self.kind.unwrap(&self.wrapped_root_key(&config)?)?;
                let barrier = self.open_barrier(root)?;
                if !stored_keys::authorizes(&config, &barrier, combined)? {
                    return Err(wrong_key());
                }
                self.remove_stale_root_key(&config);
                Ok(Some(barrier))
            }
            _ => {
                let root = stored_keys::root_key(&config, combined)?;
                let barrier = self.open_barrier(root)?;
                self.remove_stale_root_key(&config);
                Ok(Some(barrier))
            }
        }
    }

    /// The root key as the configured auto seal wrapped it.
    fn wrapped_root_key(&self, config: &SealConfig) -> SealResult<Vec<u8>> {
        match &config.wrapped_root_key {
            Some(b64) => base64::engine::general_purpose::STANDARD
                .decode(b64)
                .map_err(|e| failed(format!("the wrapped root key is unreadable: {e}"))),
            None => blocking(|| self.storage.get(ROOT_KEY_PATH))
                .map_err(failed)?
                .ok_or_else(|| failed("the stored root key is missing")),
        }
    }

    /// Auto-unseal with the static key or the transit seal. A root key
    /// wrapped by an older key is stored rewrapped by the current one, once
    /// it has opened the barrier.
    pub fn auto_unseal(&self) -> SealResult<Barrier> {
        if !self.kind.is_auto() {
            return Err(SealError::Invalid(
                "no auto-unseal is configured".to_owned(),
            ));
        }
        let (config, raw) = read_config_raw(self.storage.as_ref())?;
        let (root, rewrapped) = self.kind.unwrap(&self.wrapped_root_key(&config)?)?;
        let barrier = self.open_barrier(root)?;
        self.remove_stale_root_key(&config);
        if let Some(rewrapped) = rewrapped {
            if config.wrapped_root_key.is_some() {
                let after = SealConfig {
                    wrapped_root_key: Some(
                        base64::engine::general_purpose::STANDARD.encode(&rewrapped),
                    ),
                    ..config
                };
                // Lost to another node's write: that node rewrapped it, or will.
                if let Err(e) = replace_config(self.storage.as_ref(), &raw, &after) {
                    tracing::warn!(error = %e, "root key not rewrapped this time");
                    return Ok(barrier);
                }
            } else {
                blocking(|| self.storage.put(ROOT_KEY_PATH, &rewrapped)).map_err(failed)?;
            }
            tracing::info!(
                seal = self.kind.name(),
                "root key rewrapped with the current seal key"
            );
        }
        Ok(barrier)
    }

    fn open_barrier(&self, root: SecretKey) -> SealResult<Barrier> {
        let sealed = blocking(|| self.storage.get(KEYRING_PATH))
            .map_err(failed)?
            .ok_or_else(|| failed("the barrier keyring is missing from storage"))?;
        let keyring = match BarrierKeyring::open(&root, &sealed) {
            Ok(k) => k,
            Err(barrier::BarrierError::Open(_)) => return Err(wrong_key()),
            Err(e) => return Err(failed(e)),
        };
        Ok(Barrier::new(Arc::clone(&self.storage), root, keyring))
    }

    /// Forget the shares entered so far.
    pub fn reset(&self) {
        if let Ok(mut p) = self.progress.lock() {
            *p = Progress::default();
        }
    }

    /// (shares entered, nonce of this unseal attempt)
    pub fn progress(&self) -> (usize, String) {
        self.progress
            .lock()
            .map(|p| (p.shares.len(), p.nonce.clone()))
            .unwrap_or_default()
    }
}

/// The key `shares` rebuild; the error text says why not.
fn combine_shares(shares: &[Zeroizing<Vec<u8>>], threshold: u64) -> SealResult<SecretKey> {
    let combined = if shares.iter().any(|s| s.len() != shares[0].len()) {
        Err("all parts must be the same length".to_owned())
    } else {
        shamir::combine(shares, threshold)
    };
    let root = combined.map_err(|e| {
        SealError::Invalid(format!("invalid key: failed to compute combined key: {e}"))
    })?;
    SecretKey::from_slice(&root).ok_or_else(wrong_key)
}

fn wrong_key() -> SealError {
    SealError::Invalid(
        "unable to retrieve stored keys: invalid key: failed to decrypt keys from storage"
            .to_owned(),
    )
}

/// Vault takes a share in hex or base64, 16 to 33 bytes.
fn decode_share(key: &str) -> SealResult<Zeroizing<Vec<u8>>> {
    let key = key.trim();
    let bytes = hex::decode(key)
        .ok()
        .or_else(|| base64::engine::general_purpose::STANDARD.decode(key).ok())
        .map(Zeroizing::new)
        .ok_or_else(|| {
            SealError::Invalid("'key' must be a valid hex or base64 string".to_owned())
        })?;
    if bytes.len() < 16 {
        return Err(SealError::Invalid(
            "invalid key: key is shorter than minimum 16 bytes".to_owned(),
        ));
    }
    if bytes.len() > barrier::KEY_LEN + 1 {
        return Err(SealError::Invalid(
            "invalid key: key is longer than maximum 33 bytes".to_owned(),
        ));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::MemoryStorage;

    fn params(secret_shares: u64, secret_threshold: u64) -> InitParams {
        InitParams::shares(secret_shares, secret_threshold)
    }

    fn shamir() -> Seal {
        Seal::new(Arc::new(MemoryStorage::new()), SealKind::Shamir)
    }

    #[test]
    fn init_then_unseal_with_threshold_shares() {
        let seal = shamir();
        let init = seal.initialize(params(5, 3)).unwrap();
        seal.commit_init(&init.config).unwrap();
        init.barrier.put("x", b"v").unwrap();
        assert!(matches!(
            seal.initialize(params(1, 1)),
            Err(SealError::Invalid(_))
        ));
        let hexes: Vec<String> = init.shares.iter().map(hex::encode).collect();
        assert!(seal.submit_share(&hexes[4], false).unwrap().is_none());
        assert!(
            seal.submit_share(&hexes[4], false).unwrap().is_none(),
            "duplicate ignored"
        );
        assert_eq!(seal.progress().0, 1);
        let b64 = base64::engine::general_purpose::STANDARD.encode(&init.shares[1]);
        assert!(seal.submit_share(&b64, false).unwrap().is_none());
        let barrier = seal.submit_share(&hexes[2], false).unwrap().unwrap();
        assert_eq!(barrier.get("x").unwrap().unwrap().as_slice(), b"v");
        assert_eq!(seal.progress().0, 0);
    }

    #[test]
    fn wrong_shares_fail_and_reset_progress() {
        let seal = shamir();
        let init = seal.initialize(params(3, 2)).unwrap();
        seal.commit_init(&init.config).unwrap();
        let other = shamir().initialize(params(3, 2)).unwrap();
        seal.submit_share(&hex::encode(&init.shares[0]), false)
            .unwrap();
        let err = seal
            .submit_share(&hex::encode(&other.shares[1]), false)
            .unwrap_err();
        assert!(matches!(err, SealError::Invalid(_)));
        assert_eq!(seal.progress().0, 0);
        assert!(seal.submit_share("zzz", false).is_err());
        assert!(seal.submit_share(&hex::encode([1u8; 40]), false).is_err());
    }

    #[test]
    fn two_nodes_initializing_shared_storage_at_once_cannot_both_succeed() {
        let storage: Arc<dyn Storage> = Arc::new(MemoryStorage::shared());
        let a = Seal::new(Arc::clone(&storage), SealKind::Shamir);
        let b = Seal::new(Arc::clone(&storage), SealKind::Shamir);
        let init_a = a.initialize(params(1, 1)).unwrap();
        init_a.barrier.put("core/lookup-key", b"a's entry").unwrap();
        // B arrives while A is half way: refused, A's entries untouched.
        let err = b.initialize(params(1, 1)).unwrap_err();
        assert!(
            err.to_string().contains("another node is initializing"),
            "{err}"
        );
        assert!(storage.get("core/lookup-key").unwrap().is_some());
        a.commit_init(&init_a.config).unwrap();
        assert!(storage.get(INIT_MARKER_PATH).unwrap().is_none());
        let err = b.initialize(params(1, 1)).unwrap_err();
        assert!(err.to_string().contains("already initialized"), "{err}");
        // A's shares open what is stored.
        a.submit_share(&hex::encode(&init_a.shares[0]), false)
            .unwrap()
            .unwrap();

        // A stale marker (a crash long ago) is taken over.
        let storage: Arc<dyn Storage> = Arc::new(MemoryStorage::shared());
        storage.put(INIT_MARKER_PATH, b"1000 00").unwrap();
        storage.put("core/keyring", b"leftover").unwrap();
        let c = Seal::new(Arc::clone(&storage), SealKind::Shamir);
        let init_c = c.initialize(params(1, 1)).unwrap();
        c.commit_init(&init_c.config).unwrap();
        c.submit_share(&hex::encode(&init_c.shares[0]), false)
            .unwrap()
            .unwrap();
        // An init whose claim was taken over cannot commit.
        let storage: Arc<dyn Storage> = Arc::new(MemoryStorage::shared());
        let d = Seal::new(Arc::clone(&storage), SealKind::Shamir);
        let init_d = d.initialize(params(1, 1)).unwrap();
        storage.put(INIT_MARKER_PATH, b"someone else").unwrap();
        assert!(d.commit_init(&init_d.config).is_err());
        assert!(storage.get(SEAL_CONFIG_PATH).unwrap().is_none());
    }

    #[test]
    fn an_unfinished_init_is_cleaned_up_and_foreign_data_refused() {
        let storage: Arc<dyn Storage> = Arc::new(MemoryStorage::new());
        let seal = Seal::new(Arc::clone(&storage), SealKind::Shamir);
        // Crash before commit: entries and the marker, no seal config.
        let init = seal.initialize(params(1, 1)).unwrap();
        init.barrier.put("auth/token/id/x", b"orphaned").unwrap();
        let again = seal.initialize(params(1, 1)).unwrap();
        assert!(storage.get("auth/token/id/x").unwrap().is_none());
        seal.commit_init(&again.config).unwrap();
        assert!(storage.get(INIT_MARKER_PATH).unwrap().is_none());
        drop(again);

        let foreign: Arc<dyn Storage> = Arc::new(MemoryStorage::new());
        foreign.put("logical/something", b"x").unwrap();
        let seal = Seal::new(Arc::clone(&foreign), SealKind::Shamir);
        assert!(matches!(
            seal.initialize(params(1, 1)),
            Err(SealError::Invalid(_))
        ));
        assert!(foreign.get("logical/something").unwrap().is_some());
    }

    #[test]
    fn not_initialized_and_reset() {
        let seal = shamir();
        assert!(seal.submit_share(&hex::encode([1u8; 33]), false).is_err());
        let init = seal.initialize(params(3, 2)).unwrap();
        seal.commit_init(&init.config).unwrap();
        seal.submit_share(&hex::encode(&init.shares[0]), false)
            .unwrap();
        seal.reset();
        assert_eq!(seal.progress().0, 0);
    }

    #[test]
    fn static_seal_unseals_itself_and_refuses_shares() {
        let storage: Arc<dyn Storage> = Arc::new(MemoryStorage::new());
        let key = hex::encode([3u8; 32]);
        let kind = || SealKind::Static(StaticSeal::from_config("k1", &key, None, None).unwrap());
        let seal = Seal::new(Arc::clone(&storage), kind());
        let init = seal.initialize(params(5, 3)).unwrap();
        assert!(init.shares.is_empty());
        seal.commit_init(&init.config).unwrap();
        init.barrier.put("x", b"v").unwrap();
        let again = Seal::new(Arc::clone(&storage), kind());
        let barrier = again.auto_unseal().unwrap();
        assert_eq!(barrier.get("x").unwrap().unwrap().as_slice(), b"v");
        assert!(again.submit_share(&hex::encode([1u8; 33]), false).is_err());
        let shamir_view = Seal::new(storage, SealKind::Shamir);
        assert!(shamir_view.migration_phase().is_err());
    }
}
