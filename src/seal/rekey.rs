//! Rekey (`sys/rekey/*`, `sys/rekey-recovery-key/*`), as in Vault: an
//! attempt names the new share counts; a threshold of the current shares
//! (unseal shares, or recovery shares) is entered in memory on this node;
//! then a new key is split and, at once or after a threshold of the new
//! shares is entered back (`require_verification`), made current by one
//! compare-and-swap of `core/seal-config` (`stored_keys.rs` says what is
//! stored). The root key never changes: cluster nodes keep theirs.
//! Shares are zeroized when the attempt ends.

use std::sync::Mutex;

use subtle::ConstantTimeEq as _;
use zeroize::Zeroizing;

use super::barrier::{Barrier, SecretKey};
use super::stored_keys::{self, NewKey};
use super::{SealConfig, replace_config, shamir};
use super::{SealError, SealResult, combine_shares, decode_share, failed, read_config_raw};

/// Which shares an attempt replaces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// The unseal shares (`sys/rekey/*`; Shamir only).
    Unseal,
    /// The recovery shares (`sys/rekey-recovery-key/*`; auto seals only).
    Recovery,
}

/// What `init` asks for.
#[derive(Clone, Copy, Debug)]
pub struct Request {
    pub shares: u64,
    pub threshold: u64,
    pub require_verification: bool,
}

/// A new key waiting for a threshold of its shares to be entered back.
struct Pending {
    nonce: String,
    key: NewKey,
    progress: Vec<Zeroizing<Vec<u8>>>,
}

struct Attempt {
    nonce: String,
    request: Request,
    progress: Vec<Zeroizing<Vec<u8>>>,
    pending: Option<Pending>,
}

/// `sys/rekey/init`'s view of the attempt.
#[derive(Clone, Debug, Default)]
pub struct Status {
    pub nonce: String,
    pub started: bool,
    pub shares: u64,
    pub threshold: u64,
    pub progress: usize,
    pub verification_required: bool,
    pub verification_nonce: Option<String>,
}

/// `sys/rekey/verify`'s view of the attempt.
#[derive(Clone, Debug, Default)]
pub struct VerifyStatus {
    pub nonce: String,
    pub started: bool,
    pub shares: u64,
    pub threshold: u64,
    pub progress: usize,
}

/// The new shares, shown once.
#[derive(Debug)]
pub struct Completed {
    pub shares: Vec<Zeroizing<Vec<u8>>>,
    /// Set when the shares take effect only once verified.
    pub verification_nonce: Option<String>,
}

/// This node's rekey attempt for one target.
pub struct Rekey {
    target: Target,
    attempt: Mutex<Option<Attempt>>,
}

impl std::fmt::Debug for Rekey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Rekey({:?})", self.target)
    }
}

fn nonce() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn attempt_lock() -> SealError {
    failed("rekey lock poisoned")
}

impl Rekey {
    pub fn new(target: Target) -> Self {
        Self {
            target,
            attempt: Mutex::new(None),
        }
    }

    /// Whether this store has the shares this target replaces (Vault's 400s).
    fn check_target(&self, config: &SealConfig) -> SealResult<()> {
        let shamir_seal = stored_keys::is_shamir(config);
        match self.target {
            Target::Recovery if shamir_seal => Err(SealError::Invalid(
                "recovery rekeying not supported".to_owned(),
            )),
            // Vault would rotate the root key under recovery keys; here the
            // root key stays (cluster nodes hold it), and an auto seal has no
            // unseal shares to replace.
            Target::Unseal if !shamir_seal => Err(SealError::Invalid(format!(
                "the {} seal unseals without shares, so there are none to rekey; \
                 rekey its recovery keys with sys/rekey-recovery-key",
                config.kind
            ))),
            _ => Ok(()),
        }
    }

    /// The threshold of the shares this attempt takes.
    pub fn required(&self, config: &SealConfig) -> SealResult<u64> {
        self.check_target(config)?;
        stored_keys::authorizing_threshold(config)
    }

