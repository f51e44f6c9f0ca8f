//! One envelope chunk sealed and opened (the per-chunk cost of `transitd
//! envelope`), at 64 KiB and 1 MiB, on the ring STREAM the command uses and
//! on RustCrypto's `aead-stream` over `aes-gcm` (the same bytes; kept to
//! show why ring runs the AES-GCM).
// A bench that cannot set itself up should stop loudly.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use aead_stream::EncryptorBE32;
use aes_gcm::aead::Payload;
use aes_gcm::{Aes256Gcm, KeyInit};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use transitd::envelope::stream::{ChunkKey, TAG_LEN};
use zeroize::Zeroizing;

const AAD: &[u8] = b"TDENV\r\n\x1a header bytes of a typical envelope";

fn chunks(c: &mut Criterion) {
    let key = ChunkKey::new(&Zeroizing::new([7u8; 32]), [1; 7]);
    for size in [64 * 1024, 1024 * 1024] {
        let mut group = c.benchmark_group(format!("envelope_chunk_{}KiB", size / 1024));
        group.throughput(Throughput::Bytes(size as u64));
        let mut buf = Vec::with_capacity(size + TAG_LEN);
        buf.resize(size, 0x61);
        // Sealing in place over the last round's ciphertext: no copy counted.
        group.bench_function("seal_ring", |b| {
            b.iter(|| {
                buf.truncate(size);
                key.seal(3, false, AAD, &mut buf);
            })
        });
        let mut sealed = vec![0x61; size];
        key.seal(3, false, AAD, &mut sealed);
        group.bench_function("open_ring", |b| {
            b.iter(|| {
                buf.clear();
                buf.extend_from_slice(&sealed);
                key.open(3, false, AAD, &mut buf).unwrap();
            })
        });
        let plain = vec![0x61; size];
        let aead = Aes256Gcm::new_from_slice(&[7u8; 32]).unwrap();
        let mut reference = EncryptorBE32::from_aead(aead, &[1u8; 7].into());
        group.bench_function("seal_rustcrypto_aead_stream", |b| {
            b.iter(|| {
                reference
                    .encrypt_next(Payload {
                        msg: &plain,
                        aad: AAD,
                    })
                    .unwrap()
            })
        });
        group.finish();
    }
}

criterion_group!(benches, chunks);
criterion_main!(benches);
