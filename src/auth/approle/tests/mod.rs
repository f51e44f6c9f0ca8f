use super::*;
use crate::auth::userpass::tests::barrier;
use crate::storage::{MemoryStorage, Storage};

const PREFIX: &str = "auth/uuid-2/";

fn store() -> (Arc<MemoryStorage>, AppRoleStore) {
    let (storage, barrier, lookup) = barrier();
    let store = AppRoleStore::load(barrier, lookup, PREFIX.to_owned()).unwrap();
    (storage, store)
}

fn reload(s: &AppRoleStore) -> AppRoleStore {
    AppRoleStore::load(
        Arc::clone(&s.barrier),
        Arc::clone(&s.lookup),
        PREFIX.to_owned(),
    )
    .unwrap()
}

fn err(r: StoreResult<impl std::fmt::Debug>) -> String {
    r.unwrap_err().to_string()
}

#[test]
fn roles_and_role_ids() {
    let (_, s) = store();
    assert!(
        s.write_role("ci", |r| {
            r.token.token_policies = vec!["deploy".to_owned()];
            Ok(())
        })
        .unwrap()
    );
    let ci = s.get_role("ci").unwrap().unwrap();
    assert_eq!(ci.name, "ci");
    assert!(ci.bind_secret_id);
    assert_eq!(ci.role_id.len(), 36);
    assert!(uuid::Uuid::parse_str(&ci.role_id).is_ok());
    assert!(!format!("{ci:?}").contains(&ci.role_id));
    // Updates keep the role ID.
    assert!(
        !s.write_role("ci", |r| {
            r.secret_id_num_uses = 5;
            Ok(())
        })
        .unwrap()
    );
    assert_eq!(s.get_role("ci").unwrap().unwrap().role_id, ci.role_id);

    s.set_role_id("ci", "custom-id").unwrap();
    assert_eq!(s.get_role("ci").unwrap().unwrap().role_id, "custom-id");
    assert_eq!(err(s.set_role_id("ci", "")), "missing role_id");
    assert!(matches!(
        s.set_role_id("nope", "x"),
        Err(StoreError::Missing(Missing::RoleToUpdate))
    ));
    s.write_role("web", |r| {
        r.role_id = "web-id".to_owned();
        Ok(())
    })
    .unwrap();
    assert_eq!(
        err(s.set_role_id("web", "custom-id")),
        "role_id already in use"
    );
    assert_eq!(
        err(s.write_role("other", |r| {
            r.role_id = "custom-id".to_owned();
            Ok(())
        })),
        "role_id already in use"
    );
    assert!(s.get_role("other").unwrap().is_none());
    assert_eq!(s.list_roles().unwrap(), vec!["ci", "web"]);
    // The old role ID no longer logs in; the new one does.
    let sid = s
        .create_secret_id("ci", SecretIdRequest::default(), 0)
        .unwrap();
    assert_eq!(
        err(s.login(&ci.role_id, Some(&sid.secret_id), 0)),
        INVALID_LOGIN
    );
    assert!(s.login("custom-id", Some(&sid.secret_id), 0).is_ok());

    let r = reload(&s);
    assert_eq!(r.list_roles().unwrap(), vec!["ci", "web"]);
    assert_eq!(r.get_role("ci").unwrap(), s.get_role("ci").unwrap());
    assert!(r.login("custom-id", Some(&sid.secret_id), 0).is_ok());

    s.delete_role("web").unwrap();
    s.delete_role("web").unwrap();
    assert_eq!(s.list_roles().unwrap(), vec!["ci"]);
    // A deleted role's role ID is free again.
    s.set_role_id("ci", "web-id").unwrap();
}

