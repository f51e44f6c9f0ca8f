//! AppRole: roles, role IDs, secret IDs and `login`.

use super::*;

/// One path inside an AppRole mount, its role name canonical
/// ([`names::role`]). Which operations each takes and which needs no token
/// is said here only.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum AppRolePath {
    Login,
    /// `role` (list)
    Roles,
    /// `role/:name`
    Role(String),
    RoleId(String),
    SecretId(String),
    CustomSecretId(String),
    SecretIdLookup(String),
    SecretIdDestroy(String),
    AccessorLookup(String),
    AccessorDestroy(String),
    /// No endpoint here (404 once authorized).
    Unknown,
}

/// The document's description of an AppRole mount's paths
/// (`api/openapi.rs`), checked by the route tests.
pub(crate) const DOCS: &[PathDoc] = {
    use crate::api::openapi::plain_path as p;
    use Answer::*;
    use Op::*;
    use Ty::*;
    const SECRET_ID: &[Field] = &[
        f("metadata", Str).later(),
        f("ttl", Duration).later(),
        f("num_uses", Int).later(),
    ];
    const ACCESSOR: &[Field] = &[f("secret_id_accessor", Str).required()];
    &[
        p(
            "login",
            &[OpDoc::new(Update, "login", Auth)
                .with(&[f("role_id", Str).required(), f("secret_id", Str)])],
        ),
        p(
            "role",
            &[OpDoc::new(List, "list-roles", Data).with(LIST_FIELDS)],
        ),
        p(
            "role/{role_name}",
            &[
                OpDoc::new(Read, "read-role", Data),
                OpDoc::new(Update, "write-role", Empty)
                    .with(&[
                        f("bind_secret_id", Bool),
                        f("secret_id_num_uses", Int),
                        f("secret_id_ttl", Duration),
                        f("local_secret_ids", Bool),
                        f("role_id", Str),
                        f("secret_id_bound_cidrs", Strings),
                        f("bound_cidr_list", Strings),
                    ])
                    .and(TOKEN_FIELDS),
                OpDoc::new(Delete, "delete-role", Empty),
            ],
        ),
        p(
            "role/{role_name}/role-id",
            &[
                OpDoc::new(Read, "read-role-id", Data),
                OpDoc::new(Update, "write-role-id", Empty).with(&[f("role_id", Str)]),
            ],
        ),
        p(
            "role/{role_name}/secret-id",
            &[
                OpDoc::new(Update, "generate-secret-id", Data).with(SECRET_ID),
                OpDoc::new(List, "list-secret-id-accessors", Data),
            ],
        ),
        p(
            "role/{role_name}/custom-secret-id",
            &[OpDoc::new(Update, "write-custom-secret-id", Data).with(&[
                f("secret_id", Str).required(),
                f("metadata", Str).later(),
                f("ttl", Duration).later(),
                f("num_uses", Int).later(),
            ])],
        ),
        p(
            "role/{role_name}/secret-id/lookup",
            &[OpDoc::new(Update, "look-up-secret-id", DataOrEmpty)
                .with(&[f("secret_id", Str).required()])],
        ),
        p(
            "role/{role_name}/secret-id/destroy",
            &[
                OpDoc::new(Update, "destroy-secret-id", Empty)
                    .with(&[f("secret_id", Str).required()]),
                OpDoc::new(Delete, "destroy-secret-id2", Empty).with(&[f("secret_id", Str)]),
            ],
        ),
        p(
            "role/{role_name}/secret-id-accessor/lookup",
            &[OpDoc::new(Update, "look-up-secret-id-by-accessor", DataOrEmpty).with(ACCESSOR)],
        ),
        p(
            "role/{role_name}/secret-id-accessor/destroy",
            &[
                OpDoc::new(Update, "destroy-secret-id-by-accessor", Empty).with(ACCESSOR),
                OpDoc::new(Delete, "destroy-secret-id-by-accessor2", Empty).with(ACCESSOR),
            ],
        ),
    ]
};

