//! The server's state across seal transitions: init, unseal, seal.

use std::sync::{Arc, Mutex};

use arc_swap::ArcSwapOption;

use super::unsealed::Unsealed;
use super::{Limits, poisoned};
use crate::seal::barrier::Barrier;
use crate::seal::{InitParams, Seal, SealError, SealKind, SealResult};
use crate::storage::{MemoryStorage, Storage, blocking, in_background};
use crate::storage::{StoreError, StoreResult};

/// What `sys/init` hands back, once.
#[derive(Debug)]
pub struct InitOutput {
    pub shares: Vec<zeroize::Zeroizing<Vec<u8>>>,
    pub recovery_shares: Vec<zeroize::Zeroizing<Vec<u8>>>,
    pub root_token: zeroize::Zeroizing<String>,
}

#[derive(Debug)]
pub struct AppState {
    seal: Seal,
    unsealed: Arc<ArcSwapOption<Unsealed>>,
    /// Set when a change from another node arrived while this one was sealed
    /// or loading: the next unseal re-reads everything once more.
    missed_changes: Arc<std::sync::atomic::AtomicBool>,
    /// Serializes init, unseal and seal.
    transition: Mutex<()>,
    pub limits: Limits,
    pub cluster_name: String,
    /// What `sys/metrics` serves (the `telemetry` block).
    pub telemetry: crate::metrics::Telemetry,
}

impl AppState {
    /// A sealed server over `storage` (call `auto_unseal` or take shares next).
    pub fn new(
        storage: Arc<dyn Storage>,
        seal: SealKind,
        limits: Limits,
        cluster_name: String,
    ) -> Self {
        Self::migrating(storage, seal, None, limits, cluster_name)
    }

    /// A sealed server whose configuration also names `old`, the seal
    /// stanza marked `disabled` (a seal migration).
    pub fn migrating(
        storage: Arc<dyn Storage>,
        seal: SealKind,
        old: Option<SealKind>,
        limits: Limits,
        cluster_name: String,
    ) -> Self {
        let unsealed = Arc::new(ArcSwapOption::empty());
        let missed_changes = Arc::new(std::sync::atomic::AtomicBool::new(false));
        if let Some(changes) = storage.subscribe() {
            crate::changes::follow(changes, Arc::clone(&unsealed), Arc::clone(&missed_changes));
        }
        Self {
            seal: Seal::new(storage, seal).with_old_seal(old),
            unsealed,
            missed_changes,
            transition: Mutex::default(),
            limits,
            cluster_name,
            telemetry: crate::metrics::Telemetry::default(),
        }
    }

    /// The same server, with the `telemetry` block's settings.
    pub fn with_telemetry(mut self, telemetry: crate::metrics::Telemetry) -> Self {
        self.telemetry = telemetry;
        self
    }

    /// Dev mode: in memory, initialized with one share, unsealed, transit
    /// mounted at `transit/`, `root_token` valid.
    pub fn dev(root_token: &str, limits: Limits) -> Self {
        let state = Self::new(
            Arc::new(MemoryStorage::new()),
            SealKind::Shamir,
            limits,
            "transitd-dev".to_owned(),
        );
        // Memory storage cannot fail, nor can a fresh init with valid parameters.
        let result = state
            .initialize(InitParams::shares(1, 1), Some(root_token))
            .and_then(|init| {
                let share = hex::encode(
                    init.shares
                        .first()
                        .map(|s| s.as_slice())
                        .unwrap_or_default(),
                );
                state.unseal(&share).map(|_| ())
            });
        if let Err(e) = result {
            tracing::error!(error = %e, "dev mode failed to initialize");
        }
        state
    }

    pub fn seal_kind(&self) -> &SealKind {
        self.seal.kind()
    }

