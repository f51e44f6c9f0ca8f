//! Settings transitd does not implement are refused unless they carry their
//! default value (what clients send on every call); never silently ignored.

use serde_json::json;

use crate::support::TestApp;

/// What the bao CLI sends with every `secrets enable` and `auth enable`.
fn cli_defaults(kind: &str) -> serde_json::Value {
    json!({
        "type": kind, "description": "",
        "config": {"options": null, "default_lease_ttl": "0s", "max_lease_ttl": "0s", "force_no_cache": false},
        "local": false, "seal_wrap": false, "external_entropy_access": false, "options": null,
    })
}

#[tokio::test]
async fn mount_settings_other_than_defaults_are_refused_and_change_nothing() {
    let app = TestApp::new();
    for (path, kind) in [("sys/mounts/t2", "transit"), ("sys/auth/up", "userpass")] {
        for (field, value) in [
            ("config", json!({"default_lease_ttl": "1h"})),
            ("config", json!({"max_lease_ttl": 3600})),
            ("local", json!(true)),
            ("seal_wrap", json!(true)),
            ("external_entropy_access", json!(true)),
            ("options", json!({"version": "2"})),
        ] {
            let mut body = cli_defaults(kind);
            body[field] = value.clone();
            let res = app.write(path, body).await;
            assert_eq!(res.status, 400, "{path} {field}={value}: {:?}", res.body);
            assert!(res.error().contains(field), "{}", res.error());
        }
        // Nothing was mounted by any of them; the defaults mount.
        let listing = if kind == "transit" {
            "sys/mounts"
        } else {
            "sys/auth"
        };
        let mounted = app.read(listing).await.ok();
        let key = format!("{}/", path.rsplit('/').next().unwrap());
        assert!(mounted.body["data"].get(&key).is_none(), "{key} mounted");
        app.write(path, cli_defaults(kind)).await.expect(204);
    }
}

#[tokio::test]
async fn a_local_audit_device_is_refused() {
    let app = TestApp::new();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log").display().to_string();
    let device = |local: bool| {
        json!({ "type": "file", "description": "", "local": local,
                "options": { "file_path": path } })
    };
    let res = app.write("sys/audit/f", device(true)).await;
    assert_eq!(res.status, 400, "{:?}", res.body);
    assert!(res.error().contains("local"), "{}", res.error());
    assert!(app.read("sys/audit").await.ok().data().get("f/").is_none());
    app.write("sys/audit/f", device(false)).await.expect(204);
}

#[tokio::test]
async fn unseal_migration_and_init_recovery_settings_are_refused() {
    let app = TestApp::new();
    let res = app
        .as_token(None)
        .write(
            "sys/unseal",
            json!({ "key": hex::encode([1u8; 32]), "migrate": true }),
        )
        .await;
    // No seal migration is configured: OpenBao's refusal (a 400 here; OpenBao's is a 500), even unsealed.
    assert_eq!(res.status, 400, "{:?}", res.body);
    assert_eq!(
        res.error(),
        "can't perform a seal migration, no migration seal found"
    );
    let res = app
        .as_token(None)
        .write(
            "sys/init",
            json!({ "secret_shares": 1, "secret_threshold": 1, "stored_shares": 1 }),
        )
        .await;
    assert_eq!(res.status, 400, "{:?}", res.body);
    assert!(res.error().contains("stored_shares"), "{}", res.error());
}

/// A write reads its body only (as Vault does); parameters in its query
/// string are named in the reply's warnings instead of being dropped
/// without a word.
#[tokio::test]
async fn query_parameters_of_a_write_are_reported_not_dropped() {
    let app = TestApp::new();
    let res = app
        .write("transit/keys/q1?exportable=true&type=rsa-2048", json!({}))
        .await
        .ok();
    let warnings = res.body["warnings"].to_string();
    assert!(
        warnings.contains("exportable (in the query string)")
            && warnings.contains("type (in the query string)"),
        "{warnings}"
    );
    let key = app.read("transit/keys/q1").await.ok();
    assert_eq!(key.data()["exportable"], false);
    assert_eq!(key.data()["type"], "aes256-gcm96");
}
