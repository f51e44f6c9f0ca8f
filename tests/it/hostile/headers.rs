//! Request headers: each `X-Vault-*` header is honoured or refused, never
//! ignored, and a request names one token or none.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderValue, Request};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;
use transitd::{AppState, Limits};

use crate::support::{Reply, TestApp, audit_text_when, audit_to_file, b64};

/// One request with exactly `headers` (no token unless one is among them).
async fn send(router: &axum::Router, path: &str, body: Value, headers: &[(&str, &[u8])]) -> Reply {
    let mut req = Request::builder()
        .method("POST")
        .uri(format!("/v1/{path}"))
        .header("content-type", "application/json");
    for (name, value) in headers {
        req = req.header(*name, HeaderValue::from_bytes(value).unwrap());
    }
    let req = req
        .body(Body::from(serde_json::to_vec(&body).unwrap()))
        .unwrap();
    let res = router.clone().oneshot(req).await.unwrap();
    let status = res.status().as_u16();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    Reply::parse(status, &bytes)
}

fn server() -> (axum::Router, TestApp) {
    let state = Arc::new(AppState::dev("root", Limits::default()));
    (
        transitd::app(Arc::clone(&state)),
        TestApp::from_state(state, "root"),
    )
}

const ROOT: (&str, &[u8]) = ("x-vault-token", b"root");

/// A wrapping we would not make (a JWT) or a TTL that does not parse, is
/// negative or too long is refused before anything is served.
#[tokio::test]
async fn a_wrapping_we_do_not_make_is_refused_before_any_secret_is_made() {
    let (router, app) = server();
    app.write("transit/keys/k", json!({})).await.ok();
    let asks: [(&str, &[u8], &str); 5] = [
        ("X-Vault-Wrap-Format", b"jwt", "X-Vault-Wrap-Format"),
        ("X-Vault-Wrap-Format", b"xyz", "X-Vault-Wrap-Format"),
        ("X-Vault-Wrap-TTL", b"abc", "invalid duration"),
        ("X-Vault-Wrap-TTL", b"-5", "cannot be negative"),
        ("X-Vault-Wrap-TTL", b"1000h", "wrapping TTL must be between"),
    ];
    for (header, value, says) in asks {
        let with_ttl = [ROOT, (header, value), ("X-Vault-Wrap-TTL", b"60s")];
        let headers = if header == "X-Vault-Wrap-TTL" {
            &with_ttl[..2]
        } else {
            &with_ttl[..]
        };
        let reply = send(&router, "transit/datakey/plaintext/k", json!({}), headers)
            .await
            .expect(400);
        assert!(reply.error().contains(says), "{header}: {}", reply.body);
        assert!(reply.data().is_null(), "no data key left: {}", reply.body);
        assert!(reply.body["wrap_info"].is_null(), "{}", reply.body);
    }
    // Nothing is done either: encrypt's upsert would create the key.
    send(
        &router,
        "transit/encrypt/fresh",
        json!({ "plaintext": b64(b"x") }),
        &[
            ROOT,
            ("X-Vault-Wrap-TTL", b"60s"),
            ("X-Vault-Wrap-Format", b"jwt"),
        ],
    )
    .await
    .expect(400);
    app.read("transit/keys/fresh").await.expect(404);
}

#[tokio::test]
async fn only_the_root_namespace_exists() {
    let (router, app) = server();
    app.write("transit/keys/k", json!({})).await.ok();
    let encrypt = json!({ "plaintext": b64(b"x") });
    for other in ["team-a/", "team-a", "ROOT", "team-a/x", "r\u{f6}\u{f6}t"] {
        let reply = send(
            &router,
            "transit/encrypt/k",
            encrypt.clone(),
            &[ROOT, ("X-Vault-Namespace", other.as_bytes())],
        )
        .await
        .expect(404);
        assert_eq!(
            reply.body,
            json!({ "errors": ["namespace not found"] }),
            "{other}"
        );
    }
    // Refused before the token: an unauthenticated caller learns the same.
    send(
        &router,
        "transit/encrypt/k",
        encrypt.clone(),
        &[("X-Vault-Namespace", b"team-a")],
    )
    .await
    .expect(404);
    for root in ["", "/", "root", "root/", "/root"] {
        send(
            &router,
            "transit/encrypt/k",
            encrypt.clone(),
            &[ROOT, ("X-Vault-Namespace", root.as_bytes())],
        )
        .await
        .ok();
    }
}

