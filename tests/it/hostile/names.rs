//! Names in paths: a padded or hidden-character name cannot pass a rule
//! written for the canonical name (the `admin%20` deny bypass), for every
//! kind of name.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;

use crate::support::TestApp;

const RULE: &str = r#"path "x" { capabilities = ["read"] }"#;

/// A token that may manage every policy but `admin` can neither overwrite
/// `admin` nor give itself more through any spelling of its name.
#[tokio::test]
async fn a_policy_deny_holds_for_every_spelling_of_the_name() {
    let app = TestApp::new();
    app.write("sys/policies/acl/admin", json!({ "policy": RULE }))
        .await
        .expect(204);
    let token = app
        .token_with_policy(
            "manager",
            r#"
            path "sys/policies/acl/*" { capabilities = ["create", "read", "update", "delete", "list"] }
            path "sys/policy/*" { capabilities = ["create", "read", "update", "delete", "list"] }
            path "sys/policies/acl/admin" { capabilities = ["deny"] }
            path "sys/policy/admin" { capabilities = ["deny"] }
            "#,
        )
        .await;
    let manager = app.as_token(Some(&token));
    let grab = json!({ "policy": r#"path "*" { capabilities = ["sudo", "update"] }"# });
    for spelling in [
        "admin%20",
        "%20admin",
        "admin%09",
        "admin%0A",
        "admin%0D",
        "admin%00",
        "admin%C2%A0",
        "admin%E3%80%80",
        "admin%E2%80%8B",
        "admin%EF%BB%BF",
        "%E2%80%AEadmin",
    ] {
        for prefix in ["sys/policies/acl", "sys/policy"] {
            let res = manager
                .write(&format!("{prefix}/{spelling}"), grab.clone())
                .await;
            assert_eq!(res.status, 400, "{prefix}/{spelling}: {:?}", res.body);
        }
    }
    for spelling in ["ADMIN", "Admin"] {
        for prefix in ["sys/policies/acl", "sys/policy"] {
            manager
                .write(&format!("{prefix}/{spelling}"), grab.clone())
                .await
                .expect(403);
        }
    }
    let admin = app.read("sys/policies/acl/admin").await.ok();
    assert_eq!(admin.body["data"]["policy"], RULE, "admin is unchanged");
    // Other policies stay manageable, and mixed case reaches the folded name.
    manager
        .write("sys/policies/acl/Team", json!({ "policy": RULE }))
        .await
        .expect(204);
    assert_eq!(
        app.read("sys/policies/acl/team").await.ok().body["data"]["name"],
        "team"
    );
}

/// Every kind of name refuses padding and hidden characters with 400 and
/// changes nothing; user and role names fold their case as Vault does.
#[tokio::test]
async fn every_kind_of_name_refuses_hidden_characters() {
    let app = TestApp::new();
    app.write("sys/auth/userpass", json!({ "type": "userpass" }))
        .await
        .expect(204);
    app.write("sys/auth/approle", json!({ "type": "approle" }))
        .await
        .expect(204);
    let paths = [
        ("sys/policies/acl/{}", json!({ "policy": RULE })),
        ("transit/keys/{}", json!({})),
        ("sys/mounts/{}", json!({ "type": "transit" })),
        ("sys/auth/{}", json!({ "type": "userpass" })),
        (
            "sys/audit/{}",
            json!({ "type": "file", "options": { "file_path": "/dev/null" } }),
        ),
        ("auth/userpass/users/{}", json!({ "password": "pw" })),
        ("auth/approle/role/{}", json!({})),
    ];
    for (template, body) in &paths {
        for hidden in ["%09", "%0A", "%C2%A0", "%E3%80%80", "%E2%80%8B", "%7F"] {
            let path = template.replace("{}", &format!("n{hidden}x"));
            let res = app.write(&path, body.clone()).await;
            assert_eq!(res.status, 400, "{path}: {:?}", res.body);
        }
    }
    // Leading or trailing spaces: 400 where the name may hold a space,
    // 404 where Vault's name pattern has no room for one (users, roles).
    for (template, body) in &paths[..5] {
        for padded in ["n%20", "%20n"] {
            let path = template.replace("{}", padded);
            let res = app.write(&path, body.clone()).await;
            assert_eq!(res.status, 400, "{path}: {:?}", res.body);
        }
    }
    for template in ["auth/userpass/users/{}", "auth/approle/role/{}"] {
        let res = app.write(&template.replace("{}", "n%20"), json!({})).await;
        assert_eq!(res.status, 404, "{template}");
    }
    // Nothing was created by any of them.
    assert_eq!(
        app.call("LIST", "transit/keys", json!(null)).await.status,
        404
    );
    assert_eq!(
        app.call("LIST", "auth/userpass/users", json!(null))
            .await
            .status,
        404
    );
    let policies = app.call("LIST", "sys/policies/acl", json!(null)).await.ok();
    assert_eq!(policies.body["data"]["keys"], json!(["default", "root"]));
    // Mixed case: users and roles fold (Vault's rule); keys keep their case.
    app.write("auth/userpass/users/Bob", json!({ "password": "pw" }))
        .await
        .expect(204);
    app.read("auth/userpass/users/bob").await.ok();
    app.write("transit/keys/Web", json!({})).await.ok();
    assert_eq!(app.read("transit/keys/web").await.status, 404);
}

/// A key name outside Vault's name syntax is never created, by any of the
/// ways a key comes to exist: a write, encrypt's upsert, a restore under a
/// body `name`, or a restore of a backup that carries such a name.
#[tokio::test]
async fn no_key_is_created_under_a_name_vault_refuses() {
    let app = TestApp::new();
    for name in ["a%20b", "a*b", "-a", "a-", "%D0%BA", "a+b", "a:b"] {
        let res = app.write(&format!("transit/keys/{name}"), json!({})).await;
        assert_eq!(res.status, 400, "keys/{name}: {:?}", res.body);
        let res = app
            .write(
                &format!("transit/encrypt/{name}"),
                json!({ "plaintext": "aGk=" }),
            )
            .await;
        assert_eq!(res.status, 400, "encrypt/{name}: {:?}", res.body);
    }
    // A backup of a real key, then the same backup renamed inside.
    app.write(
        "transit/keys/k",
        json!({ "exportable": true, "allow_plaintext_backup": true }),
    )
    .await
    .expect(200);
    let backup = app.read("transit/backup/k").await.ok().data()["backup"]
        .as_str()
        .unwrap()
        .to_owned();
    let res = app
        .write(
            "transit/restore",
            json!({ "backup": backup, "name": "a b" }),
        )
        .await;
    assert_eq!(res.status, 400, "{:?}", res.body);
    let mut blob: serde_json::Value =
        serde_json::from_slice(&STANDARD.decode(&backup).unwrap()).unwrap();
    blob["policy"]["name"] = json!("k*");
    let renamed = transitd_test_support::b64(&serde_json::to_vec(&blob).unwrap());
    let res = app
        .write("transit/restore", json!({ "backup": renamed }))
        .await;
    assert_eq!(res.status, 400, "{:?}", res.body);
    // Only `k` exists; names Vault allows still work, case kept.
    let keys = app.call("LIST", "transit/keys", json!(null)).await.ok();
    assert_eq!(keys.data()["keys"], json!(["k"]));
    app.write("transit/keys/Web_1.a-b", json!({}))
        .await
        .expect(200);
}
