//! Creating and migrating the schema, and the names and limits accepted.

use std::sync::Arc;
use std::thread;

use super::super::migrate::SCHEMA_VERSION;
use super::super::{MAX_MAX_PARALLEL, PostgresConfig, PostgresStorage, Storage, StorageError};
use super::support::{TEST_URL, TestSchema, unavailable};

#[test]
fn migration_is_idempotent_and_safe_when_nodes_start_together() {
    let schema = TestSchema::new();
    let barrier = Arc::new(std::sync::Barrier::new(3));
    let starts: Vec<_> = (0..3)
        .map(|_| {
            let config = schema.config();
            let barrier = Arc::clone(&barrier);
            thread::spawn(move || {
                barrier.wait();
                PostgresStorage::connect(&config)
            })
        })
        .collect();
    let nodes: Vec<PostgresStorage> = starts
        .into_iter()
        .map(|t| t.join().unwrap().unwrap())
        .collect();
    nodes[0].put("a", b"1").unwrap();
    assert_eq!(nodes[2].get("a").unwrap().as_deref(), Some(&b"1"[..]));
    let version = schema.admin_query_i64(format!(
        "SELECT version FROM \"{}\".transitd_schema_version",
        schema.name
    ));
    assert_eq!(version, SCHEMA_VERSION);
    let rows = schema.admin_query_i64(format!(
        "SELECT count(*) FROM \"{}\".transitd_schema_version",
        schema.name
    ));
    assert_eq!(rows, 1);
    // Connecting again changes nothing and keeps the data.
    drop(nodes);
    let again = schema.open();
    assert_eq!(again.get("a").unwrap().as_deref(), Some(&b"1"[..]));
    // The path column sorts bytewise whatever the database default.
    let collation = schema.admin_query_i64(format!(
        "SELECT count(*) FROM information_schema.columns WHERE table_schema = '{}' \
         AND table_name = 'transitd_entries' AND column_name = 'path' \
         AND collation_name = 'C'",
        schema.name
    ));
    assert_eq!(collation, 1);
}

#[test]
fn uses_an_existing_schema_and_creates_a_missing_one() {
    let schema = TestSchema::new();
    schema.admin(format!("CREATE SCHEMA \"{}\"", schema.name));
    let s = schema.open();
    s.put("x", b"y").unwrap();
    // Mixed case is kept (the name is always quoted).
    let mixed = TestSchema {
        name: format!(
            "Transitd_Test_{}",
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        ),
    };
    let m = mixed.open();
    assert_eq!(m.get("x").unwrap(), None);
    let exists = mixed.admin_query_i64(format!(
        "SELECT count(*) FROM pg_namespace WHERE nspname = '{}'",
        mixed.name
    ));
    assert_eq!(exists, 1);
}

#[test]
fn refuses_a_newer_schema() {
    let schema = TestSchema::new();
    drop(schema.open());
    schema.admin(format!(
        "UPDATE \"{}\".transitd_schema_version SET version = {}",
        schema.name,
        SCHEMA_VERSION + 1
    ));
    let err = PostgresStorage::connect(&schema.config()).unwrap_err();
    let StorageError::Corrupt(msg) = err else {
        panic!("expected Corrupt, got {err:?}");
    };
    assert!(
        msg.contains(&format!("version {}", SCHEMA_VERSION + 1)),
        "{msg}"
    );
    assert!(msg.contains(&format!("version {SCHEMA_VERSION}")), "{msg}");
    // Refusing changed nothing.
    let version = schema.admin_query_i64(format!(
        "SELECT version FROM \"{}\".transitd_schema_version",
        schema.name
    ));
    assert_eq!(version, SCHEMA_VERSION + 1);
}

#[test]
fn rejects_bad_schema_names_and_max_parallel() {
    for bad in [
        "",
        "1abc",
        "a-b",
        "a b",
        "a\"b",
        "pg_x",
        "PG_x",
        "é",
        &"s".repeat(55),
    ] {
        let config = PostgresConfig {
            schema: bad.to_owned(),
            ..PostgresConfig::new(TEST_URL)
        };
        let msg = unavailable(PostgresStorage::connect(&config));
        assert!(msg.starts_with("postgresql: "), "{msg}");
        assert!(msg.contains("schema name"), "{bad:?}: {msg}");
    }
    for ok in ["public", "_x", "Transit_1", &"s".repeat(54)] {
        PostgresConfig::validate_schema(ok).unwrap();
    }
    for bad in [0, MAX_MAX_PARALLEL + 1] {
        let config = PostgresConfig {
            max_parallel: bad,
            ..PostgresConfig::new(TEST_URL)
        };
        let msg = unavailable(PostgresStorage::connect(&config));
        assert!(msg.contains("max_parallel"), "{msg}");
    }
}
