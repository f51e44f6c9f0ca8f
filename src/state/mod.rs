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
mod usage;

pub use app::{AppState, InitOutput};
pub use mount::{Mount, MountConfig};
pub use rotation::Rotated;
pub use unsealed::{RootGenerationStatus, Unsealed};
pub use usage::Counts;

use crate::request::Budget;
use crate::storage::StoreError;

/// Request limits; explicit settings instead of OpenBao's hidden JSON ceilings.
/// The `listener "tcp"` settings of the same names set them; the defaults
/// are [`Budget::DEFAULT`]'s.
#[derive(Clone, Debug)]
pub struct Limits {
    /// `max_request_size`.
    pub max_body_bytes: usize,
    pub max_batch_items: usize,
    /// Estimated CPU time one batch may take (`api/batch.rs`).
    pub max_batch_cpu_micros: u64,
    /// `max_request_json_memory`: estimated bytes of a parsed body.
    pub max_json_memory: usize,
    /// `max_request_json_strings`: strings in a body, keys included.
    pub max_json_strings: usize,
    /// `max_request_json_elements`: array elements plus object entries.
    pub max_json_elements: usize,
    /// `max_json_depth`: nesting of arrays and objects.
    pub max_json_depth: usize,
}

impl Limits {
    /// The budget of a request: one that needs no token gets the smaller of
    /// the configured budget and [`Budget::PUBLIC`].
    pub fn budget(&self, public: bool) -> Budget {
        let configured = Budget {
            max_bytes: self.max_body_bytes,
            max_memory: self.max_json_memory,
            max_strings: self.max_json_strings,
            max_elements: self.max_json_elements,
            max_depth: self.max_json_depth,
        };
        if public {
            configured.min(Budget::PUBLIC)
        } else {
            configured
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        let budget = Budget::DEFAULT;
        Self {
            max_body_bytes: budget.max_bytes,
            max_batch_items: 100_000,
            max_batch_cpu_micros: 2_000_000,
            max_json_memory: budget.max_memory,
            max_json_strings: budget.max_strings,
            max_json_elements: budget.max_elements,
            max_json_depth: budget.max_depth,
        }
    }
}

fn poisoned() -> StoreError {
    StoreError::Internal("lock poisoned".to_owned())
}
