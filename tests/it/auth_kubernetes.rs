//! `auth/kubernetes` end to end, against a local API server answering
//! TokenReview (`kube_api.rs`): projected (RS256) and legacy (ES256)
//! service-account tokens, the role's bindings, expired tokens, audiences,
//! an unauthorized reviewer, the API server down or answering garbage, a CA
//! that does not match, and local verification with `pem_keys`.

use serde_json::{Value, json};

use crate::jwt_issuer::{KEY_A, KEY_B, KEY_EC, Mode, RSA_A_PUB, now};
use crate::kube_api::{KubeApi, legacy, projected};
use crate::support::{Reply, TestApp};

const REVIEWER: &str = "reviewer-service-account-jwt";

async fn server_for(api: &KubeApi, extra: Value) -> TestApp {
    let app = TestApp::new();
    app.write("sys/auth/kubernetes", json!({"type": "kubernetes"}))
        .await
        .expect(204);
    let mut config = json!({"kubernetes_host": api.url, "kubernetes_ca_cert": api.ca_pem,
                            "token_reviewer_jwt": REVIEWER});
    for (k, v) in extra.as_object().unwrap() {
        config[k] = v.clone();
    }
    app.write("auth/kubernetes/config", config)
        .await
        .expect(204);
    app.write(
        "auth/kubernetes/role/app",
        json!({"bound_service_account_names": ["app", "worker-*"],
               "bound_service_account_namespaces": "team-*",
               "audience": "vault", "token_policies": "deploy", "token_ttl": "20m"}),
    )
    .await
    .expect(204);
    app
}

async fn login(app: &TestApp, role: &str, jwt: &str) -> Reply {
    app.as_token(None)
        .write("auth/kubernetes/login", json!({"role": role, "jwt": jwt}))
        .await
}

