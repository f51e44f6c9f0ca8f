//! Script: key lifecycle (create, read, list, rotate, trim, delete, config)
//! and the mount's `config/keys` and `cache-config`.

use serde_json::json;
use transitd_test_support::b64;

use super::harness::Script;
use super::{KEY_TYPES, key};

pub(super) fn keys(s: &mut Script<'_>) {
    s.section("keys");
    s.list("list on an empty mount", "transit/keys").go();
    s.get("read a missing key", "transit/keys/nokey").go();
    for t in KEY_TYPES {
        let body = if *t == "hmac" {
            json!({"type": t, "key_size": 64})
        } else {
            json!({"type": t})
        };
        s.post(
            &format!("create {t}"),
            &format!("transit/keys/{}", key(t)),
            body,
        )
        .go();
        s.get(&format!("read {t}"), &format!("transit/keys/{}", key(t)))
            .go();
    }
    s.post(
        "create with the default type",
        "transit/keys/default",
        json!({}),
    )
    .go();
    s.post(
        "create hmac key_size 32",
        "transit/keys/hmac-32",
        json!({"type": "hmac", "key_size": 32}),
    )
    .go();
    s.post(
        "create hmac key_size 512 as a string",
        "transit/keys/hmac-512",
        json!({"type": "hmac", "key_size": "512"}),
    )
    .go();
    s.post(
        "upsert an existing key with another type",
        &format!("transit/keys/{}", key("aes256-gcm96")),
        json!({"type": "ed25519", "exportable": true}),
    )
    .go();
    s.post(
        "create derived aes256",
        "transit/keys/derived",
        json!({"derived": true}),
    )
    .go();
    s.post(
        "create derived convergent",
        "transit/keys/convergent",
        json!({"derived": true, "convergent_encryption": true}),
    )
    .go();
    s.post(
        "create derived ed25519",
        "transit/keys/derived-ed",
        json!({"type": "ed25519", "derived": true}),
    )
    .go();
    s.get(
        "read derived ed25519 with a context",
        &format!("transit/keys/derived-ed?context={}", b64(b"ctx-a")),
    )
    .go();
    s.post(
        "create with flags as strings",
        "transit/keys/flags",
        json!({"exportable": "true", "allow_plaintext_backup": "1", "auto_rotate_period": "1h"}),
    )
    .go();
    s.post(
        "create with auto_rotate_period in seconds",
        "transit/keys/rotating",
        json!({"auto_rotate_period": 7200}),
    )
    .go();
    // §2.1 create errors
    for (label, body) in [
        ("create unknown type", json!({"type": "aes512"})),
        (
            "create convergent without derived",
            json!({"convergent_encryption": true}),
        ),
        (
            "create auto_rotate_period 30m",
            json!({"auto_rotate_period": "30m"}),
        ),
        (
            "create ecdsa-p256 derived",
            json!({"type": "ecdsa-p256", "derived": true}),
        ),
        (
            "create ed25519 derived convergent",
            json!({"type": "ed25519", "derived": true, "convergent_encryption": true}),
        ),
        (
            "create aes256 with key_size",
            json!({"type": "aes256-gcm96", "key_size": 64}),
        ),
        (
            "create hmac key_size 8",
            json!({"type": "hmac", "key_size": 8}),
        ),
        (
            "create hmac key_size 513",
            json!({"type": "hmac", "key_size": 513}),
        ),
        (
            "create hmac key_size -1",
            json!({"type": "hmac", "key_size": -1}),
        ),
        (
            "create hmac key_size not a number",
            json!({"type": "hmac", "key_size": "abc"}),
        ),
        ("create derived not a bool", json!({"derived": "maybe"})),
    ] {
        s.post(label, "transit/keys/bad", body).go();
    }
    s.get("read after failed creates", "transit/keys/bad").go();
    // list
    s.get("list with GET ?list=true", "transit/keys?list=true")
        .go();
    s.get(
        "list after/limit",
        "transit/keys?list=true&after=t-ecdsa-p256&limit=3",
    )
    .go();
    s.get(
        "list after the last key",
        "transit/keys?list=true&after=zzz",
    )
    .go();
    // After the lists: OpenBao does not create this key (deliberate difference).
    s.post(
        "create hmac without key_size",
        "transit/keys/hmac-default",
        json!({"type": "hmac"}),
    )
    .go();
    // delete
    s.post("create victim", "transit/keys/victim", json!({}))
        .go();
    s.delete("delete not allowed", "transit/keys/victim").go();
    s.delete("delete a missing key", "transit/keys/nokey").go();
    s.post(
        "allow deletion",
        "transit/keys/victim/config",
        json!({"deletion_allowed": true}),
    )
    .go();
    s.delete("delete", "transit/keys/victim").go();
    s.get("read a deleted key", "transit/keys/victim").go();
    // rotate, config, trim (§2.1)
    s.post("create versions", "transit/keys/ver", json!({}))
        .go();
    s.post("rotate to v2", "transit/keys/ver/rotate", json!({}))
        .go();
    s.post("rotate to v3", "transit/keys/ver/rotate", json!({}))
        .go();
    s.post(
        "rotate a missing key",
        "transit/keys/nokey/rotate",
        json!({}),
    )
    .go();
    for (label, body) in [
        (
            "config min_decryption_version above latest",
            json!({"min_decryption_version": 9}),
        ),
        (
            "config min_decryption_version 2",
            json!({"min_decryption_version": 2}),
        ),
        (
            "config min_encryption_version below min_decryption",
            json!({"min_encryption_version": 1}),
        ),
        (
            "config min_decryption_version negative",
            json!({"min_decryption_version": -1}),
        ),
        (
            "config auto_rotate_period 10m",
            json!({"auto_rotate_period": "10m"}),
        ),
        (
            "config exportable false no-op",
            json!({"exportable": false}),
        ),
        (
            "config auto_rotate_period 2h",
            json!({"auto_rotate_period": "2h"}),
        ),
        ("config unknown parameter", json!({"no_such_field": 1})),
        (
            "config min_decryption_version not a number",
            json!({"min_decryption_version": "x"}),
        ),
    ] {
        s.post(label, "transit/keys/ver/config", body).go();
    }
    s.post(
        "trim above min_decryption_version",
        "transit/keys/ver/trim",
        json!({"min_available_version": 3}),
    )
    .go();
    s.post(
        "trim to 2",
        "transit/keys/ver/trim",
        json!({"min_available_version": 2}),
    )
    .go();
    s.post(
        "trim decrement",
        "transit/keys/ver/trim",
        json!({"min_available_version": 1}),
    )
    .go();
    s.post("trim missing parameter", "transit/keys/ver/trim", json!({}))
        .go();
    s.post(
        "trim a missing key without parameter",
        "transit/keys/nokey/trim",
        json!({}),
    )
    .go();
    s.post(
        "trim a missing key",
        "transit/keys/nokey/trim",
        json!({"min_available_version": 1}),
    )
    .go();
    s.post(
        "config min_decryption_version below min_available",
        "transit/keys/ver/config",
        json!({"min_decryption_version": 1}),
    )
    .go();
    s.post(
        "config a missing key",
        "transit/keys/nokey/config",
        json!({"min_decryption_version": 1}),
    )
    .go();
    s.post(
        "config min_decryption_version 0 forced to 1",
        "transit/keys/default/config",
        json!({"min_decryption_version": 0}),
    )
    .go();
    s.get("read after trim", "transit/keys/ver").go();
}

