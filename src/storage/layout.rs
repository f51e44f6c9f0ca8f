//! Where everything lives in storage: every path and prefix a store uses,
//! and which store owns each ([`owner`]).
//!
//! Plain (the seal's, read before the barrier exists): `core/seal-config`,
//! `core/keyring` (sealed by the root key), `core/root-key` (static seal),
//! `core/init-in-progress`. Everything else goes through the barrier:
//! * `core/lookup-key`, `core/cluster`: written at init, never changed;
//! * `core/mounts`, `logical/<mount uuid>/{config,wrapping-key,keys/<HMAC of key name>}`;
//! * `usage/<HMAC of key material>`: encryption counts, one per key material
//!   across every mount;
//! * `core/auth`, `auth/<method uuid>/...` (userpass `users/`, AppRole
//!   `role/` and `secret_id/`);
//! * `auth/token/id/<HMAC of token>`, `auth/token/parent/<parent>/<child>`;
//! * `sys/policy/<HMAC of name>`; `core/audit`;
//! * `sys/wrapping/<HMAC of wrapping token>`: wrapped replies.
//!
//! Names are HMACed so the database shows neither key names nor tokens.
//! Mount and method UUIDs are random v4 UUIDs, so `auth/<uuid>/` never
//! meets `auth/token/`.

pub const SEAL_CONFIG: &str = "core/seal-config";
pub const KEYRING: &str = "core/keyring";
pub const ROOT_KEY: &str = "core/root-key";
/// Present while an init is under way; a leftover means it never finished.
pub const INIT_MARKER: &str = "core/init-in-progress";

pub const LOOKUP_KEY: &str = "core/lookup-key";
pub const CLUSTER: &str = "core/cluster";

pub const MOUNT_TABLE: &str = "core/mounts";
/// Followed by `<mount uuid>/`.
pub const MOUNTS: &str = "logical/";
/// Inside a mount's prefix.
pub const MOUNT_CONFIG: &str = "config";
/// Inside a mount's prefix.
pub const MOUNT_KEYS: &str = "keys/";
/// Inside a mount's prefix: the BYOK wrapping key (PKCS#8), made on first use.
pub const MOUNT_WRAPPING_KEY: &str = "wrapping-key";

pub const METHOD_TABLE: &str = "core/auth";
/// Followed by `<method uuid>/`; `auth/token/` is the token store's.
pub const METHODS: &str = "auth/";
/// Inside a userpass method's prefix.
pub const USERPASS_USERS: &str = "users/";
/// Inside an AppRole method's prefix.
pub const APPROLE_ROLES: &str = "role/";
/// Inside an AppRole method's prefix.
pub const APPROLE_SECRET_IDS: &str = "secret_id/";
/// Inside the prefix of a method with one configuration and roles (`jwt`,
/// `kubernetes`: `auth/method_store.rs`): the configuration.
pub const METHOD_CONFIG: &str = "config";
/// Inside the prefix of a method with one configuration and roles.
pub const METHOD_ROLES: &str = "role/";

pub const TOKENS: &str = "auth/token/";
pub const TOKEN_IDS: &str = "auth/token/id/";
/// `<TOKEN_PARENTS><parent hex>/<child hex>`: the links from parents to children.
pub const TOKEN_PARENTS: &str = "auth/token/parent/";

pub const POLICIES: &str = "sys/policy/";

/// `<USAGE><HMAC of key material>`: encryptions reserved under one key
/// material (`state/usage.rs`). Outside every mount: the same material
/// restored or imported into another mount shares the count. Read from
/// storage every time, so no owner.
pub const USAGE: &str = "usage/";

/// `<WRAPPED_REPLIES><HMAC of the wrapping token>`: a wrapped reply (`auth/wrapping.rs`); read from storage every time, so no owner.
pub const WRAPPED_REPLIES: &str = "sys/wrapping/";

pub const AUDIT_TABLE: &str = "core/audit";
/// `<AUDIT_CHECKPOINTS><hex>`: a file audit device's latest checkpoint on one node (`audit/store.rs`); no cache, so no owner.
pub const AUDIT_CHECKPOINTS: &str = "audit-checkpoint/";

/// `logical/<uuid>/`: everything of one transit mount.
pub fn mount_prefix(uuid: &str) -> String {
    format!("{MOUNTS}{uuid}/")
}

/// `auth/<uuid>/`: everything of one login method.
pub fn method_prefix(uuid: &str) -> String {
    format!("{METHODS}{uuid}/")
}

