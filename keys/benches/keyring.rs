//! Throughput and latency of the keyring operations, each AEAD beside its raw
//! primitive so the keyring's own overhead (nonce generation, the
//! `vault:vN:` envelope, base64, allocation) shows as a ratio.
//!
//! Group names are `<operation>/<key type>`; inside a group, `keyring/<size>` is
//! the call through `Keyring` and `raw/<size>` the bare cipher. Run a subset with
//! a filter, e.g. `cargo bench -p transit-keys --bench keyring -- 'encrypt/aes256'`.
//! The whole run takes about four minutes on two cores (`BENCH_PLOTS=1` adds
//! criterion's HTML plots, and five minutes).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::cell::OnceCell;
use std::hint::black_box;
use std::time::Duration;

use chacha20poly1305::aead::{self as aead_rc, AeadInOut, KeyInit};
use criterion::measurement::WallTime;
use criterion::{
    BenchmarkGroup, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};
use ring::aead as ra;
use ring::rand::{SecureRandom, SystemRandom};
use time::OffsetDateTime;
use transit_keys::{CreateOptions, CryptoParams, HashAlgorithm, KeyType, Keyring, SignOptions};

const AEAD_TYPES: [KeyType; 4] = [
    KeyType::Aes128Gcm96,
    KeyType::Aes256Gcm96,
    KeyType::ChaCha20Poly1305,
    KeyType::XChaCha20Poly1305,
];

const SIZES: [(usize, &str); 4] = [
    (64, "64B"),
    (1 << 10, "1KiB"),
    (16 << 10, "16KiB"),
    (1 << 20, "1MiB"),
];

const CONTEXT: &[u8] = b"bench-context";

fn now() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_795_471_584).unwrap()
}

fn keyring(key_type: KeyType, opts: &CreateOptions) -> Keyring {
    Keyring::create("bench", key_type, opts, now())
        .unwrap_or_else(|e| panic!("create {key_type}: {e}"))
}

fn configure(group: &mut BenchmarkGroup<'_, WallTime>) {
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
}

/// The bare primitive with a precomputed key schedule, as the keyring uses it.
#[allow(clippy::large_enum_variant)] // mirrors `AeadKey`
enum Raw {
    Ring(ra::LessSafeKey),
    XChaCha(Box<chacha20poly1305::XChaCha20Poly1305>),
}

impl Raw {
    fn new(key_type: KeyType) -> Self {
        let mut key = vec![0u8; key_type.symmetric_key_len().unwrap()];
        SystemRandom::new().fill(&mut key).unwrap();
        let alg = match key_type {
            KeyType::Aes128Gcm96 => &ra::AES_128_GCM,
            KeyType::Aes256Gcm96 => &ra::AES_256_GCM,
            KeyType::ChaCha20Poly1305 => &ra::CHACHA20_POLY1305,
            KeyType::XChaCha20Poly1305 => {
                return Self::XChaCha(Box::new(
                    chacha20poly1305::XChaCha20Poly1305::new_from_slice(&key).unwrap(),
                ));
            }
            other => panic!("{other} is not an AEAD type"),
        };
        Self::Ring(ra::LessSafeKey::new(
            ra::UnboundKey::new(alg, &key).unwrap(),
        ))
    }

    /// Seal `buf` in place under a fresh random nonce from the keyring's nonce
    /// source (`fill_random`), so both sides pay the same for randomness.
    fn seal_random(&self, _rng: &SystemRandom, buf: &mut [u8]) -> [u8; 16] {
        match self {
            Self::Ring(key) => {
                let mut nonce = [0u8; 12];
                transit_keys::secret::fill_nonce(&mut nonce);
                let tag = key
                    .seal_in_place_separate_tag(
                        ra::Nonce::assume_unique_for_key(nonce),
                        ra::Aad::empty(),
                        buf,
                    )
                    .unwrap();
                tag.as_ref().try_into().unwrap()
            }
            Self::XChaCha(cipher) => {
                let mut nonce = [0u8; 24];
                transit_keys::secret::fill_nonce(&mut nonce);
                let nonce = aead_rc::Nonce::<chacha20poly1305::XChaCha20Poly1305>::from(nonce);
                let tag = cipher
                    .encrypt_inout_detached(&nonce, &[], buf.into())
                    .unwrap();
                tag.into()
            }
        }
    }

