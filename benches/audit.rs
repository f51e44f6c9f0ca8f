//! The audit path: formatting entries (HMACs of tokens and data, JSON), and
//! the in-process request path with a file audit device on tmpfs (so the
//! fsyncs cost next to nothing and the CPU and thread hand-offs show), for a
//! single 64-byte encrypt and a batch of 250.
// A bench that cannot set itself up should stop loudly.
#![allow(clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Body;
use axum::http::Request;
use base64::Engine as _;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use time::OffsetDateTime;
use tower::ServiceExt;
use transitd::audit::format::format_record;
use transitd::audit::{AuditRecord, AuthInfo, FormatOptions, Kind, RequestInfo, ResponseInfo};
use transitd::{AppState, Limits};

const SALT: &[u8] = b"4a5b2b5e-6c1f-4e7e-9a2b-0f3d2c1b0a99";

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// What the request path records for an encrypt with the root token.
fn record(kind: Kind, request_data: Value, response_data: Value) -> AuditRecord {
    AuditRecord {
        kind,
        time: OffsetDateTime::now_utc(),
        auth: Some(AuthInfo {
            client_token: "hvs.CAESIJRdaFq2cVrT6dK7zvqJp1QWvQ2pY9xk3Hf0".to_owned(),
            accessor: "Xb3dnM2Xq9aTQx7Vh3bKkQ0e".to_owned(),
            display_name: "root".to_owned(),
            policies: vec!["root".to_owned()],
            token_policies: vec!["root".to_owned()],
            metadata: BTreeMap::new(),
            entity_id: String::new(),
            token_type: "service".to_owned(),
            token_ttl: 0,
            token_issue_time: Some(OffsetDateTime::UNIX_EPOCH),
        }),
        request: RequestInfo {
            id: "6f0c3b0e-1111-4222-8333-444455556666".to_owned(),
            operation: "update".to_owned(),
            mount_point: "transit/".to_owned(),
            mount_type: "transit".to_owned(),
            mount_accessor: "transit_1234abcd".to_owned(),
            client_token: "hvs.CAESIJRdaFq2cVrT6dK7zvqJp1QWvQ2pY9xk3Hf0".to_owned(),
            client_token_accessor: "Xb3dnM2Xq9aTQx7Vh3bKkQ0e".to_owned(),
            path: "transit/encrypt/bench".to_owned(),
            data: request_data,
            remote_address: "127.0.0.1".to_owned(),
            remote_port: 54321,
        },
        response: (kind == Kind::Response).then(|| ResponseInfo {
            data: response_data,
            warnings: Vec::new(),
            redirect: String::new(),
        }),
        error: None,
    }
}

fn bench_format(c: &mut Criterion) {
    let plaintext = b64(&[7u8; 64]);
    let ciphertext = format!("vault:v1:{}", b64(&[9u8; 92]));
    let single_in = json!({ "plaintext": plaintext });
    let single_out = json!({ "ciphertext": ciphertext, "key_version": 1 });
    let batch_in = json!({
        "batch_input": (0..250).map(|_| json!({ "plaintext": plaintext })).collect::<Vec<_>>()
    });
    let batch_out = json!({
        "batch_results": (0..250)
            .map(|_| json!({ "ciphertext": ciphertext, "key_version": 1, "reference": "" }))
            .collect::<Vec<_>>()
    });
    let options = FormatOptions::default();
    let mut group = c.benchmark_group("audit/format");
    group.throughput(Throughput::Elements(1));
    for (name, rec) in [
        (
            "encrypt 64B request entry",
            record(Kind::Request, single_in.clone(), Value::Null),
        ),
        (
            "encrypt 64B response entry",
            record(Kind::Response, single_in, single_out),
        ),
        (
            "batch 250 request entry",
            record(Kind::Request, batch_in.clone(), Value::Null),
        ),
        (
            "batch 250 response entry",
            record(Kind::Response, batch_in, batch_out),
        ),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| format_record(&rec, SALT, options).expect("formats"))
        });
    }
    group.finish();
}

fn request(method: &str, path: &str, body: String) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(path)
        .header("X-Vault-Token", "root")
        .header("content-type", "application/json")
        .body(Body::from(body))
        .expect("valid request")
}

fn bench_http(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let app = transitd::app(Arc::new(AppState::dev("root", Limits::default())));
    let call = |method: &str, path: &str, body: &str| {
        let app = app.clone();
        let req = request(method, path, body.to_owned());
        runtime.block_on(async move {
            let res = app.oneshot(req).await.expect("infallible");
            let status = res.status();
            let bytes = res.into_body().collect().await.expect("body").to_bytes();
            assert!(status.is_success(), "{status} {bytes:?}");
            bytes
        })
    };
    // tmpfs when there is one: fsync is then nearly free.
    let dir = if std::path::Path::new("/dev/shm").is_dir() {
        tempfile::tempdir_in("/dev/shm")
    } else {
        tempfile::tempdir()
    }
    .expect("temporary directory");
    let log = dir.path().join("audit.log");
    call(
        "POST",
        "/v1/sys/audit/file",
        &json!({ "type": "file", "options": { "file_path": log.display().to_string() } })
            .to_string(),
    );
    call("POST", "/v1/transit/keys/bench", "{}");
    let plaintext = b64(&[7u8; 64]);
    let encrypt_body = json!({ "plaintext": plaintext }).to_string();
    let reply: Value =
        serde_json::from_slice(&call("POST", "/v1/transit/encrypt/bench", &encrypt_body))
            .expect("json");
    let ciphertext = reply["data"]["ciphertext"].as_str().expect("ciphertext");
    let decrypt_body = json!({ "ciphertext": ciphertext }).to_string();
    let batch_body = json!({
        "batch_input": (0..250).map(|_| json!({ "plaintext": plaintext })).collect::<Vec<_>>()
    })
    .to_string();

    let mut group = c.benchmark_group("audit/http+file device (tmpfs)");
    group.throughput(Throughput::Elements(1));
    group.bench_function("encrypt 64B", |b| {
        b.iter(|| call("POST", "/v1/transit/encrypt/bench", &encrypt_body))
    });
    group.bench_function("decrypt 64B", |b| {
        b.iter(|| call("POST", "/v1/transit/decrypt/bench", &decrypt_body))
    });
    group.throughput(Throughput::Elements(250));
    group.bench_function("batch encrypt 250x64B", |b| {
        b.iter(|| call("POST", "/v1/transit/encrypt/bench", &batch_body))
    });
    group.finish();
}

criterion_group!(benches, bench_format, bench_http);
criterion_main!(benches);
