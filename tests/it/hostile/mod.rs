//! The hostile suite: one module per class of attack or failure.

mod amplification;
mod full_disk;