    pub fn status(&self) -> SealResult<Status> {
        let guard = self.attempt.lock().map_err(|_| attempt_lock())?;
        Ok(guard.as_ref().map_or_else(Status::default, |a| Status {
            nonce: a.nonce.clone(),
            started: true,
            shares: a.request.shares,
            threshold: a.request.threshold,
            progress: a.progress.len(),
            verification_required: a.request.require_verification,
            verification_nonce: a.pending.as_ref().map(|p| p.nonce.clone()),
        }))
    }

    /// `PUT init`: start an attempt (one at a time).
    pub fn start(&self, config: &SealConfig, request: Request) -> SealResult<()> {
        self.required(config)?;
        shamir::check_params(request.shares, request.threshold).map_err(|e| {
            let what = match self.target {
                Target::Unseal => "invalid rekey seal configuration",
                Target::Recovery => "invalid recovery configuration",
            };
            let problem = e.trim_start_matches("invalid seal configuration: ");
            SealError::Invalid(format!("{what}: {problem}"))
        })?;
        let mut guard = self.attempt.lock().map_err(|_| attempt_lock())?;
        if guard.is_some() {
            return Err(SealError::Invalid("rekey already in progress".to_owned()));
        }
        *guard = Some(Attempt {
            nonce: nonce(),
            request,
            progress: Vec::new(),
            pending: None,
        });
        tracing::info!(target_shares = ?self.target, shares = request.shares,
            threshold = request.threshold, verification = request.require_verification,
            "rekey initialized");
        Ok(())
    }

    /// `DELETE init`: end the attempt, whatever its stage.
    pub fn cancel(&self) {
        if let Ok(mut guard) = self.attempt.lock() {
            *guard = None;
        }
    }

    /// `PUT update`: one current share. At the threshold the shares must
    /// prove authority; then new shares are made and, without verification,
    /// made current. `Ok(None)`: more are needed.
    pub fn update(
        &self,
        barrier: &Barrier,
        key: &str,
        nonce: &str,
    ) -> SealResult<Option<Completed>> {
        let share = decode_share(key)?;
        let (config, raw) = read_config_raw(barrier.storage().as_ref())?;
        let required = self.required(&config)?;
        let mut guard = self.attempt.lock().map_err(|_| attempt_lock())?;
        let no_attempt = match self.target {
            Target::Unseal => "no barrier rekey in progress",
            Target::Recovery => "no recovery rekey in progress",
        };
        let attempt = guard
            .as_mut()
            .ok_or_else(|| SealError::Invalid(no_attempt.to_owned()))?;
        if let Some(pending) = &attempt.pending {
            return Err(SealError::Invalid(format!(
                "rekey operation already finished; verification must be performed; \
                 nonce for the verification operation is {:?}",
                pending.nonce
            )));
        }
        if attempt.nonce != nonce {
            return Err(SealError::Invalid(format!(
                "incorrect nonce supplied; nonce for this rekey operation is {:?}",
                attempt.nonce
            )));
        }
        if attempt.progress.iter().any(|s| bool::from(s.ct_eq(&share))) {
            // Vault's words differ by target.
            let operation = match self.target {
                Target::Unseal => "generation",
                Target::Recovery => "rekey",
            };
            return Err(SealError::Invalid(format!(
                "given key has already been provided during this {operation} operation"
            )));
        }
        attempt.progress.push(share);
        if (attempt.progress.len() as u64) < required {
            return Ok(None);
        }
        // Whatever happens next, these shares are spent (as in Vault).
        let shares = std::mem::take(&mut attempt.progress);
        let combined = combine_shares(&shares, required)?;
        if !stored_keys::authorizes(&config, barrier, combined)? {
            return Err(SealError::Invalid(match self.target {
                Target::Unseal => "root key verification failed: the shares do not unseal this store",
                Target::Recovery => "recovery key verification failed: the shares do not rebuild the recovery key",
            }.to_owned()));
        }
        let request = attempt.request;
        let new = stored_keys::new_key(request.shares, request.threshold)?;
        let shown: Vec<_> = new.shares.clone();
        if request.require_verification {
            let verification_nonce = self::nonce();
            attempt.pending = Some(Pending {
                nonce: verification_nonce.clone(),
                key: new,
                progress: Vec::new(),
            });
            return Ok(Some(Completed {
                shares: shown,
                verification_nonce: Some(verification_nonce),
            }));
        }
        self.commit(barrier, &config, &raw, &new, request)?;
        *guard = None;
        Ok(Some(Completed {
            shares: shown,
            verification_nonce: None,
        }))
    }

