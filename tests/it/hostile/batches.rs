//! Batch cost bounds.
