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
        self.call_as(Some("root"), method, path, body).await
    }

    async fn call_as(
        &self,
        token: Option<&str>,
        method: &str,
        path: &str,
        body: Value,
    ) -> (u16, Value) {
        let mut req = Request::builder()
            .method(method)
            .uri(format!("/v1/{path}"))
            .header("content-type", "application/json");
        if let Some(token) = token {
            req = req.header("X-Vault-Token", token);
        }
        let req = req.body(Body::from(body.to_string())).unwrap();
        let res = self.router.clone().oneshot(req).await.unwrap();
        let status = res.status().as_u16();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    fn audit_on(&self) -> MemoryLog {
        self.audit_at("mem/")
    }

    fn audit_at(&self, path: &str) -> MemoryLog {
        let log = MemoryLog::default();
        self.unsealed()
            .audit
            .broker
            .insert_device(path, log.device())
            .unwrap();
        log
    }

    fn unsealed(&self) -> Arc<Unsealed> {
        self.state.unsealed().unwrap()
    }
}

/// A device whose every write fails (a full disk).
fn failing(log: &MemoryLog) {
    log.fail_next.store(usize::MAX / 2, Ordering::SeqCst);
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

/// A login's data is written only while it is small (a real login body is);
/// beyond the bound it is left out of both entries, and its size, string
/// count and HMAC (what `sys/audit-hash` gives for its compact JSON) stand
/// for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_body_over_the_bound_is_left_out_and_identified() {
    let s = Server::new();
    let (status, body) = s
        .call("POST", "sys/auth/userpass", json!({ "type": "userpass" }))
        .await;
    assert_eq!(status, 204, "{body}");
    let (status, body) = s
        .call(
            "POST",
            "auth/userpass/users/alice",
            json!({ "password": "pw" }),
        )
        .await;
    assert_eq!(status, 204, "{body}");
    let log = s.audit_on();
    let login = "auth/userpass/login/alice";
    let (status, _) = s
        .call_as(None, "POST", login, json!({ "password": "pw" }))
        .await;
    assert_eq!(status, 200);
    let entries = log.entries();
    assert_eq!(entries.len(), 2);
    let password = s.unsealed().audit.broker.hash("mem/", "pw").unwrap();
    for e in &entries {
        assert_eq!(e["request"]["data"], json!({ "password": password }), "{e}");
        assert!(e["request"].get("data_elided").is_none(), "{e}");
    }

    // Within the parse budget of a request that needs no token (1000
    // strings), beyond the audit bound (16 strings).
    let big = json!({ "password": "wrong", "padding": vec![""; 500] });
    let before = log.out.lock().unwrap().len();
    let (status, _) = s.call_as(None, "POST", login, big.clone()).await;
    assert_eq!(status, 400);
    let written = log.out.lock().unwrap().len() - before;
    let json = serde_json::to_string(&big).unwrap();
    let expected = json!({
        "bytes": json.len(),
        "hmac": s.unsealed().audit.broker.hash("mem/", &json).unwrap(),
        "strings": 501,
    });
    let entries = log.entries();
    assert_eq!(entries.len(), 4);
    for e in &entries[2..] {
        assert!(e["request"].get("data").is_none(), "{e}");
        assert_eq!(e["request"]["data_elided"], expected);
    }
    assert!(written < 8 << 10, "{written} bytes of audit for one login");
}

/// A denied request's data is bounded as a login's is; the same request,
/// authorized, is written in full.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denied_request_is_bounded_an_authorized_one_is_not() {
    let s = Server::new();
    assert_eq!(s.call("POST", "transit/keys/k", json!({})).await.0, 200);
    let policy = r#"path "transit/hash" { capabilities = ["update"] }"#;
    let (status, _) = s
        .call("POST", "sys/policies/acl/hash", json!({ "policy": policy }))
        .await;
    assert_eq!(status, 204);
    let (_, created) = s
        .call("POST", "auth/token/create", json!({ "policies": ["hash"] }))
        .await;
    let token = created["auth"]["client_token"].as_str().unwrap().to_owned();
    let log = s.audit_on();
    let items: Vec<Value> = (0..100).map(|_| json!({ "plaintext": "aGk=" })).collect();
    let body = json!({ "batch_input": items });
    let (status, _) = s
        .call_as(Some(&token), "POST", "transit/encrypt/k", body.clone())
        .await;
    assert_eq!(status, 403);
    let entries = log.entries();
    assert_eq!(entries.len(), 1);
    assert!(
        entries[0]["error"]
            .as_str()
            .unwrap()
            .contains("permission denied")
    );
    assert_eq!(entries[0]["request"]["data_elided"]["strings"], 100);
    assert!(entries[0]["request"].get("data").is_none());

    let (status, _) = s.call("POST", "transit/encrypt/k", body).await;
    assert_eq!(status, 200);
    for e in &log.entries()[1..] {
        assert_eq!(
            e["request"]["data"]["batch_input"]
                .as_array()
                .unwrap()
                .len(),
            100
        );
        assert!(e["request"].get("data_elided").is_none(), "{e}");
    }
}

