//! Several nodes on one storage.

use super::*;

/// A second node over `a`'s storage, loaded now (it knows what is stored
/// now, and hears of later changes only through `apply_change`).
fn other_node(a: &AppRoleStore) -> AppRoleStore {
    reload(a)
}

fn limited_role(s: &AppRoleStore, uses: u64) -> String {
    s.write_role("ci", |r| {
        r.secret_id_num_uses = uses;
        Ok(())
    })
    .unwrap();
    s.get_role("ci").unwrap().unwrap().role_id
}

#[test]
fn a_role_created_on_another_node_is_found_before_its_notification() {
    let (_, a) = store();
    let b = other_node(&a);
    let role_id = limited_role(&a, 0);
    // B never heard of it, yet reads it (and can issue secret IDs for it).
    assert_eq!(b.get_role("ci").unwrap().unwrap().role_id, role_id);
    assert!(
        b.create_secret_id("ci", SecretIdRequest::default(), 0)
            .is_ok()
    );
    assert!(b.get_role("nope").unwrap().is_none());
}

#[test]
fn a_one_use_secret_id_logs_in_once_across_nodes() {
    let (storage, a) = store();
    let role_id = limited_role(&a, 1);
    let b = other_node(&a);
    let sid = a
        .create_secret_id("ci", SecretIdRequest::default(), 0)
        .unwrap();
    let path = storage.list(&format!("{PREFIX}secret_id/")).unwrap()[0].clone();
    b.apply_change(&path).unwrap();
    assert!(
        b.lookup_secret_id("ci", &sid.secret_id, 0)
            .unwrap()
            .is_some()
    );

    assert!(a.login(&role_id, Some(&sid.secret_id), 1).is_ok());
    // B still has it cached with its one use.
    assert!(
        b.lookup_secret_id("ci", &sid.secret_id, 1)
            .unwrap()
            .is_some()
    );
    assert_eq!(
        err(b.login(&role_id, Some(&sid.secret_id), 1)),
        INVALID_LOGIN
    );
    assert!(
        b.lookup_secret_id("ci", &sid.secret_id, 1)
            .unwrap()
            .is_none(),
        "dropped from B's cache"
    );
}

#[test]
fn uses_are_counted_across_nodes_without_any_refresh() {
    let (_, a) = store();
    let role_id = limited_role(&a, 3);
    let sid = a
        .create_secret_id("ci", SecretIdRequest::default(), 0)
        .unwrap();
    let b = other_node(&a);
    let granted = (0..8)
        .filter(|i| {
            let node = if i % 2 == 0 { &a } else { &b };
            node.login(&role_id, Some(&sid.secret_id), 1).is_ok()
        })
        .count();
    assert_eq!(granted, 3);
}

#[test]
fn concurrent_logins_on_two_nodes_grant_exactly_the_uses() {
    let (_, a) = store();
    let role_id = limited_role(&a, 5);
    let sid = a
        .create_secret_id("ci", SecretIdRequest::default(), 0)
        .unwrap();
    let b = other_node(&a);
    let granted = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        for node in [&a, &b, &a, &b] {
            let (granted, role_id, secret) = (&granted, &role_id, &sid.secret_id);
            s.spawn(move || {
                for _ in 0..5 {
                    match node.login(role_id, Some(secret), 1) {
                        Ok(_) => {
                            granted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        }
                        Err(e) => assert_eq!(e.to_string(), INVALID_LOGIN),
                    }
                }
            });
        }
    });
    assert_eq!(granted.into_inner(), 5);
}

