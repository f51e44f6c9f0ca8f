//! Script: `auth/kubernetes` (configuration, roles, logins) with both
//! servers asking the same local TokenReview API server (`kube_api.rs`).

use serde_json::json;

use super::harness::Script;
use super::normalise::Norm;
use crate::jwt_issuer::{KEY_A, KEY_B, RSA_A_PUB, now};
use crate::kube_api::{KubeApi, projected};

const REVIEWER: &str = "reviewer-service-account-jwt";

pub(super) fn login_kubernetes(s: &mut Script<'_>) {
    let api = KubeApi::start(&[KEY_A], &[REVIEWER]);
    s.section("kubernetes config");
    s.post(
        "enable",
        "sys/auth/kubernetes",
        json!({"type": "kubernetes"}),
    )
    .go();
    s.get("read before", "auth/kubernetes/config").go();
    for (label, body) in [
        ("no host", json!({})),
        (
            "bad public key",
            json!({"kubernetes_host": api.url, "pem_keys": ["nope"]}),
        ),
        (
            "no CA without the local one",
            json!({"kubernetes_host": api.url, "disable_local_ca_jwt": true}),
        ),
        (
            "valid",
            json!({"kubernetes_host": api.url, "kubernetes_ca_cert": api.ca_pem,
                   "token_reviewer_jwt": REVIEWER, "disable_local_ca_jwt": true}),
        ),
    ] {
        s.post(label, "auth/kubernetes/config", body).go();
    }
    s.get("read", "auth/kubernetes/config").go();

    s.section("kubernetes role");
    for (label, body) in [
        ("no names", json!({})),
        (
            "no namespaces",
            json!({"bound_service_account_names": "app"}),
        ),
        (
            "bad alias_name_source",
            json!({"bound_service_account_names": "app", "bound_service_account_namespaces": "team-*",
                   "alias_name_source": "nope"}),
        ),
        (
            "valid",
            json!({"bound_service_account_names": ["app", "worker-*"],
                   "bound_service_account_namespaces": "team-*", "audience": "vault",
                   "token_policies": "deploy", "token_ttl": "20m"}),
        ),
    ] {
        s.post(label, "auth/kubernetes/role/app", body).go();
    }
    s.get("read", "auth/kubernetes/role/app").go();
    s.list("list", "auth/kubernetes/role").go();

    s.section("kubernetes login");
    let sign =
        |ns: &str, name: &str, extra: serde_json::Value| KEY_A.sign(&projected(ns, name, extra));
    for (label, body) in [
        ("missing role", json!({"jwt": "x"})),
        ("missing jwt", json!({"role": "app"})),
        ("unknown role", json!({"role": "nope", "jwt": "x"})),
        ("garbage", json!({"role": "app", "jwt": "x.y.z"})),
        (
            "wrong namespace",
            json!({"role": "app", "jwt": sign("kube-system", "app", json!({}))}),
        ),
        (
            "wrong service account",
            json!({"role": "app", "jwt": sign("team-a", "admin", json!({}))}),
        ),
        (
            "expired",
            json!({"role": "app", "jwt": sign("team-a", "app", json!({"exp": now() - 300}))}),
        ),
        (
            "wrong audience",
            json!({"role": "app", "jwt": sign("team-a", "app", json!({"aud": ["other"]}))}),
        ),
        (
            "rejected by the API server",
            json!({"role": "app", "jwt": KEY_B.sign(&projected("team-a", "app", json!({})))}),
        ),
        (
            "valid",
            json!({"role": "app", "jwt": sign("team-a", "worker-7", json!({}))}),
        ),
    ] {
        s.post(label, "auth/kubernetes/login", body)
            .token(None)
            .norm("/auth/client_token", Norm::Type)
            .norm("/auth/accessor", Norm::Type)
            .norm("/auth/entity_id", Norm::Type)
            .go();
    }
    // With pem_keys: a signature the configuration does not trust.
    s.post(
        "pem_keys",
        "auth/kubernetes/config",
        json!({"kubernetes_host": api.url, "kubernetes_ca_cert": api.ca_pem,
               "token_reviewer_jwt": REVIEWER, "pem_keys": [RSA_A_PUB]}),
    )
    .go();
    s.post(
        "signature not trusted",
        "auth/kubernetes/login",
        json!({"role": "app", "jwt": KEY_B.sign(&projected("team-a", "app", json!({})))}),
    )
    .token(None)
    .go();
}
