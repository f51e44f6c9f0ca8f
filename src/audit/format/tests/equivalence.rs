//! The formatter against the straightforward one it replaced
//! ([`super::reference`]), and its hand-written hex and timestamps against
//! `hex::encode` and `format!`, on records and values from a small
//! deterministic generator.

use serde_json::{Value, json};
use time::{OffsetDateTime, UtcOffset};

use super::{SALT, dt, h, reference};
use crate::audit::format::timestamp::rfc3339;
use crate::audit::format::*;

/// A small deterministic generator (no dependency on a seeded RNG).
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        // SplitMix64.
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn text(&mut self) -> String {
        const PIECES: &[&str] = &[
            "",
            "",
            "a",
            "s.root",
            "hvs.CAESIJ",
            "vault:v1:abc+/=",
            "ü€😀",
            "\"quoted\"",
            "back\\slash",
            "line\nbreak\ttab",
            "\u{1}",
            "2024-01-02T03:04:05Z",
            "<&>",
        ];
        let n = self.below(3);
        (0..n)
            .map(|_| PIECES[self.below(PIECES.len() as u64) as usize])
            .collect()
    }

    fn value(&mut self, depth: u32) -> Value {
        let pick = if depth == 0 {
            self.below(5)
        } else {
            self.below(7)
        };
        match pick {
            0 => Value::Null,
            1 => Value::Bool(self.below(2) == 1),
            2 => match self.below(3) {
                0 => serde_json::json!(self.next() as i64),
                1 => serde_json::json!(self.below(1000)),
                _ => serde_json::json!((self.below(1_000_000) as f64) / 7.0),
            },
            3 | 4 => Value::String(self.text()),
            5 => Value::Array((0..self.below(4)).map(|_| self.value(depth - 1)).collect()),
            _ => Value::Object(
                (0..self.below(5))
                    .map(|i| (format!("{}{i}", self.text()), self.value(depth - 1)))
                    .collect(),
            ),
        }
    }

    fn data(&mut self) -> Value {
        match self.below(6) {
            0 => Value::Null,
            1 => serde_json::json!({}),
            // A batch, as transit's batch endpoints answer it.
            2 => serde_json::json!({
                "batch_results": (0..self.below(40)).map(|i| serde_json::json!({
                    "ciphertext": format!("vault:v1:{i}"),
                    "key_version": 1,
                    "reference": "",
                })).collect::<Vec<_>>()
            }),
            3 => Value::String(self.text()),
            _ => self.value(3),
        }
    }

    fn time(&mut self) -> OffsetDateTime {
        let secs = i64::try_from(self.below(4_000_000_000)).unwrap();
        let nanos = match self.below(4) {
            0 => 0,
            1 => 500_000_000,
            2 => 1_000,
            _ => u32::try_from(self.below(1_000_000_000)).unwrap(),
        };
        let offset = UtcOffset::from_whole_seconds(
            i32::try_from(self.below(26 * 3600 * 2)).unwrap() - 26 * 3600 + 1,
        )
        .unwrap();
        (OffsetDateTime::UNIX_EPOCH + time::Duration::new(secs, 0))
            .replace_nanosecond(nanos)
            .unwrap()
            .to_offset(offset)
    }

    fn record(&mut self) -> AuditRecord {
        let token = ["", "s.root", "hvs.token-a", "hvs.token-b"][self.below(4) as usize];
        let accessor = ["", "acc-1", "acc-2"][self.below(3) as usize];
        let auth = (self.below(4) != 0).then(|| AuthInfo {
            client_token: token.to_owned(),
            accessor: accessor.to_owned(),
            display_name: self.text(),
            policies: (0..self.below(3)).map(|_| self.text()).collect(),
            token_policies: (0..self.below(3)).map(|_| self.text()).collect(),
            metadata: (0..self.below(3))
                .map(|_| (self.text(), self.text()))
                .collect(),
            entity_id: self.text(),
            token_type: ["", "service", "batch"][self.below(3) as usize].to_owned(),
            token_ttl: [0, 1, -5, 3600][self.below(4) as usize],
            token_issue_time: (self.below(2) == 1).then(|| self.time()),
        });
        let kind = if self.below(2) == 0 {
            Kind::Request
        } else {
            Kind::Response
        };
        AuditRecord {
            kind,
            time: self.time(),
            auth,
            request: RequestInfo {
                id: self.text(),
                operation: ["", "update", "read"][self.below(3) as usize].to_owned(),
                mount_point: self.text(),
                mount_type: self.text(),
                mount_accessor: self.text(),
                client_token: token.to_owned(),
                client_token_accessor: accessor.to_owned(),
                path: self.text(),
                data: self.data(),
                remote_address: self.text(),
                remote_port: [0, 1, 65535][self.below(3) as usize],
            },
            response: (self.below(3) != 0).then(|| ResponseInfo {
                data: self.data(),
                warnings: (0..self.below(3)).map(|_| self.text()).collect(),
                redirect: self.text(),
            }),
            error: (self.below(3) == 0).then(|| self.text()),
        }
    }
}

