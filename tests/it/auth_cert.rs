//! `auth/cert` over real listeners (one HTTPS, one plain HTTP, served
//! in-process by `transitd::serve`): CAs and leafs made with rcgen, logins
//! with ureq presenting client certificates.

use std::net::SocketAddr;
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, CustomExtension, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, SanType,
};
use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};
use transitd::serve::{Listener, TlsFiles};
use transitd::{AppState, Limits};

use crate::support::{ROOT, TestApp};

/// An OID of our own for the required-extension tests.
const EXT_OID: &[u64] = &[1, 3, 6, 1, 4, 1, 55555, 1];

struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Ca {
    fn new(cn: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        Self {
            issuer: CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap(),
        }
    }

    /// An intermediate CA signed by this one.
    fn intermediate(&self, cn: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        Self {
            issuer: CertifiedIssuer::signed_by(params, KeyPair::generate().unwrap(), &self.issuer)
                .unwrap(),
        }
    }

    fn pem(&self) -> String {
        self.issuer.pem()
    }

    fn der(&self) -> Vec<u8> {
        self.issuer.der().to_vec()
    }

    /// A client leaf for `cn`, shaped further by `edit`.
    fn leaf(&self, cn: &str, edit: impl FnOnce(&mut CertificateParams)) -> Leaf {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.use_authority_key_identifier_extension = true;
        edit(&mut params);
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Leaf {
            chain: vec![cert.der().to_vec()],
            key: key.serialize_pem(),
            pem: cert.pem(),
        }
    }
}

#[derive(Clone)]
struct Leaf {
    /// Leaf first, then what else the client presents.
    chain: Vec<Vec<u8>>,
    /// PKCS#8 PEM.
    key: String,
    pem: String,
}

impl Leaf {
    fn with(mut self, more: &Ca) -> Self {
        self.chain.push(more.der());
        self
    }
}

struct Server {
    app: TestApp,
    https: SocketAddr,
    http: SocketAddr,
    server_ca: Vec<u8>,
    _dir: tempfile::TempDir,
    _stop: tokio::sync::oneshot::Sender<()>,
}

/// A server certificate for 127.0.0.1 written to `dir` (`cert.pem`,
/// `key.pem`); the CA that signed it.
fn server_pki(dir: &std::path::Path) -> Ca {
    let ca = Ca::new("server ca");
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&key, &ca.issuer)
        .unwrap();
    std::fs::write(dir.join("cert.pem"), cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), key.serialize_pem()).unwrap();
    ca
}

impl Server {
    async fn start() -> Self {
        Self::asking(true).await
    }

    /// `client_certs: false`: the listener's `tls_disable_client_certs`.
    async fn asking(client_certs: bool) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let ca = server_pki(dir.path());
        let files = TlsFiles {
            cert_file: dir.path().join("cert.pem"),
            key_file: dir.path().join("key.pem"),
            min_tls13: false,
            client_certs,
        };
        let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let tls = Listener::bind(any, Some(files)).await.unwrap();
        let plain = Listener::bind(any, None).await.unwrap();
        let (https, http) = (tls.local_addr().unwrap(), plain.local_addr().unwrap());
        let state = Arc::new(AppState::dev(ROOT, Limits::default()));
        let app = TestApp::from_state(Arc::clone(&state), ROOT);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(transitd::serve::serve(
            transitd::app(state),
            vec![tls, plain],
            async move {
                let _ = stopped.await;
            },
        ));
        app.write("sys/auth/cert", json!({"type": "cert"}))
            .await
            .expect(204);
        Self {
            app,
            https,
            http,
            server_ca: ca.der(),
            _dir: dir,
            _stop: stop,
        }
    }

    /// POST `path` over HTTPS presenting `client` (if any): status and body.
    async fn https(&self, path: &str, client: Option<&Leaf>, body: Value) -> (u16, Value) {
        let url = format!("https://{}/v1/{path}", self.https);
        let (ca, client) = (self.server_ca.clone(), client.cloned());
        tokio::task::spawn_blocking(move || post(&url, Some((&ca, client.as_ref())), &body, None))
            .await
            .unwrap()
            .unwrap()
    }

    async fn login(&self, client: &Leaf, body: Value) -> (u16, Value) {
        self.https("auth/cert/login", Some(client), body).await
    }

    /// A failed login's 400 and its error text.
    async fn refused(&self, client: &Leaf, body: Value) -> String {
        let (status, reply) = self.login(client, body).await;
        assert_eq!(status, 400, "{reply}");
        reply["errors"][0].as_str().unwrap().to_owned()
    }
}

