//! Reads, writes and compare-and-swap, from any thread or runtime, within
//! `max_parallel` connections.

use std::sync::Arc;
use std::thread;
use std::time::Duration;

use super::super::pool::lock;
use super::super::{Change, PostgresConfig, PostgresStorage, Storage};
use super::support::{TestSchema, strings};

#[test]
fn put_get_delete() {
    let schema = TestSchema::new();
    let s = schema.open();
    assert_eq!(s.kind(), "postgresql");
    assert!(s.is_shared());
    crate::storage::conformance::put_get_delete(&s);
    // put bumps the row version.
    s.put("v", b"1").unwrap();
    s.put("v", b"2").unwrap();
    s.put("v", b"3").unwrap();
    let version = schema.admin_query_i64(format!(
        "SELECT version FROM \"{}\".transitd_entries WHERE path = 'v'",
        schema.name
    ));
    assert_eq!(version, 3);
    // A second instance sees the same data.
    let other = schema.open();
    assert_eq!(other.get("v").unwrap().as_deref(), Some(&b"3"[..]));
}

#[test]
fn list_is_a_true_prefix_match() {
    let schema = TestSchema::new();
    crate::storage::conformance::list_is_a_true_prefix_match(&schema.open());
}

#[test]
fn compare_and_swap() {
    let schema = TestSchema::new();
    crate::storage::conformance::compare_and_swap(&schema.open());
}

#[test]
fn compare_and_swap_is_atomic_across_instances() {
    // Two instances (as two nodes would have), four threads, 25
    // increments each through CAS loops: no increment may be lost.
    let schema = TestSchema::new();
    let nodes = [Arc::new(schema.open()), Arc::new(schema.open())];
    nodes[0].put("n", b"0").unwrap();
    let threads: Vec<_> = (0..4)
        .map(|i| {
            let s = Arc::clone(&nodes[i % 2]);
            thread::spawn(move || {
                let mut conflicts = 0u32;
                for _ in 0..25 {
                    loop {
                        let cur = s.get("n").unwrap().unwrap();
                        let n: u32 = std::str::from_utf8(&cur).unwrap().parse().unwrap();
                        let next = (n + 1).to_string();
                        if s.compare_and_swap("n", Some(&cur), Some(next.as_bytes()))
                            .unwrap()
                        {
                            break;
                        }
                        conflicts += 1;
                    }
                }
                conflicts
            })
        })
        .collect();
    let conflicts: u32 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    assert_eq!(nodes[1].get("n").unwrap().as_deref(), Some(&b"100"[..]));
    eprintln!("CAS contention: 100 increments, {conflicts} conflicts retried");
    // Never more connections than max_parallel per instance.
    for node in &nodes {
        assert!(lock(&node.pool.idle).len() <= node.pool.max);
        assert!(lock(&node.pool.workers).spawned <= node.pool.max);
    }
}

#[test]
fn pool_never_exceeds_max_parallel() {
    let schema = TestSchema::new();
    let s = Arc::new(
        PostgresStorage::connect(&PostgresConfig {
            max_parallel: 2,
            ..schema.config()
        })
        .unwrap(),
    );
    let threads: Vec<_> = (0..6)
        .map(|i| {
            let s = Arc::clone(&s);
            thread::spawn(move || {
                for j in 0..10 {
                    s.put(&format!("t{i}/{j}"), b"x").unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(s.list("").unwrap().len(), 60);
    let sessions = schema.admin_query_i64(format!(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'transitd' \
         AND query LIKE '%\"{}\"%'",
        schema.name
    ));
    assert!(sessions <= 2, "{sessions} sessions");
    assert!(lock(&s.pool.workers).spawned <= 2);
    assert!(lock(&s.pool.idle).len() <= 2);
}

#[tokio::test]
async fn works_inside_a_current_thread_runtime() {
    let schema = TestSchema::new();
    let s = schema.open();
    s.put("a", b"1").unwrap();
    assert_eq!(s.get("a").unwrap().as_deref(), Some(&b"1"[..]));
    assert!(s.compare_and_swap("a", Some(b"1"), Some(b"2")).unwrap());
    // Through the helper request handlers use.
    let got = crate::storage::blocking(|| s.get("a")).unwrap();
    assert_eq!(got.as_deref(), Some(&b"2"[..]));
    let rx = s.subscribe().unwrap();
    let other = schema.open();
    other.put("b", b"x").unwrap();
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(1)),
        Ok(Change::Path("b".to_owned()))
    );
    // The runtime itself still runs.
    tokio::task::yield_now().await;
    drop(s);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn works_from_a_multi_thread_runtime() {
    let schema = TestSchema::new();
    let s = Arc::new(crate::storage::blocking(|| schema.open()));
    let tasks: Vec<_> = (0..4)
        .map(|i| {
            let s = Arc::clone(&s);
            tokio::spawn(async move {
                crate::storage::blocking(|| s.put(&format!("k{i}"), b"v")).unwrap();
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(
        crate::storage::blocking(|| s.list("k")).unwrap(),
        strings(&["k0", "k1", "k2", "k3"])
    );
}
