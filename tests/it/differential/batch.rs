//! Script: batch encrypt/decrypt/rewrap and data keys.

use serde_json::{Value, json};
use transitd_test_support::b64;

use super::harness::Script;
use super::key;
use super::normalise::Norm;

pub(super) fn batch(s: &mut Script<'_>) {
    s.section("batch");
    let hello = b64(b"hello world");
    let k = key("aes256-gcm96");
    let enc = format!("transit/encrypt/{k}");
    let dec = format!("transit/decrypt/{k}");
    s.post(
        "encrypt",
        &enc,
        json!({"batch_input": [
            {"plaintext": hello, "reference": "a"},
            {"plaintext": b64(b"second")},
            {"plaintext": "", "reference": "empty"},
        ]}),
    )
    .save("c0", "/data/batch_results/0/ciphertext")
    .save("c1", "/data/batch_results/1/ciphertext")
    .go();
    s.post(
        "decrypt",
        &dec,
        json!({"batch_input": [
            {"ciphertext": "${c0}", "reference": "a"},
            {"ciphertext": "${c1}"},
        ]}),
    )
    .go();
    let partial = json!([
        {"plaintext": hello, "reference": "ok"},
        {"plaintext": "***", "reference": "bad"},
    ]);
    s.post(
        "encrypt partial failure",
        &enc,
        json!({"batch_input": partial}),
    )
    .go();
    s.post(
        "encrypt partial failure with code 207",
        &enc,
        json!({"batch_input": partial, "partial_failure_response_code": 207}),
    )
    .go();
    s.post(
        "encrypt all failed with code 207",
        &enc,
        json!({"batch_input": [{"plaintext": "***"}], "partial_failure_response_code": 207}),
    )
    .go();
    s.post(
        "encrypt partial failure with code 700",
        &enc,
        json!({"batch_input": partial, "partial_failure_response_code": 700}),
    )
    .go();
    s.post(
        "encrypt all ok with code 207",
        &enc,
        json!({"batch_input": [{"plaintext": hello}], "partial_failure_response_code": 207}),
    )
    .go();
    s.post(
        "encrypt item key_version too new",
        &enc,
        json!({"batch_input": [{"plaintext": hello, "key_version": 9}]}),
    )
    .go();
    s.post("encrypt empty batch", &enc, json!({"batch_input": []}))
        .go();
    s.post(
        "encrypt mixed context",
        &enc,
        json!({"batch_input": [{"plaintext": hello, "context": b64(b"c")}, {"plaintext": hello}]}),
    )
    .go();
    s.post(
        "encrypt item without plaintext",
        &enc,
        json!({"batch_input": [{"plaintext": hello}, {"reference": "noplain"}]}),
    )
    .go();
    s.post(
        "encrypt string key_version in item",
        &enc,
        json!({"batch_input": [{"plaintext": hello, "key_version": "1"}]}),
    )
    .go();
    s.post(
        "encrypt batch_input not an array",
        &enc,
        json!({"batch_input": "notarray"}),
    )
    .go();
    s.post(
        "encrypt batch_input items not objects",
        &enc,
        json!({"batch_input": [1, 2]}),
    )
    .go();
    s.post(
        "encrypt batch ignores single plaintext",
        &enc,
        json!({"plaintext": "***", "batch_input": [{"plaintext": hello}]}),
    )
    .go();
    let items: Vec<Value> = (0..499).map(|_| json!({"plaintext": hello})).collect();
    s.post("encrypt 499 items", &enc, json!({"batch_input": items}))
        .go();
    let items: Vec<Value> = (0..500).map(|_| json!({"plaintext": hello})).collect();
    s.post("encrypt 500 items", &enc, json!({"batch_input": items}))
        .go();
    s.post(
        "encrypt upserts a key",
        "transit/encrypt/batch-upserted",
        json!({"batch_input": [{"plaintext": hello}]}),
    )
    .go();
    s.post(
        "encrypt upserts a derived key",
        "transit/encrypt/batch-upserted-derived",
        json!({"batch_input": [{"plaintext": hello, "context": b64(b"c")}]}),
    )
    .go();
    s.get(
        "read batch-upserted-derived",
        "transit/keys/batch-upserted-derived",
    )
    .go();
    // decrypt
    let failing = json!([
        {"ciphertext": "${c0}", "reference": "r1"},
        {"ciphertext": "vault:v1:AAAA", "reference": "r2"},
        {"ciphertext": "nope"},
    ]);
    s.post(
        "decrypt partial failure",
        &dec,
        json!({"batch_input": failing}),
    )
    .go();
    s.post(
        "decrypt partial failure with code 200",
        &dec,
        json!({"batch_input": failing, "partial_failure_response_code": 200}),
    )
    .go();
    s.post(
        "decrypt empty ciphertext item",
        &dec,
        json!({"batch_input": [{"ciphertext": "${c0}"}, {"ciphertext": ""}]}),
    )
    .go();
    s.post(
        "decrypt item without ciphertext",
        &dec,
        json!({"batch_input": [{"ciphertext": "${c0}"}, {"reference": "nocipher"}]}),
    )
    .go();
    s.post(
        "decrypt with a missing key",
        "transit/decrypt/nokey",
        json!({"batch_input": [{"ciphertext": "${c0}"}]}),
    )
    .go();
    s.post("decrypt empty batch", &dec, json!({"batch_input": []}))
        .go();
    // derived
    s.post(
        "encrypt derived",
        "transit/encrypt/derived",
        json!({"batch_input": [
            {"plaintext": hello, "context": b64(b"x")},
            {"plaintext": hello, "context": b64(b"y"), "reference": "y"},
        ]}),
    )
    .save("d0", "/data/batch_results/0/ciphertext")
    .go();
    s.post(
        "decrypt derived with wrong and right context",
        "transit/decrypt/derived",
        json!({"batch_input": [
            {"ciphertext": "${d0}", "context": b64(b"x")},
            {"ciphertext": "${d0}", "context": b64(b"y")},
        ]}),
    )
    .go();
    // rewrap: 200 even with failed items, no partial_failure_response_code
    s.post(
        "rewrap with a failing item",
        &format!("transit/rewrap/{k}"),
        json!({"batch_input": [
            {"ciphertext": "${c0}", "reference": "x"},
            {"ciphertext": "vault:v1:AAAA", "reference": "y"},
        ]}),
    )
    .go();
    s.post(
        "rewrap ignores partial_failure_response_code",
        &format!("transit/rewrap/{k}"),
        json!({"batch_input": [{"ciphertext": "${c0}"}], "partial_failure_response_code": 207}),
    )
    .go();
    s.post(
        "rewrap empty batch",
        &format!("transit/rewrap/{k}"),
        json!({"batch_input": []}),
    )
    .go();
}

