//! Issue 15, finding 2: bodies built to cost far more memory parsed than they
//! take on the wire (arrays of `0`, many tiny strings, deep nesting, form and
//! query floods), and over-limit bodies before they are read. Each is refused
//! with a 400 (or 413) while normal large batches still work.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use transitd::serve::{Listener, serve};
use transitd::{AppState, Limits};

use crate::support::{ROOT, TestApp, b64};

const COMPLEX: &str = "refused JSON input due to high complexity: ";

/// An item of four strings (two keys, two values) and three elements.
const TWO_STRINGS: &str = r#"{"a":"","b":""}"#;

/// `{"a":[item,item,...]}` with `n` items, as bytes.
fn array_body(item: &str, n: usize) -> Vec<u8> {
    let mut body = b"{\"a\":[".to_vec();
    for i in 0..n {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(item.as_bytes());
    }
    body.extend_from_slice(b"]}");
    body
}

async fn post(app: &TestApp, path: &str, body: Vec<u8>, content_type: &str) -> (u16, String) {
    let res = app
        .raw(
            "POST",
            &format!("/v1/{path}"),
            Some(body),
            Some(content_type),
        )
        .await;
    let error = if res.status >= 400 {
        res.error()
    } else {
        String::new()
    };
    (res.status, error)
}

async fn with_userpass() -> TestApp {
    let app = TestApp::new();
    app.write("sys/auth/userpass", json!({ "type": "userpass" }))
        .await
        .expect(204);
    app
}

#[tokio::test]
async fn unauthenticated_bodies_get_the_smallest_budget() {
    let app = with_userpass().await;
    let anonymous = app.as_token(None);
    let login = "auth/userpass/login/bob";
    // Over the public body limit (64 KiB) but far under the authenticated
    // one (32 MiB): 413 on unseal and on a login path.
    for path in ["sys/unseal", login] {
        let body = array_body("0", 40_000);
        let (status, error) = post(&anonymous, path, body, "application/json").await;
        assert_eq!(
            (status, error.as_str()),
            (413, "request body too large"),
            "{path}"
        );
    }
    // Inside the byte limit, over the element and string limits (1000).
    for path in ["sys/unseal", login] {
        let (status, error) = post(
            &anonymous,
            path,
            array_body("0", 20_000),
            "application/json",
        )
        .await;
        assert_eq!(status, 400, "{path}");
        assert_eq!(
            error,
            format!("{COMPLEX}exceeded maximum number of elements")
        );
        let (status, error) = post(
            &anonymous,
            path,
            array_body(TWO_STRINGS, 300),
            "application/json",
        )
        .await;
        assert_eq!(status, 400, "{path}");
        assert_eq!(
            error,
            format!("{COMPLEX}exceeded maximum number of strings")
        );
    }
    // A form flood on a login path.
    let form = "a=&".repeat(5000).into_bytes();
    let (status, error) = post(&anonymous, login, form, "application/x-www-form-urlencoded").await;
    assert_eq!(status, 400);
    assert_eq!(
        error,
        "refused form input due to high complexity: exceeded maximum number of strings"
    );
    // The same body with a token, on an authenticated path, is in budget.
    let body = array_body(TWO_STRINGS, 300);
    let (status, error) = post(&app, "transit/encrypt/k", body, "application/json").await;
    assert_eq!(
        (status, error.as_str()),
        (400, "missing plaintext to encrypt")
    );
}