/// A POST with ureq, over TLS when `tls` gives the server's CA (and the
/// client's certificate); `Err` when the connection fails.
fn post(
    url: &str,
    tls: Option<(&[u8], Option<&Leaf>)>,
    body: &Value,
    token: Option<&str>,
) -> Result<(u16, Value), String> {
    let mut config = ureq::Agent::config_builder().http_status_as_error(false);
    if let Some((ca, client)) = tls {
        let ca = ureq::tls::Certificate::from_der(ca).to_owned();
        let client = client.map(|leaf| {
            let chain: Vec<_> = leaf
                .chain
                .iter()
                .map(|der| ureq::tls::Certificate::from_der(der).to_owned())
                .collect();
            let key = ureq::tls::PrivateKey::from_pem(leaf.key.as_bytes()).unwrap();
            ureq::tls::ClientCert::new_with_certs(&chain, key)
        });
        let tls = ureq::tls::TlsConfig::builder()
            .provider(ureq::tls::TlsProvider::Rustls)
            .root_certs(ureq::tls::RootCerts::Specific(Arc::new(vec![ca])))
            .client_cert(client)
            .build();
        config = config.tls_config(tls);
    }
    let agent: ureq::Agent = config.build().into();
    let mut request = agent.post(url);
    if let Some(token) = token {
        request = request.header("X-Vault-Token", token);
    }
    let mut reply = request.send_json(body).map_err(|e| e.to_string())?;
    let status = reply.status().as_u16();
    let text = reply.body_mut().read_to_string().unwrap_or_default();
    Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
}

