//! Script: HMAC and sign/verify.

use serde_json::json;
use transitd_test_support::b64;

use super::harness::Script;
use super::normalise::Norm;
use super::{HASHES, KEY_TYPES, SIGNING_TYPES, key};

pub(super) fn hmac(s: &mut Script<'_>) {
    s.section("hmac");
    let hello = b64(b"hello world");
    for t in KEY_TYPES {
        s.post(
            t,
            &format!("transit/hmac/{}", key(t)),
            json!({"input": hello}),
        )
        .go();
    }
    let k = key("hmac");
    for alg in HASHES.iter().chain(&["sha1"]) {
        s.post(
            &format!("hmac key {alg} in the URL"),
            &format!("transit/hmac/{k}/{alg}"),
            json!({"input": hello}),
        )
        .save(&format!("mac-{alg}"), "/data/hmac")
        .go();
        s.post(
            &format!("verify {alg}"),
            &format!("transit/verify/{k}/{alg}"),
            json!({"input": hello, "hmac": format!("${{mac-{alg}}}")}),
        )
        .go();
    }
    s.post(
        "algorithm in the body",
        &format!("transit/hmac/{k}"),
        json!({"input": hello, "algorithm": "sha2-512"}),
    )
    .save("mac-body", "/data/hmac")
    .go();
    s.check("body and URL algorithm agree", |v| {
        json!(v.get("mac-body").is_some() && v.get("mac-body") == v.get("mac-sha2-512"))
    });
    s.post(
        "again",
        &format!("transit/hmac/{k}/sha2-512"),
        json!({"input": hello}),
    )
    .save("mac-again", "/data/hmac")
    .go();
    s.check("hmac is deterministic", |v| {
        json!(v.get("mac-again").is_some() && v.get("mac-again") == v.get("mac-sha2-512"))
    });
    s.post(
        "verify a wrong input",
        &format!("transit/verify/{k}/sha2-256"),
        json!({"input": b64(b"other"), "hmac": "${mac-sha2-256}"}),
    )
    .go();
    s.post(
        "verify with the wrong algorithm",
        &format!("transit/verify/{k}/sha2-512"),
        json!({"input": hello, "hmac": "${mac-sha2-256}"}),
    )
    .go();
    s.post(
        "verify hash_algorithm in the body",
        &format!("transit/verify/{k}"),
        json!({"input": hello, "hmac": "${mac-sha2-512}", "hash_algorithm": "sha2-512"}),
    )
    .go();
    for (label, path, body) in [
        (
            "unknown algorithm",
            format!("transit/hmac/{k}/md5"),
            json!({"input": hello}),
        ),
        ("missing input", format!("transit/hmac/{k}"), json!({})),
        (
            "bad base64 input",
            format!("transit/hmac/{k}"),
            json!({"input": "***"}),
        ),
        (
            "missing key",
            "transit/hmac/nokey".to_owned(),
            json!({"input": hello}),
        ),
        (
            "key_version too new",
            format!("transit/hmac/{k}"),
            json!({"input": hello, "key_version": 9}),
        ),
        (
            "key_version below min_encryption_version",
            "transit/hmac/rw".to_owned(),
            json!({"input": hello, "key_version": 1}),
        ),
        (
            "key_version 2 of rw",
            "transit/hmac/rw".to_owned(),
            json!({"input": hello, "key_version": 2}),
        ),
        (
            "verify no prefix",
            format!("transit/verify/{k}"),
            json!({"input": hello, "hmac": "garbage"}),
        ),
        (
            "verify version too new",
            format!("transit/verify/{k}"),
            json!({"input": hello, "hmac": "vault:v9:AAAA"}),
        ),
        (
            "verify bad base64",
            format!("transit/verify/{k}"),
            json!({"input": hello, "hmac": "vault:v1:!!!"}),
        ),
        (
            "verify too old",
            "transit/verify/rw".to_owned(),
            json!({"input": hello, "hmac": "vault:v1:AAAA"}),
        ),
        (
            "verify with neither signature nor hmac",
            format!("transit/verify/{k}"),
            json!({"input": hello}),
        ),
        (
            "verify missing key",
            "transit/verify/nokey".to_owned(),
            json!({"input": hello, "hmac": "vault:v1:AAAA"}),
        ),
    ] {
        s.post(label, &path, body).go();
    }
    s.post(
        "batch",
        &format!("transit/hmac/{k}"),
        json!({"batch_input": [
            {"input": hello, "reference": "a"},
            {"input": "***", "reference": "b"},
            {"input": b64(b"x")},
        ]}),
    )
    .save("b0", "/data/batch_results/0/hmac")
    .go();
    s.post(
        "batch verify",
        &format!("transit/verify/{k}"),
        json!({"batch_input": [
            {"input": hello, "hmac": "${b0}", "reference": "ok"},
            {"input": b64(b"other"), "hmac": "${b0}", "reference": "bad"},
            {"input": hello, "hmac": "vault:v9:AAAA", "reference": "err"},
        ]}),
    )
    .go();
    s.post(
        "batch verify mixing hmac and signature",
        &format!("transit/verify/{k}"),
        json!({"batch_input": [
            {"input": hello, "hmac": "${b0}"},
            {"input": hello, "signature": "vault:v1:AAAA"},
        ]}),
    )
    .go();
    s.post(
        "empty batch",
        &format!("transit/hmac/{k}"),
        json!({"batch_input": []}),
    )
    .go();
    s.get("GET on hmac", &format!("transit/hmac/{k}")).go();
}

