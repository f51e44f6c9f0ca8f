//! Script: barrier key rotation (`sys/rotate`, `sys/key-status`), root
//! token generation's and rekey's (`sys/rekey*`) status shapes and error
//! paths (no shares here: a dev server does not show its unseal key; the
//! full flows are in `barrier_ops` and `rekey`).

use serde_json::json;

use super::harness::Script;
use super::normalise::Norm;

pub(super) fn barrier(s: &mut Script<'_>) {
    s.section("barrier");
    let key_status = |s: &mut Script<'_>, label: &str| {
        s.get(label, "sys/key-status")
            .norm("/install_time", Norm::Type)
            .norm("/data/install_time", Norm::Type)
            .norm("/encryptions", Norm::Type)
            .norm("/data/encryptions", Norm::Type)
            .go();
    };
    key_status(s, "key-status");
    s.post("rotate", "sys/rotate", json!({})).go();
    key_status(s, "key-status after rotate");
    s.post("rotate keyring", "sys/rotate/keyring", json!({}))
        .go();
    key_status(s, "key-status after rotate keyring");
    s.get("rotate read", "sys/rotate").go();
    s.post("rotate without a token", "sys/rotate", json!({}))
        .token(None)
        .go();

    let attempt = "sys/generate-root-token/attempt";
    s.get("generate-root status", attempt).go();
    s.get("generate-root status without a token", attempt)
        .token(None)
        .go();
    s.step(
        "generate-root start with a short otp",
        "PUT",
        attempt,
        Some(json!({"otp": "abc"})),
    )
    .go();
    // The OTP is random text of `otp_length` characters (compared as is):
    // some random draws happen to decode as base64url, so its type only.
    s.step("generate-root start", "PUT", attempt, Some(json!({})))
        .norm("/data/otp", Norm::Type)
        .norm("/data/nonce", Norm::Type)
        .go();
    s.get("generate-root status started", attempt)
        .norm("/data/nonce", Norm::Type)
        .go();
    s.step("generate-root start twice", "PUT", attempt, Some(json!({})))
        .go();
    let update = "sys/generate-root-token/update";
    s.step(
        "generate-root update without nonce",
        "PUT",
        update,
        Some(json!({"key": "AAAA"})),
    )
    .go();
    s.step(
        "generate-root update without key",
        "PUT",
        update,
        Some(json!({"nonce": "x"})),
    )
    .go();
    s.step(
        "generate-root update with a wrong nonce",
        "PUT",
        update,
        Some(json!({"nonce": "not-the-nonce", "key": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="})),
    )
    .go();
    s.delete("generate-root cancel", attempt).go();
    s.get("generate-root status after cancel", attempt).go();
    s.step(
        "generate-root update with none in progress",
        "PUT",
        update,
        Some(json!({"nonce": "x", "key": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="})),
    )
    .go();
    s.get(
        "vault's unauthenticated generate-root status",
        "sys/generate-root/attempt",
    )
    .token(None)
    .go();

    rekey(s);
}

/// `sys/rekey/*`: OpenBao 2.7.2 serves Vault's unauthenticated rekey paths
/// only on a listener with `disable_unauthed_rekey_endpoints = false` (the
/// dev server has none), so both steps are listed deviations; the flow
/// itself is in `rekey` and the `bao operator rekey` pytest.
fn rekey(s: &mut Script<'_>) {
    s.get("rekey status", "sys/rekey/init").token(None).go();
    s.get(
        "rekey recovery status under shamir",
        "sys/rekey-recovery-key/init",
    )
    .token(None)
    .go();
}
