//! The accept loop for plain HTTP and HTTPS listeners.
//!
//! This replaces `axum::serve` so that both kinds of listener share one code
//! path, and so that TLS can be served at all: each accepted TCP connection
//! gets its own task, which does the TLS handshake (bounded by
//! [`HANDSHAKE_TIMEOUT`]) and then runs hyper's HTTP/1.1 server over the
//! [`Router`]. A slow or malicious client therefore never holds up the accept
//! loop or other connections.
//!
//! TLS certificates are reloadable: the current [`rustls::ServerConfig`] of a
//! listener lives in an [`ArcSwap`]. Each new connection takes whatever is
//! current when its handshake starts; a reload (by [`Listener::reload_tls`],
//! a [`TlsReloader`], or `SIGHUP` while [`serve`] runs) swaps it atomically.
//! A reload that fails (unreadable file, bad PEM, key not matching the
//! certificate) changes nothing, so the server keeps serving the old
//! certificate rather than going down on an operator typo.
//!
//! Shutdown is graceful: when the shutdown future completes, listeners are
//! closed, idle keep-alive connections are closed, and requests in flight may
//! finish, for at most [`SHUTDOWN_GRACE`]; what remains after that is aborted.
//!
//! Logging never includes key material; handshake failures are logged at
//! debug level only (with the peer address), since any port scanner causes
//! them.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::{TowerToHyperService, TowerToHyperServiceFuture};
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tracing::{debug, error, info, warn};

/// How long a client has to complete the TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a client has to send the request headers.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// How long in-flight connections may run on after shutdown was requested.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Pause after an accept error that is not about one connection (such as
/// running out of file descriptors), so the loop does not spin.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_secs(1);

/// Where a TLS listener finds its certificate chain and private key (PEM).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM file with the server certificate first, then intermediates.
    pub cert_file: PathBuf,
    /// PEM file with the private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
    /// Accept TLS 1.3 only (otherwise TLS 1.2 and 1.3).
    pub min_tls13: bool,
}

/// The reloadable TLS configuration of one listener. Cheap to clone; all
/// clones share the same configuration, so a reload through any of them is
/// seen by the listener.
#[derive(Clone)]
pub struct TlsReloader {
    inner: Arc<TlsState>,
}

struct TlsState {
    files: TlsFiles,
    config: ArcSwap<ServerConfig>,
}

impl std::fmt::Debug for TlsReloader {
    // Not derived: the rustls configuration holds the private key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsReloader")
            .field("files", &self.inner.files)
            .finish_non_exhaustive()
    }
}

impl TlsReloader {
    fn load(files: TlsFiles) -> Result<Self, String> {
        let config = load_server_config(&files)?;
        Ok(Self {
            inner: Arc::new(TlsState {
                files,
                config: ArcSwap::from(config),
            }),
        })
    }

    /// Re-reads the certificate and key files. New connections use them from
    /// now on; on error nothing changes and the old certificate stays in use.
    ///
    /// This does blocking file I/O (two small files).
    pub fn reload(&self) -> Result<(), String> {
        let config = load_server_config(&self.inner.files)?;
        self.inner.config.store(config);
        Ok(())
    }

    /// The files this configuration is loaded from.
    pub fn files(&self) -> &TlsFiles {
        &self.inner.files
    }

    fn current(&self) -> Arc<ServerConfig> {
        self.inner.config.load_full()
    }
}

/// A bound TCP listener, plus the TLS configuration if it serves HTTPS.
pub struct Listener {
    tcp: TcpListener,
    tls: Option<TlsReloader>,
}

impl std::fmt::Debug for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listener")
            .field("local_addr", &self.tcp.local_addr().ok())
            .field("tls", &self.tls)
            .finish()
    }
}

impl Listener {
    /// Loads the certificate and key (if `tls` is given), then binds
    /// `address`. Errors name the file or address at fault; they never
    /// contain key material.
    pub async fn bind(address: SocketAddr, tls: Option<TlsFiles>) -> Result<Self, String> {
        let tls = tls.map(TlsReloader::load).transpose()?;
        let tcp = TcpListener::bind(address)
            .await
            .map_err(|e| format!("cannot listen on {address}: {e}"))?;
        Ok(Self { tcp, tls })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.tcp.local_addr()
    }

    /// Whether this listener serves HTTPS.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Re-reads the certificate and key files; see [`TlsReloader::reload`].
    /// A plain-HTTP listener has nothing to reload and returns `Ok`.
    pub fn reload_tls(&self) -> Result<(), String> {
        match &self.tls {
            Some(tls) => tls.reload(),
            None => Ok(()),
        }
    }

    /// A handle to reload this listener's certificate after the listener has
    /// been handed to [`serve`]; `None` for plain HTTP.
    pub fn tls_reloader(&self) -> Option<TlsReloader> {
        self.tls.clone()
    }
}

