//! Tests of the audit entry format: Vault's shape, known answers for the
//! hash and the timestamps (here); the formatter against the straightforward
//! one it replaced, on generated records (`equivalence`, with that formatter
//! kept in `reference`).

use std::collections::BTreeMap;

use ring::hmac;
use serde_json::{Value, json};
use time::{Date, Month, OffsetDateTime, UtcOffset};

use super::timestamp::rfc3339;
use super::*;

mod equivalence;
mod reference;

pub(super) const SALT: &[u8] = b"4a5b2b5e-6c1f-4e7e-9a2b-0f3d2c1b0a99";

/// A date-time without the `time` macros (not enabled in this crate).
pub(super) fn dt(
    ymd: (i32, u8, u8),
    hms: (u8, u8, u8),
    nanos: u32,
    offset_minutes: i16,
) -> OffsetDateTime {
    let month = Month::try_from(ymd.1).unwrap();
    let offset = UtcOffset::from_whole_seconds(i32::from(offset_minutes) * 60).unwrap();
    Date::from_calendar_date(ymd.0, month, ymd.2)
        .unwrap()
        .with_hms_nano(hms.0, hms.1, hms.2, nanos)
        .unwrap()
        .assume_offset(offset)
}

pub(super) fn h(s: &str) -> String {
    hash_value(SALT, s)
}

fn sample(kind: Kind) -> AuditRecord {
    AuditRecord {
        kind,
        time: dt((2024, 5, 6), (7, 8, 9), 123_456_700, 120),
        auth: Some(AuthInfo {
            client_token: "s.root".into(),
            accessor: "acc1".into(),
            display_name: "token".into(),
            policies: vec!["root".into()],
            token_policies: vec!["root".into()],
            metadata: BTreeMap::from([("user".to_owned(), "alice".to_owned())]),
            entity_id: String::new(),
            token_type: "service".into(),
            token_ttl: 0,
            token_issue_time: Some(dt((2024, 5, 1), (10, 0, 0), 500_000_000, 120)),
        }),
        request: RequestInfo {
            id: "6f0c3b0e-1111-2222-3333-444455556666".into(),
            operation: "update".into(),
            mount_point: "transit/".into(),
            mount_type: "transit".into(),
            mount_accessor: "transit_1234".into(),
            client_token: "s.root".into(),
            client_token_accessor: "acc1".into(),
            path: "transit/encrypt/k".into(),
            data: json!({"plaintext": "aGVsbG8=", "batch_input": [{"plaintext": "eA==", "n": 3}], "flag": true}),
            remote_address: "127.0.0.1".into(),
            remote_port: 54321,
        },
        response: Some(ResponseInfo {
            data: json!({"ciphertext": "vault:v1:abc", "key_version": 1}),
            warnings: vec!["careful".into()],
            redirect: String::new(),
        }),
        error: None,
    }
}

#[test]
fn response_entry_has_vaults_shape() {
    let out = format_record(&sample(Kind::Response), SALT, FormatOptions::default()).unwrap();
    let got: Value = serde_json::from_slice(&out).unwrap();
    let expected = json!({
        "time": "2024-05-06T05:08:09.1234567Z",
        "type": "response",
        "auth": {
            "client_token": h("s.root"),
            "accessor": h("acc1"),
            "display_name": "token",
            "policies": ["root"],
            "token_policies": ["root"],
            "metadata": {"user": "alice"},
            "token_type": "service",
            "token_issue_time": "2024-05-01T10:00:00+02:00"
        },
        "request": {
            "id": "6f0c3b0e-1111-2222-3333-444455556666",
            "operation": "update",
            "mount_point": "transit/",
            "mount_type": "transit",
            "mount_accessor": "transit_1234",
            "client_token": h("s.root"),
            "client_token_accessor": h("acc1"),
            "namespace": {"id": "root"},
            "path": "transit/encrypt/k",
            "data": {
                "plaintext": h("aGVsbG8="),
                "batch_input": [{"plaintext": h("eA=="), "n": 3}],
                "flag": true
            },
            "remote_address": "127.0.0.1",
            "remote_port": 54321
        },
        "response": {
            "mount_point": "transit/",
            "mount_type": "transit",
            "mount_accessor": "transit_1234",
            "data": {"ciphertext": h("vault:v1:abc"), "key_version": 1},
            "warnings": ["careful"]
        }
    });
    assert_eq!(got, expected);
    // Top-level members in Vault's order.
    let text = String::from_utf8(out).unwrap();
    let pos = |k: &str| text.find(&format!("\"{k}\":")).unwrap();
    assert!(pos("time") < pos("type") && pos("type") < pos("auth"));
    assert!(pos("auth") < pos("request") && pos("request") < pos("response"));
}