const NO_TRUST: &str = "invalid certificate or no client certificate supplied";
const NO_MATCH: &str =
    "no chain matching all constraints could be found for this login certificate";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cert_login_trusts_the_entry_ca_and_its_names_only() {
    let server = Server::start().await;
    let ca = Ca::new("client ca");
    server
        .app
        .write(
            "auth/cert/certs/web",
            json!({
                "certificate": ca.pem(),
                "display_name": "webapp",
                "allowed_common_names": ["web-*"],
                "token_policies": ["p1"],
                "token_ttl": "1h",
            }),
        )
        .await
        .expect(204);

    let good = ca.leaf("web-1", |_| {});
    let (status, reply) = server.login(&good, json!({})).await;
    assert_eq!(status, 200, "{reply}");
    let auth = &reply["auth"];
    assert_eq!(auth["policies"], json!(["default", "p1"]));
    assert_eq!(auth["lease_duration"], 3600);
    let meta = &auth["metadata"];
    assert_eq!(meta["cert_name"], "web");
    assert_eq!(meta["common_name"], "web-1");
    assert!(
        meta["serial_number"]
            .as_str()
            .unwrap()
            .chars()
            .all(|c| c.is_ascii_digit()),
        "{meta}"
    );
    // rcgen gives leafs no subject key ID: empty, as Go formats a nil one.
    assert_eq!(meta["subject_key_id"], "");
    let aki = meta["authority_key_id"].as_str().unwrap();
    assert!(
        aki.len() > 2 && aki.split(':').all(|b| b.len() == 2),
        "{aki}"
    );
    let token = auth["client_token"].as_str().unwrap();
    let me = server
        .app
        .as_token(Some(token))
        .read("auth/token/lookup-self")
        .await
        .expect(200);
    assert_eq!(me.body["data"]["display_name"], "cert-webapp");
    assert_eq!(me.body["data"]["path"], "auth/cert/login");

    // By name: the named entry only.
    assert_eq!(server.login(&good, json!({"name": "web"})).await.0, 200);
    assert_eq!(
        server.refused(&good, json!({"name": "other"})).await,
        NO_TRUST
    );

    // A name the entry does not allow, a CA it does not know, an expired leaf.
    let wrong_name = ca.leaf("db-1", |_| {});
    assert_eq!(server.refused(&wrong_name, json!({})).await, NO_MATCH);
    let stranger = Ca::new("client ca").leaf("web-1", |_| {});
    assert_eq!(server.refused(&stranger, json!({})).await, NO_TRUST);
    let expired = ca.leaf("web-1", |p| {
        p.not_before = OffsetDateTime::now_utc() - Duration::days(10);
        p.not_after = OffsetDateTime::now_utc() - Duration::days(1);
    });
    assert_eq!(
        server.refused(&expired, json!({})).await,
        "failed to verify client's certificate: certificate has expired"
    );
    // A server-only certificate is not for client authentication.
    let server_only = ca.leaf("web-1", |p| {
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    });
    assert_eq!(
        server.refused(&server_only, json!({})).await,
        "failed to verify client's certificate: certificate specifies an incompatible key usage"
    );

    // A chain through an intermediate the client presents.
    let intermediate = ca.intermediate("client intermediate");
    let chained = intermediate.leaf("web-2", |_| {}).with(&intermediate);
    assert_eq!(server.login(&chained, json!({})).await.0, 200);
    // Without the intermediate it does not chain to the entry.
    let unchained = Leaf {
        chain: chained.chain[..1].to_vec(),
        ..chained.clone()
    };
    assert_eq!(server.refused(&unchained, json!({})).await, NO_TRUST);

    // No certificate on TLS; a plain-HTTP listener.
    let (status, reply) = server.https("auth/cert/login", None, json!({})).await;
    assert_eq!(
        (status, &reply["errors"][0]),
        (400, &json!("no client certificate found"))
    );
    let url = format!("http://{}/v1/auth/cert/login", server.http);
    let (status, reply) = tokio::task::spawn_blocking(move || post(&url, None, &json!({}), None))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (status, &reply["errors"][0]),
        (400, &json!("no client certificate found"))
    );

    // A certificate grants nothing outside the login.
    let (status, _) = server.https("sys/auth", Some(&good), json!({})).await;
    assert_eq!(status, 403);

    // Revoked trust: the entry deleted, its CA's leafs no longer log in;
    // the token issued before stays valid until it expires (as in Vault,
    // where only a renewal re-checks the certificate).
    server
        .app
        .call("DELETE", "auth/cert/certs/web", json!({}))
        .await
        .expect(204);
    assert_eq!(server.refused(&good, json!({})).await, NO_TRUST);
    assert_eq!(
        server.refused(&good, json!({"name": "web"})).await,
        NO_TRUST
    );
    server
        .app
        .as_token(Some(token))
        .read("auth/token/lookup-self")
        .await
        .expect(200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cert_login_checks_sans_ous_extensions_and_pinned_leafs() {
    let server = Server::start().await;
    let ca = Ca::new("client ca");
    server
        .app
        .write(
            "auth/cert/certs/svc",
            json!({
                "certificate": ca.pem(),
                "allowed_dns_sans": ["*.svc.example"],
                "allowed_email_sans": ["*@example.com"],
                "allowed_uri_sans": ["spiffe://example/*"],
                "allowed_organizational_units": ["ops"],
                "required_extensions": ["1.3.6.1.4.1.55555.1:prod-*"],
                "allowed_metadata_extensions": ["1.3.6.1.4.1.55555.1"],
            }),
        )
        .await
        .expect(204);
    let shaped = |dns: &str, email: &str, uri: &str, ou: &str, ext: &str| {
        let (dns, email, uri, ou, ext) = (
            dns.to_owned(),
            email.to_owned(),
            uri.to_owned(),
            ou.to_owned(),
            ext.to_owned(),
        );
        ca.leaf("svc", move |p| {
            p.subject_alt_names = vec![
                SanType::DnsName(dns.try_into().unwrap()),
                SanType::Rfc822Name(email.try_into().unwrap()),
                SanType::URI(uri.try_into().unwrap()),
            ];
            p.distinguished_name
                .push(DnType::OrganizationalUnitName, ou);
            // A UTF8String, as Go's asn1 reads it.
            let mut value = vec![0x0c, u8::try_from(ext.len()).unwrap()];
            value.extend_from_slice(ext.as_bytes());
            p.custom_extensions = vec![CustomExtension::from_oid_content(EXT_OID, value)];
        })
    };
    let good = shaped(
        "a.svc.example",
        "x@example.com",
        "spiffe://example/a",
        "ops",
        "prod-eu",
    );
    let (status, reply) = server.login(&good, json!({"name": "svc"})).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["auth"]["metadata"]["1-3-6-1-4-1-55555-1"], "prod-eu");
    for bad in [
        shaped(
            "a.other.example",
            "x@example.com",
            "spiffe://example/a",
            "ops",
            "prod-eu",
        ),
        shaped(
            "a.svc.example",
            "x@evil.com",
            "spiffe://example/a",
            "ops",
            "prod-eu",
        ),
        shaped(
            "a.svc.example",
            "x@example.com",
            "spiffe://evil/a",
            "ops",
            "prod-eu",
        ),
        shaped(
            "a.svc.example",
            "x@example.com",
            "spiffe://example/a",
            "dev",
            "prod-eu",
        ),
        shaped(
            "a.svc.example",
            "x@example.com",
            "spiffe://example/a",
            "ops",
            "test-eu",
        ),
    ] {
        assert_eq!(server.refused(&bad, json!({"name": "svc"})).await, NO_MATCH);
    }
    let no_ext = ca.leaf("svc", |_| {});
    assert_eq!(server.refused(&no_ext, json!({})).await, NO_MATCH);

    // A pinned leaf: that certificate only, not its siblings.
    let pinned = ca.leaf("pinned", |_| {});
    server
        .app
        .write(
            "auth/cert/certs/pin",
            json!({"certificate": pinned.pem, "token_policies": "pinned"}),
        )
        .await
        .expect(204);
    let (status, reply) = server.login(&pinned, json!({"name": "pin"})).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["auth"]["policies"], json!(["default", "pinned"]));
    let sibling = ca.leaf("pinned", |_| {});
    assert_eq!(
        server.refused(&sibling, json!({"name": "pin"})).await,
        NO_TRUST
    );

    // Over-long and oversized chains are refused in the handshake.
    let mut long = good.clone();
    for _ in 0..transitd::serve::MAX_CLIENT_CHAIN {
        long = long.with(&ca);
    }
    let big = ca.leaf("svc", |p| {
        let size = transitd::serve::MAX_CLIENT_CHAIN_BYTES;
        let mut value = vec![0x04, 0x82, (size >> 8) as u8, size as u8];
        value.resize(size + 4, b'x');
        p.custom_extensions = vec![CustomExtension::from_oid_content(EXT_OID, value)];
    });
    for chain in [long, big] {
        let url = format!("https://{}/v1/auth/cert/login", server.https);
        let ca_der = server.server_ca.clone();
        let refused = tokio::task::spawn_blocking(move || {
            post(&url, Some((&ca_der, Some(&chain))), &json!({}), None)
        })
        .await
        .unwrap();
        assert!(refused.is_err(), "{refused:?}");
    }
}

