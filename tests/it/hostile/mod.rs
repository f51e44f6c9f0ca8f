//! The hostile suite: what an attacker, or a client that expects more than
//! transitd gives, sends; one module per class of finding.

mod amplification;
mod batches;
mod budget;
mod floods;
mod full_disk;
mod headers;
mod ignored_settings;
mod names;
mod rotation;
mod tamper;
mod tokens;
