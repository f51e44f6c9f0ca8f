//! The `sys/` endpoints a transit client touches: health, seal status, mounts,
//! and the token self-lookup that `hvac.Client.is_authenticated()` calls.

use axum::http::StatusCode;
use base64::Engine as _;
use serde_json::{Map, Value, json};

use super::openapi::{Answer, Field, OpDoc, PathDoc, Ty, f};
use super::unsupported::refuse_unless_default;
use super::wrapping::WrappingPath;
use super::{Op, names};
use crate::auth::Caller;
use crate::auth::methods::MethodKind;
use crate::error::{ApiError, ApiResult};
use crate::metrics::MetricsAccess;
use crate::request::Params;
use crate::response::Reply;
use crate::seal::InitParams;
pub(crate) use crate::seal::rekey::Target as RekeyTarget;
use crate::state::AppState;

/// The OpenBao release whose API we speak (clients read it from health).
pub const COMPAT_VERSION: &str = "2.7.2";

/// Which `sys/rekey…/` endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RekeyStep {
    Init,
    Update,
    Verify,
}

/// One `sys/` path, its names canonical ([`names`]). Which operations each
/// takes, and which need no token or need `sudo`, is said here only.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum SysPath {
    Health,
    SealStatus,
    Init,
    Unseal,
    Leader,
    Seal,
    /// `sys/rotate`: a new barrier key term
    Rotate,
    /// `sys/key-status`: the active barrier key term
    KeyStatus,
    /// `sys/generate-root/{attempt,update}` (Vault's, no token, bare body)
    /// and `sys/generate-root-token/{attempt,update}` (OpenBao's, with a
    /// token, body under `data`): `api/generate_root.rs`
    GenerateRoot {
        update: bool,
        with_token: bool,
    },
    /// `sys/rekey/{init,update,verify}` and, for the recovery keys,
    /// `sys/rekey-recovery-key/…` (no token, as in Vault: the shares are
    /// the authority; bare body): `api/rekey.rs`
    Rekey {
        target: RekeyTarget,
        step: RekeyStep,
    },
    /// `sys/mounts`
    Mounts,
    /// `sys/mounts/:path`
    Mount(String),
    /// `sys/policy`: the legacy list
    PolicyNames,
    /// `sys/policies/acl`
    AclPolicyNames,
    /// `sys/policy/:name` (`legacy`, field `rules`) or `sys/policies/acl/:name`
    Policy {
        name: String,
        legacy: bool,
    },
    CapabilitiesSelf,
    /// `sys/auth`
    AuthMethods,
    /// `sys/auth/:path`
    AuthMethod(String),
    /// `sys/audit`
    AuditDevices,
    /// `sys/audit/:path`
    AuditDevice(String),
    /// `sys/audit-hash/:path`
    AuditHash(String),
    /// `sys/audit-checkpoint/:path` (ours): this node's sealed checkpoint of a file device
    AuditCheckpoint(String),
    /// `sys/wrapping/{wrap,lookup,unwrap,rewrap}` (`api/wrapping.rs`)
    Wrapping(WrappingPath),
    /// `sys/leases/revoke-prefix/:prefix` and `sys/leases/revoke-force/:prefix`:
    /// every token created under a path
    RevokePrefix {
        prefix: String,
        force: bool,
    },
    /// `sys/metrics`: Prometheus text or Vault's JSON (`crate::metrics`);
    /// `prometheus_accepted`: the `Accept` header asks for Prometheus'
    /// format (set by `api::route` from `headers::check`)
    Metrics {
        prometheus_accepted: bool,
    },
    /// `sys/internal/specs/openapi`: the API described (`api/openapi.rs`)
    OpenApi,
    /// No `sys/` endpoint here (404 once authorized).
    Unknown,
}

