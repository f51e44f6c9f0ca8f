//! A server that is down, silent, or closes its sessions: calls fail fast
//! and the storage recovers, resyncing the feed.

use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use super::super::pool::{IDLE_CHECK_AFTER, lock};
use super::super::{Change, PostgresConfig, PostgresStorage, Storage, StorageError};
use super::support::{Proxy, TEST_URL, TestSchema, resync_then_paths, unavailable};

#[test]
fn closed_port_is_unavailable_quickly_without_the_password() {
    let schema = TestSchema::new();
    let started = Instant::now();
    let msg = unavailable(PostgresStorage::connect(
        &schema.config_for("postgresql://postgres:hunter2-secret@127.0.0.1:1/test"),
    ));
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );
    assert!(msg.starts_with("postgresql: "), "{msg}");
    assert!(msg.contains("127.0.0.1:1/test"), "{msg}");
    assert!(!msg.contains("hunter2"), "{msg}");
}

/// A server that accepts connections and never answers.
fn black_hole() -> (u16, Arc<Mutex<Vec<TcpStream>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let held = Arc::new(Mutex::new(Vec::new()));
    let keep = Arc::clone(&held);
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            lock(&keep).push(stream);
        }
    });
    (port, held)
}

#[test]
fn an_unresponsive_server_is_unavailable_within_the_deadline() {
    let schema = TestSchema::new();
    let (port, held) = black_hole();
    let config = PostgresConfig {
        connect_timeout: Duration::from_secs(1),
        ..schema.config_for(&format!(
            "host=127.0.0.1 port={port} user=postgres dbname=test sslmode=disable"
        ))
    };
    let started = Instant::now();
    let msg = unavailable(PostgresStorage::connect(&config));
    let elapsed = started.elapsed();
    // The caller's deadline: connect_timeout + OPERATION_TIMEOUT.
    assert!(elapsed >= Duration::from_secs(5), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(7), "{elapsed:?}");
    assert!(
        msg.starts_with("postgresql: migrate schema: no answer from"),
        "{msg}"
    );
    // Closing the connections frees the stuck worker.
    for s in lock(&held).drain(..) {
        let _ = s.shutdown(Shutdown::Both);
    }
}

#[test]
fn survives_the_server_closing_its_sessions() {
    // What a server restart or an administrator's pg_terminate_backend
    // does to idle pooled connections and to the feed's connection.
    let schema = TestSchema::new();
    let app = format!("t{}", &schema.name[14..]);
    let s =
        PostgresStorage::connect(&schema.config_for(&format!("{TEST_URL} application_name={app}")))
            .unwrap();
    let direct = schema.open();
    let changes = s.subscribe().unwrap();
    s.put("a", b"1").unwrap();
    let killed = schema.admin_query_i64(format!(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
         WHERE application_name = '{app}'"
    ));
    assert!(killed >= 2, "{killed}");
    assert_eq!(
        changes.recv_timeout(Duration::from_secs(5)),
        Ok(Change::Resync)
    );
    // The dead connection, idle for less than IDLE_CHECK_AFTER, fails
    // the read, which is retried on a new connection: nothing reported.
    assert_eq!(s.get("a").unwrap().as_deref(), Some(&b"1"[..]));
    // Again, past IDLE_CHECK_AFTER: the check before use finds it dead.
    schema.admin_query_i64(format!(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
         WHERE application_name = '{app}'"
    ));
    thread::sleep(IDLE_CHECK_AFTER + Duration::from_millis(100));
    s.put("a", b"2").unwrap();
    assert_eq!(s.get("a").unwrap().as_deref(), Some(&b"2"[..]));
    resync_then_paths(&changes, &direct, "b");
}

#[test]
fn recovers_after_an_outage_and_resyncs_the_feed() {
    let schema = TestSchema::new();
    let mut proxy = Proxy::start();
    let direct = schema.open();
    let s = PostgresStorage::connect(&schema.config_for(&proxy.url())).unwrap();
    let changes = s.subscribe().unwrap();
    s.put("before", b"1").unwrap();
    direct.put("x", b"1").unwrap();
    assert_eq!(
        changes.recv_timeout(Duration::from_secs(1)),
        Ok(Change::Path("x".to_owned()))
    );

    proxy.cut();
    // Every call fails, fast, while the database is unreachable.
    for _ in 0..3 {
        let started = Instant::now();
        match s.get("before") {
            Err(StorageError::Unavailable(m)) => assert!(m.starts_with("postgresql: "), "{m}"),
            other => panic!("expected Unavailable, got {other:?}"),
        }
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
    }
    assert!(matches!(
        s.put("during", b"x"),
        Err(StorageError::Unavailable(_))
    ));
    // Changes made meanwhile are not seen...
    direct.put("missed", b"1").unwrap();

    proxy.resume();
    // ... which the feed reports with a Resync once it is back.
    resync_then_paths(&changes, &direct, "y");
    // Works again without a restart.
    assert_eq!(s.get("before").unwrap().as_deref(), Some(&b"1"[..]));
    s.put("after", b"2").unwrap();
    assert_eq!(direct.get("after").unwrap().as_deref(), Some(&b"2"[..]));
}

#[test]
fn feed_started_while_the_database_is_down_resyncs_when_it_is_back() {
    let schema = TestSchema::new();
    let mut proxy = Proxy::start();
    let direct = schema.open();
    let s = PostgresStorage::connect(&schema.config_for(&proxy.url())).unwrap();
    proxy.cut();
    let started = Instant::now();
    let changes = s.subscribe().unwrap();
    assert!(started.elapsed() < Duration::from_secs(6));
    proxy.resume();
    resync_then_paths(&changes, &direct, "z");
}
