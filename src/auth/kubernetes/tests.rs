//! Reading the API server's answers, the claims of both token shapes, and
//! the role checks (texts as OpenBao 2.7.2 answers them).

use serde_json::json;

use super::review::read;
use super::*;

fn review(user: &str, audiences: Value) -> Value {
    json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
           "status": {"authenticated": true, "audiences": audiences,
                      "user": {"username": user, "uid": "u-1"}}})
}

#[test]
fn token_review_answers() {
    let ok = read(
        200,
        &review("system:serviceaccount:ns:app", json!(["vault"])),
        &["vault".into()],
    );
    assert_eq!(
        ok,
        Ok(review::Reviewed {
            name: "app".into(),
            namespace: "ns".into(),
            uid: "u-1".into()
        })
    );
    let fails = |status: u16, body: Value, aud: &[String]| read(status, &body, aud).unwrap_err();
    assert!(fails(401, json!({}), &[]).contains("service account unauthorized"));
    assert!(fails(500, json!(null), &[]).contains("500"));
    assert!(fails(200, json!("<html>"), &[]).contains("not a TokenReview"));
    assert_eq!(
        fails(
            200,
            json!({"kind": "Status", "status": "Failure", "message": "forbidden: reviewer"}),
            &[]
        ),
        "lookup failed: forbidden: reviewer"
    );
    assert_eq!(
        fails(
            200,
            json!({"kind": "TokenReview", "status": {"authenticated": false}}),
            &[]
        ),
        "lookup failed: service account jwt not valid"
    );
    assert_eq!(
        fails(
            200,
            json!({"kind": "TokenReview", "status": {"error": "token expired"}}),
            &[]
        ),
        "lookup failed: token expired"
    );
    assert!(
        fails(
            200,
            review("system:serviceaccount:ns:app", json!(["other"])),
            &["vault".into()]
        )
        .contains("but wanted")
    );
    assert_eq!(
        fails(200, review("alice", json!([])), &[]),
        "lookup failed: unexpected username format"
    );
    assert_eq!(
        fails(200, review("system:node:ns:app", json!([])), &[]),
        "lookup failed: username returned is not a service account"
    );
}

#[test]
fn both_token_shapes() {
    let legacy = json!({
        "kubernetes.io/serviceaccount/namespace": "ns",
        "kubernetes.io/serviceaccount/service-account.name": "app",
        "kubernetes.io/serviceaccount/service-account.uid": "u-1",
        "kubernetes.io/serviceaccount/secret.name": "app-token-x",
    });
    let projected = json!({"kubernetes.io": {"namespace": "ns",
        "serviceaccount": {"name": "app", "uid": "u-1"}, "pod": {"name": "p", "uid": "p-1"}}});
    let want = ServiceAccount {
        name: "app".into(),
        namespace: "ns".into(),
        uid: "u-1".into(),
        secret_name: "app-token-x".into(),
    };
    assert_eq!(ServiceAccount::from_claims(&legacy), want);
    assert_eq!(
        ServiceAccount::from_claims(&projected),
        ServiceAccount {
            secret_name: String::new(),
            ..want
        }
    );
}

#[test]
fn configuration_and_role_checks() {
    let config = |host: &str| KubeConfig {
        kubernetes_host: host.into(),
        kubernetes_ca_cert: String::new(),
        token_reviewer_jwt: "secret-reviewer-jwt".into(),
        pem_keys: Vec::new(),
        issuer: String::new(),
        disable_iss_validation: true,
        disable_local_ca_jwt: false,
    };
    let bad = |c: KubeConfig| KubeReady::new(c).unwrap_err().to_string();
    assert_eq!(bad(config("")), "no host provided");
    assert_eq!(
        bad(config("http://10.0.0.1")),
        "kubernetes_host must be an https:// URL"
    );
    assert_eq!(
        bad(KubeConfig {
            disable_local_ca_jwt: true,
            ..config("https://k8s")
        }),
        "kubernetes_ca_cert must be given when disable_local_ca_jwt is true"
    );
    assert_eq!(
        bad(KubeConfig {
            pem_keys: vec!["nope".into()],
            ..config("https://k8s")
        }),
        "data does not contain any valid public keys"
    );
    // The reviewer JWT never shows in a debug print.
    assert!(!format!("{:?}", config("https://k8s")).contains("secret-reviewer-jwt"));

    let mut role = KubeSpec::blank_role("r");
    assert_eq!(
        role.validate().unwrap_err().to_string(),
        "\"bound_service_account_names\" can not be empty"
    );
    role.bound_service_account_names = vec!["app".into()];
    assert!(
        role.validate()
            .unwrap_err()
            .to_string()
            .contains("namespaces\" can not be empty")
    );
    assert!(KubeRole::binds(&["*".into()], "anything"));
    assert!(KubeRole::binds(&["team-*".into(), "ops".into()], "team-a"));
    assert!(!KubeRole::binds(&["team-*".into()], "other"));
    assert!(AliasNameSource::parse("nope").is_err());
}
