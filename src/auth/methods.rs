//! The table of enabled login methods (`sys/auth`): `token/` always, plus any
//! number of userpass and AppRole mounts, each with its own storage prefix
//! `auth/<uuid>/`. The table is stored through the barrier at `core/auth` and
//! changed by compare-and-swap, since other nodes may share it; their changes
//! are applied in place ([`Methods::apply_change`]), never by replacing a
//! method that requests may be writing through.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::approle::AppRoleStore;
use super::cert::CertStore;
use super::jwt::JwtStore;
use super::kubernetes::KubeStore;
use super::userpass::UserpassStore;
use crate::seal::barrier::Barrier;
use crate::seal::edit::{Edit, edit_json, read_json};
use crate::seal::lookup::LookupKey;
use crate::storage::blocking;
use crate::storage::layout::{self, METHOD_TABLE, Owner};
use crate::storage::{Cached, StoreError, StoreResult};

/// The login methods transitd implements. Stored (and shown by `sys/auth`)
/// under Vault's names for them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MethodKind {
    Userpass,
    AppRole,
    Jwt,
    Kubernetes,
    Cert,
}

impl MethodKind {
    pub const ALL: [Self; 5] = [
        Self::Userpass,
        Self::AppRole,
        Self::Jwt,
        Self::Kubernetes,
        Self::Cert,
    ];

    /// Vault's name: the `type` of `sys/auth/:path` and of `sys/auth`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Userpass => "userpass",
            Self::AppRole => "approle",
            Self::Jwt => "jwt",
            Self::Kubernetes => "kubernetes",
            Self::Cert => "cert",
        }
    }

    pub fn parse(name: &str) -> StoreResult<Self> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.name() == name)
            .ok_or_else(|| {
                StoreError::invalid(format!(
                    "transitd supports the userpass, approle, jwt, kubernetes and cert auth methods, not {name:?}"
                ))
            })
    }
}

/// A row of `core/auth`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MethodEntry {
    pub path: String,
    #[serde(rename = "type")]
    pub kind: MethodKind,
    pub uuid: String,
    pub accessor: String,
    pub description: String,
}

#[derive(Debug)]
pub enum Backend {
    Userpass(UserpassStore),
    AppRole(AppRoleStore),
    Jwt(JwtStore),
    Kubernetes(KubeStore),
    Cert(CertStore),
}

#[derive(Debug)]
pub struct Method {
    pub entry: MethodEntry,
    pub backend: Backend,
}

#[derive(Debug)]
pub struct Methods {
    barrier: Arc<Barrier>,
    lookup: Arc<LookupKey>,
    /// Methods by path; its writer lock is held while the table changes or
    /// is refreshed from storage.
    table: Cached<BTreeMap<String, Arc<Method>>>,
}

fn open(
    barrier: &Arc<Barrier>,
    lookup: &Arc<LookupKey>,
    entry: MethodEntry,
) -> StoreResult<Method> {
    let prefix = layout::method_prefix(&entry.uuid);
    let backend = match entry.kind {
        MethodKind::Userpass => Backend::Userpass(UserpassStore::load(
            Arc::clone(barrier),
            Arc::clone(lookup),
            prefix,
        )?),
        MethodKind::AppRole => Backend::AppRole(AppRoleStore::load(
            Arc::clone(barrier),
            Arc::clone(lookup),
            prefix,
        )?),
        MethodKind::Jwt => Backend::Jwt(JwtStore::load(
            Arc::clone(barrier),
            Arc::clone(lookup),
            prefix,
        )?),
        MethodKind::Kubernetes => Backend::Kubernetes(KubeStore::load(
            Arc::clone(barrier),
            Arc::clone(lookup),
            prefix,
        )?),
        MethodKind::Cert => Backend::Cert(CertStore::load(
            Arc::clone(barrier),
            Arc::clone(lookup),
            prefix,
        )?),
    };
    Ok(Method { entry, backend })
}

/// The stored table (absent: no method enabled yet).
fn read_table(barrier: &Barrier) -> StoreResult<Vec<MethodEntry>> {
    Ok(read_json(barrier, METHOD_TABLE)?.unwrap_or_default())
}

impl Methods {
    pub(crate) fn load(barrier: Arc<Barrier>, lookup: Arc<LookupKey>) -> StoreResult<Self> {
        let methods = Self {
            barrier,
            lookup,
            table: Cached::new("auth method table", BTreeMap::new()),
        };
        let entries = read_table(&methods.barrier)?;
        methods.install(entries)?;
        Ok(methods)
    }

