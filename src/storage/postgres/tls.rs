//! TLS to the server: the rustls connector for the connection string's
//! `sslmode` and `sslrootcert`.
//!
//! `sslmode` has the libpq meanings:
//! `disable` (plain), `allow`/`prefer` (the default; TLS if the server offers
//! it), `require` (TLS or fail); these three encrypt but do not authenticate
//! the server, unless `sslrootcert` is given, which makes them check the
//! certificate chain like `verify-ca`. `verify-ca` checks that the server's
//! certificate chains to a trusted root, `verify-full` also that it names the
//! host. Trusted roots are the Mozilla roots (`webpki-roots`), or only those in
//! the PEM file `sslrootcert` names (`sslrootcert=system`: the Mozilla roots).
//! Client certificates (`sslcert`, `sslkey`) are not supported. TLS is rustls
//! with the ring provider.

use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::conn_string::TlsPolicy;

pub(super) enum Tls {
    Off,
    Rustls(MakeRustlsConnect),
}

/// The rustls connector for `policy` (`None`: no TLS).
pub(super) fn build_tls(
    policy: TlsPolicy,
    root_cert: Option<&str>,
) -> Result<Option<MakeRustlsConnect>, String> {
    if policy == TlsPolicy::Disable {
        return Ok(None);
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS set-up: {e}"))?;
    // libpq: with a root certificate file, require (and prefer) check the
    // chain like verify-ca.
    let verify = match (policy, root_cert) {
        (TlsPolicy::VerifyFull, _) => Some(true),
        (TlsPolicy::VerifyCa, _) | (_, Some(_)) => Some(false),
        _ => None,
    };
    let config = match verify {
        None => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoServerAuth { provider }))
            .with_no_client_auth(),
        Some(check_name) => {
            let roots = Arc::new(root_store(root_cert)?);
            if check_name {
                builder.with_root_certificates(roots).with_no_client_auth()
            } else {
                let inner = WebPkiServerVerifier::builder_with_provider(roots, provider)
                    .build()
                    .map_err(|e| format!("TLS set-up: {e}"))?;
                builder
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(ChainOnly { inner }))
                    .with_no_client_auth()
            }
        }
    };
    let mut config = config;
    // What libpq 17 sends; required by servers for sslnegotiation=direct,
    // ignored by older ones.
    config.alpn_protocols = vec![b"postgresql".to_vec()];
    Ok(Some(MakeRustlsConnect::new(config)))
}

fn root_store(root_cert: Option<&str>) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    match root_cert {
        None | Some("system") => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        Some(file) => {
            let certs = CertificateDer::pem_file_iter(file)
                .map_err(|e| format!("cannot read sslrootcert {file:?}: {e}"))?;
            for cert in certs {
                let cert = cert.map_err(|e| format!("cannot read sslrootcert {file:?}: {e}"))?;
                roots
                    .add(cert)
                    .map_err(|e| format!("invalid certificate in sslrootcert {file:?}: {e}"))?;
            }
            if roots.is_empty() {
                return Err(format!("no certificate in sslrootcert {file:?}"));
            }
        }
    }
    Ok(roots)
}

/// `sslmode=prefer`/`require` without a root file: encryption without
/// authentication, as libpq does. Handshake signatures are still checked.
#[derive(Debug)]
struct NoServerAuth {
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for NoServerAuth {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// `sslmode=verify-ca`: the chain must lead to a trusted root, the name is
/// not checked. webpki checks the name only after the chain, so a name
/// mismatch means the chain was good.
#[derive(Debug)]
struct ChainOnly {
    inner: Arc<WebPkiServerVerifier>,
}

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForName
                | rustls::CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}