/// The document's description of every `sys/` path above (`api/openapi.rs`),
/// checked against [`SysPath::parse`] and the handlers by the route tests.
pub(crate) const DOCS: &[PathDoc] = {
    use crate::api::openapi::plain_path as p;
    use Answer::*;
    use Op::*;
    use Ty::*;
    const ROOT_ATTEMPT: &[OpDoc] = &[
        OpDoc::new(Read, "read-root-generation-progress", Bare),
        OpDoc::new(Update, "start-root-generation", Bare).with(&[f("otp", Str), f("pgp_key", Str)]),
        OpDoc::new(Delete, "cancel-root-generation", Empty),
    ];
    const ROOT_UPDATE: &[OpDoc] = &[OpDoc::new(Update, "update-root-generation", Bare)
        .with(&[f("key", Str).required(), f("nonce", Str).required()])];
    const ROOT_TOKEN_ATTEMPT: &[OpDoc] = &[
        OpDoc::new(Read, "read-root-generation-progress-with-token", Data),
        OpDoc::new(Update, "start-root-generation-with-token", Data)
            .with(&[f("otp", Str), f("pgp_key", Str)]),
        OpDoc::new(Delete, "cancel-root-generation-with-token", Empty),
    ];
    const ROOT_TOKEN_UPDATE: &[OpDoc] =
        &[
            OpDoc::new(Update, "update-root-generation-with-token", Data)
                .with(&[f("key", Str).required(), f("nonce", Str).required()]),
        ];
    const REKEY_FIELDS: &[Field] = &[
        f("secret_shares", Int),
        f("secret_threshold", Int),
        f("pgp_keys", Strings),
        f("backup", Bool),
        f("require_verification", Bool),
    ];
    const KEY_AND_NONCE: &[Field] = &[f("key", Str).required(), f("nonce", Str).required()];
    const REKEY_INIT: &[OpDoc] = &[
        OpDoc::new(Read, "read-rekey-progress", Bare),
        OpDoc::new(Update, "start-rekey", Bare).with(REKEY_FIELDS),
        OpDoc::new(Delete, "cancel-rekey", Empty),
    ];
    const REKEY_UPDATE: &[OpDoc] = &[OpDoc::new(Update, "update-rekey", Bare).with(KEY_AND_NONCE)];
    const REKEY_VERIFY: &[OpDoc] = &[
        OpDoc::new(Read, "read-rekey-verification-progress", Bare),
        OpDoc::new(Update, "verify-rekey", Bare).with(KEY_AND_NONCE),
        OpDoc::new(Delete, "restart-rekey-verification", Bare),
    ];
    const RECOVERY_REKEY_INIT: &[OpDoc] = &[
        OpDoc::new(Read, "read-recovery-key-rekey-progress", Bare),
        OpDoc::new(Update, "start-recovery-key-rekey", Bare).with(REKEY_FIELDS),
        OpDoc::new(Delete, "cancel-recovery-key-rekey", Empty),
    ];
    const RECOVERY_REKEY_UPDATE: &[OpDoc] =
        &[OpDoc::new(Update, "update-recovery-key-rekey", Bare).with(KEY_AND_NONCE)];
    const RECOVERY_REKEY_VERIFY: &[OpDoc] = &[
        OpDoc::new(Read, "read-recovery-key-rekey-verification-progress", Bare),
        OpDoc::new(Update, "verify-recovery-key-rekey", Bare).with(KEY_AND_NONCE),
        OpDoc::new(Delete, "restart-recovery-key-rekey-verification", Bare),
    ];
    const POLICY_FIELDS: &[Field] = &[f("policy", Str), f("rules", Str)];
    const POLICY: &[OpDoc] = &[
        OpDoc::new(Read, "read-policy", Data),
        OpDoc::new(Update, "write-policy", Empty).with(POLICY_FIELDS),
        OpDoc::new(Delete, "delete-policy", Empty),
    ];
    const ACL_POLICY: &[OpDoc] = &[
        OpDoc::new(Read, "read-acl-policy", Data),
        OpDoc::new(Update, "write-acl-policy", Empty).with(POLICY_FIELDS),
        OpDoc::new(Delete, "delete-acl-policy", Empty),
    ];
    const MOUNT: &[Field] = &[
        f("type", Str).required().one_of(&["transit"]),
        f("description", Str),
        f("config", Object),
        f("options", Object),
        f("local", Bool),
        f("seal_wrap", Bool),
        f("external_entropy_access", Bool),
        f("plugin_name", Str),
    ];
    const METHOD: &[Field] = &[
        f("type", Str)
            .required()
            .one_of(&["userpass", "approle", "jwt", "kubernetes", "cert"]),
        f("description", Str),
        f("config", Object),
        f("options", Object),
        f("local", Bool),
        f("seal_wrap", Bool),
        f("external_entropy_access", Bool),
    ];
    &[
        p(
            "health",
            &[OpDoc::new(Read, "read-health-status", Health).with(&[
                f("standbyok", Bool),
                f("perfstandbyok", Bool),
                f("standbycode", Int),
                f("activecode", Int),
                // Read when sealed or not initialized (the samples are neither).
                f("sealedcode", Int).later(),
                f("uninitcode", Int).later(),
            ])],
        ),
        p("seal-status", &[OpDoc::new(Read, "seal-status", Bare)]),
        p(
            "init",
            &[
                OpDoc::new(Read, "read-initialization-status", Bare),
                OpDoc::new(Update, "initialize", Bare).with(&[
                    f("secret_shares", Int),
                    f("secret_threshold", Int),
                    f("pgp_keys", Strings),
                    f("root_token_pgp_key", Str),
                    f("recovery_shares", Int),
                    f("recovery_threshold", Int),
                    f("recovery_pgp_keys", Strings),
                    f("stored_shares", Int),
                ]),
            ],
        ),
        p(
            "unseal",
            &[OpDoc::new(Update, "unseal", Bare).with(&[
                f("key", Str),
                f("reset", Bool),
                f("migrate", Bool),
            ])],
        ),
        p("leader", &[OpDoc::new(Read, "leader-status", Bare)]),
        p("seal", &[OpDoc::new(Update, "seal", Empty)]),
        p("rotate", &[OpDoc::new(Update, "rotate", Empty)]),
        p(
            "rotate/keyring",
            &[OpDoc::new(Update, "rotate-keyring", Empty)],
        ),
        p(
            "key-status",
            &[OpDoc::new(Read, "encryption-key-status", Data)],
        ),
        p("generate-root/attempt", ROOT_ATTEMPT),
        p("generate-root/update", ROOT_UPDATE),
        p("generate-root-token/attempt", ROOT_TOKEN_ATTEMPT),
        p("generate-root-token/update", ROOT_TOKEN_UPDATE),
        p("rekey/init", REKEY_INIT),
        p("rekey/update", REKEY_UPDATE),
        p("rekey/verify", REKEY_VERIFY),
        p("rekey-recovery-key/init", RECOVERY_REKEY_INIT),
        p("rekey-recovery-key/update", RECOVERY_REKEY_UPDATE),
        p("rekey-recovery-key/verify", RECOVERY_REKEY_VERIFY),
        p("mounts", &[OpDoc::new(Read, "list-mounts", Data)]),
        p(
            "mounts/{path}",
            &[
                OpDoc::new(Update, "enable-secrets-engine", Empty).with(MOUNT),
                OpDoc::new(Delete, "disable-secrets-engine", Empty),
            ],
        ),
        p("policy", &[OpDoc::new(Read, "list-policies", Data)]),
        p("policy/{name}", POLICY),
        p(
            "policies/acl",
            &[OpDoc::new(List, "list-acl-policies", Data)],
        ),
        p("policies/acl/{name}", ACL_POLICY),
        p(
            "capabilities-self",
            &[OpDoc::new(Update, "query-token-self-capabilities", Data)
                .with(&[f("path", Str), f("paths", Strings)])],
        ),
        p("auth", &[OpDoc::new(Read, "list-auth-methods", Data)]),
        p(
            "auth/{path}",
            &[
                OpDoc::new(Update, "enable-auth-method", Empty).with(METHOD),
                OpDoc::new(Delete, "disable-auth-method", Empty),
            ],
        ),
        p(
            "audit",
            &[OpDoc::new(Read, "list-enabled-audit-devices", Data)],
        ),
        p(
            "audit/{path}",
            &[
                OpDoc::new(Update, "enable-audit-device", Empty).with(&[
                    f("type", Str).required().one_of(&["file", "stdout"]),
                    f("description", Str),
                    f("options", Object),
                    f("local", Bool),
                ]),
                OpDoc::new(Delete, "disable-audit-device", Empty),
            ],
        ),
        p(
            "audit-hash/{path}",
            &[
                OpDoc::new(Update, "calculate-audit-hash", Data)
                    .with(&[f("input", Str).required()]),
            ],
        ),
        p(
            "audit-checkpoint/{path}",
            &[OpDoc::new(Read, "read-audit-checkpoint", Data)],
        ),
        p(
            "wrapping/wrap",
            &[OpDoc::new(Update, "wrap", Data).with(&[])],
        ),
        p(
            "wrapping/lookup",
            &[
                OpDoc::new(Read, "read-wrapping-properties", Data).with(&[f("token", Str)]),
                OpDoc::new(Update, "write-wrapping-properties", Data).with(&[f("token", Str)]),
            ],
        ),
        p(
            "wrapping/unwrap",
            &[OpDoc::new(Update, "unwrap", DataOrEmpty).with(&[f("token", Str)])],
        ),
        p(
            "wrapping/rewrap",
            &[OpDoc::new(Update, "rewrap", Data).with(&[f("token", Str)])],
        ),
        p(
            "leases/revoke-prefix/{prefix}",
            &[OpDoc::new(Update, "leases-revoke-prefix", Empty).with(&[f("sync", Bool)])],
        ),
        p(
            "leases/revoke-force/{prefix}",
            &[OpDoc::new(Update, "leases-force-revoke", Empty).with(&[f("sync", Bool)])],
        ),
        p(
            "metrics",
            &[OpDoc::new(Read, "metrics", Metrics)
                .with(&[f("format", Str).one_of(&["", "prometheus"])])],
        ),
        p(
            "internal/specs/openapi",
            &[
                OpDoc::new(Read, "read-openapi-document", Bare)
                    .with(&[f("generic_mount_paths", Bool)]),
                OpDoc::new(Update, "generate-openapi-document", Bare)
                    .with(&[f("generic_mount_paths", Bool)]),
            ],
        ),
    ]
};