    /// Make the cached table `entries`: methods whose row is unchanged are
    /// kept as they are (requests may be using them), new ones opened,
    /// removed ones dropped. Returns the methods kept. The caller holds the writer lock
    /// (or has the only reference).
    fn install(&self, entries: Vec<MethodEntry>) -> StoreResult<Vec<Arc<Method>>> {
        let current: HashMap<String, Arc<Method>> = self
            .table
            .read()?
            .values()
            .map(|m| (m.entry.uuid.clone(), Arc::clone(m)))
            .collect();
        let mut next = BTreeMap::new();
        let mut kept = Vec::new();
        for entry in entries {
            let same = current
                .get(&entry.uuid)
                .filter(|m| m.entry.path == entry.path && m.entry.kind == entry.kind);
            let method = match same {
                Some(m) => {
                    kept.push(Arc::clone(m));
                    Arc::clone(m)
                }
                None => Arc::new(open(&self.barrier, &self.lookup, entry)?),
            };
            next.insert(method.entry.path.clone(), method);
        }
        *self.table.write()? = next;
        Ok(kept)
    }

    /// Another node changed `path`: the method table (`core/auth`) or an
    /// entry of a method (`auth/<uuid>/...`), applied in place. Other paths,
    /// and those of methods not enabled here, are ignored.
    pub fn apply_change(&self, path: &str) -> StoreResult<()> {
        let uuid = match layout::owner(path) {
            Some(Owner::MethodTable) => {
                let _w = self.table.writer()?;
                self.install(read_table(&self.barrier)?)?;
                return Ok(());
            }
            Some(Owner::Method(uuid)) => uuid,
            _ => return Ok(()),
        };
        let method = self
            .table
            .read()?
            .values()
            .find(|m| m.entry.uuid == uuid)
            .cloned();
        match method.as_deref().map(|m| &m.backend) {
            Some(Backend::Userpass(store)) => store.apply_change(path),
            Some(Backend::AppRole(store)) => store.apply_change(path),
            Some(Backend::Jwt(store)) => store.apply_change(path),
            Some(Backend::Kubernetes(store)) => store.apply_change(path),
            Some(Backend::Cert(store)) => store.apply_change(path),
            None => Ok(()),
        }
    }

    /// Re-read the table and every method's entries (after missed change
    /// notifications), in place.
    pub fn reload_all(&self) -> StoreResult<()> {
        let kept = {
            let _w = self.table.writer()?;
            self.install(read_table(&self.barrier)?)?
        };
        // Newly opened methods have just read their entries.
        for method in kept {
            match &method.backend {
                Backend::Userpass(store) => store.reload()?,
                Backend::AppRole(store) => store.reload()?,
                Backend::Jwt(store) => store.reload()?,
                Backend::Kubernetes(store) => store.reload()?,
                Backend::Cert(store) => store.reload()?,
            }
        }
        Ok(())
    }

