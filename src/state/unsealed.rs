//! Everything that exists only while unsealed: the mount table and the stores.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::mount::{Mount, MountEntry, new_mount_entry};
use crate::audit::store::AuditStore;
use crate::auth::methods::Methods;
use crate::auth::policy_store::PolicyStore;
use crate::auth::token::random_string;
use crate::auth::token::{TokenRequest, TokenStore};
use crate::auth::wrapping::WrapStore;
use crate::changes::ApplyChanges;
use crate::seal::barrier::{Barrier, SecretKey};
use crate::seal::edit::{Edit, edit_json, read_json};
use crate::seal::generate_root::{OTP_LEN, RootGeneration, Step, encode_token};
use crate::seal::lookup::LookupKey;
use crate::seal::rekey::{Rekey, Target};
use crate::seal::{read_config, stored_keys};
use crate::storage::blocking;
use crate::storage::{Cached, StoreError, StoreResult};
use zeroize::Zeroizing;

use crate::storage::layout::{
    self, CLUSTER as CLUSTER_PATH, LOOKUP_KEY as LOOKUP_KEY_PATH, MOUNT_TABLE as MOUNTS_PATH, Owner,
};

/// What a root token is: the root policy, issued at `auth/token/root`.
fn root_token_request() -> TokenRequest {
    TokenRequest {
        policies: vec!["root".to_owned()],
        display_name: "root".to_owned(),
        path: "auth/token/root".to_owned(),
        ..TokenRequest::default()
    }
}

/// Everything that exists only while unsealed.
#[derive(Debug)]
pub struct Unsealed {
    pub(super) barrier: Arc<Barrier>,
    lookup: Arc<LookupKey>,
    pub cluster_id: String,
    /// Mounts by path; its writer lock is held while the mount table
    /// changes or is refreshed.
    mounts: Cached<BTreeMap<String, Arc<Mount>>>,
    pub tokens: TokenStore,
    pub policies: PolicyStore,
    pub methods: Methods,
    pub audit: AuditStore,
    pub wraps: WrapStore,
    /// Versions added by automatic rotation on this node since unseal.
    pub auto_rotations: std::sync::atomic::AtomicU64,
    /// This node's `sys/generate-root` attempt (ends when it seals).
    root_generation: RootGeneration,
    /// This node's rekey attempts (`sys/rekey/*`, `sys/rekey-recovery-key/*`).
    unseal_rekey: Rekey,
    recovery_rekey: Rekey,
}

/// Where a root generation attempt stands (`sys/generate-root/*`).
#[derive(Debug)]
pub struct RootGenerationStatus {
    pub nonce: Option<String>,
    pub progress: usize,
    pub required: u64,
    /// The new root token XORed with the OTP, once the threshold is met.
    pub encoded_token: Option<String>,
}

impl ApplyChanges for Unsealed {
    fn apply_change(&self, path: &str) -> StoreResult<()> {
        Unsealed::apply_change(self, path)
    }
    fn reload_all(&self) -> StoreResult<()> {
        Unsealed::reload_all(self)
    }
}

#[derive(Serialize, Deserialize)]
struct ClusterInfo {
    id: String,
}

impl Unsealed {
    /// Load the whole state from storage (at unseal).
    pub(super) fn load(barrier: Arc<Barrier>) -> StoreResult<Self> {
        let lookup = barrier
            .get(LOOKUP_KEY_PATH)?
            .and_then(|raw| SecretKey::from_slice(&raw))
            .ok_or_else(|| StoreError::Internal("the lookup key is missing".to_owned()))?;
        let lookup = Arc::new(LookupKey::new(lookup));
        let cluster: ClusterInfo = read_json(&barrier, CLUSTER_PATH)?
            .ok_or_else(|| StoreError::Internal("cluster info is missing".to_owned()))?;
        // Written at init: if it is gone, storage is damaged. Refuse to unseal
        // rather than treat every key as an orphan and delete it.
        let entries: Vec<MountEntry> = read_json(&barrier, MOUNTS_PATH)?.ok_or_else(|| {
            StoreError::Internal("the mount table (core/mounts) is missing from storage".to_owned())
        })?;
        let mut mounts = BTreeMap::new();
        for entry in entries {
            let mount = Mount::new(entry, Arc::clone(&barrier), Arc::clone(&lookup));
            mount.load()?;
            mounts.insert(mount.path.clone(), Arc::new(mount));
        }
        let tokens = TokenStore::load(Arc::clone(&barrier), Arc::clone(&lookup))?;
        let policies = PolicyStore::load(Arc::clone(&barrier), Arc::clone(&lookup))?;
        let methods = Methods::load(Arc::clone(&barrier), Arc::clone(&lookup))?;
        let audit = AuditStore::load(Arc::clone(&barrier))?;
        let wraps = WrapStore::new(Arc::clone(&barrier));
        let unsealed = Self {
            barrier,
            lookup,
            cluster_id: cluster.id,
            mounts: Cached::new("mount table", mounts),
            tokens,
            policies,
            methods,
            audit,
            wraps,
            auto_rotations: Default::default(),
            root_generation: RootGeneration::default(),
            unseal_rekey: Rekey::new(Target::Unseal),
            recovery_rekey: Rekey::new(Target::Recovery),
        };
        // With shared storage the sweep runs in the background instead, not
        // in every node's start.
        if !unsealed.barrier.storage().is_shared() {
            unsealed.remove_orphans()?;
        }
        Ok(unsealed)
    }