impl SysPath {
    /// The `sys/` path `rest` names; 400 for a name that is not canonical.
    pub(crate) fn parse(rest: &str) -> ApiResult<Self> {
        use SysPath as S;
        let named = |prefix: &str| rest.strip_prefix(prefix).filter(|n| !n.is_empty());
        if let Some(name) = named("policy/") {
            let name = names::policy(name)?;
            return Ok(S::Policy { name, legacy: true });
        }
        if let Some(name) = named("policies/acl/") {
            let name = names::policy(name)?;
            return Ok(S::Policy {
                name,
                legacy: false,
            });
        }
        if let Some(path) = named("mounts/") {
            return Ok(S::Mount(names::mount(path)?.to_owned()));
        }
        if let Some(path) = named("auth/") {
            return Ok(S::AuthMethod(names::auth_mount(path)?.to_owned()));
        }
        if let Some(path) = named("audit/") {
            return Ok(S::AuditDevice(names::audit_device(path)?.to_owned()));
        }
        if let Some(path) = named("audit-hash/") {
            return Ok(S::AuditHash(names::audit_device(path)?.to_owned()));
        }
        if let Some(prefix) = named("leases/revoke-prefix/") {
            let prefix = prefix.to_owned();
            return Ok(S::RevokePrefix {
                prefix,
                force: false,
            });
        }
        if let Some(prefix) = named("leases/revoke-force/") {
            let prefix = prefix.to_owned();
            return Ok(S::RevokePrefix {
                prefix,
                force: true,
            });
        }
        if let Some(path) = rest.strip_prefix("wrapping/").and_then(WrappingPath::parse) {
            return Ok(S::Wrapping(path));
        }
        if let Some(path) = named("audit-checkpoint/") {
            return Ok(S::AuditCheckpoint(names::audit_device(path)?.to_owned()));
        }
        Ok(match rest {
            "health" => S::Health,
            "seal-status" => S::SealStatus,
            "init" => S::Init,
            "unseal" => S::Unseal,
            "leader" => S::Leader,
            "seal" => S::Seal,
            "rotate" | "rotate/keyring" => S::Rotate,
            "key-status" => S::KeyStatus,
            "generate-root/attempt" => S::GenerateRoot {
                update: false,
                with_token: false,
            },
            "generate-root/update" => S::GenerateRoot {
                update: true,
                with_token: false,
            },
            "generate-root-token/attempt" => S::GenerateRoot {
                update: false,
                with_token: true,
            },
            "generate-root-token/update" => S::GenerateRoot {
                update: true,
                with_token: true,
            },
            "mounts" => S::Mounts,
            "policy" => S::PolicyNames,
            "rekey/init"
            | "rekey/update"
            | "rekey/verify"
            | "rekey-recovery-key/init"
            | "rekey-recovery-key/update"
            | "rekey-recovery-key/verify" => {
                let (family, step) = rest.split_once('/').unwrap_or_default();
                S::Rekey {
                    target: if family == "rekey" {
                        RekeyTarget::Unseal
                    } else {
                        RekeyTarget::Recovery
                    },
                    step: match step {
                        "init" => RekeyStep::Init,
                        "update" => RekeyStep::Update,
                        _ => RekeyStep::Verify,
                    },
                }
            }
            "policies/acl" => S::AclPolicyNames,
            "capabilities-self" => S::CapabilitiesSelf,
            "auth" => S::AuthMethods,
            "audit" => S::AuditDevices,
            "metrics" => S::Metrics {
                prometheus_accepted: false,
            },
            "internal/specs/openapi" => S::OpenApi,
            _ => S::Unknown,
        })
    }

