//! Script: encrypt, decrypt and rewrap, one request at a time.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;
use transitd_test_support::b64;

use super::harness::Script;
use super::{AEAD_TYPES, key};

pub(super) fn crypt(s: &mut Script<'_>) {
    s.section("crypt");
    let hello = b64(b"hello world");
    let aad = b64(b"aad-1");
    for t in AEAD_TYPES {
        let k = key(t);
        s.post(
            &format!("{t} encrypt"),
            &format!("transit/encrypt/{k}"),
            json!({"plaintext": hello}),
        )
        .save("ct", "/data/ciphertext")
        .go();
        s.post(
            &format!("{t} decrypt"),
            &format!("transit/decrypt/{k}"),
            json!({"ciphertext": "${ct}"}),
        )
        .go();
        s.post(
            &format!("{t} encrypt empty"),
            &format!("transit/encrypt/{k}"),
            json!({"plaintext": ""}),
        )
        .save("ct0", "/data/ciphertext")
        .go();
        s.post(
            &format!("{t} decrypt empty"),
            &format!("transit/decrypt/{k}"),
            json!({"ciphertext": "${ct0}"}),
        )
        .go();
        s.post(
            &format!("{t} encrypt with associated_data"),
            &format!("transit/encrypt/{k}"),
            json!({"plaintext": hello, "associated_data": aad}),
        )
        .save("cta", "/data/ciphertext")
        .go();
        s.post(
            &format!("{t} decrypt with associated_data"),
            &format!("transit/decrypt/{k}"),
            json!({"ciphertext": "${cta}", "associated_data": aad}),
        )
        .go();
        s.post(
            &format!("{t} decrypt with other associated_data"),
            &format!("transit/decrypt/{k}"),
            json!({"ciphertext": "${cta}", "associated_data": b64(b"aad-2")}),
        )
        .go();
        s.post(
            &format!("{t} decrypt without associated_data"),
            &format!("transit/decrypt/{k}"),
            json!({"ciphertext": "${cta}"}),
        )
        .go();
        s.set("ct_tampered", |v| {
            json!(tamper(v["ct"].as_str().unwrap_or_default()))
        });
        s.post(
            &format!("{t} decrypt tampered"),
            &format!("transit/decrypt/{k}"),
            json!({"ciphertext": "${ct_tampered}"}),
        )
        .go();
    }
    // RSA (OAEP)
    let k = key("rsa-2048");
    s.post(
        "rsa-2048 encrypt",
        &format!("transit/encrypt/{k}"),
        json!({"plaintext": hello}),
    )
    .save("ct", "/data/ciphertext")
    .go();
    s.post(
        "rsa-2048 decrypt",
        &format!("transit/decrypt/{k}"),
        json!({"ciphertext": "${ct}"}),
    )
    .go();
    s.post(
        "rsa-2048 encrypt with associated_data",
        &format!("transit/encrypt/{k}"),
        json!({"plaintext": hello, "associated_data": aad}),
    )
    .go();
    s.post(
        "rsa-2048 encrypt 300 bytes",
        &format!("transit/encrypt/{k}"),
        json!({"plaintext": b64(&[7u8; 300])}),
    )
    .go();
    for t in ["ed25519", "ecdsa-p256", "hmac", "mldsa-65"] {
        s.post(
            &format!("{t} encrypt refused"),
            &format!("transit/encrypt/{}", key(t)),
            json!({"plaintext": hello}),
        )
        .go();
        s.post(
            &format!("{t} decrypt refused"),
            &format!("transit/decrypt/{}", key(t)),
            json!({"ciphertext": "vault:v1:AAAA"}),
        )
        .go();
    }
    // §2.2 encrypt errors
    let k = key("aes256-gcm96");
    for (label, body) in [
        ("encrypt bad base64", json!({"plaintext": "!!notbase64"})),
        ("encrypt without plaintext", json!({})),
        (
            "encrypt key_version above latest",
            json!({"plaintext": hello, "key_version": 5}),
        ),
        (
            "encrypt negative key_version",
            json!({"plaintext": hello, "key_version": -1}),
        ),
        (
            "encrypt key_version as a string",
            json!({"plaintext": hello, "key_version": "1"}),
        ),
        (
            "encrypt key_version not a number",
            json!({"plaintext": hello, "key_version": "abc"}),
        ),
        (
            "encrypt unknown parameter",
            json!({"plaintext": hello, "nonce": "AAAA"}),
        ),
        (
            "encrypt bad associated_data base64",
            json!({"plaintext": hello, "associated_data": "***"}),
        ),
    ] {
        s.post(label, &format!("transit/encrypt/{k}"), body).go();
    }
    // §2.2 decrypt errors
    for (label, ct) in [
        ("decrypt no prefix", "garbage"),
        ("decrypt wrong number of fields", "vault:v1"),
        ("decrypt bad version", "vault:vX:AAAA"),
        ("decrypt version too new", "vault:v9:AAAA"),
        ("decrypt bad base64", "vault:v1:!!!"),
        ("decrypt too short", "vault:v1:AAAA"),
        ("decrypt negative version", "vault:v-1:AAAA"),
        ("decrypt version 0", "vault:v0:AAAA"),
        ("decrypt empty ciphertext", ""),
    ] {
        s.post(
            label,
            &format!("transit/decrypt/{k}"),
            json!({"ciphertext": ct}),
        )
        .go();
    }
    s.post(
        "decrypt without ciphertext",
        &format!("transit/decrypt/{k}"),
        json!({}),
    )
    .go();
    s.post(
        "decrypt with a missing key",
        "transit/decrypt/nokey",
        json!({"ciphertext": "vault:v1:AAAA"}),
    )
    .go();
    s.post(
        "decrypt bad context base64",
        &format!("transit/decrypt/{k}"),
        json!({"ciphertext": "vault:v1:AAAA", "context": "!!"}),
    )
    .go();
    // Upsert on encrypt
    s.post(
        "encrypt upserts",
        "transit/encrypt/upserted",
        json!({"plaintext": hello}),
    )
    .go();
    s.get("read upserted", "transit/keys/upserted").go();
    s.post(
        "encrypt upserts chacha20",
        "transit/encrypt/upserted-chacha",
        json!({"plaintext": hello, "type": "chacha20-poly1305"}),
    )
    .go();
    s.get("read upserted chacha20", "transit/keys/upserted-chacha")
        .go();
    s.post(
        "encrypt upserts derived",
        "transit/encrypt/upserted-derived",
        json!({"plaintext": hello, "context": b64(b"ctx-a")}),
    )
    .go();
    s.get("read upserted derived", "transit/keys/upserted-derived")
        .go();
    s.post(
        "encrypt upserts convergent",
        "transit/encrypt/upserted-conv",
        json!({"plaintext": hello, "context": b64(b"ctx-a"), "convergent_encryption": true}),
    )
    .go();
    s.get("read upserted convergent", "transit/keys/upserted-conv")
        .go();
    for (label, body) in [
        (
            "encrypt upsert ecdsa refused",
            json!({"plaintext": hello, "type": "ecdsa-p256"}),
        ),
        (
            "encrypt upsert rsa refused",
            json!({"plaintext": hello, "type": "rsa-2048"}),
        ),
        (
            "encrypt upsert convergent without context",
            json!({"plaintext": hello, "convergent_encryption": true}),
        ),
    ] {
        s.post(label, "transit/encrypt/not-upserted", body).go();
    }
    s.get("read not upserted", "transit/keys/not-upserted").go();
    // Derived and convergent
    let ctx_a = b64(b"ctx-a");
    let ctx_b = b64(b"ctx-b");
    s.post(
        "derived encrypt without context",
        "transit/encrypt/derived",
        json!({"plaintext": hello}),
    )
    .go();
    s.post(
        "derived encrypt",
        "transit/encrypt/derived",
        json!({"plaintext": hello, "context": ctx_a}),
    )
    .save("dct", "/data/ciphertext")
    .go();
    s.post(
        "derived decrypt",
        "transit/decrypt/derived",
        json!({"ciphertext": "${dct}", "context": ctx_a}),
    )
    .go();
    s.post(
        "derived decrypt with another context",
        "transit/decrypt/derived",
        json!({"ciphertext": "${dct}", "context": ctx_b}),
    )
    .go();
    s.post(
        "derived decrypt without context",
        "transit/decrypt/derived",
        json!({"ciphertext": "${dct}"}),
    )
    .go();
    for (i, ctx) in [(1, &ctx_a), (2, &ctx_a), (3, &ctx_b)] {
        s.post(
            &format!("convergent encrypt {i}"),
            "transit/encrypt/convergent",
            json!({"plaintext": hello, "context": ctx}),
        )
        .save(&format!("cv{i}"), "/data/ciphertext")
        .go();
    }
    s.check(
        "convergent is deterministic per context",
        |v| json!({"same context": v["cv1"] == v["cv2"], "other context": v["cv1"] == v["cv3"]}),
    );
    s.post(
        "convergent decrypt",
        "transit/decrypt/convergent",
        json!({"ciphertext": "${cv3}", "context": ctx_b}),
    )
    .go();
    // Versions: encrypt at versions, min versions, rewrap
    s.post("create rw", "transit/keys/rw", json!({})).go();
    s.post(
        "rw encrypt v1",
        "transit/encrypt/rw",
        json!({"plaintext": hello}),
    )
    .save("v1", "/data/ciphertext")
    .go();
    s.post(
        "rw encrypt v1 with associated_data",
        "transit/encrypt/rw",
        json!({"plaintext": hello, "associated_data": aad}),
    )
    .save("v1aad", "/data/ciphertext")
    .go();
    s.post("rw rotate", "transit/keys/rw/rotate", json!({}))
        .go();
    s.post(
        "rw encrypt at key_version 1",
        "transit/encrypt/rw",
        json!({"plaintext": hello, "key_version": 1}),
    )
    .go();
    s.post(
        "rewrap",
        "transit/rewrap/rw",
        json!({"ciphertext": "${v1}"}),
    )
    .save("v2", "/data/ciphertext")
    .go();
    s.post(
        "decrypt rewrapped",
        "transit/decrypt/rw",
        json!({"ciphertext": "${v2}"}),
    )
    .go();
    s.post(
        "rewrap at the latest version",
        "transit/rewrap/rw",
        json!({"ciphertext": "${v2}"}),
    )
    .save("v2b", "/data/ciphertext")
    .go();
    s.check("rewrap at the latest version re-encrypts", |v| {
        json!(v.get("v2b").is_some() && v.get("v2b") != v.get("v2"))
    });
    s.post(
        "rewrap to key_version 1",
        "transit/rewrap/rw",
        json!({"ciphertext": "${v2}", "key_version": 1}),
    )
    .go();
    s.post(
        "rewrap to key_version above latest",
        "transit/rewrap/rw",
        json!({"ciphertext": "${v1}", "key_version": 7}),
    )
    .go();
    s.post(
        "rewrap with associated_data",
        "transit/rewrap/rw",
        json!({"ciphertext": "${v1aad}", "associated_data": aad}),
    )
    .save("v2aad", "/data/ciphertext")
    .go();
    s.post(
        "decrypt rewrapped-with-aad ciphertext",
        "transit/decrypt/rw",
        json!({"ciphertext": "${v2aad}", "associated_data": aad}),
    )
    .go();
    s.post("rewrap without ciphertext", "transit/rewrap/rw", json!({}))
        .go();
    s.post(
        "rewrap with a missing key",
        "transit/rewrap/nokey",
        json!({"ciphertext": "${v1}"}),
    )
    .go();
    s.post(
        "rewrap garbage",
        "transit/rewrap/rw",
        json!({"ciphertext": "garbage"}),
    )
    .go();
    s.post(
        "rewrap derived without context",
        "transit/rewrap/derived",
        json!({"ciphertext": "${dct}"}),
    )
    .go();
    s.post(
        "rewrap derived",
        "transit/rewrap/derived",
        json!({"ciphertext": "${dct}", "context": ctx_a}),
    )
    .go();
    s.post(
        "rw config min versions 2",
        "transit/keys/rw/config",
        json!({"min_decryption_version": 2, "min_encryption_version": 2}),
    )
    .go();
    s.post(
        "decrypt too old",
        "transit/decrypt/rw",
        json!({"ciphertext": "${v1}"}),
    )
    .go();
    s.post(
        "rewrap too old",
        "transit/rewrap/rw",
        json!({"ciphertext": "${v1}"}),
    )
    .go();
    s.post(
        "encrypt below min_encryption_version",
        "transit/encrypt/rw",
        json!({"plaintext": hello, "key_version": 1}),
    )
    .go();
    s.post(
        "decrypt v2 still works",
        "transit/decrypt/rw",
        json!({"ciphertext": "${v2}"}),
    )
    .go();
    s.post(
        "rw trim to 2",
        "transit/keys/rw/trim",
        json!({"min_available_version": 2}),
    )
    .go();
    s.post(
        "decrypt trimmed version",
        "transit/decrypt/rw",
        json!({"ciphertext": "${v1}"}),
    )
    .go();
}

/// Flip the last payload byte of a `vault:vN:` ciphertext.
fn tamper(ct: &str) -> String {
    let Some((prefix, payload)) = ct.rsplit_once(':') else {
        return ct.to_owned();
    };
    let mut bytes = STANDARD.decode(payload).unwrap_or_default();
    if let Some(last) = bytes.last_mut() {
        *last ^= 1;
    }
    format!("{prefix}:{}", b64(&bytes))
}
