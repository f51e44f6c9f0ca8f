//! The audit hook on the router: fail-closed, deferred and refused entries.

use std::sync::atomic::Ordering;

use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use tower::ServiceExt;

use super::*;
use crate::audit::device::tests::MemoryLog;
use crate::state::{AppState, Limits};

struct Server {
    state: Arc<AppState>,
    router: axum::Router,
}

impl Server {
    fn new() -> Self {
        let state = Arc::new(AppState::dev("root", Limits::default()));
        let router = crate::app(Arc::clone(&state));
        Self { state, router }
    }

    async fn call(&self, method: &str, path: &str, body: Value) -> (u16, Value) {
        let req = Request::builder()
            .method(method)
            .uri(format!("/v1/{path}"))
            .header("X-Vault-Token", "root")
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
        let res = self.router.clone().oneshot(req).await.unwrap();
        let status = res.status().as_u16();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    fn audit_on(&self) -> MemoryLog {
        let log = MemoryLog::default();
        let unsealed = self.state.unsealed().unwrap();
        unsealed
            .audit
            .broker
            .insert_device("mem/", log.device())
            .unwrap();
        log
    }
}

fn kinds(log: &MemoryLog) -> Vec<String> {
    log.entries()
        .iter()
        .map(|e| format!("{} {}", e["type"].as_str().unwrap(), e["request"]["path"]))
        .collect()
}

/// A request that changes nothing (encrypt with an existing key, decrypt)
/// is answered only when its request and response entries are both
/// written: with either lost, the reply is a 500 and no entry is left
/// without the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn side_effect_free_request_gets_no_reply_when_its_entries_fail() {
    let s = Server::new();
    assert_eq!(s.call("POST", "transit/keys/k", json!({})).await.0, 200);
    let log = s.audit_on();
    let (status, body) = s
        .call("POST", "transit/encrypt/k", json!({ "plaintext": "aGk=" }))
        .await;
    assert_eq!(status, 200, "{body}");
    let ciphertext = body["data"]["ciphertext"].as_str().unwrap().to_owned();
    assert_eq!(
        kinds(&log),
        [
            "request \"transit/encrypt/k\"",
            "response \"transit/encrypt/k\""
        ]
    );
    for (path, body) in [
        ("transit/encrypt/k", json!({ "plaintext": "aGk=" })),
        ("transit/decrypt/k", json!({ "ciphertext": ciphertext })),
    ] {
        // The next write fails: the one holding the request entry.
        log.fail_next.store(1, Ordering::SeqCst);
        let (status, body) = s.call("POST", path, body).await;
        assert_eq!(status, 500, "{path}: {body}");
        assert_eq!(body, json!({ "errors": ["internal error"] }));
        assert_eq!(log.entries().len(), 2, "{:?}", kinds(&log));
    }
    // The device works again.
    let (status, _) = s
        .call(
            "POST",
            "transit/decrypt/k",
            json!({ "ciphertext": ciphertext }),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(log.entries().len(), 4);
}

/// A deferred request whose future is dropped before its response (the
/// client went away, a panic) is still on record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deferred_request_entry_is_written_when_dropped() {
    let s = Server::new();
    let log = s.audit_on();
    let unsealed = s.state.unsealed().unwrap();
    let request = Routed::parse(Op::Update, "transit/decrypt/k".into(), &s.state).unwrap();
    let mut audit = Audit::begin(&unsealed, None, &request, &Params::default(), None);
    audit.request_deferred().await.unwrap();
    assert!(log.entries().is_empty(), "held back until the response");
    drop(audit);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while log.entries().is_empty() {
        assert!(std::time::Instant::now() < deadline, "never written");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    assert_eq!(kinds(&log), ["request \"transit/decrypt/k\""]);
}

/// A request that changes state does nothing unless its request entry is
/// written first: creating a key, and encrypting with a key that does not
/// exist yet (which would create it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_change_does_not_happen_when_its_request_entry_fails() {
    let s = Server::new();
    let log = s.audit_on();
    for (path, body) in [
        ("transit/keys/new", json!({})),
        ("transit/encrypt/upserted", json!({ "plaintext": "aGk=" })),
    ] {
        log.fail_next.store(1, Ordering::SeqCst);
        let (status, body) = s.call("POST", path, body).await;
        assert_eq!(status, 500, "{path}: {body}");
    }
    assert!(log.entries().is_empty(), "{:?}", kinds(&log));
    for name in ["new", "upserted"] {
        let (status, _) = s
            .call("GET", &format!("transit/keys/{name}"), Value::Null)
            .await;
        assert_eq!(status, 404, "{name} was created");
    }
}
