//! Bare reference server for benches/load: `POST /v1/transit/encrypt/:name`
//! with `{"plaintext": "<base64>"}` answers a Vault-shaped
//! `{"data":{"ciphertext":"vault:v1:...","key_version":1}}`, AES-256-GCM with a
//! random 96-bit nonce (ring), exactly like transitd's hot path minus
//! everything that makes it a service: no token lookup, no policy check, no
//! audit, no key lookup by name, no request logging.
//!
//! Usage: transitd-bare-bench 127.0.0.1:PORT

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use serde::Deserialize;
use serde_json::{Value, json};

struct Key {
    aead: LessSafeKey,
    rng: SystemRandom,
}

#[derive(Deserialize)]
struct EncryptRequest {
    plaintext: String,
}

async fn encrypt(
    State(key): State<Arc<Key>>,
    Path(_name): Path<String>,
    Json(req): Json<EncryptRequest>,
) -> Result<Json<Value>, (StatusCode, Json<Value>)> {
    let bad = |m: &str| (StatusCode::BAD_REQUEST, Json(json!({ "errors": [m] })));
    let mut buf = B64
        .decode(req.plaintext.as_bytes())
        .map_err(|_| bad("plaintext is not base64"))?;
    let mut nonce = [0u8; NONCE_LEN];
    key.rng
        .fill(&mut nonce)
        .map_err(|_| bad("random source failed"))?;
    key.aead
        .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::empty(), &mut buf)
        .map_err(|_| bad("seal failed"))?;
    let mut out = Vec::with_capacity(NONCE_LEN + buf.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&buf);
    let ciphertext = format!("vault:v1:{}", B64.encode(&out));
    Ok(Json(
        json!({ "data": { "ciphertext": ciphertext, "key_version": 1 } }),
    ))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args()
        .nth(1)
        .ok_or("usage: transitd-bare-bench 127.0.0.1:PORT")?;
    let rng = SystemRandom::new();
    let mut raw = [0u8; 32];
    rng.fill(&mut raw).map_err(|_| "random source failed")?;
    let aead = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &raw).map_err(|_| "bad key")?);
    let key = Arc::new(Key { aead, rng });
    let app = Router::new()
        .route("/v1/transit/encrypt/{name}", post(encrypt))
        .route("/v1/sys/health", axum::routing::get(|| async { "{}" }))
        .with_state(key);
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    axum::serve(listener, app).await?;
    Ok(())
}
