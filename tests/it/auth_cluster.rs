//! The JWT and Kubernetes methods on two nodes sharing PostgreSQL: a
//! configuration and roles written on one node serve logins on the other,
//! and a role narrowed on one node refuses on the other once its change
//! notification arrives.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::cluster::{Cluster, DATABASE};
use crate::jwt_issuer::{Issuer, KEY_A, claims};
use crate::kube_api::{KubeApi, projected};

fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{what}: not seen after 5 s"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn logins_follow_configuration_written_on_another_node() {
    let _db = DATABASE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let issuer = Issuer::start(&[KEY_A]);
    let api = KubeApi::start(&[KEY_A], &["reviewer"]);
    let c = Cluster::start(2);
    for (path, body) in [
        ("sys/auth/jwt", json!({"type": "jwt"})),
        (
            "auth/jwt/config",
            json!({"jwks_url": issuer.jwks_url(), "jwks_ca_pem": issuer.ca_pem, "bound_issuer": issuer.url}),
        ),
        (
            "auth/jwt/role/ci",
            json!({"role_type": "jwt", "user_claim": "sub", "bound_audiences": "vault"}),
        ),
        ("sys/auth/kubernetes", json!({"type": "kubernetes"})),
        (
            "auth/kubernetes/config",
            json!({"kubernetes_host": api.url, "kubernetes_ca_cert": api.ca_pem, "token_reviewer_jwt": "reviewer"}),
        ),
        (
            "auth/kubernetes/role/app",
            json!({"bound_service_account_names": "app", "bound_service_account_namespaces": "team-*"}),
        ),
    ] {
        let (status, body) = c.call(0, "POST", path, Some(body));
        assert_eq!(status, 204, "{path}: {body}");
    }
    let jwt = KEY_A.sign(&claims(&issuer.url, json!({})));
    let pod = KEY_A.sign(&projected("team-a", "app", json!({})));
    let login = |node: usize, path: &str, body: serde_json::Value| {
        c.nodes[node].call("POST", path, None, Some(body)).0
    };
    // Node 1 logs in with what node 0 wrote.
    eventually("jwt login on node 1", || {
        login(1, "auth/jwt/login", json!({"role": "ci", "jwt": jwt})) == 200
    });
    eventually("kubernetes login on node 1", || {
        login(
            1,
            "auth/kubernetes/login",
            json!({"role": "app", "jwt": pod}),
        ) == 200
    });
    // Narrowed on node 0: refused on node 1.
    let (status, _) = c.call(
        0,
        "POST",
        "auth/kubernetes/role/app",
        Some(json!({"bound_service_account_namespaces": "prod-*"})),
    );
    assert_eq!(status, 204);
    let (status, _) = c.call(
        0,
        "POST",
        "auth/jwt/role/ci",
        Some(json!({"bound_audiences": "elsewhere"})),
    );
    assert_eq!(status, 204);
    eventually("kubernetes role change on node 1", || {
        login(
            1,
            "auth/kubernetes/login",
            json!({"role": "app", "jwt": pod}),
        ) == 403
    });
    eventually("jwt role change on node 1", || {
        login(1, "auth/jwt/login", json!({"role": "ci", "jwt": jwt})) == 400
    });
}
