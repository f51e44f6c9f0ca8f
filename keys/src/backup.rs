//! OpenBao's plaintext backup format, both ways: our users' migration path in
//! and out of transitd.
//!
//! A backup is `base64(JSON)` of `{"policy": Policy, "archived_keys": {"keys": [...]}}`
//! with Go's field names and encodings: big integers as bare decimal numbers,
//! durations in nanoseconds, times in RFC 3339 with nanoseconds. Restoring checks
//! everything OpenBao does not (types, lengths, version bounds, key consistency):
//! a bad blob is an error, never a panic or a half-made keyring.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use num_bigint::BigUint;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::derive::Kdf;
use crate::error::{Error, Result};
use crate::key_type::{Curve, KeyType};
use crate::keyring::{Keyring, VersionStamp, check_encryption_limit, validate_name};
use crate::secret::{SecretBytes, SecretString};
use crate::sign::{EcdsaKey, Ed25519Key, MlDsaKey, PublicKey, RsaKey, SigningKey};
use crate::version::{KeyVersion, Material};

/// Largest backup blob we decode (base64 text), far above any real keyring.
pub const MAX_BACKUP_LEN: usize = 64 << 20;
/// Most versions a restored keyring may carry.
pub const MAX_VERSIONS: usize = 1 << 20;

fn invalid(msg: impl Into<String>) -> Error {
    Error::InvalidBackup(msg.into())
}

// ---------------------------------------------------------------------------
// The JSON shapes (field order = Go struct order, which OpenBao emits)

#[derive(Serialize, Deserialize, Default)]
struct BackupDoc {
    #[serde(default)]
    policy: Option<PolicyDoc>,
    #[serde(default)]
    archived_keys: Option<ArchiveDoc>,
}

#[derive(Serialize, Deserialize, Default)]
struct ArchiveDoc {
    #[serde(default)]
    keys: Option<Vec<EntryDoc>>,
}

#[derive(Serialize, Deserialize, Default)]
#[serde(default)]
struct StampDoc {
    time: String,
    version: i64,
}

#[derive(Serialize, Deserialize, Default)]
#[serde(default)]
struct PolicyDoc {
    name: String,
    #[serde(skip_serializing_if = "is_zero")]
    key_size: u64,
    keys: BTreeMap<String, EntryDoc>,
    derived: bool,
    kdf: u64,
    convergent_encryption: bool,
    exportable: bool,
    min_decryption_version: i64,
    min_encryption_version: i64,
    latest_version: i64,
    archive_version: i64,
    archive_min_version: i64,
    min_available_version: i64,
    deletion_allowed: bool,
    convergent_version: i64,
    #[serde(rename = "type")]
    key_type: u64,
    backup_info: Option<StampDoc>,
    restore_info: Option<StampDoc>,
    allow_plaintext_backup: bool,
    version_template: String,
    storage_prefix: String,
    auto_rotate_period: i64,
    #[serde(rename = "Imported")]
    imported: bool,
    #[serde(rename = "AllowImportedKeyRotation")]
    allow_imported_key_rotation: bool,
    soft_deleted: bool,
    /// transitd's own (OpenBao ignores unknown fields on restore).
    #[serde(skip_serializing_if = "Option::is_none")]
    max_encryptions_per_version: Option<u64>,
    /// transitd's own: encryptions counted per version when the backup was taken.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    encryption_counts: BTreeMap<u32, u64>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[derive(Serialize, Deserialize)]
#[serde(default)]
struct EntryDoc {
    key: Option<String>,
    hmac_key: Option<String>,
    time: String,
    ec_x: Option<Box<RawValue>>,
    ec_y: Option<Box<RawValue>>,
    ec_d: Option<Box<RawValue>>,
    rsa_key: Option<RsaDoc>,
    rsa_public_key: Option<RsaPublicDoc>,
    public_key: String,
    convergent_version: i64,
    creation_time: i64,
    certificate_chain: Option<Vec<String>>,
    external_key_ref: String,
}

impl Default for EntryDoc {
    fn default() -> Self {
        Self {
            key: None,
            hmac_key: None,
            time: "0001-01-01T00:00:00Z".to_owned(),
            ec_x: None,
            ec_y: None,
            ec_d: None,
            rsa_key: None,
            rsa_public_key: None,
            public_key: String::new(),
            convergent_version: 0,
            creation_time: 0,
            certificate_chain: None,
            external_key_ref: String::new(),
        }
    }
}

/// Go's `rsa.PrivateKey` as encoding/json writes it.
#[derive(Serialize, Deserialize)]
#[allow(non_snake_case)]
struct RsaDoc {
    N: Box<RawValue>,
    E: i64,
    D: Box<RawValue>,
    Primes: Vec<Box<RawValue>>,
    #[serde(default)]
    Precomputed: Option<RsaPrecomputedDoc>,
}

#[derive(Serialize, Deserialize)]
#[allow(non_snake_case)]
struct RsaPrecomputedDoc {
    Dp: Option<Box<RawValue>>,
    Dq: Option<Box<RawValue>>,
    Qinv: Option<Box<RawValue>>,
    #[serde(default)]
    CRTValues: Option<Vec<serde_json::Value>>,
}

#[derive(Serialize, Deserialize)]
#[allow(non_snake_case)]
struct RsaPublicDoc {
    N: Box<RawValue>,
    E: i64,
}

// ---------------------------------------------------------------------------
// Big integers as bare JSON decimal numbers

fn big_to_json(bytes: &[u8]) -> Result<Box<RawValue>> {
    RawValue::from_string(BigUint::from_bytes_be(bytes).to_str_radix(10)).map_err(|_| Error::Crypto)
}

fn big_from_json(raw: &RawValue, what: &str) -> Result<Vec<u8>> {
    let text = raw.get();
    if text.is_empty() || text.len() > 4096 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid(format!(
            "{what} is not a non-negative decimal integer"
        )));
    }
    let n = BigUint::parse_bytes(text.as_bytes(), 10)
        .ok_or_else(|| invalid(format!("{what} is not a number")))?;
    Ok(n.to_bytes_be())
}