#[test]
fn full_flow_with_uses_and_ttl() {
    let (storage, s) = store();
    s.write_role("ci", |r| {
        r.secret_id_num_uses = 2;
        r.secret_id_ttl = 600;
        r.token.token_policies = vec!["deploy".to_owned()];
        Ok(())
    })
    .unwrap();
    let role_id = s.get_role("ci").unwrap().unwrap().role_id;
    let mut meta = BTreeMap::new();
    meta.insert("job".to_owned(), "42".to_owned());
    let sid = s
        .create_secret_id(
            "ci",
            SecretIdRequest {
                metadata: meta.clone(),
                ..SecretIdRequest::default()
            },
            1000,
        )
        .unwrap();
    assert_eq!((sid.num_uses, sid.ttl), (2, 600));
    assert!(uuid::Uuid::parse_str(&sid.secret_id).is_ok());
    let info = s
        .lookup_secret_id("ci", &sid.secret_id, 1000)
        .unwrap()
        .unwrap();
    assert_eq!(info.accessor, sid.accessor);
    assert_eq!(info.expiration_time, Some(1600));
    assert_eq!(info.metadata, meta);
    assert_eq!(
        s.lookup_accessor("ci", &sid.accessor, 1000).unwrap(),
        Some(info)
    );
    assert_eq!(s.list_accessors("ci").unwrap(), vec![sid.accessor.clone()]);

    // Bad inputs.
    assert_eq!(
        err(s.login("", Some(&sid.secret_id), 1000)),
        "missing role_id"
    );
    assert_eq!(
        err(s.login("nope", Some(&sid.secret_id), 1000)),
        INVALID_LOGIN
    );
    assert_eq!(err(s.login(&role_id, None, 1000)), "missing secret_id");
    assert_eq!(err(s.login(&role_id, Some("wrong"), 1000)), INVALID_LOGIN);

    // Two uses, each written back durably, then gone.
    let ok = s.login(&role_id, Some(&sid.secret_id), 1001).unwrap();
    assert_eq!(ok.role.name, "ci");
    assert_eq!(ok.metadata, meta);
    let left = reload(&s)
        .lookup_secret_id("ci", &sid.secret_id, 1001)
        .unwrap()
        .unwrap();
    assert_eq!((left.num_uses, left.last_updated_time), (1, 1001));
    s.login(&role_id, Some(&sid.secret_id), 1002).unwrap();
    assert_eq!(
        err(s.login(&role_id, Some(&sid.secret_id), 1003)),
        INVALID_LOGIN
    );
    assert!(s.list_accessors("ci").unwrap().is_empty());
    assert!(
        storage
            .list(&format!("{PREFIX}secret_id/"))
            .unwrap()
            .is_empty()
    );

    // Expiry: refused at its expiration time, and removed.
    let sid = s
        .create_secret_id("ci", SecretIdRequest::default(), 2000)
        .unwrap();
    assert!(
        s.lookup_secret_id("ci", &sid.secret_id, 2599)
            .unwrap()
            .is_some()
    );
    assert!(
        s.lookup_secret_id("ci", &sid.secret_id, 2600)
            .unwrap()
            .is_none()
    );
    assert_eq!(
        err(s.login(&role_id, Some(&sid.secret_id), 2600)),
        INVALID_LOGIN
    );
    assert!(
        storage
            .list(&format!("{PREFIX}secret_id/"))
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        err(s.login(&role_id, Some(&sid.secret_id), 2000)),
        INVALID_LOGIN
    );

    // Overrides may only narrow the role's limits.
    let narrow = |num_uses, ttl| SecretIdRequest {
        num_uses,
        ttl,
        ..SecretIdRequest::default()
    };
    assert_eq!(
        err(s.create_secret_id("ci", narrow(Some(3), None), 0)),
        "num_uses cannot be higher than the role's secret_id_num_uses"
    );
    assert_eq!(
        err(s.create_secret_id("ci", narrow(Some(0), None), 0)),
        "num_uses cannot be higher than the role's secret_id_num_uses"
    );
    assert_eq!(
        err(s.create_secret_id("ci", narrow(None, Some(601)), 0)),
        "ttl cannot be longer than the role's secret_id_ttl"
    );
    let one = s
        .create_secret_id("ci", narrow(Some(1), Some(10)), 0)
        .unwrap();
    assert_eq!((one.num_uses, one.ttl), (1, 10));
    assert_eq!(
        err(s.create_secret_id("nope", SecretIdRequest::default(), 0)),
        "role \"nope\" does not exist"
    );
}

