//! Compatibility tests of `transit-keys` against external test vectors.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod openbao_vectors;
mod openbao_interop;
mod wycheproof;
