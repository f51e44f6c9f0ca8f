//! A Kubernetes API server for the login tests: it answers TokenReview
//! (`POST /apis/authentication.k8s.io/v1/tokenreviews`) in the shapes of the
//! Kubernetes API reference, checks the reviewer's bearer token (401 with a
//! `Status` object otherwise), verifies each reviewed service-account JWT's
//! signature, expiry and audiences itself, and can be taken down or made to
//! answer garbage. Service-account JWTs are signed with the fixture keys
//! (`jwt_issuer::KEY_A`, RS256; `KEY_EC`, ES256).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use jsonwebtoken::{DecodingKey, Validation};
use serde_json::{Value, json};

use crate::https_fixture;
use crate::jwt_issuer::{Mode, SigningKey, now};

/// The issuer of service-account tokens.
pub const ISSUER: &str = "https://kubernetes.default.svc.cluster.local";

/// Claims of a projected service-account token for `namespace`/`name`,
/// with `extra` merged in (a `null` removes a claim).
pub fn projected(namespace: &str, name: &str, extra: Value) -> Value {
    let mut c = json!({
        "iss": ISSUER, "aud": ["vault"], "sub": format!("system:serviceaccount:{namespace}:{name}"),
        "exp": now() + 600, "iat": now(), "nbf": now(),
        "kubernetes.io": {"namespace": namespace,
            "serviceaccount": {"name": name, "uid": format!("uid-{namespace}-{name}")},
            "pod": {"name": format!("{name}-pod"), "uid": "pod-uid"}},
    });
    for (k, v) in extra.as_object().unwrap() {
        if v.is_null() {
            c.as_object_mut().unwrap().remove(k);
        } else {
            c[k] = v.clone();
        }
    }
    c
}

/// Claims of a legacy (secret-based) service-account token: no expiry.
pub fn legacy(namespace: &str, name: &str) -> Value {
    json!({
        "iss": "kubernetes/serviceaccount",
        "sub": format!("system:serviceaccount:{namespace}:{name}"),
        "kubernetes.io/serviceaccount/namespace": namespace,
        "kubernetes.io/serviceaccount/service-account.name": name,
        "kubernetes.io/serviceaccount/service-account.uid": format!("uid-{namespace}-{name}"),
        "kubernetes.io/serviceaccount/secret.name": format!("{name}-token-abcde"),
    })
}

struct State {
    mode: Mode,
    /// Bearer tokens allowed to call TokenReview.
    reviewers: Vec<String>,
}

pub struct KubeApi {
    pub url: String,
    pub ca_pem: String,
    state: Arc<Mutex<State>>,
    reviews: Arc<AtomicUsize>,
}

/// The API server's verdict on a token.
fn review(token: &str, wanted: &[String], keys: &[SigningKey]) -> Value {
    let verified = keys.iter().find_map(|k| {
        let key = DecodingKey::from_jwk(&k.jwk()).ok()?;
        let mut v = Validation::new(k.alg);
        v.validate_aud = false;
        v.required_spec_claims.clear();
        jsonwebtoken::decode::<Value>(token, &key, &v).ok()
    });
    let Some(data) = verified else {
        return json!({"authenticated": false, "error": "[invalid bearer token, square/go-jose: error in cryptographic primitive]"});
    };
    let claims = data.claims;
    let audiences: Vec<String> = match &claims["aud"] {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        _ => vec!["https://kubernetes.default.svc.cluster.local".to_owned()],
    };
    let granted: Vec<&String> = if wanted.is_empty() {
        audiences.iter().collect()
    } else {
        audiences.iter().filter(|a| wanted.contains(a)).collect()
    };
    if granted.is_empty() {
        return json!({"authenticated": false, "error": "[invalid bearer token, token audiences are invalid for the target audiences]"});
    }
    let sa = account(&claims);
    json!({
        "authenticated": true,
        "audiences": granted,
        "user": {"username": format!("system:serviceaccount:{}:{}", sa.0, sa.1), "uid": sa.2,
                 "groups": ["system:serviceaccounts", format!("system:serviceaccounts:{}", sa.0)]},
    })
}

/// Namespace, name and uid, from either token shape.
fn account(claims: &Value) -> (String, String, String) {
    let s = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    let p = &claims["kubernetes.io"];
    if p.is_object() {
        (
            s(&p["namespace"]),
            s(&p["serviceaccount"]["name"]),
            s(&p["serviceaccount"]["uid"]),
        )
    } else {
        (
            s(&claims["kubernetes.io/serviceaccount/namespace"]),
            s(&claims["kubernetes.io/serviceaccount/service-account.name"]),
            s(&claims["kubernetes.io/serviceaccount/service-account.uid"]),
        )
    }
}

impl KubeApi {
    /// An API server trusting service-account tokens signed by `keys`,
    /// letting `reviewers` call TokenReview.
    pub fn start(keys: &[SigningKey], reviewers: &[&str]) -> Self {
        let state = Arc::new(Mutex::new(State {
            mode: Mode::Serving,
            reviewers: reviewers.iter().map(|r| (*r).to_owned()).collect(),
        }));
        let reviews = Arc::new(AtomicUsize::new(0));
        let (s, count, keys) = (Arc::clone(&state), Arc::clone(&reviews), keys.to_vec());
        let server = https_fixture::start(move |request, _| {
            let state = s.lock().unwrap();
            match state.mode {
                Mode::Down => return (503, "down".to_owned()),
                Mode::Garbage => return (200, "<html>not json".to_owned()),
                Mode::Serving => {}
            }
            if (request.method.as_str(), request.path.as_str())
                != ("POST", "/apis/authentication.k8s.io/v1/tokenreviews")
            {
                return (
                    404,
                    json!({"kind": "Status", "status": "Failure", "code": 404}).to_string(),
                );
            }
            count.fetch_add(1, Ordering::SeqCst);
            let bearer = request
                .header("authorization")
                .and_then(|h| h.strip_prefix("Bearer "))
                .unwrap_or_default();
            if !state.reviewers.iter().any(|r| r == bearer) {
                return (
                    401,
                    json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                           "message": "Unauthorized", "reason": "Unauthorized", "code": 401})
                    .to_string(),
                );
            }
            let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
            let token = body["spec"]["token"].as_str().unwrap_or_default();
            let wanted: Vec<String> = body["spec"]["audiences"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            let status = review(token, &wanted, &keys);
            (
                201,
                json!({"kind": "TokenReview", "apiVersion": "authentication.k8s.io/v1",
                       "metadata": {"creationTimestamp": null},
                       "spec": {"token": token, "audiences": wanted}, "status": status})
                .to_string(),
            )
        });
        Self {
            url: server.url,
            ca_pem: server.ca_pem,
            state,
            reviews,
        }
    }

    pub fn set_mode(&self, mode: Mode) {
        self.state.lock().unwrap().mode = mode;
    }

    /// Also let this bearer token call TokenReview (a pod's own token with
    /// the `system:auth-delegator` role).
    pub fn allow_reviewer(&self, token: &str) {
        self.state.lock().unwrap().reviewers.push(token.to_owned());
    }

    pub fn reviews(&self) -> usize {
        self.reviews.load(Ordering::SeqCst)
    }
}