#[test]
fn destroy_by_id_and_accessor_and_role() {
    let (storage, s) = store();
    s.write_role("ci", |_| Ok(())).unwrap();
    let role_id = s.get_role("ci").unwrap().unwrap().role_id;
    let a = s
        .create_secret_id("ci", SecretIdRequest::default(), 0)
        .unwrap();
    let b = s
        .create_secret_id("ci", SecretIdRequest::default(), 0)
        .unwrap();
    let c = s
        .create_secret_id("ci", SecretIdRequest::default(), 0)
        .unwrap();
    let mut all = vec![a.accessor.clone(), b.accessor.clone(), c.accessor.clone()];
    all.sort();
    assert_eq!(s.list_accessors("ci").unwrap(), all);

    s.destroy_secret_id("ci", &a.secret_id).unwrap();
    s.destroy_secret_id("ci", "unknown").unwrap();
    assert_eq!(err(s.login(&role_id, Some(&a.secret_id), 0)), INVALID_LOGIN);
    assert!(s.destroy_accessor("ci", &b.accessor).unwrap());
    assert!(!s.destroy_accessor("ci", &b.accessor).unwrap());
    assert_eq!(err(s.login(&role_id, Some(&b.secret_id), 0)), INVALID_LOGIN);
    assert!(s.lookup_accessor("ci", &b.accessor, 0).unwrap().is_none());
    assert!(s.login(&role_id, Some(&c.secret_id), 0).is_ok());
    assert_eq!(s.list_accessors("ci").unwrap(), vec![c.accessor.clone()]);
    assert_eq!(
        err(s.destroy_secret_id("nope", "x")),
        "role \"nope\" does not exist"
    );
    assert_eq!(
        err(s.list_accessors("nope")),
        "role \"nope\" does not exist"
    );

    // A custom secret ID, once only.
    let custom = SecretIdRequest {
        secret_id: Some(Zeroizing::new("my-custom-secret".to_owned())),
        ..SecretIdRequest::default()
    };
    s.create_secret_id("ci", custom, 0).unwrap();
    assert!(s.login(&role_id, Some("my-custom-secret"), 0).is_ok());
    let again = SecretIdRequest {
        secret_id: Some(Zeroizing::new("my-custom-secret".to_owned())),
        ..SecretIdRequest::default()
    };
    assert_eq!(
        err(s.create_secret_id("ci", again, 0)),
        "SecretID is already registered"
    );

    // Deleting the role deletes its secret IDs, in storage too.
    s.delete_role("ci").unwrap();
    assert!(storage.list(PREFIX).unwrap().is_empty());
    assert_eq!(err(s.login(&role_id, Some(&c.secret_id), 0)), INVALID_LOGIN);
    s.write_role("ci", |_| Ok(())).unwrap();
    assert!(s.list_accessors("ci").unwrap().is_empty());
}

#[test]
fn role_id_only_when_bind_secret_id_is_false() {
    let (_, s) = store();
    s.write_role("svc", |r| {
        r.bind_secret_id = false;
        r.role_id = "svc-role-id".to_owned();
        Ok(())
    })
    .unwrap();
    let ok = s.login("svc-role-id", None, 0).unwrap();
    assert_eq!(ok.role.name, "svc");
    assert!(ok.metadata.is_empty());
    assert!(s.login(" svc-role-id ", Some("ignored"), 0).is_ok());
    assert_eq!(err(s.login("svc-role-i", None, 0)), INVALID_LOGIN);
    assert_eq!(
        err(s.create_secret_id("svc", SecretIdRequest::default(), 0)),
        "bind_secret_id is not set on the role"
    );
}

#[test]
fn secrets_never_in_clear() {
    let (storage, s) = store();
    s.write_role("ci", |r| {
        r.role_id = "role-id-marker".to_owned();
        Ok(())
    })
    .unwrap();
    let custom = SecretIdRequest {
        secret_id: Some(Zeroizing::new("custom-secret-marker".to_owned())),
        ..SecretIdRequest::default()
    };
    s.create_secret_id("ci", custom, 0).unwrap();
    let random = s
        .create_secret_id("ci", SecretIdRequest::default(), 0)
        .unwrap();
    s.login("role-id-marker", Some(&random.secret_id), 0)
        .unwrap();
    let needles = [
        "custom-secret-marker",
        random.secret_id.as_str(),
        "role-id-marker",
        "\"ci\"",
    ];
    for path in storage.list("").unwrap() {
        let value = storage.get(&path).unwrap().unwrap();
        for needle in needles {
            assert!(!path.contains(needle), "{needle} in path {path}");
            assert!(
                !value.windows(needle.len()).any(|w| w == needle.as_bytes()),
                "{needle} in {path}"
            );
        }
    }
    // Sealed entries hold neither secret either.
    for path in storage.list(&format!("{PREFIX}secret_id/")).unwrap() {
        let plain = s.barrier.get(&path).unwrap().unwrap();
        for needle in ["custom-secret-marker", random.secret_id.as_str()] {
            assert!(!plain.windows(needle.len()).any(|w| w == needle.as_bytes()));
        }
    }
    assert!(!format!("{s:?}").contains("custom-secret-marker"));
}

#[test]
fn tidy_and_orphans() {
    let (storage, s) = store();
    s.write_role("ci", |r| {
        r.secret_id_ttl = 10;
        Ok(())
    })
    .unwrap();
    s.create_secret_id("ci", SecretIdRequest::default(), 0)
        .unwrap();
    let keep = s
        .create_secret_id("ci", SecretIdRequest::default(), 100)
        .unwrap();
    assert_eq!(s.tidy(50).unwrap(), 1);
    assert_eq!(s.list_accessors("ci").unwrap(), vec![keep.accessor.clone()]);
    // A secret ID left behind by a role deleted midway is dropped at load.
    let role_path = s.role_path("ci");
    storage.delete(&role_path).unwrap();
    let r = reload(&s);
    assert!(r.list_roles().unwrap().is_empty());
    assert!(storage.list(PREFIX).unwrap().is_empty());
}

mod nodes;
