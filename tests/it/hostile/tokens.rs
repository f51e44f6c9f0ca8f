//! Token creation as OpenBao 2.7.2 rules it (`handleCreateCommon`): what a
//! parent may hand down, and nothing it may not. Each expectation was asked
//! of the OpenBao binary.

use serde_json::{Value, json};

use crate::support::{Reply, TestApp};

/// May create tokens (`create`/`update` on `auth/token/*`), no `sudo`.
const CREATOR: &str = r#"path "auth/token/*" { capabilities = ["create", "update", "read"] }"#;
/// The same with `sudo`.
const SUDOER: &str = r#"path "auth/token/*" { capabilities = ["create", "update", "sudo"] }"#;

async fn policy(app: &TestApp, name: &str, hcl: &str) {
    app.write(
        &format!("sys/policies/acl/{name}"),
        json!({ "policy": hcl }),
    )
    .await
    .expect(204);
}

/// A server with the policies `creator`, `sudoer` and `other`.
async fn server() -> TestApp {
    let app = TestApp::new();
    policy(&app, "creator", CREATOR).await;
    policy(&app, "sudoer", SUDOER).await;
    policy(
        &app,
        "other",
        r#"path "secret/*" { capabilities = ["read"] }"#,
    )
    .await;
    app
}

/// A token made by root with `body`, as a client of the same server.
async fn token(app: &TestApp, body: Value) -> TestApp {
    let reply = app.write("auth/token/create", body).await.ok();
    app.as_token(reply.body["auth"]["client_token"].as_str())
}

async fn create(app: &TestApp, body: Value) -> Reply {
    app.write("auth/token/create", body).await
}

#[track_caller]
fn refused(reply: Reply, message: &str) {
    let reply = reply.expect(400);
    assert_eq!(reply.error(), message);
}

#[track_caller]
fn policies(reply: &Reply) -> Value {
    reply.body["auth"]["policies"].clone()
}

#[tokio::test]
async fn a_use_limited_token_cannot_create_children() {
    let app = server().await;
    let limited = token(&app, json!({ "policies": ["sudoer"], "num_uses": 3 })).await;
    for path in ["auth/token/create", "auth/token/create-orphan"] {
        refused(
            limited.write(path, json!({})).await,
            "restricted use token cannot generate child tokens",
        );
    }
}

#[tokio::test]
async fn a_parent_without_default_gives_no_default() {
    let app = server().await;
    let parent = token(
        &app,
        json!({ "policies": ["creator"], "no_default_policy": true }),
    )
    .await;
    let inherited = create(&parent, json!({})).await.ok();
    assert_eq!(policies(&inherited), json!(["creator"]));
    let named = create(&parent, json!({ "policies": ["creator"] }))
        .await
        .ok();
    assert_eq!(policies(&named), json!(["creator"]));
    refused(
        create(&parent, json!({ "policies": ["creator", "default"] })).await,
        "child policies must be subset of parent",
    );
}

#[tokio::test]
async fn no_default_policy_removes_default_even_when_named() {
    let app = server().await;
    let child = create(
        &app,
        json!({ "policies": ["default", "other"], "no_default_policy": true }),
    )
    .await
    .ok();
    assert_eq!(policies(&child), json!(["other"]));
    let parent = token(&app, json!({ "policies": ["creator"] })).await;
    let child = create(
        &parent,
        json!({ "policies": ["creator", "default"], "no_default_policy": true }),
    )
    .await
    .ok();
    assert_eq!(policies(&child), json!(["creator"]));
}

#[tokio::test]
async fn without_sudo_a_child_gets_a_subset_and_no_orphan() {
    let app = server().await;
    let parent = token(&app, json!({ "policies": ["creator"] })).await;
    for asked in [
        json!(["other"]),
        json!(["root"]),
        json!(["creator", "other"]),
    ] {
        refused(
            create(&parent, json!({ "policies": asked })).await,
            "child policies must be subset of parent",
        );
    }
    refused(
        create(&parent, json!({ "no_parent": true })).await,
        "root or sudo privileges required to create orphan token",
    );
    refused(
        create(&parent, json!({ "period": "1h" })).await,
        "root or sudo privileges required to create periodic token",
    );
    refused(
        create(&parent, json!({ "id": "chosen" })).await,
        "root or sudo privileges required to specify token id",
    );
    // Names are canonical before the comparison.
    let child = create(&parent, json!({ "policies": [" Creator "] }))
        .await
        .ok();
    assert_eq!(policies(&child), json!(["creator", "default"]));
}