/// A refused login: 403, its first error, and never an `auth` block.
async fn forbidden(app: &TestApp, jwt: &str) -> String {
    let r = login(app, "app", jwt).await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body.get("auth").is_none_or(Value::is_null), "{}", r.body);
    r.error()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pod_logs_in_with_its_service_account_token() {
    let api = KubeApi::start(&[KEY_A, KEY_EC], &[REVIEWER]);
    let app = server_for(&api, json!({})).await;
    let r = login(
        &app,
        "app",
        &KEY_A.sign(&projected("team-a", "app", json!({}))),
    )
    .await;
    let r = r.expect(200);
    let auth = &r.body["auth"];
    assert_eq!(auth["policies"], json!(["default", "deploy"]));
    assert_eq!(auth["lease_duration"], json!(1200));
    assert_eq!(
        auth["metadata"],
        json!({"role": "app", "service_account_name": "app", "service_account_namespace": "team-a",
               "service_account_uid": "uid-team-a-app", "service_account_secret_name": ""})
    );
    let token = auth["client_token"].as_str().unwrap();
    let me = app
        .as_token(Some(token))
        .read("auth/token/lookup-self")
        .await;
    let me = me.expect(200);
    assert_eq!(
        me.body["data"]["display_name"],
        json!("kubernetes-team-a-app")
    );
    assert_eq!(me.body["data"]["path"], json!("auth/kubernetes/login"));

    // A legacy (secret-based, ES256, no expiry, no audience) token of a
    // glob-bound account, on a role without audience.
    app.write(
        "auth/kubernetes/role/legacy",
        json!({"bound_service_account_names": "worker-*", "bound_service_account_namespaces": ["team-b"]}),
    )
    .await
    .expect(204);
    let r = login(&app, "legacy", &KEY_EC.sign(&legacy("team-b", "worker-1"))).await;
    let r = r.expect(200);
    assert_eq!(
        r.body["auth"]["metadata"]["service_account_secret_name"],
        json!("worker-1-token-abcde")
    );

    // The configuration reads back without the reviewer JWT.
    let config = app.read("auth/kubernetes/config").await.expect(200);
    assert_eq!(config.body["data"]["token_reviewer_jwt_set"], json!(true));
    assert!(!config.body.to_string().contains(REVIEWER));
    let role = app.read("auth/kubernetes/role/app").await.expect(200);
    assert_eq!(
        role.body["data"]["bound_service_account_namespaces"],
        json!(["team-*"])
    );
    assert_eq!(
        role.body["data"]["alias_name_source"],
        json!("serviceaccount_uid")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bindings_expiry_and_audience_are_enforced() {
    let api = KubeApi::start(&[KEY_A], &[REVIEWER]);
    let app = server_for(&api, json!({})).await;
    let sign = |ns: &str, name: &str, extra: Value| KEY_A.sign(&projected(ns, name, extra));
    assert_eq!(
        forbidden(&app, &sign("kube-system", "app", json!({}))).await,
        "namespace not authorized"
    );
    assert_eq!(
        forbidden(&app, &sign("team-a", "admin", json!({}))).await,
        "service account name not authorized"
    );
    assert_eq!(
        forbidden(&app, &sign("team-a", "app", json!({"exp": now() - 300}))).await,
        "invalid expiration time (exp) claim: token is expired"
    );
    assert_eq!(
        forbidden(&app, &sign("team-a", "app", json!({"aud": ["other"]}))).await,
        "invalid audience (aud) claim: audience claim does not match any expected audience"
    );
    // Claims that pass every local check but a signature the API server
    // rejects: TokenReview decides.
    let before = api.reviews();
    assert_eq!(
        forbidden(&app, &KEY_B.sign(&projected("team-a", "app", json!({})))).await,
        "permission denied"
    );
    assert_eq!(api.reviews(), before + 1);
    // Bad input before any of that.
    for (body, want) in [
        (json!({"jwt": "x"}), "missing role"),
        (json!({"role": "app"}), "missing jwt"),
        (
            json!({"role": "nope", "jwt": "x"}),
            "invalid role name \"nope\"",
        ),
    ] {
        let r = app
            .as_token(None)
            .write("auth/kubernetes/login", body)
            .await
            .expect(400);
        assert_eq!(r.error(), want);
    }
    assert_eq!(forbidden(&app, "x.y.z").await, "permission denied");
    // Issuer validation, when turned on.
    let strict = server_for(
        &api,
        json!({"disable_iss_validation": false, "issuer": "https://another-cluster"}),
    )
    .await;
    assert_eq!(
        forbidden(&strict, &sign("team-a", "app", json!({}))).await,
        "invalid issuer (iss) claim"
    );
    let strict = server_for(
        &api,
        json!({"disable_iss_validation": false, "issuer": crate::kube_api::ISSUER}),
    )
    .await;
    login(&strict, "app", &sign("team-a", "app", json!({})))
        .await
        .expect(200);
}

#[tokio::test(flavor = "multi_thread")]
async fn reviewer_api_server_and_ca_failures_give_no_token() {
    let api = KubeApi::start(&[KEY_A], &[REVIEWER]);
    let good = KEY_A.sign(&projected("team-a", "app", json!({})));
    // A reviewer JWT the API server does not accept.
    let app = server_for(&api, json!({"token_reviewer_jwt": "not-a-reviewer"})).await;
    assert_eq!(forbidden(&app, &good).await, "permission denied");
    // Without a reviewer JWT the pod's own token reviews itself, which the
    // API server refuses unless that account may review tokens.
    let app = server_for(&api, json!({"token_reviewer_jwt": ""})).await;
    assert_eq!(forbidden(&app, &good).await, "permission denied");
    api.allow_reviewer(&good);
    login(&app, "app", &good).await.expect(200);

    let app = server_for(&api, json!({})).await;
    for mode in [Mode::Down, Mode::Garbage] {
        api.set_mode(mode);
        assert_eq!(
            forbidden(&app, &good).await,
            "permission denied",
            "{mode:?}"
        );
    }
    api.set_mode(Mode::Serving);
    login(&app, "app", &good).await.expect(200);
    // The CA of another server: TLS fails.
    let other = KubeApi::start(&[KEY_A], &[REVIEWER]);
    let app = server_for(&api, json!({"kubernetes_ca_cert": other.ca_pem})).await;
    assert_eq!(forbidden(&app, &good).await, "permission denied");
}

#[tokio::test(flavor = "multi_thread")]
async fn pem_keys_verify_locally_before_asking_the_api_server() {
    let api = KubeApi::start(&[KEY_A, KEY_B], &[REVIEWER]);
    let app = server_for(&api, json!({"pem_keys": [RSA_A_PUB]})).await;
    login(
        &app,
        "app",
        &KEY_A.sign(&projected("team-a", "app", json!({}))),
    )
    .await
    .expect(200);
    // Signed by a key the API server trusts but the configuration does not:
    // refused locally, the API server never asked.
    let before = api.reviews();
    assert_eq!(
        forbidden(&app, &KEY_B.sign(&projected("team-a", "app", json!({})))).await,
        "permission denied"
    );
    assert_eq!(api.reviews(), before);
}

#[tokio::test(flavor = "multi_thread")]
async fn configuration_and_role_errors() {
    let app = TestApp::new();
    app.write("sys/auth/kubernetes", json!({"type": "kubernetes"}))
        .await
        .expect(204);
    app.read("auth/kubernetes/config").await.expect(404);
    for (path, body, want) in [
        ("auth/kubernetes/config", json!({}), "no host provided"),
        (
            "auth/kubernetes/config",
            json!({"kubernetes_host": "https://127.0.0.1:1", "pem_keys": ["nope"]}),
            "data does not contain any valid public keys",
        ),
        (
            "auth/kubernetes/config",
            json!({"kubernetes_host": "https://127.0.0.1:1", "disable_local_ca_jwt": true}),
            "kubernetes_ca_cert must be given when disable_local_ca_jwt is true",
        ),
        (
            "auth/kubernetes/config",
            json!({"kubernetes_host": "http://127.0.0.1:1"}),
            "kubernetes_host must be an https:// URL",
        ),
        (
            "auth/kubernetes/config",
            json!({"kubernetes_host": "https://127.0.0.1:1", "kubernetes_ca_cert": "nope"}),
            "could not parse CA PEM value successfully",
        ),
        (
            "auth/kubernetes/role/r",
            json!({}),
            "\"bound_service_account_names\" can not be empty",
        ),
        (
            "auth/kubernetes/role/r",
            json!({"bound_service_account_names": "a"}),
            "\"bound_service_account_namespaces\" can not be empty if \"bound_service_account_namespace_selector\" is not set",
        ),
        (
            "auth/kubernetes/role/r",
            json!({"bound_service_account_names": "a", "bound_service_account_namespaces": "x", "alias_name_source": "nope"}),
            "invalid alias_name_source, must be one of: serviceaccount_uid, serviceaccount_name",
        ),
        (
            "auth/kubernetes/role/r",
            json!({"bound_service_account_names": "a", "bound_service_account_namespaces": "x", "bound_service_account_namespace_selector": "{\"matchLabels\":{}}"}),
            "bound_service_account_namespace_selector is not supported by transitd",
        ),
        (
            "auth/kubernetes/role/r",
            json!({"bound_service_account_names": "a", "bound_service_account_namespaces": "x", "token_period": "1h"}),
            "token_period is not supported by transitd",
        ),
    ] {
        let r = app.write(path, body.clone()).await.expect(400);
        assert_eq!(r.error(), want, "{body}");
    }
    app.read("auth/kubernetes/config").await.expect(404);
    app.read("auth/kubernetes/role/r").await.expect(404);
    app.as_token(None)
        .write("auth/kubernetes/role/r", json!({}))
        .await
        .expect(403);
}