    /// The operations it takes (any other is 405).
    pub(crate) fn allows(&self, op: Op) -> bool {
        use Op::*;
        use SysPath as S;
        match self {
            S::Health | S::SealStatus | S::Leader | S::Mounts | S::PolicyNames => op == Read,
            S::AuthMethods | S::AuditDevices | S::AuditCheckpoint(_) | S::KeyStatus => op == Read,
            S::Metrics { .. } => op == Read,
            S::OpenApi => matches!(op, Read | Update),
            S::Rotate | S::GenerateRoot { update: true, .. } => op == Update,
            S::GenerateRoot { update: false, .. } => matches!(op, Read | Update | Delete),
            S::Rekey { step, .. } => match step {
                RekeyStep::Update => op == Update,
                RekeyStep::Init | RekeyStep::Verify => matches!(op, Read | Update | Delete),
            },
            S::Init => matches!(op, Read | Update),
            S::Unseal | S::Seal | S::CapabilitiesSelf | S::AuditHash(_) => op == Update,
            S::RevokePrefix { .. } => op == Update,
            S::Wrapping(path) => path.allows(op),
            S::AclPolicyNames => op == List,
            S::Policy { .. } => matches!(op, Read | Update | Delete),
            S::Mount(_) | S::AuthMethod(_) | S::AuditDevice(_) => matches!(op, Update | Delete),
            S::Unknown => true,
        }
    }

    /// Whether it is served without a token: everything served unaudited,
    /// the wrapping lookup (which needs the keys), and Vault's root
    /// generation paths (the shares are the authority).
    pub(crate) fn is_public(&self, access: MetricsAccess) -> bool {
        self.served_unaudited(access)
            || matches!(self, Self::Wrapping(path) if path.is_public())
            || matches!(
                self,
                Self::GenerateRoot {
                    with_token: false,
                    ..
                } | Self::Rekey { .. }
            )
    }

    /// Whether it is served without a token, without the keys and
    /// unaudited: what is served while sealed, and `sys/metrics` on a
    /// listener with `unauthenticated_metrics_access` (as Vault serves it).
    pub(crate) fn served_unaudited(&self, access: MetricsAccess) -> bool {
        self.served_sealed() || (matches!(self, Self::Metrics { .. }) && access.unauthenticated)
    }

    /// Whether it is served while sealed, without the keys (and unaudited:
    /// no audit device is open then).
    pub(crate) fn served_sealed(&self) -> bool {
        use SysPath as S;
        match self {
            S::Health | S::SealStatus | S::Init | S::Unseal | S::Leader => true,
            S::Seal
            | S::Rotate
            | S::KeyStatus
            | S::GenerateRoot { .. }
            | S::Rekey { .. }
            | S::Mounts
            | S::Mount(_)
            | S::PolicyNames
            | S::AclPolicyNames
            | S::Policy { .. }
            | S::CapabilitiesSelf
            | S::AuthMethods
            | S::AuthMethod(_)
            | S::AuditDevices
            | S::AuditDevice(_)
            | S::AuditHash(_)
            | S::AuditCheckpoint(_)
            | S::Wrapping(_)
            | S::RevokePrefix { .. }
            | S::Metrics { .. }
            | S::OpenApi
            | S::Unknown => false,
        }
    }

    /// Whether it needs `sudo` besides the operation's capability (Vault's
    /// root-protected paths).
    pub(crate) fn needs_sudo(&self) -> bool {
        use SysPath as S;
        match self {
            S::Seal
            | S::Rotate
            | S::AuthMethod(_)
            | S::AuditDevices
            | S::AuditDevice(_)
            | S::AuditHash(_)
            | S::AuditCheckpoint(_)
            | S::RevokePrefix { .. } => true,
            S::Health
            | S::SealStatus
            | S::KeyStatus
            | S::GenerateRoot { .. }
            | S::Rekey { .. }
            | S::Init
            | S::Unseal
            | S::Leader
            | S::Mounts
            | S::Mount(_)
            | S::PolicyNames
            | S::AclPolicyNames
            | S::Policy { .. }
            | S::CapabilitiesSelf
            | S::AuthMethods
            | S::Wrapping(_)
            | S::Metrics { .. }
            | S::OpenApi
            | S::Unknown => false,
        }
    }
}

