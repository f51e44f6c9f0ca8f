//! `TestApp`: the router driven in-process (no socket), with Vault-style calls.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;
use transitd::{AppState, Limits};

pub const ROOT: &str = "root";

pub struct TestApp {
    router: axum::Router,
    pub token: Option<String>,
}

/// A reply: status and parsed JSON body (`Value::Null` when empty).
#[derive(Debug)]
pub struct Res {
    pub status: StatusCode,
    pub body: Value,
}

impl Res {
    pub fn data(&self) -> &Value {
        &self.body["data"]
    }

    pub fn error(&self) -> String {
        self.body["errors"][0]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    #[track_caller]
    pub fn ok(self) -> Self {
        assert!(
            self.status.is_success(),
            "expected success, got {} {}",
            self.status,
            self.body
        );
        self
    }

    #[track_caller]
    pub fn expect(self, status: u16) -> Self {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.body);
        self
    }
}

impl TestApp {
    pub fn new() -> Self {
        Self::with_limits(Limits::default())
    }

    pub fn with_limits(limits: Limits) -> Self {
        let state = Arc::new(AppState::dev(ROOT, limits));
        Self {
            router: transitd::app(state),
            token: Some(ROOT.to_owned()),
        }
    }

    /// A router over a state built by the test.
    pub fn from_state(state: Arc<AppState>, token: &str) -> Self {
        Self {
            router: transitd::app(state),
            token: Some(token.to_owned()),
        }
    }

    /// The same server, called with another token (`None`: no token).
    pub fn as_token(&self, token: Option<&str>) -> Self {
        Self {
            router: self.router.clone(),
            token: token.map(str::to_owned),
        }
    }

    /// A token with one policy made of `hcl` (named after the test).
    pub async fn token_with_policy(&self, name: &str, hcl: &str) -> String {
        self.write(
            &format!("sys/policies/acl/{name}"),
            serde_json::json!({ "policy": hcl }),
        )
        .await
        .expect(204);
        let res = self
            .write(
                "auth/token/create",
                serde_json::json!({ "policies": [name] }),
            )
            .await
            .ok();
        res.body["auth"]["client_token"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    pub async fn raw(
        &self,
        method: &str,
        path: &str,
        body: Option<Vec<u8>>,
        content_type: Option<&str>,
    ) -> Res {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(t) = &self.token {
            req = req.header("X-Vault-Token", t);
        }
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        let req = req
            .body(body.map(Body::from).unwrap_or_else(Body::empty))
            .unwrap();
        let res = self.router.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        Res { status, body }
    }

    pub async fn call(&self, method: &str, path: &str, body: Value) -> Res {
        let body = if body.is_null() {
            None
        } else {
            Some(serde_json::to_vec(&body).unwrap())
        };
        self.raw(
            method,
            &format!("/v1/{path}"),
            body,
            Some("application/json"),
        )
        .await
    }

    pub async fn write(&self, path: &str, body: Value) -> Res {
        self.call("POST", path, body).await
    }

    pub async fn read(&self, path: &str) -> Res {
        self.call("GET", path, Value::Null).await
    }
}

pub fn b64(data: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(data)
}