/// With no device able to record anything, everything fails closed
/// (removing the only device too: that would go unrecorded) except
/// sealing, which is served with a warning saying it is not on record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_sealing_is_served_when_no_device_can_record_it() {
    let s = Server::new();
    let log = s.audit_on();
    failing(&log);
    let (status, _) = s.call("POST", "transit/keys/k", json!({})).await;
    assert_eq!(status, 500);
    let (status, _) = s.call("DELETE", "sys/audit/mem", Value::Null).await;
    assert_eq!(status, 500);
    assert!(s.unsealed().audit.broker.is_open("mem/"));
    assert!(!s.state.is_sealed());
    let (status, body) = s.call("POST", "sys/seal", Value::Null).await;
    assert_eq!(status, 200, "{body}");
    let warning = body["warnings"][0].as_str().unwrap();
    assert!(
        warning.contains("no audit device could record"),
        "{warning}"
    );
    assert!(s.state.is_sealed());
    assert!(log.entries().is_empty());
}

/// A device that fails while another records is reported (`sys/health`
/// counts it), and removing it succeeds (on record in the other device)
/// although it cannot write its final checkpoint.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_device_is_reported_and_can_be_removed() {
    let s = Server::new();
    let good = s.audit_on();
    let bad = s.audit_at("bad/");
    let (_, health) = s.call("GET", "sys/health", Value::Null).await;
    assert!(health.get("audit_devices_failing").is_none(), "{health}");
    failing(&bad);
    assert_eq!(s.call("POST", "transit/keys/k", json!({})).await.0, 200);
    let broker = &s.unsealed().audit.broker;
    assert!(broker.failing("bad").is_some());
    assert!(broker.failing("mem").is_none());
    let (_, health) = s.call("GET", "sys/health", Value::Null).await;
    assert_eq!(health["audit_devices_failing"], 1, "{health}");

    let (status, body) = s.call("DELETE", "sys/audit/bad", Value::Null).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body["warnings"][0]
            .as_str()
            .unwrap()
            .contains("was failing")
    );
    assert!(!broker.is_open("bad"));
    let recorded = kinds(&good);
    assert_eq!(
        recorded[recorded.len() - 2..],
        ["request \"sys/audit/bad\"", "response \"sys/audit/bad\""]
    );
    let (_, health) = s.call("GET", "sys/health", Value::Null).await;
    assert!(health.get("audit_devices_failing").is_none(), "{health}");
}

/// A sink whose appends fail from the `n`th on (the first is the header).
struct FailsFrom {
    n: usize,
    appends: usize,
}

impl crate::audit::device::Sink for FailsFrom {
    fn append(&mut self, _bytes: &[u8]) -> std::io::Result<()> {
        self.appends += 1;
        if self.appends >= self.n {
            return Err(std::io::Error::other("injected: no space left on device"));
        }
        Ok(())
    }