/// Serves `path`, which takes `op` ([`SysPath::allows`]).
pub(crate) fn serve(
    state: &AppState,
    op: Op,
    path: &SysPath,
    p: &Params,
    caller: Option<&Caller>,
) -> ApiResult<Reply> {
    use SysPath as S;
    match (path, op) {
        (S::Policy { name, legacy }, op) => policy(state, op, name, *legacy, p),
        (S::PolicyNames, _) => {
            let names = state.unsealed()?.policies.names()?;
            Ok(Reply::mirrored(json!({ "keys": names, "policies": names })))
        }
        (S::AclPolicyNames, _) => {
            let names = state.unsealed()?.policies.names()?;
            Ok(Reply::data(json!({ "keys": names })))
        }
        (S::CapabilitiesSelf, _) => capabilities_self(state, caller, p),
        (S::AuthMethods, _) => auth_methods(state),
        (S::AuditDevices, _) => super::audit::devices(&*state.unsealed()?),
        (S::AuditHash(device), _) => super::audit::hash(&*state.unsealed()?, device, p),
        (S::AuditCheckpoint(device), _) => {
            let (seq, chain) = state.unsealed()?.audit.checkpoint(device)?.ok_or_else(|| {
                ApiError::bad(format!(
                    "no checkpoint of a file audit device {device} on this node"
                ))
            })?;
            let chain = hex::encode(chain);
            let checkpoint = format!("{seq}:{chain}");
            Ok(Reply::data(
                json!({ "seq": seq, "chain": chain, "checkpoint": checkpoint }),
            ))
        }
        (S::AuditDevice(device), op) => {
            super::audit::enable_or_disable(&*state.unsealed()?, op, device, p)
        }
        (S::AuthMethod(method), Op::Delete) => {
            let unsealed = state.unsealed()?;
            unsealed.methods.disable(method)?;
            unsealed
                .tokens
                .revoke_created_under(&format!("auth/{method}/"))?;
            Ok(Reply::no_content())
        }
        (S::AuthMethod(method), _) => {
            let kind = MethodKind::parse(&p.string("type")?.unwrap_or_default())?;
            let description = p.string("description")?.unwrap_or_default();
            refuse_unless_default(p, MOUNT_SETTINGS)?;
            state
                .unsealed()?
                .methods
                .enable(method, kind, &description)?;
            Ok(Reply::no_content())
        }
        (S::RevokePrefix { prefix, force: _ }, _) => {
            // Revocation here is always synchronous: there is nothing to
            // wait for but the tokens' own entries.
            if p.bool("sync")? == Some(false) {
                return Err(ApiError::bad(
                    "sync=false is not supported by transitd: revocation is always synchronous",
                ));
            }
            state.unsealed()?.tokens.revoke_created_under(prefix)?;
            Ok(Reply::no_content())
        }
        // Wrapping needs the presented token: served by `api::authorized` (and
        // the public lookup by `api::serve_public`); root generation by
        // `api::serve_public`. Never from here.
        (
            S::Wrapping(_)
            | S::Rekey { .. }
            | S::GenerateRoot {
                with_token: false, ..
            },
            _,
        ) => Err(ApiError::UnsupportedPath),
        (S::GenerateRoot { .. }, _) => {
            super::generate_root::serve(&*state.unsealed()?, op, path, p)
        }
        (S::Health, _) => health(state, p),
        (S::SealStatus, _) => Ok(Reply::bare(seal_status(state)?, StatusCode::OK)),
        (S::Init, Op::Read) => Ok(Reply::bare(
            json!({ "initialized": state.seal_config()?.is_some() }),
            StatusCode::OK,
        )),
        (S::Init, _) => init(state, p),
        (S::Leader, _) => leader(state),
        (S::Unseal, _) => unseal(state, p),
        (S::Seal, _) => {
            state.seal()?;
            Ok(Reply::no_content())
        }
        (S::Rotate, _) => {
            state.unsealed()?.rotate_barrier()?;
            Ok(Reply::no_content())
        }
        (S::KeyStatus, _) => key_status(state),
        (S::Mounts, _) => mounts(state),
        (S::Mount(mount), Op::Delete) => {
            state.unsealed()?.disable_mount(mount)?;
            Ok(Reply::no_content())
        }
        (S::Mount(mount), _) => enable(state, mount, p),
        (
            S::Metrics {
                prometheus_accepted,
            },
            _,
        ) => metrics(state, p, *prometheus_accepted),
        (S::OpenApi, _) => openapi(state, caller, p),
        (S::Unknown, _) => Err(ApiError::UnsupportedPath),
    }
}

/// `sys/metrics`: `format=prometheus` (refused, as Vault refuses it, without
/// a Prometheus retention) or, without `format`, Vault's JSON unless the
/// `Accept` header asks for Prometheus' format. Errors are Vault's: 400 with
/// a plain-text body.
fn metrics(state: &AppState, p: &Params, prometheus_accepted: bool) -> ApiResult<Reply> {
    let refused = |message: String| Ok(Reply::raw(StatusCode::BAD_REQUEST, "text/plain", message));
    let gauges = gauges(state);
    let telemetry = &state.telemetry;
    let asked = p.string("format")?.filter(|f| !f.is_empty());
    let format = match asked.as_deref() {
        Some(format) => format,
        None if prometheus_accepted => "prometheus",
        None => "",
    };
    match format {
        "prometheus" if telemetry.prometheus_retention.is_none() => {
            refused("prometheus is not enabled".to_owned())
        }
        "prometheus" => Ok(Reply::raw(
            StatusCode::OK,
            "text/plain; version=0.0.4; charset=utf-8",
            crate::metrics::render::prometheus(telemetry, &gauges),
        )),
        "" => {
            let now = time::OffsetDateTime::now_utc();
            let body = crate::metrics::render::json(telemetry, &gauges, now);
            Ok(Reply::raw(
                StatusCode::OK,
                "application/json",
                body.to_string(),
            ))
        }
        other => refused(format!("metric response format {other:?} unknown")),
    }
}

