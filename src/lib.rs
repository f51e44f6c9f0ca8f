//! transitd: encryption as a service, wire-compatible with the transit secrets
//! engine of Vault and OpenBao.
#![forbid(unsafe_code)]

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;

pub mod api;
pub mod cli;
pub mod error;
pub mod request;
pub mod response;
pub mod state;

pub use state::{AppState, Limits};

/// The whole HTTP API, testable without a socket.
pub fn app(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/v1/{*path}", axum::routing::any(api::handle))
        .fallback(api::handle)
        // The handler enforces `Limits::max_body_bytes` itself, with a Vault-shaped 413.
        .layer(DefaultBodyLimit::disable())
        .with_state(state)
}
