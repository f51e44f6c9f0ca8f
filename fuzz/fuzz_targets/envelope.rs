//! `transitd envelope`'s header and chunk parser (`transitd::envelope`), the
//! same code the command runs. Byte 0 picks the mode:
//!
//! - even: the rest is an envelope file: reading its header and opening its
//!   chunks never panics, and when it opens, the file is exactly what
//!   encrypting the plaintext again under that header gives (nothing else
//!   authenticates).
//! - odd: the rest is edits (position, kind, byte) and a plaintext; a real
//!   envelope of the plaintext (4 KiB chunks) is edited and opened: it
//!   opens only to the plaintext and only if the edits left it unchanged
//!   (but for its wrapped key), and always when they did.
#![no_main]

use std::io::Cursor;

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use transitd::envelope::header::{Header, MIN_CHUNK_SIZE};
use transitd::envelope::stream::ChunkKey;
use transitd::envelope::{decrypt, encrypt};
use zeroize::Zeroizing;

const DATA_KEY: [u8; 32] = [0x5a; 32];

fuzz_target!(|data: &[u8]| {
    let Some((mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 2 == 0 {
        parse(rest);
    } else {
        let _ = edit(Unstructured::new(rest));
    }
});

fn key(header: &Header) -> ChunkKey {
    ChunkKey::new(&Zeroizing::new(DATA_KEY), header.nonce_prefix)
}

fn open(file: &[u8]) -> Option<(Header, Vec<u8>)> {
    let mut input = Cursor::new(file.to_vec());
    let header = Header::read(&mut input).ok()?;
    let (plain, _) = decrypt(&header, &key(&header), input, Vec::new()).ok()?;
    Some((header, plain))
}

fn seal(header: &Header, plain: &[u8]) -> Vec<u8> {
    let (file, _) = encrypt(header, &key(header), Cursor::new(plain.to_vec()), Vec::new())
        .expect("encrypting into memory");
    file
}

fn parse(file: &[u8]) {
    if let Some((header, plain)) = open(file) {
        assert_eq!(seal(&header, &plain), file, "a non-canonical envelope opened");
    }
}

fn edit(mut u: Unstructured<'_>) -> Result<()> {
    let edits: Vec<(u16, u8, u8)> = (0..u.int_in_range(0..=3)?)
        .map(|_| Ok((u.arbitrary()?, u.arbitrary()?, u.arbitrary()?)))
        .collect::<Result<_>>()?;
    let plain = u.take_rest();
    let header = Header::new(MIN_CHUNK_SIZE, [1; 7], "transit", "fuzz", "vault:v1:AAAA")
        .expect("a valid header");
    let original = seal(&header, plain);
    let mut file = original.clone();
    for (at, kind, byte) in edits {
        let at = usize::from(at) % (file.len() + 1);
        match kind % 4 {
            0 if at < file.len() => file[at] ^= byte | 1,
            1 => file.truncate(at),
            2 => file.insert(at, byte),
            _ => file.extend_from_slice(&[byte; 16]),
        }
    }
    match open(&file) {
        // The wrapped key is not authenticated here (the fuzz data key is
        // fixed; in use another wrapped key unwraps to another data key):
        // an edit of it alone may open, nothing else may.
        Some((opened_header, opened)) => {
            assert_eq!(opened, plain);
            assert_eq!(
                opened_header.authenticated_bytes(),
                header.authenticated_bytes()
            );
            assert_eq!(seal(&opened_header, plain), file, "an edited envelope opened");
        }
        None => assert_ne!(file, original, "an unedited envelope failed to open"),
    }
    Ok(())
}
