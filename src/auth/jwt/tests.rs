//! The store across two nodes, and a role's bindings at login (error texts
//! as OpenBao 2.7.2 answers them).

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;

use super::*;
use crate::auth::userpass::tests::barrier;

const RSA_A: &str = include_str!("../../../tests/fixtures/jwt/rsa-a.key");
const RSA_A_PUB: &str = include_str!("../../../tests/fixtures/jwt/rsa-a.pub");

fn two_nodes() -> (JwtStore, JwtStore) {
    let (_, barrier, lookup) = barrier();
    let node = || {
        JwtStore::load(
            Arc::clone(&barrier),
            Arc::clone(&lookup),
            "auth/j1/".to_owned(),
        )
        .unwrap()
    };
    (node(), node())
}

fn pem_config() -> Configured {
    Configured::new(JwtConfig {
        jwt_validation_pubkeys: vec![RSA_A_PUB.to_owned()],
        bound_issuer: "https://issuer".to_owned(),
        ..JwtConfig::default()
    })
    .unwrap()
}

fn write_config(store: &JwtStore, ready: Configured) {
    store.write_config(&ready.config.clone(), ready).unwrap();
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn sign(claims: Value) -> String {
    let key = EncodingKey::from_rsa_pem(RSA_A.as_bytes()).unwrap();
    let mut c = json!({"iss": "https://issuer", "exp": now() + 60, "sub": "alice", "aud": "vault"});
    for (k, v) in claims.as_object().unwrap() {
        if v.is_null() {
            c.as_object_mut().unwrap().remove(k);
        } else {
            c[k] = v.clone();
        }
    }
    jsonwebtoken::encode(&Header::new(Algorithm::RS256), &c, &key).unwrap()
}

fn err(r: StoreResult<impl std::fmt::Debug>) -> String {
    r.unwrap_err().to_string()
}

#[test]
fn configuration_checks() {
    let bad = |c: JwtConfig| Configured::new(c).unwrap_err().to_string();
    assert_eq!(
        bad(JwtConfig::default()),
        "exactly one of 'jwt_validation_pubkeys', 'jwks_url', or 'oidc_discovery_url' must be set"
    );
    assert_eq!(
        bad(JwtConfig {
            jwt_validation_pubkeys: vec!["nope".into()],
            ..JwtConfig::default()
        }),
        "error parsing public key: data does not contain any valid public keys"
    );
    assert_eq!(
        bad(JwtConfig {
            jwt_validation_pubkeys: vec![RSA_A_PUB.into()],
            jwks_url: "https://x".into(),
            ..JwtConfig::default()
        }),
        "exactly one of 'jwt_validation_pubkeys', 'jwks_url', or 'oidc_discovery_url' must be set"
    );
    assert_eq!(
        bad(JwtConfig {
            jwt_validation_pubkeys: vec![RSA_A_PUB.into()],
            jwt_supported_algs: vec!["HS256".into()],
            ..JwtConfig::default()
        }),
        "invalid jwt_supported_algs: unsupported signing algorithm \"HS256\""
    );
    assert_eq!(
        bad(JwtConfig {
            jwks_url: "http://issuer/keys".into(),
            ..JwtConfig::default()
        }),
        "jwks_url must be an https:// URL"
    );
    assert_eq!(
        bad(JwtConfig {
            oidc_discovery_url: "https://issuer/.well-known/openid-configuration".into(),
            ..JwtConfig::default()
        }),
        "'oidc_discovery_url' contains '.well-known' component"
    );
    assert_eq!(
        bad(JwtConfig {
            jwks_url: "https://issuer/keys".into(),
            jwks_ca_pem: "not a pem".into(),
            ..JwtConfig::default()
        }),
        "could not parse CA PEM value successfully"
    );
}

#[test]
fn role_checks() {
    let (a, _) = two_nodes();
    let write = |edit: fn(&mut JwtRole)| {
        a.write_role("r", |r| {
            edit(r);
            Ok(())
        })
    };
    assert_eq!(
        err(write(|_| {})),
        "a user claim must be defined on the role"
    );
    assert_eq!(
        err(write(|r| r.user_claim = "sub".into())),
        "must have at least one bound constraint when creating/updating a role"
    );
    assert_eq!(
        err(write(|r| {
            r.user_claim = "sub".into();
            r.bound_claims_type = BoundClaimsType::Glob;
            r.bound_claims = json!({"x": 1}).as_object().cloned();
        })),
        "claim is not a string: 1"
    );
    assert_eq!(
        err(write(|r| {
            r.user_claim = "sub".into();
            r.bound_subject = "s".into();
            r.claim_mappings = Some(BTreeMap::from([
                ("a".into(), "m".into()),
                ("b".into(), "m".into()),
            ]));
        })),
        "multiple keys are mapped to metadata key \"m\""
    );
    assert_eq!(
        err(write(|r| {
            r.user_claim = "sub".into();
            r.bound_subject = "s".into();
            r.claim_mappings = Some(BTreeMap::from([("a".into(), "role".into())]));
        })),
        "metadata key \"role\" is reserved and may not be a mapping destination"
    );
    assert!(a.list_roles().unwrap().is_empty(), "nothing was stored");
}

#[test]
fn config_and_roles_reach_the_other_node() {
    let (a, b) = two_nodes();
    write_config(&a, pem_config());
    a.write_role("ci", |r| {
        r.user_claim = "sub".into();
        r.bound_audiences = vec!["vault".into()];
        Ok(())
    })
    .unwrap();
    assert!(b.config().unwrap().is_none());
    b.apply_change("auth/j1/config").unwrap();
    let role_path = a.role_path("ci");
    b.apply_change(&role_path).unwrap();
    assert_eq!(b.list_roles().unwrap(), vec!["ci"]);
    assert!(b.login("ci", &sign(json!({})), now()).is_ok());
    a.delete_role("ci").unwrap();
    b.apply_change(&role_path).unwrap();
    assert!(b.list_roles().unwrap().is_empty());
    // Changes of other methods are ignored.
    b.apply_change("auth/other/config").unwrap();
    b.reload().unwrap();
    assert!(b.config().unwrap().is_some());
}

#[test]
fn login_applies_the_roles_bindings() {
    let (a, _) = two_nodes();
    assert_eq!(
        err(a.login("ci", "x", now())),
        "could not load configuration"
    );
    let mut config = pem_config();
    config.config.default_role = "ci".into();
    write_config(&a, config);
    a.write_role("ci", |r| {
        r.user_claim = "sub".into();
        r.bound_audiences = vec!["vault".into()];
        r.bound_claims_type = BoundClaimsType::Glob;
        r.bound_claims = json!({"repo": ["org/*", "other/app"], "/ref/branch": "main"})
            .as_object()
            .cloned();
        r.claim_mappings = Some(BTreeMap::from([
            ("repo".into(), "repository".into()),
            ("/ref/branch".into(), "branch".into()),
        ]));
        r.groups_claim = "groups".into();
        Ok(())
    })
    .unwrap();
    let good = json!({"repo": "org/app", "ref": {"branch": "main"}, "groups": ["a", "b"]});
    let ok = a.login("", &sign(good.clone()), now()).unwrap();
    assert_eq!(ok.user, "alice");
    assert_eq!(
        ok.metadata,
        BTreeMap::from([
            ("branch".to_owned(), "main".to_owned()),
            ("repository".to_owned(), "org/app".to_owned()),
            ("role".to_owned(), "ci".to_owned()),
        ])
    );
    let with = |extra: Value| {
        let mut c = good.clone();
        for (k, v) in extra.as_object().unwrap() {
            c[k] = v.clone();
        }
        err(a.login("ci", &sign(c), now()))
    };
    assert_eq!(
        with(json!({"repo": "evil/app"})),
        "error validating claims: claim \"repo\" does not match any associated bound claim values"
    );
    assert_eq!(
        with(json!({"ref": {"branch": "dev"}})),
        "error validating claims: claim \"/ref/branch\" does not match any associated bound claim values"
    );
    assert_eq!(
        with(json!({"ref": {}})),
        "error validating claims: claim \"/ref/branch\" is missing"
    );
    assert_eq!(
        with(json!({"sub": null})),
        "claim \"sub\" not found in token"
    );
    assert_eq!(
        with(json!({"sub": 7})),
        "error validating token: invalid sub claim: not a string"
    );
    assert_eq!(
        with(json!({"repo": 5})),
        "error converting claim 'repo' to string"
    );
    assert_eq!(
        with(json!({"groups": null})),
        "failed to fetch groups: \"groups\" claim not found in token"
    );
    assert_eq!(
        with(json!({"aud": "elsewhere"})),
        "error validating token: invalid audience (aud) claim: audience claim does not match any expected audience"
    );
    assert_eq!(
        with(json!({"iss": "https://evil"})),
        "error validating token: invalid issuer (iss) claim"
    );
    assert_eq!(
        err(a.login("nope", &sign(good.clone()), now())),
        "role \"nope\" could not be found"
    );
    assert_eq!(err(a.login("ci", "", now())), "missing token");

    // Exact strings; numbers compare by value, as Vault's do.
    a.write_role("exact", |r| {
        r.user_claim = "sub".into();
        r.bound_subject = "alice".into();
        r.bound_claims = json!({"run": 5, "env": ["prod", "stage"]})
            .as_object()
            .cloned();
        Ok(())
    })
    .unwrap();
    let exact = |c: Value| a.login("exact", &sign(c), now()).map(|_| ());
    assert_eq!(
        err(exact(json!({"run": 5, "env": "prod"}))),
        "audience claim found in JWT but no audiences bound to the role"
    );
    assert!(exact(json!({"aud": null, "run": 5, "env": "prod"})).is_ok());
    assert!(exact(json!({"aud": null, "run": "5", "env": "prod"})).is_err());
    assert!(exact(json!({"aud": null, "run": 5, "env": "pro*"})).is_err());
    assert_eq!(
        err(exact(
            json!({"aud": null, "sub": "bob", "run": 5, "env": "prod"})
        )),
        "error validating token: invalid subject (sub) claim"
    );
}