pub(super) fn datakey(s: &mut Script<'_>) {
    s.section("datakey");
    let k = key("aes256-gcm96");
    s.post(
        "plaintext",
        &format!("transit/datakey/plaintext/{k}"),
        json!({}),
    )
    .norm("/data/plaintext", Norm::Opaque)
    .save("wrapped", "/data/ciphertext")
    .save("key", "/data/plaintext")
    .go();
    s.post(
        "decrypt the wrapped key",
        &format!("transit/decrypt/{k}"),
        json!({"ciphertext": "${wrapped}"}),
    )
    .save("unwrapped", "/data/plaintext")
    .norm("/data/plaintext", Norm::Opaque)
    .go();
    s.check("the wrapped key is the plaintext key", |v| {
        json!(v.get("key").is_some() && v.get("key") == v.get("unwrapped"))
    });
    for bits in [128, 256, 512] {
        s.post(
            &format!("wrapped {bits} bits"),
            &format!("transit/datakey/wrapped/{k}"),
            json!({"bits": bits}),
        )
        .go();
    }
    s.post(
        "plaintext 512 bits as a string",
        &format!("transit/datakey/plaintext/{k}"),
        json!({"bits": "512"}),
    )
    .norm("/data/plaintext", Norm::Opaque)
    .go();
    s.post(
        "bits 192",
        &format!("transit/datakey/wrapped/{k}"),
        json!({"bits": 192}),
    )
    .go();
    s.post(
        "bogus kind",
        &format!("transit/datakey/bogus/{k}"),
        json!({}),
    )
    .go();
    s.post("missing key", "transit/datakey/plaintext/nokey", json!({}))
        .go();
    s.post(
        "rsa-2048",
        &format!("transit/datakey/plaintext/{}", key("rsa-2048")),
        json!({"bits": 128}),
    )
    .norm("/data/plaintext", Norm::Opaque)
    .go();
    s.post(
        "ecdsa refused",
        &format!("transit/datakey/plaintext/{}", key("ecdsa-p256")),
        json!({}),
    )
    .go();
    s.post(
        "derived without context",
        "transit/datakey/plaintext/derived",
        json!({}),
    )
    .go();
    s.post(
        "derived with context",
        "transit/datakey/wrapped/derived",
        json!({"context": b64(b"ctx-a")}),
    )
    .go();
    s.post(
        "with associated_data",
        &format!("transit/datakey/wrapped/{k}"),
        json!({"associated_data": b64(b"aad")}),
    )
    .save("wrapped_aad", "/data/ciphertext")
    .go();
    s.post(
        "decrypt the aad-bound wrapped key",
        &format!("transit/decrypt/{k}"),
        json!({"ciphertext": "${wrapped_aad}", "associated_data": b64(b"aad")}),
    )
    .norm("/data/plaintext", Norm::Opaque)
    .go();
    s.post(
        "key_version too new",
        &format!("transit/datakey/wrapped/{k}"),
        json!({"key_version": 9}),
    )
    .go();
    s.post(
        "with key_version 3",
        "transit/datakey/wrapped/ver",
        json!({"key_version": 3}),
    )
    .go();
}
