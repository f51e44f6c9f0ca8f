//! Go's `time.RFC3339Nano` and `time.RFC3339` texts of a date-time, as
//! Vault's entries carry them (an entry's time, a token's issue time; the
//! header and checkpoint lines use the same text), written by hand into a
//! stack buffer instead of going through `format!`.

use serde::Serialize;
use serde::ser::Serializer;
use time::{OffsetDateTime, UtcOffset};

/// A formatted date-time, on the stack.
#[derive(Clone, Copy)]
pub(crate) struct TimeText {
    buf: [u8; 48],
    len: usize,
}

impl TimeText {
    fn new() -> Self {
        Self {
            buf: [0; 48],
            len: 0,
        }
    }

    pub(crate) fn as_str(&self) -> &str {
        // Only ASCII is ever pushed.
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or_default()
    }

    fn push(&mut self, b: u8) {
        if let Some(slot) = self.buf.get_mut(self.len) {
            *slot = b;
            self.len += 1;
        }
    }

    fn push_str(&mut self, s: &str) {
        for &b in s.as_bytes() {
            self.push(b);
        }
    }

    fn push2(&mut self, v: u8) {
        self.push(b'0' + v / 10 % 10);
        self.push(b'0' + v % 10);
    }

    /// `YYYY-MM-DDTHH:MM:SS`, as `format!("{:04}-{:02}..")` writes it.
    fn date_time(t: OffsetDateTime) -> Self {
        let mut out = Self::new();
        let year = t.year();
        if (0..=9999).contains(&year) {
            // `year` fits in 0..=9999: every digit is a u8.
            let y = year.unsigned_abs();
            for d in [y / 1000, y / 100 % 10, y / 10 % 10, y % 10] {
                out.push(b'0' + u8::try_from(d).unwrap_or(0));
            }
        } else {
            out.push_str(&format!("{year:04}"));
        }
        out.push(b'-');
        out.push2(u8::from(t.month()));
        out.push(b'-');
        out.push2(t.day());
        out.push(b'T');
        out.push2(t.hour());
        out.push(b':');
        out.push2(t.minute());
        out.push(b':');
        out.push2(t.second());
        out
    }
}

impl Serialize for TimeText {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Go's `time.RFC3339Nano` of the instant in UTC: fraction without trailing
/// zeros, none at all on a whole second, `Z` suffix.
pub(crate) fn rfc3339_nano(t: OffsetDateTime) -> String {
    rfc3339_nano_text(t).as_str().to_owned()
}

pub(crate) fn rfc3339_nano_text(t: OffsetDateTime) -> TimeText {
    let t = t.to_offset(UtcOffset::UTC);
    let mut out = TimeText::date_time(t);
    let mut nanos = t.nanosecond();
    if nanos != 0 {
        let mut digits = [0u8; 9];
        for d in digits.iter_mut().rev() {
            *d = b'0' + u8::try_from(nanos % 10).unwrap_or(0);
            nanos /= 10;
        }
        let keep = digits.iter().rposition(|&d| d != b'0').map_or(0, |i| i + 1);
        out.push(b'.');
        for &d in &digits[..keep] {
            out.push(d);
        }
    }
    out.push(b'Z');
    out
}

/// Go's `time.RFC3339` (whole seconds) in the value's own offset.
#[cfg(test)]
pub(crate) fn rfc3339(t: OffsetDateTime) -> String {
    rfc3339_text(t).as_str().to_owned()
}

pub(super) fn rfc3339_text(t: OffsetDateTime) -> TimeText {
    let mut out = TimeText::date_time(t);
    let offset = t.offset().whole_minutes();
    if offset == 0 {
        out.push(b'Z');
    } else {
        out.push(if offset < 0 { b'-' } else { b'+' });
        let abs = offset.unsigned_abs();
        // |offset| < 26 hours.
        out.push2(u8::try_from(abs / 60).unwrap_or(99));
        out.push(b':');
        out.push2(u8::try_from(abs % 60).unwrap_or(99));
    }
    out
}