    /// Another node changed `path` in the shared storage: refresh what caches it.
    pub fn apply_change(&self, path: &str) -> StoreResult<()> {
        match layout::owner(path) {
            Some(Owner::MountTable) => self.reload_mounts(),
            Some(Owner::Mount(uuid)) => {
                let mount = self
                    .mounts
                    .read()?
                    .values()
                    .find(|m| m.uuid == uuid)
                    .cloned();
                match mount {
                    Some(m) => m.apply_change(path),
                    None => Ok(()),
                }
            }
            Some(Owner::Tokens) => self.tokens.apply_change(path),
            Some(Owner::Policies) => self.policies.apply_change(path),
            Some(Owner::MethodTable | Owner::Method(_)) => self.methods.apply_change(path),
            Some(Owner::AuditTable) => self.audit.reload(),
            // Parent links: read from storage when a token is revoked, never
            // cached; the other seal and init entries never change while unsealed.
            // Another node rotated the barrier key: seal with the new term too.
            Some(Owner::Seal) if path == layout::KEYRING => Ok(self.barrier.refresh()?),
            Some(Owner::TokenLinks | Owner::Seal | Owner::Core) | None => Ok(()),
        }
    }

    /// `sys/rotate`: new barrier writes use a new key term (on every node).
    pub fn rotate_barrier(&self) -> StoreResult<u32> {
        let term = blocking(|| self.barrier.rotate())?;
        tracing::info!(term, "barrier key rotated");
        Ok(term)
    }

    /// (active barrier key term, its install time in unix seconds, this
    /// node's encryptions under it)
    pub fn barrier_key_status(&self) -> (u32, i64, u64) {
        self.barrier.key_status()
    }

    /// After missed notifications: re-read everything shared.
    pub fn reload_all(&self) -> StoreResult<()> {
        self.barrier.refresh()?;
        self.reload_mounts()?;
        for mount in self.mounts()? {
            mount.load()?;
        }
        self.tokens.reload_all()?;
        self.policies.reload_all()?;
        self.methods.reload_all()?;
        self.audit.reload()
    }

    /// Re-read the mount table: new mounts are loaded, removed ones dropped,
    /// unchanged ones kept as they are.
    fn reload_mounts(&self) -> StoreResult<()> {
        let _writer = self.mounts.writer()?;
        let entries: Vec<MountEntry> = read_json(&self.barrier, MOUNTS_PATH)?.ok_or_else(|| {
            StoreError::Internal("the mount table (core/mounts) is missing from storage".to_owned())
        })?;
        self.install_mounts(entries)
    }

    /// Make the cached mounts match `entries` (its writer lock is held):
    /// new mounts are loaded, removed ones dropped, unchanged ones kept.
    fn install_mounts(&self, entries: Vec<MountEntry>) -> StoreResult<()> {
        let current = self.mounts.read()?.clone();
        let mut next = BTreeMap::new();
        for entry in entries {
            let mount = match current.get(&entry.path).filter(|m| m.uuid == entry.uuid) {
                Some(m) => Arc::clone(m),
                None => {
                    let m = Mount::new(entry, Arc::clone(&self.barrier), Arc::clone(&self.lookup));
                    m.load()?;
                    Arc::new(m)
                }
            };
            next.insert(mount.path.clone(), mount);
        }
        *self.mounts.write()? = next;
        Ok(())
    }

