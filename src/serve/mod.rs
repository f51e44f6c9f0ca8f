//! The accept loop for plain HTTP and HTTPS listeners.
//!
//! This replaces `axum::serve` so that both kinds of listener share one code
//! path, and so that TLS can be served at all: each accepted TCP connection
//! gets its own task, which does the TLS handshake (bounded by
//! [`HANDSHAKE_TIMEOUT`]) and then runs hyper's HTTP/1.1 server over the
//! [`Router`]. A slow or malicious client therefore never holds up the accept
//! loop or other connections.
//!
//! Shutdown is graceful: when the shutdown future completes, listeners are
//! closed, idle keep-alive connections are closed, and requests in flight may
//! finish, for at most [`SHUTDOWN_GRACE`]; what remains after that is aborted.
//!
//! Logging never includes key material; handshake failures are logged at
//! debug level only (with the peer address), since any port scanner causes
//! them.
//!
//! Each listener keeps at most [`ConnectionLimits::max_connections`] open;
//! at the limit a new connection takes the place of the one idle the longest
//! (`admission`), so idle connections can neither exhaust file descriptors
//! nor keep a health check out. A client has
//! [`ConnectionLimits::header_read_timeout`] to send a request's headers,
//! counted again after each reply, so idle keep-alive connections close too.
//!
//! [`serve`] starts one accept loop per listener, reloads certificates on
//! `SIGHUP` and stops everything on shutdown; `listener` binds listeners and
//! loads their TLS certificates (reloadable, see [`TlsReloader`]);
//! `client_cert` asks TLS clients for a certificate and hands it to requests;
//! `connection` runs an accept loop and each connection; `admission` keeps
//! the table of open connections.

use std::future::Future;
use std::net::SocketAddr;

use axum::Router;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::{error, info, warn};

mod admission;
mod client_cert;
mod connection;
mod listener;
#[cfg(test)]
mod tests;

pub use self::admission::{ConnectionLimits, RESERVED_FDS, raise_fd_limit};
pub use self::client_cert::{ClientTls, MAX_CLIENT_CHAIN, MAX_CLIENT_CHAIN_BYTES};
use self::connection::accept_loop;
pub use self::connection::{HANDSHAKE_TIMEOUT, SHUTDOWN_GRACE};
pub use self::listener::{Listener, TlsFiles, TlsReloader};

/// Serves `app` on all `listeners` until `shutdown` completes, then shuts
/// down gracefully (see the module documentation).
///
/// Installs a `SIGHUP` handler, before any connection is accepted, that
/// reloads the certificate of every TLS listener. Returns an error if the
/// handler cannot be installed, if there is no listener, or if an accept
/// loop died unexpectedly.
pub async fn serve(
    app: Router,
    listeners: Vec<Listener>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), String> {
    if listeners.is_empty() {
        return Err("no listener to serve on".to_owned());
    }
    let mut hangup =
        signal(SignalKind::hangup()).map_err(|e| format!("cannot install SIGHUP handler: {e}"))?;
    let reloaders: Vec<(Option<SocketAddr>, TlsReloader)> = listeners
        .iter()
        .filter_map(|l| Some((l.local_addr().ok(), l.tls.clone()?)))
        .collect();

    let (stop_tx, stop_rx) = watch::channel(false);
    let mut loops = JoinSet::new();
    for listener in listeners {
        match listener.local_addr() {
            Ok(addr) => info!(address = %addr, tls = listener.is_tls(), "listening"),
            Err(e) => warn!(error = %e, "listening on an address that cannot be read back"),
        }
        loops.spawn(accept_loop(listener, app.clone(), stop_rx.clone()));
    }
    drop(stop_rx);

    let mut shutdown = std::pin::pin!(shutdown);
    let mut result = Ok(());
    loop {
        tokio::select! {
            () = &mut shutdown => {
                info!("shutting down: no longer accepting connections");
                break;
            }
            Some(()) = hangup.recv() => reload_all(&reloaders),
            Some(ended) = loops.join_next() => {
                // Accept loops only return after the stop signal, so this is a panic.
                let why = match ended {
                    Ok(()) => "ended".to_owned(),
                    Err(e) => e.to_string(),
                };
                error!(error = %why, "an accept loop died; shutting down");
                result = Err(format!("accept loop died: {why}"));
                break;
            }
        }
    }

    stop_tx.send_replace(true);
    while let Some(ended) = loops.join_next().await {
        if let Err(e) = ended {
            error!(error = %e, "accept loop failed during shutdown");
        }
    }
    result
}

fn reload_all(reloaders: &[(Option<SocketAddr>, TlsReloader)]) {
    if reloaders.is_empty() {
        info!("SIGHUP received; no TLS listener to reload");
        return;
    }
    for (address, reloader) in reloaders {
        let cert_file = reloader.files().cert_file.display();
        match reloader.reload() {
            Ok(()) => info!(
                address = ?address,
                cert_file = %cert_file,
                "SIGHUP: reloaded TLS certificate"
            ),
            Err(e) => error!(
                address = ?address,
                error = %e,
                "SIGHUP: TLS certificate reload failed; still serving the previous certificate"
            ),
        }
    }
}