/// The states `sys/metrics` shows, read now (zero while sealed).
fn gauges(state: &AppState) -> crate::metrics::Gauges {
    let mut gauges = crate::metrics::Gauges {
        cluster: state.cluster_name.clone(),
        ..Default::default()
    };
    let Ok(unsealed) = state.unsealed() else {
        return gauges;
    };
    gauges.unsealed = true;
    gauges.auto_rotations = unsealed
        .auto_rotations
        .load(std::sync::atomic::Ordering::Relaxed);
    gauges.cached_keys = unsealed
        .mounts()
        .unwrap_or_default()
        .iter()
        .filter_map(|m| m.key_count().ok())
        .sum();
    gauges.audit_devices = unsealed.audit.broker.list().len();
    gauges.failing_audit_devices = unsealed.audit.broker.failing_count();
    gauges
}

fn init(state: &AppState, p: &Params) -> ApiResult<Reply> {
    let count = |field: &str| -> ApiResult<u64> {
        Ok(u64::try_from(p.int(field)?.unwrap_or(0)).unwrap_or(0))
    };
    let params = InitParams {
        secret_shares: count("secret_shares")?,
        secret_threshold: count("secret_threshold")?,
        recovery_shares: count("recovery_shares")?,
        recovery_threshold: count("recovery_threshold")?,
    };
    // Clients send these empty (the bao CLI does); only a real value is refused.
    refuse_unless_default(p, &["pgp_keys", "root_token_pgp_key", "recovery_pgp_keys"])?;
    refuse_unless_default(p, &["stored_shares"])?;
    // Vault's check: each seal takes only its own kind of shares.
    let shamir_seal = matches!(state.seal_kind(), crate::seal::SealKind::Shamir);
    let (foreign, given): (&[&str], [u64; 2]) = if shamir_seal {
        (
            &["recovery_shares", "recovery_threshold"],
            [params.recovery_shares, params.recovery_threshold],
        )
    } else {
        (
            &["secret_shares", "secret_threshold"],
            [params.secret_shares, params.secret_threshold],
        )
    };
    let named: Vec<&str> = foreign
        .iter()
        .zip(given)
        .filter(|(_, n)| *n != 0)
        .map(|(f, _)| *f)
        .collect();
    if !named.is_empty() {
        return Err(ApiError::bad(format!(
            "parameters {} not applicable to seal type {}",
            named.join(","),
            state.seal_kind().name()
        )));
    }
    let out = state.initialize(params, None)?;
    let (keys, keys_base64) = encode_shares(&out.shares);
    let mut body = json!({
        "keys": keys,
        "keys_base64": keys_base64,
        "root_token": out.root_token.as_str(),
    });
    // Vault omits them when there are none.
    if !out.recovery_shares.is_empty() {
        let (keys, keys_base64) = encode_shares(&out.recovery_shares);
        body["recovery_keys"] = json!(keys);
        body["recovery_keys_base64"] = json!(keys_base64);
    }
    Ok(Reply::bare(body, StatusCode::OK))
}

/// Shares as Vault shows them: (hex, base64).
pub(crate) fn encode_shares(shares: &[zeroize::Zeroizing<Vec<u8>>]) -> (Vec<String>, Vec<String>) {
    let hex = shares.iter().map(hex::encode).collect();
    let b64 = shares
        .iter()
        .map(|s| base64::engine::general_purpose::STANDARD.encode(s.as_slice()))
        .collect();
    (hex, b64)
}

/// `sys/key-status`. `encryptions` counts this node's barrier writes under
/// the term since it unsealed (OpenBao's count is kept in storage).
fn key_status(state: &AppState) -> ApiResult<Reply> {
    let (term, installed, encryptions) = state.unsealed()?.barrier_key_status();
    let install_time = time::OffsetDateTime::from_unix_timestamp(installed)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default();
    // OpenBao answers these both at the top level and under `data`.
    Ok(Reply::mirrored(json!({
        "term": term,
        "install_time": install_time,
        "encryptions": encryptions,
    })))
}

fn unseal(state: &AppState, p: &Params) -> ApiResult<Reply> {
    let migrate = p.bool("migrate")?.unwrap_or(false);
    if let Err(crate::seal::SealError::Invalid(refusal)) = state.check_migrate_flag(migrate) {
        // OpenBao's texts, but a 400: the caller's flag is wrong, and a 5xx
        // would say the server failed (OpenBao 2.7.2 answers 500).
        return Err(ApiError::bad(refusal));
    }
    if p.bool("reset")?.unwrap_or(false) {
        if !state.is_sealed() {
            return Err(ApiError::bad("vault is unsealed"));
        }
        state.reset_unseal();
    } else {
        let key = p.string("key")?.unwrap_or_default();
        if key.is_empty() {
            return Err(ApiError::bad(
                "'key' must be specified in request body as JSON, or 'reset' set to true",
            ));
        }
        state.unseal_share(&key, migrate)?;
    }
    Ok(Reply::bare(seal_status(state)?, StatusCode::OK))
}

