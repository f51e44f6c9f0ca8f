//! `transitd operator snapshot save|restore` on SQLite stores, and a
//! PostgreSQL store brought back from `pg_dump` output. PostgreSQL must be
//! there (127.0.0.1:5432): that test fails, never skips.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use transitd_test_support::b64;

use crate::config_files::{Database, psql};
use crate::node::{BIN, Node, Site};

fn snapshot(args: &[&str], site: &Site) -> Output {
    Command::new(BIN)
        .args(["operator", "snapshot"])
        .args(&args[..1])
        .arg(format!("-config={}", site.config().display()))
        .args(&args[1..])
        .stdin(Stdio::null())
        .output()
        .expect("run transitd")
}

fn succeeded(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn failed(out: &Output) -> String {
    assert!(
        !out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn save(site: &Site, file: &Path) {
    succeeded(&snapshot(&["save", &file.display().to_string()], site));
}

fn restore(site: &Site, file: &Path) -> String {
    succeeded(&snapshot(&["restore", &file.display().to_string()], site))
}

fn decrypts(node: &Node, token: &str, key: &str, plaintext: &str, ciphertext: &str) -> bool {
    let (status, body) = node.call(
        "POST",
        &format!("transit/decrypt/{key}"),
        Some(token),
        Some(json!({ "ciphertext": ciphertext })),
    );
    status == 200 && body["data"]["plaintext"] == json!(plaintext)
}

fn key_names(node: &Node, token: &str) -> Vec<String> {
    let (status, body) = node.call("GET", "transit/keys?list=true", Some(token), None);
    assert_eq!(status, 200, "{body}");
    body["data"]["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().to_owned())
        .collect()
}

/// The files of a directory, with their contents.
fn files_of(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| {
            let bytes = fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect()
}

struct Written {
    key: String,
    plaintext: String,
    ciphertext: String,
    acked: Instant,
}

#[test]
fn saved_under_write_load_restores_consistently_and_unseals_with_the_old_shares() {
    let site = Site::new("disable_mlock = true");
    let node = site.start();
    let (shares, root) = node.init(3, 2);
    node.unseal(&shares[..2]);
    let stop = AtomicBool::new(false);
    let written = Mutex::new(Vec::<Written>::new());
    let snapshot_file = site.dir.path().join("under-load.snap");
    let (started, ended) = std::thread::scope(|s| {
        // One writer, so that keys are created in order: a consistent copy
        // holds exactly the first n of them.
        s.spawn(|| {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let key = format!("snapshot-key-{i:05}");
                let plaintext = b64(format!("secret number {i} of the load").as_bytes());
                let (status, body) = node.call(
                    "POST",
                    &format!("transit/encrypt/{key}"),
                    Some(&root),
                    Some(json!({ "plaintext": plaintext })),
                );
                assert_eq!(status, 200, "{body}");
                let ciphertext = body["data"]["ciphertext"].as_str().unwrap().to_owned();
                written.lock().unwrap().push(Written {
                    key,
                    plaintext,
                    ciphertext,
                    acked: Instant::now(),
                });
            }
        });
        std::thread::sleep(Duration::from_millis(700));
        let started = Instant::now();
        save(&site, &snapshot_file);
        let ended = Instant::now();
        std::thread::sleep(Duration::from_millis(300));
        stop.store(true, Ordering::Relaxed);
        (started, ended)
    });
    node.stop();
    let written = written.into_inner().unwrap();
    let before = written.iter().filter(|w| w.acked < started).count();
    let during_or_after = written.iter().filter(|w| w.acked > ended).count();
    assert!(
        before > 0 && during_or_after > 0,
        "{before} before, {during_or_after} after"
    );

    // Sealed bytes only: no plaintext, key name or token in the file.
    let raw = fs::read(&snapshot_file).unwrap();
    let contains = |needle: &str| raw.windows(needle.len()).any(|w| w == needle.as_bytes());
    assert!(raw.starts_with(b"transitd-snapshot\n"));
    for w in &written {
        assert!(!contains(&w.key), "{} in the snapshot", w.key);
        assert!(!contains(&w.plaintext), "a plaintext in the snapshot");
    }
    assert!(!contains(&root), "the root token in the snapshot");

    // Onto another node that has its own store and its own shares.
    let other = Site::new("disable_mlock = true");
    let fresh = other.start();
    let (other_shares, _) = fresh.init(1, 1);
    fresh.unseal(&other_shares);
    fresh.stop();
    let out = restore(&other, &snapshot_file);
    assert!(out.contains("kept at"), "{out}");
    let restored = other.start();
    let (_, status) = restored.call("GET", "sys/seal-status", None, None);
    // The snapshot's seal: 2 of 3, unsealed with the old shares (another pair).
    assert_eq!(
        (status["t"].as_u64(), status["n"].as_u64()),
        (Some(2), Some(3)),
        "{status}"
    );
    restored.unseal(&[shares[2].clone(), shares[0].clone()]);

    let present = key_names(&restored, &root);
    // A point in time: the first n keys, no gaps, at least all acknowledged
    // before the save began, none acknowledged after it ended.
    let expected: Vec<String> = written[..present.len()]
        .iter()
        .map(|w| w.key.clone())
        .collect();
    assert_eq!(present, expected);
    assert!(
        present.len() >= before,
        "{} keys, {before} acknowledged before",
        present.len()
    );
    assert!(present.len() <= written.len() - during_or_after);
    for w in &written[..present.len()] {
        assert!(
            decrypts(&restored, &root, &w.key, &w.plaintext, &w.ciphertext),
            "{} does not decrypt its ciphertext",
            w.key
        );
    }
}

/// A stopped site with an initialised store, a key and a ciphertext; its shares.
fn stopped_site_with_data() -> (Site, Vec<String>, String) {
    let site = Site::new("disable_mlock = true");
    let node = site.start();
    let (shares, root) = node.init(1, 1);
    node.unseal(&shares);
    let (status, body) = node.call(
        "POST",
        "transit/encrypt/kept",
        Some(&root),
        Some(json!({ "plaintext": b64(b"kept") })),
    );
    assert_eq!(status, 200, "{body}");
    node.stop();
    (site, shares, root)
}

#[test]
fn damaged_snapshots_are_refused_and_change_nothing() {
    let (site, _, _) = stopped_site_with_data();
    let good = site.dir.path().join("good.snap");
    save(&site, &good);
    let bytes = fs::read(&good).unwrap();
    let mut flipped = bytes.clone();
    let middle = 70 + (bytes.len() - 70) / 2;
    flipped[middle] ^= 0x20;
    let mut magic = bytes.clone();
    magic[..6].copy_from_slice(b"SQLite");
    let cases: [(&str, &[u8], &str); 5] = [
        ("flipped.snap", &flipped, "checksum does not match"),
        (
            "truncated.snap",
            &bytes[..bytes.len() - 100],
            "truncated snapshot",
        ),
        ("header-only.snap", &bytes[..40], "truncated snapshot"),
        ("magic.snap", &magic, "wrong magic"),
        ("empty.snap", b"", "truncated snapshot"),
    ];
    let bad_dir = tempfile::tempdir().unwrap();
    for (name, content, why) in cases {
        let bad = bad_dir.path().join(name);
        fs::write(&bad, content).unwrap();
        let before = files_of(site.dir.path());
        let err = failed(&snapshot(&["restore", &bad.display().to_string()], &site));
        assert!(err.contains(why), "{name}: {err}");
        assert_eq!(files_of(site.dir.path()), before, "{name} changed the site");
    }
    // A plain SQLite file with a valid header around it is not a store.
    let other = tempfile::tempdir().unwrap();
    let foreign_db = other.path().join("foreign.db");
    rusqlite::Connection::open(&foreign_db)
        .unwrap()
        .execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
        .unwrap();
    let foreign = Site::with_storage(
        &format!(
            "storage \"sqlite\" {{\n  path = \"{}\"\n}}",
            foreign_db.display()
        ),
        "",
    );
    let out_dir = tempfile::tempdir().unwrap();
    let never = out_dir.path().join("never.snap");
    let err = failed(&snapshot(&["save", &never.display().to_string()], &foreign));
    assert!(err.contains("not a transitd store"), "{err}");
    assert!(
        files_of(out_dir.path()).is_empty(),
        "a file was left behind"
    );
}

#[test]
fn restore_is_refused_while_the_server_runs_and_the_server_while_a_restore_runs() {
    let (site, shares, root) = stopped_site_with_data();
    let file = site.dir.path().join("s.snap");
    save(&site, &file);
    let node = site.start();
    let err = failed(&snapshot(&["restore", &file.display().to_string()], &site));
    assert!(
        err.contains("is in use") && err.contains("stop the server"),
        "{err}"
    );
    node.unseal(&shares);
    let (status, _) = node.call("GET", "transit/keys/kept", Some(&root), None);
    assert_eq!(status, 200);
    node.stop();

    // A restore holds the lock exclusively: a server does not start under it.
    let lock = fs::File::open(format!("{}.lock", site.db().display())).unwrap();
    lock.lock().unwrap();
    let out = Command::new(BIN)
        .args(["server", &format!("-config={}", site.config().display())])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        log.contains("a snapshot restore is replacing this database"),
        "{log}"
    );
    drop(lock);
    restore(&site, &file);
}

/// Every entry of a SQLite store (WAL included), as SQLite reads it.
fn entries(db: &Path) -> BTreeMap<String, Vec<u8>> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let ok: String = conn
        .query_row("PRAGMA integrity_check", (), |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok");
    let mut stmt = conn.prepare("SELECT path, value FROM entries").unwrap();
    stmt.query_map((), |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[test]
fn kill_9_during_restore_leaves_the_old_database_or_the_new_one() {
    // The new content: another store.
    let (source, _, _) = stopped_site_with_data();
    let file = source.dir.path().join("new.snap");
    save(&source, &file);
    // The old one: killed under way, so its last writes are in the WAL.
    let site = Site::new("disable_mlock = true");
    let node = site.start();
    let (shares, root) = node.init(1, 1);
    node.unseal(&shares);
    for i in 0..20 {
        let (status, _) = node.call("POST", &format!("transit/keys/old-{i}"), Some(&root), None);
        assert_eq!(status, 200);
    }
    node.kill9();
    let wal = PathBuf::from(format!("{}-wal", site.db().display()));
    assert!(fs::metadata(&wal).unwrap().len() > 0, "no WAL to fold");
    // A snapshot of a crashed store holds what its WAL holds.
    let elsewhere = tempfile::tempdir().unwrap();
    let of_crashed = elsewhere.path().join("crashed.snap");
    save(&site, &of_crashed);
    let pristine = files_of(site.dir.path());
    let reset = || {
        for path in files_of(site.dir.path()).keys() {
            fs::remove_file(path).unwrap();
        }
        for (path, bytes) in &pristine {
            fs::write(path, bytes).unwrap();
        }
    };
    let old = {
        let copy = tempfile::tempdir().unwrap();
        for (path, bytes) in &pristine {
            fs::write(copy.path().join(path.file_name().unwrap()), bytes).unwrap();
        }
        entries(&copy.path().join("transitd.db"))
    };
    let content_of = |snapshot: &Path| {
        let scratch = tempfile::tempdir().unwrap();
        let db = scratch.path().join("content.db");
        // The content after the 70-byte header is the database file.
        fs::write(&db, &fs::read(snapshot).unwrap()[70..]).unwrap();
        entries(&db)
    };
    let new = content_of(&file);
    assert_ne!(old, new);
    assert_eq!(content_of(&of_crashed), old);

    let restore_cmd = || {
        Command::new(BIN)
            .args(["operator", "snapshot", "restore"])
            .arg(format!("-config={}", site.config().display()))
            .arg(&file)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    // How long a whole restore over the old database takes here: the
    // median of three.
    let mut took: Vec<Duration> = (0..3)
        .map(|_| {
            reset();
            let started = Instant::now();
            assert!(restore_cmd().wait().unwrap().success());
            started.elapsed()
        })
        .collect();
    took.sort();
    let whole = took[1];
    let (mut saw_old, mut saw_new, mut interrupted) = (0, 0, 0);
    let cycles = 30u32;
    for cycle in 0..cycles {
        reset();
        let mut child = restore_cmd();
        // Spread over twice a restore: some kills land before it starts,
        // some inside, some after it ended.
        std::thread::sleep(whole * 2 * cycle / cycles);
        let _ = child.kill();
        let _ = child.wait();
        let copy_left = files_of(site.dir.path()).keys().any(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(".transitd.db.restore-")
        });
        if copy_left {
            interrupted += 1;
        }
        let now = entries(&site.db());
        if now == old {
            saw_old += 1;
        } else if now == new {
            saw_new += 1;
        } else {
            panic!("cycle {cycle}: neither the old database nor the new one");
        }
        // Whatever was left behind, the restore can be run again, and it
        // clears a killed restore's copy.
        assert!(restore_cmd().wait().unwrap().success(), "cycle {cycle}");
        assert_eq!(entries(&site.db()), new, "cycle {cycle}");
        assert!(
            !files_of(site.dir.path()).keys().any(|p| p
                .file_name()
                .unwrap()
                .to_string_lossy()
                .contains(".restore-")),
            "cycle {cycle}: a copy was left"
        );
    }
    println!(
        "kill -9 during restore: {saw_old} old, {saw_new} new of {cycles}; \
         {interrupted} killed between starting the copy and renaming it"
    );
    // What the test is for: kills inside a restore, each leaving one state.
    assert!(interrupted > 0, "no kill landed inside a restore");
}

#[test]
fn a_postgresql_store_comes_back_from_pg_dump() {
    let _db = crate::cluster::database_lock();
    let database = Database::new();
    let url = format!(
        "postgres://postgres@127.0.0.1:5432/{}?sslmode=disable",
        database.0
    );
    let site = Site::with_storage(
        &format!("storage \"postgresql\" {{\n  connection_url = \"{url}\"\n}}"),
        "disable_mlock = true",
    );
    let node = site.start();
    let (shares, root) = node.init(3, 2);
    node.unseal(&shares[..2]);
    let mut kept = Vec::new();
    for version in 1..=3 {
        if version > 1 {
            let (status, _) = node.call("POST", "transit/keys/pg/rotate", Some(&root), None);
            assert_eq!(status, 200);
        }
        let plaintext = b64(format!("made with version {version}").as_bytes());
        let (status, body) = node.call(
            "POST",
            "transit/encrypt/pg",
            Some(&root),
            Some(json!({ "plaintext": plaintext })),
        );
        assert_eq!(status, 200, "{body}");
        kept.push((
            plaintext,
            body["data"]["ciphertext"].as_str().unwrap().to_owned(),
        ));
    }
    // Online: pg_dump reads one consistent snapshot while the node runs.
    let dump = site.dir.path().join("transitd.dump");
    let out = Command::new("pg_dump")
        .args(["-h", "127.0.0.1", "-U", "postgres", "-Fc", "-f"])
        .arg(&dump)
        .arg(&database.0)
        .output()
        .expect("pg_dump must be installed");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Written after the dump: lost by the restore.
    let (status, _) = node.call("POST", "transit/keys/after-dump", Some(&root), None);
    assert_eq!(status, 200);
    node.stop();

    psql(&format!("DROP DATABASE {} WITH (FORCE)", database.0));
    psql(&format!("CREATE DATABASE {}", database.0));
    let out = Command::new("pg_restore")
        .args(["-h", "127.0.0.1", "-U", "postgres", "--exit-on-error", "-d"])
        .arg(&database.0)
        .arg(&dump)
        .output()
        .expect("pg_restore must be installed");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let node = site.start();
    node.unseal(&[shares[1].clone(), shares[2].clone()]);
    let (status, body) = node.call("GET", "transit/keys/pg", Some(&root), None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["latest_version"], json!(3), "{body}");
    for (plaintext, ciphertext) in &kept {
        assert!(
            decrypts(&node, &root, "pg", plaintext, ciphertext),
            "{ciphertext}"
        );
    }
    assert_eq!(key_names(&node, &root), vec!["pg".to_owned()]);
    let _: Value = node.call("GET", "sys/seal-status", None, None).1;
    node.stop();
}

#[test]
fn restore_onto_a_new_machine_and_discard_the_old_database() {
    let (site, shares, root) = stopped_site_with_data();
    let file = site.dir.path().join("s.snap");
    save(&site, &file);
    // A machine that never ran transitd: no database yet.
    let fresh = Site::new("disable_mlock = true");
    assert!(!fresh.db().exists());
    let out = restore(&fresh, &file);
    assert!(!out.contains("kept at"), "{out}");
    let node = fresh.start();
    node.unseal(&shares);
    let (status, body) = node.call("GET", "transit/keys/kept", Some(&root), None);
    assert_eq!(status, 200, "{body}");
    node.stop();
    // Again, over the restored database, discarding it.
    let out = succeeded(&snapshot(
        &["restore", "-discard-old", &file.display().to_string()],
        &fresh,
    ));
    assert!(!out.contains("kept at"), "{out}");
    let names: Vec<String> = files_of(fresh.dir.path())
        .keys()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert!(
        !names.iter().any(|n| n.contains("pre-restore")),
        "{names:?}"
    );
    // Flags it does not know are refused, not ignored.
    let err = failed(&snapshot(
        &["restore", "-force", &file.display().to_string()],
        &fresh,
    ));
    assert!(err.contains("unknown flag -force"), "{err}");
    // A database path that is a symbolic link: the rename would replace the
    // link and leave the file it names as it was. Refused, nothing changed.
    let real = fresh.dir.path().join("real.db");
    fs::rename(fresh.db(), &real).unwrap();
    std::os::unix::fs::symlink(&real, fresh.db()).unwrap();
    let before = files_of(fresh.dir.path());
    let err = failed(&snapshot(&["restore", &file.display().to_string()], &fresh));
    assert!(err.contains("symbolic link"), "{err}");
    assert_eq!(files_of(fresh.dir.path()), before);
}
