//! The key lifecycle beyond create/rotate/delete: soft delete (OpenBao 2.x).
//! Statuses and messages are OpenBao 2.7.2's, asked of the binary, except
//! that what it answers 500 (rotate, sign, export, backup of a soft-deleted
//! key) is a 400 here: the caller's request, not the server, is at fault.

use serde_json::json;

use crate::support::TestApp;

const REFUSED: &str = "refusing to use soft-deleted key";

#[tokio::test]
async fn a_soft_deleted_key_serves_nothing_until_restored() {
    let app = TestApp::new();
    app.write(
        "transit/keys/k",
        json!({ "exportable": true, "allow_plaintext_backup": true }),
    )
    .await
    .expect(200);
    app.write("transit/keys/ed", json!({ "type": "ed25519" }))
        .await
        .expect(200);
    let ct = app
        .write("transit/encrypt/k", json!({ "plaintext": "aGk=" }))
        .await
        .ok()
        .data()["ciphertext"]
        .clone();
    let sig = app
        .write("transit/sign/ed", json!({ "input": "aGk=" }))
        .await
        .ok()
        .data()["signature"]
        .clone();

    // Only DELETE soft-deletes; only an update restores.
    assert_eq!(
        app.write("transit/keys/k/soft-delete", json!({}))
            .await
            .status,
        405
    );
    let deleted = app
        .call("DELETE", "transit/keys/k/soft-delete", json!(null))
        .await
        .ok();
    assert_eq!(deleted.data()["soft_deleted"], true);
    assert!(deleted.body["warnings"].is_null(), "{:?}", deleted.body);
    let again = app
        .call("DELETE", "transit/keys/k/soft-delete", json!(null))
        .await
        .ok();
    assert_eq!(
        again.body["warnings"],
        json!(["key was already marked as soft deleted"])
    );
    app.call("DELETE", "transit/keys/ed/soft-delete", json!(null))
        .await
        .ok();

    for (path, body) in [
        ("transit/encrypt/k", json!({ "plaintext": "aGk=" })),
        ("transit/decrypt/k", json!({ "ciphertext": ct })),
        ("transit/rewrap/k", json!({ "ciphertext": ct })),
        ("transit/datakey/plaintext/k", json!({})),
        ("transit/hmac/k", json!({ "input": "aGk=" })),
        ("transit/keys/k/rotate", json!({})),
        ("transit/sign/ed", json!({ "input": "aGk=" })),
        (
            "transit/verify/ed",
            json!({ "input": "aGk=", "signature": sig }),
        ),
    ] {
        let res = app.write(path, body).await;
        assert_eq!(
            (res.status, res.error()),
            (400, REFUSED.to_owned()),
            "{path}"
        );
    }
    for path in [
        "transit/backup/k",
        "transit/export/encryption-key/k",
        "transit/export/public-key/ed",
    ] {
        let res = app.read(path).await;
        assert_eq!(
            (res.status, res.error()),
            (400, REFUSED.to_owned()),
            "{path}"
        );
    }
    // A batch fails item by item.
    let batch = app
        .write(
            "transit/encrypt/k",
            json!({ "batch_input": [{ "plaintext": "aGk=" }] }),
        )
        .await;
    assert_eq!(batch.status, 400);
    assert_eq!(batch.data()["batch_results"][0]["error"], REFUSED);
    // Still readable, listed and configurable; "creating" it answers it as it is.
    assert_eq!(
        app.read("transit/keys/k").await.ok().data()["soft_deleted"],
        true
    );
    let list = app.call("LIST", "transit/keys", json!(null)).await.ok();
    assert_eq!(list.data()["keys"], json!(["ed", "k"]));
    let configured = app
        .write("transit/keys/k/config", json!({ "deletion_allowed": true }))
        .await
        .ok();
    assert_eq!(configured.data()["soft_deleted"], true);
    assert_eq!(
        app.write("transit/keys/k", json!({})).await.ok().data()["soft_deleted"],
        true
    );

    // A forced restore over it would put it back in service: refused.
    let backup = {
        app.write("transit/keys/k/soft-delete-restore", json!({}))
            .await
            .ok();
        let b = app.read("transit/backup/k").await.ok().data()["backup"].clone();
        app.call("DELETE", "transit/keys/k/soft-delete", json!(null))
            .await
            .ok();
        b
    };
    let res = app
        .write(
            "transit/restore/k",
            json!({ "backup": backup, "force": true }),
        )
        .await;
    assert_eq!((res.status, res.error()), (400, REFUSED.to_owned()));
    assert_eq!(
        app.read("transit/keys/k").await.ok().data()["soft_deleted"],
        true
    );

    // Restored: everything works again, with the same material.
    assert_eq!(
        app.call("DELETE", "transit/keys/k/soft-delete-restore", json!(null))
            .await
            .status,
        405
    );
    let restored = app
        .write("transit/keys/k/soft-delete-restore", json!({}))
        .await
        .ok();
    assert_eq!(restored.data()["soft_deleted"], false);
    let again = app
        .write("transit/keys/k/soft-delete-restore", json!({}))
        .await
        .ok();
    assert_eq!(again.body["warnings"], json!(["key was already restored"]));
    let plain = app
        .write("transit/decrypt/k", json!({ "ciphertext": ct }))
        .await
        .ok();
    assert_eq!(plain.data()["plaintext"], "aGk=");
    app.write("transit/keys/k/rotate", json!({})).await.ok();

    // A key that does not exist: 204, as in OpenBao.
    assert_eq!(
        app.call("DELETE", "transit/keys/none/soft-delete", json!(null))
            .await
            .status,
        204
    );
    assert_eq!(
        app.write("transit/keys/none/soft-delete-restore", json!({}))
            .await
            .status,
        204
    );
    // And a soft-deleted key can still be deleted for good.
    app.call("DELETE", "transit/keys/k/soft-delete", json!(null))
        .await
        .ok();
    app.call("DELETE", "transit/keys/k", json!(null))
        .await
        .expect(204);
    assert_eq!(app.read("transit/keys/k").await.status, 404);
}
