//! OpenBao 2.7.2's recorded outputs, replayed over HTTP.

use serde_json::{Value, json};

use super::{key, s};
use crate::support::{TestApp, b64};

fn vector(name: &str) -> Value {
    let path = format!(
        "{}/keys/tests/data/openbao-2.7.2/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// Restore the recorded OpenBao backup under `name`.
async fn restore(app: &TestApp, file: &str) -> Value {
    let v = vector(file);
    app.write(
        &format!("transit/restore/{file}"),
        json!({"backup": v["backup"]}),
    )
    .await
    .expect(204);
    v
}

fn options(record: &Value) -> serde_json::Map<String, Value> {
    let mut body = serde_json::Map::new();
    for field in [
        "input",
        "context",
        "hash_algorithm",
        "prehashed",
        "signature_algorithm",
        "salt_length",
        "marshaling_algorithm",
    ] {
        if let Some(value) = record.get(field) {
            body.insert(field.into(), value.clone());
        }
    }
    body
}

#[tokio::test]
async fn openbao_hmacs_match_over_http() {
    let app = TestApp::new();
    let mut checked = 0;
    for file in [
        "aes256-gcm96",
        "hmac-32",
        "hmac-64",
        "ecdsa-p256",
        "ed25519",
        "rsa-2048",
        "mldsa-44",
    ] {
        let v = restore(&app, file).await;
        for h in v["hmacs"].as_array().unwrap() {
            let res = app
                .write(
                    &format!("transit/hmac/{file}/{}", s(&h["algorithm"])),
                    json!({"input": h["input"], "key_version": h["key_version"]}),
                )
                .await
                .ok();
            assert_eq!(res.data()["hmac"], h["hmac"], "{file} {h}");
            let res = app
                .write(
                    &format!("transit/verify/{file}"),
                    json!({"input": h["input"], "hmac": h["hmac"], "hash_algorithm": h["algorithm"]}),
                )
                .await
                .ok();
            assert_eq!(res.data()["valid"], true, "{file} {h}");
            checked += 1;
        }
    }
    assert!(checked >= 7 * 36, "{checked}");
}

#[tokio::test]
async fn openbao_signatures_verify_over_http() {
    let app = TestApp::new();
    let mut verified = 0;
    for file in [
        "ecdsa-p256",
        "ecdsa-p384",
        "ecdsa-p521",
        "ed25519",
        "ed25519-derived",
        "rsa-2048",
        "mldsa-65",
    ] {
        let v = restore(&app, file).await;
        for record in v["signatures"].as_array().unwrap() {
            if record.get("error").is_some() {
                // Refused by OpenBao: refused here too, with a 400.
                let mut body = options(record);
                body.insert("key_version".into(), record["key_version"].clone());
                app.write(&format!("transit/sign/{file}"), Value::Object(body))
                    .await
                    .expect(400);
                continue;
            }
            let mut body = options(record);
            body.insert("signature".into(), record["signature"].clone());
            let res = app
                .write(&format!("transit/verify/{file}"), Value::Object(body))
                .await;
            let hash = record["hash_algorithm"].as_str().unwrap_or("sha2-256");
            let sha2 = ["sha2-256", "sha2-384", "sha2-512"].contains(&hash);
            if file.starts_with("rsa") && !sha2 {
                // README: RSA with SHA-1, SHA-224, SHA-3 or `none` is refused, clearly.
                let res = res.expect(400);
                assert!(res.error().contains("not supported"), "{}", res.error());
                continue;
            }
            assert_eq!(res.ok().data()["valid"], true, "{file} {record}");
            verified += 1;
            // Ed25519 is deterministic: our signature is OpenBao's, byte for byte.
            if file.starts_with("ed25519") {
                let mut body = options(record);
                body.insert("key_version".into(), record["key_version"].clone());
                let res = app
                    .write(&format!("transit/sign/{file}"), Value::Object(body))
                    .await
                    .ok();
                assert_eq!(res.data()["signature"], record["signature"], "{record}");
                if let Some(public) = record.get("public_key") {
                    assert_eq!(&res.data()["public_key"], public);
                }
            }
        }
    }
    assert!(verified > 250, "{verified}");
}

#[tokio::test]
async fn openbao_backup_round_trip_decrypts() {
    let app = TestApp::new();
    let v = restore(&app, "aes256-gcm96").await;
    for c in v["ciphertexts"].as_array().unwrap() {
        let res = app
            .write(
                "transit/decrypt/aes256-gcm96",
                json!({"ciphertext": c["ciphertext"], "associated_data": c["associated_data"]}),
            )
            .await
            .ok();
        assert_eq!(res.data()["plaintext"], c["plaintext"]);
    }
    // A signature made here verifies after a backup and restore elsewhere.
    key(
        &app,
        "ed",
        json!({"type": "ed25519", "exportable": true, "allow_plaintext_backup": true}),
    )
    .await;
    let sig = app
        .write("transit/sign/ed", json!({"input": b64(b"moved")}))
        .await
        .ok()
        .data()["signature"]
        .clone();
    let blob = app.read("transit/backup/ed").await.ok().data()["backup"].clone();
    let other = TestApp::new();
    other
        .write("transit/restore", json!({"backup": blob}))
        .await
        .expect(204);
    let res = other
        .write(
            "transit/verify/ed",
            json!({"input": b64(b"moved"), "signature": sig}),
        )
        .await
        .ok();
    assert_eq!(res.data()["valid"], true);
}