fn left_pad(bytes: &[u8], len: usize, what: &str) -> Result<Vec<u8>> {
    if bytes.len() > len {
        return Err(invalid(format!("{what} is too large")));
    }
    let mut out = vec![0u8; len - bytes.len()];
    out.extend_from_slice(bytes);
    Ok(out)
}

fn b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

fn unb64(text: &str, what: &str) -> Result<SecretBytes> {
    STANDARD
        .decode(text)
        .map(SecretBytes::new)
        .map_err(|_| invalid(format!("{what} is not valid base64")))
}

fn format_time(t: OffsetDateTime) -> Result<String> {
    t.format(&Rfc3339).map_err(|_| Error::Crypto)
}

fn parse_time(text: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(text, &Rfc3339).ok()
}

// ---------------------------------------------------------------------------
// Writing

/// A backup blob in OpenBao's format. Refused unless the keyring is exportable
/// and allows plaintext backups. Callers record `mark_backed_up` first, as
/// OpenBao does, so the blob carries its own `backup_info`.
pub fn backup(ring: &Keyring) -> Result<SecretString> {
    backup_counted(ring, &BTreeMap::new())
}

/// [`backup`], carrying the encryption counts per version (`counts`), so a
/// restore does not count from zero what was already used.
pub fn backup_counted(ring: &Keyring, counts: &BTreeMap<u32, u64>) -> Result<SecretString> {
    ring.in_service()?;
    if !ring.exportable {
        return Err(Error::ExportingDisallowed);
    }
    if !ring.allow_plaintext_backup {
        return Err(Error::PlaintextBackupDisallowed);
    }
    let mut keys = BTreeMap::new();
    for (&n, v) in ring.versions.range(ring.min_decryption_version..) {
        keys.insert(n.to_string(), entry_doc(ring, v)?);
    }
    let mut archive = Vec::new();
    if ring.min_available_version == 0 {
        archive.push(EntryDoc::default());
    }
    for v in ring.versions.values() {
        archive.push(entry_doc(ring, v)?);
    }
    let stamp = |s: &Option<VersionStamp>| -> Result<Option<StampDoc>> {
        s.map(|s| {
            Ok(StampDoc {
                time: format_time(s.time)?,
                version: i64::from(s.version),
            })
        })
        .transpose()
    };
    let policy = PolicyDoc {
        name: ring.name.clone(),
        key_size: u64::from(ring.key_size),
        keys,
        derived: ring.derived,
        kdf: if ring.derived {
            u64::from(ring.kdf.code())
        } else {
            0
        },
        convergent_encryption: ring.convergent,
        exportable: ring.exportable,
        min_decryption_version: i64::from(ring.min_decryption_version),
        min_encryption_version: i64::from(ring.min_encryption_version),
        latest_version: i64::from(ring.latest_version),
        archive_version: i64::from(ring.latest_version),
        archive_min_version: i64::from(ring.min_available_version),
        min_available_version: i64::from(ring.min_available_version),
        deletion_allowed: ring.deletion_allowed,
        convergent_version: if ring.convergent { -1 } else { 0 },
        key_type: u64::from(ring.key_type.openbao_code()),
        backup_info: stamp(&ring.backup_info)?,
        restore_info: stamp(&ring.restore_info)?,
        allow_plaintext_backup: ring.allow_plaintext_backup,
        version_template: String::new(),
        storage_prefix: String::new(),
        auto_rotate_period: (ring.auto_rotate_period_secs as i64).saturating_mul(1_000_000_000),
        imported: ring.imported,
        allow_imported_key_rotation: ring.allow_imported_key_rotation,
        soft_deleted: ring.soft_deleted,
        max_encryptions_per_version: ring.max_encryptions,
        encryption_counts: counts
            .range(ring.min_available_version..)
            .map(|(v, n)| (*v, *n))
            .collect(),
    };
    let doc = BackupDoc {
        policy: Some(policy),
        archived_keys: Some(ArchiveDoc {
            keys: Some(archive),
        }),
    };
    let mut json = zeroize::Zeroizing::new(serde_json::to_vec(&doc).map_err(|_| Error::Crypto)?);
    json.push(b'\n');
    Ok(SecretString::new(STANDARD.encode(&*json)))
}

