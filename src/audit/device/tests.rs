//! Test fixtures for audit devices, shared with the tests of the broker,
//! the checker, the audit store and the request path's audit hook: sample
//! records, a file device's config, and devices on in-memory sinks.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use ring::signature::Ed25519KeyPair;
use serde_json::json;
use time::OffsetDateTime;

use super::{FileDevice, Sink};
use crate::audit::chain::Fields;
use crate::audit::format::{AuditRecord, AuthInfo, FormatOptions, Kind, RequestInfo, SaltKey};
use crate::audit::{DeviceConfig, generate_signing_key};

pub(crate) fn record(i: usize) -> AuditRecord {
    AuditRecord {
        kind: if i.is_multiple_of(2) {
            Kind::Request
        } else {
            Kind::Response
        },
        time: OffsetDateTime::now_utc(),
        auth: Some(AuthInfo {
            client_token: format!("s.token{i}"),
            token_type: "service".to_owned(),
            ..AuthInfo::default()
        }),
        request: RequestInfo {
            id: format!("req-{i}"),
            operation: "update".to_owned(),
            path: "transit/encrypt/k".to_owned(),
            client_token: format!("s.token{i}"),
            data: json!({"plaintext": format!("p{i}")}),
            ..RequestInfo::default()
        },
        response: None,
        error: None,
    }
}

pub(crate) fn file_config(path: &Path, key: &[u8], interval: u64) -> DeviceConfig {
    DeviceConfig {
        kind: "file".to_owned(),
        options: BTreeMap::from([
            ("file_path".to_owned(), path.display().to_string()),
            ("checkpoint_interval".to_owned(), interval.to_string()),
        ]),
        salt: b"salt-1".to_vec(),
        signing_key: key.to_vec(),
        checkpoints: None,
    }
}

pub(super) fn entry_seqs(path: &Path) -> Vec<u64> {
    fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| Fields::parse(l.as_bytes()).unwrap())
        .filter(|f| !f.is_checkpoint() && !f.is_header())
        .map(|f| f.seq.unwrap())
        .collect()
}

/// An in-memory log whose appends fail on demand; a failed append is
/// taken back, so the device stays usable.
#[derive(Clone, Default)]
pub(crate) struct MemoryLog {
    pub out: Arc<Mutex<Vec<u8>>>,
    /// How many of the next appends fail.
    pub fail_next: Arc<AtomicUsize>,
    pub appends: Arc<AtomicUsize>,
}

struct MemorySink {
    log: MemoryLog,
    good_len: usize,
}

impl Sink for MemorySink {
    fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        let mut out = self.log.out.lock().unwrap();
        let failing = self
            .log
            .fail_next
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        self.log.appends.fetch_add(1, Ordering::SeqCst);
        if failing {
            out.extend_from_slice(&bytes[..bytes.len() / 2]);
            return Err(io::Error::other("injected: disk full"));
        }
        out.extend_from_slice(bytes);
        self.good_len = out.len();
        Ok(())
    }
    fn rollback(&mut self) -> io::Result<()> {
        self.log.out.lock().unwrap().truncate(self.good_len);
        Ok(())
    }
}

impl MemoryLog {
    pub(crate) fn device(&self) -> FileDevice {
        test_device(
            Box::new(MemorySink {
                log: self.clone(),
                good_len: 0,
            }),
            1000,
        )
    }

    /// The entries written so far (header and checkpoints left out).
    pub(crate) fn entries(&self) -> Vec<serde_json::Value> {
        String::from_utf8(self.out.lock().unwrap().clone())
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .filter(|v| v["type"] == "request" || v["type"] == "response")
            .collect()
    }
}

pub(crate) fn test_device(sink: Box<dyn Sink>, interval: u64) -> FileDevice {
    let pkcs8 = generate_signing_key().unwrap();
    let key = Ed25519KeyPair::from_pkcs8(&pkcs8).unwrap();
    let hmac_key = SaltKey::new(b"salt");
    FileDevice::with_sink(
        "test".to_owned(),
        sink,
        key,
        hmac_key,
        FormatOptions::default(),
        interval,
    )
    .unwrap()
}

/// An anchor kept in memory, as the audit store keeps it sealed.
#[derive(Debug, Default)]
pub(crate) struct MemoryAnchor(Mutex<Option<crate::audit::chain::Start>>);

impl MemoryAnchor {
    pub(crate) fn shared() -> Arc<Self> {
        Arc::new(Self::default())
    }
}

impl super::CheckpointStore for MemoryAnchor {
    fn load(&self) -> Result<Option<crate::audit::chain::Start>, String> {
        Ok(*self.0.lock().unwrap())
    }

    fn save(&self, seq: u64, chain: &crate::audit::chain::Chain) -> Result<(), String> {
        *self.0.lock().unwrap() = Some(crate::audit::chain::Start { seq, chain: *chain });
        Ok(())
    }
}
