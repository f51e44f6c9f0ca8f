//! A JWT issuer for the login tests: an HTTPS server (its own CA, made with
//! rcgen) serving an OIDC discovery document and a JWKS, whose keys the test
//! rotates, which counts the JWKS fetches, and which can be taken down or
//! made to answer garbage. Tokens are signed with the fixture keys in
//! `tests/fixtures/jwt/` (RS256 and ES256).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

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
    /// The issuer named in the discovery document (its own URL unless changed).
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
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca =
            rcgen::CertifiedIssuer::self_signed(ca_params, rcgen::KeyPair::generate().unwrap())
                .unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()])
            .unwrap()
            .signed_by(&key, &ca)
            .unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone()],
                rustls_pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
            )
            .unwrap();
        let config = Arc::new(config);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!(
            "https://127.0.0.1:{}",
            listener.local_addr().unwrap().port()
        );
        let state = Arc::new(Mutex::new(State {
            keys: keys.to_vec(),
            mode: Mode::Serving,
            issuer: url.clone(),
        }));
        let jwks_fetches = Arc::new(AtomicUsize::new(0));
        let (s, f, base) = (Arc::clone(&state), Arc::clone(&jwks_fetches), url.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (config, s, f, base) = (
                    Arc::clone(&config),
                    Arc::clone(&s),
                    Arc::clone(&f),
                    base.clone(),
                );
                std::thread::spawn(move || serve(stream, config, &s, &f, &base));
            }
        });
        Self {
            url,
            ca_pem: ca.pem(),
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

fn serve(
    tcp: TcpStream,
    config: Arc<rustls::ServerConfig>,
    state: &Mutex<State>,
    fetches: &AtomicUsize,
    base: &str,
) {
    let Ok(conn) = rustls::ServerConnection::new(config) else {
        return;
    };
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let mut request = Vec::new();
    let mut buf = [0u8; 4096];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        match tls.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => request.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&request);
    let path = text.split_whitespace().nth(1).unwrap_or("/").to_owned();
    let (status, body) = {
        let state = state.lock().unwrap();
        match (state.mode, path.as_str()) {
            (Mode::Down, _) => ("503 Service Unavailable", "down".to_owned()),
            (Mode::Garbage, _) => ("200 OK", "<html>not json".to_owned()),
            (Mode::Serving, "/.well-known/openid-configuration") => (
                "200 OK",
                json!({"issuer": state.issuer, "jwks_uri": format!("{base}/keys")}).to_string(),
            ),
            (Mode::Serving, "/keys") => {
                fetches.fetch_add(1, Ordering::SeqCst);
                let set = JwkSet {
                    keys: state.keys.iter().map(SigningKey::jwk).collect(),
                };
                ("200 OK", serde_json::to_string(&set).unwrap())
            }
            _ => ("404 Not Found", "{}".to_owned()),
        }
    };
    let reply = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = tls.write_all(reply.as_bytes());
    let _ = tls.flush();
    tls.conn.send_close_notify();
    let _ = tls.flush();
}
