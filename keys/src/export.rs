//! Key export in the formats of the transit engine's `export/:type/:name` endpoint.
//!
//! Private material leaves only from exportable keyrings; public keys always can.
//! The encodings copy OpenBao's choices (PKCS#1 PEM for RSA, SEC1 PEM for ECDSA,
//! Go's 64-byte Ed25519 private key, raw base64 for symmetric keys), including
//! which PEM texts end in a newline.

use std::collections::BTreeMap;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use pkcs8::der::{Decode, Encode};

use crate::error::{Error, Result};
use crate::key_type::Curve;
use crate::keyring::Keyring;
use crate::secret::{SecretBytes, SecretString};
use crate::sign::{PublicKey, SigningKey, mldsa_oid, pem_rfc7468_encode};
use crate::version::{KeyVersion, Material};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExportType {
    EncryptionKey,
    SigningKey,
    HmacKey,
    PublicKey,
}

impl ExportType {
    pub fn name(self) -> &'static str {
        match self {
            Self::EncryptionKey => "encryption-key",
            Self::SigningKey => "signing-key",
            Self::HmacKey => "hmac-key",
            Self::PublicKey => "public-key",
        }
    }
}

impl FromStr for ExportType {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "encryption-key" => Ok(Self::EncryptionKey),
            "signing-key" => Ok(Self::SigningKey),
            "hmac-key" => Ok(Self::HmacKey),
            "public-key" => Ok(Self::PublicKey),
            other => Err(Error::InvalidExportType(other.to_owned())),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ExportFormat {
    #[default]
    Default,
    Raw,
    Der,
    Pem,
}

impl ExportFormat {
    fn name(self) -> &'static str {
        match self {
            Self::Default => "",
            Self::Raw => "raw",
            Self::Der => "der",
            Self::Pem => "pem",
        }
    }
}

impl FromStr for ExportFormat {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "" => Ok(Self::Default),
            "raw" => Ok(Self::Raw),
            "der" => Ok(Self::Der),
            "pem" => Ok(Self::Pem),
            other => Err(Error::InvalidExportFormat(other.to_owned())),
        }
    }
}

/// Which versions to export: one (`latest`, `N` or `vN` in the API) or all
/// decryptable ones.
pub fn parse_version_selector(text: &str, latest: u32) -> Result<Option<u32>> {
    match text {
        "" => Ok(None),
        "latest" => Ok(Some(latest)),
        t => {
            let digits = t.strip_prefix('v').unwrap_or(t);
            digits
                .parse::<u32>()
                .map(Some)
                .map_err(|_| Error::InvalidKeyVersion)
        }
    }
}

impl Keyring {
    /// The exported keys by version number.
    pub fn export(
        &self,
        export_type: ExportType,
        format: ExportFormat,
        version: Option<u32>,
    ) -> Result<BTreeMap<u32, SecretString>> {
        self.in_service()?;
        if export_type != ExportType::PublicKey && !self.exportable {
            return Err(Error::NotExportable);
        }
        match export_type {
            ExportType::EncryptionKey if !self.key_type.supports_encryption() => {
                return Err(Error::ExportEncryptionNotSupported);
            }
            ExportType::SigningKey if !self.key_type.supports_signing() => {
                return Err(Error::ExportSigningNotSupported);
            }
            ExportType::PublicKey if !self.key_type.supports_signing() => {
                return Err(Error::ExportPublicKeyNotSupported(self.key_type));
            }
            _ => {}
        }
        let versions: Vec<&KeyVersion> = match version {
            Some(n) if n < self.min_decryption_version => {
                return Err(Error::ExportVersionBelowMinimum);
            }
            Some(n) => vec![self.version(n).ok_or(Error::ExportVersionMissing)?],
            None => self
                .versions
                .range(self.min_decryption_version..)
                .map(|(_, v)| &**v)
                .collect(),
        };
        versions
            .into_iter()
            .map(|v| Ok((v.number(), self.export_one(v, export_type, format)?)))
            .collect()
    }

    fn export_one(
        &self,
        v: &KeyVersion,
        export_type: ExportType,
        format: ExportFormat,
    ) -> Result<SecretString> {
        let unsupported = || Error::ExportFormatNotSupported {
            format: format.name(),
            export_type: export_type.name(),
            key_type: self.key_type,
        };
        let b64 = |bytes: &[u8]| SecretString::new(STANDARD.encode(bytes));
        match (export_type, v.material()) {
            (ExportType::HmacKey, _) => match format {
                ExportFormat::Default | ExportFormat::Raw => Ok(b64(v.hmac_key().expose())),
                _ => Err(unsupported()),
            },
            (ExportType::EncryptionKey, Material::Aead { key, .. }) => match format {
                ExportFormat::Default | ExportFormat::Raw => Ok(b64(key.expose())),
                _ => Err(unsupported()),
            },
            (ExportType::PublicKey, Material::Signing(k)) => {
                export_public(&k.public_key(), format, unsupported)
            }
            (ExportType::PublicKey, Material::Public(public)) => {
                export_public(public, format, unsupported)
            }
            (ExportType::EncryptionKey | ExportType::SigningKey, Material::Public(_)) => {
                Err(Error::PrivateKeyMissing)
            }
            (ExportType::EncryptionKey | ExportType::SigningKey, Material::Signing(k)) => {
                export_private(k, &v.material, format, unsupported)
            }
            _ => Err(unsupported()),
        }
    }
}

