//! The attacks JWT libraries are known for, and Vault's time rules (whose
//! numbers were measured against OpenBao 2.7.2: a role with default leeways
//! accepts `exp` 55 s past and refuses it 65 s past).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{EncodingKey, Header};
use serde_json::json;

use super::*;

const RSA_A: &str = include_str!("../../../tests/fixtures/jwt/rsa-a.key");
const RSA_A_PUB: &str = include_str!("../../../tests/fixtures/jwt/rsa-a.pub");
const RSA_B: &str = include_str!("../../../tests/fixtures/jwt/rsa-b.key");
const EC_A: &str = include_str!("../../../tests/fixtures/jwt/ec-a.key");
const EC_A_PUB: &str = include_str!("../../../tests/fixtures/jwt/ec-a.pub");

const NOW: i64 = 1_800_000_000;

fn sign(alg: Algorithm, pem: &str, kid: Option<&str>, claims: &Value) -> String {
    let key = match alg.family() {
        jsonwebtoken::AlgorithmFamily::Ec => EncodingKey::from_ec_pem(pem.as_bytes()),
        _ => EncodingKey::from_rsa_pem(pem.as_bytes()),
    }
    .unwrap();
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, &key).unwrap()
}

fn keys() -> StaticKeys {
    StaticKeys::from_pems(&[RSA_A_PUB.to_owned(), EC_A_PUB.to_owned()]).unwrap()
}

fn claims(extra: Value) -> Value {
    let mut c = json!({"iss": "https://issuer", "sub": "alice", "aud": "vault", "exp": NOW + 60});
    for (k, v) in extra.as_object().unwrap() {
        if v.is_null() {
            c.as_object_mut().unwrap().remove(k);
        } else {
            c[k] = v.clone();
        }
    }
    c
}

fn expected() -> Expected<'static> {
    static AUD: std::sync::LazyLock<Vec<String>> =
        std::sync::LazyLock::new(|| vec!["vault".to_owned()]);
    Expected {
        issuer: "https://issuer",
        audiences: &AUD,
        ..Expected::default()
    }
}

fn check(token: &str, e: &Expected<'_>) -> Result<Claims, String> {
    verify(token, &keys(), e, NOW).map_err(|e| e.to_string())
}

#[test]
fn rs256_and_es256_verify() {
    for (alg, pem) in [(Algorithm::RS256, RSA_A), (Algorithm::ES256, EC_A)] {
        let got = check(&sign(alg, pem, None, &claims(json!({}))), &expected()).unwrap();
        assert_eq!(got["sub"], json!("alice"));
    }
}

#[test]
fn forged_tokens_are_refused() {
    let good = sign(Algorithm::RS256, RSA_A, None, &claims(json!({})));
    let (head, rest) = good.split_once('.').unwrap();
    let (body, _sig) = rest.split_once('.').unwrap();
    let b64 = |v: Value| URL_SAFE_NO_PAD.encode(v.to_string());

    // alg: none, with and without a signature.
    let none = b64(json!({"alg": "none", "typ": "JWT"}));
    for token in [format!("{none}.{body}."), format!("{none}.{body}.{_sig}")] {
        let e = check(&token, &expected()).unwrap_err();
        assert!(e.starts_with("error verifying token signature"), "{e}");
    }
    // HS256 with the RSA public key as the HMAC secret.
    let hs = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims(json!({})),
        &EncodingKey::from_secret(RSA_A_PUB.as_bytes()).unwrap(),
    )
    .unwrap();
    assert_eq!(check(&hs, &expected()).unwrap_err(), NO_KEY);
    // Signed by a key we do not hold, whatever kid it claims.
    let other = sign(Algorithm::RS256, RSA_B, Some("a"), &claims(json!({})));
    assert_eq!(check(&other, &expected()).unwrap_err(), NO_KEY);
    // The claims changed under a valid signature.
    let tampered = format!("{head}.{}.{_sig}", b64(claims(json!({"sub": "root"}))));
    assert_eq!(check(&tampered, &expected()).unwrap_err(), NO_KEY);
    // An algorithm the configuration does not allow.
    let es = sign(Algorithm::ES256, EC_A, None, &claims(json!({})));
    let only_rs = Expected {
        algorithms: &[Algorithm::RS256],
        ..expected()
    };
    assert_eq!(check(&es, &only_rs).unwrap_err(), NO_KEY);
    // Oversized: refused before decoding.
    let big = "a".repeat(MAX_JWT_BYTES + 1);
    assert!(
        check(&big, &expected())
            .unwrap_err()
            .contains("larger than")
    );
    // Garbage.
    assert!(
        check("x.y.z", &expected())
            .unwrap_err()
            .starts_with("error verifying token signature")
    );
}