fn entry_doc(ring: &Keyring, v: &KeyVersion) -> Result<EntryDoc> {
    let mut e = EntryDoc {
        hmac_key: Some(b64(v.hmac_key.expose())),
        time: format_time(v.created)?,
        convergent_version: i64::from(v.convergent_version),
        creation_time: v.created.unix_timestamp(),
        ..EntryDoc::default()
    };
    match &v.material {
        Material::Aead { key, .. } | Material::Hmac(key) => e.key = Some(b64(key.expose())),
        Material::Signing(SigningKey::Ed25519(k)) => {
            let full = v.material.openbao_key_bytes().ok_or(Error::Crypto)?;
            e.key = Some(b64(full.expose()));
            e.public_key = b64(&k.public_key());
        }
        Material::Signing(SigningKey::MlDsa(_)) => {
            e.key = Some(b64(private(v)?.expose()));
            if let PublicKey::MlDsa { raw, .. } = signing_public(v)? {
                e.public_key = b64(&raw);
            }
        }
        Material::Signing(SigningKey::Ecdsa(k)) => {
            let sec1 = k.public_sec1();
            let half = (sec1.len() - 1) / 2;
            e.ec_x = Some(big_to_json(&sec1[1..1 + half])?);
            e.ec_y = Some(big_to_json(&sec1[1 + half..])?);
            e.ec_d = Some(big_to_json(private(v)?.expose())?);
            e.public_key = signing_public(v)?.to_pem()?;
        }
        Material::Signing(SigningKey::Rsa(k)) => e.rsa_key = Some(rsa_doc(k)?),
        Material::Public(_) => return Err(Error::BackupPublicOnly),
    }
    let _ = ring;
    Ok(e)
}

fn private(v: &KeyVersion) -> Result<&SecretBytes> {
    v.material.private_bytes().ok_or(Error::Crypto)
}

fn signing_public(v: &KeyVersion) -> Result<PublicKey> {
    match &v.material {
        Material::Signing(k) => Ok(k.public_key()),
        _ => Err(Error::Crypto),
    }
}

