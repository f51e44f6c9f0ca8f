//! Compatibility tests of `transit-keys` against external test vectors.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod aead_differential;
mod openbao_interop;
mod openbao_vectors;
mod version_properties;
mod wycheproof;