    /// Make `new` the current key: one compare-and-swap of the seal config.
    fn commit(
        &self,
        barrier: &Barrier,
        config: &SealConfig,
        raw: &[u8],
        new: &NewKey,
        request: Request,
    ) -> SealResult<()> {
        let (n, t) = (request.shares, request.threshold);
        let after = match self.target {
            Target::Unseal => stored_keys::with_unseal_key(config, barrier, &new.key, n, t)?,
            Target::Recovery => stored_keys::with_recovery_key(config, barrier, &new.key, n, t)?,
        };
        crate::crash_point::here("rekey-before-commit");
        replace_config(barrier.storage().as_ref(), raw, &after)?;
        crate::crash_point::here("rekey-after-commit");
        tracing::info!(target_shares = ?self.target, shares = n, threshold = t, "rekey completed");
        Ok(())
    }

    pub fn verify_status(&self) -> SealResult<VerifyStatus> {
        let guard = self.attempt.lock().map_err(|_| attempt_lock())?;
        let attempt = guard
            .as_ref()
            .ok_or_else(|| SealError::Invalid("no rekey configuration found".to_owned()))?;
        Ok(VerifyStatus {
            nonce: attempt
                .pending
                .as_ref()
                .map(|p| p.nonce.clone())
                .unwrap_or_default(),
            started: attempt.pending.is_some(),
            shares: attempt.request.shares,
            threshold: attempt.request.threshold,
            progress: attempt.pending.as_ref().map_or(0, |p| p.progress.len()),
        })
    }

    /// `DELETE verify`: forget the new shares entered so far; a new nonce.
    pub fn restart_verification(&self) {
        if let Ok(mut guard) = self.attempt.lock()
            && let Some(pending) = guard.as_mut().and_then(|a| a.pending.as_mut())
        {
            pending.progress.clear();
            pending.nonce = nonce();
        }
    }