pub(super) fn sign(s: &mut Script<'_>) {
    s.section("sign");
    let hello = b64(b"hello world");
    let other = b64(b"hello world!");
    for t in SIGNING_TYPES {
        let k = key(t);
        s.post(
            &format!("{t} sign"),
            &format!("transit/sign/{k}"),
            json!({"input": hello}),
        )
        .save("sig", "/data/signature")
        .go();
        s.post(
            &format!("{t} verify"),
            &format!("transit/verify/{k}"),
            json!({"input": hello, "signature": "${sig}"}),
        )
        .go();
        s.post(
            &format!("{t} verify another input"),
            &format!("transit/verify/{k}"),
            json!({"input": other, "signature": "${sig}"}),
        )
        .go();
        s.post(
            &format!("{t} sign jws"),
            &format!("transit/sign/{k}"),
            json!({"input": hello, "marshaling_algorithm": "jws"}),
        )
        .save("jws", "/data/signature")
        .norm("/data/signature", Norm::Jws)
        .go();
        s.post(
            &format!("{t} verify jws"),
            &format!("transit/verify/{k}"),
            json!({"input": hello, "signature": "${jws}", "marshaling_algorithm": "jws"}),
        )
        .go();
    }
    // ECDSA: hashes, prehashed, jws verified as asn1, bad DER.
    let k = key("ecdsa-p256");
    for alg in HASHES {
        s.post(
            &format!("ecdsa-p256 {alg}"),
            &format!("transit/sign/{k}/{alg}"),
            json!({"input": hello}),
        )
        .save("sig", "/data/signature")
        .go();
        s.post(
            &format!("ecdsa-p256 verify {alg}"),
            &format!("transit/verify/{k}"),
            json!({"input": hello, "signature": "${sig}", "hash_algorithm": alg}),
        )
        .go();
    }
    let digest = b64(&[0x5a; 32]);
    s.post(
        "ecdsa-p256 prehashed",
        &format!("transit/sign/{k}"),
        json!({"input": digest, "prehashed": true}),
    )
    .save("pre", "/data/signature")
    .go();
    s.post(
        "ecdsa-p256 verify prehashed",
        &format!("transit/verify/{k}"),
        json!({"input": digest, "prehashed": true, "signature": "${pre}"}),
    )
    .go();
    s.post(
        "ecdsa-p256 verify jws as asn1",
        &format!("transit/verify/{k}"),
        json!({"input": hello, "signature": "${jws}"}),
    )
    .go();
    s.post(
        "ecdsa-p256 verify a bad DER signature",
        &format!("transit/verify/{k}"),
        json!({"input": hello, "signature": "vault:v1:AAAA"}),
    )
    .go();
    s.post(
        "ecdsa-p384 sha2-384",
        &format!("transit/sign/{}/sha2-384", key("ecdsa-p384")),
        json!({"input": hello}),
    )
    .go();
    s.post(
        "ecdsa-p521 sha2-512 jws",
        &format!("transit/sign/{}/sha2-512", key("ecdsa-p521")),
        json!({"input": hello, "marshaling_algorithm": "jws"}),
    )
    .norm("/data/signature", Norm::Jws)
    .go();
    // Ed25519: deterministic, options ignored.
    let k = key("ed25519");
    s.post(
        "ed25519 sign again",
        &format!("transit/sign/{k}"),
        json!({"input": hello}),
    )
    .save("ed1", "/data/signature")
    .go();
    s.post(
        "ed25519 sign with sha2-512 and prehashed (ignored)",
        &format!("transit/sign/{k}/sha2-512"),
        json!({"input": hello, "prehashed": true}),
    )
    .save("ed2", "/data/signature")
    .go();
    s.check("ed25519 is deterministic and ignores hash options", |v| {
        json!(v.get("ed1").is_some() && v.get("ed1") == v.get("ed2"))
    });
    s.post(
        "derived ed25519 without context",
        "transit/sign/derived-ed",
        json!({"input": hello}),
    )
    .go();
    s.post(
        "derived ed25519 with context",
        "transit/sign/derived-ed",
        json!({"input": hello, "context": b64(b"ctx-a")}),
    )
    .save("dsig", "/data/signature")
    .go();
    s.post(
        "derived ed25519 verify",
        "transit/verify/derived-ed",
        json!({"input": hello, "context": b64(b"ctx-a"), "signature": "${dsig}"}),
    )
    .go();
    s.post(
        "derived ed25519 verify with another context",
        "transit/verify/derived-ed",
        json!({"input": hello, "context": b64(b"ctx-b"), "signature": "${dsig}"}),
    )
    .go();
    // RSA options.
    let k = key("rsa-2048");
    for (label, alg, body) in [
        (
            "rsa pkcs1v15",
            "sha2-256",
            json!({"signature_algorithm": "pkcs1v15"}),
        ),
        (
            "rsa pss salt hash",
            "sha2-384",
            json!({"salt_length": "hash"}),
        ),
        (
            "rsa pss salt 32 = digest length",
            "sha2-256",
            json!({"salt_length": 32}),
        ),
        (
            "rsa pss salt 64 as a string",
            "sha2-512",
            json!({"salt_length": "64"}),
        ),
        (
            "rsa pss salt auto",
            "sha2-512",
            json!({"salt_length": "auto", "signature_algorithm": "pss"}),
        ),
        (
            "rsa pkcs1v15 sha2-512",
            "sha2-512",
            json!({"signature_algorithm": "pkcs1v15"}),
        ),
    ] {
        let mut sign_body = body.clone();
        sign_body["input"] = json!(hello);
        s.post(label, &format!("transit/sign/{k}/{alg}"), sign_body)
            .save("rs", "/data/signature")
            .go();
        let mut verify_body = body;
        verify_body["input"] = json!(hello);
        verify_body["signature"] = json!("${rs}");
        s.post(
            &format!("{label} verify"),
            &format!("transit/verify/{k}/{alg}"),
            verify_body,
        )
        .go();
    }
    s.post(
        "rsa pkcs1v15 is deterministic",
        &format!("transit/sign/{k}/sha2-512"),
        json!({"input": hello, "signature_algorithm": "pkcs1v15"}),
    )
    .save("rs2", "/data/signature")
    .go();
    s.check("rsa pkcs1v15 signatures repeat", |v| {
        json!(v.get("rs2").is_some() && v.get("rs") == v.get("rs2"))
    });
    s.post(
        "rsa pss salt 20",
        &format!("transit/sign/{k}/sha2-256"),
        json!({"input": hello, "salt_length": 20}),
    )
    .go();
    // §2.7 errors
    for (label, path, body) in [
        (
            "md5",
            format!("transit/sign/{}", key("ecdsa-p256")),
            json!({"input": hello, "hash_algorithm": "md5"}),
        ),
        (
            "der marshaling",
            format!("transit/sign/{}", key("ecdsa-p256")),
            json!({"input": hello, "marshaling_algorithm": "der"}),
        ),
        (
            "hash none without prehashed",
            format!("transit/sign/{k}"),
            json!({"input": hello, "hash_algorithm": "none"}),
        ),
        (
            "salt_length abc",
            format!("transit/sign/{k}"),
            json!({"input": hello, "salt_length": "abc"}),
        ),
        (
            "salt_length 1000",
            format!("transit/sign/{k}"),
            json!({"input": hello, "salt_length": 1000}),
        ),
        (
            "signature_algorithm foo",
            format!("transit/sign/{k}"),
            json!({"input": hello, "signature_algorithm": "foo"}),
        ),
        (
            "rsa sha1",
            format!("transit/sign/{k}/sha1"),
            json!({"input": hello}),
        ),
        (
            "rsa sha2-224",
            format!("transit/sign/{k}/sha2-224"),
            json!({"input": hello}),
        ),
        (
            "rsa sha3-256",
            format!("transit/sign/{k}/sha3-256"),
            json!({"input": hello}),
        ),
        (
            "rsa none prehashed pkcs1v15",
            format!("transit/sign/{k}/none"),
            json!({"input": digest, "prehashed": true, "signature_algorithm": "pkcs1v15"}),
        ),
        (
            "aes key",
            format!("transit/sign/{}", key("aes256-gcm96")),
            json!({"input": hello}),
        ),
        (
            "hmac key",
            format!("transit/sign/{}", key("hmac")),
            json!({"input": hello}),
        ),
        (
            "missing key",
            "transit/sign/nokey".to_owned(),
            json!({"input": hello}),
        ),
        (
            "key_version too new",
            format!("transit/sign/{}", key("ed25519")),
            json!({"input": hello, "key_version": 5}),
        ),
        (
            "missing input signs the empty message",
            format!("transit/sign/{}", key("ed25519")),
            json!({}),
        ),
        (
            "bad base64 input",
            format!("transit/sign/{}", key("ed25519")),
            json!({"input": "***"}),
        ),
        (
            "verify no prefix",
            format!("transit/verify/{}", key("ed25519")),
            json!({"input": hello, "signature": "garbage"}),
        ),
        (
            "verify version too new",
            format!("transit/verify/{}", key("ed25519")),
            json!({"input": hello, "signature": "vault:v9:AAAA"}),
        ),
        (
            "verify bad base64",
            format!("transit/verify/{}", key("ed25519")),
            json!({"input": hello, "signature": "vault:v1:!!!"}),
        ),
        (
            "verify missing key",
            "transit/verify/nokey".to_owned(),
            json!({"input": hello, "signature": "vault:v1:AAAA"}),
        ),
        (
            "verify with an aes key",
            format!("transit/verify/{}", key("aes256-gcm96")),
            json!({"input": hello, "signature": "vault:v1:AAAA"}),
        ),
    ] {
        s.post(label, &path, body).go();
    }
    // Batch
    let k = key("ecdsa-p256");
    s.post(
        "batch",
        &format!("transit/sign/{k}"),
        json!({"batch_input": [
            {"input": hello, "reference": "a"},
            {"input": "***", "reference": "b"},
        ]}),
    )
    .save("bs", "/data/batch_results/0/signature")
    .go();
    s.post(
        "batch verify",
        &format!("transit/verify/{k}"),
        json!({"batch_input": [
            {"input": hello, "signature": "${bs}", "reference": "ok"},
            {"input": other, "signature": "${bs}", "reference": "bad"},
            {"input": hello, "signature": "garbage", "reference": "err"},
        ]}),
    )
    .go();
    s.post(
        "batch derived ed25519",
        "transit/sign/derived-ed",
        json!({"batch_input": [{"input": hello, "context": b64(b"ctx-a")}]}),
    )
    .go();
    // key versions
    s.post(
        "rotate ecdsa",
        &format!("transit/keys/{k}/rotate"),
        json!({}),
    )
    .go();
    s.post(
        "sign at v1",
        &format!("transit/sign/{k}"),
        json!({"input": hello, "key_version": 1}),
    )
    .save("sv1", "/data/signature")
    .go();
    s.post(
        "sign at latest",
        &format!("transit/sign/{k}"),
        json!({"input": hello}),
    )
    .go();
    s.post(
        "config min_decryption_version 2",
        &format!("transit/keys/{k}/config"),
        json!({"min_decryption_version": 2}),
    )
    .go();
    s.post(
        "verify too old",
        &format!("transit/verify/{k}"),
        json!({"input": hello, "signature": "${sv1}"}),
    )
    .go();
}
