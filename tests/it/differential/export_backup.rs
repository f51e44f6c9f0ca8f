//! Script: key export, backup and restore (both ways between the servers).

use serde_json::json;
use transitd_test_support::b64;

use super::harness::Script;
use super::normalise::Norm;
use super::{OPENBAO, SIGNING_TYPES, TRANSITD, key};

pub(super) fn export(s: &mut Script<'_>) {
    s.section("export");
    // public keys need no exportable flag
    for t in SIGNING_TYPES {
        s.get(
            &format!("public-key {t}"),
            &format!("transit/export/public-key/{}", key(t)),
        )
        .go();
    }
    for (label, path) in [
        (
            "encryption-key not exportable",
            format!("transit/export/encryption-key/{}", key("aes256-gcm96")),
        ),
        (
            "public-key of a symmetric key",
            format!("transit/export/public-key/{}", key("aes256-gcm96")),
        ),
        (
            "missing key",
            "transit/export/encryption-key/nokey".to_owned(),
        ),
        (
            "bogus type",
            format!("transit/export/bogus/{}", key("aes256-gcm96")),
        ),
    ] {
        s.get(label, &path).go();
    }
    s.post(
        "create exportable keys",
        "transit/keys/exp-aes",
        json!({"exportable": true}),
    )
    .go();
    for t in [
        "hmac",
        "ed25519",
        "ecdsa-p256",
        "ecdsa-p384",
        "rsa-2048",
        "chacha20-poly1305",
    ] {
        s.post(
            &format!("make {t} exportable"),
            &format!("transit/keys/{}/config", key(t)),
            json!({"exportable": true}),
        )
        .go();
    }
    s.post("rotate exp-aes", "transit/keys/exp-aes/rotate", json!({}))
        .go();
    for (label, path) in [
        (
            "aes encryption-key",
            "transit/export/encryption-key/exp-aes".to_owned(),
        ),
        ("aes hmac-key", "transit/export/hmac-key/exp-aes".to_owned()),
        (
            "aes encryption-key latest",
            "transit/export/encryption-key/exp-aes/latest".to_owned(),
        ),
        (
            "aes encryption-key 1",
            "transit/export/encryption-key/exp-aes/1".to_owned(),
        ),
        (
            "aes encryption-key v2",
            "transit/export/encryption-key/exp-aes/v2".to_owned(),
        ),
        (
            "aes encryption-key version 3",
            "transit/export/encryption-key/exp-aes/3".to_owned(),
        ),
        (
            "aes encryption-key version abc",
            "transit/export/encryption-key/exp-aes/abc".to_owned(),
        ),
        (
            "aes signing-key",
            "transit/export/signing-key/exp-aes".to_owned(),
        ),
        (
            "aes encryption-key format pem",
            "transit/export/encryption-key/exp-aes?format=pem".to_owned(),
        ),
        (
            "aes encryption-key format xml",
            "transit/export/encryption-key/exp-aes?format=xml".to_owned(),
        ),
        (
            "chacha encryption-key",
            format!("transit/export/encryption-key/{}", key("chacha20-poly1305")),
        ),
        (
            "hmac hmac-key",
            format!("transit/export/hmac-key/{}", key("hmac")),
        ),
        (
            "hmac encryption-key",
            format!("transit/export/encryption-key/{}", key("hmac")),
        ),
        (
            "ed25519 signing-key",
            format!("transit/export/signing-key/{}", key("ed25519")),
        ),
        (
            "ed25519 signing-key der",
            format!("transit/export/signing-key/{}?format=der", key("ed25519")),
        ),
        (
            "ed25519 public-key pem",
            format!("transit/export/public-key/{}?format=pem", key("ed25519")),
        ),
        (
            "ed25519 encryption-key",
            format!("transit/export/encryption-key/{}", key("ed25519")),
        ),
        (
            "ecdsa-p256 signing-key",
            format!("transit/export/signing-key/{}", key("ecdsa-p256")),
        ),
        (
            "ecdsa-p384 signing-key pem",
            format!(
                "transit/export/signing-key/{}?format=pem",
                key("ecdsa-p384")
            ),
        ),
        (
            "ecdsa-p256 public-key der",
            format!("transit/export/public-key/{}?format=der", key("ecdsa-p256")),
        ),
        (
            "ecdsa-p256 hmac-key",
            format!("transit/export/hmac-key/{}", key("ecdsa-p256")),
        ),
        (
            "ecdsa-p256 version below min_decryption",
            format!("transit/export/signing-key/{}/1", key("ecdsa-p256")),
        ),
    ] {
        s.get(label, &path).go();
    }
    let k = key("rsa-2048");
    for (label, path) in [
        (
            "rsa encryption-key",
            format!("transit/export/encryption-key/{k}"),
        ),
        ("rsa signing-key", format!("transit/export/signing-key/{k}")),
        (
            "rsa signing-key der",
            format!("transit/export/signing-key/{k}?format=der"),
        ),
        ("rsa public-key", format!("transit/export/public-key/{k}")),
    ] {
        s.get(label, &path).norm("/data/keys/*", Norm::Format).go();
    }
    s.get(
        "certificate-chain without a chain",
        &format!("transit/export/certificate-chain/{}", key("ecdsa-p256")),
    )
    .go();
    s.post(
        "POST on export",
        "transit/export/encryption-key/exp-aes",
        json!({}),
    )
    .go();
}

