//! Client certificates on TLS listeners, as Vault takes them: the handshake
//! asks for one without requiring it, and accepts any issuer, since which
//! CAs are trusted is the `auth/cert` method's business (its entries change
//! at runtime and differ per mount). What the handshake does prove is that
//! the client holds the private key of the leaf it presented (rustls checks
//! its handshake signature with [`rustls::crypto`]'s verifiers).
//!
//! The chain reaches the request handler as a [`ClientTls`] extension. Only
//! the cert login reads it: a certificate grants nothing anywhere else.

use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{WebPkiSupportedAlgorithms, verify_tls12_signature, verify_tls13_signature};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use rustls_pki_types::{CertificateDer, UnixTime};

/// The most certificates a client may present (leaf included): bounds the
/// work of trying each intermediate against every trusted CA at login.
pub const MAX_CLIENT_CHAIN: usize = 8;

/// The most bytes they may take together (real chains take a few KiB).
/// rustls bounds the message to 64 KiB; the chain is kept for the
/// connection's life, so every open connection may cost this much.
pub const MAX_CLIENT_CHAIN_BYTES: usize = 32 * 1024;

/// The TLS side of the connection a request came on.
#[derive(Clone, Debug)]
pub enum ClientTls {
    /// A plain-HTTP listener (or a request not from a listener at all).
    Plain,
    /// A TLS connection, with the chain the client presented (leaf first;
    /// empty when it sent none).
    Tls(Arc<[CertificateDer<'static>]>),
}

impl ClientTls {
    /// What the handshake of `connection` left.
    pub(super) fn of(connection: &rustls::ServerConnection) -> Self {
        let chain = connection
            .peer_certificates()
            .map(|certs| certs.iter().map(|c| c.clone().into_owned()).collect())
            .unwrap_or_default();
        Self::Tls(chain)
    }
}

/// Accepts any client certificate (or none) whose handshake signature is
/// good; refuses chains longer than [`MAX_CLIENT_CHAIN`] or larger than
/// [`MAX_CLIENT_CHAIN_BYTES`].
#[derive(Debug)]
pub(super) struct AnyClientCert {
    algorithms: WebPkiSupportedAlgorithms,
}

impl AnyClientCert {
    pub(super) fn new(provider: &rustls::crypto::CryptoProvider) -> Arc<Self> {
        Arc::new(Self {
            algorithms: provider.signature_verification_algorithms,
        })
    }
}

impl ClientCertVerifier for AnyClientCert {
    fn client_auth_mandatory(&self) -> bool {
        false
    }

    // No hints: the client may present a certificate of any CA.
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        if intermediates.len() >= MAX_CLIENT_CHAIN {
            return Err(rustls::Error::General(format!(
                "client certificate chain longer than {MAX_CLIENT_CHAIN}"
            )));
        }
        let bytes: usize = intermediates.iter().map(|c| c.len()).sum();
        if end_entity.len() + bytes > MAX_CLIENT_CHAIN_BYTES {
            return Err(rustls::Error::General(format!(
                "client certificate chain larger than {MAX_CLIENT_CHAIN_BYTES} bytes"
            )));
        }
        // Trust is decided by the login method, against its entries.
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
