//! The in-process request path: router + JSON parsing + auth + keyring + reply,
//! with no socket. Compare with `keys/benches/keyring.rs` for the keyring alone.
// A bench that cannot set itself up should stop loudly.
#![allow(clippy::expect_used)]

use std::sync::Arc;

use axum::body::Body;
use axum::http::Request;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use http_body_util::BodyExt;
use tower::ServiceExt;
use transitd::{AppState, Limits};

fn request(path: &str, body: &str) -> Request<Body> {
    Request::builder()
        .method("POST")
        .uri(path)
        .header("X-Vault-Token", "root")
        .header("content-type", "application/json")
        .body(Body::from(body.to_owned()))
        .expect("valid request")
}

fn bench_encrypt(c: &mut Criterion) {
    // The request path uses tokio's timer (body read timeout).
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let app = transitd::app(Arc::new(AppState::dev("root", Limits::default())));
    let call = |path: &str, body: &str| {
        let app = app.clone();
        let req = request(path, body);
        runtime.block_on(async move {
            let res = app.oneshot(req).await.expect("infallible");
            res.into_body().collect().await.expect("body").to_bytes()
        })
    };
    call("/v1/transit/keys/bench", "{}");
    let plaintext_64 = base64_of(&[7u8; 64]);
    let encrypt_body = format!(r#"{{"plaintext":"{plaintext_64}"}}"#);
    let reply = call("/v1/transit/encrypt/bench", &encrypt_body);
    let reply: serde_json::Value = serde_json::from_slice(&reply).expect("json");
    let ciphertext = reply["data"]["ciphertext"]
        .as_str()
        .expect("ciphertext")
        .to_owned();
    let decrypt_body = format!(r#"{{"ciphertext":"{ciphertext}"}}"#);

    let mut group = c.benchmark_group("http/aes256-gcm96");
    group.throughput(Throughput::Elements(1));
    group.bench_function("encrypt 64B", |b| {
        b.iter(|| call("/v1/transit/encrypt/bench", &encrypt_body))
    });
    group.bench_function("decrypt 64B", |b| {
        b.iter(|| call("/v1/transit/decrypt/bench", &decrypt_body))
    });
    let items: Vec<String> = (0..250)
        .map(|_| format!(r#"{{"plaintext":"{plaintext_64}"}}"#))
        .collect();
    let batch_body = format!(r#"{{"batch_input":[{}]}}"#, items.join(","));
    group.throughput(Throughput::Elements(250));
    group.bench_function("batch encrypt 250x64B", |b| {
        b.iter(|| call("/v1/transit/encrypt/bench", &batch_body))
    });
    group.finish();
}

fn base64_of(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

criterion_group!(benches, bench_encrypt);
criterion_main!(benches);
