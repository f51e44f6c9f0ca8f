//! The audit log: Vault-shaped JSON entries, made tamper-evident.
//!
//! Entries have the shape of Vault's `file` audit device ([`format`]): one
//! JSON object per line, tokens and request/response data replaced by salted
//! HMACs (`hmac-sha256:<hex>`, the same values `sys/audit-hash` gives).
//! Beyond Vault, every line of a log is bound to the ones before it.
//!
//! # Line formats
//!
//! ```text
//! {"type":"header","version":1,"public_key":"<b64>","nonce":"<hex>","time":"<rfc3339>","seq":0,"chain":"<hex>"}
//! {"type":"header","version":1,"public_key":"<b64>","nonce":"<hex>","time":"<rfc3339>","prev_chain":"<hex>","seq":N,"chain":"<hex>"}
//! {"type":"checkpoint","seq":0,"chain":"<hex>","time":"<rfc3339>","signature":"<b64>"}
//! {"time":"..","type":"request","auth":{..},"request":{..},"seq":1,"chain":"<hex>"}
//! {"time":"..","type":"response","auth":{..},"request":{..},"response":{..},"error":"..","seq":2,"chain":"<hex>"}
//! ```
//!
//! * **Header** (first line of a new file, or of each stdout session): the raw
//!   Ed25519 public key that signs this file's checkpoints, and a random
//!   32-byte nonce so no two logs share a chain. A file that continues another
//!   (after rotation, or a file that vanished) has a header with the `seq` and
//!   chain the previous file ended with (`seq`, `prev_chain`); its entries go
//!   on from `seq + 1`, so the files of a log form one chain.
//! * **Chain**: every entry carries `seq` (1, 2, .. across the files of a log) and
//!   `chain = hex(SHA-256(previous chain, 32 raw bytes || body))`, where the
//!   body is the line's exact bytes without the final `,"chain":"…"` member
//!   (the rest of the object, closing brace included). The header's previous
//!   chain is 32 zero bytes, or `prev_chain`. Editing, removing, inserting or reordering any line
//!   breaks the chain at that point, and `seq` tells which of these it was.
//! * **Checkpoints**: every `checkpoint_interval` entries (default 1000), at
//!   most about a second after any entry, on a clean stop and right after the
//!   header, the device appends a line repeating
//!   the `seq`/`chain` of the entry before it, signed with the device's Ed25519
//!   key over `seq (8 bytes, big-endian) || chain (32 raw bytes)`. Checkpoint
//!   lines are not part of the chain. File devices also replace
//!   `<FILE>.checkpoint` (temporary file, fsync, rename, directory fsync) with
//!   the latest checkpoint line, once the batch that holds it is durable
//!   (synced: in `durability=background` mode, after the background sync), and
//!   the audit store keeps its `seq` and chain in sealed storage, per device
//!   and node (the *anchor*, `sys/audit-checkpoint/:path`).
//!
//! # What is caught, and what is not
//!
//! * Any change inside the file up to its last line: the chain.
//! * Lines cut off the end: the sidecar's signed checkpoint names a `seq` (and
//!   its chain) the file must still reach.
//! * The file cut back to an earlier checkpoint *and* the sidecar replaced by
//!   that (genuine, signed) earlier line: the anchor in sealed storage names a
//!   later `seq`; the device refuses to open (at unseal, loudly) and
//!   `transitd audit verify -checkpoint=SEQ:HEX` reports it.
//! * The whole file rewritten with a recomputed chain: the rewriter needs the
//!   signing key to sign checkpoints. Without it the old sidecar's signature
//!   fails against the new header's key; if sidecar and header are both
//!   replaced by a key of the attacker's, only a pinned public key
//!   (`transitd audit verify -public-key=…`) or the anchor tells.
//! * The file renamed, deleted or cut short while running: the writer
//!   notices before its next batch (or on `SIGHUP`) and continues the chain in
//!   a new file at the path; a file missing between two is reported by
//!   `verify`.
//! * A power failure: with `durability=fsync` (default) every acknowledged
//!   entry is synced. With `durability=background` the entries written since
//!   the last finished sync (at most `sync_interval` plus one sync old) may
//!   be lost, but no checkpoint reaches the sidecar or the anchor before the
//!   sync covering it finished (see `device`'s `background`), so the shorter
//!   file is an honest log: `verify` passes and the device reopens it.
//! * Not caught: entries written less than about a second before a crash
//!   (unsigned: `verify` lists them); removing an intermediate checkpoint
//!   line (the entries around it still chain; nothing is lost); the files
//!   and the anchor both deleted (disabling the device does that). Anyone
//!   holding the signing key (root on a running server) can rewrite
//!   everything: the scheme makes tampering evident, it does not prevent it.
//! * A stdout device has no sidecar and no anchor: its truncation goes
//!   unnoticed unless its output is captured elsewhere with checkpoints.
//!
//! # Devices and the broker
//!
//! [`AuditBroker`] (in `broker`) holds the enabled devices by path
//! (`file/`..). The request path ([`crate::api`]) queues entries with
//! `AuditBroker::submit`, which formats them once per device (each has its
//! own salt) on the caller's thread and hands them to every device's writer
//! thread, and waits with `Pending::wait` until each device has written and
//! synced them (group commit, see [`device`]; with `durability=background`,
//! written only, synced within `sync_interval`); [`AuditBroker::log`] does
//! both. Waiting succeeds when at least one device recorded the entries and
//! fails closed when every device failed, as Vault does; with no device
//! enabled it does nothing and succeeds.
//!
//! A [`Session`] carries one request across its entries: per device, the
//! HMACs of its token and accessor (computed once, not four times per
//! entry) and whether its request entry was recorded (a lone response entry
//! goes only where it was). A request entry and its response entry can be
//! submitted together: each device then writes both in one batch, one after
//! the other, or neither (what lets a request that changes nothing wait for
//! one sync instead of two; see [`crate::api`]'s audit hook).

pub mod chain;
pub mod device;
pub mod format;
pub mod store;
pub mod verify;

mod broker;
mod config;
mod error;

pub use broker::{AuditBroker, Failing, Pending, Session};
pub use config::{DeviceConfig, generate_salt, generate_signing_key};
pub use device::{CheckpointStore, DEFAULT_CHECKPOINT_INTERVAL, FileDevice, sidecar_path};
pub use error::AuditError;
pub use format::{
    AuditRecord, AuthInfo, FormatOptions, Kind, RequestInfo, ResponseInfo, hash_value,
};
pub use verify::{VerifyReport, verify_file};