pub(super) fn backup(s: &mut Script<'_>) {
    s.section("backup");
    let hello = b64(b"hello world");
    s.get(
        "not exportable",
        &format!("transit/backup/{}", key("aes256-gcm96")),
    )
    .go();
    s.get(
        "exportable without allow_plaintext_backup",
        "transit/backup/exp-aes",
    )
    .go();
    s.get("missing key", "transit/backup/nokey").go();
    s.post(
        "create bk",
        "transit/keys/bk",
        json!({"exportable": true, "allow_plaintext_backup": true}),
    )
    .go();
    s.post("bk rotate", "transit/keys/bk/rotate", json!({}))
        .go();
    s.post(
        "bk encrypt",
        "transit/encrypt/bk",
        json!({"plaintext": hello}),
    )
    .save("bct", "/data/ciphertext")
    .share("bao-ct", "/data/ciphertext", OPENBAO)
    .go();
    s.get("backup", "transit/backup/bk")
        .norm("/data/backup", Norm::Backup)
        .save("bk", "/data/backup")
        .share("bao-bk", "/data/backup", OPENBAO)
        .share("td-bk", "/data/backup", TRANSITD)
        .go();
    s.get("read shows backup_info", "transit/keys/bk").go();
    s.post("restore without backup", "transit/restore", json!({}))
        .go();
    s.post(
        "restore bad base64",
        "transit/restore",
        json!({"backup": "***"}),
    )
    .go();
    s.post(
        "restore over an existing key",
        "transit/restore",
        json!({"backup": "${bk}"}),
    )
    .go();
    s.post(
        "restore over an existing key with force",
        "transit/restore",
        json!({"backup": "${bk}", "force": true}),
    )
    .go();
    s.post(
        "restore under a new name",
        "transit/restore/bk-copy",
        json!({"backup": "${bk}"}),
    )
    .go();
    s.post(
        "restore body name is ignored",
        "transit/restore",
        json!({"backup": "${bk}", "name": "bk-named", "force": true}),
    )
    .go();
    s.get("read bk-named", "transit/keys/bk-named").go();
    s.post(
        "restore under a path name",
        "transit/restore/a/b",
        json!({"backup": "${bk}"}),
    )
    .go();
    s.get("read restored copy", "transit/keys/bk-copy").go();
    s.post(
        "decrypt with the copy",
        "transit/decrypt/bk-copy",
        json!({"ciphertext": "${bct}"}),
    )
    .go();
    // The same key material in both servers: OpenBao's backup restored into both.
    s.post(
        "restore OpenBao's backup",
        "transit/restore/from-bao",
        json!({"backup": "${bao-bk}"}),
    )
    .go();
    s.get("read from-bao", "transit/keys/from-bao").go();
    s.post(
        "decrypt OpenBao's ciphertext",
        "transit/decrypt/from-bao",
        json!({"ciphertext": "${bao-ct}"}),
    )
    .go();
    s.post(
        "from-bao hmac",
        "transit/hmac/from-bao/sha2-384",
        json!({"input": hello}),
    )
    .norm("/data/hmac", Norm::Exact)
    .go();
    s.get("from-bao export", "transit/export/encryption-key/from-bao")
        .norm("/data/keys/*", Norm::Exact)
        .go();
    s.get(
        "from-bao export hmac-key",
        "transit/export/hmac-key/from-bao/2",
    )
    .norm("/data/keys/*", Norm::Exact)
    .go();
    // transitd's backup restored into both.
    s.post(
        "restore transitd's backup",
        "transit/restore/from-td",
        json!({"backup": "${td-bk}"}),
    )
    .go();
    s.get("read from-td", "transit/keys/from-td").go();
    s.post(
        "from-td hmac",
        "transit/hmac/from-td",
        json!({"input": hello}),
    )
    .norm("/data/hmac", Norm::Exact)
    .go();
    s.get("from-td export", "transit/export/encryption-key/from-td")
        .norm("/data/keys/*", Norm::Exact)
        .go();
    // Signing keys: Ed25519 signatures are deterministic.
    s.post(
        "create bk-ed",
        "transit/keys/bk-ed",
        json!({"type": "ed25519", "exportable": true, "allow_plaintext_backup": true}),
    )
    .go();
    s.get("backup bk-ed", "transit/backup/bk-ed")
        .norm("/data/backup", Norm::Backup)
        .share("bao-bk-ed", "/data/backup", OPENBAO)
        .go();
    s.post(
        "restore OpenBao's ed25519 backup",
        "transit/restore/from-bao-ed",
        json!({"backup": "${bao-bk-ed}"}),
    )
    .go();
    s.get("read from-bao-ed", "transit/keys/from-bao-ed")
        .norm("/data/keys/1/public_key", Norm::Exact)
        .go();
    s.post(
        "from-bao-ed sign",
        "transit/sign/from-bao-ed",
        json!({"input": hello}),
    )
    .norm("/data/signature", Norm::Exact)
    .go();
    for t in ["ecdsa-p256", "rsa-2048", "hmac", "mldsa-65"] {
        s.post(
            &format!("create bk-{t}"),
            &format!("transit/keys/bk-{t}"),
            json!({"type": t, "exportable": true, "allow_plaintext_backup": true, "key_size": if t == "hmac" { json!(48) } else { json!(null) }}),
        )
        .go();
        s.get(&format!("backup bk-{t}"), &format!("transit/backup/bk-{t}"))
            .norm("/data/backup", Norm::Backup)
            .share("bao-bk-x", "/data/backup", OPENBAO)
            .go();
        s.post(
            &format!("restore OpenBao's {t} backup"),
            &format!("transit/restore/from-bao-{t}"),
            json!({"backup": "${bao-bk-x}"}),
        )
        .go();
        s.get(
            &format!("read from-bao-{t}"),
            &format!("transit/keys/from-bao-{t}"),
        )
        .norm("/data/keys/1/public_key", Norm::Exact)
        .go();
    }
    // OpenBao's signatures verify in both; deterministic outputs are identical.
    for (t, alg, options) in [
        ("ecdsa-p256", "sha2-256", json!({})),
        (
            "ecdsa-p256",
            "sha2-384",
            json!({"marshaling_algorithm": "jws"}),
        ),
        ("rsa-2048", "sha2-256", json!({})),
        ("rsa-2048", "sha2-384", json!({"salt_length": 32})),
        ("rsa-2048", "sha2-512", json!({"salt_length": "hash"})),
        (
            "rsa-2048",
            "sha2-256",
            json!({"signature_algorithm": "pkcs1v15"}),
        ),
        // Not mldsa-65: OpenBao 2.7.2 panics (nil pointer in
        // keysutil.(*Policy).SignWithOptions) signing with a restored ML-DSA key.
    ] {
        let what = format!("{t} {alg} {options}");
        let jws = options["marshaling_algorithm"] == "jws";
        let mut body = options.clone();
        body["input"] = json!(hello);
        let mut step = s
            .post(
                &format!("from-bao sign {what}"),
                &format!("transit/sign/from-bao-{t}/{alg}"),
                body.clone(),
            )
            .share("bao-sig", "/data/signature", OPENBAO);
        if jws {
            step = step.norm("/data/signature", Norm::Jws);
        }
        step.go();
        body["signature"] = json!("${bao-sig}");
        s.post(
            &format!("from-bao verify OpenBao's {what}"),
            &format!("transit/verify/from-bao-{t}/{alg}"),
            body,
        )
        .go();
    }
    s.post(
        "from-bao rsa pkcs1v15 is identical",
        "transit/sign/from-bao-rsa-2048/sha2-512",
        json!({"input": hello, "signature_algorithm": "pkcs1v15"}),
    )
    .norm("/data/signature", Norm::Exact)
    .go();
    s.post(
        "from-bao hmac-type key is identical",
        "transit/hmac/from-bao-hmac/sha3-256",
        json!({"input": hello}),
    )
    .norm("/data/hmac", Norm::Exact)
    .share("bao-hmac", "/data/hmac", OPENBAO)
    .go();
    s.post(
        "from-bao verify OpenBao's hmac",
        "transit/verify/from-bao-hmac/sha3-256",
        json!({"input": hello, "hmac": "${bao-hmac}"}),
    )
    .go();
}
