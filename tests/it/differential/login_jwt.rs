//! Script: `auth/jwt` (configuration, roles and login errors) with static
//! public keys, so both servers verify the very same signed tokens.

use serde_json::json;

use super::harness::Script;
use super::normalise::Norm;
use crate::jwt_issuer::{KEY_A, KEY_B, RSA_A_PUB, claims, now};

const ISSUER: &str = "https://issuer.example";

pub(super) fn login_jwt(s: &mut Script<'_>) {
    s.section("jwt config");
    s.post("enable", "sys/auth/jwt", json!({"type": "jwt"}))
        .go();
    for (label, body) in [
        ("no key source", json!({})),
        (
            "bad public key",
            json!({"jwt_validation_pubkeys": ["nope"]}),
        ),
        (
            "two key sources",
            json!({"jwt_validation_pubkeys": [RSA_A_PUB], "jwks_url": "https://127.0.0.1:1/keys"}),
        ),
        (
            "hmac algorithm",
            json!({"jwt_validation_pubkeys": [RSA_A_PUB], "jwt_supported_algs": ["HS256"]}),
        ),
        (
            "valid",
            json!({"jwt_validation_pubkeys": [RSA_A_PUB], "bound_issuer": ISSUER}),
        ),
    ] {
        s.post(label, "auth/jwt/config", body).go();
    }
    s.get("read", "auth/jwt/config").go();

    s.section("jwt role");
    let base = json!({"role_type": "jwt", "user_claim": "sub", "bound_audiences": "vault"});
    let with = |extra: serde_json::Value| {
        let mut b = base.clone();
        for (k, v) in extra.as_object().unwrap() {
            b[k] = v.clone();
        }
        b
    };
    for (label, body) in [
        (
            "no role_type",
            json!({"user_claim": "sub", "bound_audiences": "vault"}),
        ),
        (
            "no user claim",
            json!({"role_type": "jwt", "bound_audiences": "vault"}),
        ),
        (
            "no bound constraint",
            json!({"role_type": "jwt", "user_claim": "sub"}),
        ),
        (
            "bad bound_claims_type",
            with(json!({"bound_claims_type": "nope"})),
        ),
        (
            "glob of a number",
            with(json!({"bound_claims_type": "glob", "bound_claims": {"x": 1}})),
        ),
        (
            "two claims to one metadata key",
            with(json!({"claim_mappings": {"a": "m", "b": "m"}})),
        ),
        (
            "valid",
            with(
                json!({"bound_claims_type": "glob", "bound_claims": {"team": "ops-*"},
                        "claim_mappings": {"email": "email"}, "token_ttl": "10m"}),
            ),
        ),
    ] {
        s.post(label, "auth/jwt/role/ci", body).go();
    }
    s.get("read", "auth/jwt/role/ci").go();
    s.list("list", "auth/jwt/role").go();

    s.section("jwt login");
    let good = claims(ISSUER, json!({"team": "ops-eu", "sub": "alice"}));
    let sign = |extra: serde_json::Value| {
        let mut c = good.clone();
        for (k, v) in extra.as_object().unwrap() {
            c[k] = v.clone();
        }
        KEY_A.sign(&c)
    };
    for (label, body) in [
        ("missing role", json!({"jwt": sign(json!({}))})),
        (
            "unknown role",
            json!({"role": "nope", "jwt": sign(json!({}))}),
        ),
        ("missing jwt", json!({"role": "ci"})),
        (
            "another key",
            json!({"role": "ci", "jwt": KEY_B.sign(&good)}),
        ),
        (
            "expired",
            json!({"role": "ci", "jwt": sign(json!({"exp": now() - 120}))}),
        ),
        (
            "not yet valid",
            json!({"role": "ci", "jwt": sign(json!({"nbf": now() + 120}))}),
        ),
        (
            "wrong issuer",
            json!({"role": "ci", "jwt": sign(json!({"iss": "https://evil"}))}),
        ),
        (
            "wrong audience",
            json!({"role": "ci", "jwt": sign(json!({"aud": "other"}))}),
        ),
        (
            "claim not bound",
            json!({"role": "ci", "jwt": sign(json!({"team": "dev-eu"}))}),
        ),
        ("valid", json!({"role": "ci", "jwt": sign(json!({}))})),
    ] {
        s.post(label, "auth/jwt/login", body)
            .token(None)
            .norm("/auth/client_token", Norm::Type)
            .norm("/auth/accessor", Norm::Type)
            .norm("/auth/entity_id", Norm::Type)
            .go();
    }
}