/// The store that owns a path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Owner<'p> {
    /// The seal's plain entries.
    Seal,
    /// Entries written once at init.
    Core,
    MountTable,
    /// The mount with this UUID (the segment after `logical/`).
    Mount(&'p str),
    Tokens,
    /// Parent links, read from storage when a token is revoked.
    TokenLinks,
    Policies,
    MethodTable,
    /// The login method with this UUID (the segment after `auth/`).
    Method(&'p str),
    AuditTable,
}

/// Which store owns `path`; `None`: nobody's.
pub fn owner(path: &str) -> Option<Owner<'_>> {
    Some(match path {
        SEAL_CONFIG | KEYRING | ROOT_KEY | INIT_MARKER => Owner::Seal,
        LOOKUP_KEY | CLUSTER => Owner::Core,
        MOUNT_TABLE => Owner::MountTable,
        METHOD_TABLE => Owner::MethodTable,
        AUDIT_TABLE => Owner::AuditTable,
        _ if path.starts_with(TOKEN_IDS) => Owner::Tokens,
        _ if path.starts_with(TOKEN_PARENTS) => Owner::TokenLinks,
        _ if path.starts_with(TOKENS) => return None,
        _ if path.starts_with(POLICIES) => Owner::Policies,
        _ => {
            if let Some(rest) = path.strip_prefix(MOUNTS) {
                Owner::Mount(first_segment(rest))
            } else if let Some(rest) = path.strip_prefix(METHODS) {
                Owner::Method(first_segment(rest))
            } else {
                return None;
            }
        }
    })
}

/// `rest` up to its first `/` (all of it if none).
fn first_segment(rest: &str) -> &str {
    rest.split('/').next().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const UUID: &str = "6f1c1a52-3b7e-4c1d-9f0e-2a8d5b7c9e01";

    /// Every fixed path and every prefix, with its owner.
    fn places() -> Vec<(String, Owner<'static>)> {
        let fixed = [
            (SEAL_CONFIG, Owner::Seal),
            (KEYRING, Owner::Seal),
            (ROOT_KEY, Owner::Seal),
            (INIT_MARKER, Owner::Seal),
            (LOOKUP_KEY, Owner::Core),
            (CLUSTER, Owner::Core),
            (MOUNT_TABLE, Owner::MountTable),
            (METHOD_TABLE, Owner::MethodTable),
            (AUDIT_TABLE, Owner::AuditTable),
            (TOKEN_IDS, Owner::Tokens),
            (TOKEN_PARENTS, Owner::TokenLinks),
            (POLICIES, Owner::Policies),
        ];
        let mut places: Vec<(String, Owner<'static>)> =
            fixed.iter().map(|(p, o)| ((*p).to_owned(), *o)).collect();
        places.push((mount_prefix(UUID), Owner::Mount(UUID)));
        places.push((method_prefix(UUID), Owner::Method(UUID)));
        places
    }

    #[test]
    fn no_two_stores_prefixes_overlap() {
        let places = places();
        for (a, owner_a) in &places {
            assert_eq!(owner(a), Some(*owner_a), "{a}");
            for (b, owner_b) in &places {
                if owner_a != owner_b {
                    assert!(!b.starts_with(a.as_str()), "{b} lies under {a}");
                }
            }
        }
        // Inside one mount or method, each kind of entry has its own prefix.
        let groups: [&[&str]; 3] = [
            &[MOUNT_CONFIG, MOUNT_KEYS, MOUNT_WRAPPING_KEY],
            &[USERPASS_USERS, APPROLE_ROLES, APPROLE_SECRET_IDS],
            &[METHOD_CONFIG, METHOD_ROLES],
        ];
        for group in groups {
            for a in group {
                for b in group.iter().filter(|b| *b != a) {
                    assert!(!b.starts_with(a), "{b} lies under {a}");
                }
            }
        }
    }

    #[test]
    fn entries_belong_to_the_store_whose_prefix_they_have() {
        let key = format!("{}{MOUNT_KEYS}abc", mount_prefix(UUID));
        assert_eq!(owner(&key), Some(Owner::Mount(UUID)));
        let user = format!("{}{USERPASS_USERS}abc", method_prefix(UUID));
        assert_eq!(owner(&user), Some(Owner::Method(UUID)));
        assert_eq!(owner("auth/token/id/00"), Some(Owner::Tokens));
        assert_eq!(owner("auth/token/parent/00/11"), Some(Owner::TokenLinks));
        assert_eq!(owner("sys/policy/00"), Some(Owner::Policies));
        // A fresh v4 UUID never names the token store.
        let fresh = uuid::Uuid::new_v4().to_string();
        assert_eq!(
            owner(&method_prefix(&fresh)),
            Some(Owner::Method(fresh.as_str()))
        );
        for nobody in [
            "",
            "core/other",
            "auth/token/other",
            "sys/other",
            "usage/00",
            "x",
        ] {
            assert_eq!(owner(nobody), None, "{nobody}");
        }
    }
}
