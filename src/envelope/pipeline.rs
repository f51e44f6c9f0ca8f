//! Read, transform and write chunks on three threads over a fixed pool of
//! buffers: memory is `BUFFERS` chunks whatever the stream's length, and
//! reading, AES-GCM and writing overlap.

use std::io::{ErrorKind, Read, Write};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread;

use super::{EnvelopeError, Totals};

/// Chunks in flight: the reader holds two (it looks one chunk ahead to
/// know which one is last), the transform one, the writer one.
const BUFFERS: usize = 4;

/// Fill `buf` with up to `len` bytes; fewer only at the end of the input.
fn fill(reader: &mut impl Read, buf: &mut Vec<u8>, len: usize) -> std::io::Result<()> {
    // Only the bytes past the buffer's current length get zeroed: a
    // recycled buffer is overwritten by the reads, not cleared first.
    buf.resize(len, 0);
    let mut got = 0;
    while got < len {
        match reader.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(got);
    Ok(())
}

/// Cut `reader` into pieces of `read_len` bytes (the last one shorter, or
/// empty when the input is), pass each with its index and whether it is
/// the last one through `transform`, and write the results in order.
/// Returns the writer, flushed, once the last piece is written; on any
/// error nothing after the failing piece is written.
pub fn run<R, W, F>(
    reader: R,
    writer: W,
    read_len: usize,
    out_len: usize,
    mut transform: F,
) -> Result<(W, Totals), EnvelopeError>
where
    R: Read + Send + 'static,
    W: Write + Send + 'static,
    F: FnMut(u32, bool, &mut Vec<u8>) -> Result<(), EnvelopeError>,
{
    let capacity = read_len.max(out_len);
    let (free_tx, free_rx) = sync_channel::<Vec<u8>>(BUFFERS);
    for _ in 0..BUFFERS {
        let _ = free_tx.send(Vec::with_capacity(capacity));
    }
    let (filled_tx, filled_rx) = sync_channel::<(Vec<u8>, bool)>(BUFFERS);
    let (done_tx, done_rx) = sync_channel::<Vec<u8>>(BUFFERS);
    // Not joined on failure: a reader blocked on a pipe that never closes
    // must not hold up the error exit. It stops at its next send.
    let reader_thread = thread::spawn(move || read_pieces(reader, read_len, &free_rx, &filled_tx));
    let writer_thread = thread::spawn(move || write_pieces(writer, &done_rx, &free_tx));

    let mut totals = Totals {
        chunks: 0,
        bytes_in: 0,
        bytes_out: 0,
    };
    let mut outcome = Ok(());
    for (mut buf, last) in filled_rx.iter() {
        let index = match u32::try_from(totals.chunks) {
            // STREAM keeps the counter's top value for nothing but a final chunk.
            Ok(i) if i < u32::MAX || last => i,
            _ => {
                outcome = Err(EnvelopeError::TooManyChunks);
                break;
            }
        };
        totals.bytes_in += buf.len() as u64;
        if let Err(e) = transform(index, last, &mut buf) {
            outcome = Err(e);
            break;
        }
        totals.chunks += 1;
        totals.bytes_out += buf.len() as u64;
        if done_tx.send(buf).is_err() {
            break; // the writer failed: its error is reported below
        }
    }
    drop(filled_rx);
    drop(done_tx);
    let written = writer_thread.join().unwrap_or_else(|_| {
        Err(EnvelopeError::Write(std::io::Error::other(
            "writer panicked",
        )))
    });
    outcome?;
    let writer = written?;
    match reader_thread.join() {
        Ok(Ok(())) => Ok((writer, totals)),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(EnvelopeError::Read(std::io::Error::other(
            "reader panicked",
        ))),
    }
}

fn read_pieces<R: Read>(
    mut reader: R,
    read_len: usize,
    free: &Receiver<Vec<u8>>,
    filled: &SyncSender<(Vec<u8>, bool)>,
) -> Result<(), EnvelopeError> {
    // A closed channel means the consumer stopped on an error of its own.
    let Ok(mut current) = free.recv() else {
        return Ok(());
    };
    fill(&mut reader, &mut current, read_len).map_err(EnvelopeError::Read)?;
    loop {
        if current.len() < read_len {
            let _ = filled.send((current, true));
            return Ok(());
        }
        let Ok(mut next) = free.recv() else {
            return Ok(());
        };
        fill(&mut reader, &mut next, read_len).map_err(EnvelopeError::Read)?;
        if next.is_empty() {
            let _ = filled.send((current, true));
            return Ok(());
        }
        if filled.send((current, false)).is_err() {
            return Ok(());
        }
        current = next;
    }
}

fn write_pieces<W: Write>(
    mut writer: W,
    done: &Receiver<Vec<u8>>,
    free: &SyncSender<Vec<u8>>,
) -> Result<W, EnvelopeError> {
    for buf in done.iter() {
        writer.write_all(&buf).map_err(EnvelopeError::Write)?;
        let _ = free.send(buf);
    }
    writer.flush().map_err(EnvelopeError::Write)?;
    Ok(writer)
}
