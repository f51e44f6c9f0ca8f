//! `sys/health` carries every field of OpenBao 2.7.2's reply (compared with a
//! live OpenBao, key by key) and the fields Vault adds that Vault's clients
//! read (vaultrs fails without `performance_standby`).

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::{Value, json};
use transitd_test_support::DevServer;

use crate::node::BIN;

/// What Vault's reply has beyond OpenBao's, with transitd's values.
fn vault_only() -> Vec<(&'static str, Value)> {
    vec![
        ("performance_standby", json!(false)),
        ("enterprise", json!(false)),
        ("echo_duration_ms", json!(0)),
        ("clock_skew_ms", json!(0)),
        ("replication_primary_canary_age_ms", json!(0)),
    ]
}

fn keys(body: &Value) -> BTreeSet<String> {
    body.as_object()
        .unwrap_or_else(|| panic!("not an object: {body}"))
        .keys()
        .cloned()
        .collect()
}

#[test]
fn health_has_every_field_of_openbao_and_vaults_extras() {
    let openbao = DevServer::openbao();
    let transitd = DevServer::start("transitd", Path::new(BIN), &[]);
    let theirs = openbao
        .client()
        .read("sys/health")
        .unwrap()
        .expect(200)
        .body;
    let ours = transitd
        .client()
        .read("sys/health")
        .unwrap()
        .expect(200)
        .body;
    let extras = vault_only();
    let mut expected = keys(&theirs);
    expected.extend(extras.iter().map(|(k, _)| (*k).to_owned()));
    assert_eq!(keys(&ours), expected, "ours: {ours}\nOpenBao: {theirs}");
    for (key, value) in &extras {
        assert_eq!(&ours[*key], value, "{key}");
    }
    for same in [
        "initialized",
        "sealed",
        "standby",
        "replication_performance_mode",
        "replication_dr_mode",
        "version",
    ] {
        assert_eq!(ours[same], theirs[same], "{same}");
    }
}

/// A 1xx asked for is no final status: answered 200, as OpenBao's server
/// ends up answering (an interim 100, then 200); it was a 500 (found by
/// schemathesis). Other codes are answered as asked.
#[test]
fn health_answers_an_informational_code_with_200() {
    let transitd = DevServer::start("transitd", Path::new(BIN), &[]);
    let client = transitd.client();
    for (code, expected) in [(100, 200), (199, 200), (299, 299), (0, 200)] {
        let reply = client
            .read(&format!("sys/health?activecode={code}"))
            .unwrap();
        assert_eq!(reply.status, expected, "activecode={code}: {}", reply.body);
        assert_eq!(reply.body["initialized"], json!(true), "activecode={code}");
    }
}
