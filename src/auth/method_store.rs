//! The store of a login method made of one configuration and named roles
//! (`jwt`, `kubernetes`, `cert`): both kept through the barrier under the mount's
//! prefix, `config` and `role/<HMAC of the role name>`, loaded at unseal,
//! changed by compare-and-swap, and followed across nodes through
//! [`MethodStore::apply_change`]. What a configuration and a role are, and
//! what makes the configuration usable (keys, HTTPS clients: never stored,
//! rebuilt on every node), is the method's [`Spec`].

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::userpass::Replay;
use crate::seal::barrier::Barrier;
use crate::seal::edit::{Edit, edit_json, read_json};
use crate::seal::lookup::LookupKey;
use crate::storage::blocking;
use crate::storage::layout::{METHOD_CONFIG, METHOD_ROLES};
use crate::storage::{Cached, StoreResult};

/// What one method keeps.
pub trait Spec: 'static {
    type Config: Clone + Debug + Serialize + DeserializeOwned + Send + Sync;
    /// The configuration made usable.
    type Ready: Debug + Send + Sync;
    type Role: Clone + Debug + Serialize + DeserializeOwned + Send + Sync;

    /// The configuration checked and made usable (no network).
    fn ready(config: Self::Config) -> StoreResult<Self::Ready>;
    fn role_name(role: &Self::Role) -> &str;
    fn blank_role(name: &str) -> Self::Role;
    fn rename_role(role: &mut Self::Role, name: &str);
    /// The method's checks of a role write.
    fn validate_role(role: &Self::Role) -> StoreResult<()>;
}

#[derive(Debug)]
struct State<S: Spec> {
    config: Option<Arc<S::Ready>>,
    roles: BTreeMap<String, S::Role>,
}

/// The configuration and roles of one mount.
#[derive(Debug)]
pub struct MethodStore<S: Spec> {
    barrier: Arc<Barrier>,
    lookup: Arc<LookupKey>,
    prefix: String,
    /// Its writer lock is held while the configuration or a role changes or
    /// is refreshed from storage (never during a login's network calls).
    state: Cached<State<S>>,
}

impl<S: Spec> MethodStore<S> {
    pub(crate) fn load(
        barrier: Arc<Barrier>,
        lookup: Arc<LookupKey>,
        prefix: String,
    ) -> StoreResult<Self> {
        let store = Self {
            barrier,
            lookup,
            prefix,
            state: Cached::new(
                "login method store",
                State {
                    config: None,
                    roles: BTreeMap::new(),
                },
            ),
        };
        let state = store.read_state()?;
        *store.state.write()? = state;
        Ok(store)
    }

    pub fn reload(&self) -> StoreResult<()> {
        self.state.reload(|| self.read_state())
    }

    fn config_path(&self) -> String {
        format!("{}{METHOD_CONFIG}", self.prefix)
    }

    pub(crate) fn role_path(&self, name: &str) -> String {
        format!("{}{METHOD_ROLES}{}", self.prefix, self.lookup.name(name))
    }

    /// A stored configuration that no longer passes the checks (written by
    /// a newer version) leaves the method unconfigured rather than failing
    /// the unseal.
    fn ready(config: Option<S::Config>) -> Option<Arc<S::Ready>> {
        config.and_then(|c| S::ready(c).ok()).map(Arc::new)
    }

    fn read_state(&self) -> StoreResult<State<S>> {
        let config = Self::ready(read_json(&self.barrier, &self.config_path())?);
        let mut roles = BTreeMap::new();
        for path in blocking(|| self.barrier.list(&format!("{}{METHOD_ROLES}", self.prefix)))? {
            // `None`: deleted (by another node) since the listing.
            if let Some(role) = read_json::<S::Role>(&self.barrier, &path)? {
                roles.insert(S::role_name(&role).to_owned(), role);
            }
        }
        Ok(State { config, roles })
    }

