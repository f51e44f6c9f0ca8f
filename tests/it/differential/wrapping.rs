//! Script: response wrapping (`X-Vault-Wrap-TTL`, `sys/wrapping/*`, policy
//! wrapping bounds) and break-glass revocation (`sys/leases/revoke-prefix`,
//! `revoke-force`, `auth/token/revoke-orphan`, `auth/token/accessors`,
//! `renew-self` on the root token).

use serde_json::json;

use super::harness::Script;
use super::normalise::Norm;

/// What differs in every `wrap_info`: the token and accessors are random.
fn wrapped<'s, 'a>(step: super::harness::Step<'s, 'a>) -> super::harness::Step<'s, 'a> {
    step.norm("/wrap_info/token", Norm::Type)
        .norm("/wrap_info/accessor", Norm::Type)
        .norm("/wrap_info/wrapped_accessor", Norm::Type)
}

pub(super) fn wrapping(s: &mut Script<'_>) {
    s.section("wrapping");
    s.post("wrap without a TTL", "sys/wrapping/wrap", json!({"a": "b"}))
        .go();
    wrapped(s.post(
        "wrap",
        "sys/wrapping/wrap",
        json!({"a": "b", "n": {"x": 1}}),
    ))
    .header("X-Vault-Wrap-TTL", "60")
    .save("wt", "/wrap_info/token")
    .go();
    s.post(
        "lookup by body, no token",
        "sys/wrapping/lookup",
        json!({"token": "${wt}"}),
    )
    .token(None)
    .go();
    s.post("lookup presented", "sys/wrapping/lookup", json!({}))
        .token(Some("${wt}"))
        .go();
    s.post(
        "lookup unknown",
        "sys/wrapping/lookup",
        json!({"token": "s.bogus"}),
    )
    .go();
    s.post("lookup nothing named", "sys/wrapping/lookup", json!({}))
        .token(None)
        .go();
    wrapped(s.post("rewrap", "sys/wrapping/rewrap", json!({"token": "${wt}"})))
        .save("wt2", "/wrap_info/token")
        .go();
    s.post(
        "unwrap the rewrapped token",
        "sys/wrapping/unwrap",
        json!({"token": "${wt}"}),
    )
    .go();
    s.post(
        "unwrap by body",
        "sys/wrapping/unwrap",
        json!({"token": "${wt2}"}),
    )
    .go();
    s.post(
        "unwrap by body again",
        "sys/wrapping/unwrap",
        json!({"token": "${wt2}"}),
    )
    .go();
    s.post(
        "unwrap a token that wraps nothing",
        "sys/wrapping/unwrap",
        json!({}),
    )
    .go();
    wrapped(s.post(
        "wrap a token create",
        "auth/token/create",
        json!({"policies": ["default"], "ttl": "1h"}),
    ))
    .header("X-Vault-Wrap-TTL", "5m")
    .save("wt3", "/wrap_info/token")
    .go();
    s.post("unwrap presented", "sys/wrapping/unwrap", json!({}))
        .token(Some("${wt3}"))
        .norm("/auth/client_token", Norm::Type)
        .norm("/auth/accessor", Norm::Type)
        .go();
    s.post("unwrap presented again", "sys/wrapping/unwrap", json!({}))
        .token(Some("${wt3}"))
        .go();
    wrapped(s.post("wrap empty", "sys/wrapping/wrap", json!({})))
        .header("X-Vault-Wrap-TTL", "1m")
        .save("wt4", "/wrap_info/token")
        .go();
    s.post(
        "a wrapping token may not look itself up",
        "auth/token/lookup-self",
        json!({}),
    )
    .token(Some("${wt4}"))
    .go();
    for (label, ttl) in [("ttl not a duration", "abc"), ("ttl negative", "-5")] {
        s.post(label, "sys/wrapping/wrap", json!({"a": "b"}))
            .header("X-Vault-Wrap-TTL", ttl)
            .go();
    }
    wrapped(s.post("ttl zero", "sys/wrapping/wrap", json!({"a": "b"})))
        .header("X-Vault-Wrap-TTL", "0")
        .go();
    wrapped(s.post("format token", "sys/wrapping/wrap", json!({"a": "b"})))
        .header("X-Vault-Wrap-TTL", "60")
        .header("X-Vault-Wrap-Format", "token")
        .go();
    wrapped(s.post("format jwt", "sys/wrapping/wrap", json!({"a": "b"})))
        .header("X-Vault-Wrap-TTL", "60")
        .header("X-Vault-Wrap-Format", "jwt")
        .go();
    wrapped(s.post("ttl above 32 days", "sys/wrapping/wrap", json!({"a": "b"})))
        .header("X-Vault-Wrap-TTL", "1000h")
        .go();
    // A revoked wrapping token gives up nothing (issue 17).
    wrapped(s.post("wrap to revoke", "sys/wrapping/wrap", json!({"a": "b"})))
        .header("X-Vault-Wrap-TTL", "60")
        .save("wt5", "/wrap_info/token")
        .save("wa5", "/wrap_info/accessor")
        .go();
    s.post(
        "lookup wrapped",
        "sys/wrapping/lookup",
        json!({"token": "${wt5}"}),
    )
    .token(None)
    .header("X-Vault-Wrap-TTL", "60")
    .norm("/wrap_info/token", Norm::Type)
    .norm("/wrap_info/accessor", Norm::Type)
    .go();
    s.post(
        "revoke-accessor of a wrapping token",
        "auth/token/revoke-accessor",
        json!({"accessor": "${wa5}"}),
    )
    .go();
    for (label, path) in [
        ("lookup revoked", "sys/wrapping/lookup"),
        ("unwrap revoked", "sys/wrapping/unwrap"),
        ("rewrap revoked", "sys/wrapping/rewrap"),
    ] {
        s.post(label, path, json!({"token": "${wt5}"})).go();
    }
    wrapped(s.post(
        "ttl with a fraction",
        "sys/wrapping/wrap",
        json!({"a": "b"}),
    ))
    .header("X-Vault-Wrap-TTL", "60.5s")
    .go();
    s.get("health is never wrapped", "sys/health")
        .header("X-Vault-Wrap-TTL", "60")
        .norm("/cluster_name", Norm::Type)
        .norm("/cluster_id", Norm::Type)
        .norm("/server_time_utc", Norm::Type)
        .go();

    s.section("wrapping policy");
    s.post(
        "write a policy with wrapping bounds",
        "sys/policies/acl/wrap-bounds",
        json!({"policy": "path \"auth/token/lookup-self\" {\n  capabilities = [\"read\"]\n  min_wrapping_ttl = \"1m\"\n  max_wrapping_ttl = 300\n}\n"}),
    )
    .go();
    s.post(
        "max below min",
        "sys/policies/acl/wrap-bad",
        json!({"policy": "path \"a\" {\n  capabilities = [\"read\"]\n  min_wrapping_ttl = 600\n  max_wrapping_ttl = 60\n}\n"}),
    )
    .go();
    s.post(
        "token with the bounded policy",
        "auth/token/create",
        json!({"policies": ["wrap-bounds"], "no_default_policy": true}),
    )
    .norm("/auth/client_token", Norm::Type)
    .norm("/auth/accessor", Norm::Type)
    .save("bounded", "/auth/client_token")
    .go();
    s.get("not wrapped", "auth/token/lookup-self")
        .token(Some("${bounded}"))
        .go();
    s.get("wrapped too briefly", "auth/token/lookup-self")
        .token(Some("${bounded}"))
        .header("X-Vault-Wrap-TTL", "30")
        .go();
    s.get("wrapped too long", "auth/token/lookup-self")
        .token(Some("${bounded}"))
        .header("X-Vault-Wrap-TTL", "301")
        .go();
    s.get("wrapped just too long", "auth/token/lookup-self")
        .token(Some("${bounded}"))
        .header("X-Vault-Wrap-TTL", "300.9s")
        .go();
    wrapped(s.get("wrapped within the bounds", "auth/token/lookup-self"))
        .token(Some("${bounded}"))
        .header("X-Vault-Wrap-TTL", "2m")
        .go();

    s.section("break-glass");
    s.post(
        "renew-self of the root token",
        "auth/token/renew-self",
        json!({}),
    )
    .go();
    s.post(
        "revoke-orphan without a token",
        "auth/token/revoke-orphan",
        json!({}),
    )
    .go();
    s.post(
        "revoke-orphan of an unknown token",
        "auth/token/revoke-orphan",
        json!({"token": "s.nope"}),
    )
    .go();
    s.get("accessors read", "auth/token/accessors").go();
    s.list("accessors list", "auth/token/accessors")
        .norm("/data/keys", Norm::Type)
        .go();
    for (label, path) in [
        (
            "revoke-prefix of a path nothing was issued under",
            "sys/leases/revoke-prefix/auth/nothing/here",
        ),
        (
            "revoke-force of a path nothing was issued under",
            "sys/leases/revoke-force/auth/nothing",
        ),
    ] {
        s.post(label, path, json!({})).go();
    }
    s.post(
        "revoke-prefix not synchronous",
        "sys/leases/revoke-prefix/auth/nothing",
        json!({"sync": false}),
    )
    .go();
    s.get(
        "revoke-prefix read",
        "sys/leases/revoke-prefix/auth/nothing",
    )
    .go();
}
