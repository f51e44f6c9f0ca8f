//! Response wrapping (`X-Vault-Wrap-TTL`, `sys/wrapping/*`) and break-glass
//! revocation (`sys/leases/revoke-prefix`, `revoke-force`,
//! `auth/token/revoke-orphan`, `auth/token/accessors`), in process.
//! The shapes and error texts are OpenBao 2.7.2's.

use std::sync::Arc;

use serde_json::{Value, json};
use transitd::{AppState, Limits};

use crate::support::{ROOT, Reply, TestApp, audit_text_when, audit_to_file};

const NOT_VALID: &str = "wrapping token is not valid or does not exist";

fn server() -> (Arc<AppState>, TestApp) {
    let state = Arc::new(AppState::dev(ROOT, Limits::default()));
    let app = TestApp::from_state(Arc::clone(&state), ROOT);
    (state, app)
}

/// A child of the app's token, as `auth/token/create` makes it.
trait ChildToken {
    async fn child_token(&self) -> String;
}

impl ChildToken for TestApp {
    async fn child_token(&self) -> String {
        let created = self.write("auth/token/create", json!({})).await.ok();
        created.body["auth"]["client_token"]
            .as_str()
            .unwrap()
            .to_owned()
    }
}

/// A write to a `sys/wrapping/` endpoint that names no valid wrapping token.
async fn not_valid(app: &TestApp, path: &str, body: Value) {
    let refused = app.write(path, body).await.expect(400);
    assert_eq!(refused.error(), NOT_VALID);
}