pub(super) fn config(s: &mut Script<'_>) {
    s.section("config");
    let hello = b64(b"hello world");
    s.get("read config/keys", "transit/config/keys").go();
    s.post(
        "disable upsert",
        "transit/config/keys",
        json!({"disable_upsert": true}),
    )
    .go();
    s.get("read config/keys again", "transit/config/keys").go();
    s.post(
        "encrypt does not upsert",
        "transit/encrypt/no-upsert",
        json!({"plaintext": hello}),
    )
    .go();
    s.post(
        "explicit create still works",
        "transit/keys/no-upsert",
        json!({}),
    )
    .go();
    s.post("empty body resets", "transit/config/keys", json!({}))
        .go();
    s.post(
        "encrypt upserts again",
        "transit/encrypt/upsert-again",
        json!({"plaintext": hello}),
    )
    .go();
    s.get("read cache-config", "transit/cache-config").go();
    s.post(
        "cache-config size 5",
        "transit/cache-config",
        json!({"size": 5}),
    )
    .go();
    s.post(
        "cache-config size 20",
        "transit/cache-config",
        json!({"size": 20}),
    )
    .go();
    s.get("read cache-config again", "transit/cache-config")
        .go();
    s.post(
        "cache-config size 0",
        "transit/cache-config",
        json!({"size": 0}),
    )
    .go();
}

