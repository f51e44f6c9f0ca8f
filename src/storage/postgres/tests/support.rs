//! What the tests share: the test database and schema, a proxy that plays an
//! outage, and checks of what the storage reported.

use std::fmt;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use ::postgres::{Client, NoTls};

use super::super::pool::lock;
use super::super::{Change, PostgresConfig, PostgresStorage, Storage, StorageError, StorageResult};

/// The test database: a real PostgreSQL. Tests fail (not skip) without it.
pub(super) const TEST_URL: &str = "host=127.0.0.1 user=postgres dbname=test";

/// A fresh schema, dropped at the end of the test even if it fails. Tests
/// elsewhere in the crate use it for state over a real shared database.
pub(crate) struct TestSchema {
    pub(super) name: String,
}

impl TestSchema {
    pub(crate) fn new() -> Self {
        let id = uuid::Uuid::new_v4().simple().to_string();
        Self {
            name: format!("transitd_test_{}", &id[..16]),
        }
    }

    pub(super) fn config(&self) -> PostgresConfig {
        self.config_for(TEST_URL)
    }

    pub(super) fn config_for(&self, url: &str) -> PostgresConfig {
        PostgresConfig {
            schema: self.name.clone(),
            ..PostgresConfig::new(url)
        }
    }

    pub(crate) fn open(&self) -> PostgresStorage {
        PostgresStorage::connect(&self.config()).unwrap()
    }

    /// Run SQL as the administrator, from a thread of its own (the sync
    /// driver cannot run inside a test's tokio runtime).
    pub(super) fn admin(&self, sql: String) {
        thread::spawn(move || {
            let mut c = Client::connect(TEST_URL, NoTls).unwrap();
            c.batch_execute(&sql).unwrap();
        })
        .join()
        .unwrap();
    }

    pub(super) fn admin_query_i64(&self, sql: String) -> i64 {
        thread::spawn(move || {
            let mut c = Client::connect(TEST_URL, NoTls).unwrap();
            c.query_one(&sql, &[]).unwrap().get::<_, i64>(0)
        })
        .join()
        .unwrap()
    }
}

impl Drop for TestSchema {
    fn drop(&mut self) {
        let sql = format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.name);
        let _ = thread::spawn(move || {
            if let Ok(mut c) = Client::connect(TEST_URL, NoTls) {
                let _ = c.batch_execute(&sql);
            }
        })
        .join();
    }
}

/// After an interruption the feed first asks for a resync, then reports
/// other instances' writes (here: `direct` writing `path`) as before.
pub(super) fn resync_then_paths(
    changes: &mpsc::Receiver<Change>,
    direct: &PostgresStorage,
    path: &str,
) {
    assert_eq!(
        changes.recv_timeout(Duration::from_secs(5)),
        Ok(Change::Resync)
    );
    direct.put(path, b"1").unwrap();
    assert_eq!(
        changes.recv_timeout(Duration::from_secs(1)),
        Ok(Change::Path(path.to_owned()))
    );
}

pub(super) fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

pub(super) fn unavailable(r: StorageResult<PostgresStorage>) -> String {
    match r {
        Err(StorageError::Unavailable(m)) => m,
        Err(e) => panic!("expected Unavailable, got {e:?}"),
        Ok(s) => panic!("expected Unavailable, got {s:?}"),
    }
}

/// A TCP proxy to the test server that can be cut and restored, to play
/// a database outage.
pub(super) struct Proxy {
    port: u16,
    up: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<TcpStream>>>,
    acceptor: Option<thread::JoinHandle<()>>,
    /// How long a new connection waits before it reaches the server: a
    /// slow connect.
    delay: Arc<Mutex<Duration>>,
}

impl Proxy {
    pub(super) fn start() -> Self {
        let mut proxy = Self {
            port: 0,
            up: Arc::new(AtomicBool::new(false)),
            conns: Arc::new(Mutex::new(Vec::new())),
            acceptor: None,
            delay: Arc::new(Mutex::new(Duration::ZERO)),
        };
        proxy.resume();
        proxy
    }