#[test]
fn request_entry_omits_response_and_writes_error() {
    let mut rec = sample(Kind::Request);
    rec.auth = None;
    rec.request.data = Value::Null;
    rec.request.remote_port = 0;
    rec.error = Some("permission denied".into());
    rec.time = dt((2024, 5, 6), (7, 8, 9), 0, 0);
    let got: Value =
        serde_json::from_slice(&format_record(&rec, SALT, FormatOptions::default()).unwrap())
            .unwrap();
    let expected = json!({
        "time": "2024-05-06T07:08:09Z",
        "type": "request",
        "auth": {"token_type": "default"},
        "request": {
            "id": "6f0c3b0e-1111-2222-3333-444455556666",
            "operation": "update",
            "mount_point": "transit/",
            "mount_type": "transit",
            "mount_accessor": "transit_1234",
            "client_token": h("s.root"),
            "client_token_accessor": h("acc1"),
            "namespace": {"id": "root"},
            "path": "transit/encrypt/k",
            "remote_address": "127.0.0.1"
        },
        "error": "permission denied"
    });
    assert_eq!(got, expected);
}

#[test]
fn nested_strings_and_timestamps_hashed_numbers_bools_keys_kept() {
    let mut rec = sample(Kind::Request);
    rec.request.data = json!({
        "a": {"b": ["x", {"c": "y"}, 1.5, null, false]},
        "when": "2024-01-02T03:04:05.123Z",
        "not_time": "2024-13-02T03:04:05Z"
    });
    let got: Value =
        serde_json::from_slice(&format_record(&rec, SALT, FormatOptions::default()).unwrap())
            .unwrap();
    assert_eq!(
        got["request"]["data"],
        json!({
            "a": {"b": [h("x"), {"c": h("y")}, 1.5, null, false]},
            "when": h("2024-01-02T03:04:05.123Z"),
            "not_time": h("2024-13-02T03:04:05Z")
        })
    );
}

#[test]
fn accessor_in_clear_when_hmac_accessor_false_and_all_clear_when_raw() {
    let opts = FormatOptions {
        hmac_accessor: false,
        log_raw: false,
    };
    let got: Value =
        serde_json::from_slice(&format_record(&sample(Kind::Request), SALT, opts).unwrap())
            .unwrap();
    assert_eq!(got["auth"]["accessor"], "acc1");
    assert_eq!(got["request"]["client_token_accessor"], "acc1");
    assert_eq!(got["auth"]["client_token"], h("s.root"));

    let raw = FormatOptions {
        hmac_accessor: true,
        log_raw: true,
    };
    let got: Value =
        serde_json::from_slice(&format_record(&sample(Kind::Request), SALT, raw).unwrap()).unwrap();
    assert_eq!(got["auth"]["client_token"], "s.root");
    assert_eq!(got["request"]["data"]["plaintext"], "aGVsbG8=");
}