    pub fn storage_kind(&self) -> &'static str {
        self.seal.storage().kind()
    }

    pub fn seal_config(&self) -> StoreResult<Option<crate::seal::SealConfig>> {
        Ok(self.seal.config()?)
    }

    /// Whether a seal migration waits for `sys/unseal` with `migrate`.
    pub fn migration_pending(&self) -> StoreResult<bool> {
        Ok(self.seal.migration_phase()? == Some(crate::seal::migration::Phase::Pending))
    }

    pub fn unseal_progress(&self) -> (usize, String) {
        self.seal.progress()
    }

    pub fn is_sealed(&self) -> bool {
        self.unsealed.load().is_none()
    }

    /// The unsealed state, or Vault's 503.
    pub fn unsealed(&self) -> StoreResult<Arc<Unsealed>> {
        self.unsealed.load_full().ok_or(StoreError::Sealed)
    }

    /// `sys/init`. The server stays sealed (Shamir) or unseals itself (an
    /// auto seal).
    pub fn initialize(
        &self,
        params: InitParams,
        root_token: Option<&str>,
    ) -> StoreResult<InitOutput> {
        let _t = self.transition.lock().map_err(|_| poisoned())?;
        let init = self.seal.initialize(params)?;
        let root_token = zeroize::Zeroizing::new(match root_token {
            Some(t) if !t.is_empty() => t.to_owned(),
            _ => crate::auth::token::new_token()?,
        });
        let barrier = Arc::new(init.barrier);
        blocking(|| Unsealed::bootstrap(&barrier, &root_token))?;
        self.seal.commit_init(&init.config)?;
        if self.seal.kind().is_auto() {
            self.install(barrier)?;
        }
        Ok(InitOutput {
            shares: init.shares,
            recovery_shares: init.recovery_shares,
            root_token,
        })
    }

    /// `sys/unseal` with one share; true once unsealed.
    pub fn unseal(&self, share: &str) -> StoreResult<bool> {
        self.unseal_share(share, false)
    }

    /// `sys/unseal` with one share, `migrate`: a share of the seal a seal
    /// migration moves away from; true once unsealed.
    pub fn unseal_share(&self, share: &str, migrate: bool) -> StoreResult<bool> {
        let _t = self.transition.lock().map_err(|_| poisoned())?;
        // OpenBao refuses `migrate` without a migration configured, even unsealed.
        self.check_migrate_flag(migrate)?;
        if !self.is_sealed() {
            return Ok(true);
        }
        match self.seal.submit_share(share, migrate)? {
            None => Ok(false),
            Some(barrier) => {
                self.install(Arc::new(barrier))?;
                Ok(true)
            }
        }
    }

    /// Whether `sys/unseal`'s `migrate` flag fits the seal migration state.
    pub fn check_migrate_flag(&self, migrate: bool) -> SealResult<()> {
        crate::seal::migration::check_migrate_flag(self.seal.migration_phase()?, migrate)
    }

    pub fn reset_unseal(&self) {
        self.seal.reset();
    }

    /// Start-up with an auto seal: unseal if initialized and still sealed.
    /// [`SealError::Unavailable`] says a retry may succeed.
    pub fn auto_unseal(&self) -> SealResult<bool> {
        let _t = self
            .transition
            .lock()
            .map_err(|_| SealError::Failed(poisoned().to_string()))?;
        if !self.is_sealed() {
            return Ok(true);
        }
        // A seal migration (pending, or done with its stanza still there)
        // waits for shares, as OpenBao's migration mode.
        if self.seal.migration_phase()? != Some(crate::seal::migration::Phase::None)
            || !self.seal.kind().is_auto()
        {
            return Ok(false);
        }
        let barrier = self.seal.auto_unseal()?;
        self.install(Arc::new(barrier))
            .map_err(|e| SealError::Failed(e.to_string()))?;
        Ok(true)
    }

    /// Refuse to start on storage whose seal type the configured seals
    /// cannot use; say when a seal migration waits.
    pub fn check_seal_type(&self) -> StoreResult<()> {
        use crate::seal::migration::Phase;
        match self.seal.migration_phase()? {
            Some(Phase::Pending) => tracing::warn!(
                to = self.seal.kind().name(),
                "entering seal migration mode: unseal with `bao operator unseal -migrate` \
                 and the old seal's unseal or recovery keys"
            ),
            Some(Phase::Completed) => tracing::warn!(
                "the seal migration is complete: remove the seal stanza marked disabled and \
                 restart (until then the server does not unseal itself)"
            ),
            _ => {}
        }
        Ok(())
    }

    fn install(&self, barrier: Arc<Barrier>) -> StoreResult<()> {
        use std::sync::atomic::Ordering;
        self.missed_changes.store(false, Ordering::SeqCst);
        let unsealed = Arc::new(blocking(|| Unsealed::load(barrier))?);
        self.unsealed.store(Some(Arc::clone(&unsealed)));
        // Changes that arrived while loading were not applied: read again.
        if self.missed_changes.swap(false, Ordering::SeqCst) {
            blocking(|| unsealed.reload_all())?;
        }
        // Keys that fell due while the server was down or sealed rotate now,
        // not at the next minute's upkeep; off the unseal reply's path.
        in_background(move || {
            unsealed.rotate_due_keys(time::OffsetDateTime::now_utc());
        });
        Ok(())
    }

    /// `sys/seal`: drop every key; they zeroize as the last request using them ends.
    pub fn seal(&self) -> StoreResult<()> {
        let _t = self.transition.lock().map_err(|_| poisoned())?;
        self.unsealed.store(None);
        self.seal.reset();
        Ok(())
    }

    /// Periodic upkeep while the server runs, every minute: keys whose
    /// `auto_rotate_period` has passed are rotated, expired tokens removed.
    pub async fn maintain(self: Arc<Self>) {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
        for minute in 0u64.. {
            tick.tick().await;
            let Ok(unsealed) = self.unsealed() else {
                continue;
            };
            let now = time::OffsetDateTime::now_utc().unix_timestamp();
            // With shared storage, orphans are swept here (hourly), not at unseal.
            let sweep_orphans = minute % 60 == 59 && unsealed.barrier.storage().is_shared();
            let sweep = move || -> StoreResult<usize> {
                // First: nothing below may keep keys from rotating.
                unsealed.rotate_due_keys(time::OffsetDateTime::now_utc());
                if sweep_orphans {
                    let n = unsealed.remove_orphans()?;
                    if n > 0 {
                        tracing::info!(entries = n, "entries of removed mounts deleted");
                    }
                }
                if unsealed.audit.broker.has_unopened() {
                    // Try again to open the audit devices that failed here.
                    unsealed.audit.reload()?;
                }
                let mut removed = unsealed.tokens.sweep(now)?;
                removed += unsealed.wraps.sweep(now)?;
                for method in unsealed.methods.all()? {
                    if let crate::auth::methods::Backend::AppRole(store) = &method.backend {
                        removed += store.tidy(now)?;
                    }
                }
                Ok(removed)
            };
            match tokio::task::spawn_blocking(sweep).await {
                Ok(Ok(0)) => {}
                Ok(Ok(n)) => tracing::info!(
                    expired = n,
                    "expired tokens, secret IDs and wrapped replies removed"
                ),
                Ok(Err(e)) => tracing::warn!(error = %e, "token sweep failed"),
                Err(e) => tracing::warn!(error = %e, "token sweep task failed"),
            }
        }
    }

    /// Whether a presented token is live (false while sealed).
    pub fn token_is_valid(&self, token: &str) -> bool {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        self.unsealed
            .load()
            .as_ref()
            .is_some_and(|u| u.tokens.lookup(token, now).ok().flatten().is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Mount;
    use transit_keys::{CreateOptions, KeyType, Keyring};

    fn create_key(mount: &Mount, name: &str) {
        let now = time::OffsetDateTime::now_utc();
        mount
            .update(name, |_| {
                let ring =
                    Keyring::create(name, KeyType::Aes256Gcm96, &CreateOptions::default(), now)?;
                Ok::<_, StoreError>((Some(ring), ()))
            })
            .unwrap();
    }

    #[test]
    fn sealing_drops_every_key_and_refuses_service() {
        let state = AppState::dev("root", Limits::default());
        let unsealed = state.unsealed().unwrap();
        let (mount, _) = unsealed.resolve("transit/keys/k").unwrap().unwrap();
        create_key(&mount, "k");
        let ring = Arc::downgrade(&mount.key("k").unwrap().unwrap());
        let whole = Arc::downgrade(&unsealed);
        drop((mount, unsealed));
        state.seal().unwrap();
        // Nothing keeps key material alive: it was dropped (and zeroized) on seal.
        assert!(ring.upgrade().is_none());
        assert!(whole.upgrade().is_none());
        assert!(matches!(state.unsealed(), Err(StoreError::Sealed)));
        assert!(!state.token_is_valid("root"));
    }

    #[test]
    fn orphans_of_removed_mounts_are_swept_and_nothing_else() {
        let state = AppState::new(
            Arc::new(MemoryStorage::shared()),
            SealKind::Shamir,
            Limits::default(),
            "c".to_owned(),
        );
        let init = state
            .initialize(InitParams::shares(1, 1), Some("root"))
            .unwrap();
        assert!(
            state
                .unseal(&hex::encode(init.shares[0].as_slice()))
                .unwrap()
        );
        let unsealed = state.unsealed().unwrap();
        let (mount, _) = unsealed.resolve("transit/keys/k").unwrap().unwrap();
        create_key(&mount, "k");
        let b = &unsealed.barrier;
        b.put("logical/gone-uuid/keys/x", b"x").unwrap();
        b.put("auth/gone-uuid/users/y", b"y").unwrap();
        let before = b.list("").unwrap().len();
        assert_eq!(unsealed.remove_orphans().unwrap(), 2);
        assert_eq!(b.list("").unwrap().len(), before - 2);
        assert!(
            b.get(&mount.key_path("k")).unwrap().is_some(),
            "a live key was swept"
        );
        assert!(state.token_is_valid("root"));
    }
}
