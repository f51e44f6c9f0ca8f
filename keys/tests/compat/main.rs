//! Compatibility tests of `transit-keys` against external test vectors.

mod wycheproof;
mod openbao_vectors;