fn pem_error(error: &rustls_pki_types::pem::Error) -> String {
    use rustls_pki_types::pem::Error;
    // Deliberately not the library's Display for every variant: some of them
    // echo bytes of the file, and this may be the private key file.
    match error {
        Error::Io(e) => e.to_string(),
        Error::NoItemsFound => "no PEM section of the expected type found".to_owned(),
        Error::MissingSectionEnd { .. } => "a PEM section has no END line".to_owned(),
        Error::IllegalSectionStart { .. } => "malformed PEM BEGIN line".to_owned(),
        Error::Base64Decode(_) => "invalid base64 in a PEM section".to_owned(),
        Error::SectionTooLarge => "a PEM section is too large".to_owned(),
        _ => "invalid PEM".to_owned(),
    }
}

fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let fail = |why: String| format!("cannot load TLS certificate file {}: {why}", path.display());
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| fail(pem_error(&e)))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| fail(pem_error(&e)))?;
    if certs.is_empty() {
        return Err(fail("no CERTIFICATE found".to_owned()));
    }
    Ok(certs)
}

fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| {
        let why = match e {
            rustls_pki_types::pem::Error::NoItemsFound => {
                "no PRIVATE KEY (PKCS#8, RSA or EC) found".to_owned()
            }
            other => pem_error(&other),
        };
        format!("cannot load TLS key file {}: {why}", path.display())
    })
}

fn load_server_config(files: &TlsFiles) -> Result<Arc<ServerConfig>, String> {
    let certs = load_certs(&files.cert_file)?;
    let key = load_key(&files.key_file)?;
    let versions: &[&'static rustls::SupportedProtocolVersion] = if files.min_tls13 {
        &[&rustls::version::TLS13]
    } else {
        &[&rustls::version::TLS12, &rustls::version::TLS13]
    };
    let mut config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_protocol_versions(versions)
            .map_err(|e| format!("TLS configuration: {e}"))?
            .with_no_client_auth()
            // Also checks that the key belongs to the leaf certificate.
            .with_single_cert(certs, key)
            .map_err(|e| {
                let why = match e {
                    rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch) => {
                        "the private key does not belong to the (first) certificate".to_owned()
                    }
                    other => other.to_string(),
                };
                format!(
                    "TLS certificate file {} with key file {}: {why}",
                    files.cert_file.display(),
                    files.key_file.display()
                )
            })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Serves `app` on all `listeners` until `shutdown` completes, then shuts
/// down gracefully (see the module documentation).
///
/// Installs a `SIGHUP` handler, before any connection is accepted, that
/// reloads the certificate of every TLS listener. Returns an error if the
/// handler cannot be installed, if there is no listener, or if an accept
/// loop died unexpectedly.
pub async fn serve(
    app: Router,
    listeners: Vec<Listener>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), String> {
    if listeners.is_empty() {
        return Err("no listener to serve on".to_owned());
    }
    let mut hangup =
        signal(SignalKind::hangup()).map_err(|e| format!("cannot install SIGHUP handler: {e}"))?;
    let reloaders: Vec<(Option<SocketAddr>, TlsReloader)> = listeners
        .iter()
        .filter_map(|l| Some((l.local_addr().ok(), l.tls.clone()?)))
        .collect();

    let (stop_tx, stop_rx) = watch::channel(false);
    let mut loops = JoinSet::new();
    for listener in listeners {
        match listener.local_addr() {
            Ok(addr) => info!(address = %addr, tls = listener.is_tls(), "listening"),
            Err(e) => warn!(error = %e, "listening on an address that cannot be read back"),
        }
        loops.spawn(accept_loop(listener, app.clone(), stop_rx.clone()));
    }
    drop(stop_rx);

    let mut shutdown = std::pin::pin!(shutdown);
    let mut result = Ok(());
    loop {
        tokio::select! {
            () = &mut shutdown => {
                info!("shutting down: no longer accepting connections");
                break;
            }
            Some(()) = hangup.recv() => reload_all(&reloaders),
            Some(ended) = loops.join_next() => {
                // Accept loops only return after the stop signal, so this is a panic.
                let why = match ended {
                    Ok(()) => "ended".to_owned(),
                    Err(e) => e.to_string(),
                };
                error!(error = %why, "an accept loop died; shutting down");
                result = Err(format!("accept loop died: {why}"));
                break;
            }
        }
    }

    stop_tx.send_replace(true);
    while let Some(ended) = loops.join_next().await {
        if let Err(e) = ended {
            error!(error = %e, "accept loop failed during shutdown");
        }
    }
    result
}