    /// `nonce || ciphertext || tag` of `plaintext`, for the decrypt benches.
    fn sealed(&self, plaintext: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let nonce_len = if matches!(self, Self::XChaCha(_)) {
            24
        } else {
            12
        };
        let mut nonce = vec![0u8; nonce_len];
        SystemRandom::new().fill(&mut nonce).unwrap();
        let mut body = plaintext.to_vec();
        let tag = match self {
            Self::Ring(key) => key
                .seal_in_place_separate_tag(
                    ra::Nonce::try_assume_unique_for_key(&nonce).unwrap(),
                    ra::Aad::empty(),
                    &mut body,
                )
                .unwrap()
                .as_ref()
                .to_vec(),
            Self::XChaCha(cipher) => {
                let n = aead_rc::Nonce::<chacha20poly1305::XChaCha20Poly1305>::try_from(&nonce[..])
                    .unwrap();
                cipher
                    .encrypt_inout_detached(&n, &[], body.as_mut_slice().into())
                    .unwrap()
                    .to_vec()
            }
        };
        body.extend_from_slice(&tag);
        (nonce, body)
    }

    /// Open `ciphertext || tag` in place; returns the plaintext length.
    fn open(&self, nonce: &[u8], buf: &mut [u8]) -> usize {
        match self {
            Self::Ring(key) => key
                .open_in_place(
                    ra::Nonce::try_assume_unique_for_key(nonce).unwrap(),
                    ra::Aad::empty(),
                    buf,
                )
                .unwrap()
                .len(),
            Self::XChaCha(cipher) => {
                let n =
                    aead_rc::Nonce::<chacha20poly1305::XChaCha20Poly1305>::try_from(nonce).unwrap();
                let split = buf.len() - 16;
                let (body, tag) = buf.split_at_mut(split);
                let tag =
                    aead_rc::Tag::<chacha20poly1305::XChaCha20Poly1305>::try_from(&*tag).unwrap();
                cipher
                    .decrypt_inout_detached(&n, &[], body.into(), &tag)
                    .unwrap();
                split
            }
        }
    }
}

/// Large inputs take milliseconds per call: fewer, flat samples keep the run short.
fn size_config(group: &mut BenchmarkGroup<'_, WallTime>, size: usize) {
    if size >= 1 << 20 {
        group.sample_size(20).sampling_mode(SamplingMode::Flat);
    } else {
        group.sample_size(50).sampling_mode(SamplingMode::Auto);
    }
    group.throughput(Throughput::Bytes(size as u64));
}

fn bench_encrypt(c: &mut Criterion) {
    let rng = SystemRandom::new();
    let params = CryptoParams::default();
    for t in AEAD_TYPES {
        let ring = keyring(t, &CreateOptions::default());
        let raw = Raw::new(t);
        let mut group = c.benchmark_group(format!("encrypt/{t}"));
        configure(&mut group);
        for (size, label) in SIZES {
            size_config(&mut group, size);
            let plaintext = vec![0x5a; size];
            group.bench_function(format!("keyring/{label}"), |b| {
                b.iter(|| ring.encrypt(black_box(&plaintext), &params).unwrap());
            });
            let mut buf = plaintext.clone();
            group.bench_function(format!("raw/{label}"), |b| {
                b.iter(|| raw.seal_random(&rng, black_box(&mut buf)));
            });
        }
        group.finish();
    }
}

fn bench_decrypt(c: &mut Criterion) {
    let params = CryptoParams::default();
    for t in AEAD_TYPES {
        let ring = keyring(t, &CreateOptions::default());
        let raw = Raw::new(t);
        let mut group = c.benchmark_group(format!("decrypt/{t}"));
        configure(&mut group);
        for (size, label) in SIZES {
            size_config(&mut group, size);
            let plaintext = vec![0x5a; size];
            let ciphertext = ring.encrypt(&plaintext, &params).unwrap().text;
            group.bench_function(format!("keyring/{label}"), |b| {
                b.iter(|| ring.decrypt(black_box(&ciphertext), &params).unwrap());
            });
            // ring opens in place, so each iteration first copies the sealed bytes
            // back (the keyring copies them too, after base64 decoding).
            let (nonce, sealed) = raw.sealed(&plaintext);
            let mut buf = sealed.clone();
            group.bench_function(format!("raw/{label}"), |b| {
                b.iter(|| {
                    buf.copy_from_slice(&sealed);
                    raw.open(&nonce, black_box(&mut buf))
                });
            });
        }
        group.finish();
    }
}

fn bench_derived(c: &mut Criterion) {
    let t = KeyType::Aes256Gcm96;
    let derived = keyring(
        t,
        &CreateOptions {
            derived: true,
            ..Default::default()
        },
    );
    let params = CryptoParams {
        context: Some(CONTEXT),
        ..Default::default()
    };
    let mut group = c.benchmark_group(format!("encrypt-derived/{t}"));
    configure(&mut group);
    group.sample_size(50);
    for (size, label) in [(64, "64B"), (16 << 10, "16KiB")] {
        group.throughput(Throughput::Bytes(size as u64));
        let plaintext = vec![0x5a; size];
        group.bench_function(format!("keyring/{label}"), |b| {
            b.iter(|| derived.encrypt(black_box(&plaintext), &params).unwrap());
        });
    }
    group.finish();
}

