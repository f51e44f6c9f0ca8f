//! Script: random bytes and hashes, the HTTP layer (tokens, methods, bodies,
//! paths), and `sys/` (health, mounts).

use serde_json::json;
use transitd_test_support::b64;

use super::HASHES;
use super::harness::Script;
use super::normalise::Norm;

pub(super) fn random_and_hash(s: &mut Script<'_>) {
    s.section("random");
    for (label, path, body) in [
        ("default", "transit/random", json!({})),
        ("bytes 16", "transit/random", json!({"bytes": 16})),
        ("bytes in the URL", "transit/random/24", json!({})),
        (
            "hex",
            "transit/random",
            json!({"format": "hex", "bytes": 8}),
        ),
        (
            "source platform in the URL",
            "transit/random/platform/12",
            json!({}),
        ),
        ("source all", "transit/random", json!({"source": "all"})),
        ("source seal", "transit/random/seal", json!({})),
        ("bytes 0", "transit/random", json!({"bytes": 0})),
        (
            "bytes 131072",
            "transit/random",
            json!({"bytes": 131072, "format": "hex"}),
        ),
        ("bytes 131073", "transit/random", json!({"bytes": 131073})),
        ("format raw", "transit/random", json!({"format": "raw"})),
        ("URL bytes not a number", "transit/random/foo", json!({})),
        (
            "unknown source",
            "transit/random",
            json!({"source": "moon"}),
        ),
    ] {
        s.post(label, path, body)
            .norm("/data/random_bytes", Norm::Opaque)
            .go();
    }
    s.section("hash");
    let hello = b64(b"hello");
    s.post("default", "transit/hash", json!({"input": hello}))
        .go();
    for alg in HASHES {
        s.post(alg, &format!("transit/hash/{alg}"), json!({"input": hello}))
            .go();
        s.post(
            &format!("{alg} base64 in the body"),
            "transit/hash",
            json!({"input": hello, "algorithm": alg, "format": "base64"}),
        )
        .go();
    }
    for (label, path, body) in [
        ("sha1", "transit/hash/sha1", json!({"input": hello})),
        (
            "md5",
            "transit/hash",
            json!({"input": hello, "algorithm": "md5"}),
        ),
        ("missing input", "transit/hash", json!({})),
        ("bad base64", "transit/hash", json!({"input": "***"})),
        (
            "bad format",
            "transit/hash",
            json!({"input": hello, "format": "raw"}),
        ),
        ("empty input", "transit/hash", json!({"input": ""})),
    ] {
        s.post(label, path, body).go();
    }
}

pub(super) fn http(s: &mut Script<'_>) {
    s.section("http");
    let hello = b64(b"hello world");
    s.post(
        "no token",
        "transit/encrypt/any",
        json!({"plaintext": hello}),
    )
    .token(None)
    .go();
    s.post(
        "bad token",
        "transit/encrypt/any",
        json!({"plaintext": hello}),
    )
    .token(Some("not-the-token"))
    .go();
    s.get("no token on a key read", "transit/keys/t-aes256-gcm96")
        .token(None)
        .go();
    s.post(
        "Authorization: Bearer",
        "transit/encrypt/t-aes256-gcm96",
        json!({"plaintext": hello}),
    )
    .bearer()
    .go();
    s.post(
        "Authorization: Bearer with a bad token",
        "transit/encrypt/t-aes256-gcm96",
        json!({"plaintext": hello}),
    )
    .token(Some("not-the-token"))
    .bearer()
    .go();
    s.post("unknown transit path", "transit/nonsense/k", json!({}))
        .go();
    s.get("GET on encrypt", "transit/encrypt/t-aes256-gcm96")
        .go();
    s.post("POST on the key list", "transit/keys", json!({}))
        .go();
    s.list("LIST on a key", "transit/keys/t-aes256-gcm96").go();
    s.step(
        "PUT works like POST",
        "PUT",
        "transit/encrypt/t-aes256-gcm96",
        Some(json!({"plaintext": hello})),
    )
    .go();
    s.post(
        "invalid JSON body",
        "transit/encrypt/t-aes256-gcm96",
        json!(null),
    )
    .raw(b"{not json", "application/json")
    .go();
    s.post(
        "form-encoded body",
        "transit/encrypt/t-aes256-gcm96",
        json!(null),
    )
    .raw(
        b"plaintext=aGVsbG8%3D&key_version=1",
        "application/x-www-form-urlencoded",
    )
    .go();
    s.post("path outside any mount", "nomount/keys/x", json!({}))
        .go();
}

pub(super) fn sys(s: &mut Script<'_>) {
    s.section("sys");
    let hello = b64(b"hello world");
    s.get("health", "sys/health")
        .norm("/cluster_id", Norm::Type)
        .norm("/cluster_name", Norm::Type)
        .norm("/server_time_utc", Norm::Type)
        .go();
    s.post(
        "enable payments",
        "sys/mounts/payments",
        json!({"type": "transit"}),
    )
    .go();
    s.post(
        "enable payments again",
        "sys/mounts/payments",
        json!({"type": "transit"}),
    )
    .go();
    s.post(
        "enable a kv mount",
        "sys/mounts/kv-here",
        json!({"type": "kv"}),
    )
    .go();
    s.post("payments create", "transit/keys/shared-name", json!({}))
        .go();
    s.post(
        "payments encrypt",
        "payments/encrypt/shared-name",
        json!({"plaintext": hello}),
    )
    .save("pct", "/data/ciphertext")
    .go();
    s.post(
        "payments decrypt",
        "payments/decrypt/shared-name",
        json!({"ciphertext": "${pct}"}),
    )
    .go();
    s.post(
        "transit has its own key of that name",
        "transit/decrypt/shared-name",
        json!({"ciphertext": "${pct}"}),
    )
    .go();
    s.list("payments list", "payments/keys").go();
    s.delete("disable payments", "sys/mounts/payments").go();
    s.post(
        "use a disabled mount",
        "payments/encrypt/shared-name",
        json!({"plaintext": hello}),
    )
    .go();
}
