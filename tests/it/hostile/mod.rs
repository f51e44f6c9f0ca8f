//! The hostile suite: one module per class of attack or abuse.

mod rotation;
mod tamper;