impl AppRolePath {
    pub(crate) fn parse(rest: &str) -> Self {
        use AppRolePath as A;
        match rest {
            "login" => return A::Login,
            "role" => return A::Roles,
            _ => {}
        }
        let Some(tail) = rest.strip_prefix("role/") else {
            return A::Unknown;
        };
        let (name, sub) = tail.split_once('/').unwrap_or((tail, ""));
        let Some(name) = names::role(name) else {
            return A::Unknown;
        };
        match sub {
            "" => A::Role(name),
            "role-id" => A::RoleId(name),
            "secret-id" => A::SecretId(name),
            "custom-secret-id" => A::CustomSecretId(name),
            "secret-id/lookup" => A::SecretIdLookup(name),
            "secret-id/destroy" => A::SecretIdDestroy(name),
            "secret-id-accessor/lookup" => A::AccessorLookup(name),
            "secret-id-accessor/destroy" => A::AccessorDestroy(name),
            _ => A::Unknown,
        }
    }

    pub(crate) fn allows(&self, op: Op) -> bool {
        use AppRolePath as A;
        use Op::*;
        match self {
            A::Roles => op == List,
            A::Role(_) => matches!(op, Read | Update | Delete),
            A::RoleId(_) => matches!(op, Read | Update),
            A::SecretId(_) => matches!(op, Update | List),
            A::SecretIdDestroy(_) | A::AccessorDestroy(_) => matches!(op, Update | Delete),
            A::Login | A::CustomSecretId(_) | A::SecretIdLookup(_) | A::AccessorLookup(_) => {
                op == Update
            }
            A::Unknown => true,
        }
    }

    pub(crate) fn is_public(&self) -> bool {
        *self == Self::Login
    }