/// A refusal names the header, but never more than a short prefix of it:
/// its message reaches the reply and the audit log before any
/// authorization, and a header name can be tens of KiB.
#[tokio::test]
async fn a_long_header_name_is_not_repeated_in_full() {
    let (router, app) = server();
    app.write("transit/keys/k", json!({})).await.ok();
    let name = format!("X-Vault-{}", "a".repeat(20_000));
    let reply = send(
        &router,
        "transit/encrypt/k",
        json!({ "plaintext": b64(b"x") }),
        &[ROOT, (name.as_str(), b"1")],
    )
    .await
    .expect(400);
    let error = reply.error();
    assert!(
        error.contains("X-Vault-Aaaa") && error.contains("..."),
        "{error}"
    );
    assert!(error.len() < 200, "{} bytes of error", error.len());
}

#[tokio::test]
async fn every_other_vault_header_is_refused_by_name() {
    let (router, app) = server();
    app.write("transit/keys/k", json!({})).await.ok();
    let encrypt = json!({ "plaintext": b64(b"x") });
    for header in [
        "X-Vault-MFA",
        "X-Vault-Policy-Override",
        "X-Vault-Index",
        "X-Vault-Inconsistent",
        "X-Vault-Forward",
        "X-Vault-Client-Controlled-Consistency",
        "X-Vault-Inline-Auth-Path",
        "X-Vault-Inline-Auth-Parameter-password",
        "X-Vault-Something-New",
    ] {
        let reply = send(
            &router,
            "transit/encrypt/k",
            encrypt.clone(),
            &[ROOT, (header, b"true")],
        )
        .await
        .expect(400);
        assert!(
            reply
                .error()
                .to_lowercase()
                .contains(&header.to_lowercase()),
            "{header}: {}",
            reply.body
        );
    }
    // What the CLI and hvac send, and a header that always holds here.
    for header in ["X-Vault-Request", "X-Vault-No-Request-Forwarding"] {
        send(
            &router,
            "transit/encrypt/k",
            encrypt.clone(),
            &[ROOT, (header, b"true")],
        )
        .await
        .ok();
    }
}

#[tokio::test]
async fn a_request_names_one_token_or_is_refused() {
    let (router, app) = server();
    let other = app.write("auth/token/create", json!({})).await.ok().body["auth"]["client_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = "auth/token/lookup-self";
    let bearer = |t: &str| format!("Bearer {t}").into_bytes();
    let two_tokens: [&[(&str, &[u8])]; 3] = [
        &[ROOT, ("x-vault-token", other.as_bytes())],
        &[ROOT, ("authorization", &bearer(&other))],
        &[
            ("authorization", &bearer("root")),
            ("authorization", &bearer(&other)),
        ],
    ];
    for headers in two_tokens {
        let reply = send(&router, path, json!({}), headers).await.expect(400);
        assert!(
            reply.error().contains("two different tokens"),
            "{}",
            reply.body
        );
    }
    // The same token twice is one token.
    send(
        &router,
        path,
        json!({}),
        &[ROOT, ("authorization", &bearer("root"))],
    )
    .await
    .ok();
    send(
        &router,
        path,
        json!({}),
        &[("authorization", &bearer("root"))],
    )
    .await
    .ok();
    // Bytes no token has, and a scheme we do not take: bad input, not "no token".
    send(&router, path, json!({}), &[("x-vault-token", b"ro\xffot")])
        .await
        .expect(400);
    send(
        &router,
        path,
        json!({}),
        &[("authorization", b"Basic cm9vdDpyb290")],
    )
    .await
    .expect(400);
}

#[tokio::test]
async fn a_refused_header_is_on_record_like_an_unknown_token() {
    let (router, app) = server();
    let dir = tempfile::tempdir().unwrap();
    let log = audit_to_file(&app, dir.path()).await;
    send(
        &router,
        "transit/encrypt/k",
        json!({ "plaintext": b64(b"x") }),
        &[ROOT, ("X-Vault-Wrap-Format", b"jwt")],
    )
    .await
    .expect(400);
    let text = audit_text_when(&log, |t| t.contains("X-Vault-Wrap-Format")).await;
    let line = text
        .lines()
        .find(|l| l.contains("\"path\":\"transit/encrypt/k\""))
        .unwrap_or_else(|| panic!("the refusal is not on record: {text}"));
    assert!(line.contains("X-Vault-Wrap-Format"), "{line}");
}
