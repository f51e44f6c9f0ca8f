//! The anchor: a copy of a file device's latest checkpoint (`seq` and
//! chain) kept where someone who can write the log cannot reach it. The
//! audit store keeps it in sealed storage, per device and node
//! (`audit::store`); the sidecar thread saves every checkpoint it writes to
//! `<FILE>.checkpoint` there too, and a device opening its file checks that
//! the file reaches it.

use std::fmt;

use crate::audit::chain::{Chain, Start};

/// Where a device's anchor is kept.
pub trait CheckpointStore: Send + Sync + fmt::Debug {
    /// The latest checkpoint saved, if any.
    fn load(&self) -> Result<Option<Start>, String>;
    /// Replaces it (only ever with a checkpoint the file holds durably).
    fn save(&self, seq: u64, chain: &Chain) -> Result<(), String>;
}
