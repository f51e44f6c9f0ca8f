//! `TestApp`: the router driven in-process (no socket), with Vault-style calls
//! of the same shape as `transitd_test_support::Client` (over HTTP).

use std::sync::Arc;

use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;
use transitd::{AppState, Limits};
pub use transitd_test_support::{Reply, b64};

pub const ROOT: &str = "root";

pub struct TestApp {
    router: axum::Router,
    pub token: Option<String>,
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
    ) -> Reply {
        self.raw_with_headers(method, path, body, content_type, &[])
            .await
    }

    /// [`TestApp::raw`] with more request headers.
    pub async fn raw_with_headers(
        &self,
        method: &str,
        path: &str,
        body: Option<Vec<u8>>,
        content_type: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut req = Request::builder().method(method).uri(path);
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
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
        let status = res.status().as_u16();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        Reply::parse(status, &bytes)
    }

    pub async fn call(&self, method: &str, path: &str, body: Value) -> Reply {
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

    pub async fn write(&self, path: &str, body: Value) -> Reply {
        self.call("POST", path, body).await
    }

    /// A write whose reply is to be wrapped for `ttl` (`X-Vault-Wrap-TTL`).
    pub async fn write_wrapped(&self, path: &str, body: Value, ttl: &str) -> Reply {
        let body = serde_json::to_vec(&body).unwrap();
        self.raw_with_headers(
            "POST",
            &format!("/v1/{path}"),
            Some(body),
            Some("application/json"),
            &[("X-Vault-Wrap-TTL", ttl)],
        )
        .await
    }

    pub async fn read(&self, path: &str) -> Reply {
        self.call("GET", path, Value::Null).await
    }
}

/// A file audit device at `<dir>/audit.log` on `app`; the log's path.
pub async fn audit_to_file(app: &TestApp, dir: &std::path::Path) -> std::path::PathBuf {
    let log = dir.join("audit.log");
    app.write(
        "sys/audit/file",
        serde_json::json!({ "type": "file", "options": { "file_path": log.display().to_string() } }),
    )
    .await
    .expect(204);
    log
}

/// The audit log's text once `done` holds for it (the device's writer
/// thread writes a moment later), or as it is after five seconds.
pub async fn audit_text_when(log: &std::path::Path, done: impl Fn(&str) -> bool) -> String {
    let mut text = String::new();
    for _ in 0..100 {
        text = std::fs::read_to_string(log).unwrap_or_default();
        if done(&text) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    text
}
