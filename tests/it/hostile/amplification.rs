//! Audit amplification: what a request's body costs in audit bytes.
//!
//! Every string of request data becomes a 76-byte HMAC in the request entry
//! and again in the response entry, so a body of many tiny strings (`""`:
//! 3 bytes with its comma) costs about 50 times its size. Before a request
//! is authorized (a login, a refused or denied request) its data is written
//! only while small; beyond that a fixed-size marker (size, string count,
//! HMAC) stands for it, so such a request writes a bounded number of bytes
//! whatever its body. Authorized requests are audited in full.
//!
//! `cargo test --test it hostile::amplification -- --nocapture` prints the
//! audit bytes written per request byte for each case.

use std::path::Path;

use serde_json::{Value, json};

use crate::support::TestApp;

/// What one request before authorization may cost in audit, whatever its
/// body: two entries of at most 4 KiB of data each (plus 16 hashed
/// strings), their envelopes and a long path.
const UNAUTHORIZED_AUDIT_BOUND: u64 = 16 << 10;

/// A JSON body of about `size` bytes: a password and a list of empty strings.
fn many_small_strings(size: usize) -> Value {
    json!({ "password": "wrong", "padding": vec![""; size / 3] })
}

/// A JSON body of about `size` bytes holding one string.
fn one_big_string(size: usize) -> Value {
    json!({ "password": "a".repeat(size - 32) })
}

struct Audited {
    app: TestApp,
    log: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Audited {
    async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("audit.log");
        let app = TestApp::new();
        app.write("sys/auth/userpass", json!({ "type": "userpass" }))
            .await
            .expect(204);
        app.write(
            "auth/userpass/users/alice",
            json!({ "password": "correct horse" }),
        )
        .await
        .expect(204);
        app.write("transit/keys/k", json!({})).await.expect(200);
        app.write(
            "sys/audit/file",
            json!({ "type": "file", "options": { "file_path": log.display().to_string() } }),
        )
        .await
        .expect(204);
        Self {
            app,
            log,
            _dir: dir,
        }
    }

    fn size(&self) -> u64 {
        file_size(&self.log)
    }

    /// The audit bytes `body` costs on `path` (as `token`), and the status.
    async fn cost(&self, token: Option<&str>, path: &str, body: &Value, label: &str) -> (u64, u16) {
        let before = self.size();
        let bytes = serde_json::to_vec(body).unwrap();
        let sent = bytes.len();
        let reply = self
            .app
            .as_token(token)
            .raw(
                "POST",
                &format!("/v1/{path}"),
                Some(bytes),
                Some("application/json"),
            )
            .await;
        let written = self.size() - before;
        println!(
            "{label}: {sent} request bytes -> {written} audit bytes ({:.3} per request byte), status {}",
            written as f64 / sent as f64,
            reply.status
        );
        (written, reply.status)
    }
}

fn file_size(path: &Path) -> u64 {
    std::fs::metadata(path).unwrap().len()
}

/// A login is unauthenticated: a 1 MiB body of many small strings, and the
/// largest body of one string, each write a bounded amount of audit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unauthenticated_login_writes_bounded_audit() {
    let a = Audited::new().await;
    let login = "auth/userpass/login/alice";
    let (written, status) = a
        .cost(
            None,
            login,
            &many_small_strings(1 << 20),
            "login, 1 MiB of small strings",
        )
        .await;
    assert!(matches!(status, 400 | 413), "{status}");
    assert!(written <= UNAUTHORIZED_AUDIT_BOUND, "{written} audit bytes");
    let max = transitd::Limits::default().max_body_bytes;
    let (written, status) = a
        .cost(
            None,
            login,
            &one_big_string(max),
            "login, the largest body, one string",
        )
        .await;
    assert!(matches!(status, 400 | 413), "{status}");
    assert!(written <= UNAUTHORIZED_AUDIT_BOUND, "{written} audit bytes");
    // A real login is audited in full, as before.
    let (written, status) = a
        .cost(
            None,
            login,
            &json!({ "password": "correct horse" }),
            "login, real",
        )
        .await;
    assert_eq!(status, 200);
    let text = std::fs::read_to_string(&a.log).unwrap();
    let last_request = text
        .lines()
        .rfind(|l| l.contains("\"type\":\"request\""))
        .unwrap();
    assert!(
        last_request.contains("\"data\":{\"password\":\"hmac-sha256:"),
        "{last_request}"
    );
    assert!(written > 0);
}

/// A request with a valid token that its policy denies is bounded the same
/// way; an authorized one is audited in full (printed, not bounded: the
/// caller is accountable, and the body parser's own budget bounds it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denied_request_writes_bounded_audit() {
    let a = Audited::new().await;
    let token = a
        .app
        .token_with_policy(
            "hash-only",
            r#"path "transit/hash" { capabilities = ["update"] }"#,
        )
        .await;
    // Within the parse budget (200,000 strings), so the audit bound is what
    // is measured.
    let body = many_small_strings(512 << 10);
    let (written, status) = a
        .cost(
            Some(&token),
            "transit/encrypt/k",
            &body,
            "denied, 512 KiB of small strings",
        )
        .await;
    assert!(matches!(status, 400 | 403 | 413), "{status}");
    assert!(written <= UNAUTHORIZED_AUDIT_BOUND, "{written} audit bytes");
    let mut body = body;
    body["input"] = json!("aGk=");
    let (_, status) = a
        .cost(
            Some(&token),
            "transit/hash",
            &body,
            "authorized, 512 KiB of small strings",
        )
        .await;
    assert_eq!(status, 200);
}
