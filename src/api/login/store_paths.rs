//! The paths every method kept by a `MethodStore` has (`config`, `role`,
//! `role/:name`, `login`), and serving the configuration and role ones; each
//! method says how its configuration and roles are written and shown
//! ([`StoreApi`]) and serves its own `login`.

use super::*;
use crate::auth::method_store::{MethodStore, Spec};

/// One path of such a method, its role name canonical ([`names::role`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum StorePath {
    Config,
    /// `role` (list; `certs` for `auth/cert`)
    Roles,
    /// `role/:name` (`certs/:name`)
    Role(String),
    Login,
    /// No endpoint here (404 once authorized).
    Unknown,
}

impl StorePath {
    pub(crate) fn parse(rest: &str) -> Self {
        Self::parse_in(rest, "role")
    }

    /// As [`Self::parse`], the roles under `roles` (`certs` for `auth/cert`).
    pub(crate) fn parse_in(rest: &str, roles: &str) -> Self {
        match rest {
            "config" => return Self::Config,
            "login" => return Self::Login,
            _ if rest == roles => return Self::Roles,
            _ => {}
        }
        let name = rest.strip_prefix(roles).and_then(|r| r.strip_prefix('/'));
        match name.filter(|n| !n.contains('/')) {
            Some(name) => names::role(name).map_or(Self::Unknown, Self::Role),
            None => Self::Unknown,
        }
    }

    pub(crate) fn allows(&self, op: Op) -> bool {
        match self {
            Self::Config => matches!(op, Op::Read | Op::Update),
            Self::Roles => op == Op::List,
            Self::Role(_) => matches!(op, Op::Read | Op::Update | Op::Delete),
            Self::Login => op == Op::Update,
            Self::Unknown => true,
        }
    }

    pub(crate) fn is_public(&self) -> bool {
        *self == Self::Login
    }

    pub(crate) fn name(&self) -> Option<&str> {
        match self {
            Self::Role(name) => Some(name),
            _ => None,
        }
    }

    /// The role a write would create (`create`, not `update`, in Vault).
    pub(crate) fn may_create(&self, op: Op) -> Option<&str> {
        match self {
            Self::Role(name) if op == Op::Update => Some(name),
            _ => None,
        }
    }
}

/// How a method's configuration and roles are written and shown.
pub(crate) trait StoreApi: Spec + Sized {
    fn config_data(ready: &Self::Ready) -> Value;
    /// A configuration write (it replaces the whole configuration).
    fn write_config(store: &MethodStore<Self>, p: &Params) -> ApiResult<Reply>;
    fn role_data(role: &Self::Role) -> Value;
    fn write_role(store: &MethodStore<Self>, name: &str, p: &Params) -> ApiResult<Reply>;
}

/// Serves `path` (not `login`: the method's own) of a method kept by `store`.
pub(crate) fn serve_store<S: StoreApi>(
    store: &MethodStore<S>,
    op: Op,
    path: &StorePath,
    p: &Params,
) -> ApiResult<Reply> {
    use StorePath as P;
    match (path, op) {
        (P::Config, Op::Read) => {
            let ready = store.config()?.ok_or(ApiError::NotFound)?;
            Ok(Reply::data(S::config_data(&ready)))
        }
        (P::Config, _) => S::write_config(store, p),
        (P::Roles, _) => list_reply(store.list_roles()?, p),
        (P::Role(name), Op::Read) => {
            let role = store.get_role(name)?.ok_or(ApiError::NotFound)?;
            Ok(Reply::data(S::role_data(&role)))
        }
        (P::Role(name), Op::Delete) => {
            store.delete_role(name)?;
            Ok(Reply::no_content())
        }
        (P::Role(name), _) => S::write_role(store, name, p),
        (P::Login | P::Unknown, _) => Err(ApiError::UnsupportedPath),
    }
}
