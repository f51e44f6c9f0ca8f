//! Tokens and policies: least privilege on every endpoint.

use serde_json::{Value, json};

use crate::support::{TestApp, b64};

const ALL: [&str; 6] = ["create", "read", "update", "delete", "list", "sudo"];

#[tokio::test]
async fn web_policy_encrypts_with_web_keys_only() {
    let app = TestApp::new();
    app.write("transit/keys/web-1", json!({})).await.ok();
    app.write("transit/keys/db-1", json!({})).await.ok();
    let token = app
        .token_with_policy(
            "web",
            r#"path "transit/encrypt/web-*" { capabilities = ["update"] }"#,
        )
        .await;
    let web = app.as_token(Some(&token));
    let ct = web
        .write("transit/encrypt/web-1", json!({ "plaintext": b64(b"hi") }))
        .await
        .ok()
        .body["data"]["ciphertext"]
        .as_str()
        .unwrap()
        .to_owned();
    let denied = json!({ "errors": ["1 error occurred:\n\t* permission denied\n\n"] });
    for (path, body) in [
        ("transit/decrypt/web-1", json!({ "ciphertext": ct })),
        ("transit/encrypt/db-1", json!({ "plaintext": b64(b"hi") })),
        ("transit/keys/web-1/rotate", json!({})),
        // Encrypting with a key that does not exist would create it: `create` needed.
        ("transit/encrypt/web-2", json!({ "plaintext": b64(b"hi") })),
    ] {
        let res = web.write(path, body).await.expect(403);
        assert_eq!(res.body, denied, "{path}");
    }
    web.read("transit/keys/web-1").await.expect(403);
    assert!(
        app.read("transit/keys/web-2").await.status == 404,
        "no key was created"
    );
    // The default policy still lets the token look itself up.
    let me = web.read("auth/token/lookup-self").await.ok();
    assert_eq!(me.body["data"]["policies"], json!(["default", "web"]));
}

