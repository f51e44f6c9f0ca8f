//! The one integration-test binary of the transitd server.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod node;
mod support;

mod api_auth;
mod api_crypt;
mod api_hmac_sign;
mod api_misc;
mod audit_logins;
mod cluster;
mod cluster_wrapping;
mod crash;
mod differential;
mod hostile;
mod key_lifecycle;
mod metrics;
mod rewrap_cli;
mod server;
mod wrapping;
