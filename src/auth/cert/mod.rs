//! The TLS certificate login method, as Vault's `auth/cert`: a client logs
//! in with the certificate it presented on the TLS connection
//! (`serve::ClientTls`). Each entry (`certs/:name`) trusts either a CA (a
//! client chain that verifies to it, by rustls-webpki, for client
//! authentication, at the current time) or one leaf (exactly that
//! certificate, unexpired); then the entry's name globs and required
//! extensions must match the leaf.
//!
//! Stored by `auth/method_store.rs` (entries as its roles, no stored
//! configuration). What a login proves: the client holds the key of a
//! certificate that one entry trusts. Not checked: revocation (no CRL or
//! OCSP), and a renewal does not re-present the certificate.

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::time::Duration;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, UnixTime};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use webpki::{EndEntityCert, KeyUsage};
use x509_parser::der_parser::asn1_rs::{Any, FromDer, Tag};
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::{X509Certificate, parse_x509_certificate};

use super::glob;
use super::method_store::{MethodStore, Spec};
use super::userpass::TokenParams;
use crate::storage::{StoreError, StoreResult};

/// The refusal of a login without a client certificate.
pub const NO_CLIENT_CERT: &str = "no client certificate found";

/// The most certificates one entry's PEM may hold.
pub const MAX_ENTRY_CERTS: usize = 64;

/// An entry of `certs/:name`, as stored.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertEntry {
    pub name: String,
    /// PEM: a CA (and maybe more CAs), or one trusted leaf.
    pub certificate: String,
    pub display_name: String,
    pub allowed_names: Vec<String>,
    pub allowed_common_names: Vec<String>,
    pub allowed_dns_sans: Vec<String>,
    pub allowed_email_sans: Vec<String>,
    pub allowed_uri_sans: Vec<String>,
    pub allowed_organizational_units: Vec<String>,
    /// `oid:glob` each.
    pub required_extensions: Vec<String>,
    /// OIDs whose values become token metadata (dots as dashes).
    pub allowed_metadata_extensions: Vec<String>,
    #[serde(flatten)]
    pub token: TokenParams,
    #[serde(default)]
    pub legacy_policies: bool,
    /// Seconds given as the deprecated `ttl` (or `lease`) and `max_ttl`
    /// (also in `token`), shown back under those names.
    #[serde(default)]
    pub legacy_ttl: u64,
    #[serde(default)]
    pub legacy_max_ttl: u64,
}

/// The DER certificates of a PEM text (other sections skipped, as Vault).
fn pem_certs(pem: &str) -> Vec<CertificateDer<'static>> {
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .filter_map(Result::ok)
        .take(MAX_ENTRY_CERTS + 1)
        .collect()
}

impl CertEntry {
    /// Vault's checks of an entry write.
    fn validate(&self) -> StoreResult<()> {
        if self.token.token_max_ttl != 0 && self.token.token_ttl > self.token.token_max_ttl {
            return Err(StoreError::invalid(
                "'token_ttl' cannot be greater than 'token_max_ttl'",
            ));
        }
        let certs = pem_certs(&self.certificate);
        if certs.len() > MAX_ENTRY_CERTS {
            return Err(StoreError::invalid(format!(
                "certificate holds more than {MAX_ENTRY_CERTS} certificates"
            )));
        }
        let parsed: Vec<X509Certificate<'_>> = certs
            .iter()
            .filter_map(|der| parse_x509_certificate(der).ok().map(|(_, c)| c))
            .collect();
        let Some(first) = parsed.first() else {
            return Err(StoreError::invalid("failed to parse certificate"));
        };
        if !first.is_ca()
            && let Ok(Some(eku)) = first.extended_key_usage()
            && !(eku.value.client_auth || eku.value.any)
        {
            return Err(StoreError::invalid(
                "nonCA certificates should have TLS client authentication set as an extended key usage",
            ));
        }
        // Every certificate of a CA entry becomes a trust anchor: a leaf
        // among them would let its key holder issue any name (Vault takes it).
        if first.is_ca() && parsed.iter().any(|c| !c.is_ca()) {
            return Err(StoreError::invalid(
                "a certificate entry that starts with a CA may hold only CA certificates",
            ));
        }
        // Vault would fail at login on a missing colon; refused here.
        if let Some(bad) = self.required_extensions.iter().find(|e| !e.contains(':')) {
            return Err(StoreError::invalid(format!(
                "required_extensions entry {bad:?} is not of the form oid:value"
            )));
        }
        Ok(())
    }
}

/// The cert method's entries.
#[derive(Debug)]
pub struct CertSpec;

impl Spec for CertSpec {
    /// Nothing is configurable (see `api/login/cert.rs`).
    type Config = ();
    type Ready = ();
    type Role = CertEntry;

    fn ready((): ()) -> StoreResult<()> {
        Ok(())
    }

    fn role_name(entry: &CertEntry) -> &str {
        &entry.name
    }

    fn blank_role(name: &str) -> CertEntry {
        CertEntry {
            name: name.to_owned(),
            ..CertEntry::default()
        }
    }

