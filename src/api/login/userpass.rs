//! userpass: users, passwords, policies and `login/:name`.

use super::*;

/// One path inside a userpass mount, its user name canonical
/// ([`names::user`]). Which operations each takes and which needs no token
/// is said here only.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum UserpassPath {
    /// `users` (list)
    Users,
    /// `users/:name`
    User(String),
    /// `users/:name/password`
    Password(String),
    /// `users/:name/policies`
    Policies(String),
    /// `login/:name`
    Login(String),
    /// Under `login/` but no login (404): public all the same, as Vault's
    /// `login/*` is.
    NoLogin,
    /// No endpoint here (404 once authorized).
    Unknown,
}

/// The document's description of a userpass mount's paths
/// (`api/openapi.rs`), checked by the route tests.
pub(crate) const DOCS: &[PathDoc] = {
    use crate::api::openapi::plain_path as p;
    use Answer::*;
    use Op::*;
    use Ty::*;
    &[
        p(
            "users",
            &[OpDoc::new(List, "list-users", Data).with(LIST_FIELDS)],
        ),
        p(
            "users/{username}",
            &[
                OpDoc::new(Read, "read-user", Data),
                OpDoc::new(Update, "write-user", Empty)
                    .with(&[
                        f("password", Str),
                        f("password_hash", Str),
                        f("bound_cidrs", Strings),
                    ])
                    .and(TOKEN_FIELDS),
                OpDoc::new(Delete, "delete-user", Empty),
            ],
        ),
        p(
            "users/{username}/password",
            &[OpDoc::new(Update, "reset-password", Empty)
                .with(&[f("password", Str).required(), f("password_hash", Str)])],
        ),
        p(
            "users/{username}/policies",
            &[OpDoc::new(Update, "update-policies", Empty)
                .with(&[f("token_policies", Strings), f("policies", Strings)])],
        ),
        p(
            "login/{username}",
            &[OpDoc::new(Update, "login", Auth).with(&[f("password", Str).required()])],
        ),
    ]
};

impl UserpassPath {
    pub(crate) fn parse(rest: &str) -> Self {
        if rest == "users" {
            return Self::Users;
        }
        if let Some(tail) = rest.strip_prefix("users/") {
            let (name, sub) = tail.split_once('/').unwrap_or((tail, ""));
            let Some(name) = names::user(name) else {
                return Self::Unknown;
            };
            return match sub {
                "" => Self::User(name),
                "password" => Self::Password(name),
                "policies" => Self::Policies(name),
                _ => Self::Unknown,
            };
        }
        if let Some(tail) = rest.strip_prefix("login/").filter(|t| !t.is_empty()) {
            return match names::user(tail) {
                Some(name) => Self::Login(name),
                None => Self::NoLogin,
            };
        }
        Self::Unknown
    }

    pub(crate) fn allows(&self, op: Op) -> bool {
        match self {
            Self::Users => op == Op::List,
            Self::User(_) => matches!(op, Op::Read | Op::Update | Op::Delete),
            Self::Password(_) | Self::Policies(_) | Self::Login(_) => op == Op::Update,
            Self::NoLogin | Self::Unknown => true,
        }
    }

    pub(crate) fn is_public(&self) -> bool {
        matches!(self, Self::Login(_) | Self::NoLogin)
    }

    pub(crate) fn name(&self) -> Option<&str> {
        match self {
            Self::User(name) | Self::Password(name) | Self::Policies(name) | Self::Login(name) => {
                Some(name)
            }
            Self::Users | Self::NoLogin | Self::Unknown => None,
        }
    }

    /// The user a write would create (`create`, not `update`, in Vault).
    pub(crate) fn may_create(&self, op: Op) -> Option<&str> {
        match self {
            Self::User(name) if op == Op::Update => Some(name),
            _ => None,
        }
    }
}

/// Serves `path` of a userpass mount (`auth/<mount_path>/...`), which takes `op`.
pub(crate) fn userpass(
    store: &UserpassStore,
    tokens: &TokenStore,
    mount_path: &str,
    op: Op,
    path: &UserpassPath,
    p: &Params,
    now: i64,
) -> ApiResult<Reply> {
    use UserpassPath as U;
    match (path, op) {
        (U::Users, _) => list_reply(store.list()?, p),
        (U::User(name), Op::Read) => read_user(store, name),
        (U::User(name), Op::Delete) => {
            store.delete(name)?;
            Ok(Reply::no_content())
        }
        (U::User(name), _) => write_user(store, name, p),
        (U::Password(name), _) => {
            refuse_password_hash(p)?;
            let password = p.string("password")?.map(Zeroizing::new);
            match password.as_deref().map(String::as_str) {
                None | Some("") => Err(ApiError::bad(
                    "must provide either password or password_hash",
                )),
                Some(pw) => {
                    store.set_password(name, pw)?;
                    Ok(Reply::no_content())
                }
            }
        }
        (U::Policies(name), _) => {
            let mut patch = TokenPatch::default();
            patch.parse_policies(p)?;
            store.update(name, |u| {
                patch.apply(&mut u.token, &mut u.legacy_policies);
                Ok(())
            })?;
            Ok(Reply::no_content())
        }
        (U::Login(name), _) => userpass_login(store, tokens, mount_path, name, p, now),
        (U::NoLogin | U::Unknown, _) => Err(ApiError::UnsupportedPath),
    }
}

