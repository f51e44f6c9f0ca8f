//! Server state: the seal, and once unsealed, the mounts and their cached
//! keyrings.
//!
//! Reads (every crypto request) load the unsealed state without a lock and take
//! a short read lock to clone one `Arc<Keyring>`. Writers serialize per mount,
//! build a changed copy of the keyring off to the side, write it through the
//! barrier (durable before anything else sees it), then publish it by swapping
//! the `Arc`. Sealing drops the unsealed state: once in-flight requests finish,
//! every keyring and the barrier keys are zeroized as they drop.
//!
//! Where each entry lives in storage, and which store owns it:
//! [`crate::storage::layout`].

mod app;
mod mount;
mod rotation;
mod unsealed;

pub use app::{AppState, InitOutput};
pub use mount::{Mount, MountConfig};
pub use rotation::Rotated;
pub use unsealed::Unsealed;

use crate::storage::StoreError;

/// Request limits; explicit settings instead of OpenBao's hidden JSON ceilings.
#[derive(Clone, Debug)]
pub struct Limits {
    pub max_body_bytes: usize,
    pub max_batch_items: usize,
    /// Estimated CPU time one batch may take (`api/batch.rs`).
    pub max_batch_cpu_micros: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: 32 << 20,
            max_batch_items: 100_000,
            max_batch_cpu_micros: 2_000_000,
        }
    }
}

fn poisoned() -> StoreError {
    StoreError::Internal("lock poisoned".to_owned())
}
