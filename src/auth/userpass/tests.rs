use super::*;
use crate::seal::barrier::SecretKey;
use crate::storage::{MemoryStorage, Storage};

pub(crate) fn barrier() -> (Arc<MemoryStorage>, Arc<Barrier>, Arc<LookupKey>) {
    let storage = Arc::new(MemoryStorage::new());
    let barrier = Arc::new(Barrier::for_tests(Arc::clone(&storage) as Arc<dyn Storage>));
    let lookup = Arc::new(LookupKey::new(SecretKey::random().unwrap()));
    (storage, barrier, lookup)
}

/// Cheap argon2 parameters: debug builds run argon2 unoptimised.
pub(crate) fn cheap() -> Params {
    Params::new(256, 1, 1, None).unwrap()
}

fn store(params: Params) -> (Arc<MemoryStorage>, UserpassStore) {
    let (storage, barrier, lookup) = barrier();
    let store =
        UserpassStore::load_with(barrier, lookup, "auth/uuid-1/".to_owned(), params).unwrap();
    (storage, store)
}

fn all_bytes(storage: &MemoryStorage) -> Vec<(String, Vec<u8>)> {
    storage
        .list("")
        .unwrap()
        .into_iter()
        .map(|p| {
            let v = storage.get(&p).unwrap().unwrap();
            (p, v)
        })
        .collect()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn crud_and_reload() {
    let (storage, s) = store(cheap());
    assert!(
        s.write("alice", None, |_| Ok(())).is_err(),
        "password required"
    );
    assert!(
        s.write("alice", Some("pw-1"), |u| {
            u.token.token_policies = vec!["dev".to_owned()];
            u.token.token_ttl = 60;
            Ok(())
        })
        .unwrap()
    );
    let alice = s.get("alice").unwrap().unwrap();
    assert_eq!(alice.name, "alice");
    assert_eq!(alice.token.token_policies, vec!["dev"]);
    assert_eq!(alice.token.token_ttl, 60);
    // Update without a password keeps the old one.
    assert!(
        !s.write("alice", None, |u| {
            u.token.token_num_uses = 3;
            Ok(())
        })
        .unwrap()
    );
    assert!(s.login("alice", "pw-1").unwrap().is_some());
    assert_eq!(s.get("alice").unwrap().unwrap().token.token_ttl, 60);
    // Invalid settings change nothing.
    assert!(
        s.write("alice", None, |u| {
            u.token.token_max_ttl = 10;
            Ok(())
        })
        .is_err()
    );
    assert_eq!(s.get("alice").unwrap().unwrap().token.token_max_ttl, 0);
    s.write("bob", Some("pw-b"), |_| Ok(())).unwrap();
    assert_eq!(s.list().unwrap(), vec!["alice", "bob"]);
    s.set_password("bob", "pw-b2").unwrap();
    assert!(s.login("bob", "pw-b").unwrap().is_none());
    assert!(s.login("bob", "pw-b2").unwrap().is_some());
    assert!(s.set_password("carol", "x").is_err());
    s.update("bob", |u| {
        u.token.token_policies = vec!["ops".to_owned()];
        Ok(())
    })
    .unwrap();
    assert!(s.update("carol", |_| Ok(())).is_err());

    // Everything survives a reload from storage.
    let reloaded = UserpassStore::load_with(
        Arc::clone(&s.barrier),
        Arc::clone(&s.lookup),
        "auth/uuid-1/".to_owned(),
        cheap(),
    )
    .unwrap();
    assert_eq!(reloaded.list().unwrap(), vec!["alice", "bob"]);
    assert_eq!(reloaded.get("alice").unwrap(), s.get("alice").unwrap());
    assert!(reloaded.login("bob", "pw-b2").unwrap().is_some());

    s.delete("alice").unwrap();
    s.delete("nobody").unwrap();
    assert!(s.get("alice").unwrap().is_none());
    assert!(s.login("alice", "pw-1").unwrap().is_none());
    assert_eq!(s.list().unwrap(), vec!["bob"]);
    assert_eq!(storage.list("auth/uuid-1/users/").unwrap().len(), 1);
}

#[test]
fn login_outcomes() {
    let (_, s) = store(cheap());
    s.write("alice", Some("correct horse"), |_| Ok(())).unwrap();
    assert_eq!(
        s.login("alice", "correct horse").unwrap().unwrap().name,
        "alice"
    );
    assert!(s.login("alice", "wrong").unwrap().is_none());
    assert!(s.login("alice", "").unwrap().is_none());
    assert!(s.login("mallory", "correct horse").unwrap().is_none());
}

#[test]
fn passwords_and_names_never_in_clear() {
    let (storage, s) = store(cheap());
    s.write("alice", Some("hunter2-very-secret"), |_| Ok(()))
        .unwrap();
    s.set_password("alice", "second-secret-pw").unwrap();
    for (path, value) in all_bytes(&storage) {
        for needle in ["hunter2", "second-secret", "alice", "argon2"] {
            assert!(!contains(&value, needle.as_bytes()), "{needle} in {path}");
            assert!(!path.contains(needle), "{needle} in path {path}");
        }
    }
    // Through the barrier: a PHC argon2id hash, no password.
    let path = s.path("alice");
    let plain = s.barrier.get(&path).unwrap().unwrap();
    let stored: Stored = serde_json::from_slice(&plain).unwrap();
    assert!(stored.password_hash.starts_with("$argon2id$v=19$"));
    assert!(!contains(&plain, b"second-secret"));
    assert!(!format!("{:?}", s).contains(stored.password_hash.as_str()));
}

#[test]
fn default_parameters_are_argon2id_19mib_t2_p1() {
    let p = Params::default();
    assert_eq!((p.m_cost(), p.t_cost(), p.p_cost()), (19 * 1024, 2, 1));
}

/// Prints (does not assert) login times for an existing user with the
/// right and the wrong password and for a missing user, with the real
/// parameters. Run with `--nocapture` to see them.
#[test]
fn login_timing_existing_vs_missing() {
    use std::time::{Duration, Instant};
    let (_, s) = store(Params::default());
    s.write("alice", Some("correct horse"), |_| Ok(())).unwrap();
    let cases = [
        ("alice", "correct horse"),
        ("alice", "wrong password"),
        ("nobody", "wrong password"),
    ];
    // Warm up (the first argon2 runs of a process are slower), then
    // interleave the three cases so drift hits them alike.
    for _ in 0..3 {
        let _ = s.login("alice", "x").unwrap();
    }
    let mut times: [Vec<Duration>; 3] = Default::default();
    for _ in 0..10 {
        for (i, (name, pw)) in cases.iter().enumerate() {
            let t = Instant::now();
            let _ = s.login(name, pw).unwrap();
            times[i].push(t.elapsed());
        }
    }
    for v in &mut times {
        v.sort();
    }
    let [ok, bad, missing] = &times;
    for (what, v) in [
        ("existing user, right password", ok),
        ("existing user, wrong password", bad),
        ("missing user", missing),
    ] {
        println!(
            "userpass login timing ({what}): min {:?} median {:?} max {:?}",
            v[0],
            v[v.len() / 2],
            v[v.len() - 1]
        );
    }
}

// ----- several nodes on one storage -----------------------------------

/// Two stores over one storage: two nodes whose caches hear of each
/// other's changes only through `apply_change`.
fn two_nodes() -> (Arc<MemoryStorage>, UserpassStore, UserpassStore) {
    let (storage, barrier, lookup) = barrier();
    let node = || {
        UserpassStore::load_with(
            Arc::clone(&barrier),
            Arc::clone(&lookup),
            "auth/uuid-1/".to_owned(),
            cheap(),
        )
        .unwrap()
    };
    let (a, b) = (node(), node());
    (storage, a, b)
}

#[test]
fn a_stale_node_does_not_undo_the_other_nodes_change() {
    let (_, a, b) = two_nodes();
    a.write("alice", Some("pw-1"), |u| {
        u.token.token_policies = vec!["p0".to_owned()];
        u.token.token_ttl = 60;
        Ok(())
    })
    .unwrap();
    b.apply_change(&a.path("alice")).unwrap();
    assert_eq!(b.get("alice").unwrap(), a.get("alice").unwrap());

    // A changes the policies; B, not told, changes the password, then
    // the TTL through a full write.
    a.update("alice", |u| {
        u.token.token_policies = vec!["p1".to_owned()];
        Ok(())
    })
    .unwrap();
    b.set_password("alice", "pw-2").unwrap();
    let fresh = UserpassStore::load_with(
        Arc::clone(&a.barrier),
        Arc::clone(&a.lookup),
        "auth/uuid-1/".to_owned(),
        cheap(),
    )
    .unwrap();
    let stored = fresh.get("alice").unwrap().unwrap();
    assert_eq!(stored.token.token_policies, vec!["p1"], "A's change kept");
    assert!(fresh.login("alice", "pw-2").unwrap().is_some(), "B's too");
    // B's own cache took what storage holds, A's change included.
    assert_eq!(
        b.get("alice").unwrap().unwrap().token.token_policies,
        vec!["p1"]
    );

    a.write("alice", None, |u| {
        u.token.token_num_uses = 7;
        Ok(())
    })
    .unwrap();
    b.write("alice", None, |u| {
        u.token.token_ttl = 90;
        Ok(())
    })
    .unwrap();
    let user = b.get("alice").unwrap().unwrap();
    assert_eq!(
        (user.token.token_num_uses, user.token.token_ttl),
        (7, 90),
        "both edits applied"
    );
    assert_eq!(user.token.token_policies, vec!["p1"]);
    // A hears of B's writes and sees all of it.
    a.apply_change(&a.path("alice")).unwrap();
    assert_eq!(a.get("alice").unwrap(), Some(user));
    assert!(a.login("alice", "pw-2").unwrap().is_some());
    assert!(a.login("alice", "pw-1").unwrap().is_none());
}

#[test]
fn a_replayed_edit_sets_only_the_fields_it_changed() {
    let (_, a, _) = two_nodes();
    a.write("alice", Some("pw"), |_| Ok(())).unwrap();
    let path = a.path("alice");
    let mut runs = 0;
    a.update("alice", |u| {
        runs += 1;
        // Another node writes between this read and the swap.
        let mut other: Stored = read_json(&a.barrier, &path).unwrap().unwrap();
        other.token.token_ttl = 30;
        a.barrier
            .put(&path, &serde_json::to_vec(&other).unwrap())
            .unwrap();
        u.token.token_policies = vec!["mine".to_owned()];
        Ok(())
    })
    .unwrap();
    assert_eq!(runs, 1, "the caller's edit runs once");
    let user = a.get("alice").unwrap().unwrap();
    assert_eq!(user.token.token_ttl, 30);
    assert_eq!(user.token.token_policies, vec!["mine"]);
}

#[test]
fn changes_for_users_another_node_deleted_or_created() {
    let (storage, a, b) = two_nodes();
    a.write("alice", Some("pw"), |_| Ok(())).unwrap();
    // B has not heard of alice: it still changes her, from storage.
    b.update("alice", |u| {
        u.token.token_ttl = 5;
        Ok(())
    })
    .unwrap();
    assert_eq!(b.get("alice").unwrap().unwrap().token.token_ttl, 5);
    a.delete("alice").unwrap();
    // B's cache still has alice; storage decides.
    assert!(b.update("alice", |_| Ok(())).is_err());
    assert!(b.get("alice").unwrap().is_none(), "dropped from B's cache");
    assert!(storage.list("auth/uuid-1/users/").unwrap().is_empty());
    // Creating with a password B never saw is refused without one.
    a.write("bob", Some("pw"), |_| Ok(())).unwrap();
    assert!(!b.write("bob", None, |_| Ok(())).unwrap(), "an update");
    assert!(b.login("bob", "pw").unwrap().is_some());
    assert!(b.set_password("carol", "x").is_err());
}

#[test]
fn apply_change_follows_writes_and_deletions() {
    let (_, a, b) = two_nodes();
    a.write("alice", Some("pw"), |_| Ok(())).unwrap();
    a.write("bob", Some("pw"), |_| Ok(())).unwrap();
    b.apply_change(&a.path("alice")).unwrap();
    assert_eq!(b.list().unwrap(), vec!["alice"]);
    b.reload().unwrap();
    assert_eq!(b.list().unwrap(), vec!["alice", "bob"]);
    a.delete("alice").unwrap();
    assert!(b.login("alice", "pw").unwrap().is_some(), "not told yet");
    b.apply_change(&a.path("alice")).unwrap();
    assert_eq!(b.list().unwrap(), vec!["bob"]);
    assert!(b.login("alice", "pw").unwrap().is_none());
    // Paths that are not users of this mount change nothing and never panic.
    for path in [
        "",
        "auth/",
        "auth/uuid-1/",
        "auth/uuid-1/users/",
        "auth/uuid-1/users/x/y",
        "auth/uuid-9/users/abc",
        "auth/uuid-1/users/not-a-user",
    ] {
        b.apply_change(path).unwrap();
    }
    assert_eq!(b.list().unwrap(), vec!["bob"]);
    // An entry copied to another user's path is refused, not cached.
    let raw = a.barrier.get(&a.path("bob")).unwrap().unwrap();
    a.barrier.put(&a.path("mallory"), &raw).unwrap();
    assert!(b.apply_change(&a.path("mallory")).is_err());
    assert_eq!(b.list().unwrap(), vec!["bob"]);
}

/// Refreshes take the writer lock: one never publishes what it read
/// before a local write over that write.
#[test]
fn writes_racing_with_refreshes_are_never_lost() {
    let (_, a, b) = two_nodes();
    let names: Vec<String> = (0..40).map(|i| format!("u{i}")).collect();
    let paths: Vec<String> = names.iter().map(|n| a.path(n)).collect();
    std::thread::scope(|s| {
        s.spawn(|| {
            for name in &names {
                b.write(name, Some("pw"), |_| Ok(())).unwrap();
            }
        });
        s.spawn(|| {
            for _ in 0..5 {
                for path in &paths {
                    b.apply_change(path).unwrap();
                }
                b.reload().unwrap();
            }
        });
    });
    assert_eq!(b.list().unwrap().len(), names.len());
}