/// The wrapping token of a wrapped reply, after checking the reply shows
/// nothing but `wrap_info`.
fn wrapping_token(reply: &Reply, creation_path: &str, ttl: u64) -> String {
    let info = &reply.body["wrap_info"];
    assert_eq!(info["creation_path"], creation_path, "{}", reply.body);
    assert_eq!(info["ttl"], ttl, "{}", reply.body);
    assert!(info["accessor"].as_str().is_some_and(|a| a.len() == 24));
    assert!(
        info["creation_time"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z'))
    );
    assert!(
        reply.body["data"].is_null(),
        "secrets in the clear: {}",
        reply.body
    );
    assert!(
        reply.body["auth"].is_null(),
        "secrets in the clear: {}",
        reply.body
    );
    info["token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn wrapped_data_unwraps_once_with_the_token_presented_or_in_the_body() {
    let (_, app) = server();
    let secret = json!({ "a": "b", "n": { "x": 1 } });
    // Without a TTL, `wrap` has nothing to do.
    let refused = app
        .write("sys/wrapping/wrap", secret.clone())
        .await
        .expect(400);
    assert_eq!(
        refused.error(),
        "endpoint requires response wrapping to be used"
    );
    // Presented as the request token.
    let wrapped = app
        .write_wrapped("sys/wrapping/wrap", secret.clone(), "60")
        .await
        .ok();
    let token = wrapping_token(&wrapped, "sys/wrapping/wrap", 60);
    let holder = app.as_token(Some(&token));
    let unwrapped = holder.write("sys/wrapping/unwrap", json!({})).await.ok();
    assert_eq!(unwrapped.data(), &secret);
    // Its one use is spent: the token is gone.
    holder
        .write("sys/wrapping/unwrap", json!({}))
        .await
        .expect(403);
    // Given in the body by another token.
    let wrapped = app
        .write_wrapped("sys/wrapping/wrap", secret.clone(), "1m")
        .await
        .ok();
    let token = wrapping_token(&wrapped, "sys/wrapping/wrap", 60);
    let unwrapped = app
        .write("sys/wrapping/unwrap", json!({ "token": token }))
        .await
        .ok();
    assert_eq!(unwrapped.data(), &secret);
    not_valid(&app, "sys/wrapping/unwrap", json!({ "token": token })).await;
    // And the token itself was revoked with it.
    app.as_token(Some(&token))
        .read("auth/token/lookup-self")
        .await
        .expect(403);
    // A token that wraps nothing.
    not_valid(&app, "sys/wrapping/unwrap", json!({})).await;
}

#[tokio::test]
async fn lookup_needs_no_token_and_spends_no_use() {
    let (_, app) = server();
    let wrapped = app
        .write_wrapped("sys/wrapping/wrap", json!({ "k": "v" }), "90s")
        .await
        .ok();
    let token = wrapping_token(&wrapped, "sys/wrapping/wrap", 90);
    let anyone = app.as_token(None);
    let looked = anyone
        .write("sys/wrapping/lookup", json!({ "token": token }))
        .await
        .ok();
    assert_eq!(looked.data()["creation_path"], "sys/wrapping/wrap");
    assert_eq!(looked.data()["creation_ttl"], 90);
    assert_eq!(
        looked.data()["creation_time"],
        wrapped.body["wrap_info"]["creation_time"]
    );
    // As the request token, too; then it still unwraps.
    let holder = app.as_token(Some(&token));
    holder.write("sys/wrapping/lookup", json!({})).await.ok();
    holder.write("sys/wrapping/unwrap", json!({})).await.ok();
    not_valid(&anyone, "sys/wrapping/lookup", json!({ "token": token })).await;
    not_valid(&anyone, "sys/wrapping/lookup", json!({})).await;
    // A wrapping token may unwrap and nothing else.
    let wrapped = app
        .write_wrapped("sys/wrapping/wrap", json!({}), "60")
        .await
        .ok();
    let token = wrapping_token(&wrapped, "sys/wrapping/wrap", 60);
    app.as_token(Some(&token))
        .read("auth/token/lookup-self")
        .await
        .expect(403);
}

#[tokio::test]
async fn rewrap_moves_the_reply_to_a_new_token_and_spends_the_old() {
    let (_, app) = server();
    let wrapped = app
        .write_wrapped("sys/wrapping/wrap", json!({ "k": "v" }), "120")
        .await
        .ok();
    let old = wrapping_token(&wrapped, "sys/wrapping/wrap", 120);
    let rewrapped = app
        .write("sys/wrapping/rewrap", json!({ "token": old }))
        .await
        .ok();
    let new = wrapping_token(&rewrapped, "sys/wrapping/wrap", 120);
    assert_ne!(new, old);
    not_valid(&app, "sys/wrapping/unwrap", json!({ "token": old })).await;
    let unwrapped = app
        .as_token(Some(&new))
        .write("sys/wrapping/unwrap", json!({}))
        .await
        .ok();
    assert_eq!(unwrapped.data(), &json!({ "k": "v" }));
    not_valid(&app, "sys/wrapping/rewrap", json!({})).await;
}

#[tokio::test]
async fn a_wrapped_token_unwraps_to_its_auth_and_only_replies_with_content_are_wrapped() {
    let (_, app) = server();
    let wrapped = app
        .write_wrapped(
            "auth/token/create",
            json!({ "policies": ["default"] }),
            "60",
        )
        .await
        .ok();
    let token = wrapping_token(&wrapped, "auth/token/create", 60);
    let wrapped_accessor = wrapped.body["wrap_info"]["wrapped_accessor"].clone();
    let unwrapped = app
        .write("sys/wrapping/unwrap", json!({ "token": token }))
        .await
        .ok();
    let auth = &unwrapped.body["auth"];
    assert_eq!(auth["accessor"], wrapped_accessor);
    let child = auth["client_token"].as_str().unwrap();
    let me = app
        .as_token(Some(child))
        .read("auth/token/lookup-self")
        .await
        .ok();
    assert_eq!(me.data()["policies"], json!(["default"]));
    // A reply without a body (204) has nothing to wrap.
    let child_app = app.as_token(Some(child));
    let revoked = child_app
        .write_wrapped("auth/token/revoke-self", json!({}), "60")
        .await;
    assert_eq!(revoked.status, 204);
    // A batch with a failed item is wrapped whole: its other items are secrets.
    app.write("transit/keys/k", json!({})).await.ok();
    let batch = json!({ "batch_input": [
        { "plaintext": "aGVsbG8=" },
        { "plaintext": "not base64!" },
    ] });
    let wrapped = app
        .write_wrapped("transit/encrypt/k", batch, "60")
        .await
        .ok();
    let token = wrapping_token(&wrapped, "transit/encrypt/k", 60);
    let unwrapped = app
        .write("sys/wrapping/unwrap", json!({ "token": token }))
        .await
        .ok();
    let results = &unwrapped.data()["batch_results"];
    assert!(results[0]["ciphertext"].is_string(), "{}", unwrapped.body);
    assert!(results[1]["error"].is_string(), "{}", unwrapped.body);
    // An error is answered as it is.
    let missing = app
        .write_wrapped("transit/keys/none", json!({"type": "nope"}), "60")
        .await;
    assert_eq!(missing.status, 400, "{}", missing.body);
    assert!(missing.body["wrap_info"].is_null());
}

#[tokio::test]
async fn expired_wrappings_are_refused_and_swept() {
    let (state, app) = server();
    let wrapped = app
        .write_wrapped("sys/wrapping/wrap", json!({ "k": "v" }), "1")
        .await
        .ok();
    let token = wrapping_token(&wrapped, "sys/wrapping/wrap", 1);
    let unsealed = state.unsealed().unwrap();
    let id = unsealed.tokens.id_of(&token);
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    assert!(unsealed.wraps.peek(&id, now).unwrap().is_some());
    // The upkeep's sweep, a moment after the TTL.
    assert_eq!(unsealed.wraps.sweep(now + 2).unwrap(), 1);
    assert_eq!(unsealed.tokens.sweep(now + 2).unwrap(), 1);
    not_valid(&app, "sys/wrapping/unwrap", json!({ "token": token })).await;
}

/// The trusted orchestrator: it gets a wrapped secret ID, the job unwraps
/// it and logs in, a second unwrap is refused, and the audit log shows the
/// wrapped reply (hashed, with its `wrap_info`) and both unwraps.
#[tokio::test]
async fn the_trusted_orchestrator_flow() {
    let (_, app) = server();
    let dir = tempfile::tempdir().unwrap();
    let log = audit_to_file(&app, dir.path()).await;
    app.write("sys/auth/approle", json!({ "type": "approle" }))
        .await
        .expect(204);
    app.write(
        "auth/approle/role/job",
        json!({ "token_policies": ["default"] }),
    )
    .await
    .expect(204);
    let role_id = app.read("auth/approle/role/job/role-id").await.ok().data()["role_id"]
        .as_str()
        .unwrap()
        .to_owned();
    // 1. The orchestrator: a wrapped secret ID.
    let wrapped = app
        .write_wrapped("auth/approle/role/job/secret-id", json!({}), "120")
        .await
        .ok();
    let token = wrapping_token(&wrapped, "auth/approle/role/job/secret-id", 120);
    // 2. The job unwraps it and logs in.
    let job = app.as_token(Some(&token));
    let unwrapped = job.write("sys/wrapping/unwrap", json!({})).await.ok();
    let secret_id = unwrapped.data()["secret_id"].as_str().unwrap().to_owned();
    let login = app
        .as_token(None)
        .write(
            "auth/approle/login",
            json!({ "role_id": role_id, "secret_id": secret_id }),
        )
        .await
        .ok();
    assert!(login.body["auth"]["client_token"].is_string());
    // 3. Whoever tries next is refused.
    job.write("sys/wrapping/unwrap", json!({}))
        .await
        .expect(403);
    not_valid(&app, "sys/wrapping/unwrap", json!({ "token": token })).await;
    // The audit log.
    // The unwrap, its response; the spent token's refusal (one entry, as an
    // unknown token's); the second unwrap, its response.
    let wanted = |text: &str| text.matches("\"path\":\"sys/wrapping/unwrap\"").count() >= 5;
    let text = audit_text_when(&log, wanted).await;
    assert!(wanted(&text), "three unwraps on record: {text}");
    for secret in [&token, &secret_id] {
        assert!(
            !text.contains(secret.as_str()),
            "a secret in clear in the audit log"
        );
    }
    let wrapped_response = text
        .lines()
        .find(|l| l.contains("\"type\":\"response\"") && l.contains("role/job/secret-id"))
        .expect("the wrapped reply is on record");
    assert!(
        wrapped_response.contains("\"wrap_info\""),
        "{wrapped_response}"
    );
    assert!(
        wrapped_response.contains("hmac-sha256:"),
        "{wrapped_response}"
    );
    let unwraps: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("\"path\":\"sys/wrapping/unwrap\""))
        .collect();
    assert_eq!(unwraps.len(), 5, "{text}");
    assert!(
        !unwraps[1].contains("\"error\""),
        "the first unwrap succeeded: {}",
        unwraps[1]
    );
    assert!(
        unwraps[2].contains("\"error\":\"permission denied\""),
        "{}",
        unwraps[2]
    );
    assert!(unwraps[4].contains(NOT_VALID), "{}", unwraps[4]);
}

#[tokio::test]
async fn revoke_prefix_revokes_every_token_of_a_login_path_and_its_children() {
    let (_, app) = server();
    app.write("sys/auth/userpass", json!({ "type": "userpass" }))
        .await
        .expect(204);
    app.write(
        "sys/policies/acl/parent",
        json!({ "policy": "path \"auth/token/create\" { capabilities = [\"update\"] }" }),
    )
    .await
    .expect(204);
    for user in ["web", "web2", "ops"] {
        app.write(
            &format!("auth/userpass/users/{user}"),
            json!({ "password": "pw", "token_policies": ["parent"] }),
        )
        .await
        .expect(204);
    }
    let anyone = app.as_token(None);
    let login = |user: &'static str| {
        let anyone = anyone.as_token(None);
        async move {
            anyone
                .write(
                    &format!("auth/userpass/login/{user}"),
                    json!({ "password": "pw" }),
                )
                .await
                .ok()
                .body["auth"]["client_token"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    let alive = |token: String| {
        let me = app.as_token(Some(&token));
        async move { me.read("auth/token/lookup-self").await.status == 200 }
    };
    let (web, web2, ops) = (login("web").await, login("web2").await, login("ops").await);
    let child = app.as_token(Some(&web)).child_token().await;
    let other = app.child_token().await;
    // Not sudo: refused, nothing revoked.
    let limited = app
        .token_with_policy(
            "leases",
            "path \"sys/leases/*\" { capabilities = [\"update\"] }",
        )
        .await;
    app.as_token(Some(&limited))
        .write("sys/leases/revoke-prefix/auth/userpass", json!({}))
        .await
        .expect(403);
    assert!(alive(web.clone()).await);
    // One user's tokens (not web2's, whose name starts the same way).
    app.write(
        "sys/leases/revoke-prefix/auth/userpass/login/web",
        json!({}),
    )
    .await
    .expect(204);
    assert!(!alive(web.clone()).await);
    assert!(
        !alive(child.clone()).await,
        "the child of a revoked token lives"
    );
    assert!(alive(web2.clone()).await);
    assert!(alive(ops.clone()).await);
    // The whole method, by revoke-force (the same for tokens).
    app.write("sys/leases/revoke-force/auth/userpass/", json!({}))
        .await
        .expect(204);
    assert!(!alive(web2).await);
    assert!(!alive(ops).await);
    assert!(
        alive(other).await,
        "a token of auth/token/create was revoked"
    );
    let refused = app
        .write(
            "sys/leases/revoke-prefix/auth/userpass",
            json!({ "sync": false }),
        )
        .await
        .expect(400);
    assert!(refused.error().contains("sync"), "{}", refused.body);
}

#[tokio::test]
async fn revoke_orphan_keeps_the_children_and_accessors_lists_the_live_tokens() {
    let (_, app) = server();
    let parent = app
        .token_with_policy(
            "creator",
            "path \"auth/token/create\" { capabilities = [\"update\"] }",
        )
        .await;
    let child = app.as_token(Some(&parent)).child_token().await;
    // Sudo only.
    app.as_token(Some(&parent))
        .write("auth/token/revoke-orphan", json!({ "token": child }))
        .await
        .expect(403);
    app.as_token(Some(&parent))
        .call("LIST", "auth/token/accessors", Value::Null)
        .await
        .expect(403);
    let missing = app
        .write("auth/token/revoke-orphan", json!({}))
        .await
        .expect(400);
    assert_eq!(missing.error(), "missing token ID");
    let unknown = app
        .write("auth/token/revoke-orphan", json!({ "token": "s.nope" }))
        .await
        .expect(400);
    assert_eq!(unknown.error(), "token to revoke not found");
    let accessors = app
        .call("LIST", "auth/token/accessors", Value::Null)
        .await
        .ok();
    let listed = accessors.data()["keys"].as_array().unwrap().len();
    assert_eq!(listed, 3, "root, parent and child: {}", accessors.body);
    app.write("auth/token/revoke-orphan", json!({ "token": parent }))
        .await
        .expect(204);
    app.as_token(Some(&parent))
        .read("auth/token/lookup-self")
        .await
        .expect(403);
    let orphan = app
        .as_token(Some(&child))
        .read("auth/token/lookup-self")
        .await
        .ok();
    assert_eq!(orphan.data()["orphan"], true);
    let accessors = app
        .call("LIST", "auth/token/accessors", Value::Null)
        .await
        .ok();
    assert_eq!(accessors.data()["keys"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn a_root_token_has_no_lease_to_renew() {
    let (_, app) = server();
    let refused = app
        .write("auth/token/renew-self", json!({}))
        .await
        .expect(400);
    assert_eq!(refused.error(), "lease is not renewable");
}

/// An operator requires secret IDs to leave wrapped, for 1 to 5 minutes.
#[tokio::test]
async fn a_policy_can_require_wrapping_within_bounds() {
    let (_, app) = server();
    app.write("sys/auth/approle", json!({ "type": "approle" }))
        .await
        .expect(204);
    app.write("auth/approle/role/ci", json!({}))
        .await
        .expect(204);
    let orchestrator = app
        .token_with_policy(
            "orchestrator",
            r#"path "auth/approle/role/+/secret-id" {
    capabilities = ["update"]
    min_wrapping_ttl = "1m"
    max_wrapping_ttl = "5m"
}"#,
        )
        .await;
    let orchestrator = app.as_token(Some(&orchestrator));
    let path = "auth/approle/role/ci/secret-id";
    orchestrator.write(path, json!({})).await.expect(403);
    for ttl in ["30s", "301"] {
        orchestrator
            .write_wrapped(path, json!({}), ttl)
            .await
            .expect(403);
    }
    let wrapped = orchestrator.write_wrapped(path, json!({}), "2m").await.ok();
    wrapping_token(&wrapped, path, 120);
    // Refused requests made no secret ID: only the wrapped one exists.
    let listed = app.call("LIST", path, Value::Null).await.ok();
    assert_eq!(listed.data()["keys"].as_array().unwrap().len(), 1);
}

/// A wrapped login: its token comes back whole from the unwrap, and works.
#[tokio::test]
async fn a_wrapped_login_unwraps_to_a_working_token() {
    let (_, app) = server();
    app.write("sys/auth/userpass", json!({ "type": "userpass" }))
        .await
        .expect(204);
    app.write("auth/userpass/users/web", json!({ "password": "pw" }))
        .await
        .expect(204);
    let wrapped = app
        .as_token(None)
        .write_wrapped("auth/userpass/login/web", json!({ "password": "pw" }), "60")
        .await
        .ok();
    let token = wrapping_token(&wrapped, "auth/userpass/login/web", 60);
    let unwrapped = app
        .write("sys/wrapping/unwrap", json!({ "token": token }))
        .await
        .ok();
    let auth = &unwrapped.body["auth"];
    assert_eq!(
        auth["accessor"],
        wrapped.body["wrap_info"]["wrapped_accessor"]
    );
    let me = app
        .as_token(auth["client_token"].as_str())
        .read("auth/token/lookup-self")
        .await
        .ok();
    assert_eq!(me.data()["path"], "auth/userpass/login/web");
    // A wrong password is an error, answered as it is.
    let refused = app
        .as_token(None)
        .write_wrapped("auth/userpass/login/web", json!({ "password": "no" }), "60")
        .await;
    assert!(refused.status >= 400, "{}", refused.body);
    assert!(refused.body["wrap_info"].is_null());
}

/// A revoked wrapping token gives up nothing, however it was revoked: unwrap,
/// rewrap and lookup all answer as OpenBao 2.7.2 does (400, asked over
/// `bao server -dev` after `auth/token/revoke`), and the reply is gone.
#[tokio::test]
async fn a_revoked_wrapping_token_unwraps_rewraps_and_looks_up_nothing() {
    let (_, app) = server();
    let anyone = app.as_token(None);
    // A caller with the default policy only (which may unwrap).
    let user = app
        .write("auth/token/create", json!({ "policies": ["default"] }))
        .await
        .ok();
    let user = app.as_token(user.body["auth"]["client_token"].as_str());
    assert_eq!(
        user.read("auth/token/lookup-self").await.ok().data()["policies"],
        json!(["default"])
    );
    for how in [
        "revoke",
        "revoke-accessor",
        "revoke-orphan",
        "revoke-prefix",
        "revoke-prefix of the exact path",
        "revoke-force",
        "revoke-self",
    ] {
        let wrapped = app
            .write_wrapped("sys/wrapping/wrap", json!({ "secret": how }), "120")
            .await
            .ok();
        let token = wrapping_token(&wrapped, "sys/wrapping/wrap", 120);
        let accessor = &wrapped.body["wrap_info"]["accessor"];
        let (path, body) = match how {
            "revoke" => ("auth/token/revoke", json!({ "token": token })),
            "revoke-accessor" => (
                "auth/token/revoke-accessor",
                json!({ "accessor": accessor }),
            ),
            "revoke-orphan" => ("auth/token/revoke-orphan", json!({ "token": token })),
            "revoke-prefix" => ("sys/leases/revoke-prefix/sys/wrapping", json!({})),
            "revoke-prefix of the exact path" => {
                ("sys/leases/revoke-prefix/sys/wrapping/wrap", json!({}))
            }
            "revoke-force" => ("sys/leases/revoke-force/sys/wrapping/wrap", json!({})),
            // The wrapping token's own (presented below).
            _ => ("auth/token/revoke-self", json!({})),
        };
        let revoker = if how == "revoke-self" {
            app.as_token(Some(&token))
        } else {
            app.as_token(Some(ROOT))
        };
        let revoked = revoker.write(path, body).await;
        assert_eq!(revoked.status, 204, "{how}: {}", revoked.body);
        for (caller, path) in [
            (&anyone, "sys/wrapping/lookup"),
            (&user, "sys/wrapping/unwrap"),
            (&app, "sys/wrapping/unwrap"),
            (&app, "sys/wrapping/rewrap"),
        ] {
            let refused = caller.write(path, json!({ "token": token })).await;
            assert_eq!(
                (refused.status, refused.error()),
                (400, NOT_VALID.to_owned()),
                "{how}, then {path}: {}",
                refused.body
            );
        }
        // Presented, it is no token at all.
        let holder = app.as_token(Some(&token));
        not_valid(&holder, "sys/wrapping/lookup", json!({})).await;
        holder
            .write("sys/wrapping/unwrap", json!({}))
            .await
            .expect(403);
    }
}

/// Only a wrapping token names a reply: any other live token in the body is
/// not valid, even one whose id would be looked up.
#[tokio::test]
async fn a_token_that_is_not_a_wrapping_token_names_no_reply() {
    let (_, app) = server();
    let child = app.child_token().await;
    for path in [
        "sys/wrapping/lookup",
        "sys/wrapping/unwrap",
        "sys/wrapping/rewrap",
    ] {
        not_valid(&app, path, json!({ "token": child })).await;
    }
    // And the child was not spent or revoked by it.
    app.as_token(Some(&child))
        .read("auth/token/lookup-self")
        .await
        .ok();
}

/// Callers racing to unwrap or rewrap one token, with a revocation among
/// them: at most one gets the reply, and afterwards nothing is left.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_unwraps_rewraps_and_a_revocation_give_the_reply_at_most_once() {
    let (_, app) = server();
    for round in 0..20 {
        let secret = json!({ "round": round });
        let wrapped = app
            .write_wrapped("sys/wrapping/wrap", secret.clone(), "60")
            .await
            .ok();
        let token = wrapping_token(&wrapped, "sys/wrapping/wrap", 60);
        let mut racers = Vec::new();
        for i in 0..6 {
            let (app, token) = (app.as_token(Some(ROOT)), token.clone());
            racers.push(tokio::spawn(async move {
                let (path, body) = match i {
                    0 => ("auth/token/revoke", json!({ "token": token })),
                    1 | 2 => ("sys/wrapping/rewrap", json!({ "token": token })),
                    _ => ("sys/wrapping/unwrap", json!({ "token": token })),
                };
                (path, app.write(path, body).await)
            }));
        }
        let mut given = 0;
        for racer in racers {
            let (path, reply) = racer.await.unwrap();
            match (path, reply.status) {
                ("auth/token/revoke", 204) => {}
                ("sys/wrapping/unwrap", 200) => {
                    assert_eq!(reply.data(), &secret);
                    given += 1;
                }
                ("sys/wrapping/rewrap", 200) => {
                    let new = wrapping_token(&reply, "sys/wrapping/wrap", 60);
                    let unwrapped = app
                        .write("sys/wrapping/unwrap", json!({ "token": new }))
                        .await
                        .ok();
                    assert_eq!(unwrapped.data(), &secret);
                    given += 1;
                }
                (_, 400) => assert_eq!(reply.error(), NOT_VALID, "{path}"),
                (_, status) => panic!("round {round}: {path} gave {status} {}", reply.body),
            }
        }
        assert!(
            given <= 1,
            "round {round}: the reply was given {given} times"
        );
        not_valid(&app, "sys/wrapping/unwrap", json!({ "token": token })).await;
    }
}

/// `sys/wrapping/lookup` needs no token, so its reply is never wrapped:
/// otherwise one wrapping token would mint any number of new ones. A
/// deliberate difference from OpenBao 2.7.2, which wraps it.
#[tokio::test]
async fn the_public_lookup_is_not_wrapped_and_mints_nothing() {
    let (_, app) = server();
    let wrapped = app
        .write_wrapped("sys/wrapping/wrap", json!({ "k": "v" }), "60")
        .await
        .ok();
    let token = wrapping_token(&wrapped, "sys/wrapping/wrap", 60);
    let accessors = || async {
        app.call("LIST", "auth/token/accessors", Value::Null)
            .await
            .ok()
            .data()["keys"]
            .as_array()
            .unwrap()
            .len()
    };
    let before = accessors().await;
    for caller in [
        app.as_token(None),
        app.as_token(Some(&token)),
        app.as_token(Some(ROOT)),
    ] {
        let refused = caller
            .write_wrapped("sys/wrapping/lookup", json!({ "token": token }), "2764800")
            .await
            .expect(400);
        assert!(
            refused.error().contains("X-Vault-Wrap-TTL"),
            "{}",
            refused.body
        );
    }
    assert_eq!(accessors().await, before);
    // The token is untouched: it still unwraps.
    let unwrapped = app
        .write("sys/wrapping/unwrap", json!({ "token": token }))
        .await
        .ok();
    assert_eq!(unwrapped.data(), &json!({ "k": "v" }));
}

/// The wrapping TTL's fraction counts against a policy's bounds, as in
/// OpenBao 2.7.2 (asked with max_wrapping_ttl=5m, min 1m): 300.9s and 59.5s
/// are denied; 60.5s is admitted and the token lives 60 seconds.
#[tokio::test]
async fn a_fractional_wrapping_ttl_is_bounded_whole() {
    let (_, app) = server();
    let wrapper = app
        .token_with_policy(
            "wrapper",
            r#"path "sys/wrapping/wrap" {
    capabilities = ["update"]
    min_wrapping_ttl = "1m"
    max_wrapping_ttl = "5m"
}"#,
        )
        .await;
    let wrapper = app.as_token(Some(&wrapper));
    for ttl in ["300.9s", "300.0000001s", "5m0.5s", "59.5s"] {
        wrapper
            .write_wrapped("sys/wrapping/wrap", json!({ "a": "b" }), ttl)
            .await
            .expect(403);
    }
    for (ttl, secs) in [("60.5s", 60), ("300s", 300), ("120.9s", 120)] {
        let wrapped = wrapper
            .write_wrapped("sys/wrapping/wrap", json!({ "a": "b" }), ttl)
            .await
            .ok();
        wrapping_token(&wrapped, "sys/wrapping/wrap", secs);
    }
}