    fn rename_role(entry: &mut CertEntry, name: &str) {
        name.clone_into(&mut entry.name);
        if entry.display_name.is_empty() {
            name.clone_into(&mut entry.display_name);
        }
    }

    fn validate_role(entry: &CertEntry) -> StoreResult<()> {
        entry.validate()
    }
}

pub type CertStore = MethodStore<CertSpec>;

/// Why a login failed.
#[derive(Debug)]
pub enum CertLoginError {
    /// Refused: Vault answers 400 with this text.
    Refused(String),
    /// The entries could not be read.
    Store(StoreError),
}

impl From<StoreError> for CertLoginError {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

impl From<String> for CertLoginError {
    fn from(why: String) -> Self {
        Self::Refused(why)
    }
}

/// A successful login: the entry that matched, and the token's metadata.
#[derive(Debug)]
pub struct CertLogin {
    pub entry: CertEntry,
    pub metadata: BTreeMap<String, String>,
}

/// What the constraints look at in the client's leaf.
#[derive(Debug, Default)]
struct Leaf {
    common_name: String,
    dns: Vec<String>,
    emails: Vec<String>,
    uris: Vec<String>,
    ous: Vec<String>,
    /// OID (dotted) to its value read as an ASN.1 string ("" otherwise).
    extensions: BTreeMap<String, String>,
    serial: String,
    subject_key_id: String,
    authority_key_id: String,
    not_before: i64,
    not_after: i64,
}

fn hex_colons(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// An extension's value as Go's `asn1.Unmarshal` into a string reads it:
/// the text of a DER string type, else empty.
fn extension_text(value: &[u8]) -> String {
    let Ok((_, any)) = Any::from_der(value) else {
        return String::new();
    };
    let text = [
        Tag::Utf8String,
        Tag::PrintableString,
        Tag::Ia5String,
        Tag::NumericString,
        Tag::T61String,
    ]
    .contains(&any.tag());
    if text {
        String::from_utf8(any.data.to_vec()).unwrap_or_default()
    } else {
        String::new()
    }
}

impl Leaf {
    fn parse(der: &[u8]) -> Result<Self, String> {
        let (_, cert) = parse_x509_certificate(der)
            .map_err(|_| "failed to parse the client certificate".to_owned())?;
        let text = |attr: &x509_parser::x509::AttributeTypeAndValue<'_>| {
            attr.as_str().unwrap_or_default().to_owned()
        };
        let mut leaf = Self {
            // Go keeps the last CN of the subject.
            common_name: cert
                .subject()
                .iter_common_name()
                .last()
                .map(text)
                .unwrap_or_default(),
            ous: cert
                .subject()
                .iter_organizational_unit()
                .map(text)
                .collect(),
            serial: cert.serial.to_string(),
            not_before: cert.validity().not_before.timestamp(),
            not_after: cert.validity().not_after.timestamp(),
            ..Self::default()
        };
        for ext in cert.extensions() {
            leaf.extensions
                .insert(ext.oid.to_id_string(), extension_text(ext.value));
            match ext.parsed_extension() {
                ParsedExtension::SubjectAlternativeName(san) => {
                    for name in &san.general_names {
                        match name {
                            GeneralName::DNSName(n) => leaf.dns.push((*n).to_owned()),
                            GeneralName::RFC822Name(n) => leaf.emails.push((*n).to_owned()),
                            GeneralName::URI(n) => leaf.uris.push((*n).to_owned()),
                            _ => {}
                        }
                    }
                }
                ParsedExtension::SubjectKeyIdentifier(id) => leaf.subject_key_id = hex_colons(id.0),
                ParsedExtension::AuthorityKeyIdentifier(aki) => {
                    if let Some(id) = &aki.key_identifier {
                        leaf.authority_key_id = hex_colons(id.0);
                    }
                }
                _ => {}
            }
        }
        Ok(leaf)
    }

    /// Vault's rule for each list: empty allows any; otherwise one glob must
    /// match one of the leaf's values.
    fn any(patterns: &[String], values: &[String]) -> bool {
        patterns.is_empty()
            || patterns
                .iter()
                .any(|p| values.iter().any(|v| glob::matches(p, v)))
    }

    fn matches(&self, entry: &CertEntry) -> bool {
        let cn = std::slice::from_ref(&self.common_name);
        let names: Vec<String> = cn
            .iter()
            .chain(&self.dns)
            .chain(&self.emails)
            .cloned()
            .collect();
        Self::any(&entry.allowed_names, &names)
            && Self::any(&entry.allowed_common_names, cn)
            && Self::any(&entry.allowed_dns_sans, &self.dns)
            && Self::any(&entry.allowed_email_sans, &self.emails)
            && Self::any(&entry.allowed_uri_sans, &self.uris)
            && Self::any(&entry.allowed_organizational_units, &self.ous)
            && entry.required_extensions.iter().all(|required| {
                let (oid, pattern) = required.split_once(':').unwrap_or((required, ""));
                self.extensions
                    .get(oid)
                    .is_some_and(|v| glob::matches(pattern, v))
            })
    }

    fn metadata(&self, entry: &CertEntry) -> BTreeMap<String, String> {
        let mut meta = BTreeMap::from([
            ("cert_name".to_owned(), entry.name.clone()),
            ("common_name".to_owned(), self.common_name.clone()),
            ("serial_number".to_owned(), self.serial.clone()),
            ("subject_key_id".to_owned(), self.subject_key_id.clone()),
            ("authority_key_id".to_owned(), self.authority_key_id.clone()),
        ]);
        for oid in &entry.allowed_metadata_extensions {
            if let Some(value) = self.extensions.get(oid) {
                meta.insert(oid.replace('.', "-"), value.clone());
            }
        }
        meta
    }
}

/// How one entry judges the client's chain.
enum Trust {
    /// It trusts the chain.
    Trusted,
    /// Not its certificate, or not issued under it.
    Unrelated,
    /// Issued under it but invalid (expired, wrong usage...).
    Invalid(String),
}

fn judge(entry: &CertEntry, chain: &[CertificateDer<'_>], leaf: &Leaf, now: i64) -> Trust {
    let trusted = pem_certs(&entry.certificate);
    let Some(first) = trusted.first() else {
        return Trust::Unrelated;
    };
    let first_is_ca = parse_x509_certificate(first).is_ok_and(|(_, c)| c.is_ca());
    if !first_is_ca {
        // A trusted leaf: exactly this certificate, within its validity.
        if !bool::from(first.as_ref().ct_eq(chain[0].as_ref())) {
            return Trust::Unrelated;
        }
        return if now < leaf.not_before {
            Trust::Invalid("certificate is not yet valid".to_owned())
        } else if now > leaf.not_after {
            Trust::Invalid("certificate has expired".to_owned())
        } else {
            Trust::Trusted
        };
    }
    let anchors: Vec<_> = trusted
        .iter()
        .filter(|der| parse_x509_certificate(der).is_ok_and(|(_, c)| c.is_ca()))
        .filter_map(|der| webpki::anchor_from_trusted_cert(der).ok())
        .collect();
    let Ok(end_entity) = EndEntityCert::try_from(&chain[0]) else {
        return Trust::Invalid("the client certificate cannot be parsed".to_owned());
    };
    let algorithms = rustls::crypto::ring::default_provider()
        .signature_verification_algorithms
        .all;
    let time = UnixTime::since_unix_epoch(Duration::from_secs(u64::try_from(now).unwrap_or(0)));
    match end_entity.verify_for_usage(
        algorithms,
        &anchors,
        &chain[1..],
        time,
        KeyUsage::client_auth(),
        None,
        None,
    ) {
        Ok(_) => Trust::Trusted,
        // A CA of the same name but another key is as unknown (as in Go).
        Err(webpki::Error::UnknownIssuer | webpki::Error::InvalidSignatureForPublicKey) => {
            Trust::Unrelated
        }
        Err(webpki::Error::CertExpired { .. }) => {
            Trust::Invalid("certificate has expired".to_owned())
        }
        Err(webpki::Error::CertNotValidYet { .. }) => {
            Trust::Invalid("certificate is not yet valid".to_owned())
        }
        Err(webpki::Error::RequiredEkuNotFoundContext(_)) => {
            Trust::Invalid("certificate specifies an incompatible key usage".to_owned())
        }
        Err(other) => Trust::Invalid(format!("{other:?}")),
    }
}

impl CertStore {
    /// Log in with `chain` (leaf first, as presented on the connection)
    /// against entry `name`, or every entry. Vault's answers (all 400).
    pub fn login(
        &self,
        name: Option<&str>,
        chain: &[CertificateDer<'_>],
        now: i64,
    ) -> Result<CertLogin, CertLoginError> {
        if chain.is_empty() {
            return Err(NO_CLIENT_CERT.to_owned().into());
        }
        let leaf = Leaf::parse(&chain[0])?;
        let entries: Vec<CertEntry> = match name {
            Some(name) => self.get_role(name)?.into_iter().collect(),
            None => self.all_roles()?,
        };
        let mut trusted_by_one = false;
        let mut invalid = None;
        for entry in entries {
            match judge(&entry, chain, &leaf, now) {
                Trust::Trusted => {
                    trusted_by_one = true;
                    if leaf.matches(&entry) {
                        let metadata = leaf.metadata(&entry);
                        return Ok(CertLogin { entry, metadata });
                    }
                }
                Trust::Invalid(why) => invalid = invalid.or(Some(why)),
                Trust::Unrelated => {}
            }
        }
        Err(CertLoginError::Refused(match (invalid, trusted_by_one) {
            (Some(why), false) => format!("failed to verify client's certificate: {why}"),
            (_, true) => {
                "no chain matching all constraints could be found for this login certificate"
                    .to_owned()
            }
            (None, false) => "invalid certificate or no client certificate supplied".to_owned(),
        }))
    }
}
