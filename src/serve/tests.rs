//! End-to-end tests of `serve`: plain HTTP and TLS clients against real
//! listeners, certificate reloads (also by `SIGHUP`) and graceful shutdown.

use super::*;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ConnectInfo;
use axum::routing::get;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_rustls::TlsConnector;

type Ca = CertifiedIssuer<'static, KeyPair>;

fn new_ca(name: &str) -> Ca {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

/// A server certificate for localhost and 127.0.0.1: (cert PEM, cert DER, key PEM).
fn new_leaf(ca: &Ca) -> (String, CertificateDer<'static>, String) {
    let key = KeyPair::generate().unwrap();
    let mut params =
        CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "transitd test server");
    let cert = params.signed_by(&key, ca).unwrap();
    (cert.pem(), cert.der().clone(), key.serialize_pem())
}

/// A tempdir holding cert.pem and key.pem, signed by its own CA.
struct Pki {
    dir: tempfile::TempDir,
    ca: Ca,
    leaf_der: CertificateDer<'static>,
}

impl Pki {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let ca = new_ca("transitd test CA 1");
        let (cert_pem, leaf_der, key_pem) = new_leaf(&ca);
        let pki = Pki { dir, ca, leaf_der };
        pki.write(&cert_pem, &key_pem);
        pki
    }

    fn files(&self, min_tls13: bool) -> TlsFiles {
        TlsFiles {
            cert_file: self.cert_path(),
            key_file: self.key_path(),
            min_tls13,
            client_certs: true,
        }
    }

    fn cert_path(&self) -> PathBuf {
        self.dir.path().join("cert.pem")
    }

    fn key_path(&self) -> PathBuf {
        self.dir.path().join("key.pem")
    }

    fn write(&self, cert_pem: &str, key_pem: &str) {
        std::fs::write(self.cert_path(), cert_pem).unwrap();
        std::fs::write(self.key_path(), key_pem).unwrap();
    }

    /// Replaces the files with a certificate from a brand-new CA, which is returned.
    fn rotate_to_new_ca(&self) -> (Ca, CertificateDer<'static>) {
        let ca = new_ca("transitd test CA 2");
        let (cert_pem, leaf_der, key_pem) = new_leaf(&ca);
        self.write(&cert_pem, &key_pem);
        (ca, leaf_der)
    }
}

fn client(trusted: &Ca, versions: &[&'static rustls::SupportedProtocolVersion]) -> TlsConnector {
    let mut roots = RootCertStore::empty();
    roots.add(trusted.der().clone()).unwrap();
    let mut config =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_protocol_versions(versions)
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    TlsConnector::from(Arc::new(config))
}

const BOTH: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS12, &rustls::version::TLS13];
const TLS12_ONLY: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS12];

fn request(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
}

/// Reads a `Connection: close` response to the end.
async fn read_response(mut io: impl AsyncRead + Unpin) -> String {
    let mut buf = Vec::new();
    let read = io.read_to_end(&mut buf).await;
    // A peer that closes without close_notify is fine once we have the bytes.
    if let Err(e) = read {
        assert!(!buf.is_empty(), "reading the response: {e}");
    }
    String::from_utf8(buf).unwrap()
}

struct TlsResponse {
    text: String,
    leaf: CertificateDer<'static>,
    alpn: Option<Vec<u8>>,
    version: Option<rustls::ProtocolVersion>,
}

/// GET over TLS to `localhost`; Err if the handshake fails.
async fn tls_get(
    address: SocketAddr,
    connector: &TlsConnector,
    path: &str,
) -> Result<TlsResponse, String> {
    let tcp = TcpStream::connect(address).await.unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let mut tls = connector
        .connect(name, tcp)
        .await
        .map_err(|e| e.to_string())?;
    let (leaf, alpn, version) = {
        let (_, session) = tls.get_ref();
        (
            session.peer_certificates().unwrap()[0].clone().into_owned(),
            session.alpn_protocol().map(<[u8]>::to_vec),
            session.protocol_version(),
        )
    };
    tls.write_all(request(path).as_bytes()).await.unwrap();
    let text = read_response(tls).await;
    Ok(TlsResponse {
        text,
        leaf,
        alpn,
        version,
    })
}

