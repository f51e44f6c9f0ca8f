//! Envelope files: a payload of any size encrypted locally under a data key
//! that a transit key wraps (the answer to Vault's 32 MiB request cap).
//!
//! A file is a [`header::Header`] followed by the payload cut into chunks
//! sealed with the STREAM construction ([`stream`]); [`pipeline`] moves the
//! chunks through a fixed set of buffers, so memory stays bounded whatever
//! the size. This module does no HTTP: `transitd envelope` (src/cli) gets
//! and unwraps the data key.

pub mod header;
pub mod pipeline;
pub mod stream;

use std::io::{Read, Write};

use header::Header;
use stream::{ChunkKey, TAG_LEN};

#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    #[error("not a transitd envelope: {0}")]
    Header(String),
    #[error(
        "chunk {index} does not authenticate: the envelope was tampered with, \
         reordered, truncated or extended, or its wrapped key was replaced"
    )]
    Chunk { index: u32 },
    #[error(
        "the final chunk ({index}) does not authenticate: the envelope was truncated, \
         extended or tampered with"
    )]
    FinalChunk { index: u32 },
    #[error("more than 2^32 chunks: use a larger chunk size")]
    TooManyChunks,
    #[error("reading the input: {0}")]
    Read(std::io::Error),
    #[error("writing the output: {0}")]
    Write(std::io::Error),
}

/// What a pipeline run moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Totals {
    pub chunks: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
}

/// Seal everything `reader` yields under `key`, chunk by chunk, bound to
/// `header` (written first); the last chunk carries STREAM's final flag,
/// even when the payload is empty (one tag-only chunk).
pub fn encrypt<R, W>(
    header: &Header,
    key: &ChunkKey,
    reader: R,
    mut writer: W,
) -> Result<(W, Totals), EnvelopeError>
where
    R: Read + Send + 'static,
    W: Write + Send + 'static,
{
    writer
        .write_all(&header.encode())
        .map_err(EnvelopeError::Write)?;
    let aad = header.authenticated_bytes();
    let chunk = header.chunk_size as usize;
    pipeline::run(
        reader,
        writer,
        chunk,
        chunk + TAG_LEN,
        |index, last, buf| {
            key.seal(index, last, &aad, buf);
            Ok(())
        },
    )
}

/// Open the chunks that follow a header already read from `reader`,
/// writing each chunk's plaintext once it authenticates. Success means the
/// chunk flagged final was the last bytes of the input: nothing was cut
/// off, nothing added.
pub fn decrypt<R, W>(
    header: &Header,
    key: &ChunkKey,
    reader: R,
    writer: W,
) -> Result<(W, Totals), EnvelopeError>
where
    R: Read + Send + 'static,
    W: Write + Send + 'static,
{
    let aad = header.authenticated_bytes();
    let chunk = header.chunk_size as usize;
    pipeline::run(
        reader,
        writer,
        chunk + TAG_LEN,
        chunk,
        |index, last, buf| {
            key.open(index, last, &aad, buf).map_err(|_| {
                if last {
                    EnvelopeError::FinalChunk { index }
                } else {
                    EnvelopeError::Chunk { index }
                }
            })
        },
    )
}

#[cfg(test)]
mod tests;
