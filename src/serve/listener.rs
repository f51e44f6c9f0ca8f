//! Listeners: a bound TCP socket and, for HTTPS, the TLS certificate and key
//! it serves, loaded from PEM files and reloadable.
//!
//! TLS certificates are reloadable: the current [`rustls::ServerConfig`] of a
//! listener lives in an [`ArcSwap`]. Each new connection takes whatever is
//! current when its handshake starts; a reload (by [`Listener::reload_tls`],
//! a [`TlsReloader`], or `SIGHUP` while [`serve`](super::serve) runs) swaps
//! it atomically. A reload that fails (unreadable file, bad PEM, key not
//! matching the certificate) changes nothing, so the server keeps serving the
//! old certificate rather than going down on an operator typo.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;

use super::admission::ConnectionLimits;
use super::client_cert::AnyClientCert;

/// Where a TLS listener finds its certificate chain and private key (PEM).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM file with the server certificate first, then intermediates.
    pub cert_file: PathBuf,
    /// PEM file with the private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
    /// Accept TLS 1.3 only (otherwise TLS 1.2 and 1.3).
    pub min_tls13: bool,
    /// Ask clients for a certificate (for `auth/cert`), never requiring one;
    /// off with the listener's `tls_disable_client_certs`.
    pub client_certs: bool,
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

    pub(super) fn current(&self) -> Arc<ServerConfig> {
        self.inner.config.load_full()
    }
}

/// A bound TCP listener, plus the TLS configuration if it serves HTTPS, and
/// its connection limits.
pub struct Listener {
    pub(super) tcp: TcpListener,
    pub(super) tls: Option<TlsReloader>,
    pub(super) limits: ConnectionLimits,
    /// Who may read `sys/metrics` here (the listener's `telemetry` block).
    pub(super) access: crate::metrics::MetricsAccess,
}

impl std::fmt::Debug for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listener")
            .field("local_addr", &self.tcp.local_addr().ok())
            .field("tls", &self.tls)
            .field("limits", &self.limits)
            .field("access", &self.access)
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
        Ok(Self {
            tcp,
            tls,
            limits: ConnectionLimits::DEFAULT,
            access: crate::metrics::MetricsAccess::default(),
        })
    }

    /// The same listener with other connection limits (default
    /// [`ConnectionLimits::DEFAULT`]).
    #[must_use]
    pub fn with_limits(mut self, limits: ConnectionLimits) -> Self {
        self.limits = limits;
        self
    }

    /// The same listener, serving `sys/metrics` as `access` says.
    #[must_use]
    pub fn with_metrics_access(mut self, access: crate::metrics::MetricsAccess) -> Self {
        self.access = access;
        self
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
    /// been handed to [`serve`](super::serve); `None` for plain HTTP.
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
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(versions)
        .map_err(|e| format!("TLS configuration: {e}"))?;
    let builder = if files.client_certs {
        builder.with_client_cert_verifier(AnyClientCert::new(&provider))
    } else {
        builder.with_no_client_auth()
    };
    let mut config = builder
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
