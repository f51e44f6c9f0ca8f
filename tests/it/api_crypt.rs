//! encrypt / decrypt / rewrap / datakey through the router.

use serde_json::json;

use crate::support::{TestApp, b64};

#[tokio::test]
async fn encrypt_upserts_and_round_trips() {
    let app = TestApp::new();
    let ct = app
        .write(
            "transit/encrypt/k",
            json!({"plaintext": b64(b"hello world")}),
        )
        .await
        .ok();
    let text = ct.data()["ciphertext"].as_str().unwrap().to_owned();
    assert!(text.starts_with("vault:v1:"));
    assert_eq!(ct.data()["key_version"], 1);
    let pt = app
        .write("transit/decrypt/k", json!({"ciphertext": text}))
        .await
        .ok();
    assert_eq!(pt.data()["plaintext"], b64(b"hello world"));
    let key = app.read("transit/keys/k").await.ok();
    assert_eq!(key.data()["type"], "aes256-gcm96");
}

#[tokio::test]
async fn batch_partial_failure_codes() {
    let app = TestApp::new();
    let body = json!({"batch_input": [{"plaintext": b64(b"a"), "reference": "ok"}, {"plaintext": "***", "reference": "bad"}]});
    let res = app
        .write("transit/encrypt/k", body.clone())
        .await
        .expect(400);
    assert_eq!(
        res.data()["batch_results"][1]["error"],
        "illegal base64 data at input byte 0"
    );
    assert_eq!(res.data()["batch_results"][1]["reference"], "bad");
    let mut with_code = body;
    with_code["partial_failure_response_code"] = json!(207);
    app.write("transit/encrypt/k", with_code).await.expect(207);
    let all_bad =
        json!({"batch_input": [{"plaintext": "***"}], "partial_failure_response_code": 207});
    app.write("transit/encrypt/k", all_bad).await.expect(400);
}

#[tokio::test]
async fn errors_are_vault_shaped() {
    let app = TestApp::new();
    let res = app.write("transit/encrypt/k", json!({})).await.expect(400);
    assert_eq!(res.error(), "missing plaintext to encrypt");
    let res = app
        .write(
            "transit/decrypt/nokey",
            json!({"ciphertext": "vault:v1:AAAA"}),
        )
        .await
        .expect(400);
    assert_eq!(res.error(), "encryption key not found");
    app.read("transit/encrypt/k").await.expect(405);
    app.write("transit/nonsense/k", json!({})).await.expect(404);
    let mut anonymous = TestApp::new();
    anonymous.token = None;
    let res = anonymous
        .write("transit/encrypt/k", json!({"plaintext": ""}))
        .await
        .expect(403);
    assert_eq!(res.error(), "permission denied");
}

#[tokio::test]
async fn oversized_and_malformed_bodies_are_4xx() {
    let app = TestApp::with_limits(transitd::Limits {
        max_body_bytes: 1024,
        ..transitd::Limits::default()
    });
    let big = json!({"plaintext": b64(&[0u8; 2048])});
    let res = app.write("transit/encrypt/k", big).await.expect(413);
    assert_eq!(res.error(), "request body too large");
    let res = app
        .raw(
            "POST",
            "/v1/transit/encrypt/k",
            Some(b"{not json".to_vec()),
            Some("application/json"),
        )
        .await;
    assert_eq!(res.status, 400);
    let deep = "[".repeat(1000);
    let res = app
        .raw(
            "POST",
            "/v1/transit/encrypt/k",
            Some(deep.into_bytes()),
            None,
        )
        .await;
    assert_eq!(res.status, 400);
}

#[tokio::test]
async fn cli_style_strings_and_forms() {
    let app = TestApp::new();
    app.write(
        "transit/keys/k",
        json!({"exportable": "true", "auto_rotate_period": "24h"}),
    )
    .await
    .ok();
    let key = app.read("transit/keys/k").await.ok();
    assert_eq!(key.data()["exportable"], true);
    assert_eq!(key.data()["auto_rotate_period"], 86400);
    let form = format!("plaintext={}&key_version=1", b64(b"x").replace('=', "%3D"));
    let res = app
        .raw(
            "POST",
            "/v1/transit/encrypt/k",
            Some(form.into_bytes()),
            Some("application/x-www-form-urlencoded"),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(res.body["data"]["key_version"], 1);
}

#[tokio::test]
async fn prehashed_empty_input_is_a_400() {
    let app = TestApp::new();
    app.write("transit/keys/ec", json!({"type": "ecdsa-p256"}))
        .await
        .ok();
    let res = app
        .write("transit/sign/ec", json!({"input": "", "prehashed": true}))
        .await
        .expect(400);
    assert!(res.error().contains("prehashed"), "{}", res.body);
    let res = app
        .write(
            "transit/verify/ec",
            json!({"input": "", "prehashed": true, "signature": "vault:v1:MEUCIQ=="}),
        )
        .await;
    assert_eq!(res.status, 400, "{}", res.body);
}
