//! Deadlines: a write not sent by its deadline never is, a sent one is
//! waited for and never retried.

use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use ::postgres::{Client, NoTls};

use super::super::deadline::STATEMENT_TIMEOUT_MS;
use super::super::pool::WRITE_CHECK_AFTER;
use super::super::{Change, PostgresConfig, PostgresStorage, Storage, StorageResult};
use super::support::{
    Proxy, TEST_URL, TestSchema, lock_row, lock_waiters, paths_seen, row_version, unavailable_msg,
    wait_until,
};

#[test]
fn a_write_not_sent_by_its_deadline_never_is() {
    let schema = TestSchema::new();
    let direct = schema.open();
    let changes = direct.subscribe().unwrap();
    let deadline = Duration::from_millis(300);

    // 1. Queued behind the only worker, stuck in a write waiting for a
    // row lock.
    let mut s = PostgresStorage::connect(&PostgresConfig {
        max_parallel: 1,
        ..schema.config()
    })
    .unwrap();
    s.operation_timeout = deadline;
    let s = Arc::new(s);
    s.put("busy", b"1").unwrap();
    let mut admin = Client::connect(TEST_URL, NoTls).unwrap();
    let tx = lock_row(&mut admin, &schema, "busy");
    let busy = {
        let s = Arc::clone(&s);
        thread::spawn(move || s.put("busy", b"2"))
    };
    wait_until("the put waits for the lock", || lock_waiters(&schema) == 1);
    let started = Instant::now();
    let msg = unavailable_msg(s.put("queued", b"x"));
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert!(msg.contains("nothing was written"), "{msg}");
    tx.commit().unwrap();
    busy.join().unwrap().unwrap();
    // The worker has passed the queued put by now (one worker, in order).
    assert_eq!(s.get("queued").unwrap(), None);

    // 2. Taken by a worker at once, but its connection takes longer than
    // the deadline to open: the worker must not send it afterwards.
    let mut proxy = Proxy::start();
    let mut slow = PostgresStorage::connect(&PostgresConfig {
        max_parallel: 1,
        ..schema.config_for(&proxy.url())
    })
    .unwrap();
    slow.operation_timeout = deadline;
    proxy.cut();
    proxy.set_delay(Duration::from_secs(1));
    proxy.resume();
    let started = Instant::now();
    let msg = unavailable_msg(slow.put("slow", b"x"));
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert!(msg.contains("nothing was written"), "{msg}");
    // The connection is open by now, and pooled: the put was not sent.
    thread::sleep(Duration::from_millis(1500));
    proxy.set_delay(Duration::ZERO);
    assert_eq!(slow.get("slow").unwrap(), None);

    // Neither was ever applied, nor announced.
    thread::sleep(Duration::from_millis(300));
    assert_eq!(row_version(&schema, "queued"), 0);
    assert_eq!(row_version(&schema, "slow"), 0);
    assert_eq!(
        paths_seen(&changes, Duration::from_millis(300)),
        vec![Change::Path("busy".to_owned()); 2]
    );
}

#[test]
fn a_sent_write_is_waited_for() {
    let schema = TestSchema::new();
    let mut s = schema.open();
    s.operation_timeout = Duration::from_millis(300);
    let s = Arc::new(s);
    let direct = schema.open();
    s.put("k", b"1").unwrap();
    let mut admin = Client::connect(TEST_URL, NoTls).unwrap();
    // Each write is sent at once, then waits for a row lock that is
    // released (or not) well after its caller's deadline.
    let blocked = |admin: &mut Client,
                   release: bool,
                   write: Box<dyn FnOnce() -> StorageResult<bool> + Send>| {
        let tx = lock_row(admin, &schema, "k");
        let writer = thread::spawn(move || {
            let started = Instant::now();
            (write(), started.elapsed())
        });
        wait_until("the write waits for the lock", || {
            lock_waiters(&schema) == 1
        });
        thread::sleep(Duration::from_millis(700));
        if release {
            tx.commit().unwrap();
        }
        let (result, took) = writer.join().unwrap();
        assert!(took >= Duration::from_millis(700), "{took:?}");
        result
    };

    let w = Arc::clone(&s);
    let put = blocked(
        &mut admin,
        true,
        Box::new(move || w.put("k", b"2").map(|()| true)),
    );
    assert!(put.unwrap());
    assert_eq!(direct.get("k").unwrap().as_deref(), Some(&b"2"[..]));
    assert_eq!(row_version(&schema, "k"), 2);

    // A compare-and-swap reports what happened: applied once, true.
    let w = Arc::clone(&s);
    let cas = blocked(
        &mut admin,
        true,
        Box::new(move || w.compare_and_swap("k", Some(b"2"), Some(b"3"))),
    );
    assert!(cas.unwrap());
    assert_eq!(direct.get("k").unwrap().as_deref(), Some(&b"3"[..]));
    assert_eq!(row_version(&schema, "k"), 3);

    // Never released: the server gives up at lock_timeout, and the caller,
    // who waited for that, is told the write failed, which it did.
    let w = Arc::clone(&s);
    let started = Instant::now();
    let put = blocked(
        &mut admin,
        false,
        Box::new(move || w.put("k", b"4").map(|()| true)),
    );
    let took = started.elapsed();
    let msg = unavailable_msg(put);
    // Whichever of lock_timeout and statement_timeout (equal) fires.
    assert!(msg.contains("55P03") || msg.contains("57014"), "{msg}");
    let statement_timeout = Duration::from_millis(u64::from(STATEMENT_TIMEOUT_MS));
    assert!(took >= statement_timeout, "{took:?}");
    assert!(
        took < statement_timeout + Duration::from_secs(3),
        "{took:?}"
    );
    assert_eq!(direct.get("k").unwrap().as_deref(), Some(&b"3"[..]));
    assert_eq!(row_version(&schema, "k"), 3);
}