#[tokio::test]
async fn wide_and_deep_bodies_are_refused_while_parsing() {
    let app = TestApp::new();
    let path = "transit/encrypt/k";
    // Objects cost the most parsed (a B-tree node each): ~100 bytes of body
    // per kilobyte of memory. Refused on the estimate, not after building.
    let objects = array_body("{\"\":0}", 100_000);
    let (status, error) = post(&app, path, objects, "application/json").await;
    assert_eq!(status, 400);
    assert_eq!(
        error,
        format!("{COMPLEX}exceeded maximum estimated memory limits")
    );
    // A 30 MB array of zeros (the finding's body): over the element limit.
    let zeros = array_body("0", 15_000_000);
    assert!(zeros.len() < Limits::default().max_body_bytes);
    let (status, error) = post(&app, path, zeros, "application/json").await;
    assert_eq!(status, 400);
    assert_eq!(
        error,
        format!("{COMPLEX}exceeded maximum number of elements")
    );
    // Many tiny strings.
    let strings = array_body(TWO_STRINGS, 60_000);
    let (status, error) = post(&app, path, strings, "application/json").await;
    assert_eq!(status, 400);
    assert_eq!(
        error,
        format!("{COMPLEX}exceeded maximum number of strings")
    );
    // Deep nesting.
    let deep = format!("{{\"a\":{}{}}}", "[".repeat(40), "]".repeat(40));
    let (status, error) = post(&app, path, deep.into_bytes(), "application/json").await;
    assert_eq!(status, 400);
    assert_eq!(error, format!("{COMPLEX}exceeded maximum nesting depth"));
    // A form flood: `a=&a=&...` (one field, millions of pairs).
    let form = "a=&".repeat(1_000_000).into_bytes();
    let (status, error) = post(&app, path, form, "application/x-www-form-urlencoded").await;
    assert_eq!(status, 400);
    assert_eq!(
        error,
        "refused form input due to high complexity: exceeded maximum number of strings"
    );
}

#[tokio::test]
async fn query_string_floods_are_refused() {
    let app = TestApp::new();
    let query = "a=&".repeat(2000);
    let res = app
        .raw("GET", &format!("/v1/sys/health?{query}"), None, None)
        .await;
    assert_eq!(res.status, 400);
    assert_eq!(
        res.error(),
        "refused query input due to high complexity: exceeded maximum number of strings"
    );
}

#[tokio::test]
async fn large_batches_still_fit() {
    let app = TestApp::new();
    for n in [250, 10_000] {
        let items: Vec<_> = (0..n)
            .map(|i| json!({ "plaintext": b64(format!("item {i}").as_bytes()), "reference": i.to_string() }))
            .collect();
        let res = app
            .write("transit/encrypt/batch", json!({ "batch_input": items }))
            .await
            .ok();
        let results = res.data()["batch_results"].as_array().unwrap();
        assert_eq!(results.len(), n);
        assert!(results.iter().all(|r| r["ciphertext"].is_string()));
    }
}

/// A real listener over the whole API, on a free port.
async fn listening() -> SocketAddr {
    let state = Arc::new(AppState::dev(ROOT, Limits::default()));
    let listener = Listener::bind("127.0.0.1:0".parse().unwrap(), None)
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve(
        transitd::app(state),
        vec![listener],
        std::future::pending(),
    ));
    addr
}

/// Sends `head` (headers only, no body byte) and reads what comes back until
/// the server closes the connection or 5 s pass.
fn exchange(addr: SocketAddr, head: &str) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream.write_all(head.as_bytes()).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = stream.read(&mut buf) {
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&got).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_over_limit_content_length_gets_413_before_100_continue() {
    let addr = listening().await;
    for (path, token, length) in [
        ("transit/encrypt/k", ROOT, 999_999_999u64),
        ("sys/unseal", "", 65 << 10),
    ] {
        let head = format!(
            "POST /v1/{path} HTTP/1.1\r\nHost: x\r\nX-Vault-Token: {token}\r\n\
             Content-Type: application/json\r\nContent-Length: {length}\r\n\
             Expect: 100-continue\r\n\r\n"
        );
        let reply = tokio::task::spawn_blocking(move || exchange(addr, &head))
            .await
            .unwrap();
        assert!(!reply.contains("100 Continue"), "{path}: {reply}");
        assert!(
            reply.starts_with("HTTP/1.1 413 "),
            "{path}: the refusal, without waiting for the body: {reply}"
        );
    }
}