/// `sys/policy/:name` (`rules`) and `sys/policies/acl/:name` (`policy`).
fn policy(state: &AppState, op: Op, name: &str, legacy: bool, p: &Params) -> ApiResult<Reply> {
    let store = &state.unsealed()?.policies;
    let field = if legacy { "rules" } else { "policy" };
    match op {
        Op::Read => {
            let text = if name == crate::auth::policy::ROOT {
                String::new()
            } else {
                store.get(name)?.ok_or(ApiError::NotFound)?.raw().to_owned()
            };
            let body = json!({ "name": name, field: text });
            Ok(if legacy {
                Reply::mirrored(body)
            } else {
                Reply::data(body)
            })
        }
        Op::Update => {
            let text = p
                .string("policy")?
                .or(p.string("rules")?)
                .filter(|t| !t.trim().is_empty())
                .ok_or_else(|| ApiError::bad("'policy' parameter not supplied or empty"))?;
            store.put(name, &text)?;
            Ok(Reply::no_content())
        }
        Op::Delete => {
            store.delete(name)?;
            Ok(Reply::no_content())
        }
        Op::List => Err(ApiError::UnsupportedOperation),
    }
}

/// `sys/capabilities-self`: what the caller's token may do on each path.
fn capabilities_self(state: &AppState, caller: Option<&Caller>, p: &Params) -> ApiResult<Reply> {
    let caller = caller.ok_or(ApiError::PermissionDenied)?;
    let unsealed = state.unsealed()?;
    let mut paths = crate::api::token::string_list(p, "paths")?.unwrap_or_default();
    if let Some(path) = p.string("path")? {
        paths.push(path);
    }
    if paths.is_empty() {
        return Err(ApiError::bad("paths must be supplied"));
    }
    let acl = unsealed.policies.acl(&caller.entry.policies)?;
    let mut body = Map::new();
    let mut all: Vec<&'static str> = Vec::new();
    for path in &paths {
        let caps = acl.capabilities(path.trim_start_matches('/'));
        all.extend(caps.iter().copied());
        body.insert(path.clone(), json!(caps));
    }
    all.sort_unstable();
    all.dedup();
    body.insert("capabilities".to_owned(), json!(all));
    Ok(Reply::mirrored(Value::Object(body)))
}

/// `sys/internal/specs/openapi`: the paths the caller may see (none
/// without a token), as a bare document (Vault's raw JSON reply). Vault's
/// `generic_mount_paths` (mount paths as parameters) is not offered.
fn openapi(state: &AppState, caller: Option<&Caller>, p: &Params) -> ApiResult<Reply> {
    if p.bool("generic_mount_paths")? == Some(true) {
        return Err(ApiError::bad(
            "generic_mount_paths is not supported by transitd: the document names each mount",
        ));
    }
    let unsealed = state.unsealed()?;
    let acl = match caller {
        Some(caller) if caller.entry.is_root() => {
            Some(std::sync::Arc::new(crate::auth::policy::Acl::root()))
        }
        Some(caller) => Some(unsealed.policies.acl(&caller.entry.policies)?),
        // No token: no paths, as in Vault.
        None => None,
    };
    let document = super::openapi::document(&unsealed, acl.as_deref())?;
    Ok(Reply::bare(document, StatusCode::OK))
}

/// `sys/auth`: the token method and every enabled login method.
fn auth_methods(state: &AppState) -> ApiResult<Reply> {
    let unsealed = state.unsealed()?;
    let mut data = Map::new();
    let entry = |kind: &str, description: &str, accessor: &str, uuid: &str| {
        json!({
            "type": kind,
            "description": description,
            "accessor": accessor,
            "uuid": uuid,
            "config": { "default_lease_ttl": 0, "max_lease_ttl": 0, "token_type": "default-service" },
            "local": false,
            "seal_wrap": false,
            "external_entropy_access": false,
            "options": null,
            "plugin_version": "",
            "running_plugin_version": "",
            "running_sha256": "",
        })
    };
    data.insert(
        "token/".into(),
        entry("token", "token based credentials", "auth_token", ""),
    );
    for m in unsealed.methods.entries()? {
        data.insert(
            format!("{}/", m.path),
            entry(m.kind.name(), &m.description, &m.accessor, &m.uuid),
        );
    }
    Ok(Reply::mirrored(Value::Object(data)))
}

/// `sys/leader`, which the CLI reads after unsealing: one node, no HA.
fn leader(state: &AppState) -> ApiResult<Reply> {
    state.unsealed()?;
    Ok(Reply::bare(
        json!({
            "ha_enabled": false,
            "is_self": false,
            "active_time": "0001-01-01T00:00:00Z",
            "leader_address": "",
            "leader_cluster_address": "",
            "performance_standby": false,
            "performance_standby_last_remote_wal": 0,
            "raft_committed_index": 0,
            "raft_applied_index": 0,
        }),
        StatusCode::OK,
    ))
}