#[tokio::test]
async fn sudo_makes_orphans_and_grants_any_policy_but_root() {
    let app = server().await;
    let parent = token(&app, json!({ "policies": ["sudoer"] })).await;
    let orphan = create(&parent, json!({ "no_parent": true })).await.ok();
    assert_eq!(orphan.body["auth"]["orphan"], json!(true));
    let other = create(&parent, json!({ "policies": ["other"] })).await.ok();
    assert_eq!(policies(&other), json!(["default", "other"]));
    let bare = create(
        &parent,
        json!({ "policies": ["other"], "no_default_policy": true }),
    )
    .await
    .ok();
    assert_eq!(policies(&bare), json!(["other"]));
    refused(
        create(&parent, json!({ "policies": ["root"] })).await,
        "root tokens may not be created without parent token being root",
    );
    // Supported by OpenBao for sudo; refused here, never ignored.
    refused(
        create(&parent, json!({ "id": "chosen" })).await,
        "custom token IDs are not supported by transitd",
    );
    refused(
        create(&parent, json!({ "period": "1h" })).await,
        "periodic tokens are not supported by transitd",
    );
}

#[tokio::test]
async fn an_empty_policy_list_inherits_the_parent() {
    let app = server().await;
    let parent = token(&app, json!({ "policies": ["creator"] })).await;
    for empty in [json!([]), json!("")] {
        let child = create(&parent, json!({ "policies": empty })).await.ok();
        assert_eq!(policies(&child), json!(["creator", "default"]));
    }
}

#[tokio::test]
async fn root_beside_other_policies_is_root_alone() {
    let app = server().await;
    let child = create(&app, json!({ "policies": ["root", "other"] }))
        .await
        .ok();
    assert_eq!(policies(&child), json!(["root"]));
}

#[tokio::test]
async fn the_response_wrapping_policy_cannot_be_assigned() {
    let app = server().await;
    refused(
        create(&app, json!({ "policies": ["response-wrapping"] })).await,
        "cannot assign policy \"response-wrapping\"",
    );
}

#[tokio::test]
async fn a_root_token_with_an_explicit_max_ttl_expires() {
    let app = server().await;
    let child = create(&app, json!({ "explicit_max_ttl": "1h" })).await.ok();
    assert_eq!(policies(&child), json!(["root"]));
    assert_eq!(child.body["auth"]["lease_duration"], json!(3600));
}

#[tokio::test]
async fn an_expiring_root_cannot_make_a_root_that_never_expires() {
    let app = server().await;
    let expiring = token(&app, json!({ "ttl": "1h" })).await;
    for body in [json!({}), json!({ "no_parent": true })] {
        refused(
            create(&expiring, body).await,
            "expiring root tokens cannot create non-expiring root tokens",
        );
    }
    let bounded = create(&expiring, json!({ "no_parent": true, "ttl": "10m" }))
        .await
        .ok();
    assert_eq!(bounded.body["auth"]["lease_duration"], json!(600));
}

#[tokio::test]
async fn lease_is_the_older_name_of_ttl() {
    let app = server().await;
    let child = create(&app, json!({ "policies": ["other"], "lease": "1h" }))
        .await
        .ok();
    assert_eq!(child.body["auth"]["lease_duration"], json!(3600));
    assert!(child.body["warnings"].is_null(), "{}", child.body);
}

#[tokio::test]
async fn display_names_are_sanitised() {
    let app = server().await;
    let child = token(
        &app,
        json!({ "policies": ["other"], "display_name": "Foo bar/baz!\u{fc}-" }),
    )
    .await;
    let me = child.read("auth/token/lookup-self").await.ok();
    assert_eq!(me.data()["display_name"], json!("token-Foo-bar-baz--"));
}

#[tokio::test]
async fn unsupported_token_kinds_are_refused_as_openbao_words_it() {
    let app = server().await;
    refused(
        create(&app, json!({ "type": "default" })).await,
        "invalid 'token_type' value",
    );
    refused(
        create(&app, json!({ "type": "batch" })).await,
        "batch tokens are not supported by transitd",
    );
    refused(
        create(&app, json!({ "entity_alias": "someone" })).await,
        "'entity_alias' is only allowed in combination with token role",
    );
    refused(
        create(&app, json!({ "role_name": "r" })).await,
        "role_name is not supported by transitd",
    );
    refused(
        create(&app, json!({ "num_uses": -1 })).await,
        "number of uses cannot be negative",
    );
}

#[tokio::test]
async fn a_cut_ttl_and_a_missing_policy_are_warned_about() {
    let app = server().await;
    let warnings = |reply: &Reply| reply.body["warnings"].clone();
    let long = create(&app, json!({ "policies": ["other"], "ttl": "800h" }))
        .await
        .ok();
    assert_eq!(long.body["auth"]["lease_duration"], json!(768 * 3600));
    assert_eq!(
        warnings(&long),
        json!([
            "TTL of \"800h\" exceeded the effective max_ttl of \"768h\"; TTL value is capped accordingly"
        ])
    );
    let bounded = create(
        &app,
        json!({ "policies": ["other"], "ttl": "2h", "explicit_max_ttl": "1h" }),
    )
    .await
    .ok();
    assert_eq!(bounded.body["auth"]["lease_duration"], json!(3600));
    assert_eq!(
        warnings(&bounded),
        json!([
            "TTL of \"2h\" exceeded the effective max_ttl of \"1h\"; TTL value is capped accordingly"
        ])
    );
    let typo = create(&app, json!({ "policies": ["othre"] })).await.ok();
    assert_eq!(warnings(&typo), json!(["Policy \"othre\" does not exist"]));
}
