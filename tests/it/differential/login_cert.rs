//! Script: `auth/cert` entries, configuration and the login's refusal on
//! a plain-HTTP connection (both servers listen without TLS here; logins
//! with client certificates are covered by `auth_cert.rs` and the Python
//! suite, see README "TLS certificate login").

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair,
};
use serde_json::json;

use super::harness::Script;

/// A CA, a client leaf and a server-only leaf of it (PEM).
fn pki() -> (String, String, String) {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "diff CA");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
    let leaf = |usage: ExtendedKeyUsagePurpose| {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, "app");
        params.extended_key_usages = vec![usage];
        params
            .signed_by(&KeyPair::generate().unwrap(), &ca)
            .unwrap()
            .pem()
    };
    (
        ca.pem(),
        leaf(ExtendedKeyUsagePurpose::ClientAuth),
        leaf(ExtendedKeyUsagePurpose::ServerAuth),
    )
}

pub(super) fn login_cert(s: &mut Script<'_>) {
    let (ca, client_leaf, server_leaf) = pki();
    s.section("cert config");
    s.post("enable", "sys/auth/cert", json!({"type": "cert"}))
        .go();
    s.get("read defaults", "auth/cert/config").go();
    s.post(
        "write defaults",
        "auth/cert/config",
        json!({"disable_binding": false, "enable_identity_alias_metadata": false}),
    )
    .go();
    s.get("read after", "auth/cert/config").go();

    s.section("cert certs");
    s.list("list empty", "auth/cert/certs").go();
    s.get("read missing", "auth/cert/certs/web").go();
    for (label, body) in [
        ("no certificate", json!({})),
        ("garbage certificate", json!({"certificate": "not a pem"})),
        ("server-only leaf", json!({"certificate": server_leaf})),
        (
            "ttl above max_ttl",
            json!({"certificate": ca, "token_ttl": "2h", "token_max_ttl": "1h"}),
        ),
        (
            "valid CA",
            json!({"certificate": ca, "display_name": "webapp",
                   "allowed_common_names": ["app", "web-*"], "allowed_dns_sans": "a.example,b.example",
                   "allowed_email_sans": ["ops@example.com"], "allowed_uri_sans": ["spiffe://t/*"],
                   "allowed_organizational_units": ["ops"],
                   "required_extensions": ["1.2.3.4:prod-*"],
                   "token_policies": "web", "token_ttl": "20m", "token_max_ttl": "1h"}),
        ),
    ] {
        s.post(label, "auth/cert/certs/web", body).go();
    }
    s.get("read", "auth/cert/certs/web").go();
    s.post(
        "legacy fields",
        "auth/cert/certs/old",
        json!({"certificate": client_leaf, "policies": "a,b", "ttl": "10m", "max_ttl": "1h"}),
    )
    .go();
    s.get("read legacy", "auth/cert/certs/old").go();
    s.post(
        "update keeps the rest",
        "auth/cert/certs/old",
        json!({"display_name": "legacy"}),
    )
    .go();
    s.get("read updated", "auth/cert/certs/old").go();
    s.list("list", "auth/cert/certs").go();

    s.section("cert login");
    s.post("plain http", "auth/cert/login", json!({}))
        .token(None)
        .go();
    s.post(
        "plain http by name",
        "auth/cert/login",
        json!({"name": "web"}),
    )
    .token(None)
    .go();

    s.section("cert delete");
    s.delete("delete", "auth/cert/certs/web").go();
    s.get("read deleted", "auth/cert/certs/web").go();
    s.list("list after", "auth/cert/certs").go();
}