fn refuse_password_hash(p: &Params) -> ApiResult<()> {
    if p.string("password_hash")?.is_some_and(|h| !h.is_empty()) {
        return Err(ApiError::bad(
            "password_hash is not supported by transitd (it stores argon2id hashes): give password",
        ));
    }
    Ok(())
}

fn read_user(store: &UserpassStore, name: &str) -> ApiResult<Reply> {
    let user = store.get(name)?.ok_or(ApiError::NotFound)?;
    Ok(Reply::data(Value::Object(token_data(
        &user.token,
        user.legacy_policies,
    ))))
}

fn write_user(store: &UserpassStore, name: &str, p: &Params) -> ApiResult<Reply> {
    refuse_password_hash(p)?;
    refuse_list(p, "bound_cidrs")?;
    let password = p.string("password")?.map(Zeroizing::new);
    let patch = TokenPatch::parse(p, true)?;
    store.write(name, password.as_deref().map(String::as_str), |u| {
        patch.apply(&mut u.token, &mut u.legacy_policies);
        Ok(())
    })?;
    Ok(Reply::no_content())
}

fn userpass_login(
    store: &UserpassStore,
    tokens: &TokenStore,
    mount_path: &str,
    name: &str,
    p: &Params,
    now: i64,
) -> ApiResult<Reply> {
    let password = Zeroizing::new(p.string("password")?.unwrap_or_default());
    if password.is_empty() {
        return Err(ApiError::bad("missing password"));
    }
    let user = store
        .login(name, &password)?
        .ok_or_else(|| ApiError::bad(USERPASS_INVALID))?;
    let meta = BTreeMap::from([("username".to_owned(), user.name.clone())]);
    let mount = mount(mount_path);
    issue(
        tokens,
        &user.token,
        meta,
        display_name(mount, &user.name),
        format!("auth/{mount}/login/{name}"),
        now,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::login::tests::*;
    use crate::storage::Storage;

    #[test]
    fn userpass_endpoints() {
        let w = world();
        assert!(matches!(
            w.up(Op::List, "users", json!({})),
            Err(ApiError::NotFound)
        ));
        assert_eq!(
            err(w.up(Op::Update, "users/alice", json!({"policies": "dev"}))),
            "must provide either password or password_hash"
        );
        let r = w
            .up(
                Op::Update,
                "users/Alice",
                json!({"password": "pw", "policies": "Dev, ops", "token_ttl": "1h"}),
            )
            .unwrap();
        assert!(r.no_content);
        let user = data(w.up(Op::Read, "users/alice", json!({})));
        assert_eq!(user["token_policies"], json!(["dev", "ops"]));
        assert_eq!(user["policies"], json!(["dev", "ops"]));
        assert_eq!(user["token_ttl"], json!(3600));
        assert_eq!(user["token_bound_cidrs"], json!([]));
        assert_eq!(user["token_type"], json!("default"));
        assert!(user.get("password").is_none() && user.get("password_hash").is_none());
        assert_eq!(
            data(w.up(Op::List, "users", json!({}))),
            json!({"keys": ["alice"]})
        );
        w.up(Op::Update, "users/bob", json!({"password": "b"}))
            .unwrap();
        w.up(Op::Update, "users/carl", json!({"password": "c"}))
            .unwrap();
        assert_eq!(
            data(w.up(Op::List, "users", json!({"after": "alice", "limit": "1"}))),
            json!({"keys": ["bob"]})
        );
        assert!(matches!(
            w.up(Op::List, "users", json!({"after": "carl"})),
            Err(ApiError::NotFound)
        ));
        w.up(Op::Delete, "users/bob", json!({})).unwrap();
        w.up(Op::Delete, "users/carl", json!({})).unwrap();
        // token_policies replaces, and stops the legacy echo.
        w.up(
            Op::Update,
            "users/alice",
            json!({"token_policies": ["web"], "token_num_uses": 5}),
        )
        .unwrap();
        let user = data(w.up(Op::Read, "users/alice", json!({})));
        assert_eq!(user["token_policies"], json!(["web"]));
        assert!(user.get("policies").is_none());
        assert_eq!(user["token_num_uses"], json!(5));

        for (body, want) in [
            (
                json!({"token_bound_cidrs": "10.0.0.0/8"}),
                "token_bound_cidrs is not supported by transitd",
            ),
            (
                json!({"bound_cidrs": ["10.0.0.0/8"]}),
                "bound_cidrs is not supported by transitd",
            ),
            (
                json!({"token_type": "batch"}),
                "token type \"batch\" is not supported by transitd",
            ),
            (
                json!({"token_ttl": 100, "token_max_ttl": 10}),
                "'token_ttl' cannot be greater than 'token_max_ttl'",
            ),
            (
                json!({"token_num_uses": -1}),
                "'token_num_uses' cannot be negative",
            ),
        ] {
            assert_eq!(err(w.up(Op::Update, "users/alice", body)), want);
        }
        assert!(
            w.up(Op::Update, "users/alice", json!({"token_bound_cidrs": []}))
                .is_ok()
        );

        w.up(
            Op::Update,
            "users/alice/policies",
            json!({"policies": ["a", "b"]}),
        )
        .unwrap();
        let user = data(w.up(Op::Read, "users/alice", json!({})));
        assert_eq!(user["policies"], json!(["a", "b"]));
        assert_eq!(
            err(w.up(Op::Update, "users/bob/policies", json!({"policies": "a"}))),
            "username does not exist"
        );
        assert_eq!(
            err(w.up(Op::Update, "users/bob/password", json!({"password": "x"}))),
            "username does not exist"
        );
        w.up(
            Op::Update,
            "users/alice/password",
            json!({"password": "pw2"}),
        )
        .unwrap();
        assert_eq!(
            err(w.up(Op::Update, "login/alice", json!({"password": "pw"}))),
            USERPASS_INVALID
        );

        // Paths and methods Vault does not serve.
        for (op, path) in [
            (Op::Read, "users"),
            (Op::List, "users/alice"),
            (Op::Read, "login/alice"),
        ] {
            assert!(matches!(
                w.up(op, path, json!({})),
                Err(ApiError::UnsupportedOperation)
            ));
        }
        for path in [
            "users/-x",
            "users/alice/other",
            "login",
            "login/a/b",
            "nothing",
        ] {
            assert!(matches!(
                w.up(Op::Update, path, json!({})),
                Err(ApiError::UnsupportedPath)
            ));
        }
        assert!(matches!(
            w.up(Op::Read, "users/bob", json!({})),
            Err(ApiError::NotFound)
        ));
        assert!(
            w.up(Op::Delete, "users/alice", json!({}))
                .unwrap()
                .no_content
        );
        assert!(
            w.up(Op::Delete, "users/alice", json!({}))
                .unwrap()
                .no_content
        );
        assert!(matches!(
            w.up(Op::Read, "users/alice", json!({})),
            Err(ApiError::NotFound)
        ));
    }

    #[test]
    fn userpass_login_issues_a_token() {
        let w = world();
        w.up(
            Op::Update,
            "users/alice",
            json!({"password": "s3cret", "token_policies": "dev", "token_ttl": 600, "token_num_uses": 3}),
        )
        .unwrap();
        let a = auth(w.up(Op::Update, "login/Alice", json!({"password": "s3cret"})));
        assert_eq!(a["policies"], json!(["default", "dev"]));
        assert_eq!(a["token_policies"], json!(["default", "dev"]));
        assert_eq!(a["metadata"], json!({"username": "alice"}));
        assert_eq!(a["lease_duration"], json!(600));
        assert_eq!(a["renewable"], json!(true));
        assert_eq!(a["orphan"], json!(true));
        assert_eq!(a["num_uses"], json!(3));
        let token = a["client_token"].as_str().unwrap();
        assert!(token.starts_with("s."));
        let (_, entry) = w.tokens.lookup(token, 1000).unwrap().unwrap();
        assert_eq!(entry.display_name, "userpass-alice");
        // The canonical name, as the route parsed it.
        assert_eq!(entry.path, "auth/userpass/login/alice");
        assert!(entry.parent.is_none());

        assert_eq!(
            err(w.up(Op::Update, "login/alice", json!({"password": "nope"}))),
            USERPASS_INVALID
        );
        assert_eq!(
            err(w.up(Op::Update, "login/bob", json!({"password": "s3cret"}))),
            USERPASS_INVALID
        );
        assert_eq!(
            err(w.up(Op::Update, "login/alice", json!({}))),
            "missing password"
        );

        // No default policy, and never root.
        w.up(
            Op::Update,
            "users/carol",
            json!({"password": "pw", "token_policies": "ops", "token_no_default_policy": true}),
        )
        .unwrap();
        let a = auth(w.up(Op::Update, "login/carol", json!({"password": "pw"})));
        assert_eq!(a["policies"], json!(["ops"]));
        w.up(
            Op::Update,
            "users/root-wannabe",
            json!({"password": "pw", "policies": "root"}),
        )
        .unwrap();
        assert_eq!(
            err(w.up(Op::Update, "login/root-wannabe", json!({"password": "pw"}))),
            "auth methods cannot create root tokens"
        );
        // Passwords never reach storage in clear.
        for path in w.storage.list("").unwrap() {
            let v = w.storage.get(&path).unwrap().unwrap();
            assert!(!v.windows(6).any(|x| x == b"s3cret"));
        }
    }
}