async fn http_get(address: SocketAddr, path: &str) -> (String, SocketAddr) {
    let mut tcp = TcpStream::connect(address).await.unwrap();
    let local = tcp.local_addr().unwrap();
    tcp.write_all(request(path).as_bytes()).await.unwrap();
    (read_response(tcp).await, local)
}

fn test_app() -> Router {
    Router::new()
        .route("/", get(|| async { "hello" }))
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_millis(400)).await;
                "slow done"
            }),
        )
        .route(
            "/peer",
            get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.to_string() }),
        )
}

struct Running {
    address: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), String>>,
}

impl Running {
    async fn stop(self) {
        let _ = self.stop.send(());
        let result = tokio::time::timeout(Duration::from_secs(5), self.task)
            .await
            .expect("serve did not return after shutdown")
            .unwrap();
        assert_eq!(result, Ok(()));
    }
}

async fn start(listener: Listener) -> Running {
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(serve(test_app(), vec![listener], async move {
        let _ = stopped.await;
    }));
    Running {
        address,
        stop,
        task,
    }
}

fn localhost() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

fn assert_ok(text: &str, body: &str) {
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(text.ends_with(body), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_tls_trusted_client_gets_200_untrusted_fails() {
    let pki = Pki::new();
    let listener = Listener::bind(localhost(), Some(pki.files(false)))
        .await
        .unwrap();
    assert!(listener.is_tls());
    let server = start(listener).await;

    // A client that connects and never sends a ClientHello must not hold
    // up the accept loop: handshakes run in their own tasks.
    let _stalled = TcpStream::connect(server.address).await.unwrap();

    let trusted = client(&pki.ca, BOTH);
    let response = tls_get(server.address, &trusted, "/").await.unwrap();
    assert_ok(&response.text, "hello");
    assert_eq!(response.leaf, pki.leaf_der);
    assert_eq!(response.alpn.as_deref(), Some(&b"http/1.1"[..]));
    assert_eq!(response.version, Some(rustls::ProtocolVersion::TLSv1_3));

    let tls12 = client(&pki.ca, TLS12_ONLY);
    let response = tls_get(server.address, &tls12, "/").await.unwrap();
    assert_ok(&response.text, "hello");
    assert_eq!(response.version, Some(rustls::ProtocolVersion::TLSv1_2));

    let stranger = client(&new_ca("some other CA"), BOTH);
    let error = tls_get(server.address, &stranger, "/").await.err();
    assert!(error.is_some(), "a client not trusting the CA connected");

    // Plain HTTP on a TLS port gets no HTTP answer.
    let mut tcp = TcpStream::connect(server.address).await.unwrap();
    tcp.write_all(request("/").as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let _ = tcp.read_to_end(&mut buf).await;
    assert!(!buf.starts_with(b"HTTP/1.1 200"));

    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_tls13_only_rejects_tls12_client() {
    let pki = Pki::new();
    let listener = Listener::bind(localhost(), Some(pki.files(true)))
        .await
        .unwrap();
    let server = start(listener).await;

    let tls12 = client(&pki.ca, TLS12_ONLY);
    assert!(tls_get(server.address, &tls12, "/").await.is_err());
    let modern = client(&pki.ca, BOTH);
    let response = tls_get(server.address, &modern, "/").await.unwrap();
    assert_ok(&response.text, "hello");
    assert_eq!(response.version, Some(rustls::ProtocolVersion::TLSv1_3));

    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_reload_tls_switches_certificate_for_new_connections() {
    let pki = Pki::new();
    let listener = Listener::bind(localhost(), Some(pki.files(false)))
        .await
        .unwrap();
    let reloader = listener.tls_reloader().unwrap();
    let server = start(listener).await;
    let old_client = client(&pki.ca, BOTH);
    assert_ok(
        &tls_get(server.address, &old_client, "/")
            .await
            .unwrap()
            .text,
        "hello",
    );

    let (new_ca, new_leaf) = pki.rotate_to_new_ca();
    reloader.reload().unwrap();

    let new_client = client(&new_ca, BOTH);
    let response = tls_get(server.address, &new_client, "/").await.unwrap();
    assert_ok(&response.text, "hello");
    assert_eq!(response.leaf, new_leaf);
    assert!(tls_get(server.address, &old_client, "/").await.is_err());

    // A broken certificate file: the reload fails and the current
    // certificate keeps being served.
    std::fs::write(
        pki.cert_path(),
        "-----BEGIN CERTIFICATE-----\nnot base64!\n",
    )
    .unwrap();
    let error = reloader.reload().unwrap_err();
    assert!(
        error.contains(&pki.cert_path().display().to_string()),
        "{error}"
    );
    let response = tls_get(server.address, &new_client, "/").await.unwrap();
    assert_ok(&response.text, "hello");
    assert_eq!(response.leaf, new_leaf);

    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_reload_tls_error_keeps_old_certificate() {
    let pki = Pki::new();
    let listener = Listener::bind(localhost(), Some(pki.files(false)))
        .await
        .unwrap();
    let original_key = std::fs::read_to_string(pki.key_path()).unwrap();

    // Empty key file.
    std::fs::write(pki.key_path(), "").unwrap();
    let error = listener.reload_tls().unwrap_err();
    assert!(error.contains("key.pem"), "{error}");

    // A valid certificate whose key is some other key.
    let other = new_ca("mismatch CA");
    let (cert_pem, _, _) = new_leaf(&other);
    std::fs::write(pki.cert_path(), cert_pem).unwrap();
    std::fs::write(pki.key_path(), &original_key).unwrap();
    let error = listener.reload_tls().unwrap_err();
    assert!(error.contains("cert.pem"), "{error}");
    assert!(error.contains("does not belong"), "{error}");
    assert!(!error.contains("PRIVATE KEY"), "{error}");

    let server = start(listener).await;
    let response = tls_get(server.address, &client(&pki.ca, BOTH), "/")
        .await
        .unwrap();
    assert_ok(&response.text, "hello");
    assert_eq!(response.leaf, pki.leaf_der);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_sighup_reloads_certificate() {
    let pki = Pki::new();
    let listener = Listener::bind(localhost(), Some(pki.files(false)))
        .await
        .unwrap();
    let server = start(listener).await;
    // A served request proves serve() is past installing its SIGHUP
    // handler (so raising SIGHUP cannot kill the test process).
    let response = tls_get(server.address, &client(&pki.ca, BOTH), "/")
        .await
        .unwrap();
    assert_ok(&response.text, "hello");

    let (new_ca, new_leaf) = pki.rotate_to_new_ca();
    nix::sys::signal::raise(nix::sys::signal::Signal::SIGHUP).unwrap();

    let new_client = client(&new_ca, BOTH);
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        match tls_get(server.address, &new_client, "/").await {
            Ok(response) => {
                assert_ok(&response.text, "hello");
                assert_eq!(response.leaf, new_leaf);
                break;
            }
            Err(e) if Instant::now() > deadline => panic!("SIGHUP did not reload: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_plain_http_with_connect_info() {
    let listener = Listener::bind(localhost(), None).await.unwrap();
    assert!(!listener.is_tls());
    assert_eq!(listener.reload_tls(), Ok(()));
    assert!(listener.tls_reloader().is_none());
    let server = start(listener).await;

    let (text, _) = http_get(server.address, "/").await;
    assert_ok(&text, "hello");
    let (text, client_address) = http_get(server.address, "/peer").await;
    assert_ok(&text, &client_address.to_string());

    // Keep-alive: two requests on one connection.
    let mut tcp = TcpStream::connect(server.address).await.unwrap();
    tcp.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    tcp.write_all(request("/").as_bytes()).await.unwrap();
    let text = read_response(tcp).await;
    assert_eq!(text.matches("HTTP/1.1 200 OK").count(), 2, "{text}");

    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_graceful_shutdown_finishes_in_flight_requests() {
    let plain = Listener::bind(localhost(), None).await.unwrap();
    let pki = Pki::new();
    let tls = Listener::bind(localhost(), Some(pki.files(false)))
        .await
        .unwrap();
    let plain_address = plain.local_addr().unwrap();
    let tls_address = tls.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(serve(test_app(), vec![plain, tls], async move {
        let _ = stopped.await;
    }));

    // An idle keep-alive connection must not delay shutdown.
    let mut idle = TcpStream::connect(plain_address).await.unwrap();
    idle.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut first = [0u8; 12];
    idle.read_exact(&mut first).await.unwrap();
    assert_eq!(&first, b"HTTP/1.1 200");

    let slow_plain = tokio::spawn(http_get(plain_address, "/slow"));
    let connector = client(&pki.ca, BOTH);
    let slow_tls = tokio::spawn(async move { tls_get(tls_address, &connector, "/slow").await });
    tokio::time::sleep(Duration::from_millis(150)).await;
    let started = Instant::now();
    stop.send(()).unwrap();

    let (text, _) = slow_plain.await.unwrap();
    assert_ok(&text, "slow done");
    assert_ok(&slow_tls.await.unwrap().unwrap().text, "slow done");
    let result = tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(result, Ok(()));
    assert!(started.elapsed() < Duration::from_secs(3));

    // The idle connection was closed, and the listeners are gone.
    let mut rest = Vec::new();
    let _ = idle.read_to_end(&mut rest).await;
    assert!(TcpStream::connect(plain_address).await.is_err());
    assert!(TcpStream::connect(tls_address).await.is_err());
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_bind_errors_name_the_file_without_key_bytes() {
    let pki = Pki::new();
    let key_pem = std::fs::read_to_string(pki.key_path()).unwrap();
    let key_body: String = key_pem.lines().nth(1).unwrap().chars().take(16).collect();

    let mut files = pki.files(false);
    files.key_file = pki.dir.path().join("missing-key.pem");
    let error = Listener::bind(localhost(), Some(files)).await.unwrap_err();
    assert!(error.contains("missing-key.pem"), "{error}");
    assert!(error.contains("key"), "{error}");

    let mut files = pki.files(false);
    files.cert_file = pki.dir.path().join("missing-cert.pem");
    let error = Listener::bind(localhost(), Some(files)).await.unwrap_err();
    assert!(error.contains("missing-cert.pem"), "{error}");

    // Key and certificate swapped: the error names the file and does not
    // echo the key.
    let files = TlsFiles {
        cert_file: pki.key_path(),
        key_file: pki.cert_path(),
        min_tls13: false,
        client_certs: true,
    };
    let error = Listener::bind(localhost(), Some(files)).await.unwrap_err();
    assert!(error.contains("key.pem"), "{error}");
    assert!(!error.contains(&key_body), "{error}");

    // A corrupted key file.
    let corrupted = key_pem.replacen(&key_body, &format!("{key_body}*!"), 1);
    std::fs::write(pki.key_path(), &corrupted).unwrap();
    let error = Listener::bind(localhost(), Some(pki.files(false)))
        .await
        .unwrap_err();
    assert!(error.contains("key.pem"), "{error}");
    assert!(!error.contains(&key_body), "{error}");

    let error = serve(test_app(), Vec::new(), async {}).await.unwrap_err();
    assert!(error.contains("no listener"), "{error}");
}
