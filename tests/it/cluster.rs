//! Several transitd nodes on one PostgreSQL database (the machine's, at
//! 127.0.0.1:5432, in a fresh schema per test): shared keys, tokens and
//! policies, prompt propagation, no lost updates, and database outages.
//! PostgreSQL must be there: these tests fail, never skip, without it.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::node::{Node, Site};

pub const PG_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// Tests that stop the database must not overlap with the others.
pub static DATABASE: Mutex<()> = Mutex::new(());

pub(crate) fn database_lock() -> std::sync::MutexGuard<'static, ()> {
    DATABASE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A fresh schema, dropped when the test ends.
pub struct Schema(pub String);

impl Schema {
    pub fn new() -> Self {
        let name = format!("t_{}", uuid::Uuid::new_v4().simple());
        Self(name)
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        let _ = std::process::Command::new("psql")
            .args(["-h", "127.0.0.1", "-U", "postgres", "-d", "test", "-qc"])
            .arg(format!("DROP SCHEMA IF EXISTS {} CASCADE", self.0))
            .output();
    }
}

/// Node config: PostgreSQL storage in `schema`, the static seal so every node
/// unseals itself with the same key.
pub fn pg_site(schema: &Schema, key_file: &std::path::Path) -> Site {
    Site::with_storage(
        &format!(
            "storage \"postgresql\" {{\n  connection_url = \"{PG_URL}\"\n  schema = \"{}\"\n}}",
            schema.0
        ),
        &format!(
            "disable_mlock = true\nseal \"static\" {{\n  current_key_id = \"k1\"\n  current_key = \"file://{}\"\n}}",
            key_file.display()
        ),
    )
}

pub struct Cluster {
    pub nodes: Vec<Node>,
    pub root: String,
    _sites: Vec<Site>,
    _schema: Schema,
    _key_dir: tempfile::TempDir,
}

impl Cluster {
    pub fn start(n: usize) -> Self {
        let schema = Schema::new();
        let key_dir = tempfile::tempdir().unwrap();
        let key_file = key_dir.path().join("unseal.key");
        std::fs::write(&key_file, [42u8; 32]).unwrap();
        let sites: Vec<Site> = (0..n).map(|_| pg_site(&schema, &key_file)).collect();
        let first = sites[0].start();
        let (_, root) = first.init(1, 1);
        let mut nodes = vec![first];
        nodes.extend(sites[1..].iter().map(Site::start));
        for node in &nodes {
            let (_, status) = node.call("GET", "sys/seal-status", None, None);
            assert_eq!(status["sealed"], json!(false), "{status}");
            assert_eq!(status["storage_type"], json!("postgresql"));
        }
        Self {
            nodes,
            root,
            _sites: sites,
            _schema: schema,
            _key_dir: key_dir,
        }
    }

    pub fn call(&self, i: usize, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        self.nodes[i].call(method, path, Some(&self.root), body)
    }
}