fn bench_signatures(c: &mut Criterion) {
    let message = [0x5au8; 64];
    let opts = SignOptions::default();
    for t in [
        KeyType::Ed25519,
        KeyType::EcdsaP256,
        KeyType::EcdsaP384,
        KeyType::EcdsaP521,
        KeyType::Rsa2048,
        KeyType::Rsa4096,
        KeyType::MlDsa65,
    ] {
        // Generated on first use, so a filter that skips the type skips its
        // (for RSA-4096, slow) key generation too.
        let ring: OnceCell<Keyring> = OnceCell::new();
        let get = || ring.get_or_init(|| keyring(t, &CreateOptions::default()));
        let signature: OnceCell<String> = OnceCell::new();

        let mut group = c.benchmark_group(format!("sign/{t}"));
        configure(&mut group);
        if t == KeyType::Rsa4096 {
            group
                .sample_size(10)
                .sampling_mode(SamplingMode::Flat)
                .measurement_time(Duration::from_secs(3));
        } else if t.is_rsa() || t == KeyType::MlDsa65 {
            group.sample_size(20).sampling_mode(SamplingMode::Flat);
        } else {
            group.sample_size(30);
        }
        group.bench_function("keyring", |b| {
            let k = get();
            b.iter(|| k.sign(black_box(&message), None, 0, &opts).unwrap());
        });
        if t == KeyType::Ed25519 {
            // The two Ed25519 implementations at hand, bare: why signing
            // uses aws-lc-rs.
            let seed = [7u8; 32];
            let lc = aws_lc_rs::signature::Ed25519KeyPair::from_seed_unchecked(&seed).unwrap();
            let rg = ring::signature::Ed25519KeyPair::from_seed_unchecked(&seed).unwrap();
            group.bench_function("raw-aws-lc", |b| b.iter(|| lc.sign(black_box(&message))));
            group.bench_function("raw-ring", |b| b.iter(|| rg.sign(black_box(&message))));
        }
        group.finish();

        let mut group = c.benchmark_group(format!("verify/{t}"));
        configure(&mut group);
        group.sample_size(30);
        group.bench_function("keyring", |b| {
            let k = get();
            let sig = signature.get_or_init(|| k.sign(&message, None, 0, &opts).unwrap().text);
            b.iter(|| {
                assert!(k.verify(black_box(&message), sig, None, &opts).unwrap());
            });
        });
        group.finish();
    }
}

fn bench_hmac(c: &mut Criterion) {
    let ring = keyring(KeyType::Hmac, &CreateOptions::default());
    let raw = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &[7u8; 32]);
    let mut group = c.benchmark_group("hmac/sha2-256");
    configure(&mut group);
    group.sample_size(50);
    for (size, label) in [(64, "64B"), (16 << 10, "16KiB")] {
        group.throughput(Throughput::Bytes(size as u64));
        let input = vec![0x5a; size];
        group.bench_function(format!("keyring/{label}"), |b| {
            b.iter(|| {
                ring.hmac(black_box(&input), HashAlgorithm::Sha2_256, 0)
                    .unwrap()
            });
        });
        group.bench_function(format!("raw/{label}"), |b| {
            b.iter(|| ring::hmac::sign(&raw, black_box(&input)));
        });
    }
    group.finish();
}

/// The `vault:vN:` envelope alone (base64 both ways), the largest part of the
/// keyring's overhead on bigger payloads.
fn bench_envelope(c: &mut Criterion) {
    use transit_keys::envelope;
    let mut group = c.benchmark_group("envelope");
    configure(&mut group);
    group.sample_size(50);
    for (size, label) in [(64 + 28, "64B"), ((16 << 10) + 28, "16KiB")] {
        group.throughput(Throughput::Bytes(size as u64));
        let payload = vec![0x5a; size];
        let text = envelope::encode(1, &payload);
        group.bench_function(format!("encode/{label}"), |b| {
            b.iter(|| envelope::encode(1, black_box(&payload)));
        });
        group.bench_function(format!("parse+decode/{label}"), |b| {
            b.iter(|| {
                let e = envelope::parse(black_box(&text)).unwrap();
                envelope::decode_standard(e.body).unwrap()
            });
        });
    }
    group.finish();
}

/// 10k bootstrap resamples instead of 100k, and no HTML plots unless
/// `BENCH_PLOTS=1`: on two cores, drawing the plots of ~90 benchmarks takes
/// longer than measuring them (about 9 minutes for the whole run instead of 4).
fn config() -> Criterion {
    let c = Criterion::default().nresamples(10_000);
    if std::env::var_os("BENCH_PLOTS").is_some() {
        c
    } else {
        c.without_plots()
    }
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench_encrypt,
        bench_decrypt,
        bench_derived,
        bench_signatures,
        bench_hmac,
        bench_envelope
}
criterion_main!(benches);
