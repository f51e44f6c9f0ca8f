//! A JWT issuer for the login tests: an HTTPS server (`https_fixture`) serving an OIDC discovery document and a JWKS, whose keys the test
//! rotates, which counts the JWKS fetches, and which can be taken down or
//! made to answer garbage. Tokens are signed with the fixture keys in
//! `tests/fixtures/jwt/` (RS256 and ES256).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use crate::https_fixture;

pub const RSA_A: &str = include_str!("../fixtures/jwt/rsa-a.key");
pub const RSA_A_PUB: &str = include_str!("../fixtures/jwt/rsa-a.pub");
pub const RSA_B: &str = include_str!("../fixtures/jwt/rsa-b.key");
pub const EC_A: &str = include_str!("../fixtures/jwt/ec-a.key");

/// A signing key of the issuer: its algorithm, private PEM and `kid`.
#[derive(Clone, Copy, Debug)]
pub struct SigningKey {
    pub alg: Algorithm,
    pub pem: &'static str,
    pub kid: &'static str,
}

pub const KEY_A: SigningKey = SigningKey {
    alg: Algorithm::RS256,
    pem: RSA_A,
    kid: "key-a",
};
pub const KEY_B: SigningKey = SigningKey {
    alg: Algorithm::RS256,
    pem: RSA_B,
    kid: "key-b",
};
pub const KEY_EC: SigningKey = SigningKey {
    alg: Algorithm::ES256,
    pem: EC_A,
    kid: "key-ec",
};

impl SigningKey {
    fn encoding(&self) -> EncodingKey {
        match self.alg {
            Algorithm::ES256 => EncodingKey::from_ec_pem(self.pem.as_bytes()),
            _ => EncodingKey::from_rsa_pem(self.pem.as_bytes()),
        }
        .unwrap()
    }

    pub fn jwk(&self) -> Jwk {
        let mut jwk = Jwk::from_encoding_key(&self.encoding(), self.alg).unwrap();
        jwk.common.key_id = Some(self.kid.to_owned());
        jwk
    }

    /// A token with `claims`, its header naming `kid` (the key's own unless given).
    pub fn sign_as(&self, kid: Option<&str>, claims: &Value) -> String {
        let mut header = Header::new(self.alg);
        header.kid = Some(kid.unwrap_or(self.kid).to_owned());
        jsonwebtoken::encode(&header, claims, &self.encoding()).unwrap()
    }

    pub fn sign(&self, claims: &Value) -> String {
        self.sign_as(None, claims)
    }
}

pub fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Claims a role bound to audience `vault` accepts, with `extra` merged in
/// (a `null` removes a claim).
pub fn claims(issuer: &str, extra: Value) -> Value {
    let mut c = json!({
        "iss": issuer, "sub": "repo:org/app:ref:main", "aud": "vault",
        "exp": now() + 300, "iat": now(), "email": "ci@example.com",
    });
    for (k, v) in extra.as_object().unwrap() {
        if v.is_null() {
            c.as_object_mut().unwrap().remove(k);
        } else {
            c[k] = v.clone();
        }
    }
    c
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Serving,
    /// 503 to everything.
    Down,
    /// 200 with a body that is not JSON.
    Garbage,
}

struct State {
    keys: Vec<SigningKey>,
    mode: Mode,
    /// The issuer named in the discovery document (empty: its own URL).
    issuer: String,
}

pub struct Issuer {
    pub url: String,
    pub ca_pem: String,
    state: Arc<Mutex<State>>,
    jwks_fetches: Arc<AtomicUsize>,
}

impl Issuer {
    /// An issuer on a free local port, publishing `keys`.
    pub fn start(keys: &[SigningKey]) -> Self {
        let state = Arc::new(Mutex::new(State {
            keys: keys.to_vec(),
            mode: Mode::Serving,
            issuer: String::new(),
        }));
        let jwks_fetches = Arc::new(AtomicUsize::new(0));
        let (s, f) = (Arc::clone(&state), Arc::clone(&jwks_fetches));
        let server = https_fixture::start(move |request, base| {
            let state = s.lock().unwrap();
            match (state.mode, request.path.as_str()) {
                (Mode::Down, _) => (503, "down".to_owned()),
                (Mode::Garbage, _) => (200, "<html>not json".to_owned()),
                (Mode::Serving, "/.well-known/openid-configuration") => {
                    let issuer = if state.issuer.is_empty() {
                        base
                    } else {
                        &state.issuer
                    };
                    (
                        200,
                        json!({"issuer": issuer, "jwks_uri": format!("{base}/keys")}).to_string(),
                    )
                }
                (Mode::Serving, "/keys") => {
                    f.fetch_add(1, Ordering::SeqCst);
                    let set = JwkSet {
                        keys: state.keys.iter().map(SigningKey::jwk).collect(),
                    };
                    (200, serde_json::to_string(&set).unwrap())
                }
                _ => (404, "{}".to_owned()),
            }
        });
        Self {
            url: server.url,
            ca_pem: server.ca_pem,
            state,
            jwks_fetches,
        }
    }

    pub fn jwks_url(&self) -> String {
        format!("{}/keys", self.url)
    }

    pub fn publish(&self, keys: &[SigningKey]) {
        self.state.lock().unwrap().keys = keys.to_vec();
    }

    pub fn set_mode(&self, mode: Mode) {
        self.state.lock().unwrap().mode = mode;
    }

    /// The issuer the discovery document names.
    pub fn claim_issuer(&self, issuer: &str) {
        self.state.lock().unwrap().issuer = issuer.to_owned();
    }

    pub fn jwks_fetches(&self) -> usize {
        self.jwks_fetches.load(Ordering::SeqCst)
    }
}