fn export_public(
    public: &PublicKey,
    format: ExportFormat,
    unsupported: impl Fn() -> Error,
) -> Result<SecretString> {
    let der = || public.to_spki_der();
    let text = match (public, format) {
        (PublicKey::Ed25519(raw), ExportFormat::Default | ExportFormat::Raw) => {
            STANDARD.encode(raw)
        }
        (PublicKey::MlDsa { raw, .. }, ExportFormat::Default | ExportFormat::Raw) => {
            STANDARD.encode(raw)
        }
        (_, ExportFormat::Raw) => return Err(unsupported()),
        (_, ExportFormat::Der) => STANDARD.encode(der()?),
        // RSA PEM keeps Go's trailing newline; the others are trimmed.
        (PublicKey::Rsa { .. }, _) => public.to_pem()?,
        (_, _) => public.to_pem()?.trim_end().to_owned(),
    };
    Ok(SecretString::new(text))
}

fn export_private(
    key: &SigningKey,
    material: &Material,
    format: ExportFormat,
    unsupported: impl Fn() -> Error,
) -> Result<SecretString> {
    let b64 = |bytes: &[u8]| SecretString::new(STANDARD.encode(bytes));
    let pem = |label: &str, der: &[u8]| pem_rfc7468_encode(label, der).map(SecretString::new);
    let trimmed = |s: SecretString| SecretString::new(s.trim_end().to_owned());
    match key {
        SigningKey::Rsa(k) => match format {
            ExportFormat::Default => {
                let info = pkcs8::PrivateKeyInfoRef::from_der(k.pkcs8().expose())
                    .map_err(|_| Error::Crypto)?;
                pem("RSA PRIVATE KEY", info.private_key.as_bytes())
            }
            ExportFormat::Raw => Err(unsupported()),
            ExportFormat::Der => Ok(b64(k.pkcs8().expose())),
            ExportFormat::Pem => pem("PRIVATE KEY", k.pkcs8().expose()),
        },
        SigningKey::Ecdsa(k) => {
            let (sec1, pkcs8) = ecdsa_private_der(k.curve(), key.private_bytes())?;
            match format {
                ExportFormat::Default => pem("EC PRIVATE KEY", &sec1).map(trimmed),
                ExportFormat::Raw => Err(unsupported()),
                ExportFormat::Der => Ok(b64(&pkcs8)),
                ExportFormat::Pem => pem("PRIVATE KEY", &pkcs8).map(trimmed),
            }
        }
        SigningKey::Ed25519(_) | SigningKey::MlDsa(_) => {
            let pkcs8 = private_pkcs8(key)?;
            match format {
                ExportFormat::Default | ExportFormat::Raw => {
                    let go_form = material.openbao_key_bytes().ok_or(Error::Crypto)?;
                    Ok(b64(go_form.expose()))
                }
                ExportFormat::Der => Ok(b64(&pkcs8)),
                ExportFormat::Pem => pem("PRIVATE KEY", &pkcs8).map(trimmed),
            }
        }
    }
}

type DerBytes = zeroize::Zeroizing<Vec<u8>>;

/// PKCS#8 DER of a signing key's private half: the `der`/`pem` export
/// formats and what BYOK wraps.
pub(crate) fn private_pkcs8(key: &SigningKey) -> Result<DerBytes> {
    match key {
        SigningKey::Rsa(k) => Ok(zeroize::Zeroizing::new(k.pkcs8().expose().to_vec())),
        SigningKey::Ecdsa(k) => Ok(ecdsa_private_der(k.curve(), key.private_bytes())?.1),
        SigningKey::Ed25519(_) | SigningKey::MlDsa(_) => {
            let seed = key.private_bytes();
            let oid = match key {
                SigningKey::MlDsa(k) => mldsa_oid(k.level()),
                _ => crate::sign::ED25519_OID,
            };
            // RFC 8410 (Ed25519) and the ML-DSA seed form: the private key field
            // holds an OCTET STRING (Ed25519) or a [0] IMPLICIT seed (ML-DSA).
            let inner = match key {
                SigningKey::MlDsa(_) => {
                    let mut v = vec![0x80, seed.len() as u8];
                    v.extend_from_slice(seed.expose());
                    zeroize::Zeroizing::new(v)
                }
                _ => zeroize::Zeroizing::new(
                    der::asn1::OctetStringRef::new(seed.expose())
                        .and_then(|o| o.to_der())
                        .map_err(|_| Error::Crypto)?,
                ),
            };
            let info = pkcs8::PrivateKeyInfoRef::new(
                spki::AlgorithmIdentifierRef {
                    oid,
                    parameters: None,
                },
                der::asn1::OctetStringRef::new(&inner).map_err(|_| Error::Crypto)?,
            );
            Ok(zeroize::Zeroizing::new(
                info.to_der().map_err(|_| Error::Crypto)?,
            ))
        }
    }
}

/// SEC1 and PKCS#8 DER of an ECDSA private key.
fn ecdsa_private_der(curve: Curve, scalar: &SecretBytes) -> Result<(DerBytes, DerBytes)> {
    use pkcs8::EncodePrivateKey;
    let scalar = scalar.expose();
    macro_rules! encode {
        ($c:ident) => {{
            let sk = $c::SecretKey::from_slice(scalar).map_err(|_| Error::Crypto)?;
            let sec1 = sk.to_sec1_der().map_err(|_| Error::Crypto)?;
            let pkcs8 = sk.to_pkcs8_der().map_err(|_| Error::Crypto)?;
            (
                zeroize::Zeroizing::new(sec1.to_vec()),
                zeroize::Zeroizing::new(pkcs8.as_bytes().to_vec()),
            )
        }};
    }
    Ok(match curve {
        Curve::P256 => encode!(p256),
        Curve::P384 => encode!(p384),
        Curve::P521 => encode!(p521),
    })
}
