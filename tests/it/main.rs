//! The one integration-test binary of the transitd server.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod node;
mod support;

mod api_auth;
mod api_crypt;
mod api_hmac_sign;
mod api_misc;
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
mod rewrap_cli;
mod server;
mod systemd_unit;
mod usage;
mod wrapping;