fn rsa_doc(k: &RsaKey) -> Result<RsaDoc> {
    use pkcs1::der::Decode;
    let info = pkcs8::PrivateKeyInfoRef::from_der(k.pkcs8().expose()).map_err(|_| Error::Crypto)?;
    let rsa = pkcs1::RsaPrivateKey::<der::asn1::UintRef<'_>>::from_der(info.private_key.as_bytes())
        .map_err(|_| Error::Crypto)?;
    let e_bytes = rsa.public_exponent.as_bytes();
    let e = e_bytes
        .iter()
        .fold(0i64, |acc, b| (acc << 8) | i64::from(*b));
    Ok(RsaDoc {
        N: big_to_json(rsa.modulus.as_bytes())?,
        E: e,
        D: big_to_json(rsa.private_exponent.as_bytes())?,
        Primes: vec![
            big_to_json(rsa.prime1.as_bytes())?,
            big_to_json(rsa.prime2.as_bytes())?,
        ],
        Precomputed: Some(RsaPrecomputedDoc {
            Dp: Some(big_to_json(rsa.exponent1.as_bytes())?),
            Dq: Some(big_to_json(rsa.exponent2.as_bytes())?),
            Qinv: Some(big_to_json(rsa.coefficient.as_bytes())?),
            CRTValues: Some(Vec::new()),
        }),
    })
}

// ---------------------------------------------------------------------------
// Reading

/// A keyring from an OpenBao (or transitd) backup blob. `name` overrides the
/// name inside the backup. The caller stamps `restore_info`.
pub fn restore(blob: &str, name: Option<&str>) -> Result<Keyring> {
    restore_counted(blob, name).map(|(ring, _)| ring)
}

/// [`restore`], with the encryption counts the backup carries (none from
/// OpenBao's backups).
pub fn restore_counted(blob: &str, name: Option<&str>) -> Result<(Keyring, BTreeMap<u32, u64>)> {
    if blob.len() > MAX_BACKUP_LEN {
        return Err(invalid("backup is too large"));
    }
    let json = zeroize::Zeroizing::new(
        STANDARD
            .decode(blob.trim())
            .map_err(|_| invalid("backup is not valid base64"))?,
    );
    let doc: BackupDoc = serde_json::from_slice(&json).map_err(|e| {
        // Position only: serde's message could quote a value from the blob.
        invalid(format!(
            "backup is not valid JSON ({:?} error at line {} column {})",
            e.classify(),
            e.line(),
            e.column()
        ))
    })?;
    let policy = doc.policy.ok_or_else(|| invalid("missing 'policy'"))?;
    let name = name.unwrap_or(&policy.name);
    validate_name(name).map_err(|_| invalid("invalid key name"))?;
    let key_type = KeyType::from_openbao_code(policy.key_type)
        .ok_or_else(|| invalid(format!("unsupported key type number {}", policy.key_type)))?;
    if !policy.version_template.is_empty() && policy.version_template != "vault:v{{version}}:" {
        return Err(invalid("custom version templates are not supported"));
    }
    let kdf = Kdf::from_code(policy.kdf).ok_or_else(|| invalid("unknown kdf"))?;
    let version = |v: i64, what: &str| -> Result<u32> {
        u32::try_from(v).map_err(|_| invalid(format!("{what} out of range")))
    };
    let latest = version(policy.latest_version, "latest_version")?;
    let min_available = version(policy.min_available_version, "min_available_version")?;
    let min_dec = version(policy.min_decryption_version, "min_decryption_version")?.max(1);
    let min_enc = version(policy.min_encryption_version, "min_encryption_version")?;
    if latest == 0 || min_dec > latest || min_enc > latest || min_available > min_dec {
        return Err(invalid("inconsistent version bounds"));
    }
    if policy.derived && !key_type.supports_derivation()
        || policy.convergent_encryption && !policy.derived
    {
        return Err(invalid("derivation settings do not fit the key type"));
    }
    if policy.convergent_encryption && ![-1, 3].contains(&policy.convergent_version) {
        return Err(Error::UnsupportedConvergentVersion(
            policy.convergent_version.max(0) as u32,
        ));
    }
    let first = min_available.max(1);
    let count = (latest - first) as usize + 1;
    let archive = doc.archived_keys.and_then(|a| a.keys).unwrap_or_default();
    if count > MAX_VERSIONS || count > policy.keys.len() + archive.len() {
        return Err(invalid("backup does not hold every version it names"));
    }
    let archive_min = version(policy.archive_min_version, "archive_min_version")?;
    let mut versions = BTreeMap::new();
    for n in first..=latest {
        let entry = match policy.keys.get(&n.to_string()) {
            Some(e) => e,
            None => n
                .checked_sub(archive_min)
                .and_then(|i| archive.get(i as usize))
                .ok_or_else(|| invalid(format!("version {n} is missing")))?,
        };
        let v = version_from_entry(
            key_type,
            n,
            entry,
            policy.derived,
            policy.convergent_encryption,
        )?;
        versions.insert(n, Arc::new(v));
    }
    let stamp = |s: &Option<StampDoc>| -> Option<VersionStamp> {
        s.as_ref().and_then(|s| {
            Some(VersionStamp {
                time: parse_time(&s.time)?,
                version: u32::try_from(s.version).ok()?,
            })
        })
    };
    let key_size = match key_type {
        KeyType::Hmac => versions
            .values()
            .next()
            .and_then(|v| v.material.private_bytes())
            .map_or(0, |key| key.len() as u32),
        _ => 0,
    };
    let ring = Keyring {
        name: name.to_owned(),
        key_type,
        derived: policy.derived,
        kdf: if policy.derived { kdf } else { Kdf::Hkdf },
        convergent: policy.convergent_encryption,
        exportable: policy.exportable,
        allow_plaintext_backup: policy.allow_plaintext_backup,
        deletion_allowed: policy.deletion_allowed,
        auto_rotate_period_secs: (policy.auto_rotate_period.max(0) / 1_000_000_000) as u64,
        max_encryptions: policy
            .max_encryptions_per_version
            .map(|limit| check_encryption_limit(key_type, i64::try_from(limit).unwrap_or(-1)))
            .transpose()?,
        min_decryption_version: min_dec,
        min_encryption_version: min_enc,
        min_available_version: min_available,
        latest_version: latest,
        key_size,
        imported: policy.imported,
        allow_imported_key_rotation: policy.allow_imported_key_rotation,
        soft_deleted: policy.soft_deleted,
        backup_info: stamp(&policy.backup_info),
        restore_info: stamp(&policy.restore_info),
        versions,
    };
    Ok((ring, policy.encryption_counts))
}

