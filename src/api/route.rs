//! A request's path, parsed once into a [`Route`], and every rule that
//! depends on where a request goes.
//!
//! The path is parsed here and nowhere else: which group or mount it is in,
//! which endpoint inside it, and each name in it made canonical
//! ([`super::names`]). Authorization checks [`Routed::path`], rebuilt from
//! those canonical names; the audit entries record it; the handler receives
//! the parsed endpoint. Nothing later splits or normalizes the path string
//! again, so the name a policy rule matched is the name served.
//!
//! Each rule is a method, and each method matches every variant (no
//! wildcard), so a new endpoint does not compile until it is classified:
//! whether it needs a token ([`Route::is_public`]), the capability an
//! operation needs ([`Route::capability`]) and `sudo` ([`Route::needs_sudo`]),
//! whether it changes nothing ([`Route::changes_nothing`]), whether it may
//! block a worker ([`Route::may_block`]), and which operations it takes
//! (404 and 405, [`Route::refusal`]).

use std::sync::Arc;

use super::Op;
use super::endpoint::Endpoint;
use super::login::MethodPath;
use super::sys::SysPath;
use super::token::TokenPath;
use crate::auth::methods::Method as AuthMethod;
use crate::auth::policy::Capability;
use crate::error::{ApiError, ApiResult};
use crate::metrics::{MetricsAccess, RoutePlace};
use crate::state::{AppState, Mount, Unsealed};

/// Where a request goes.
#[derive(Debug)]
pub(crate) enum Route {
    /// `sys/...`
    Sys(SysPath),
    /// `auth/token/...`
    Token(TokenPath),
    /// A login method's path.
    Login {
        method: Arc<AuthMethod>,
        path: MethodPath,
    },
    /// A transit mount's path: its endpoint, or why there is none (404 or
    /// 405, answered once the request is authorized, as Vault does).
    Transit {
        mount: Arc<Mount>,
        endpoint: Result<Endpoint, Miss>,
    },
    /// No mount or login method at this path (404 once authorized).
    Nowhere,
}

/// A request's mount, kept for its route timer ([`Routed::timed_at`]).
#[derive(Debug)]
pub(crate) enum TimedAt {
    Sys,
    Token,
    Secrets(Arc<Mount>),
    Auth(Arc<AuthMethod>),
}

impl TimedAt {
    pub(crate) fn place(&self) -> RoutePlace<'_> {
        match self {
            Self::Sys => RoutePlace::Sys,
            Self::Token => RoutePlace::Token,
            Self::Secrets(mount) => RoutePlace::Secrets(&mount.path),
            Self::Auth(method) => RoutePlace::Auth(&method.entry.path),
        }
    }
}

/// Why a path inside a transit mount is no endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Miss {
    /// 404
    Path,
    /// 405
    Operation,
}

/// A parsed request: the operation, its route, and the canonical path that
/// authorization checks and the audit log records.
#[derive(Debug)]
pub(crate) struct Routed {
    pub op: Op,
    pub path: String,
    pub route: Route,
}

impl Routed {
    /// Parses `path` (already [`super::canonical_path`]). A name that is not
    /// canonical is refused here (400), before anything else happens; the
    /// keys are needed (503 while sealed) only for paths under a mount.
    pub(crate) fn parse(op: Op, path: String, state: &AppState) -> ApiResult<Self> {
        if let Some(rest) = path.strip_prefix("sys/") {
            let sys = SysPath::parse(rest)?;
            let path = match &sys {
                SysPath::Policy { name, legacy: true } => format!("sys/policy/{name}"),
                SysPath::Policy {
                    name,
                    legacy: false,
                } => format!("sys/policies/acl/{name}"),
                _ => path,
            };
            return Ok(Self {
                op,
                path,
                route: Route::Sys(sys),
            });
        }
        if let Some(rest) = path.strip_prefix("auth/token/") {
            let route = Route::Token(TokenPath::parse(rest));
            return Ok(Self { op, path, route });
        }
        let unsealed = state.unsealed()?;
        if let Some(inside) = path.strip_prefix("auth/") {
            let Some((method, rest)) = unsealed.methods.resolve(inside)? else {
                return Ok(Self::nowhere(op, path));
            };
            let parsed = MethodPath::parse(&method.backend, rest);
            let path = match parsed.name() {
                // The name is the second segment of every named path.
                Some(name) => {
                    let mut segments: Vec<&str> = rest.split('/').collect();
                    segments[1] = name;
                    format!("auth/{}/{}", method.entry.path, segments.join("/"))
                }
                None => path.clone(),
            };
            let route = Route::Login {
                method,
                path: parsed,
            };
            return Ok(Self { op, path, route });
        }
        let Some((mount, rest)) = unsealed.resolve(&path)? else {
            return Ok(Self::nowhere(op, path));
        };
        let endpoint = match Endpoint::parse(op, rest) {
            Ok(endpoint) => Ok(endpoint),
            Err(ApiError::UnsupportedPath) => Err(Miss::Path),
            Err(ApiError::UnsupportedOperation) => Err(Miss::Operation),
            Err(refused) => return Err(refused),
        };
        let route = Route::Transit { mount, endpoint };
        Ok(Self { op, path, route })
    }