/// Poll until `check` holds; the time it took.
/// Wait for `check` (a change made on another node) for up to `limit`:
/// nodes never reload on a timer, so a change seen at all came by its
/// notification. How long it took is returned (and printed), not asserted:
/// latency is a measurement, not a pass/fail condition on a shared machine.
pub(crate) fn within(limit: Duration, what: &str, mut check: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    loop {
        if check() {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < limit,
            "{what}: still not seen after {:?}",
            start.elapsed()
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Longest wait for a change to reach another node.
pub(crate) const PROPAGATION_WAIT: Duration = Duration::from_secs(5);

fn latest(c: &Cluster, node: usize, key: &str) -> Option<u64> {
    let (status, body) = c.call(node, "GET", &format!("transit/keys/{key}"), None);
    (status == 200).then(|| body["data"]["latest_version"].as_u64().unwrap())
}

#[test]
fn changes_on_one_node_reach_the_others() {
    let _db = database_lock();
    let c = Cluster::start(3);
    let limit = PROPAGATION_WAIT;
    let mut worst = Duration::ZERO;

    assert_eq!(
        c.call(0, "POST", "transit/keys/shared", Some(json!({}))).0,
        200
    );
    for b in 1..3 {
        worst = worst.max(within(limit, "created key", || {
            latest(&c, b, "shared") == Some(1)
        }));
    }
    assert_eq!(c.call(1, "POST", "transit/keys/shared/rotate", None).0, 200);
    for b in [0, 2] {
        worst = worst.max(within(limit, "rotation", || {
            latest(&c, b, "shared") == Some(2)
        }));
    }
    let (status, _) = c.call(2, "POST", "transit/keys/shared/config", Some(json!({ "min_decryption_version": 2, "min_encryption_version": 2, "deletion_allowed": true })));
    assert_eq!(status, 200);
    for b in [0, 1] {
        worst = worst.max(within(limit, "config", || {
            c.call(b, "GET", "transit/keys/shared", None).1["data"]["min_decryption_version"]
                == json!(2)
        }));
    }
    let (status, body) = c.call(
        0,
        "POST",
        "transit/keys/shared/trim",
        Some(json!({ "min_available_version": 2 })),
    );
    assert_eq!(status, 200, "{body}");
    for b in [1, 2] {
        worst = worst.max(within(limit, "trim", || {
            c.call(b, "GET", "transit/keys/shared", None).1["data"]["min_available_version"]
                == json!(2)
        }));
    }
    assert_eq!(c.call(1, "DELETE", "transit/keys/shared", None).0, 204);
    for b in [0, 2] {
        worst = worst.max(within(limit, "delete", || {
            latest(&c, b, "shared").is_none()
        }));
    }

    // Tokens and policies too.
    let (_, created) = c.call(
        0,
        "POST",
        "auth/token/create",
        Some(json!({ "policies": ["p"] })),
    );
    let token = created["auth"]["client_token"].as_str().unwrap().to_owned();
    for b in [1, 2] {
        worst = worst.max(within(limit, "token", || {
            c.nodes[b]
                .call("GET", "auth/token/lookup-self", Some(&token), None)
                .0
                == 200
        }));
    }
    assert_eq!(
        c.call(
            2,
            "POST",
            "auth/token/revoke",
            Some(json!({ "token": token }))
        )
        .0,
        204
    );
    for b in [0, 1] {
        worst = worst.max(within(limit, "revocation", || {
            c.nodes[b]
                .call("GET", "auth/token/lookup-self", Some(&token), None)
                .0
                == 403
        }));
    }
    let policy = r#"path "transit/encrypt/*" { capabilities = ["update"] }"#;
    assert_eq!(
        c.call(
            1,
            "POST",
            "sys/policies/acl/p",
            Some(json!({ "policy": policy }))
        )
        .0,
        204
    );
    for b in [0, 2] {
        worst = worst.max(within(limit, "policy", || {
            c.call(b, "GET", "sys/policies/acl/p", None).0 == 200
        }));
    }
    assert_eq!(
        c.call(
            0,
            "POST",
            "sys/mounts/other",
            Some(json!({ "type": "transit" }))
        )
        .0,
        204
    );
    for b in [1, 2] {
        worst = worst.max(within(limit, "mount", || {
            c.call(b, "POST", "other/keys/k", Some(json!({}))).0 == 200
        }));
    }
    // Login methods: a user made on one node logs in on the others.
    assert_eq!(
        c.call(
            0,
            "POST",
            "sys/auth/userpass",
            Some(json!({ "type": "userpass" }))
        )
        .0,
        204
    );
    assert_eq!(
        c.call(
            0,
            "POST",
            "auth/userpass/users/ann",
            Some(json!({ "password": "pw-ann", "token_policies": "p" }))
        )
        .0,
        204
    );
    for b in [1, 2] {
        worst = worst.max(within(limit, "userpass user", || {
            c.call(b, "GET", "auth/userpass/users/ann", None).0 == 200
        }));
        let (status, login) = c.nodes[b].call(
            "POST",
            "auth/userpass/login/ann",
            None,
            Some(json!({ "password": "pw-ann" })),
        );
        assert_eq!(status, 200, "{login}");
    }
    // Audit devices: enabled once, every node writes its own file.
    let (status, body) = c.call(
        1,
        "POST",
        "sys/audit/file",
        Some(json!({ "type": "file", "options": { "file_path": "audit.log" } })),
    );
    assert_eq!(status, 204, "{body}");
    for (i, site) in c._sites.iter().enumerate() {
        let log = site.dir.path().join("audit.log");
        worst = worst.max(within(limit, "audit device", || {
            c.call(i, "GET", "sys/audit", None);
            std::fs::read_to_string(&log).is_ok_and(|l| l.contains("\"path\":\"sys/audit\""))
        }));
        let out = std::process::Command::new(crate::node::BIN)
            .args(["audit", "verify", &log.display().to_string()])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    println!("cluster: slowest propagation {worst:?}");

    // Seal state is per node.
    assert_eq!(c.call(0, "POST", "sys/seal", None).0, 204);
    assert_eq!(c.call(0, "GET", "transit/keys/k", None).0, 503);
    assert_eq!(c.call(1, "POST", "transit/keys/k2", Some(json!({}))).0, 200);
}

#[test]
fn a_ciphertext_from_a_newer_version_never_fails_on_a_lagging_node() {
    let _db = database_lock();
    let c = Cluster::start(2);
    assert_eq!(
        c.call(0, "POST", "transit/keys/lag", Some(json!({}))).0,
        200
    );
    within(PROPAGATION_WAIT, "key", || latest(&c, 1, "lag") == Some(1));
    for round in 0..30 {
        assert_eq!(c.call(0, "POST", "transit/keys/lag/rotate", None).0, 200);
        // Straight away, before any notification can have arrived.
        let (_, enc) = c.call(
            0,
            "POST",
            "transit/encrypt/lag",
            Some(json!({ "plaintext": "aGk=" })),
        );
        let ct = enc["data"]["ciphertext"].as_str().unwrap().to_owned();
        assert!(ct.starts_with(&format!("vault:v{}:", round + 2)));
        let (status, dec) = c.call(
            1,
            "POST",
            "transit/decrypt/lag",
            Some(json!({ "ciphertext": ct })),
        );
        assert_eq!(
            (status, dec["data"]["plaintext"].clone()),
            (200, json!("aGk=")),
            "round {round}"
        );
        let (status, _) = c.call(
            1,
            "POST",
            "transit/rewrap/lag",
            Some(json!({ "ciphertext": ct })),
        );
        assert_eq!(status, 200);
    }
}

#[test]
fn concurrent_rotations_across_nodes_never_lose_one() {
    let _db = database_lock();
    let c = Cluster::start(3);
    assert_eq!(
        c.call(0, "POST", "transit/keys/busy", Some(json!({}))).0,
        200
    );
    within(PROPAGATION_WAIT, "key", || {
        (1..3).all(|b| latest(&c, b, "busy") == Some(1))
    });
    let per_node = 20;
    let successes = std::sync::atomic::AtomicU64::new(0);
    let refused = std::sync::atomic::AtomicU64::new(0);
    std::thread::scope(|s| {
        for node in 0..3 {
            for _ in 0..2 {
                let (c, successes, refused) = (&c, &successes, &refused);
                s.spawn(move || {
                    for _ in 0..per_node / 2 {
                        match c.call(node, "POST", "transit/keys/busy/rotate", None) {
                            (200, _) => successes.fetch_add(1, std::sync::atomic::Ordering::SeqCst),
                            (503, _) => refused.fetch_add(1, std::sync::atomic::Ordering::SeqCst),
                            (status, body) => panic!("rotate answered {status}: {body}"),
                        };
                    }
                });
            }
        }
    });
    let successes = successes.into_inner();
    let expected = 1 + successes;
    println!(
        "cluster: {successes} rotations acknowledged, {} refused as retryable",
        refused.into_inner()
    );
    assert!(successes > 0);
    for node in 0..3 {
        within(PROPAGATION_WAIT, "final version", || {
            latest(&c, node, "busy") == Some(expected)
        });
    }
}

#[test]
fn a_database_outage_keeps_crypto_up_refuses_writes_and_recovers() {
    let _db = database_lock();
    let c = Cluster::start(2);
    assert_eq!(c.call(0, "POST", "transit/keys/up", Some(json!({}))).0, 200);
    within(PROPAGATION_WAIT, "key", || latest(&c, 1, "up") == Some(1));
    let (_, enc) = c.call(
        0,
        "POST",
        "transit/encrypt/up",
        Some(json!({ "plaintext": "aGk=" })),
    );
    let ct = enc["data"]["ciphertext"].as_str().unwrap().to_owned();
    // Encryption is counted against blocks reserved in the database: a node
    // encrypts through an outage on the block it holds (README, "Usage limits").
    assert_eq!(
        c.call(
            1,
            "POST",
            "transit/encrypt/up",
            Some(json!({ "plaintext": "aGk=" }))
        )
        .0,
        200
    );

    let pg = |action: &str| {
        let out = std::process::Command::new("pg_ctlcluster")
            .args(["15", "main", action])
            .output()
            .expect("pg_ctlcluster");
        assert!(
            out.status.success(),
            "pg_ctlcluster {action}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    pg("stop");
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        for node in 0..2 {
            let (status, dec) = c.call(
                node,
                "POST",
                "transit/decrypt/up",
                Some(json!({ "ciphertext": ct })),
            );
            assert_eq!(
                (status, dec["data"]["plaintext"].clone()),
                (200, json!("aGk="))
            );
            let (status, _) = c.call(
                node,
                "POST",
                "transit/encrypt/up",
                Some(json!({ "plaintext": "aGk=" })),
            );
            assert_eq!(status, 200);
            let (status, _) = c.call(
                node,
                "POST",
                "transit/hmac/up",
                Some(json!({ "input": "aGk=" })),
            );
            assert_eq!(status, 200);
            // A key read answers from the cache, without the counts.
            let (status, key) = c.call(node, "GET", "transit/keys/up", None);
            assert_eq!(status, 200, "{key}");
            assert!(key["data"].get("encryption_counts").is_none(), "{key}");
            assert!(
                key["warnings"][0].as_str().unwrap().contains("unavailable"),
                "{key}"
            );
            let (status, body) = c.call(node, "POST", "transit/keys/up/rotate", None);
            assert_eq!(status, 503, "{body}");
            assert!(
                body["errors"][0].as_str().unwrap().contains("storage"),
                "{body}"
            );
        }
    }));
    pg("start");
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
    // Back without a restart: writes work again and reach the other node.
    let start = Instant::now();
    loop {
        let (status, _) = c.call(0, "POST", "transit/keys/up/rotate", None);
        if status == 200 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "writes did not recover"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    within(Duration::from_secs(5), "recovered notifications", || {
        latest(&c, 1, "up") == Some(2)
    });
}

/// Storage shared by two in-process "nodes" that never hear of each other's
/// changes: only the version check on decrypt can keep them right.
#[derive(Debug)]
struct SilentlyShared(std::sync::Arc<transitd::storage::MemoryStorage>);

impl transitd::storage::Storage for SilentlyShared {
    fn kind(&self) -> &'static str {
        "inmem"
    }
    fn is_shared(&self) -> bool {
        true
    }
    fn get(&self, path: &str) -> transitd::storage::StorageResult<Option<Vec<u8>>> {
        self.0.get(path)
    }
    fn put(&self, path: &str, value: &[u8]) -> transitd::storage::StorageResult<()> {
        self.0.put(path, value)
    }
    fn delete(&self, path: &str) -> transitd::storage::StorageResult<()> {
        self.0.delete(path)
    }
    fn list(&self, prefix: &str) -> transitd::storage::StorageResult<Vec<String>> {
        self.0.list(prefix)
    }
    fn compare_and_swap(
        &self,
        path: &str,
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> transitd::storage::StorageResult<bool> {
        self.0.compare_and_swap(path, expected, new)
    }
}

/// Two in-process nodes over one `SilentlyShared` store; A is initialized
/// (root token "root") and unsealed, B is left sealed; the unseal share.
fn silent_pair() -> (
    std::sync::Arc<transitd::AppState>,
    std::sync::Arc<transitd::AppState>,
    String,
) {
    use std::sync::Arc;
    let memory = Arc::new(transitd::storage::MemoryStorage::new());
    let node = || {
        Arc::new(transitd::AppState::new(
            Arc::new(SilentlyShared(Arc::clone(&memory))),
            transitd::seal::SealKind::Shamir,
            transitd::Limits::default(),
            "c".to_owned(),
        ))
    };
    let (a, b) = (node(), node());
    let init = a
        .initialize(transitd::seal::InitParams::shares(1, 1), Some("root"))
        .unwrap();
    let share = hex::encode(init.shares[0].as_slice());
    assert!(a.unseal(&share).unwrap());
    (a, b, share)
}

#[tokio::test]
async fn a_node_that_missed_every_notification_still_decrypts_and_rotates_right() {
    let (a, b, share) = silent_pair();
    assert!(b.unseal(&share).unwrap());
    let (a, b) = (
        crate::support::TestApp::from_state(a, "root"),
        crate::support::TestApp::from_state(b, "root"),
    );
    a.write("transit/keys/k", json!({})).await.ok();
    for round in 0..3 {
        a.write("transit/keys/k/rotate", json!({})).await.ok();
        let ct = a
            .write("transit/encrypt/k", json!({ "plaintext": "aGk=" }))
            .await
            .ok()
            .body["data"]["ciphertext"]
            .as_str()
            .unwrap()
            .to_owned();
        let dec = b
            .write("transit/decrypt/k", json!({ "ciphertext": ct }))
            .await
            .ok();
        assert_eq!(
            dec.body["data"]["plaintext"],
            json!("aGk="),
            "round {round}"
        );
        // B rotates from what storage holds, not from its stale cache.
        let rotated = b.write("transit/keys/k/rotate", json!({})).await.ok();
        assert_eq!(rotated.body["data"]["latest_version"], json!(2 * round + 3));
    }
}

#[tokio::test]
async fn every_reader_on_a_node_that_missed_every_notification_gets_the_new_key() {
    let (a, b, share) = silent_pair();
    assert!(b.unseal(&share).unwrap());
    let (a, b) = (
        crate::support::TestApp::from_state(a, "root"),
        crate::support::TestApp::from_state(b, "root"),
    );
    let data = |r: &crate::support::Reply, f: &str| r.body["data"][f].as_str().unwrap().to_owned();
    // Keys B has never heard of: signing, HMAC and data keys find them.
    a.write("transit/keys/s", json!({ "type": "ed25519" }))
        .await
        .ok();
    a.write("transit/keys/h", json!({})).await.ok();
    b.write("transit/sign/s", json!({ "input": "aGk=" }))
        .await
        .ok();
    b.write("transit/hmac/h", json!({ "input": "aGk=" }))
        .await
        .ok();
    b.write("transit/datakey/plaintext/h", json!({})).await.ok();
    // Versions B has not heard of: verification reads the key again.
    for round in 0..2 {
        a.write("transit/keys/s/rotate", json!({})).await.ok();
        a.write("transit/keys/h/rotate", json!({})).await.ok();
        let sig = data(
            &a.write("transit/sign/s", json!({ "input": "aGk=" }))
                .await
                .ok(),
            "signature",
        );
        assert!(sig.starts_with(&format!("vault:v{}:", round + 2)), "{sig}");
        let mac = data(
            &a.write("transit/hmac/h", json!({ "input": "aGk=" }))
                .await
                .ok(),
            "hmac",
        );
        let verified = b
            .write(
                "transit/verify/s",
                json!({ "input": "aGk=", "signature": sig }),
            )
            .await
            .ok();
        assert_eq!(verified.body["data"]["valid"], json!(true), "round {round}");
        let verified = b
            .write(
                "transit/verify/h",
                json!({ "batch_input": [{ "input": "aGk=", "hmac": mac }] }),
            )
            .await
            .ok();
        assert_eq!(
            verified.body["data"]["batch_results"][0]["valid"],
            json!(true),
            "round {round}"
        );
    }
}

/// Review findings, in-process with two nodes that hear nothing of each other:
/// writes start from storage, so a stale node neither resurrects a revoked
/// token nor erases another node's mount.
#[tokio::test]
async fn a_stale_node_never_undoes_another_nodes_write() {
    let (a, b, share) = silent_pair();
    let a = crate::support::TestApp::from_state(a, "root");
    let limited = a
        .write("auth/token/create", json!({ "num_uses": 5 }))
        .await
        .ok();
    let limited = limited.body["auth"]["client_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(b.unseal(&share).unwrap());
    let b = crate::support::TestApp::from_state(b, "root");

    a.write("auth/token/revoke", json!({ "token": limited }))
        .await
        .expect(204);
    // B still has the token cached; using it must not write it back.
    b.as_token(Some(&limited))
        .read("auth/token/lookup-self")
        .await
        .expect(403);
    a.as_token(Some(&limited))
        .read("auth/token/lookup-self")
        .await
        .expect(403);

    a.write("sys/mounts/m1", json!({ "type": "transit" }))
        .await
        .expect(204);
    // B's cached table has no m1; its edit must keep it.
    b.write("sys/mounts/m2", json!({ "type": "transit" }))
        .await
        .expect(204);
    let mounts = b.read("sys/mounts").await.ok();
    assert!(mounts.body["data"].get("m1/").is_some(), "{}", mounts.body);
    assert!(mounts.body["data"].get("m2/").is_some());
}

/// A limited AppRole secret ID is counted in the shared storage: logins fired
/// at all nodes at once get exactly its uses, whichever nodes they reach.
#[test]
fn a_limited_secret_id_grants_exactly_its_uses_across_nodes() {
    let _db = database_lock();
    let c = Cluster::start(3);
    let (status, body) = c.call(
        0,
        "POST",
        "sys/auth/approle",
        Some(json!({ "type": "approle" })),
    );
    assert_eq!(status, 204, "{body}");
    for (uses, attempts) in [(1u64, 3usize), (3, 9)] {
        let role = format!("uses{uses}");
        let (status, body) = c.call(
            0,
            "POST",
            &format!("auth/approle/role/{role}"),
            Some(json!({ "secret_id_num_uses": uses })),
        );
        assert_eq!(status, 204, "{body}");
        let (_, body) = c.call(0, "GET", &format!("auth/approle/role/{role}/role-id"), None);
        let role_id = body["data"]["role_id"].as_str().unwrap().to_owned();
        // Issued on another node, once it has heard of the role (the API
        // checks the role in the node's cache first).
        within(PROPAGATION_WAIT, "role", || {
            c.call(1, "GET", &format!("auth/approle/role/{role}"), None)
                .0
                == 200
        });
        let (status, body) = c.call(
            1,
            "POST",
            &format!("auth/approle/role/{role}/secret-id"),
            None,
        );
        assert_eq!(status, 200, "{body}");
        let secret_id = body["data"]["secret_id"].as_str().unwrap().to_owned();
        let accessor = body["data"]["secret_id_accessor"]
            .as_str()
            .unwrap()
            .to_owned();
        let lookup = |node: usize| {
            c.call(
                node,
                "POST",
                &format!("auth/approle/role/{role}/secret-id-accessor/lookup"),
                Some(json!({ "secret_id_accessor": accessor })),
            )
            .0
        };
        // Every node has it cached with all its uses before the race.
        for node in 0..3 {
            within(PROPAGATION_WAIT, "secret ID", || lookup(node) == 200);
        }
        let start = std::sync::Barrier::new(attempts);
        let outcomes: Vec<(u16, Value)> = std::thread::scope(|s| {
            let threads: Vec<_> = (0..attempts)
                .map(|i| {
                    let (c, start, role_id, secret_id) = (&c, &start, &role_id, &secret_id);
                    s.spawn(move || {
                        start.wait();
                        c.nodes[i % 3].call(
                            "POST",
                            "auth/approle/login",
                            None,
                            Some(json!({ "role_id": role_id, "secret_id": secret_id })),
                        )
                    })
                })
                .collect();
            threads.into_iter().map(|t| t.join().unwrap()).collect()
        });
        let granted = outcomes.iter().filter(|(status, _)| *status == 200).count();
        for (status, body) in &outcomes {
            if *status != 200 {
                assert_eq!(
                    (*status, &body["errors"][0]),
                    (400, &json!("invalid role or secret ID")),
                    "{body}"
                );
            }
        }
        println!("cluster: {uses}-use secret ID, {attempts} concurrent logins, {granted} granted");
        let statuses: Vec<u16> = outcomes.iter().map(|(status, _)| *status).collect();
        assert_eq!(granted, uses as usize, "{statuses:?}");
        // Used up everywhere, and refused on every node afterwards.
        for node in 0..3 {
            within(PROPAGATION_WAIT, "used-up secret ID", || {
                lookup(node) == 404
            });
            let (status, _) = c.nodes[node].call(
                "POST",
                "auth/approle/login",
                None,
                Some(json!({ "role_id": role_id, "secret_id": secret_id })),
            );
            assert_eq!(status, 400);
        }
    }
}