    pub(super) fn resume(&mut self) {
        let listener = TcpListener::bind(("127.0.0.1", self.port)).unwrap();
        self.port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        self.up.store(true, Ordering::SeqCst);
        let up = Arc::clone(&self.up);
        let conns = Arc::clone(&self.conns);
        let delay = Arc::clone(&self.delay);
        self.acceptor = Some(thread::spawn(move || {
            while up.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((client, _)) => {
                        client.set_nonblocking(false).unwrap();
                        lock(&conns).push(client.try_clone().unwrap());
                        let conns = Arc::clone(&conns);
                        let delay = *lock(&delay);
                        thread::spawn(move || {
                            thread::sleep(delay);
                            let Ok(server) = TcpStream::connect("127.0.0.1:5432") else {
                                return;
                            };
                            lock(&conns).push(server.try_clone().unwrap());
                            for (mut from, mut to) in [
                                (client.try_clone().unwrap(), server.try_clone().unwrap()),
                                (server, client),
                            ] {
                                thread::spawn(move || {
                                    let _ = std::io::copy(&mut from, &mut to);
                                    let _ = to.shutdown(Shutdown::Both);
                                });
                            }
                        });
                    }
                    Err(_) => thread::sleep(Duration::from_millis(5)),
                }
            }
        }));
    }

    /// Stop accepting and cut every connection.
    pub(super) fn cut(&mut self) {
        self.up.store(false, Ordering::SeqCst);
        if let Some(a) = self.acceptor.take() {
            a.join().unwrap();
        }
        self.sever();
    }

    /// Cut the open connections, still accepting new ones: a connection
    /// lost in the middle of a statement, the server still reachable.
    pub(super) fn sever(&self) {
        for c in lock(&self.conns).drain(..) {
            let _ = c.shutdown(Shutdown::Both);
        }
    }

    pub(super) fn set_delay(&self, delay: Duration) {
        *lock(&self.delay) = delay;
    }

    pub(super) fn url(&self) -> String {
        format!(
            "host=127.0.0.1 port={} user=postgres dbname=test sslmode=disable",
            self.port
        )
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut();
    }
}

pub(super) fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let until = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < until, "timed out waiting until {what}");
        thread::sleep(Duration::from_millis(20));
    }
}

/// Sessions waiting for a lock on the schema's table.
pub(super) fn lock_waiters(schema: &TestSchema) -> i64 {
    schema.admin_query_i64(format!(
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' \
         AND query LIKE '%\"{}\".transitd_entries%'",
        schema.name
    ))
}

/// The row's version, 0 if missing.
pub(super) fn row_version(schema: &TestSchema, path: &str) -> i64 {
    schema.admin_query_i64(format!(
        "SELECT COALESCE((SELECT version FROM \"{}\".transitd_entries WHERE path = '{path}'), 0)",
        schema.name
    ))
}

/// An administrator's transaction holding the lock of the row at `path`,
/// until it ends.
pub(super) fn lock_row<'a>(
    admin: &'a mut Client,
    schema: &TestSchema,
    path: &str,
) -> ::postgres::Transaction<'a> {
    let mut tx = admin.transaction().unwrap();
    let locked = tx
        .execute(
            &format!(
                "SELECT 1 FROM \"{}\".transitd_entries WHERE path = $1 FOR UPDATE",
                schema.name
            ),
            &[&path],
        )
        .unwrap();
    assert_eq!(locked, 1);
    tx
}

pub(super) fn unavailable_msg<T: fmt::Debug>(r: StorageResult<T>) -> String {
    match r {
        Err(StorageError::Unavailable(m)) => m,
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

/// Paths reported by a feed within `wait`.
pub(super) fn paths_seen(changes: &mpsc::Receiver<Change>, wait: Duration) -> Vec<Change> {
    std::iter::from_fn(|| changes.recv_timeout(wait).ok()).collect()
}