/// Every endpoint, with a token holding exactly the capability it needs on
/// exactly its path (allowed), and one holding every other capability there
/// (denied).
#[tokio::test]
async fn every_endpoint_needs_its_capability() {
    let app = TestApp::new();
    app.write(
        "transit/keys/k",
        json!({ "exportable": true, "allow_plaintext_backup": true }),
    )
    .await
    .ok();
    app.write("transit/keys/s", json!({ "type": "ed25519" }))
        .await
        .ok();
    let ct = app
        .write("transit/encrypt/k", json!({ "plaintext": b64(b"x") }))
        .await
        .ok()
        .body["data"]["ciphertext"]
        .clone();
    let backup = app.read("transit/backup/k").await.ok().body["data"]["backup"].clone();
    let sig = app
        .write("transit/sign/s", json!({ "input": b64(b"x") }))
        .await
        .ok()
        .body["data"]["signature"]
        .clone();
    let cases: Vec<(&str, &str, Value, &[&str])> = vec![
        ("LIST", "transit/keys", Value::Null, &["list"]),
        ("GET", "transit/keys/k", Value::Null, &["read"]),
        ("POST", "transit/keys/k", json!({}), &["update"]),
        ("POST", "transit/keys/fresh", json!({}), &["create"]),
        (
            "POST",
            "transit/keys/k/config",
            json!({ "deletion_allowed": false }),
            &["update"],
        ),
        ("POST", "transit/keys/k/rotate", json!({}), &["update"]),
        (
            "POST",
            "transit/keys/k/trim",
            json!({ "min_available_version": 1 }),
            &["update"],
        ),
        (
            "POST",
            "transit/encrypt/k",
            json!({ "plaintext": b64(b"x") }),
            &["update"],
        ),
        (
            "POST",
            "transit/encrypt/upserted",
            json!({ "plaintext": b64(b"x") }),
            &["create"],
        ),
        (
            "POST",
            "transit/decrypt/k",
            json!({ "ciphertext": ct }),
            &["update"],
        ),
        (
            "POST",
            "transit/rewrap/k",
            json!({ "ciphertext": ct }),
            &["update"],
        ),
        (
            "POST",
            "transit/datakey/plaintext/k",
            json!({}),
            &["update"],
        ),
        (
            "POST",
            "transit/hmac/k",
            json!({ "input": b64(b"x") }),
            &["update"],
        ),
        (
            "POST",
            "transit/sign/s",
            json!({ "input": b64(b"x") }),
            &["update"],
        ),
        (
            "POST",
            "transit/verify/s",
            json!({ "input": b64(b"x"), "signature": sig }),
            &["update"],
        ),
        (
            "GET",
            "transit/export/encryption-key/k",
            Value::Null,
            &["read"],
        ),
        ("GET", "transit/backup/k", Value::Null, &["read"]),
        (
            "POST",
            "transit/restore/copy",
            json!({ "backup": backup }),
            &["update"],
        ),
        ("POST", "transit/random/16", json!({}), &["update"]),
        (
            "POST",
            "transit/hash",
            json!({ "input": b64(b"x") }),
            &["update"],
        ),
        ("GET", "transit/config/keys", Value::Null, &["read"]),
        (
            "POST",
            "transit/config/keys",
            json!({ "disable_upsert": false }),
            &["update"],
        ),
        ("GET", "transit/cache-config", Value::Null, &["read"]),
        ("DELETE", "transit/keys/s", Value::Null, &["delete"]),
        ("GET", "sys/mounts", Value::Null, &["read"]),
        (
            "POST",
            "sys/mounts/other",
            json!({ "type": "transit" }),
            &["update"],
        ),
        ("DELETE", "sys/mounts/other", Value::Null, &["delete"]),
        ("GET", "sys/policy", Value::Null, &["read"]),
        (
            "POST",
            "sys/policies/acl/extra",
            json!({ "policy": "" }),
            &["update"],
        ),
        ("GET", "sys/policies/acl/default", Value::Null, &["read"]),
        ("LIST", "sys/policies/acl", Value::Null, &["list"]),
        ("DELETE", "sys/policies/acl/extra", Value::Null, &["delete"]),
        ("POST", "auth/token/create", json!({}), &["update"]),
        ("POST", "sys/seal", json!({}), &["update", "sudo"]),
    ];
    for (n, (method, path, body, needed)) in cases.iter().enumerate() {
        let exact = if *method == "LIST" {
            format!("{path}/")
        } else {
            (*path).to_owned()
        };
        let others: Vec<&str> = ALL
            .iter()
            .copied()
            .filter(|c| !needed.contains(c))
            .collect();
        let quoted = |caps: &[&str]| {
            caps.iter()
                .map(|c| format!("{c:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let deny_token = app
            .token_with_policy(
                &format!("deny-{n}"),
                &format!("path {exact:?} {{ capabilities = [{}] }}", quoted(&others)),
            )
            .await;
        let allow_token = app
            .token_with_policy(
                &format!("allow-{n}"),
                &format!("path {exact:?} {{ capabilities = [{}] }}", quoted(needed)),
            )
            .await;
        // Tokens with a strict subset of what is needed are refused too.
        let partial: Vec<String> = if needed.len() > 1 {
            vec![
                app.token_with_policy(
                    &format!("partial-{n}"),
                    &format!(
                        "path {exact:?} {{ capabilities = [{}] }}",
                        quoted(&needed[..1])
                    ),
                )
                .await,
            ]
        } else {
            Vec::new()
        };
        for t in std::iter::once(&deny_token).chain(&partial) {
            let res = app.as_token(Some(t)).call(method, path, body.clone()).await;
            assert_eq!(res.status, 403, "{method} {path} with {t:?}: {}", res.body);
        }
        let res = app.as_token(None).call(method, path, body.clone()).await;
        assert_eq!(res.status, 403, "{method} {path} without a token");
        let res = app
            .as_token(Some(&allow_token))
            .call(method, path, body.clone())
            .await;
        assert_ne!(
            res.status, 403,
            "{method} {path} with {needed:?}: {}",
            res.body
        );
    }
}

#[tokio::test]
async fn token_lifecycle_children_accessors_and_uses() {
    let app = TestApp::new();
    let parent = app
        .write(
            "auth/token/create",
            json!({ "policies": ["p1", "p2"], "ttl": "1h", "meta": {"team": "web"} }),
        )
        .await
        .ok();
    let auth = &parent.body["auth"];
    assert_eq!(auth["policies"], json!(["default", "p1", "p2"]));
    assert_eq!(auth["renewable"], json!(true));
    assert!(auth["lease_duration"].as_u64().unwrap() <= 3600);
    let parent_token = auth["client_token"].as_str().unwrap().to_owned();
    assert!(parent_token.starts_with("s.") && parent_token.len() == 26);
    let accessor = auth["accessor"].as_str().unwrap().to_owned();

    let p = app.as_token(Some(&parent_token));
    // A child never exceeds its parent.
    p.write("auth/token/create", json!({ "policies": ["p3"] }))
        .await
        .expect(403);
    app.write(
        "sys/policies/acl/p1",
        json!({ "policy": r#"path "auth/token/create" { capabilities = ["update"] }"# }),
    )
    .await
    .expect(204);
    let res = p
        .write("auth/token/create", json!({ "policies": ["p3"] }))
        .await
        .expect(400);
    assert!(res.error().contains("subset"), "{}", res.error());
    let child = p
        .write("auth/token/create", json!({ "policies": ["p2"] }))
        .await
        .ok();
    let child_token = child.body["auth"]["client_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(child.body["auth"]["orphan"], json!(false));

    let looked = app
        .write(
            "auth/token/lookup-accessor",
            json!({ "accessor": accessor }),
        )
        .await
        .ok();
    assert_eq!(looked.body["data"]["meta"], json!({"team": "web"}));
    assert_eq!(looked.body["data"]["id"], json!(""));
    let me = p.read("auth/token/lookup-self").await.ok();
    assert_eq!(me.body["data"]["id"], json!(parent_token));
    let renewed = p
        .write("auth/token/renew-self", json!({ "increment": "30m" }))
        .await
        .ok();
    assert!(renewed.body["auth"]["lease_duration"].as_u64().unwrap() <= 1800);

    // Revoking the parent (by accessor) revokes the child.
    app.write(
        "auth/token/revoke-accessor",
        json!({ "accessor": accessor }),
    )
    .await
    .expect(204);
    p.read("auth/token/lookup-self").await.expect(403);
    app.as_token(Some(&child_token))
        .read("auth/token/lookup-self")
        .await
        .expect(403);

    // Use-limited: two uses, then gone.
    let limited = app
        .write("auth/token/create", json!({ "num_uses": 2 }))
        .await
        .ok();
    let limited = limited.body["auth"]["client_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let l = app.as_token(Some(&limited));
    l.read("auth/token/lookup-self").await.ok();
    l.read("auth/token/lookup-self").await.ok();
    l.read("auth/token/lookup-self").await.expect(403);

    // Expiry: a 1-second token is refused once its time is up.
    let short = app
        .write("auth/token/create", json!({ "ttl": "1s" }))
        .await
        .ok();
    let short = short.body["auth"]["client_token"]
        .as_str()
        .unwrap()
        .to_owned();
    app.as_token(Some(&short))
        .read("auth/token/lookup-self")
        .await
        .ok();
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    app.as_token(Some(&short))
        .read("auth/token/lookup-self")
        .await
        .expect(403);

    // revoke-self and orphans.
    let orphan = app
        .write("auth/token/create", json!({ "no_parent": true }))
        .await
        .ok();
    assert_eq!(orphan.body["auth"]["orphan"], json!(true));
    let o = orphan.body["auth"]["client_token"]
        .as_str()
        .unwrap()
        .to_owned();
    app.as_token(Some(&o))
        .write("auth/token/revoke-self", json!({}))
        .await
        .expect(204);
    app.as_token(Some(&o))
        .read("auth/token/lookup-self")
        .await
        .expect(403);
}

#[tokio::test]
async fn policies_crud_and_capabilities_self() {
    let app = TestApp::new();
    let hcl = "path \"transit/encrypt/web-*\" {\n  capabilities = [\"update\"]\n}\npath \"transit/keys\" {\n  capabilities = [\"deny\"]\n}\n";
    app.write("sys/policies/acl/web", json!({ "policy": hcl }))
        .await
        .expect(204);
    let read = app.read("sys/policies/acl/web").await.ok();
    assert_eq!(read.body["data"], json!({ "name": "web", "policy": hcl }));
    let legacy = app.read("sys/policy/web").await.ok();
    assert_eq!(legacy.body["rules"], json!(hcl));
    let list = app.call("LIST", "sys/policies/acl", Value::Null).await.ok();
    assert_eq!(list.body["data"]["keys"], json!(["default", "root", "web"]));
    let bad = app
        .write(
            "sys/policies/acl/bad",
            json!({ "policy": "path \"x\" { capabilities = [\"fly\"] }" }),
        )
        .await;
    assert_eq!(bad.status, 400, "{}", bad.body);
    app.call("DELETE", "sys/policies/acl/root", Value::Null)
        .await
        .expect(400);
    app.call("DELETE", "sys/policies/acl/default", Value::Null)
        .await
        .expect(400);

    let token = app
        .write("auth/token/create", json!({ "policies": ["web"] }))
        .await
        .ok();
    let token = token.body["auth"]["client_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let caps = app
        .as_token(Some(&token))
        .write(
            "sys/capabilities-self",
            json!({ "paths": ["transit/encrypt/web-9", "transit/decrypt/web-9", "transit/keys"] }),
        )
        .await
        .ok();
    assert_eq!(
        caps.body["data"]["transit/encrypt/web-9"],
        json!(["update"])
    );
    assert_eq!(caps.body["data"]["transit/decrypt/web-9"], json!(["deny"]));
    assert_eq!(caps.body["data"]["transit/keys"], json!(["deny"]));
    let root_caps = app
        .write("sys/capabilities-self", json!({ "path": "anything" }))
        .await
        .ok();
    assert_eq!(root_caps.body["capabilities"], json!(["root"]));

    app.call("DELETE", "sys/policies/acl/web", Value::Null)
        .await
        .expect(204);
    app.read("sys/policies/acl/web").await.expect(404);
    // The token keeps the name; the policy is gone, so it grants nothing now.
    app.as_token(Some(&token))
        .write("transit/encrypt/web-1", json!({ "plaintext": b64(b"x") }))
        .await
        .expect(403);
}

/// Findings of the security review, kept as regressions.
#[tokio::test]
async fn path_tricks_case_tricks_and_exhausted_parents_are_refused() {
    let app = TestApp::new();
    app.write("transit/keys/secret", json!({ "exportable": true }))
        .await
        .ok();
    let token = app
        .token_with_policy(
            "t1",
            r#"
path "transit/*" { capabilities = ["create", "read", "update", "list"] }
path "transit/export/*" { capabilities = ["deny"] }
path "sys/policies/acl/*" { capabilities = ["create", "read", "update"] }
path "sys/policies/acl/t1" { capabilities = ["deny"] }
"#,
        )
        .await;
    let t = app.as_token(Some(&token));
    t.read("transit/export/encryption-key/secret")
        .await
        .expect(403);
    // An empty segment must not route around the deny rule.
    for path in [
        "transit//export/encryption-key/secret",
        "transit/./export/encryption-key/secret",
        "transit/x/../export/encryption-key/secret",
        "transit/export//encryption-key/secret",
    ] {
        let res = t.read(path).await;
        assert!(res.status == 400, "{path}: {} {}", res.status, res.body);
    }
    // Percent-encoding is decoded before the check.
    t.read("transit/%65xport/encryption-key/secret")
        .await
        .expect(403);
    // Names are case-insensitive: a rule about t1 governs T1.
    t.write(
        "sys/policies/acl/T1",
        json!({ "policy": "path \"*\" { capabilities = [\"sudo\"] }" }),
    )
    .await
    .expect(403);

    // Without a token, the body is not even read.
    let res = app
        .as_token(None)
        .raw(
            "POST",
            "/v1/transit/encrypt/k",
            Some(b"{not json".to_vec()),
            Some("application/json"),
        )
        .await;
    assert_eq!(res.status, 403);

    // A one-use token spends its use on the create and cannot leave a child behind.
    let once = app
        .write("auth/token/create", json!({ "num_uses": 1 }))
        .await
        .ok();
    let once = once.body["auth"]["client_token"]
        .as_str()
        .unwrap()
        .to_owned();
    app.write(
        "sys/policies/acl/default",
        json!({ "policy": "path \"auth/token/create\" { capabilities = [\"update\"] }" }),
    )
    .await
    .expect(204);
    let res = app
        .as_token(Some(&once))
        .write("auth/token/create", json!({ "policies": ["default"] }))
        .await;
    assert_eq!(res.status, 400, "{}", res.body);
    app.as_token(Some(&once))
        .read("auth/token/lookup-self")
        .await
        .expect(403);

    // Creating a userpass user needs `create`; `update` only changes existing ones.
    app.write("sys/auth/userpass", json!({ "type": "userpass" }))
        .await
        .expect(204);
    let updater = app
        .token_with_policy(
            "upd",
            r#"path "auth/userpass/users/*" { capabilities = ["update"] }"#,
        )
        .await;
    app.as_token(Some(&updater))
        .write("auth/userpass/users/new", json!({ "password": "pw" }))
        .await
        .expect(403);
    app.write("auth/userpass/users/old", json!({ "password": "pw" }))
        .await
        .expect(204);
    app.as_token(Some(&updater))
        .write("auth/userpass/users/old", json!({ "password": "pw2" }))
        .await
        .expect(204);
}