#[tokio::test]
async fn cert_entries_config_and_refusals() {
    let app = TestApp::new();
    app.write("sys/auth/cert", json!({"type": "cert"}))
        .await
        .expect(204);
    let ca = Ca::new("client ca");
    let err = |reply: crate::support::Reply| reply.body["errors"][0].as_str().unwrap().to_owned();

    let bad = app
        .write("auth/cert/certs/x", json!({"certificate": "not a pem"}))
        .await
        .expect(400);
    assert_eq!(err(bad), "failed to parse certificate");
    // A leaf beside a CA would be a trust anchor: its key could issue any name.
    let client_leaf = ca.leaf("anyone", |_| {});
    let bad = app
        .write(
            "auth/cert/certs/x",
            json!({"certificate": format!("{}{}", ca.pem(), client_leaf.pem)}),
        )
        .await
        .expect(400);
    assert_eq!(
        err(bad),
        "a certificate entry that starts with a CA may hold only CA certificates"
    );
    let server_leaf = ca.leaf("srv", |p| {
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    });
    let bad = app
        .write("auth/cert/certs/x", json!({"certificate": server_leaf.pem}))
        .await
        .expect(400);
    assert_eq!(
        err(bad),
        "nonCA certificates should have TLS client authentication set as an extended key usage"
    );
    for (field, value) in [
        ("ocsp_enabled", json!(true)),
        ("ocsp_servers_override", json!(["http://ocsp"])),
        ("bound_cidrs", json!(["10.0.0.0/8"])),
        ("token_period", json!("1h")),
    ] {
        let bad = app
            .write(
                "auth/cert/certs/x",
                json!({"certificate": ca.pem(), field: value}),
            )
            .await
            .expect(400);
        assert_eq!(err(bad), format!("{field} is not supported by transitd"));
    }
    let bad = app
        .write(
            "auth/cert/certs/x",
            json!({"certificate": ca.pem(), "token_ttl": "2h", "token_max_ttl": "1h"}),
        )
        .await
        .expect(400);
    assert_eq!(
        err(bad),
        "'token_ttl' cannot be greater than 'token_max_ttl'"
    );
    app.call("LIST", "auth/cert/certs", json!({}))
        .await
        .expect(404);

    app.write(
        "auth/cert/certs/Web",
        json!({"certificate": ca.pem(), "policies": "a,b", "allowed_common_names": "x,y"}),
    )
    .await
    .expect(204);
    let read = app.read("auth/cert/certs/web").await.expect(200);
    let data = &read.body["data"];
    assert_eq!(data["display_name"], "web");
    assert_eq!(data["certificate"], ca.pem());
    assert_eq!(data["allowed_common_names"], json!(["x", "y"]));
    assert_eq!(
        data["allowed_dns_sans"],
        Value::Null,
        "never set: null, as OpenBao"
    );
    assert_eq!(data["token_policies"], json!(["a", "b"]));
    assert_eq!(data["policies"], json!(["a", "b"]));
    assert_eq!(data["ocsp_enabled"], false);
    let list = app
        .call("LIST", "auth/cert/certs", json!({}))
        .await
        .expect(200);
    assert_eq!(list.body["data"]["keys"], json!(["web"]));

    let config = app.read("auth/cert/config").await.expect(200);
    assert_eq!(
        config.body["data"],
        json!({"disable_binding": false, "enable_identity_alias_metadata": false, "ocsp_cache_size": 0})
    );
    app.write(
        "auth/cert/config",
        json!({"disable_binding": false, "enable_identity_alias_metadata": false}),
    )
    .await
    .expect(204);
    for (field, value) in [
        ("disable_binding", json!(true)),
        ("enable_identity_alias_metadata", json!(true)),
        ("ocsp_cache_size", json!(100)),
    ] {
        let bad = app
            .write("auth/cert/config", json!({ field: value }))
            .await
            .expect(400);
        assert_eq!(err(bad), format!("{field} is not supported by transitd"));
    }
    // In-process (no listener): no TLS connection, no certificate.
    let bad = app
        .as_token(None)
        .write("auth/cert/login", json!({}))
        .await
        .expect(400);
    assert_eq!(err(bad), "no client certificate found");
}