const ALL_OPTIONS: [FormatOptions; 4] = [
    FormatOptions {
        hmac_accessor: true,
        log_raw: false,
    },
    FormatOptions {
        hmac_accessor: false,
        log_raw: false,
    },
    FormatOptions {
        hmac_accessor: true,
        log_raw: true,
    },
    FormatOptions {
        hmac_accessor: false,
        log_raw: true,
    },
];

/// The formatter writes exactly what the straightforward one wrote, with
/// one token memo shared by consecutive entries (as a request's entries
/// share it) and across different tokens.
#[test]
fn same_bytes_as_the_reference_formatter() {
    let mut g = Gen(7);
    for options in ALL_OPTIONS {
        let formatter = Formatter::new(SaltKey::new(SALT), options);
        let mut memo = TokenMemo::default();
        for i in 0..400 {
            if i % 5 == 0 {
                memo = TokenMemo::default();
            }
            let rec = g.record();
            let expected = reference::format_record(&rec, SALT, options);
            let got = formatter.format(&rec.entry(), &mut memo).unwrap();
            assert_eq!(
                String::from_utf8(got).unwrap(),
                String::from_utf8(expected).unwrap(),
                "{options:?}"
            );
            assert_eq!(
                format_record(&rec, SALT, options).unwrap(),
                reference::format_record(&rec, SALT, options)
            );
        }
    }
}

/// Request data handed over as a shared map (`Entry::request_data`, as the
/// request path hands a request's parameters over) is written byte for byte
/// as the same data inside the record.
#[test]
fn shared_request_data_is_the_same_bytes() {
    let mut g = Gen(29);
    for options in ALL_OPTIONS {
        let formatter = Formatter::new(SaltKey::new(SALT), options);
        let mut shared = 0;
        for _ in 0..300 {
            let mut rec = g.record();
            let Value::Object(map) = std::mem::take(&mut rec.request.data) else {
                continue;
            };
            shared += 1;
            let mut inline = rec.clone();
            inline.request.data = Value::Object(map.clone());
            let expected = reference::format_record(&inline, SALT, options);
            let entry = Entry {
                request_data: Some(&map),
                ..rec.entry()
            };
            let got = formatter.format(&entry, &mut TokenMemo::default()).unwrap();
            assert_eq!(
                String::from_utf8(got).unwrap(),
                String::from_utf8(expected).unwrap(),
                "{options:?}"
            );
        }
        assert!(shared > 50, "only {shared} records had object data");
    }
}