    fn nowhere(op: Op, path: String) -> Self {
        Self {
            op,
            path,
            route: Route::Nowhere,
        }
    }

    /// What the request gets instead of being served when it names no
    /// endpoint (404) or one that does not take its operation (405).
    pub(crate) fn refusal(&self) -> Option<ApiError> {
        let allows = match &self.route {
            Route::Sys(SysPath::Unknown) => return Some(ApiError::UnsupportedPath),
            Route::Token(TokenPath::Unknown) => return Some(ApiError::UnsupportedPath),
            Route::Login { path, .. } if !path.exists() => return Some(ApiError::UnsupportedPath),
            Route::Sys(path) => path.allows(self.op),
            Route::Token(path) => path.allows(self.op),
            Route::Login { path, .. } => path.allows(self.op),
            Route::Transit { endpoint, .. } => match endpoint {
                Ok(_) => true,
                Err(Miss::Path) => return Some(ApiError::UnsupportedPath),
                Err(Miss::Operation) => false,
            },
            Route::Nowhere => return Some(ApiError::NoRoute(self.path.clone())),
        };
        (!allows).then_some(ApiError::UnsupportedOperation)
    }

    /// Where Vault's `vault_route_*` timers file this request: the mount it
    /// was routed to (the table's entry, not the request's spelling); none
    /// for a path under no mount.
    pub(crate) fn timed_at(&self) -> Option<TimedAt> {
        Some(match &self.route {
            Route::Sys(_) => TimedAt::Sys,
            Route::Token(_) => TimedAt::Token,
            Route::Login { method, .. } => TimedAt::Auth(Arc::clone(method)),
            Route::Transit { mount, .. } => TimedAt::Secrets(Arc::clone(mount)),
            Route::Nowhere => return None,
        })
    }

    /// The capability the operation needs here, as Vault decides it:
    /// `create` instead of `update` where the write would create its target.
    pub(crate) fn capability(&self) -> Capability {
        match self.op {
            Op::Read => Capability::Read,
            Op::List => Capability::List,
            Op::Delete => Capability::Delete,
            Op::Update if self.route.creates(self.op) => Capability::Create,
            Op::Update => Capability::Update,
        }
    }
}

impl Route {
    /// Whether it is served without a token on a listener with `access`.
    pub(crate) fn is_public(&self, access: MetricsAccess) -> bool {
        match self {
            Self::Sys(path) => path.is_public(access),
            Self::Login { path, .. } => path.is_public(),
            Self::Token(_) | Self::Transit { .. } | Self::Nowhere => false,
        }
    }

    /// Whether it needs `sudo` besides the operation's capability (Vault's
    /// root-protected paths).
    pub(crate) fn needs_sudo(&self) -> bool {
        match self {
            Self::Sys(path) => path.needs_sudo(),
            Self::Token(path) => path.needs_sudo(),
            Self::Login { .. } | Self::Transit { .. } | Self::Nowhere => false,
        }
    }

    /// Whether `op` would create something (a user, a role, a transit key,
    /// written or created by encrypt's upsert). Asked of this node's cache
    /// only, and failing closed: anything not known to exist (an error
    /// included) counts as created.
    fn creates(&self, op: Op) -> bool {
        match self {
            Self::Login { method, path } => path.creates(&method.backend, op),
            Self::Transit {
                mount,
                endpoint: Ok(endpoint),
            } => endpoint
                .may_create()
                .is_some_and(|name| !matches!(mount.key(name), Ok(Some(_)))),
            Self::Sys(_) | Self::Token(_) | Self::Transit { .. } | Self::Nowhere => false,
        }
    }

    /// Whether serving it changes nothing, so its request entry may be
    /// written while it is served ([`Endpoint::changes_nothing`]): only a
    /// transit endpoint can; every `sys/` and `auth/` path changes state.
    pub(crate) fn changes_nothing(&self) -> bool {
        match self {
            Self::Transit {
                mount,
                endpoint: Ok(endpoint),
            } => endpoint.changes_nothing(
                |name| matches!(mount.key(name), Ok(Some(ring)) if !ring.deletion_allowed()),
            ),
            Self::Sys(_) | Self::Token(_) | Self::Login { .. } | Self::Transit { .. } => false,
            Self::Nowhere => false,
        }
    }