    /// Another node changed `path`: re-read it. Other paths are ignored.
    pub fn apply_change(&self, path: &str) -> StoreResult<()> {
        let Some(rest) = path.strip_prefix(self.prefix.as_str()) else {
            return Ok(());
        };
        let _w = self.state.writer()?;
        if rest == METHOD_CONFIG {
            let config = Self::ready(read_json(&self.barrier, path)?);
            self.state.write()?.config = config;
        } else if let Some(dir) = rest.strip_prefix(METHOD_ROLES) {
            match read_json::<S::Role>(&self.barrier, path)? {
                Some(role) => {
                    let name = S::role_name(&role).to_owned();
                    self.state.write()?.roles.insert(name, role);
                }
                None => {
                    let mut state = self.state.write()?;
                    state.roles.retain(|name, _| self.lookup.name(name) != dir);
                }
            }
        }
        Ok(())
    }

    pub fn config(&self) -> StoreResult<Option<Arc<S::Ready>>> {
        Ok(self.state.read()?.config.clone())
    }

    /// Store `config` (a write replaces the whole configuration, as Vault's
    /// does) and use `ready`, made from it by the caller.
    pub fn write_config(&self, config: &S::Config, ready: S::Ready) -> StoreResult<()> {
        let _w = self.state.writer()?;
        edit_json(
            &self.barrier,
            &self.config_path(),
            "the method configuration",
            |_: Option<S::Config>| Ok(Edit::Put(config.clone())),
        )?;
        self.state.write()?.config = Some(Arc::new(ready));
        Ok(())
    }

    pub fn list_roles(&self) -> StoreResult<Vec<String>> {
        Ok(self.state.read()?.roles.keys().cloned().collect())
    }

    /// Every role as this node's cache holds it.
    pub fn all_roles(&self) -> StoreResult<Vec<S::Role>> {
        Ok(self.state.read()?.roles.values().cloned().collect())
    }

    /// Role `name` as this node's cache holds it (cheap: for authorization).
    pub fn cached_role(&self, name: &str) -> StoreResult<Option<S::Role>> {
        Ok(self.state.read()?.roles.get(name).cloned())
    }

    /// Role `name`: cached, or read from storage when another node created
    /// it a moment ago. May block.
    pub fn get_role(&self, name: &str) -> StoreResult<Option<S::Role>> {
        if let Some(role) = self.cached_role(name)? {
            return Ok(Some(role));
        }
        let _w = self.state.writer()?;
        let role = read_json::<S::Role>(&self.barrier, &self.role_path(name))?;
        if let Some(role) = &role {
            self.state
                .write()?
                .roles
                .insert(name.to_owned(), role.clone());
        }
        Ok(role)
    }

    /// Create or update role `name`: `edit` gets the stored role (or a blank
    /// one); the result must pass [`Spec::validate_role`].
    pub fn write_role(
        &self,
        name: &str,
        edit: impl FnOnce(&mut S::Role) -> StoreResult<()>,
    ) -> StoreResult<()> {
        let mut edit = Replay::new(edit);
        let _w = self.state.writer()?;
        let stored = edit_json(
            &self.barrier,
            &self.role_path(name),
            "the role",
            |current: Option<S::Role>| {
                let mut role = edit.apply(current.unwrap_or_else(|| S::blank_role(name)))?;
                S::rename_role(&mut role, name);
                S::validate_role(&role)?;
                Ok(Edit::Put(role))
            },
        )?;
        if let Some(role) = stored {
            self.state.write()?.roles.insert(name.to_owned(), role);
        }
        Ok(())
    }

    pub fn delete_role(&self, name: &str) -> StoreResult<()> {
        let _w = self.state.writer()?;
        edit_json(
            &self.barrier,
            &self.role_path(name),
            "the role",
            |_: Option<S::Role>| Ok(Edit::Delete),
        )?;
        self.state.write()?.roles.remove(name);
        Ok(())
    }
}
