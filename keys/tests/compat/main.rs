//! Compatibility tests of `transit-keys` against external test vectors.

mod wycheproof;