    pub(crate) fn name(&self) -> Option<&str> {
        use AppRolePath as A;
        match self {
            A::Role(name)
            | A::RoleId(name)
            | A::SecretId(name)
            | A::CustomSecretId(name)
            | A::SecretIdLookup(name)
            | A::SecretIdDestroy(name)
            | A::AccessorLookup(name)
            | A::AccessorDestroy(name) => Some(name),
            A::Login | A::Roles | A::Unknown => None,
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

/// Serves `path` of an AppRole mount (`auth/<mount_path>/...`), which takes `op`.
pub(crate) fn approle(
    store: &AppRoleStore,
    tokens: &TokenStore,
    mount_path: &str,
    op: Op,
    path: &AppRolePath,
    p: &Params,
    now: i64,
) -> ApiResult<Reply> {
    use AppRolePath as A;
    match (path, op) {
        (A::Login, _) => approle_login(store, tokens, mount_path, p, now),
        (A::Roles, _) => list_reply(store.list_roles()?, p),
        (A::Role(name), Op::Read) => read_role(store, name),
        (A::Role(name), Op::Delete) => {
            store.delete_role(name)?;
            Ok(Reply::no_content())
        }
        (A::Role(name), _) => write_role(store, name, p),
        (A::RoleId(name), Op::Read) => {
            let role = store.get_role(name)?.ok_or(ApiError::NotFound)?;
            Ok(Reply::data(json!({ "role_id": role.role_id })))
        }
        (A::RoleId(name), _) => {
            let role_id = p.string("role_id")?.unwrap_or_default();
            store.set_role_id(name, &role_id)?;
            Ok(Reply::no_content())
        }
        (A::SecretId(name), Op::List) => list_reply(store.list_accessors(name)?, p),
        (A::SecretId(name), _) => new_secret_id(store, name, p, now, false),
        (A::CustomSecretId(name), _) => new_secret_id(store, name, p, now, true),
        (A::SecretIdLookup(name), _) => {
            let secret_id = required(p, "secret_id")?;
            match store.lookup_secret_id(name, &secret_id, now)? {
                Some(info) => Ok(Reply::data(secret_id_data(&info))),
                None => Ok(Reply::no_content()),
            }
        }
        (A::SecretIdDestroy(name), _) => {
            let secret_id = required(p, "secret_id")?;
            store.destroy_secret_id(name, &secret_id)?;
            Ok(Reply::no_content())
        }
        (A::AccessorLookup(name), _) => {
            let accessor = required(p, "secret_id_accessor")?;
            match store.lookup_accessor(name, &accessor, now)? {
                Some(info) => Ok(Reply::data(secret_id_data(&info))),
                None => not_found(no_accessor(&accessor)),
            }
        }
        (A::AccessorDestroy(name), _) => {
            let accessor = required(p, "secret_id_accessor")?;
            if !store.destroy_accessor(name, &accessor)? {
                return Err(ApiError::bad(no_accessor(&accessor)));
            }
            Ok(Reply::no_content())
        }
        (A::Unknown, _) => Err(ApiError::UnsupportedPath),
    }
}

fn no_accessor(accessor: &str) -> String {
    format!("failed to find accessor entry for secret_id_accessor: {accessor:?}")
}

fn read_role(store: &AppRoleStore, name: &str) -> ApiResult<Reply> {
    let role = store.get_role(name)?.ok_or(ApiError::NotFound)?;
    Ok(Reply::data(role_data(&role)))
}

fn role_data(role: &Role) -> Value {
    let mut data = token_data(&role.token, role.legacy_policies);
    data.insert("bind_secret_id".into(), json!(role.bind_secret_id));
    data.insert("secret_id_bound_cidrs".into(), Value::Null);
    data.insert("secret_id_num_uses".into(), json!(role.secret_id_num_uses));
    data.insert("secret_id_ttl".into(), json!(role.secret_id_ttl));
    data.insert("local_secret_ids".into(), json!(false));
    Value::Object(data)
}

fn write_role(store: &AppRoleStore, name: &str, p: &Params) -> ApiResult<Reply> {
    if name.len() > crate::auth::approle::MAX_HMAC_INPUT {
        return Err(ApiError::bad(format!(
            "role_name is longer than maximum of {} bytes",
            crate::auth::approle::MAX_HMAC_INPUT
        )));
    }
    refuse_list(p, "secret_id_bound_cidrs")?;
    refuse_list(p, "bound_cidr_list")?;
    if p.bool("local_secret_ids")?.unwrap_or(false) {
        return Err(unsupported("local_secret_ids"));
    }
    let patch = TokenPatch::parse(p, false)?;
    let role_id = p.string("role_id")?;
    let bind_secret_id = p.bool("bind_secret_id")?;
    let secret_id_num_uses = p
        .int("secret_id_num_uses")?
        .map(|n| {
            u64::try_from(n).map_err(|_| ApiError::bad("secret_id_num_uses cannot be negative"))
        })
        .transpose()?;
    let secret_id_ttl = p.duration_secs("secret_id_ttl")?;
    let mut bound = true;
    store.write_role(name, |role| {
        patch.apply(&mut role.token, &mut role.legacy_policies);
        if let Some(id) = role_id {
            role.role_id = id;
        }
        if let Some(b) = bind_secret_id {
            role.bind_secret_id = b;
        }
        if let Some(n) = secret_id_num_uses {
            role.secret_id_num_uses = n;
        }
        if let Some(t) = secret_id_ttl {
            role.secret_id_ttl = t;
        }
        bound = role.bind_secret_id;
        Ok(())
    })?;
    if !bound {
        // OpenBao refuses a role without bind_secret_id unless it has CIDR
        // bindings (which transitd does not support); transitd allows it and
        // says what it means.
        return Ok(Reply::default().warn(
            "bind_secret_id is false and the role has no other constraint: its role_id alone logs in",
        ));
    }
    Ok(Reply::no_content())
}

fn new_secret_id(
    store: &AppRoleStore,
    name: &str,
    p: &Params,
    now: i64,
    custom: bool,
) -> ApiResult<Reply> {
    let secret_id = if custom {
        Some(required(p, "secret_id")?)
    } else {
        None
    };
    if store.get_role(name)?.is_none() {
        return not_found(format!("role {name:?} does not exist"));
    }
    refuse_list(p, "cidr_list")?;
    refuse_list(p, "token_bound_cidrs")?;
    let num_uses = p
        .int("num_uses")?
        .map(|n| u64::try_from(n).map_err(|_| ApiError::bad("num_uses cannot be negative")))
        .transpose()?;
    let ttl = p.duration_secs("ttl")?;
    let metadata = parse_metadata(p)?;
    let new = store.create_secret_id(
        name,
        SecretIdRequest {
            secret_id,
            num_uses,
            ttl,
            metadata,
        },
        now,
    )?;
    Ok(Reply::data(json!({
        "secret_id": new.secret_id.as_str(),
        "secret_id_accessor": new.accessor,
        "secret_id_ttl": new.ttl,
        "secret_id_num_uses": new.num_uses,
    })))
}

/// Secret ID metadata: a JSON object, or (as Vault's
/// `ParseArbitraryKeyValues`) a string holding a JSON object, base64 of one,
/// or `k1=v1,k2=v2`.
fn parse_metadata(p: &Params) -> ApiResult<BTreeMap<String, String>> {
    let fail = |why: String| ApiError::bad(format!("failed to parse metadata: {why}"));
    let strings = |m: &Map<String, Value>| {
        m.iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k.clone(), s.clone())),
                _ => Err(fail(format!("value of {k:?} is not a string"))),
            })
            .collect::<ApiResult<BTreeMap<_, _>>>()
    };
    let raw = match p.raw("metadata") {
        None => return Ok(BTreeMap::new()),
        Some(Value::Object(m)) => return strings(m),
        Some(Value::String(s)) => s.trim(),
        Some(_) => return Err(fail("expected a JSON object or key=value pairs".to_owned())),
    };
    if raw.is_empty() {
        return Ok(BTreeMap::new());
    }
    if let Ok(Value::Object(m)) = serde_json::from_str::<Value>(raw) {
        return strings(&m);
    }
    if let Ok(bytes) = decode_b64(raw)
        && let Ok(Value::Object(m)) = serde_json::from_slice::<Value>(&bytes)
    {
        return strings(&m);
    }
    raw.split(',')
        .map(|pair| {
            let (k, v) = pair.split_once('=').ok_or_else(|| {
                fail(format!(
                    "invalid key/value pair {pair:?}: format must be key=value"
                ))
            })?;
            Ok((k.trim().to_owned(), v.trim().to_owned()))
        })
        .collect()
}