#[test]
fn issuer_subject_audience() {
    let t = |extra| sign(Algorithm::RS256, RSA_A, None, &claims(extra));
    assert_eq!(
        check(&t(json!({"iss": "https://evil"})), &expected()).unwrap_err(),
        "invalid issuer (iss) claim"
    );
    assert_eq!(
        check(&t(json!({"iss": null})), &expected()).unwrap_err(),
        "invalid issuer (iss) claim"
    );
    assert_eq!(
        check(&t(json!({"aud": "other"})), &expected()).unwrap_err(),
        "invalid audience (aud) claim: audience claim does not match any expected audience"
    );
    assert!(check(&t(json!({"aud": ["other", "vault"]})), &expected()).is_ok());
    let sub = Expected {
        subject: "bob",
        ..expected()
    };
    assert_eq!(
        check(&t(json!({})), &sub).unwrap_err(),
        "invalid subject (sub) claim"
    );
    assert!(
        check(&t(json!({"sub": 5})), &expected())
            .unwrap_err()
            .contains("not a string")
    );
}

#[test]
fn times_with_vaults_leeways() {
    let at = |extra: Value, leeways: Leeways| {
        let token = sign(Algorithm::RS256, RSA_A, None, &claims(extra));
        let e = Expected {
            leeways,
            ..expected()
        };
        check(&token, &e).map(|_| ())
    };
    let default = Leeways::default();
    let expired = Err("invalid expiration time (exp) claim: token is expired".to_owned());
    let early = Err("invalid not before (nbf) claim: token not yet valid".to_owned());
    // Default: 60 s of clock skew on exp and nbf.
    assert_eq!(at(json!({"exp": NOW - 55}), default), Ok(()));
    assert_eq!(at(json!({"exp": NOW - 65}), default), expired);
    assert_eq!(at(json!({"nbf": NOW + 55}), default), Ok(()));
    assert_eq!(at(json!({"nbf": NOW + 65}), default), early);
    // iat alone: exp is iat + 150 s, plus the skew.
    assert_eq!(at(json!({"exp": null, "iat": NOW - 200}), default), Ok(()));
    assert_eq!(at(json!({"exp": null, "iat": NOW - 220}), default), expired);
    // iat in the future stands for a missing nbf.
    assert_eq!(at(json!({"iat": NOW + 400}), default), early);
    // No skew at all (-1); the expiration leeway only sizes a missing exp.
    let strict = Leeways {
        clock_skew: -1,
        expiration: 100,
        not_before: -1,
    };
    assert_eq!(at(json!({"exp": NOW - 5}), strict), expired);
    assert_eq!(at(json!({"exp": null, "iat": NOW - 95}), strict), Ok(()));
    assert_eq!(at(json!({"exp": null, "iat": NOW - 105}), strict), expired);
    // None of the three, or a string where a number belongs.
    assert!(
        at(json!({"exp": null}), default)
            .unwrap_err()
            .starts_with("no issued at (iat)")
    );
    assert!(
        at(json!({"exp": (NOW + 60).to_string()}), default)
            .unwrap_err()
            .contains("NumericDate")
    );
}

#[test]
fn supported_algorithms_are_asymmetric() {
    assert_eq!(parse_alg("RS256"), Some(Algorithm::RS256));
    assert_eq!(parse_alg("EdDSA"), Some(Algorithm::EdDSA));
    for refused in ["HS256", "none", "rs256", "ES512", ""] {
        assert_eq!(parse_alg(refused), None, "{refused}");
    }
    assert!(
        SUPPORTED_ALGS
            .iter()
            .all(|a| a.family() != jsonwebtoken::AlgorithmFamily::Hmac)
    );
    assert!(StaticKeys::from_pems(&["nope".to_owned()]).is_err());
}

#[test]
fn dates_beyond_any_clock_and_a_null_audience_are_refused() {
    // 1e300 would saturate to a date that never comes: refused, not "never expires".
    for exp in [json!(1e300), json!(-1e300), json!(1.8e19)] {
        let token = sign(
            Algorithm::RS256,
            RSA_A,
            None,
            &claims(json!({ "exp": exp })),
        );
        assert_eq!(
            check(&token, &expected()).unwrap_err(),
            "invalid exp claim",
            "{exp}"
        );
    }
    // A fraction of a second is still a date.
    let fraction = json!(NOW as f64 + 30.5);
    let token = sign(
        Algorithm::RS256,
        RSA_A,
        None,
        &claims(json!({ "exp": fraction })),
    );
    assert!(check(&token, &expected()).is_ok());
    // Absent and null differ: a null audience is malformed.
    let mut null_aud = claims(json!({}));
    null_aud["aud"] = Value::Null;
    let token = sign(Algorithm::RS256, RSA_A, None, &null_aud);
    let any_audience = Expected {
        issuer: "https://issuer",
        ..Expected::default()
    };
    assert!(check(&token, &any_audience).unwrap_err().contains("aud"));
}
