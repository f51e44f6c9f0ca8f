//! `transit-keys`: the versioned keyrings of transitd and every cryptographic
//! operation on them, compatible with the transit engine of Vault and OpenBao.
//!
//! Pure: no I/O, no async, no clock (callers pass the time), no HTTP types.
#![forbid(unsafe_code)]

pub mod aead;
pub mod backup;
pub mod byok;
pub mod derive;
pub mod envelope;
pub mod error;
pub mod export;
pub mod hash;
pub mod hmac;
pub mod key_type;
pub mod keyring;
pub mod secret;
pub mod sign;
pub mod stored;
pub mod version;

pub use error::{Error, ErrorKind, Result};
pub use hash::HashAlgorithm;
pub use key_type::KeyType;
pub use keyring::{
    ConfigChange, CreateOptions, CryptoParams, Keyring, Sealed, Signature, VersionInfo,
};
pub use sign::SignOptions;
