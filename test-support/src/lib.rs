//! Test support for the transitd workspace (a dev-dependency only).
//!
//! * [`DevServer`]: a throw-away `server -dev` process (OpenBao, or transitd's
//!   own dev mode) on a free loopback port with a known root token, ready when
//!   returned and killed on drop;
//! * [`Client`] and [`Reply`]: the one HTTP client shape of the test suites
//!   (`call`/`read`/`write` a `/v1/` path with the client's token; a reply is a
//!   status and a parsed JSON body);
//! * [`free_port`], [`bao_bin`], [`b64`].

mod dev_server;
mod http;

pub use dev_server::{DevServer, INSTALL_HINT, ROOT_TOKEN, bao_bin};
pub use http::{Auth, Client, Reply};

use std::net::TcpListener;

/// A loopback port that was free a moment ago (another process can take it
/// before it is bound again: callers that start servers retry).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("cannot find a free loopback port: {e}"))
}

/// Standard, padded base64: how transit sends bytes.
pub fn b64(data: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(data)
}