/// Two nodes on PostgreSQL, each also listening with TLS: an entry written
/// on node 0 serves logins on node 1's TLS listener, and its deletion on
/// node 0 ends them there.
#[test]
fn cert_entries_written_on_one_node_serve_logins_on_another() {
    use crate::cluster::{PG_URL, Schema, database_lock};
    use crate::node::Site;

    let _db = database_lock();
    let schema = Schema::new();
    let dir = tempfile::tempdir().unwrap();
    let server_ca = server_pki(dir.path());
    std::fs::write(dir.path().join("unseal.key"), [42u8; 32]).unwrap();
    let tls_ports = [
        transitd_test_support::free_port(),
        transitd_test_support::free_port(),
    ];
    let sites: Vec<Site> = tls_ports
        .iter()
        .map(|port| {
            Site::with_storage(
                &format!(
                    "storage \"postgresql\" {{\n  connection_url = \"{PG_URL}\"\n  schema = \"{}\"\n}}",
                    schema.0
                ),
                &format!(
                    "disable_mlock = true\nseal \"static\" {{\n  current_key_id = \"k1\"\n  current_key = \"file://{d}/unseal.key\"\n}}\n\
                     listener \"tcp\" {{\n  address = \"127.0.0.1:{port}\"\n  tls_cert_file = \"{d}/cert.pem\"\n  tls_key_file = \"{d}/key.pem\"\n}}",
                    d = dir.path().display()
                ),
            )
        })
        .collect();
    let first = sites[0].start();
    let (_, root) = first.init(1, 1);
    let second = sites[1].start();

    let ca = Ca::new("client ca");
    let leaf = ca.leaf("web-1", |_| {});
    for (path, body) in [
        ("sys/auth/cert", json!({"type": "cert"})),
        (
            "auth/cert/certs/web",
            json!({"certificate": ca.pem(), "allowed_common_names": "web-*"}),
        ),
    ] {
        let (status, reply) = first.call("POST", path, Some(&root), Some(body));
        assert_eq!(status, 204, "{path}: {reply}");
    }
    let login_on_second = || {
        let url = format!("https://127.0.0.1:{}/v1/auth/cert/login", tls_ports[1]);
        post(
            &url,
            Some((&server_ca.der(), Some(&leaf))),
            &json!({}),
            None,
        )
        .unwrap()
    };
    let eventually = |what: &str, check: &dyn Fn((u16, Value)) -> bool| {
        let start = std::time::Instant::now();
        while !check(login_on_second()) {
            assert!(start.elapsed().as_secs() < 5, "{what}: not seen after 5 s");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    };
    eventually("login on node 1", &|(status, _)| status == 200);
    let (status, _) = first.call("DELETE", "auth/cert/certs/web", Some(&root), None);
    assert_eq!(status, 204);
    eventually("refusal on node 1", &|(status, reply)| {
        status == 400 && reply["errors"][0] == NO_TRUST
    });
    drop(second);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_that_does_not_ask_gets_no_certificate() {
    let server = Server::asking(false).await;
    let ca = Ca::new("client ca");
    server
        .app
        .write("auth/cert/certs/web", json!({"certificate": ca.pem()}))
        .await
        .expect(204);
    // The client has a certificate, but is never asked for it.
    let leaf = ca.leaf("web-1", |_| {});
    assert_eq!(
        server.refused(&leaf, json!({})).await,
        "no client certificate found"
    );
}