/// Soft delete (OpenBao 2.x): what a soft-deleted key refuses, what it still
/// allows, and the restore.
pub(super) fn soft_delete(s: &mut Script<'_>) {
    s.section("soft-delete");
    let hello = b64(b"hello");
    s.post(
        "create",
        "transit/keys/sd",
        json!({"exportable": true, "allow_plaintext_backup": true}),
    )
    .go();
    s.post(
        "create ed25519",
        "transit/keys/sd-ed",
        json!({"type": "ed25519"}),
    )
    .go();
    s.post("encrypt", "transit/encrypt/sd", json!({"plaintext": hello}))
        .save("ct", "/data/ciphertext")
        .go();
    s.post(
        "soft-delete by update",
        "transit/keys/sd/soft-delete",
        json!({}),
    )
    .go();
    s.delete("soft-delete", "transit/keys/sd/soft-delete").go();
    s.delete("soft-delete again", "transit/keys/sd/soft-delete")
        .go();
    s.delete("soft-delete ed25519", "transit/keys/sd-ed/soft-delete")
        .go();
    s.delete(
        "soft-delete a missing key",
        "transit/keys/nokey/soft-delete",
    )
    .go();
    s.get("read", "transit/keys/sd").go();
    for (label, path, body) in [
        ("encrypt", "transit/encrypt/sd", json!({"plaintext": hello})),
        (
            "decrypt",
            "transit/decrypt/sd",
            json!({"ciphertext": "${ct}"}),
        ),
        (
            "rewrap",
            "transit/rewrap/sd",
            json!({"ciphertext": "${ct}"}),
        ),
        ("datakey", "transit/datakey/plaintext/sd", json!({})),
        ("hmac", "transit/hmac/sd", json!({"input": hello})),
        (
            "batch encrypt",
            "transit/encrypt/sd",
            json!({"batch_input": [{"plaintext": hello}]}),
        ),
        ("rotate", "transit/keys/sd/rotate", json!({})),
        ("sign", "transit/sign/sd-ed", json!({"input": hello})),
        (
            "config",
            "transit/keys/sd/config",
            json!({"deletion_allowed": true}),
        ),
        ("create again", "transit/keys/sd", json!({})),
    ] {
        s.post(&format!("{label} while soft-deleted"), path, body)
            .go();
    }
    s.get("backup while soft-deleted", "transit/backup/sd").go();
    s.get(
        "export while soft-deleted",
        "transit/export/encryption-key/sd",
    )
    .go();
    s.delete("restore by delete", "transit/keys/sd/soft-delete-restore")
        .go();
    s.post("restore", "transit/keys/sd/soft-delete-restore", json!({}))
        .go();
    s.post(
        "restore again",
        "transit/keys/sd/soft-delete-restore",
        json!({}),
    )
    .go();
    s.post(
        "restore a missing key",
        "transit/keys/nokey/soft-delete-restore",
        json!({}),
    )
    .go();
    s.post(
        "decrypt after restore",
        "transit/decrypt/sd",
        json!({"ciphertext": "${ct}"}),
    )
    .go();
}