#[test]
fn deleting_a_role_deletes_secret_ids_another_node_made() {
    let (storage, a) = store();
    let role_id = limited_role(&a, 0);
    let b = other_node(&a);
    let sid = b
        .create_secret_id("ci", SecretIdRequest::default(), 0)
        .unwrap();
    assert!(a.list_accessors("ci").unwrap().is_empty(), "A never heard");
    a.delete_role("ci").unwrap();
    assert!(storage.list(PREFIX).unwrap().is_empty());
    // Recreated under the same name, the role gets none of them back.
    a.write_role("ci", |r| {
        r.role_id.clone_from(&role_id);
        Ok(())
    })
    .unwrap();
    let fresh = other_node(&a);
    assert_eq!(
        err(fresh.login(&role_id, Some(&sid.secret_id), 0)),
        INVALID_LOGIN
    );
}

#[test]
fn secret_ids_left_by_an_earlier_role_do_not_come_back() {
    let (storage, a) = store();
    let role_id = limited_role(&a, 0);
    let sid = a
        .create_secret_id("ci", SecretIdRequest::default(), 0)
        .unwrap();
    // A deletion cut short after the role went (or a secret ID written
    // by another node just after the deleter listed them).
    storage.delete(&a.role_path("ci")).unwrap();
    a.write_role("ci", |r| {
        r.role_id.clone_from(&role_id);
        Ok(())
    })
    .unwrap();
    assert!(a.list_accessors("ci").unwrap().is_empty());
    assert_eq!(
        err(a.login(&role_id, Some(&sid.secret_id), 0)),
        INVALID_LOGIN
    );
    assert!(
        storage
            .list(&format!("{PREFIX}secret_id/"))
            .unwrap()
            .is_empty()
    );
}

#[test]
fn a_custom_secret_id_is_registered_once_across_nodes() {
    let (_, a) = store();
    limited_role(&a, 0);
    let b = other_node(&a);
    let custom = || SecretIdRequest {
        secret_id: Some(Zeroizing::new("shared-custom".to_owned())),
        ..SecretIdRequest::default()
    };
    a.create_secret_id("ci", custom(), 0).unwrap();
    assert_eq!(
        err(b.create_secret_id("ci", custom(), 0)),
        "SecretID is already registered"
    );
}

#[test]
fn destroying_on_a_node_that_never_heard_of_the_secret_id() {
    let (storage, a) = store();
    let role_id = limited_role(&a, 0);
    let b = other_node(&a);
    let x = a
        .create_secret_id("ci", SecretIdRequest::default(), 0)
        .unwrap();
    let y = a
        .create_secret_id("ci", SecretIdRequest::default(), 0)
        .unwrap();
    b.destroy_secret_id("ci", &x.secret_id).unwrap();
    assert!(b.destroy_accessor("ci", &y.accessor).unwrap());
    assert!(!b.destroy_accessor("ci", &y.accessor).unwrap());
    assert!(
        storage
            .list(&format!("{PREFIX}secret_id/"))
            .unwrap()
            .is_empty()
    );
    // A's cache still has them as unlimited: it hears of the deletions.
    for sid in [&x, &y] {
        a.apply_change(&a.secret_path("ci", &a.secret_digest(&sid.secret_id)))
            .unwrap();
        assert_eq!(
            err(a.login(&role_id, Some(&sid.secret_id), 0)),
            INVALID_LOGIN
        );
    }
    // A role only storage knows of is found there.
    let c = {
        let (_, barrier, lookup) = barrier();
        AppRoleStore::load(barrier, lookup, PREFIX.to_owned()).unwrap()
    };
    assert_eq!(
        err(c.destroy_secret_id("ci", "x")),
        "role \"ci\" does not exist"
    );
}

#[test]
fn tidy_deletes_only_what_storage_still_holds_expired() {
    let (storage, a) = store();
    a.write_role("ci", |r| {
        r.secret_id_ttl = 10;
        Ok(())
    })
    .unwrap();
    a.create_secret_id("ci", SecretIdRequest::default(), 0)
        .unwrap();
    let b = other_node(&a);
    assert_eq!(b.tidy(50).unwrap(), 1);
    assert_eq!(a.tidy(50).unwrap(), 0, "already gone");
    assert!(a.list_accessors("ci").unwrap().is_empty());
    assert!(
        storage
            .list(&format!("{PREFIX}secret_id/"))
            .unwrap()
            .is_empty()
    );
}