    /// Entries of secrets engines and login methods that are no longer
    /// mounted (a removal interrupted by a crash, or, with shared storage, a
    /// node writing into a mount another node had just removed); returns how
    /// many were deleted.
    ///
    /// Safe while other nodes work: an entry is only ever written under a
    /// mount that its table already lists, and the tables are read after the
    /// listing, so a mount created meanwhile is never mistaken for a removed one.
    pub fn remove_orphans(&self) -> StoreResult<usize> {
        let listed: Vec<String> = blocking(|| -> StoreResult<Vec<String>> {
            let mut paths = self.barrier.list(layout::MOUNTS)?;
            paths.extend(
                self.barrier
                    .list(layout::METHODS)?
                    .into_iter()
                    .filter(|p| !p.starts_with(layout::TOKENS)),
            );
            Ok(paths)
        })?;
        if listed.is_empty() {
            return Ok(0);
        }
        let mounts: Vec<MountEntry> = read_json(&self.barrier, MOUNTS_PATH)?.ok_or_else(|| {
            StoreError::Internal("the mount table (core/mounts) is missing from storage".to_owned())
        })?;
        let methods: Vec<crate::auth::methods::MethodEntry> =
            read_json(&self.barrier, layout::METHOD_TABLE)?.unwrap_or_default();
        let live: HashSet<String> = mounts
            .iter()
            .map(|m| layout::mount_prefix(&m.uuid))
            .chain(methods.iter().map(|m| layout::method_prefix(&m.uuid)))
            .collect();
        let mut removed = 0;
        for path in listed {
            let prefix_len = path
                .match_indices('/')
                .nth(1)
                .map_or(path.len(), |(i, _)| i + 1);
            if !live.contains(&path[..prefix_len]) {
                blocking(|| self.barrier.delete(&path))?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// First entries of a new server, written before it counts as initialized.
    pub(super) fn bootstrap(barrier: &Arc<Barrier>, root_token: &str) -> StoreResult<()> {
        let lookup = SecretKey::random()?;
        barrier.put(LOOKUP_KEY_PATH, lookup.expose())?;
        let lookup = Arc::new(LookupKey::new(lookup));
        write_json(
            barrier,
            CLUSTER_PATH,
            &ClusterInfo {
                id: uuid::Uuid::new_v4().to_string(),
            },
        )?;
        let transit = new_mount_entry("transit", "");
        write_json(barrier, MOUNTS_PATH, &vec![transit])?;
        let tokens = TokenStore::load(Arc::clone(barrier), lookup)?;
        tokens.create(
            root_token_request(),
            Some(root_token),
            time::OffsetDateTime::now_utc().unix_timestamp(),
        )?;
        Ok(())
    }

    /// The threshold of the shares root generation takes: unseal shares
    /// (Shamir) or recovery shares (auto seals; refused without them).
    fn share_threshold(&self) -> StoreResult<u64> {
        let config = read_config(self.barrier.storage().as_ref())?
            .ok_or_else(|| StoreError::Internal("the seal configuration is missing".to_owned()))?;
        Ok(stored_keys::authorizing_threshold(&config)?)
    }

    pub fn root_generation_status(&self) -> StoreResult<RootGenerationStatus> {
        let required = self.share_threshold()?;
        let (nonce, progress) = self.root_generation.status();
        Ok(RootGenerationStatus {
            nonce,
            progress,
            required,
            encoded_token: None,
        })
    }

    /// Start root generation with the caller's OTP, or one made here (returned).
    pub fn start_root_generation(
        &self,
        otp: Option<Zeroizing<String>>,
    ) -> StoreResult<Option<Zeroizing<String>>> {
        self.share_threshold()?;
        let made = match otp {
            Some(_) => None,
            None => Some(Zeroizing::new(random_string(OTP_LEN)?)),
        };
        let otp = otp.or_else(|| made.clone()).unwrap_or_default();
        self.root_generation.start(otp)?;
        tracing::info!("root generation started");
        Ok(made)
    }

    /// One share for the attempt `nonce`; at the threshold, a new root
    /// token (durable before it is returned, encoded with the OTP).
    pub fn root_generation_update(
        &self,
        key: &str,
        nonce: &str,
    ) -> StoreResult<RootGenerationStatus> {
        let required = self.share_threshold()?;
        let (progress, encoded_token) = match self.root_generation.update(key, nonce, required)? {
            Step::Progress(n) => (n, None),
            Step::Combined(combined, otp) => {
                let config = read_config(self.barrier.storage().as_ref())?.ok_or_else(|| {
                    StoreError::Internal("the seal configuration is missing".to_owned())
                })?;
                if !stored_keys::authorizes(&config, &self.barrier, combined)? {
                    return Err(StoreError::Invalid(
                        "root generation aborted: the shares do not rebuild the root key"
                            .to_owned(),
                    ));
                }
                let issued = self.tokens.create(
                    root_token_request(),
                    None,
                    time::OffsetDateTime::now_utc().unix_timestamp(),
                )?;
                crate::crash_point::here("generate-root-after-token");
                self.root_generation.finish(nonce);
                tracing::info!("root generation finished: a new root token was issued");
                (required as usize, Some(encode_token(&issued.token, &otp)?))
            }
        };
        Ok(RootGenerationStatus {
            nonce: Some(nonce.to_owned()),
            progress,
            required,
            encoded_token,
        })
    }

    /// The barrier, for an operation on the seal (rekey) that needs it.
    pub fn barrier(&self) -> &Barrier {
        &self.barrier
    }

    /// This node's rekey attempt for `target`.
    pub fn rekey(&self, target: Target) -> &Rekey {
        match target {
            Target::Unseal => &self.unseal_rekey,
            Target::Recovery => &self.recovery_rekey,
        }
    }

    pub fn cancel_root_generation(&self) {
        self.root_generation.cancel();
    }

    /// The mount whose path is the longest prefix of `path`, and the rest.
    pub fn resolve<'p>(&self, path: &'p str) -> StoreResult<Option<(Arc<Mount>, &'p str)>> {
        let mounts = self.mounts.read()?;
        let found = mounts
            .iter()
            .filter_map(|(m, mount)| {
                let rest = path.strip_prefix(m.as_str())?;
                (rest.is_empty() || rest.starts_with('/'))
                    .then(|| (mount, rest.trim_start_matches('/')))
            })
            .max_by_key(|(mount, _)| mount.path.len())
            .map(|(mount, rest)| (Arc::clone(mount), rest));
        Ok(found)
    }

    pub fn mounts(&self) -> StoreResult<Vec<Arc<Mount>>> {
        Ok(self.mounts.read()?.values().cloned().collect())
    }

    /// Edit the stored mount table (not this node's copy, which may lag behind
    /// another node's edit) with compare-and-swap, then bring the cache in line.
    fn change_mount_table(
        &self,
        mut change: impl FnMut(&mut Vec<MountEntry>) -> StoreResult<()>,
    ) -> StoreResult<()> {
        let entries = edit_json(&self.barrier, MOUNTS_PATH, "the mount table", |table| {
            let mut entries: Vec<MountEntry> = table.ok_or_else(|| {
                StoreError::Internal(
                    "the mount table (core/mounts) is missing from storage".to_owned(),
                )
            })?;
            change(&mut entries)?;
            Ok(Edit::Put(entries))
        })?
        .unwrap_or_default();
        self.install_mounts(entries)
    }

    pub fn enable_mount(&self, path: &str, description: &str) -> StoreResult<()> {
        let _writer = self.mounts.writer()?;
        if path.starts_with("sys") || path.starts_with("auth") {
            return Err(StoreError::invalid(format!(
                "path is already in use at {path}/"
            )));
        }
        self.change_mount_table(|entries| {
            let clash = entries.iter().any(|e| {
                let m = &e.path;
                *m == path
                    || path.starts_with(&format!("{m}/"))
                    || m.starts_with(&format!("{path}/"))
            });
            if clash {
                return Err(StoreError::invalid(format!(
                    "path is already in use at {path}/"
                )));
            }
            entries.push(new_mount_entry(path, description));
            Ok(())
        })
    }

    pub fn disable_mount(&self, path: &str) -> StoreResult<()> {
        let _writer = self.mounts.writer()?;
        let mut removed = None;
        self.change_mount_table(|entries| {
            removed = entries
                .iter()
                .position(|e| e.path == path)
                .map(|i| entries.remove(i));
            Ok(())
        })?;
        let Some(removed) = removed else {
            return Ok(());
        };
        // The table first: a crash after it leaves orphans that the next unseal removes.
        let prefix = layout::mount_prefix(&removed.uuid);
        Ok(blocking(|| self.barrier.delete_all_under(&prefix))?)
    }
}

fn write_json<T: Serialize>(barrier: &Barrier, path: &str, value: &T) -> StoreResult<()> {
    let raw = serde_json::to_vec(value).map_err(|e| StoreError::Internal(e.to_string()))?;
    Ok(barrier.put(path, &raw)?)
}