fn reload_all(reloaders: &[(Option<SocketAddr>, TlsReloader)]) {
    if reloaders.is_empty() {
        info!("SIGHUP received; no TLS listener to reload");
        return;
    }
    for (address, reloader) in reloaders {
        let cert_file = reloader.files().cert_file.display();
        match reloader.reload() {
            Ok(()) => info!(
                address = ?address,
                cert_file = %cert_file,
                "SIGHUP: reloaded TLS certificate"
            ),
            Err(e) => error!(
                address = ?address,
                error = %e,
                "SIGHUP: TLS certificate reload failed; still serving the previous certificate"
            ),
        }
    }
}

/// Resolves once shutdown was requested (or the sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

fn is_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind;
    matches!(
        e.kind(),
        ErrorKind::ConnectionRefused | ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset
    )
}

async fn accept_loop(listener: Listener, app: Router, mut stop: watch::Receiver<bool>) {
    let Listener { tcp, tls } = listener;
    let local = tcp.local_addr().ok();
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            biased;
            () = stopped(&mut stop) => break,
            Some(ended) = connections.join_next(), if !connections.is_empty() => {
                if let Err(e) = ended {
                    error!(error = %e, "connection task failed");
                }
            }
            accepted = tcp.accept() => match accepted {
                Ok((stream, peer)) => {
                    connections.spawn(handle_connection(
                        stream,
                        peer,
                        tls.clone(),
                        app.clone(),
                        stop.clone(),
                    ));
                }
                Err(e) if is_connection_error(&e) => {
                    debug!(error = %e, "connection failed before accept");
                }
                Err(e) => {
                    error!(address = ?local, error = %e, "accept failed; pausing");
                    tokio::select! {
                        () = stopped(&mut stop) => break,
                        () = tokio::time::sleep(ACCEPT_ERROR_BACKOFF) => {}
                    }
                }
            },
        }
    }
    // Close the socket first: from here on new connections are refused.
    drop(tcp);

    let open = connections.len();
    if open == 0 {
        return;
    }
    debug!(address = ?local, open, "waiting for open connections to finish");
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        warn!(
            address = ?local,
            remaining = connections.len(),
            "connections still open after the shutdown grace period; closing them"
        );
        connections.shutdown().await;
    }
}

async fn handle_connection(
    stream: TcpStream,
    peer: SocketAddr,
    tls: Option<TlsReloader>,
    app: Router,
    mut stop: watch::Receiver<bool>,
) {
    // Small request/response exchanges: do not wait for Nagle.
    let _ = stream.set_nodelay(true);
    let Some(tls) = tls else {
        serve_http(stream, peer, app, stop).await;
        return;
    };
    // The configuration current now serves this connection to its end.
    let acceptor = TlsAcceptor::from(tls.current());
    let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream));
    let stream = tokio::select! {
        () = stopped(&mut stop) => return,
        done = handshake => match done {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => {
                debug!(peer = %peer, error = %e, "TLS handshake failed");
                return;
            }
            Err(_) => {
                debug!(peer = %peer, "TLS handshake timed out");
                return;
            }
        },
    };
    serve_http(stream, peer, app, stop).await;
}

async fn serve_http<IO>(io: IO, peer: SocketAddr, app: Router, mut stop: watch::Receiver<bool>)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = ConnectionService {
        inner: TowerToHyperService::new(app),
        peer,
    };
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .keep_alive(true)
        .header_read_timeout(HEADER_READ_TIMEOUT);
    let connection = builder.serve_connection(TokioIo::new(io), service);
    let mut connection = std::pin::pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        () = stopped(&mut stop) => {
            // Finish the request in progress (if any), then close.
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(e) = result {
        debug!(peer = %peer, error = %e, "HTTP connection ended with an error");
    }
}

/// The router, with the client's socket address added to every request as
/// axum's [`ConnectInfo<SocketAddr>`], as `axum::serve` does with
/// `into_make_service_with_connect_info`.
#[derive(Clone, Debug)]
struct ConnectionService {
    inner: TowerToHyperService<Router>,
    peer: SocketAddr,
}

impl hyper::service::Service<hyper::Request<Incoming>> for ConnectionService {
    type Response = <TowerToHyperService<Router> as hyper::service::Service<
        hyper::Request<Incoming>,
    >>::Response;
    type Error = std::convert::Infallible;
    type Future = TowerToHyperServiceFuture<Router, hyper::Request<Incoming>>;

    fn call(&self, mut request: hyper::Request<Incoming>) -> Self::Future {
        request.extensions_mut().insert(ConnectInfo(self.peer));
        self.inner.call(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::time::Instant;

    use axum::routing::get;
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair,
        KeyUsagePurpose,
    };
    use rustls::{ClientConfig, RootCertStore};
    use rustls_pki_types::ServerName;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
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

    fn client(
        trusted: &Ca,
        versions: &[&'static rustls::SupportedProtocolVersion],
    ) -> TlsConnector {
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
}
