//! hmac / sign / verify through the router, including OpenBao's recorded outputs.

mod hmac;
mod openbao_replay;
mod sign;

use serde_json::Value;

use crate::support::TestApp;

const HELLO: &str = "aGVsbG8="; // "hello"

async fn key(app: &TestApp, name: &str, body: Value) {
    app.write(&format!("transit/keys/{name}"), body).await.ok();
}

fn s(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_owned()
}