fn health(state: &AppState, p: &Params) -> ApiResult<Reply> {
    let code = |name: &str, default: u16| -> ApiResult<StatusCode> {
        let wanted = p.int(name)?.unwrap_or(i64::from(default));
        Ok(u16::try_from(wanted)
            .ok()
            .and_then(|c| StatusCode::from_u16(c).ok())
            // A 1xx is no final status (hyper answered 500): OpenBao's Go
            // server sends it as an interim reply, then 200.
            .map(|c| {
                if c.is_informational() {
                    StatusCode::OK
                } else {
                    c
                }
            })
            .unwrap_or(StatusCode::from_u16(default).unwrap_or(StatusCode::OK)))
    };
    let _ = (
        p.has("standbyok"),
        p.has("perfstandbyok"),
        p.has("standbycode"),
    );
    let initialized = state.seal_config()?.is_some();
    let unsealed = state.unsealed().ok();
    let status = match (initialized, &unsealed) {
        (false, _) => code("uninitcode", 501)?,
        (true, None) => code("sealedcode", 503)?,
        (true, Some(_)) => code("activecode", 200)?,
    };
    let mut body = json!({
        "initialized": initialized,
        "sealed": unsealed.is_none(),
        "standby": unsealed.is_none(),
        "replication_performance_mode": if unsealed.is_some() { "disabled" } else { "unknown" },
        "replication_dr_mode": if unsealed.is_some() { "disabled" } else { "unknown" },
        "server_time_utc": time::OffsetDateTime::now_utc().unix_timestamp(),
        "version": COMPAT_VERSION,
        // Vault's fields beyond OpenBao's, which Vault's clients (vaultrs)
        // require, with the values of a node that is neither a performance
        // standby nor Enterprise and forwards to no active node (every node
        // here serves).
        "performance_standby": false,
        "enterprise": false,
        "echo_duration_ms": 0,
        "clock_skew_ms": 0,
        "replication_primary_canary_age_ms": 0,
    });
    if let Some(u) = &unsealed {
        body["cluster_name"] = json!(state.cluster_name);
        body["cluster_id"] = json!(u.cluster_id);
        // Only when there are any, so a healthy node answers exactly what
        // OpenBao does; a count, no names (this endpoint needs no token).
        let failing = u.audit.broker.failing_count();
        if failing > 0 {
            body["audit_devices_failing"] = json!(failing);
        }
    }
    Ok(Reply::bare(body, status))
}

fn seal_status(state: &AppState) -> ApiResult<Value> {
    let config = state.seal_config()?;
    let unsealed = state.unsealed().ok();
    let (progress, nonce) = state.unseal_progress();
    // Under an auto seal Vault shows the recovery shares' counts.
    let (t, n) = config.as_ref().map_or((0, 0), |c| {
        if crate::seal::stored_keys::is_shamir(c) {
            (c.secret_threshold, c.secret_shares)
        } else {
            (c.recovery_threshold, c.recovery_shares)
        }
    });
    let mut body = json!({
        "type": state.seal_kind().name(),
        "initialized": config.is_some(),
        "sealed": unsealed.is_none(),
        "t": t,
        "n": n,
        "progress": progress,
        "nonce": nonce,
        "version": COMPAT_VERSION,
        "build_date": "",
        "commit_date": "",
        "migration": state.migration_pending()?,
        "recovery_seal": state.seal_kind().is_auto(),
        "storage_type": state.storage_kind(),
    });
    // OpenBao names the kind of recovery key of an auto seal; Shamir
    // shares, even when none were made.
    if state.seal_kind().is_auto() {
        body["recovery_seal_type"] = json!("shamir");
    }
    if let Some(u) = &unsealed {
        body["cluster_name"] = json!(state.cluster_name);
        body["cluster_id"] = json!(u.cluster_id);
    }
    Ok(body)
}

fn mount_entry(kind: &str, description: &str, accessor: &str, uuid: &str) -> Value {
    json!({
        "type": kind,
        "description": description,
        "accessor": accessor,
        "uuid": uuid,
        "config": { "default_lease_ttl": 0, "max_lease_ttl": 0, "force_no_cache": false },
        "local": false,
        "seal_wrap": false,
        "external_entropy_access": false,
        "options": null,
        "plugin_version": "",
        "running_plugin_version": "",
        "running_sha256": "",
    })
}

fn mounts(state: &AppState) -> ApiResult<Reply> {
    let mut data = Map::new();
    for m in state.unsealed()?.mounts()? {
        data.insert(
            format!("{}/", m.path),
            mount_entry("transit", &m.description, &m.accessor, &m.uuid),
        );
    }
    data.insert(
        "sys/".into(),
        mount_entry(
            "system",
            "system endpoints used for control, policy and debugging",
            "system",
            "",
        ),
    );
    Ok(Reply::data(Value::Object(data)))
}

/// The settings of a secrets engine or login method mount that transitd
/// does not implement (lease TTLs, local and seal-wrapped mounts, plugin
/// options): accepted at their defaults only.
const MOUNT_SETTINGS: &[&str] = &[
    "config",
    "options",
    "local",
    "seal_wrap",
    "external_entropy_access",
];

fn enable(state: &AppState, path: &str, p: &Params) -> ApiResult<Reply> {
    let kind = p.string("type")?.unwrap_or_default();
    let description = p.string("description")?.unwrap_or_default();
    refuse_unless_default(p, MOUNT_SETTINGS)?;
    // The engine's name again (a deprecated spelling of `type`).
    if p.string("plugin_name")?
        .is_some_and(|n| !n.is_empty() && n != kind)
    {
        return Err(ApiError::bad("plugin_name must be empty or equal to type"));
    }
    if kind != "transit" {
        return Err(ApiError::bad(format!(
            "transitd serves only the transit secrets engine, not {kind:?}"
        )));
    }
    if path.is_empty() || path.split('/').any(str::is_empty) {
        return Err(ApiError::bad("invalid mount path"));
    }
    state.unsealed()?.enable_mount(path, &description)?;
    Ok(Reply::no_content())
}