    fn rollback(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Sealing whose request entry was recorded but whose outcome cannot be
/// stands (the server is sealed): its reply says so instead of a 500.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sealing_whose_outcome_cannot_be_recorded_is_not_a_500() {
    let s = Server::new();
    // Header, then the seal's request entry; its response entry fails.
    let sink = Box::new(FailsFrom { n: 3, appends: 0 });
    let device = crate::audit::device::tests::test_device(sink, 1000);
    s.unsealed()
        .audit
        .broker
        .insert_device("full/", device)
        .unwrap();
    let (status, body) = s.call("POST", "sys/seal", Value::Null).await;
    assert!(s.state.is_sealed());
    assert_eq!(status, 200, "{body}");
    let warning = body["warnings"][0].as_str().unwrap();
    assert!(warning.contains("or its outcome"), "{warning}");
}

/// The audit lines of one batch, byte for byte: what the batch path's
/// parsing, hashing and writing must keep (every member, its order, its
/// escaping, the HMAC of every string of the items and their results).
/// Only what differs from run to run is filled in: the times, the request
/// id, the random ciphertexts (as their HMACs) and the root token's
/// accessor and issue time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_is_audited_byte_for_byte() {
    let s = Server::new();
    assert_eq!(s.call("POST", "transit/keys/k", json!({})).await.0, 200);
    let log = s.audit_on();
    let body = r#"{"batch_input":[{"plaintext":"aGk=","reference":"a\u00e9\"<"},{"plaintext":"!!","reference":"b"},{"plaintext":"","extra":[5,true,null,"x"],"key_version":0}],"partial_failure_response_code":207,"note":""}"#;
    let req = Request::builder()
        .method("POST")
        .uri("/v1/transit/encrypt/k")
        .header("X-Vault-Token", "root")
        .body(Body::from(body))
        .unwrap();
    let res = s.router.clone().oneshot(req).await.unwrap();
    assert_eq!(res.status().as_u16(), 207);
    let reply: Value =
        serde_json::from_slice(&res.into_body().collect().await.unwrap().to_bytes()).unwrap();
    let results = &reply["data"]["batch_results"];
    let hashed = |s: &str| crate::audit::format::hash_value(b"salt", s);
    let ct0 = hashed(results[0]["ciphertext"].as_str().unwrap());
    let ct2 = hashed(results[2]["ciphertext"].as_str().unwrap());

    let raw = String::from_utf8(log.out.lock().unwrap().clone()).unwrap();
    let lines: Vec<String> = raw
        .lines()
        .filter(|l| l.contains(r#""type":"request""#) || l.contains(r#""type":"response""#))
        .map(|l| {
            let (body, _chain) = crate::audit::chain::split(l.as_bytes()).unwrap();
            String::from_utf8(body).unwrap()
        })
        .collect();
    assert_eq!(lines.len(), 2, "{raw}");
    let first: Value = serde_json::from_str(&lines[0]).unwrap();
    let second: Value = serde_json::from_str(&lines[1]).unwrap();
    let text = |v: &Value| v.as_str().unwrap().to_owned();
    let (t0, t1) = (text(&first["time"]), text(&second["time"]));
    let id = text(&first["request"]["id"]);
    let accessor = text(&first["auth"]["accessor"]);
    let issued = text(&first["auth"]["token_issue_time"]);
    let mount = text(&first["request"]["mount_accessor"]);
    let token = hashed("root");
    let e = |s: &str| hashed(s);
    let auth = format!(
        r#""auth":{{"client_token":"{token}","accessor":"{accessor}","display_name":"root","policies":["root"],"token_policies":["root"],"token_type":"service","token_issue_time":"{issued}"}}"#
    );
    let request = format!(
        r#""request":{{"id":"{id}","operation":"update","mount_point":"transit/","mount_type":"transit","mount_accessor":"{mount}","client_token":"{token}","client_token_accessor":"{accessor}","namespace":{{"id":"root"}},"path":"transit/encrypt/k","data":{{"batch_input":[{{"plaintext":"{p0}","reference":"{r0}"}},{{"plaintext":"{p1}","reference":"{r1}"}},{{"extra":[5,true,null,"{x}"],"key_version":0,"plaintext":"{empty}"}}],"note":"{empty}","partial_failure_response_code":207}}}}"#,
        p0 = e("aGk="),
        r0 = e("a\u{e9}\"<"),
        p1 = e("!!"),
        r1 = e("b"),
        x = e("x"),
        empty = e(""),
    );
    let response = format!(
        r#""response":{{"mount_point":"transit/","mount_type":"transit","mount_accessor":"{mount}","data":{{"batch_results":[{{"ciphertext":"{ct0}","key_version":1,"reference":"{r0}"}},{{"error":"{bad}","reference":"{r1}"}},{{"ciphertext":"{ct2}","key_version":1,"reference":"{empty}"}}]}}}}"#,
        r0 = e("a\u{e9}\"<"),
        r1 = e("b"),
        bad = e("illegal base64 data at input byte 0"),
        empty = e(""),
    );
    assert_eq!(
        lines[0],
        format!(r#"{{"time":"{t0}","type":"request",{auth},{request},"seq":1}}"#)
    );
    assert_eq!(
        lines[1],
        format!(r#"{{"time":"{t1}","type":"response",{auth},{request},{response},"seq":2}}"#)
    );
}
