//! The work one batch may ask for: bounded by the items' estimated CPU time
//! with the key they name, refused whole before any item is served.

use serde_json::{Value, json};
use transitd::Limits;

use crate::support::{TestApp, b64};

fn inputs(n: usize) -> Vec<Value> {
    (0..n).map(|_| json!({ "input": b64(b"x") })).collect()
}

/// 2 s of estimated CPU at 250 us per RSA-2048 signature.
const RSA_2048_PRIVATE_OPS: usize = 8_000;

#[tokio::test]
async fn rsa_signatures_over_the_budget_are_refused_before_any_is_made() {
    let app = TestApp::new();
    app.write("transit/keys/r", json!({ "type": "rsa-2048" }))
        .await
        .ok();
    // (100,000 items would pass the count but not the parse budget of
    // 200,000 strings, which refuses first.)
    for n in [RSA_2048_PRIVATE_OPS + 1, 50_000] {
        let reply = app
            .write("transit/sign/r", json!({ "batch_input": inputs(n) }))
            .await
            .expect(400);
        assert!(
            reply.error().contains("at most 8000 items"),
            "{}",
            reply.body
        );
        assert!(reply.data().is_null(), "no item was served");
    }
    // The count alone is not the bound: as many HMACs with the same key are cheap.
    let hmacs = app
        .write(
            "transit/hmac/r",
            json!({ "batch_input": inputs(RSA_2048_PRIVATE_OPS + 1) }),
        )
        .await
        .ok();
    assert_eq!(
        hmacs.data()["batch_results"].as_array().unwrap().len(),
        RSA_2048_PRIVATE_OPS + 1
    );
}

#[tokio::test]
async fn rsa_decryption_is_weighed_as_private_key_work() {
    let app = TestApp::new();
    app.write("transit/keys/r", json!({ "type": "rsa-2048" }))
        .await
        .ok();
    let plaintexts: Vec<Value> = (0..=RSA_2048_PRIVATE_OPS)
        .map(|_| json!({ "plaintext": b64(b"x") }))
        .collect();
    // Encrypting is a public-key operation: this many fit.
    let sealed = app
        .write("transit/encrypt/r", json!({ "batch_input": plaintexts }))
        .await
        .ok();
    let ciphertexts: Vec<Value> = sealed.data()["batch_results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| json!({ "ciphertext": r["ciphertext"] }))
        .collect();
    for path in ["transit/decrypt/r", "transit/rewrap/r"] {
        let reply = app
            .write(path, json!({ "batch_input": ciphertexts }))
            .await
            .expect(400);
        assert!(reply.error().contains("rsa-2048"), "{path}: {}", reply.body);
    }
}

#[tokio::test]
async fn an_unaffordable_encrypt_batch_creates_no_key() {
    let app = TestApp::with_limits(Limits {
        max_batch_cpu_micros: 10,
        ..Limits::default()
    });
    let five = (0..5)
        .map(|_| json!({ "plaintext": b64(b"x") }))
        .collect::<Vec<_>>();
    let six = (0..6)
        .map(|_| json!({ "plaintext": b64(b"x") }))
        .collect::<Vec<_>>();
    app.write("transit/encrypt/new", json!({ "batch_input": six }))
        .await
        .expect(400);
    app.read("transit/keys/new").await.expect(404);
    app.write("transit/encrypt/new", json!({ "batch_input": five }))
        .await
        .ok();
}