fn version_from_entry(
    key_type: KeyType,
    n: u32,
    e: &EntryDoc,
    derived: bool,
    convergent: bool,
) -> Result<KeyVersion> {
    let what = |field: &str| format!("version {n} {field}");
    let key = || -> Result<SecretBytes> {
        let text = e
            .key
            .as_deref()
            .ok_or_else(|| invalid(what("has no key")))?;
        unb64(text, &what("key"))
    };
    let material = match key_type {
        t if t.is_aead() => Material::aead(t, key()?, derived)
            .map_err(|_| invalid(what("key has the wrong length")))?,
        KeyType::Hmac => {
            let k = key()?;
            if !(32..=512).contains(&k.len()) {
                return Err(invalid(what("hmac key has the wrong length")));
            }
            Material::Hmac(k)
        }
        KeyType::Ed25519 => {
            let full = key()?;
            if full.len() != 64 {
                return Err(invalid(what("ed25519 key has the wrong length")));
            }
            let k = Ed25519Key::from_seed(SecretBytes::from_slice(&full.expose()[..32]))?;
            if k.public_key()[..] != full.expose()[32..] {
                return Err(invalid(what("ed25519 public key does not match its seed")));
            }
            Material::Signing(SigningKey::Ed25519(k))
        }
        KeyType::EcdsaP256 | KeyType::EcdsaP384 | KeyType::EcdsaP521 => {
            let curve = key_type.curve().ok_or(Error::Crypto)?;
            let len = match curve {
                Curve::P256 => 32,
                Curve::P384 => 48,
                Curve::P521 => 66,
            };
            let d = e
                .ec_d
                .as_deref()
                .ok_or_else(|| invalid(what("has no ec_d")))?;
            let d = SecretBytes::new(left_pad(&big_from_json(d, "ec_d")?, len, "ec_d")?);
            let k = EcdsaKey::from_scalar(curve, d)
                .map_err(|_| invalid(what("ec_d is not a valid scalar")))?;
            if let (Some(x), Some(y)) = (&e.ec_x, &e.ec_y) {
                let mut sec1 = vec![4u8];
                sec1.extend(left_pad(&big_from_json(x, "ec_x")?, len, "ec_x")?);
                sec1.extend(left_pad(&big_from_json(y, "ec_y")?, len, "ec_y")?);
                if sec1 != k.public_sec1() {
                    return Err(invalid(what("ec public key does not match ec_d")));
                }
            }
            Material::Signing(SigningKey::Ecdsa(k))
        }
        KeyType::Rsa2048 | KeyType::Rsa3072 | KeyType::Rsa4096 => {
            let doc = e
                .rsa_key
                .as_ref()
                .ok_or_else(|| invalid(what("has no rsa_key")))?;
            Material::Signing(SigningKey::Rsa(
                rsa_from_doc(key_type, doc)
                    .map_err(|_| invalid(what("rsa_key is not a valid key")))?,
            ))
        }
        KeyType::MlDsa44 | KeyType::MlDsa65 | KeyType::MlDsa87 => {
            let level = key_type.mldsa_level().ok_or(Error::Crypto)?;
            let seed = key()?;
            if seed.len() != 32 {
                return Err(invalid(what("ml-dsa seed has the wrong length")));
            }
            let k = MlDsaKey::from_seed(level, seed)?;
            if !e.public_key.is_empty()
                && STANDARD.decode(&e.public_key).ok().as_deref() != Some(k.public_raw())
            {
                return Err(invalid(what("ml-dsa public key does not match its seed")));
            }
            Material::Signing(SigningKey::MlDsa(k))
        }
        _ => return Err(Error::Crypto),
    };
    let hmac_key = match &e.hmac_key {
        Some(text) => Some(unb64(text, &what("hmac_key"))?),
        None => None,
    };
    if hmac_key.as_ref().is_some_and(SecretBytes::is_empty) {
        return Err(invalid(what("hmac_key is empty")));
    }
    let created = parse_time(&e.time)
        .filter(|t| t.year() > 1)
        .or_else(|| OffsetDateTime::from_unix_timestamp(e.creation_time).ok())
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let mut v = KeyVersion::assemble(n, created, material, hmac_key, convergent)?;
    if convergent && e.convergent_version != 0 && e.convergent_version != 3 {
        v.convergent_version = e.convergent_version.clamp(0, i64::from(u32::MAX)) as u32;
    }
    Ok(v)
}