#[test]
fn a_write_is_not_retried_after_its_connection_is_lost() {
    let schema = TestSchema::new();
    let proxy = Proxy::start();
    let s = Arc::new(
        PostgresStorage::connect(&PostgresConfig {
            max_parallel: 1,
            ..schema.config_for(&proxy.url())
        })
        .unwrap(),
    );
    let direct = schema.open();
    let changes = direct.subscribe().unwrap();
    s.put("k", b"0").unwrap();
    assert_eq!(
        changes.recv_timeout(Duration::from_secs(2)),
        Ok(Change::Path("k".to_owned()))
    );
    let mut admin = Client::connect(TEST_URL, NoTls).unwrap();
    type Write = fn(&PostgresStorage, &[u8], &[u8]) -> StorageResult<()>;
    let writes: [(&str, Write); 2] = [
        ("put", |s, _, new| s.put("k", new)),
        ("compare-and-swap", |s, old, new| {
            s.compare_and_swap("k", Some(old), Some(new)).map(drop)
        }),
    ];
    let mut current = b"0".to_vec();
    for (round, (what, write)) in writes.into_iter().enumerate() {
        let version = row_version(&schema, "k");
        let new = format!("{}", round + 1).into_bytes();
        let tx = lock_row(&mut admin, &schema, "k");
        let writer = {
            let (s, old, new) = (Arc::clone(&s), current.clone(), new.clone());
            thread::spawn(move || write(&s, &old, &new))
        };
        wait_until("the write waits for the lock", || {
            lock_waiters(&schema) == 1
        });
        // Lost mid-statement, the server still reachable: a retry would
        // be waiting for the lock by now too.
        proxy.sever();
        thread::sleep(Duration::from_millis(300));
        assert!(lock_waiters(&schema) <= 1, "{what}: retried");
        let msg = unavailable_msg(writer.join().unwrap());
        assert!(msg.contains("may have been applied"), "{what}: {msg}");
        tx.commit().unwrap();
        // The server may still commit the first (and only) attempt.
        thread::sleep(Duration::from_millis(300));
        let applied = row_version(&schema, "k") - version;
        assert!(
            (0..=1).contains(&applied),
            "{what}: applied {applied} times"
        );
        if applied == 1 {
            current = new;
            assert_eq!(
                changes.recv_timeout(Duration::from_secs(2)),
                Ok(Change::Path("k".to_owned()))
            );
        }
        assert_eq!(direct.get("k").unwrap(), Some(current.clone()), "{what}");
        assert_eq!(
            paths_seen(&changes, Duration::from_millis(300)),
            vec![],
            "{what}"
        );
    }
    // Usable again, on a new connection.
    s.put("after", b"x").unwrap();
}

#[test]
fn a_write_on_a_connection_the_server_closed_meanwhile_succeeds() {
    // Found closed before anything is sent, so it is replaced: a write,
    // which is never retried once sent, is not lost to a session that
    // the server ended (restart, pg_terminate_backend) since its last use.
    let schema = TestSchema::new();
    let app = format!("w{}", &schema.name[14..]);
    let s = PostgresStorage::connect(&PostgresConfig {
        max_parallel: 1,
        ..schema.config_for(&format!("{TEST_URL} application_name={app}"))
    })
    .unwrap();
    for round in 0..3 {
        s.put("k", format!("{round}").as_bytes()).unwrap();
        let killed = schema.admin_query_i64(format!(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE application_name = '{app}'"
        ));
        assert_eq!(killed, 1);
        wait_until("the session is gone", || {
            schema.admin_query_i64(format!(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = '{app}'"
            )) == 0
        });
        // Idle for less than IDLE_CHECK_AFTER (a read would not check
        // it), more than WRITE_CHECK_AFTER.
        thread::sleep(WRITE_CHECK_AFTER + Duration::from_millis(50));
        s.put("k", format!("{round}b").as_bytes()).unwrap();
        assert_eq!(s.get("k").unwrap(), Some(format!("{round}b").into_bytes()));
    }
}
