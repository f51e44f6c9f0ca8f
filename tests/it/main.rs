//! The one integration-test binary of the transitd server.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod node;
mod support;

mod api_auth;
mod api_crypt;
mod api_hmac_sign;
mod api_misc;
mod audit_durability;
mod audit_logins;
mod auth_cert;
mod auth_cluster;
mod auth_jwt;
mod auth_kubernetes;
mod barrier_ops;
mod byok;
mod cluster;
mod cluster_wrapping;
mod config_files;
mod crash;
mod differential;
mod envelope;
mod health;
mod hostile;
mod https_fixture;
mod jwt_issuer;
mod key_lifecycle;
mod kube_api;
mod metrics;
mod rekey;
mod rewrap_cli;
mod seal_migration;
mod server;
mod snapshot;
mod systemd_unit;
mod transit_seal;
mod usage;
mod wrapping;
