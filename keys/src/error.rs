//! The one error type of `transit-keys`.
//!
//! Messages keep the meaning (and, where clients may match on them, the words) of
//! OpenBao's transit errors. Nothing here ever carries key material or plaintext:
//! variants hold only names, numbers and fixed strings.

use crate::key_type::KeyType;

/// Which side is at fault, so the HTTP edge can pick a status without reading text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The request is wrong or does not fit this key (HTTP 400).
    InvalidRequest,
    /// Our own stored data or a library failed (HTTP 500, generic body).
    Internal,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    // ---- key creation and configuration ----
    #[error("unknown key type {0}")]
    UnknownKeyType(String),
    #[error("convergent encryption requires derivation to be enabled")]
    ConvergentRequiresDerivation,
    #[error("key derivation and convergent encryption not supported for keys of type {0}")]
    DerivationNotSupported(KeyType),
    #[error("convergent encryption not supported for keys of type {0}")]
    ConvergentNotSupported(KeyType),
    #[error("auto rotate period must be 0 to disable or at least an hour")]
    AutoRotatePeriodTooShort,
    #[error("key_size is not valid for algorithm {0}")]
    KeySizeNotValid(KeyType),
    #[error("invalid key_size {0}")]
    InvalidKeySize(u64),
    #[error("key names cannot be empty or contain '/'")]
    InvalidKeyName,
    #[error("cannot set min decryption version of {requested}, latest key version is {latest}")]
    MinDecryptionAboveLatest { requested: i64, latest: u32 },
    #[error("cannot set min encryption version of {requested}, latest key version is {latest}")]
    MinEncryptionAboveLatest { requested: i64, latest: u32 },
    #[error(
        "cannot set min encryption/decryption values; min encryption version of {encryption} must be greater than or equal to min decryption version of {decryption}"
    )]
    MinEncryptionBelowMinDecryption { encryption: u32, decryption: u32 },
    #[error("min decryption version cannot be negative")]
    NegativeMinDecryption,
    #[error("min encryption version cannot be negative")]
    NegativeMinEncryption,
    #[error("min decryption version should not be less than min available version")]
    MinDecryptionBelowMinAvailable,
    #[error("min encryption version should not be less than min available version")]
    MinEncryptionBelowMinAvailable,
    #[error("minimum available version cannot be set when minimum encryption version is not set")]
    TrimNeedsMinEncryption,
    #[error("minimum available version cannot be greater than minimum decryption version")]
    TrimAboveMinDecryption,
    #[error("minimum available version cannot be greater than minimum encryption version")]
    TrimAboveMinEncryption,
    #[error("minimum available version cannot be decremented")]
    TrimDecrement,
    #[error("minimum available version cannot be negative")]
    TrimNegative,
    #[error("minimum available version should be positive")]
    TrimNotPositive,
    #[error("refusing to use soft-deleted key")]
    SoftDeleted,
    #[error("imported key {0} does not allow rotation within Vault")]
    ImportedKeyNoRotation(String),
    #[error("key has reached the maximum number of versions")]
    TooManyVersions,
    #[error("max_encryptions_per_version must be a positive number")]
    EncryptionLimitNotPositive,
    #[error(
        "max_encryptions_per_version cannot exceed {bound}, the safe bound for key type {key_type}"
    )]
    EncryptionLimitAboveBound { bound: u64, key_type: KeyType },
    #[error("max_encryptions_per_version is not valid for key type {0}, which does not encrypt")]
    EncryptionLimitNotValid(KeyType),

    // ---- choosing a version ----
    #[error("requested version for encryption is higher than the latest key version")]
    EncryptVersionTooHigh,
    #[error("requested version for encryption is negative")]
    EncryptVersionNegative,
    #[error("requested version for encryption is less than the minimum encryption key version")]
    EncryptVersionTooOld,
    #[error("requested version for signing is higher than the latest key version")]
    SignVersionTooHigh,
    #[error("requested version for signing is less than the minimum encryption key version")]
    SignVersionTooOld,
    #[error("ciphertext or signature version is disallowed by policy (too old)")]
    VersionTooOld,
    #[error("no such key version")]
    NoSuchKeyVersion,
    #[error("refusing to use a convergent key version of format {0}; only version 3 is supported")]
    UnsupportedConvergentVersion(u32),

    // ---- operations not offered by a key type ----
    #[error("message encryption not supported for key type {0}")]
    EncryptionNotSupported(KeyType),
    #[error("message decryption not supported for key type {0}")]
    DecryptionNotSupported(KeyType),
    #[error("key type {0} does not support signing")]
    SigningNotSupported(KeyType),
    #[error("associated_data provided for non-AEAD cipher suite {0}")]
    AssociatedDataNotSupported(KeyType),
    #[error(
        "missing 'context' for key derivation; the key was created using a derived key, which means additional, per-request information must be included in order to perform operations with the key"
    )]
    MissingContext,
    #[error("context is only allowed with a derived key")]
    ContextNotAllowed,
    #[error("plaintext is too long for an RSA key of this size")]
    PlaintextTooLong,

    // ---- ciphertexts ----
    #[error("invalid ciphertext: no prefix")]
    CiphertextNoPrefix,
    #[error("invalid ciphertext: wrong number of fields")]
    CiphertextWrongFields,
    #[error("invalid ciphertext: version number could not be decoded")]
    CiphertextBadVersion,
    #[error("invalid ciphertext: version is too new")]
    CiphertextVersionTooNew,
    #[error("invalid ciphertext: could not decode base64")]
    CiphertextBadBase64,
    #[error("invalid ciphertext length")]
    CiphertextLength,
    /// Every authentication or decryption failure, whatever its cause.
    #[error("cipher: message authentication failed")]
    DecryptionFailed,

    // ---- HMAC ----
    #[error("unsupported algorithm {0}")]
    UnsupportedHmacAlgorithm(String),
    #[error("cannot generate HMAC: version is too old (disallowed by policy)")]
    HmacVersionTooOld,
    #[error("key version does not exist (cannot be negative)")]
    HmacVersionNegative,
    #[error("key version does not exist; latest key version is {0}")]
    HmacVersionMissing(u32),
    #[error("invalid HMAC to verify: no prefix")]
    HmacNoPrefix,
    #[error("invalid HMAC: wrong number of fields")]
    HmacWrongFields,
    #[error("invalid HMAC: version number could not be decoded")]
    HmacBadVersion,
    #[error("invalid HMAC: version is too new")]
    HmacVersionTooNew,
    #[error("unable to decode verification HMAC as base64")]
    HmacBadBase64,
    #[error("cannot verify HMAC: version is too old (disallowed by policy)")]
    HmacVerifyVersionTooOld,

    // ---- signatures ----
    #[error("invalid hash algorithm {0:?}")]
    InvalidHashAlgorithm(String),
    #[error("hash algorithm {hash} is not supported for key type {key_type}")]
    HashNotSupportedForKey {
        hash: &'static str,
        key_type: KeyType,
    },
    #[error("invalid marshaling type {0:?}")]
    InvalidMarshaling(String),
    #[error("marshaling type jws is not supported for key type {0}")]
    MarshalingNotSupported(KeyType),
    #[error("hash_algorithm=none requires both prehashed=true and signature_algorithm=pkcs1v15")]
    HashNoneRequirements,
    #[error("salt length neither 'auto', 'hash', nor an int: {0}")]
    InvalidSaltLength(String),
    #[error("requested salt length {0} is invalid")]
    SaltLengthOutOfRange(i64),
    #[error("unsupported rsa signature algorithm {0}")]
    UnsupportedSignatureAlgorithm(String),
    #[error("prehashed input is not a valid digest for the chosen hash algorithm and key")]
    InvalidPrehashedInput,
    #[error(
        "RSA-PSS salt length {0} is not supported: use 'auto' (maximum), 'hash', or the digest length"
    )]
    UnsupportedSaltLength(u16),
    #[error("invalid signature: no prefix")]
    SignatureNoPrefix,
    #[error("invalid signature: wrong number of fields")]
    SignatureWrongFields,
    #[error("invalid signature: version number could not be decoded")]
    SignatureBadVersion,
    #[error("invalid signature: version is too new")]
    SignatureVersionTooNew,
    #[error("invalid base64 signature value")]
    SignatureBadBase64,
    #[error("supplied signature is invalid")]
    SignatureMalformed,

    // ---- data keys, export, backup ----
    #[error("invalid bit length")]
    InvalidBitLength,
    #[error("private key material is not exportable")]
    NotExportable,
    #[error("encryption not supported for the key")]
    ExportEncryptionNotSupported,
    #[error("signing not supported for the key")]
    ExportSigningNotSupported,
    #[error("public key export not supported for key type {0}")]
    ExportPublicKeyNotSupported(KeyType),
    #[error("invalid export type: {0}")]
    InvalidExportType(String),
    #[error("invalid format: {0}")]
    InvalidExportFormat(String),
    #[error(
        "format {format} is not supported for export type {export_type} of key type {key_type}"
    )]
    ExportFormatNotSupported {
        format: &'static str,
        export_type: &'static str,
        key_type: KeyType,
    },
    #[error("version for export is below minimum decryption version")]
    ExportVersionBelowMinimum,
    #[error("version does not exist or cannot be found")]
    ExportVersionMissing,
    #[error("invalid key version")]
    InvalidKeyVersion,
    #[error("exporting is disallowed on the policy")]
    ExportingDisallowed,
    #[error("plaintext backup is disallowed on the policy")]
    PlaintextBackupDisallowed,
    #[error("invalid backup: {0}")]
    InvalidBackup(String),
    #[error("backup of a key with public-only versions is not supported by transitd")]
    BackupPublicOnly,

    // ---- BYOK ----
    #[error("requested version for signing does not contain a private part")]
    SignPrivateMissing,
    #[error("private key not imported for key version selected")]
    PrivateKeyMissing,
    #[error("error parsing public key: {0}")]
    InvalidPublicKey(&'static str),
    #[error("provided type does not support public_key import")]
    PublicImportNotSupported,
    #[error("unable to import only public key for derived Ed25519 key")]
    PublicImportDerived,
    #[error("cannot add a public key to a key version that already has a public key set")]
    PublicKeyAlreadySet,
    #[error("private key imported, key version cannot be updated")]
    VersionHasPrivateKey,
    #[error("provided type does not support importing key versions")]
    VersionImportNotSupported,
    #[error("cannot import key, key pair does not match")]
    KeyPairMismatch,
    /// Every failure to unwrap an imported key or to read its material: one
    /// text, so that it tells nothing of which step failed.
    #[error(
        "failed to import the key: ciphertext is not a key of this type wrapped for this mount's wrapping key with this hash_function"
    )]
    ImportUnwrapFailed,
    #[error(
        "hash_function SHA224 is not supported by transitd; use SHA1, SHA256, SHA384 or SHA512"
    )]
    OaepHashNotSupported,
    #[error("unknown hash function: {0}")]
    UnknownOaepHash(String),
    #[error("import is not supported for keys of type {0}")]
    ImportTypeNotSupported(KeyType),
    #[error("allow_rotation must be set to true if auto-rotation is enabled")]
    ImportAutoRotateNeedsRotation,
    #[error("the import_version endpoint can only be used with an imported key")]
    ImportVersionNotImported,
    #[error("import_version cannot be used on keys with convergent encryption enabled")]
    ImportConvergent,
    #[error("the key was replaced by one of another type during the import; try again")]
    ImportTypeChanged,
    #[error("unsupported key type in use; must be a rsa key (destination is {0})")]
    ByokDestinationNotRsa(KeyType),
    #[error("key is not exportable")]
    ByokNotExportable,
    #[error("unable to export to unknown key type: {0}")]
    ByokExportTypeNotSupported(KeyType),

    // ---- our own stored form ----
    #[error("stored keyring is corrupt: {0}")]
    CorruptKeyring(&'static str),
    #[error("stored keyring schema {0} is newer than this release understands")]
    UnknownSchema(u32),
    #[error("cryptographic library failure")]
    Crypto,
}

impl Error {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::CorruptKeyring(_) | Self::UnknownSchema(_) | Self::Crypto => ErrorKind::Internal,
            _ => ErrorKind::InvalidRequest,
        }
    }
}

pub type Result<T, E = Error> = core::result::Result<T, E>;