fn rsa_from_doc(key_type: KeyType, doc: &RsaDoc) -> Result<RsaKey> {
    use aws_lc_rs::encoding::AsDer;
    if doc.Primes.len() != 2 || doc.E <= 1 {
        return Err(invalid("rsa_key must have two primes"));
    }
    let n = big_from_json(&doc.N, "N")?;
    let d = zeroize::Zeroizing::new(big_from_json(&doc.D, "D")?);
    let p = zeroize::Zeroizing::new(big_from_json(&doc.Primes[0], "P")?);
    let q = zeroize::Zeroizing::new(big_from_json(&doc.Primes[1], "Q")?);
    let e = BigUint::from(doc.E as u64).to_bytes_be();
    // CRT values: taken from the backup when present, else computed.
    let pre = doc.Precomputed.as_ref();
    let crt = |field: Option<&Option<Box<RawValue>>>,
               compute: &dyn Fn() -> Option<Vec<u8>>,
               what: &str|
     -> Result<Vec<u8>> {
        match field.and_then(|f| f.as_deref()) {
            Some(raw) => big_from_json(raw, what),
            None => compute().ok_or_else(|| invalid("cannot compute RSA CRT values")),
        }
    };
    let (bd, bp, bq) = (
        BigUint::from_bytes_be(&d),
        BigUint::from_bytes_be(&p),
        BigUint::from_bytes_be(&q),
    );
    let one = BigUint::from(1u8);
    let dp = zeroize::Zeroizing::new(crt(
        pre.map(|p| &p.Dp),
        &|| Some((&bd % (&bp - &one)).to_bytes_be()),
        "Dp",
    )?);
    let dq = zeroize::Zeroizing::new(crt(
        pre.map(|p| &p.Dq),
        &|| Some((&bd % (&bq - &one)).to_bytes_be()),
        "Dq",
    )?);
    let qinv = zeroize::Zeroizing::new(crt(
        pre.map(|p| &p.Qinv),
        &|| {
            bq.modpow(&(&bp - BigUint::from(2u8)), &bp)
                .to_bytes_be()
                .into()
        },
        "Qinv",
    )?);
    let components = aws_lc_rs::rsa::KeyPairComponents {
        public_key: aws_lc_rs::rsa::PublicKeyComponents {
            n: &n[..],
            e: &e[..],
        },
        d: &d[..],
        p: &p[..],
        q: &q[..],
        dP: &dp[..],
        dQ: &dq[..],
        qInv: &qinv[..],
    };
    let pair = aws_lc_rs::rsa::KeyPair::from_components(&components)
        .map_err(|_| invalid("inconsistent RSA key"))?;
    let pkcs8 = pair.as_der().map_err(|_| Error::Crypto)?;
    RsaKey::from_pkcs8(key_type, SecretBytes::from_slice(pkcs8.as_ref()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyring::{CreateOptions, CryptoParams};

    fn now() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp_nanos(1_795_471_670_850_896_930).unwrap()
    }

    #[test]
    fn round_trip_every_type() {
        let opts = CreateOptions {
            exportable: true,
            allow_plaintext_backup: true,
            ..Default::default()
        };
        for t in KeyType::ALL {
            let mut k = Keyring::create("bk", t, &opts, now()).unwrap();
            k.rotate(now()).unwrap();
            let blob = backup(&k).unwrap();
            let r = restore(&blob, Some("other")).unwrap();
            assert_eq!(r.name(), "other");
            assert_eq!(r.latest_version(), 2);
            assert_eq!(
                backup(&Keyring {
                    name: "bk".into(),
                    ..r
                })
                .unwrap()
                .as_str(),
                blob.as_str(),
                "{t}"
            );
        }
    }

    #[test]
    fn counts_and_the_limit_travel_in_transitd_backups_only() {
        let opts = CreateOptions {
            exportable: true,
            allow_plaintext_backup: true,
            ..Default::default()
        };
        let mut k = Keyring::create("c", KeyType::Aes256Gcm96, &opts, now()).unwrap();
        k.configure(&crate::keyring::ConfigChange {
            max_encryptions_per_version: Some(1000),
            ..Default::default()
        })
        .unwrap();
        let counts = BTreeMap::from([(1, 700)]);
        let (r, restored) = restore_counted(&backup_counted(&k, &counts).unwrap(), None).unwrap();
        assert_eq!(restored, counts);
        assert_eq!(r.max_encryptions_per_version(), Some(1000));
        // Without counts the blob has no field of ours but the limit.
        let (_, none) = restore_counted(&backup(&k).unwrap(), None).unwrap();
        assert!(none.is_empty());
    }

    #[test]
    fn restored_keys_decrypt() {
        let opts = CreateOptions {
            exportable: true,
            allow_plaintext_backup: true,
            ..Default::default()
        };
        let k = Keyring::create("bk", KeyType::Aes256Gcm96, &opts, now()).unwrap();
        let ct = k.encrypt(b"data", &CryptoParams::default()).unwrap();
        let r = restore(&backup(&k).unwrap(), None).unwrap();
        assert_eq!(
            &r.decrypt(&ct.text, &CryptoParams::default()).unwrap()[..],
            b"data"
        );
    }

    #[test]
    fn malformed_backups_are_errors() {
        for blob in [
            "",
            "!!!",
            &b64(b"{}"),
            &b64(b"[]"),
            &b64(b"{\"policy\":null}"),
            &b64(b"{\"policy\":{}}"),
        ] {
            assert!(
                matches!(restore(blob, None), Err(Error::InvalidBackup(_))),
                "{blob}"
            );
        }
        let huge = b64(
            br#"{"policy":{"name":"x","latest_version":4000000000,"min_decryption_version":1}}"#,
        );
        assert!(matches!(restore(&huge, None), Err(Error::InvalidBackup(_))));
    }

    #[test]
    fn refuses_without_permission() {
        let k =
            Keyring::create("bk", KeyType::Aes256Gcm96, &CreateOptions::default(), now()).unwrap();
        assert_eq!(backup(&k).unwrap_err(), Error::ExportingDisallowed);
    }
}