#[test]
fn apply_change_in_any_order_and_for_deletions() {
    let (storage, a) = store();
    let b = other_node(&a);
    let role_id = limited_role(&a, 0);
    let sid = a
        .create_secret_id("ci", SecretIdRequest::default(), 0)
        .unwrap();
    let secret_path = storage.list(&format!("{PREFIX}secret_id/")).unwrap()[0].clone();
    let role_path = a.role_path("ci");
    // The secret ID's change arrives before its role's.
    b.apply_change(&secret_path).unwrap();
    assert!(b.login(&role_id, Some(&sid.secret_id), 0).is_ok());
    b.apply_change(&role_path).unwrap();
    assert_eq!(b.list_accessors("ci").unwrap(), vec![sid.accessor.clone()]);

    // A new role ID replaces the old one in B's index.
    a.set_role_id("ci", "new-id").unwrap();
    b.apply_change(&role_path).unwrap();
    assert_eq!(
        err(b.login(&role_id, Some(&sid.secret_id), 0)),
        INVALID_LOGIN
    );
    assert!(b.login("new-id", Some(&sid.secret_id), 0).is_ok());

    a.destroy_secret_id("ci", &sid.secret_id).unwrap();
    b.apply_change(&secret_path).unwrap();
    assert!(b.list_accessors("ci").unwrap().is_empty());
    a.delete_role("ci").unwrap();
    b.apply_change(&role_path).unwrap();
    assert!(b.list_roles().unwrap().is_empty());
    assert_eq!(err(b.login("new-id", None, 0)), INVALID_LOGIN);
    // new-id is free again on B.
    b.write_role("other", |r| {
        r.role_id = "new-id".to_owned();
        Ok(())
    })
    .unwrap();

    // Forged or malformed paths change nothing and never panic.
    for path in [
        "",
        "auth/",
        PREFIX,
        "auth/uuid-2/role/",
        "auth/uuid-2/role/a/b",
        "auth/uuid-2/secret_id/",
        "auth/uuid-2/secret_id/dir",
        "auth/uuid-2/secret_id//00",
        "auth/uuid-2/secret_id/dir/not-hex",
        "auth/uuid-2/secret_id/dir/0a0a",
        "auth/uuid-2/secret_id/dir/é",
        "auth/uuid-9/role/abc",
        "auth/uuid-2/other",
    ] {
        b.apply_change(path).unwrap();
    }
    let zero = format!(
        "{PREFIX}secret_id/{}/{}",
        b.lookup.name("other"),
        "00".repeat(32)
    );
    b.apply_change(&zero).unwrap();
    assert_eq!(b.list_roles().unwrap(), vec!["other"]);
    assert!(b.list_accessors("other").unwrap().is_empty());

    b.reload().unwrap();
    assert_eq!(b.list_roles().unwrap(), vec!["other"]);
    assert!(b.login("new-id", None, 0).is_err());
}

#[test]
fn a_stale_node_does_not_undo_a_role_change() {
    let (_, a) = store();
    limited_role(&a, 2);
    let b = other_node(&a);
    a.write_role("ci", |r| {
        r.token.token_policies = vec!["from-a".to_owned()];
        Ok(())
    })
    .unwrap();
    b.write_role("ci", |r| {
        r.secret_id_ttl = 99;
        Ok(())
    })
    .unwrap();
    let role = b.get_role("ci").unwrap().unwrap();
    assert_eq!(role.token.token_policies, vec!["from-a"]);
    assert_eq!((role.secret_id_ttl, role.secret_id_num_uses), (99, 2));
    // A role another node deleted is not recreated by set_role_id.
    a.delete_role("ci").unwrap();
    assert!(matches!(
        b.set_role_id("ci", "x"),
        Err(StoreError::Missing(Missing::RoleToUpdate))
    ));
    assert!(b.get_role("ci").unwrap().is_none());
}