    /// The method mounted at the start of `path` (after `auth/`), and the rest.
    pub fn resolve<'p>(&self, path: &'p str) -> StoreResult<Option<(Arc<Method>, &'p str)>> {
        let table = self.table.read()?;
        Ok(table
            .iter()
            .filter_map(|(m, method)| {
                let rest = path.strip_prefix(m.as_str())?;
                (rest.is_empty() || rest.starts_with('/'))
                    .then(|| (Arc::clone(method), rest.trim_start_matches('/')))
            })
            .max_by_key(|(method, _)| method.entry.path.len()))
    }

    pub fn all(&self) -> StoreResult<Vec<Arc<Method>>> {
        Ok(self.table.read()?.values().cloned().collect())
    }

    pub fn entries(&self) -> StoreResult<Vec<MethodEntry>> {
        Ok(self
            .table
            .read()?
            .values()
            .map(|m| m.entry.clone())
            .collect())
    }

    /// Change the stored table by compare-and-swap (`change` gets the rows as
    /// stored now, not as cached: another node may have changed them), then
    /// install what was stored.
    fn change_table(
        &self,
        mut change: impl FnMut(&mut Vec<MethodEntry>) -> StoreResult<bool>,
    ) -> StoreResult<()> {
        let _w = self.table.writer()?;
        let stored = edit_json(
            &self.barrier,
            METHOD_TABLE,
            "the auth method table",
            |current: Option<Vec<MethodEntry>>| {
                let mut entries = current.unwrap_or_default();
                Ok(if change(&mut entries)? {
                    Edit::Put(entries)
                } else {
                    Edit::Keep
                })
            },
        )?;
        self.install(stored.unwrap_or_default())?;
        Ok(())
    }

    pub fn enable(&self, path: &str, kind: MethodKind, description: &str) -> StoreResult<()> {
        if path.is_empty() || path.split('/').any(str::is_empty) {
            return Err(StoreError::invalid("invalid auth method path"));
        }
        let entry = MethodEntry {
            path: path.to_owned(),
            kind,
            uuid: uuid::Uuid::new_v4().to_string(),
            accessor: format!(
                "auth_{}_{}",
                kind.name(),
                &uuid::Uuid::new_v4().simple().to_string()[..8]
            ),
            description: description.to_owned(),
        };
        self.change_table(|entries| {
            let clash = path == "token"
                || path.starts_with("token/")
                || entries.iter().any(|e| {
                    let m = e.path.as_str();
                    m == path
                        || path.starts_with(&format!("{m}/"))
                        || m.starts_with(&format!("{path}/"))
                });
            if clash {
                return Err(StoreError::invalid(format!(
                    "path is already in use at auth/{path}/"
                )));
            }
            entries.push(entry.clone());
            Ok(true)
        })
    }

    /// Disable a method and delete its users, roles and secret IDs. (The
    /// caller revokes the tokens it issued, as Vault does.)
    pub fn disable(&self, path: &str) -> StoreResult<()> {
        let mut removed = None;
        self.change_table(|entries| {
            removed = entries
                .iter()
                .position(|e| e.path == path)
                .map(|i| entries.remove(i));
            Ok(removed.is_some())
        })?;
        let Some(removed) = removed else {
            return Ok(());
        };
        // Nothing is computed from a removed method's entries: plain deletes.
        let prefix = layout::method_prefix(&removed.uuid);
        Ok(blocking(|| self.barrier.delete_all_under(&prefix))?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::userpass::tests::barrier;

    #[test]
    fn every_method_parses_by_its_name_and_has_its_login_failure_series() {
        for kind in MethodKind::ALL {
            assert_eq!(MethodKind::parse(kind.name()).unwrap(), kind);
        }
        let names: Vec<&str> = MethodKind::ALL.iter().map(|k| k.name()).collect();
        assert_eq!(names, crate::metrics::LOGIN_METHODS);
        assert!(MethodKind::parse("ldap").is_err());
    }

    /// Two nodes' method tables over one storage.
    fn two_nodes() -> (Methods, Methods) {
        let (_, barrier, lookup) = barrier();
        let node = || Methods::load(Arc::clone(&barrier), Arc::clone(&lookup)).unwrap();
        (node(), node())
    }

    fn paths(m: &Methods) -> Vec<String> {
        m.entries().unwrap().into_iter().map(|e| e.path).collect()
    }

    fn stored_paths(m: &Methods) -> Vec<String> {
        let mut paths: Vec<String> = read_table(&m.barrier)
            .unwrap()
            .into_iter()
            .map(|e| e.path)
            .collect();
        paths.sort();
        paths
    }

    fn approle(m: &Methods, path: &str) -> Arc<Method> {
        let (method, _) = m.resolve(path).unwrap().unwrap();
        assert!(matches!(method.backend, Backend::AppRole(_)));
        method
    }

    fn store(method: &Method) -> &AppRoleStore {
        match &method.backend {
            Backend::AppRole(s) => s,
            _ => panic!("not approle"),
        }
    }

    #[test]
    fn enables_on_two_nodes_both_survive_and_clash_with_the_stored_table() {
        let (a, b) = two_nodes();
        a.enable("one", MethodKind::AppRole, "").unwrap();
        // B has not heard of `one`.
        b.enable("two", MethodKind::Userpass, "").unwrap();
        assert_eq!(stored_paths(&a), vec!["one", "two"]);
        assert_eq!(paths(&b), vec!["one", "two"], "B installed what is stored");
        assert!(
            b.enable("one/sub", MethodKind::AppRole, "")
                .unwrap_err()
                .to_string()
                .contains("already in use")
        );
        a.apply_change(METHOD_TABLE).unwrap();
        assert_eq!(paths(&a), vec!["one", "two"]);
        // A disables `two`, which it knew only through the change.
        a.disable("two").unwrap();
        b.disable("nothing").unwrap();
        assert_eq!(paths(&b), vec!["one"]);
        assert_eq!(stored_paths(&b), vec!["one"]);
    }

    #[test]
    fn changes_apply_in_place_and_writes_in_flight_stay() {
        let (a, b) = two_nodes();
        a.enable("ar", MethodKind::AppRole, "").unwrap();
        b.apply_change(METHOD_TABLE).unwrap();
        let on_a = approle(&a, "ar");
        let on_b = approle(&b, "ar");
        store(&on_a).write_role("r", |_| Ok(())).unwrap();
        let role_path = format!("auth/{}/role/{}", on_a.entry.uuid, b.lookup.name("r"));
        b.apply_change(&role_path).unwrap();
        assert!(store(&on_b).get_role("r").unwrap().is_some());

        // A request on B holds the method while B applies changes and
        // resyncs: what it writes afterwards is in B's table.
        a.enable("other", MethodKind::AppRole, "").unwrap();
        b.apply_change(METHOD_TABLE).unwrap();
        b.apply_change(&role_path).unwrap();
        b.reload_all().unwrap();
        store(&on_b).write_role("late", |_| Ok(())).unwrap();
        let now_b = approle(&b, "ar");
        assert!(Arc::ptr_eq(&now_b, &on_b), "the method was not replaced");
        assert!(store(&now_b).get_role("late").unwrap().is_some());
        assert_eq!(paths(&b), vec!["ar", "other"]);

        // Changes of unknown methods, the token store, or anything else are ignored.
        for path in [
            "auth/",
            "auth/token/id/00",
            "auth/no-such-uuid/role/x",
            "auth/nouuid",
            "core/other",
            "",
        ] {
            b.apply_change(path).unwrap();
        }
        a.disable("ar").unwrap();
        b.apply_change(METHOD_TABLE).unwrap();
        assert!(b.resolve("ar").unwrap().is_none());
        assert_eq!(paths(&b), vec!["other"]);
    }
}