    /// Whether serving it may block (password hashing, key generation,
    /// storage writes with an fsync each), and so must run off the async
    /// workers.
    pub(crate) fn may_block(&self) -> bool {
        match self {
            Self::Login { .. } => true,
            Self::Transit {
                mount,
                endpoint: Ok(endpoint),
            } => endpoint.may_block(|name| !matches!(mount.key(name), Ok(Some(_)))),
            Self::Sys(_) | Self::Token(_) | Self::Transit { .. } | Self::Nowhere => false,
        }
    }

    /// Whether its mount or login method is still the one the request was
    /// routed to: it may have been disabled while the body was read and the
    /// request entry written, and serving into a removed mount would leave
    /// entries behind.
    pub(crate) fn still_current(&self, unsealed: &Unsealed) -> ApiResult<bool> {
        Ok(match self {
            Self::Transit { mount, .. } => {
                matches!(unsealed.resolve(&mount.path)?, Some((m, _)) if Arc::ptr_eq(&m, mount))
            }
            Self::Login { method, .. } => matches!(
                unsealed.methods.resolve(&method.entry.path)?,
                Some((m, _)) if Arc::ptr_eq(&m, method)
            ),
            Self::Sys(_) | Self::Token(_) | Self::Nowhere => true,
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::api::login::{AppRolePath, JwtPath, StorePath, UserpassPath};
    use crate::api::wrapping::WrappingPath;
    use crate::auth::methods::MethodKind;
    use crate::state::Limits;

    const OPS: [(Op, char); 4] = [
        (Op::Read, 'R'),
        (Op::Update, 'U'),
        (Op::Delete, 'D'),
        (Op::List, 'L'),
    ];

    /// A dev server with transit at `transit/`, key `k` (not deletable),
    /// userpass at `userpass/` and AppRole at `approle/`.
    pub(crate) fn server() -> AppState {
        let state = AppState::dev("root", Limits::default());
        let unsealed = state.unsealed().unwrap();
        unsealed
            .methods
            .enable("userpass", MethodKind::Userpass, "")
            .unwrap();
        unsealed
            .methods
            .enable("approle", MethodKind::AppRole, "")
            .unwrap();
        unsealed.methods.enable("jwt", MethodKind::Jwt, "").unwrap();
        unsealed
            .methods
            .enable("kubernetes", MethodKind::Kubernetes, "")
            .unwrap();
        unsealed
            .methods
            .enable("cert", MethodKind::Cert, "")
            .unwrap();
        let (mount, _) = unsealed.resolve("transit").unwrap().unwrap();
        let ring = transit_keys::Keyring::create(
            "k",
            "aes256-gcm96".parse().unwrap(),
            &transit_keys::CreateOptions::default(),
            time::OffsetDateTime::now_utc(),
        )
        .unwrap();
        mount
            .update("k", |_| Ok::<_, ApiError>((Some(ring.clone()), ())))
            .unwrap();
        state
    }

    /// The endpoint's own name, from an exhaustive match: a new variant does
    /// not compile until it is named here, and once named it must have a
    /// row in the table below, or `every_route_is_classified` fails.
    pub(crate) fn variant(route: &Route) -> &'static str {
        use Endpoint as E;
        use SysPath as S;
        use TokenPath as T;
        match route {
            Route::Sys(path) => match path {
                S::Health => "sys health",
                S::SealStatus => "sys seal-status",
                S::Init => "sys init",
                S::Unseal => "sys unseal",
                S::Leader => "sys leader",
                S::Seal => "sys seal",
                S::Rotate => "sys rotate",
                S::KeyStatus => "sys key-status",
                S::GenerateRoot {
                    update: false,
                    with_token: false,
                } => "sys generate-root attempt",
                S::GenerateRoot {
                    update: true,
                    with_token: false,
                } => "sys generate-root update",
                S::GenerateRoot {
                    update: false,
                    with_token: true,
                } => "sys generate-root-token attempt",
                S::GenerateRoot {
                    update: true,
                    with_token: true,
                } => "sys generate-root-token update",
                S::Rekey { target, step } => {
                    use crate::api::sys::{RekeyStep as St, RekeyTarget as Tg};
                    match (target, step) {
                        (Tg::Unseal, St::Init) => "sys rekey init",
                        (Tg::Unseal, St::Update) => "sys rekey update",
                        (Tg::Unseal, St::Verify) => "sys rekey verify",
                        (Tg::Recovery, St::Init) => "sys rekey-recovery-key init",
                        (Tg::Recovery, St::Update) => "sys rekey-recovery-key update",
                        (Tg::Recovery, St::Verify) => "sys rekey-recovery-key verify",
                    }
                }
                S::Mounts => "sys mounts",
                S::Mount(_) => "sys mount",
                S::PolicyNames => "sys policy names",
                S::AclPolicyNames => "sys acl policy names",
                S::Policy { legacy: true, .. } => "sys legacy policy",
                S::Policy { legacy: false, .. } => "sys acl policy",
                S::CapabilitiesSelf => "sys capabilities-self",
                S::AuthMethods => "sys auth methods",
                S::AuthMethod(_) => "sys auth method",
                S::AuditDevices => "sys audit devices",
                S::AuditDevice(_) => "sys audit device",
                S::AuditHash(_) => "sys audit hash",
                S::AuditCheckpoint(_) => "sys audit checkpoint",
                S::Wrapping(WrappingPath::Wrap) => "sys wrapping wrap",
                S::Wrapping(WrappingPath::Lookup) => "sys wrapping lookup",
                S::Wrapping(WrappingPath::Unwrap) => "sys wrapping unwrap",
                S::Wrapping(WrappingPath::Rewrap) => "sys wrapping rewrap",
                S::RevokePrefix { force: false, .. } => "sys leases revoke-prefix",
                S::RevokePrefix { force: true, .. } => "sys leases revoke-force",
                S::Metrics { .. } => "sys metrics",
                S::OpenApi => "sys openapi",
                S::Unknown => "sys unknown",
            },
            Route::Token(path) => match path {
                T::Create => "token create",
                T::CreateOrphan => "token create-orphan",
                T::LookupSelf => "token lookup-self",
                T::Lookup => "token lookup",
                T::LookupAccessor => "token lookup-accessor",
                T::RenewSelf => "token renew-self",
                T::Renew => "token renew",
                T::RevokeSelf => "token revoke-self",
                T::Revoke => "token revoke",
                T::RevokeAccessor => "token revoke-accessor",
                T::RevokeOrphan => "token revoke-orphan",
                T::Accessors => "token accessors",
                T::Unknown => "token unknown",
            },
            Route::Login { path, .. } => match path {
                MethodPath::Userpass(path) => match path {
                    UserpassPath::Users => "userpass users",
                    UserpassPath::User(_) => "userpass user",
                    UserpassPath::Password(_) => "userpass password",
                    UserpassPath::Policies(_) => "userpass policies",
                    UserpassPath::Login(_) => "userpass login",
                    UserpassPath::NoLogin => "userpass no login",
                    UserpassPath::Unknown => "userpass unknown",
                },
                MethodPath::AppRole(path) => match path {
                    AppRolePath::Login => "approle login",
                    AppRolePath::Roles => "approle roles",
                    AppRolePath::Role(_) => "approle role",
                    AppRolePath::RoleId(_) => "approle role-id",
                    AppRolePath::SecretId(_) => "approle secret-id",
                    AppRolePath::CustomSecretId(_) => "approle custom-secret-id",
                    AppRolePath::SecretIdLookup(_) => "approle secret-id lookup",
                    AppRolePath::SecretIdDestroy(_) => "approle secret-id destroy",
                    AppRolePath::AccessorLookup(_) => "approle accessor lookup",
                    AppRolePath::AccessorDestroy(_) => "approle accessor destroy",
                    AppRolePath::Unknown => "approle unknown",
                },
                MethodPath::Jwt(path) => match path {
                    JwtPath::Store(StorePath::Config) => "jwt config",
                    JwtPath::Store(StorePath::Roles) => "jwt roles",
                    JwtPath::Store(StorePath::Role(_)) => "jwt role",
                    JwtPath::Store(StorePath::Login) => "jwt login",
                    JwtPath::Store(StorePath::Unknown) => "jwt unknown",
                    JwtPath::OidcFlow => "jwt oidc flow",
                },
                MethodPath::Kubernetes(path) => match path {
                    StorePath::Config => "kubernetes config",
                    StorePath::Roles => "kubernetes roles",
                    StorePath::Role(_) => "kubernetes role",
                    StorePath::Login => "kubernetes login",
                    StorePath::Unknown => "kubernetes unknown",
                },
                MethodPath::Cert(path) => match path {
                    StorePath::Config => "cert config",
                    StorePath::Roles => "cert certs",
                    StorePath::Role(_) => "cert cert",
                    StorePath::Login => "cert login",
                    StorePath::Unknown => "cert unknown",
                },
            },
            Route::Transit { endpoint, .. } => match endpoint {
                Ok(endpoint) => match endpoint {
                    E::ListKeys => "transit list keys",
                    E::ReadKey(_) => "transit read key",
                    E::WriteKey(_) => "transit write key",
                    E::DeleteKey(_) => "transit delete key",
                    E::ConfigureKey(_) => "transit configure key",
                    E::RotateKey(_) => "transit rotate key",
                    E::TrimKey(_) => "transit trim key",
                    E::SoftDeleteKey(_) => "transit soft-delete key",
                    E::RestoreSoftDeletedKey(_) => "transit soft-delete-restore key",
                    E::Encrypt(_) => "transit encrypt",
                    E::Decrypt(_) => "transit decrypt",
                    E::Rewrap(_) => "transit rewrap",
                    E::Datakey { .. } => "transit datakey",
                    E::Hmac { .. } => "transit hmac",
                    E::Sign { .. } => "transit sign",
                    E::Verify { .. } => "transit verify",
                    E::Export { .. } => "transit export",
                    E::Backup(_) => "transit backup",
                    E::Restore(_) => "transit restore",
                    E::Random(_) => "transit random",
                    E::Hash(_) => "transit hash",
                    E::ReadCacheConfig => "transit read cache-config",
                    E::WriteCacheConfig => "transit write cache-config",
                    E::ReadKeysConfig => "transit read config/keys",
                    E::WriteKeysConfig => "transit write config/keys",
                    E::WrappingKey => "transit wrapping_key",
                    E::ImportKey(_) => "transit import key",
                    E::ImportKeyVersion(_) => "transit import key version",
                    E::ByokExport { .. } => "transit byok-export",
                },
                Err(Miss::Path) => "transit unknown",
                Err(Miss::Operation) => "transit wrong operation",
            },
            Route::Nowhere => "nowhere",
        }
    }

    /// Every route the server serves, with its classification: no token
    /// needed, `sudo` needed, `create` (not `update`) for a write, changes
    /// nothing (for its first operation), and the operations it takes (any
    /// other is 405; "-" for a path that is no endpoint: 404 for every one).
    #[rustfmt::skip]
    const TABLE: &[(&str, bool, bool, bool, bool, &str)] = &[
        // path                                      public sudo  create nothing ops
        ("sys/health",                               true,  false, false, false, "R"),
        ("sys/seal-status",                          true,  false, false, false, "R"),
        ("sys/init",                                 true,  false, false, false, "RU"),
        ("sys/unseal",                               true,  false, false, false, "U"),
        ("sys/leader",                               true,  false, false, false, "R"),
        ("sys/seal",                                 false, true,  false, false, "U"),
        ("sys/rotate",                               false, true,  false, false, "U"),
        ("sys/key-status",                           false, false, false, false, "R"),
        ("sys/generate-root/attempt",                true,  false, false, false, "RUD"),
        ("sys/generate-root/update",                 true,  false, false, false, "U"),
        ("sys/generate-root-token/attempt",          false, false, false, false, "RUD"),
        ("sys/generate-root-token/update",           false, false, false, false, "U"),
        ("sys/rekey/init",                           true,  false, false, false, "RUD"),
        ("sys/rekey/update",                         true,  false, false, false, "U"),
        ("sys/rekey/verify",                         true,  false, false, false, "RUD"),
        ("sys/rekey-recovery-key/init",              true,  false, false, false, "RUD"),
        ("sys/rekey-recovery-key/update",            true,  false, false, false, "U"),
        ("sys/rekey-recovery-key/verify",            true,  false, false, false, "RUD"),
        ("sys/rotate/keyring",                       false, true,  false, false, "U"),
        ("sys/mounts",                               false, false, false, false, "R"),
        ("sys/mounts/m",                             false, false, false, false, "UD"),
        ("sys/policy",                               false, false, false, false, "R"),
        ("sys/policies/acl",                         false, false, false, false, "L"),
        ("sys/policy/p",                             false, false, false, false, "RUD"),
        ("sys/policies/acl/p",                       false, false, false, false, "RUD"),
        ("sys/capabilities-self",                    false, false, false, false, "U"),
        ("sys/auth",                                 false, false, false, false, "R"),
        ("sys/auth/m",                               false, true,  false, false, "UD"),
        ("sys/audit",                                false, true,  false, false, "R"),
        ("sys/audit/d",                              false, true,  false, false, "UD"),
        ("sys/audit-hash/d",                         false, true,  false, false, "U"),
        ("sys/audit-checkpoint/d",                   false, true,  false, false, "R"),
        ("sys/wrapping/wrap",                        false, false, false, false, "U"),
        ("sys/wrapping/lookup",                      true,  false, false, false, "RU"),
        ("sys/wrapping/unwrap",                      false, false, false, false, "U"),
        ("sys/wrapping/rewrap",                      false, false, false, false, "U"),
        ("sys/wrapping/nope",                        false, false, false, false, "-"),
        ("sys/leases/revoke-prefix/auth/userpass",   false, true,  false, false, "U"),
        ("sys/leases/revoke-force/auth/userpass/login/u", false, true, false, false, "U"),
        ("sys/metrics",                              false, false, false, false, "R"),
        ("sys/internal/specs/openapi",               false, false, false, false, "RU"),
        ("sys/nope",                                 false, false, false, false, "-"),
        ("auth/token/create",                        false, false, false, false, "U"),
        ("auth/token/create-orphan",                 false, true,  false, false, "U"),
        ("auth/token/lookup-self",                   false, false, false, false, "RU"),
        ("auth/token/lookup",                        false, false, false, false, "RU"),
        ("auth/token/lookup-accessor",               false, false, false, false, "U"),
        ("auth/token/renew-self",                    false, false, false, false, "U"),
        ("auth/token/renew",                         false, false, false, false, "U"),
        ("auth/token/revoke-self",                   false, false, false, false, "U"),
        ("auth/token/revoke",                        false, false, false, false, "U"),
        ("auth/token/revoke-accessor",               false, false, false, false, "U"),
        ("auth/token/revoke-orphan",                 false, true,  false, false, "U"),
        ("auth/token/accessors",                     false, true,  false, false, "L"),
        ("auth/token/nope",                          false, false, false, false, "-"),
        ("auth/userpass/users",                      false, false, false, false, "L"),
        ("auth/userpass/users/u",                    false, false, true,  false, "RUD"),
        ("auth/userpass/users/u/password",           false, false, false, false, "U"),
        ("auth/userpass/users/u/policies",           false, false, false, false, "U"),
        ("auth/userpass/login/u",                    true,  false, false, false, "U"),
        ("auth/userpass/login/u/x",                  true,  false, false, false, "-"),
        ("auth/userpass/nope",                       false, false, false, false, "-"),
        ("auth/approle/login",                       true,  false, false, false, "U"),
        ("auth/approle/role",                        false, false, false, false, "L"),
        ("auth/approle/role/r",                      false, false, true,  false, "RUD"),
        ("auth/approle/role/r/role-id",              false, false, false, false, "RU"),
        ("auth/approle/role/r/secret-id",            false, false, false, false, "UL"),
        ("auth/approle/role/r/custom-secret-id",     false, false, false, false, "U"),
        ("auth/approle/role/r/secret-id/lookup",     false, false, false, false, "U"),
        ("auth/approle/role/r/secret-id/destroy",    false, false, false, false, "UD"),
        ("auth/approle/role/r/secret-id-accessor/lookup", false, false, false, false, "U"),
        ("auth/approle/role/r/secret-id-accessor/destroy", false, false, false, false, "UD"),
        ("auth/approle/role/r/nope",                 false, false, false, false, "-"),
        ("auth/jwt/config",                          false, false, false, false, "RU"),
        ("auth/jwt/role",                            false, false, false, false, "L"),
        ("auth/jwt/role/r",                          false, false, true,  false, "RUD"),
        ("auth/jwt/login",                           true,  false, false, false, "U"),
        ("auth/jwt/oidc/auth_url",                   true,  false, false, false, "RU"),
        ("auth/jwt/oidc/callback",                   true,  false, false, false, "RU"),
        ("auth/jwt/role/r/x",                        false, false, false, false, "-"),
        ("auth/kubernetes/config",                   false, false, false, false, "RU"),
        ("auth/kubernetes/role",                     false, false, false, false, "L"),
        ("auth/kubernetes/role/r",                   false, false, true,  false, "RUD"),
        ("auth/kubernetes/login",                    true,  false, false, false, "U"),
        ("auth/kubernetes/nope",                     false, false, false, false, "-"),
        ("auth/cert/config",                         false, false, false, false, "RU"),
        ("auth/cert/certs",                          false, false, false, false, "L"),
        ("auth/cert/certs/web",                      false, false, true,  false, "RUD"),
        ("auth/cert/login",                          true,  false, false, false, "U"),
        ("auth/cert/role/web",                       false, false, false, false, "-"),
        ("auth/cert/certs/a/b",                      false, false, false, false, "-"),
        ("transit/keys",                             false, false, false, true,  "L"),
        ("transit/keys/k",                           false, false, false, true,  "RUD"),
        ("transit/keys/new",                         false, false, true,  true,  "RUD"),
        ("transit/keys/k/config",                    false, false, false, false, "U"),
        ("transit/keys/k/rotate",                    false, false, false, false, "U"),
        ("transit/keys/k/trim",                      false, false, false, false, "U"),
        ("transit/keys/k/soft-delete",               false, false, false, false, "D"),
        ("transit/keys/k/soft-delete-restore",       false, false, false, false, "U"),
        ("transit/encrypt/k",                        false, false, false, true,  "U"),
        ("transit/encrypt/new",                      false, false, true,  false, "U"),
        ("transit/decrypt/k",                        false, false, false, true,  "U"),
        ("transit/rewrap/k",                         false, false, false, true,  "U"),
        ("transit/datakey/plaintext/k",              false, false, false, true,  "U"),
        ("transit/hmac/k",                           false, false, false, true,  "U"),
        ("transit/hmac/k/sha2-512",                  false, false, false, true,  "U"),
        ("transit/sign/k",                           false, false, false, true,  "U"),
        ("transit/verify/k/sha2-256",                false, false, false, true,  "U"),
        ("transit/export/encryption-key/k",          false, false, false, true,  "R"),
        ("transit/export/encryption-key/k/1",        false, false, false, true,  "R"),
        ("transit/backup/k",                         false, false, false, false, "R"),
        ("transit/restore",                          false, false, false, false, "U"),
        ("transit/restore/k",                        false, false, false, false, "U"),
        ("transit/random",                           false, false, false, true,  "U"),
        ("transit/random/all/32",                    false, false, false, true,  "U"),
        ("transit/hash/sha2-256",                    false, false, false, true,  "U"),
        ("transit/cache-config",                     false, false, false, true,  "RU"),
        ("transit/config/keys",                      false, false, false, true,  "RU"),
        ("transit/wrapping_key",                     false, false, false, false, "R"),
        ("transit/keys/k/import",                    false, false, false, false, "U"),
        ("transit/keys/k/import_version",            false, false, false, false, "U"),
        ("transit/byok-export/d/k",                  false, false, false, true,  "R"),
        ("transit/byok-export/d/k/1",                false, false, false, true,  "R"),
        ("transit/nope",                             false, false, false, false, "-"),
        ("nomount/x",                                false, false, false, false, "-"),
    ];

    /// Every name [`variant`] gives.
    pub(crate) const ALL_VARIANTS: &[&str] = &[
        "sys health",
        "sys seal-status",
        "sys init",
        "sys unseal",
        "sys leader",
        "sys seal",
        "sys mounts",
        "sys mount",
        "sys policy names",
        "sys acl policy names",
        "sys legacy policy",
        "sys acl policy",
        "sys capabilities-self",
        "sys auth methods",
        "sys auth method",
        "sys audit devices",
        "sys audit device",
        "sys audit hash",
        "sys audit checkpoint",
        "sys wrapping wrap",
        "sys wrapping lookup",
        "sys wrapping unwrap",
        "sys wrapping rewrap",
        "sys leases revoke-prefix",
        "sys leases revoke-force",
        "sys metrics",
        "sys openapi",
        "sys unknown",
        "token create",
        "token create-orphan",
        "token lookup-self",
        "token lookup",
        "token lookup-accessor",
        "token renew-self",
        "token renew",
        "token revoke-self",
        "token revoke",
        "token revoke-accessor",
        "token revoke-orphan",
        "token accessors",
        "token unknown",
        "userpass users",
        "userpass user",
        "userpass password",
        "userpass policies",
        "userpass login",
        "userpass no login",
        "userpass unknown",
        "approle login",
        "approle roles",
        "approle role",
        "approle role-id",
        "approle secret-id",
        "approle custom-secret-id",
        "approle secret-id lookup",
        "approle secret-id destroy",
        "approle accessor lookup",
        "approle accessor destroy",
        "approle unknown",
        "jwt config",
        "jwt roles",
        "jwt role",
        "jwt login",
        "jwt oidc flow",
        "jwt unknown",
        "kubernetes config",
        "kubernetes roles",
        "kubernetes role",
        "kubernetes login",
        "kubernetes unknown",
        "cert config",
        "cert certs",
        "cert cert",
        "cert login",
        "cert unknown",
        "transit list keys",
        "transit read key",
        "transit write key",
        "transit delete key",
        "transit configure key",
        "transit rotate key",
        "transit trim key",
        "transit soft-delete key",
        "transit soft-delete-restore key",
        "transit encrypt",
        "transit decrypt",
        "transit rewrap",
        "transit datakey",
        "transit hmac",
        "transit sign",
        "transit verify",
        "transit export",
        "transit backup",
        "transit restore",
        "transit random",
        "transit hash",
        "transit read cache-config",
        "transit write cache-config",
        "transit read config/keys",
        "transit write config/keys",
        "transit unknown",
        "transit wrong operation",
        "nowhere",
    ];

    #[test]
    fn every_route_is_classified() {
        let state = server();
        let mut seen = BTreeSet::new();
        for &(path, public, sudo, create, nothing, ops) in TABLE {
            let routed: Vec<(Op, char, Routed)> = OPS
                .iter()
                .map(|&(op, c)| {
                    let r = Routed::parse(op, path.to_owned(), &state)
                        .unwrap_or_else(|e| panic!("{path}: {e}"));
                    (op, c, r)
                })
                .collect();
            let allowed: String = routed
                .iter()
                .filter(|(_, _, r)| r.refusal().is_none())
                .map(|(_, c, _)| *c)
                .collect();
            let not_found = routed.iter().all(|(_, _, r)| {
                matches!(
                    r.refusal(),
                    Some(ApiError::UnsupportedPath | ApiError::NoRoute(_))
                )
            });
            if ops == "-" {
                assert!(not_found, "{path}: no endpoint, 404 for every operation");
            } else {
                assert_eq!(allowed, ops, "{path}: operations");
                for (_, c, r) in &routed {
                    if !ops.contains(*c) {
                        // 405, or 404 where Vault has no such path for it
                        // (LIST on `keys/:name`).
                        assert!(
                            matches!(
                                r.refusal(),
                                Some(ApiError::UnsupportedOperation | ApiError::UnsupportedPath)
                            ),
                            "{path} {c}: 405"
                        );
                    }
                }
            }
            let first = routed
                .iter()
                .find(|(_, c, _)| ops.contains(*c))
                .unwrap_or(&routed[0]);
            let update = &routed[1].2;
            for (_, _, r) in &routed {
                let tokenless = MetricsAccess::default();
                assert_eq!(r.route.is_public(tokenless), public, "{path}: public");
                let open = MetricsAccess {
                    unauthenticated: true,
                };
                let metrics = matches!(r.route, Route::Sys(SysPath::Metrics { .. }));
                assert_eq!(r.route.is_public(open), public || metrics, "{path}: public");
                assert_eq!(r.route.needs_sudo(), sudo, "{path}: sudo");
                seen.insert(variant(&r.route));
            }
            assert_eq!(
                update.capability() == Capability::Create,
                create,
                "{path}: create"
            );
            assert_eq!(
                first.2.route.changes_nothing(),
                nothing,
                "{path}: changes nothing"
            );
        }
        // Every variant of every route has a row (the wrong-operation
        // variant comes from the 405 probes of the rows).
        let all: BTreeSet<&str> = ALL_VARIANTS.iter().copied().collect();
        let missing: Vec<_> = all.difference(&seen).collect();
        assert!(missing.is_empty(), "routes without a row: {missing:?}");
    }

    /// Each kind of name is refused (400) or reaches the handler exactly as
    /// the path that authorization checks spells it.
    #[test]
    fn every_kind_of_name_is_canonical_or_refused() {
        let state = server();
        let parse = |op: Op, path: &str| Routed::parse(op, path.to_owned(), &state);
        let bad = |op: Op, path: &str| {
            let got = parse(op, path);
            assert!(
                matches!(got, Err(ApiError::BadRequest(_))),
                "{path}: {got:?}"
            );
        };
        // (path with a padded name, kind)
        for path in [
            "sys/policies/acl/admin ",
            "sys/policies/acl/ admin",
            "sys/policy/admin ",
            "sys/mounts/transit ",
            "sys/mounts/ team/transit",
            "sys/auth/userpass ",
            "sys/audit/file ",
            "sys/audit-hash/ file",
            "transit/keys/k ",
            "transit/encrypt/ k",
            "transit/restore/k ",
        ] {
            bad(Op::Update, path);
        }
        // Mixed case folds where Vault folds, and the path authorized says so.
        let policy = parse(Op::Update, "sys/policies/acl/ADMIN").unwrap();
        assert_eq!(policy.path, "sys/policies/acl/admin");
        assert!(matches!(
            &policy.route,
            Route::Sys(SysPath::Policy { name, legacy: false }) if name == "admin"
        ));
        let legacy = parse(Op::Update, "sys/policy/Admin").unwrap();
        assert_eq!(legacy.path, "sys/policy/admin");
        let user = parse(Op::Update, "auth/userpass/users/Bob/password").unwrap();
        assert_eq!(user.path, "auth/userpass/users/bob/password");
        assert!(matches!(
            &user.route,
            Route::Login { path: MethodPath::Userpass(UserpassPath::Password(n)), .. } if n == "bob"
        ));
        let login = parse(Op::Update, "auth/userpass/login/BOB").unwrap();
        assert_eq!(login.path, "auth/userpass/login/bob");
        let role = parse(Op::Update, "auth/approle/role/CI/secret-id").unwrap();
        assert_eq!(role.path, "auth/approle/role/ci/secret-id");
        // Keys, mounts and devices keep their case.
        let key = parse(Op::Update, "transit/encrypt/Web").unwrap();
        assert_eq!(key.path, "transit/encrypt/Web");
        assert!(matches!(
            &key.route,
            Route::Transit { endpoint: Ok(Endpoint::Encrypt(n)), .. } if n == "Web"
        ));
        let mount = parse(Op::Update, "sys/mounts/Team").unwrap();
        assert!(matches!(&mount.route, Route::Sys(SysPath::Mount(m)) if m == "Team"));
        // User and role names outside Vault's pattern are no endpoint (404),
        // and the path authorized is the one given.
        for path in ["auth/userpass/users/b ob", "auth/approle/role/c i"] {
            let r = parse(Op::Update, path).unwrap();
            assert_eq!(r.path, path);
            assert!(
                matches!(r.refusal(), Some(ApiError::UnsupportedPath)),
                "{path}"
            );
        }
        // Whatever is parsed, the canonical path names exactly the name served.
        for (path, name) in [
            ("sys/policies/acl/a b", "a b"),
            ("sys/policies/acl/Ä", "ä"),
            ("transit/keys/a b", "a b"),
        ] {
            let r = parse(Op::Update, path).unwrap();
            assert!(r.path.ends_with(name), "{path} -> {}", r.path);
        }
    }
}