fn time_string(t: Option<i64>) -> String {
    t.and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok())
        .map_or_else(|| "0001-01-01T00:00:00Z".to_owned(), rfc3339)
}

/// A secret ID's properties as Vault's lookups answer them.
fn secret_id_data(info: &SecretIdInfo) -> Value {
    json!({
        "secret_id_accessor": info.accessor,
        "secret_id_num_uses": info.num_uses,
        "secret_id_ttl": info.ttl,
        "creation_time": time_string(Some(info.creation_time)),
        "expiration_time": time_string(info.expiration_time),
        "last_updated_time": time_string(Some(info.last_updated_time)),
        "metadata": info.metadata,
        "cidr_list": [],
        "token_bound_cidrs": [],
    })
}

fn approle_login(
    store: &AppRoleStore,
    tokens: &TokenStore,
    mount_path: &str,
    p: &Params,
    now: i64,
) -> ApiResult<Reply> {
    let role_id = Zeroizing::new(p.string("role_id")?.unwrap_or_default());
    let secret_id = p.string("secret_id")?.map(Zeroizing::new);
    let login = store.login(&role_id, secret_id.as_deref().map(String::as_str), now)?;
    let mut meta = login.metadata;
    meta.insert("role_name".to_owned(), login.role.name.clone());
    let mount = mount(mount_path);
    issue(
        tokens,
        &login.role.token,
        meta,
        display_name(mount, ""),
        format!("auth/{mount}/login"),
        now,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::login::tests::*;
    use crate::auth::approle::INVALID_LOGIN;
    use crate::storage::Storage;

    #[test]
    fn approle_roles_secret_ids_and_login() {
        let w = world();
        assert!(matches!(
            w.ar(Op::List, "role", json!({}), 0),
            Err(ApiError::NotFound)
        ));
        assert!(
            w.ar(
                Op::Update,
                "role/CI",
                json!({"token_policies": "deploy,Build", "secret_id_num_uses": 2, "secret_id_ttl": "10m", "token_ttl": 300}),
                0,
            )
            .unwrap()
            .no_content
        );
        let role = data(w.ar(Op::Read, "role/ci", json!({}), 0));
        assert_eq!(role["bind_secret_id"], json!(true));
        assert_eq!(role["token_policies"], json!(["build", "deploy"]));
        assert_eq!(role["secret_id_num_uses"], json!(2));
        assert_eq!(role["secret_id_ttl"], json!(600));
        assert_eq!(role["local_secret_ids"], json!(false));
        assert!(role.get("role_id").is_none());
        assert_eq!(
            data(w.ar(Op::List, "role", json!({}), 0)),
            json!({"keys": ["ci"]})
        );
        let role_id = data(w.ar(Op::Read, "role/ci/role-id", json!({}), 0))["role_id"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(matches!(
            w.ar(Op::Read, "role/nope/role-id", json!({}), 0),
            Err(ApiError::NotFound)
        ));
        assert!(matches!(
            w.ar(Op::Update, "role/nope/role-id", json!({"role_id": "x"}), 0),
            Err(ApiError::UnsupportedPath)
        ));

        let s = data(w.ar(
            Op::Update,
            "role/ci/secret-id",
            json!({"metadata": "{\"job\": \"7\"}"}),
            1000,
        ));
        assert_eq!(s["secret_id_ttl"], json!(600));
        assert_eq!(s["secret_id_num_uses"], json!(2));
        let secret_id = s["secret_id"].as_str().unwrap().to_owned();
        let accessor = s["secret_id_accessor"].as_str().unwrap().to_owned();
        assert_eq!(
            data(w.ar(Op::List, "role/ci/secret-id", json!({}), 1000)),
            json!({"keys": [accessor]})
        );
        let look = data(w.ar(
            Op::Update,
            "role/ci/secret-id/lookup",
            json!({"secret_id": secret_id}),
            1000,
        ));
        assert_eq!(look["secret_id_accessor"], json!(accessor));
        assert_eq!(look["metadata"], json!({"job": "7"}));
        assert_eq!(look["creation_time"], json!("1970-01-01T00:16:40Z"));
        assert_eq!(look["expiration_time"], json!("1970-01-01T00:26:40Z"));
        let by_acc = data(w.ar(
            Op::Update,
            "role/ci/secret-id-accessor/lookup",
            json!({"secret_id_accessor": accessor}),
            1000,
        ));
        assert_eq!(by_acc, look);

        // Login: an orphan token with the role's policies, and the metadata.
        let a = auth(w.ar(
            Op::Update,
            "login",
            json!({"role_id": role_id, "secret_id": secret_id}),
            1001,
        ));
        assert_eq!(a["policies"], json!(["build", "default", "deploy"]));
        assert_eq!(a["metadata"], json!({"job": "7", "role_name": "ci"}));
        assert_eq!(a["lease_duration"], json!(300));
        let (_, entry) = w
            .tokens
            .lookup(a["client_token"].as_str().unwrap(), 1001)
            .unwrap()
            .unwrap();
        assert_eq!(entry.display_name, "approle");
        assert_eq!(entry.path, "auth/approle/login");
        // Second and last use, then refused.
        w.ar(
            Op::Update,
            "login",
            json!({"role_id": role_id, "secret_id": secret_id}),
            1002,
        )
        .unwrap();
        assert_eq!(
            err(w.ar(
                Op::Update,
                "login",
                json!({"role_id": role_id, "secret_id": secret_id}),
                1003,
            )),
            INVALID_LOGIN
        );
        assert!(matches!(
            w.ar(Op::List, "role/ci/secret-id", json!({}), 1003),
            Err(ApiError::NotFound)
        ));
        assert!(
            w.ar(
                Op::Update,
                "role/ci/secret-id/lookup",
                json!({"secret_id": secret_id}),
                1003,
            )
            .unwrap()
            .no_content
        );
        assert_eq!(
            err(w.ar(Op::Update, "login", json!({"secret_id": secret_id}), 0)),
            "missing role_id"
        );
        assert_eq!(
            err(w.ar(
                Op::Update,
                "login",
                json!({"role_id": "nope", "secret_id": "x"}),
                0
            )),
            INVALID_LOGIN
        );
        assert_eq!(
            err(w.ar(Op::Update, "login", json!({"role_id": role_id}), 0)),
            "missing secret_id"
        );
    }

    /// A world with role `ci` as the first test makes it (two uses, ten
    /// minutes per secret ID), and its role ID.
    fn with_role_ci() -> (World, String) {
        let w = world();
        w.ar(
            Op::Update,
            "role/CI",
            json!({"token_policies": "deploy,Build", "secret_id_num_uses": 2, "secret_id_ttl": "10m", "token_ttl": 300}),
            0,
        )
        .unwrap();
        let role_id = data(w.ar(Op::Read, "role/ci/role-id", json!({}), 0))["role_id"]
            .as_str()
            .unwrap()
            .to_owned();
        (w, role_id)
    }

    #[test]
    fn approle_secret_ids_are_destroyed_by_id_and_by_accessor() {
        let (w, role_id) = with_role_ci();
        // Destroy by secret ID and by accessor.
        let a1 = data(w.ar(Op::Update, "role/ci/secret-id", json!({}), 0));
        let a2 = data(w.ar(
            Op::Update,
            "role/ci/secret-id",
            json!({"num_uses": 1, "ttl": 60}),
            0,
        ));
        assert_eq!(
            (
                a2["secret_id_num_uses"].clone(),
                a2["secret_id_ttl"].clone()
            ),
            (json!(1), json!(60))
        );
        assert!(
            w.ar(
                Op::Update,
                "role/ci/secret-id/destroy",
                json!({"secret_id": a1["secret_id"]}),
                0,
            )
            .unwrap()
            .no_content
        );
        assert!(
            w.ar(
                Op::Update,
                "role/ci/secret-id-accessor/destroy",
                json!({"secret_id_accessor": a2["secret_id_accessor"]}),
                0,
            )
            .unwrap()
            .no_content
        );
        assert_eq!(
            err(w.ar(
                Op::Update,
                "role/ci/secret-id-accessor/destroy",
                json!({"secret_id_accessor": a2["secret_id_accessor"]}),
                0,
            )),
            format!(
                "failed to find accessor entry for secret_id_accessor: {}",
                a2["secret_id_accessor"]
            )
        );
        let missing = w
            .ar(
                Op::Update,
                "role/ci/secret-id-accessor/lookup",
                json!({"secret_id_accessor": "nope"}),
                0,
            )
            .unwrap();
        assert_eq!(missing.status, Some(StatusCode::NOT_FOUND));
        for s in [&a1, &a2] {
            assert_eq!(
                err(w.ar(
                    Op::Update,
                    "login",
                    json!({"role_id": role_id, "secret_id": s["secret_id"]}),
                    0,
                )),
                INVALID_LOGIN
            );
        }
    }

    #[test]
    fn approle_custom_secret_ids_metadata_and_refusals() {
        let (w, _) = with_role_ci();
        // A secret ID for a missing role: Vault's 404 with a message.
        let r = w
            .ar(Op::Update, "role/nope/secret-id", json!({}), 0)
            .unwrap();
        assert_eq!(r.status, Some(StatusCode::NOT_FOUND));
        assert_eq!(
            r.data.unwrap(),
            json!({"errors": ["role \"nope\" does not exist"]})
        );
        // Custom secret IDs and metadata forms.
        let c = data(w.ar(
            Op::Update,
            "role/ci/custom-secret-id",
            json!({"secret_id": "my-secret", "metadata": "a=1, b=2"}),
            0,
        ));
        assert_eq!(c["secret_id"], json!("my-secret"));
        let look = data(w.ar(
            Op::Update,
            "role/ci/secret-id/lookup",
            json!({"secret_id": "my-secret"}),
            0,
        ));
        assert_eq!(look["metadata"], json!({"a": "1", "b": "2"}));
        assert_eq!(look["expiration_time"], json!("1970-01-01T00:10:00Z"));
        assert_eq!(
            err(w.ar(Op::Update, "role/ci/custom-secret-id", json!({}), 0)),
            "missing secret_id"
        );
        assert!(
            err(w.ar(
                Op::Update,
                "role/ci/secret-id",
                json!({"metadata": "junk"}),
                0
            ))
            .starts_with("failed to parse metadata: ")
        );

        // Refusals.
        for (body, want) in [
            (
                json!({"secret_id_bound_cidrs": "10.0.0.0/8"}),
                "secret_id_bound_cidrs is not supported by transitd",
            ),
            (
                json!({"token_bound_cidrs": ["10.0.0.0/8"]}),
                "token_bound_cidrs is not supported by transitd",
            ),
            (
                json!({"secret_id_num_uses": -1}),
                "secret_id_num_uses cannot be negative",
            ),
            (
                json!({"token_period": "1h"}),
                "token_period is not supported by transitd",
            ),
        ] {
            assert_eq!(err(w.ar(Op::Update, "role/ci", body, 0)), want);
        }
        assert_eq!(
            err(w.ar(
                Op::Update,
                "role/ci/secret-id",
                json!({"cidr_list": "10.0.0.0/8"}),
                0
            )),
            "cidr_list is not supported by transitd"
        );
    }

    #[test]
    fn approle_role_id_only_deletion_and_refused_paths() {
        let (w, _) = with_role_ci();
        // role_id only.
        let r = w
            .ar(
                Op::Update,
                "role/svc",
                json!({"bind_secret_id": false, "role_id": "svc-id"}),
                0,
            )
            .unwrap();
        assert_eq!(r.warnings.len(), 1);
        let a = auth(w.ar(
            Op::Update,
            "login",
            json!({"role_id": "svc-id", "secret_id": null}),
            0,
        ));
        assert_eq!(a["metadata"], json!({"role_name": "svc"}));
        assert_eq!(
            err(w.ar(
                Op::Update,
                "role/ci/role-id",
                json!({"role_id": "svc-id"}),
                0
            )),
            "role_id already in use"
        );

        // Delete a role: its secret IDs go too.
        data(w.ar(Op::Update, "role/ci/secret-id", json!({}), 0));
        assert!(!w.storage.list("auth/a1/secret_id/").unwrap().is_empty());
        w.ar(Op::Delete, "role/ci", json!({}), 0).unwrap();
        assert!(matches!(
            w.ar(Op::Read, "role/ci", json!({}), 0),
            Err(ApiError::NotFound)
        ));
        assert_eq!(
            err(w.ar(Op::List, "role/ci/secret-id", json!({}), 0)),
            "role \"ci\" does not exist"
        );
        assert!(w.storage.list("auth/a1/secret_id/").unwrap().is_empty());
        for (op, path) in [
            (Op::Read, "login"),
            (Op::Read, "role"),
            (Op::Read, "role/svc/secret-id"),
        ] {
            assert!(matches!(
                w.ar(op, path, json!({}), 0),
                Err(ApiError::UnsupportedOperation)
            ));
        }
        for path in ["role/svc/period", "roles", "role/", "login/x"] {
            assert!(matches!(
                w.ar(Op::Update, path, json!({}), 0),
                Err(ApiError::UnsupportedPath)
            ));
        }
    }
}