#[test]
fn hash_value_known_answers() {
    // RFC 4231 test case 2 (key "Jefe").
    assert_eq!(
        hash_value(b"Jefe", "what do ya want for nothing?"),
        "hmac-sha256:5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
    // Test cases 6 and 7: a key longer than a block is hashed first.
    let long_key = [0xaa_u8; 131];
    assert_eq!(
        hash_value(
            &long_key,
            "Test Using Larger Than Block-Size Key - Hash Key First"
        ),
        "hmac-sha256:60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
    );
    assert_eq!(
        hash_value(
            &long_key,
            "This is a test using a larger than block-size key and a larger than block-size \
             data. The key needs to be hashed before being used by the HMAC algorithm."
        ),
        "hmac-sha256:9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"
    );
    // Cross-check against ring directly, with a Vault-style UUID salt.
    let key = hmac::Key::new(hmac::HMAC_SHA256, SALT);
    let tag = hmac::sign(&key, b"s.root");
    assert_eq!(
        h("s.root"),
        format!("hmac-sha256:{}", hex::encode(tag.as_ref()))
    );
}

#[test]
fn time_formats_match_go() {
    assert_eq!(
        rfc3339_nano(dt((2024, 1, 2), (3, 4, 5), 0, 0)),
        "2024-01-02T03:04:05Z"
    );
    assert_eq!(
        rfc3339_nano(dt((2024, 1, 2), (3, 4, 5), 120_000_000, -60)),
        "2024-01-02T04:04:05.12Z"
    );
    assert_eq!(
        rfc3339(dt((2024, 1, 2), (3, 4, 5), 900_000_000, -330)),
        "2024-01-02T03:04:05-05:30"
    );
}

/// Elided request data is written as `data_elided` where `data` would be,
/// in both entries of a pair, its HMAC computed once per request and
/// written even by a `log_raw` device (the data was left out to bound the
/// log, not to hide it).
#[test]
fn elided_data_is_its_size_count_and_hmac_in_both_entries() {
    let mut record = sample(Kind::Response);
    record.request.data = Value::Null;
    let elided = ElidedData {
        json: br#"{"padding":["",""]}"#.to_vec(),
        strings: 2,
    };
    let response = Entry {
        elided: Some(&elided),
        ..record.entry()
    };
    let request = Entry {
        kind: Kind::Request,
        response: None,
        ..response
    };
    let expected = json!({
        "bytes": 19,
        "hmac": h(r#"{"padding":["",""]}"#),
        "strings": 2,
    });
    for log_raw in [false, true] {
        let options = FormatOptions {
            hmac_accessor: true,
            log_raw,
        };
        let formatter = Formatter::new(SaltKey::new(SALT), options);
        let mut memo = TokenMemo::default();
        let lines = formatter
            .format_all(&[&request, &response], &mut memo)
            .unwrap();
        for line in &lines {
            let got: Value = serde_json::from_slice(line).unwrap();
            assert_eq!(got["request"]["data_elided"], expected, "{got}");
            assert!(got["request"].get("data").is_none(), "{got}");
        }
        let text = String::from_utf8(lines[0].clone()).unwrap();
        assert!(
            text.contains(r#""path":"transit/encrypt/k","data_elided":{"bytes":19,"#),
            "{text}"
        );
    }
}

/// A wrapped reply's `wrap_info`: its token always hashed, its accessors as
/// the options say, the rest in clear.
#[test]
fn wrap_info_hashes_the_wrapping_token_and_accessors() {
    let rec = sample(Kind::Response);
    let info = json!({
        "token": "s.wrapping",
        "accessor": "wacc",
        "ttl": 60,
        "creation_time": "2026-01-01T00:00:00Z",
        "creation_path": "auth/approle/role/ci/secret-id",
        "wrapped_accessor": "inner",
    });
    let format = |options: FormatOptions| -> Value {
        let mut entry = rec.entry();
        if let Some(response) = entry.response.as_mut() {
            response.wrap_info = Some(&info);
        }
        let formatter = Formatter::new(SaltKey::new(SALT), options);
        let out = formatter.format(&entry, &mut TokenMemo::default()).unwrap();
        serde_json::from_slice::<Value>(&out).unwrap()["response"]["wrap_info"].clone()
    };
    assert_eq!(
        format(FormatOptions::default()),
        json!({
            "token": h("s.wrapping"),
            "accessor": h("wacc"),
            "ttl": 60,
            "creation_time": "2026-01-01T00:00:00Z",
            "creation_path": "auth/approle/role/ci/secret-id",
            "wrapped_accessor": h("inner"),
        })
    );
    let clear_accessors = format(FormatOptions {
        hmac_accessor: false,
        ..FormatOptions::default()
    });
    assert_eq!(clear_accessors["token"], json!(h("s.wrapping")));
    assert_eq!(clear_accessors["accessor"], "wacc");
    assert_eq!(clear_accessors["wrapped_accessor"], "inner");
    // A reply that was not wrapped has no member.
    let plain: Value =
        serde_json::from_slice(&format_record(&rec, SALT, FormatOptions::default()).unwrap())
            .unwrap();
    assert!(plain["response"].get("wrap_info").is_none());
}