/// A request entry and its response entry formatted together (their
/// `auth` and `request` blocks written once) are byte for byte what the
/// reference formatter writes for each; entries that share nothing are
/// formatted on their own.
#[test]
fn a_request_and_its_response_together_are_the_same_bytes() {
    let mut g = Gen(13);
    for options in ALL_OPTIONS {
        let formatter = Formatter::new(SaltKey::new(SALT), options);
        for _ in 0..100 {
            let mut response = g.record();
            response.kind = Kind::Response;
            let mut request = response.clone();
            request.kind = Kind::Request;
            request.response = None;
            let other = g.record();
            let expected: Vec<Vec<u8>> = [&request, &response, &other]
                .iter()
                .map(|r| reference::format_record(r, SALT, options))
                .collect();
            // The pair shares `response`'s auth and request objects.
            let (req_entry, resp_entry) = (response.entry(), response.entry());
            let req_entry = Entry {
                kind: Kind::Request,
                response: None,
                ..req_entry
            };
            let mut memo = TokenMemo::default();
            let mut got = formatter
                .format_all(&[&req_entry, &resp_entry], &mut memo)
                .unwrap();
            got.extend(formatter.format_all(&[&other.entry()], &mut memo).unwrap());
            assert_eq!(got, expected, "{options:?}");
            // Two entries that share nothing are formatted alone.
            let apart = formatter
                .format_all(&[&other.entry(), &resp_entry], &mut memo)
                .unwrap();
            assert_eq!(
                apart,
                [expected[2].clone(), expected[1].clone()],
                "{options:?}"
            );
        }
    }
}

/// Response data that is not an object is written as `{"value": ..}`,
/// as the request path used to build it.
#[test]
fn wrapped_data_matches_a_value_map() {
    let mut g = Gen(11);
    let formatter = Formatter::new(SaltKey::new(SALT), FormatOptions::default());
    for _ in 0..200 {
        let mut rec = g.record();
        rec.kind = Kind::Response;
        let inner = g.value(2);
        rec.response = Some(ResponseInfo {
            data: json!({ "value": inner.clone() }),
            warnings: vec![],
            redirect: String::new(),
        });
        let expected = reference::format_record(&rec, SALT, FormatOptions::default());
        let mut entry = rec.entry();
        entry.response = Some(ResponseView {
            data: Data::Wrapped(&inner),
            warnings: &[],
            redirect: "",
            wrap_info: None,
        });
        let got = formatter.format(&entry, &mut TokenMemo::default()).unwrap();
        assert_eq!(got, expected);
    }
}

/// A memo filled under one salt must not be reused under another; the
/// memo is per device, and the hashes it returns are the salt's own.
#[test]
fn memo_hashes_each_token_once_and_correctly() {
    let key = SaltKey::new(SALT);
    let mut memo = TokenMemo::default();
    for t in ["s.root", "acc1", "s.root", "", "acc1", "other"] {
        assert_eq!(memo.get(&key, t).as_str(), h(t));
    }
    assert_eq!(memo.entries.len(), 4);
}

#[test]
fn hex_encoder_equals_hex_encode() {
    let mut g = Gen(3);
    let all: Vec<u8> = (0..=255).collect();
    let mut out = vec![0u8; all.len() * 2];
    hex_encode_into(&all, &mut out);
    assert_eq!(String::from_utf8(out).unwrap(), hex::encode(&all));
    for len in 0..70 {
        let bytes: Vec<u8> = (0..len).map(|_| g.below(256) as u8).collect();
        let mut out = vec![0u8; len * 2];
        hex_encode_into(&bytes, &mut out);
        assert_eq!(String::from_utf8(out).unwrap(), hex::encode(&bytes));
    }
}

#[test]
fn timestamps_equal_the_format_versions() {
    let mut g = Gen(5);
    let mut times: Vec<OffsetDateTime> = (0..5000).map(|_| g.time()).collect();
    times.push(dt((1, 1, 1), (0, 0, 0), 1, 0));
    times.push(dt((9999, 12, 31), (23, 59, 59), 999_999_999, 59));
    times.push(dt((-5, 3, 1), (1, 2, 3), 10, -90));
    for t in times {
        assert_eq!(rfc3339_nano(t), reference::rfc3339_nano(t), "{t:?}");
        assert_eq!(rfc3339(t), reference::rfc3339(t), "{t:?}");
    }
}