    /// `PUT verify`: one new share. At the threshold, if they rebuild the
    /// new key, it is made current; `Ok(Some(nonce))` then. A wrong
    /// combination starts verification over with a new nonce, as in Vault.
    pub fn verify(&self, barrier: &Barrier, key: &str, nonce: &str) -> SealResult<Option<String>> {
        let share = decode_share(key)?;
        let (config, raw) = read_config_raw(barrier.storage().as_ref())?;
        let mut guard = self.attempt.lock().map_err(|_| attempt_lock())?;
        let attempt = guard
            .as_mut()
            .ok_or_else(|| SealError::Invalid("no rekey in progress".to_owned()))?;
        let request = attempt.request;
        let pending = attempt
            .pending
            .as_mut()
            .ok_or_else(|| SealError::Invalid("no rekey verification in progress".to_owned()))?;
        if pending.nonce != nonce {
            return Err(SealError::Invalid(format!(
                "incorrect nonce supplied; nonce for this verify operation is {:?}",
                pending.nonce
            )));
        }
        if pending.progress.iter().any(|s| bool::from(s.ct_eq(&share))) {
            return Err(SealError::Invalid(
                "given key has already been provided during this verify operation".to_owned(),
            ));
        }
        pending.progress.push(share);
        if (pending.progress.len() as u64) < request.threshold {
            return Ok(None);
        }
        let shares = std::mem::take(&mut pending.progress);
        let combined: SealResult<SecretKey> = combine_shares(&shares, request.threshold);
        let matches = combined
            .map(|c| bool::from(c.expose().ct_eq(pending.key.key.expose())))
            .unwrap_or(false);
        if !matches {
            pending.nonce = self::nonce();
            return Err(SealError::Invalid(
                "rekey verification failed; incorrect key shares supplied".to_owned(),
            ));
        }
        let done_nonce = pending.nonce.clone();
        self.commit(barrier, &config, &raw, &pending.key, request)?;
        *guard = None;
        Ok(Some(done_nonce))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::seal::barrier::BarrierKeyring;
    use crate::seal::{Seal, SealKind};
    use crate::storage::layout::{KEYRING, SEAL_CONFIG};
    use crate::storage::{MemoryStorage, Storage};

    /// A store as transitd wrote it before unseal keys: the 1-of-1 share is
    /// the root key and `core/seal-config` has no stored root key.
    fn legacy_store() -> (Arc<dyn Storage>, String) {
        let storage: Arc<dyn Storage> = Arc::new(MemoryStorage::new());
        let root = SecretKey::random().unwrap();
        let sealed = BarrierKeyring::generate().unwrap().seal(&root).unwrap();
        storage.put(KEYRING, &sealed).unwrap();
        let legacy = br#"{"type":"shamir","secret_shares":1,"secret_threshold":1}"#;
        storage.put(SEAL_CONFIG, legacy).unwrap();
        (storage, hex::encode(root.expose()))
    }

    #[test]
    fn a_legacy_store_unseals_and_its_first_rekey_converts_it() {
        let (storage, root_share) = legacy_store();
        let seal = Seal::new(Arc::clone(&storage), SealKind::Shamir);
        let barrier = seal.submit_share(&root_share, false).unwrap().unwrap();
        barrier.put("x", b"kept").unwrap();

        let rekey = Rekey::new(Target::Unseal);
        let request = Request {
            shares: 3,
            threshold: 2,
            require_verification: false,
        };
        rekey
            .start(&seal.config().unwrap().unwrap(), request)
            .unwrap();
        let status = rekey.status().unwrap();
        let done = rekey
            .update(&barrier, &root_share, &status.nonce)
            .unwrap()
            .unwrap();
        let config = seal.config().unwrap().unwrap();
        assert!(config.stored_root_key.is_some(), "converted");
        assert_eq!((config.secret_shares, config.secret_threshold), (3, 2));

        // The root key share stops working; two new shares open the same data.
        let again = Seal::new(Arc::clone(&storage), SealKind::Shamir);
        assert!(again.submit_share(&root_share, false).unwrap().is_none());
        again.reset();
        let new: Vec<String> = done.shares.iter().map(hex::encode).collect();
        assert!(again.submit_share(&new[2], false).unwrap().is_none());
        let reopened = again.submit_share(&new[0], false).unwrap().unwrap();
        assert_eq!(reopened.get("x").unwrap().unwrap().as_slice(), b"kept");
    }

    #[test]
    fn wrong_shares_spend_the_attempt_and_change_nothing() {
        let (storage, root_share) = legacy_store();
        let seal = Seal::new(Arc::clone(&storage), SealKind::Shamir);
        let barrier = seal.submit_share(&root_share, false).unwrap().unwrap();
        let before = storage.get(SEAL_CONFIG).unwrap();
        let rekey = Rekey::new(Target::Unseal);
        let request = Request {
            shares: 1,
            threshold: 1,
            require_verification: false,
        };
        let config = seal.config().unwrap().unwrap();
        assert!(
            Rekey::new(Target::Recovery)
                .start(&config, request)
                .is_err()
        );
        rekey.start(&config, request).unwrap();
        let nonce = rekey.status().unwrap().nonce;
        let err = rekey
            .update(&barrier, &hex::encode([1u8; 32]), &nonce)
            .unwrap_err();
        assert!(err.to_string().contains("verification failed"), "{err}");
        assert_eq!(storage.get(SEAL_CONFIG).unwrap(), before);
        assert_eq!(rekey.status().unwrap().progress, 0);
    }
}
