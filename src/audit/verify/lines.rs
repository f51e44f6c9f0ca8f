//! The checker's reader: `\n`-terminated lines with their numbers (an
//! incomplete last line is told apart), and a scan ahead over the entry
//! lines' `seq` to tell a removed line from reordered or edited ones.

use std::io::{self, BufRead, BufReader};

use crate::audit::chain::Fields;

/// Reads `\n`-terminated lines, counting them.
pub(super) struct Lines<R> {
    reader: BufReader<R>,
    pub(super) number: u64,
}

/// One line: its number, bytes without `\n`, and whether it had a `\n`.
pub(super) struct Line {
    pub(super) number: u64,
    pub(super) bytes: Vec<u8>,
    pub(super) complete: bool,
}

impl<R: io::Read> Lines<R> {
    pub(super) fn new(inner: R) -> Self {
        Self {
            reader: BufReader::with_capacity(256 * 1024, inner),
            number: 0,
        }
    }

    pub(super) fn next_line(&mut self) -> io::Result<Option<Line>> {
        let mut bytes = Vec::new();
        if self.reader.read_until(b'\n', &mut bytes)? == 0 {
            return Ok(None);
        }
        self.number += 1;
        let complete = bytes.last() == Some(&b'\n');
        if complete {
            bytes.pop();
        }
        Ok(Some(Line {
            number: self.number,
            bytes,
            complete,
        }))
    }

    /// The remaining entry lines as (line number, seq), skipping anything
    /// that is not a chained entry.
    pub(super) fn entry_seqs(&mut self) -> impl Iterator<Item = (u64, u64, Vec<u8>)> + '_ {
        std::iter::from_fn(move || {
            loop {
                let line = self.next_line().ok()??;
                let Some(fields) = Fields::parse(&line.bytes) else {
                    continue;
                };
                if fields.is_checkpoint() || fields.is_header() {
                    continue;
                }
                if let Some(seq) = fields.seq {
                    return Some((line.number, seq, line.bytes));
                }
            }
        })
    }
}
