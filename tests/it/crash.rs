//! kill -9 under load, many times: every version and every ciphertext the
//! server acknowledged is there after the restart.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use crate::node::{Node, Site};

const CYCLES: usize = 50;

#[derive(Default)]
struct Acked {
    /// The highest `latest_version` of the key "crash" any reply showed.
    latest_version: u64,
    /// (plaintext, ciphertext) pairs the server returned.
    ciphertexts: Vec<(String, String)>,
    /// Keys whose creation was acknowledged.
    created: Vec<String>,
}

/// A tiny deterministic generator, so a failing run can be replayed.
fn next(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

fn load(node: &Node, root: &str, cycle: usize, stop: &AtomicBool, acked: &Mutex<Acked>) {
    std::thread::scope(|s| {
        // Rotates, and now and then creates a new key.
        s.spawn(|| {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                if n % 5 == 0 {
                    let name = format!("k-{cycle}-{n}");
                    if let Some((200, _)) =
                        node.try_call(&format!("transit/keys/{name}"), root, json!({}))
                    {
                        acked.lock().unwrap().created.push(name);
                    }
                }
                match node.try_call("transit/keys/crash/rotate", root, json!({})) {
                    Some((200, body)) => {
                        let v = body["data"]["latest_version"].as_u64().unwrap();
                        let mut a = acked.lock().unwrap();
                        a.latest_version = a.latest_version.max(v);
                    }
                    Some((status, body)) => panic!("rotate answered {status}: {body}"),
                    None => return,
                }
            }
        });
        for worker in 0..2 {
            s.spawn(move || {
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    let plaintext =
                        STANDARD.encode(format!("cycle {cycle} worker {worker} item {i}"));
                    match node.try_call(
                        "transit/encrypt/crash",
                        root,
                        json!({ "plaintext": plaintext }),
                    ) {
                        Some((200, body)) => {
                            let ct = body["data"]["ciphertext"].as_str().unwrap().to_owned();
                            acked.lock().unwrap().ciphertexts.push((plaintext, ct));
                        }
                        Some((status, body)) => panic!("encrypt answered {status}: {body}"),
                        None => return,
                    }
                }
            });
        }
    });
}

fn verify(node: &Node, root: &str, acked: &Acked) {
    let (status, key) = node.call("GET", "transit/keys/crash", Some(root), None);
    assert_eq!(status, 200, "{key}");
    let latest = key["data"]["latest_version"].as_u64().unwrap();
    assert!(
        latest >= acked.latest_version,
        "acknowledged version {} lost: the key is at {latest}",
        acked.latest_version
    );
    for chunk in acked.ciphertexts.chunks(500) {
        let batch: Vec<Value> = chunk
            .iter()
            .map(|(_, ct)| json!({ "ciphertext": ct }))
            .collect();
        let (status, body) = node.call(
            "POST",
            "transit/decrypt/crash",
            Some(root),
            Some(json!({ "batch_input": batch })),
        );
        assert_eq!(status, 200, "{body}");
        let results = body["data"]["batch_results"].as_array().unwrap();
        for ((plaintext, ct), r) in chunk.iter().zip(results) {
            assert_eq!(
                r["plaintext"].as_str(),
                Some(plaintext.as_str()),
                "{ct} did not decrypt: {r}"
            );
        }
    }
    let (_, list) = node.call("GET", "transit/keys?list=true", Some(root), None);
    let names: Vec<&str> = list["data"]["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for name in &acked.created {
        assert!(
            names.contains(&name.as_str()),
            "acknowledged key {name} lost"
        );
    }
}

#[test]
fn kill_9_under_load_loses_nothing_acknowledged() {
    crash_cycles(&Site::new("disable_mlock = true"), "sqlite");
}

#[test]
fn kill_9_under_load_loses_nothing_acknowledged_on_postgresql() {
    let _db = crate::cluster::DATABASE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let schema = crate::cluster::Schema::new();
    let site = Site::with_storage(
        &format!(
            "storage \"postgresql\" {{\n  connection_url = \"{}\"\n  schema = \"{}\"\n}}",
            crate::cluster::PG_URL,
            schema.0
        ),
        "disable_mlock = true",
    );
    crash_cycles(&site, "postgresql");
}

/// Run `load` (until its flag is set) and SIGKILL `node` after `kill_after`,
/// mid-flight: the load sees its connections drop.
pub(crate) fn kill_9_during(
    node: &Node,
    kill_after: Duration,
    load: impl FnOnce(&AtomicBool) + Send,
) {
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| load(&stop));
        std::thread::sleep(kill_after);
        let _ = std::process::Command::new("kill")
            .args(["-KILL", &node.pid().to_string()])
            .status();
        stop.store(true, Ordering::Relaxed);
    });
}

fn crash_cycles(site: &Site, storage: &str) {
    let node = site.start();
    let (keys, root) = node.init(1, 1);
    node.unseal(&keys);
    let (status, _) = node.call("POST", "transit/keys/crash", Some(&root), Some(json!({})));
    assert_eq!(status, 200);
    drop(node);

    let acked = Mutex::new(Acked::default());
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64 ^ u64::from(std::process::id());
    let started = Instant::now();
    for cycle in 0..CYCLES {
        let node = Arc::new(site.start());
        node.unseal(&keys);
        verify(&node, &root, &acked.lock().unwrap());
        let kill_after = Duration::from_millis(30 + next(&mut seed) % 300);
        kill_9_during(&node, kill_after, |stop| {
            load(&node, &root, cycle, stop, &acked)
        });
        drop(node);
    }
    let node = site.start();
    node.unseal(&keys);
    let acked = acked.into_inner().unwrap();
    verify(&node, &root, &acked);
    println!(
        "crash test ({storage}): {CYCLES} kill -9 cycles in {:.1}s, {} versions, {} ciphertexts, {} keys created, all intact",
        started.elapsed().as_secs_f64(),
        acked.latest_version,
        acked.ciphertexts.len(),
        acked.created.len()
    );
    assert!(
        acked.latest_version > CYCLES as u64,
        "the load did too little to mean anything"
    );
}
