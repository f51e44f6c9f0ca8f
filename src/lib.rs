//! transitd: encryption as a service, wire-compatible with the transit secrets
//! engine of Vault and OpenBao.
#![forbid(unsafe_code)]

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;

pub mod api;
pub mod audit;
pub mod auth;
pub mod changes;
pub mod cli;
pub mod config;
pub mod crash_point;
pub mod envelope;
pub mod error;
pub mod go_syntax;
pub mod hcl_diagnostics;
pub mod hygiene;
pub mod metrics;
pub mod name_syntax;
pub mod request;
pub mod response;
pub mod seal;
pub mod serve;
pub mod state;
pub mod storage;

pub use state::{AppState, Limits};

fn panic_response(_cause: Box<dyn std::any::Any + Send + 'static>) -> axum::response::Response {
    use axum::response::IntoResponse;
    error::ApiError::Internal("handler panicked".to_owned()).into_response()
}

/// The whole HTTP API, testable without a socket.
pub fn app(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/v1/{*path}", axum::routing::any(api::handle))
        .fallback(api::handle)
        // The handler enforces `Limits::max_body_bytes` itself, with a Vault-shaped 413.
        .layer(DefaultBodyLimit::disable())
        // Defence in depth: a bug that panics answers a generic 500, never a dropped
        // connection, and the cause goes to the log only.
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            panic_response,
        ))
        .with_state(state)
}
