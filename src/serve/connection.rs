//! Serving one listener: its accept loop, and a task per connection that does
//! the TLS handshake, then HTTP/1.1 over the router, until shutdown.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::{TowerToHyperService, TowerToHyperServiceFuture};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tracing::{debug, error, warn};

use super::listener::{Listener, TlsReloader};

/// How long a client has to complete the TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a client has to send the request headers.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// How long in-flight connections may run on after shutdown was requested.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Pause after an accept error that is not about one connection (such as
/// running out of file descriptors), so the loop does not spin.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_secs(1);

/// Resolves once shutdown was requested (or the sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

fn is_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind;
    matches!(
        e.kind(),
        ErrorKind::ConnectionRefused | ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset
    )
}

pub(super) async fn accept_loop(listener: Listener, app: Router, mut stop: watch::Receiver<bool>) {
    let Listener { tcp, tls } = listener;
    let local = tcp.local_addr().ok();
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            biased;
            () = stopped(&mut stop) => break,
            Some(ended) = connections.join_next(), if !connections.is_empty() => {
                if let Err(e) = ended {
                    error!(error = %e, "connection task failed");
                }
            }
            accepted = tcp.accept() => match accepted {
                Ok((stream, peer)) => {
                    connections.spawn(handle_connection(
                        stream,
                        peer,
                        tls.clone(),
                        app.clone(),
                        stop.clone(),
                    ));
                }
                Err(e) if is_connection_error(&e) => {
                    debug!(error = %e, "connection failed before accept");
                }
                Err(e) => {
                    error!(address = ?local, error = %e, "accept failed; pausing");
                    tokio::select! {
                        () = stopped(&mut stop) => break,
                        () = tokio::time::sleep(ACCEPT_ERROR_BACKOFF) => {}
                    }
                }
            },
        }
    }
    // Close the socket first: from here on new connections are refused.
    drop(tcp);

    let open = connections.len();
    if open == 0 {
        return;
    }
    debug!(address = ?local, open, "waiting for open connections to finish");
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        warn!(
            address = ?local,
            remaining = connections.len(),
            "connections still open after the shutdown grace period; closing them"
        );
        connections.shutdown().await;
    }
}

async fn handle_connection(
    stream: TcpStream,
    peer: SocketAddr,
    tls: Option<TlsReloader>,
    app: Router,
    mut stop: watch::Receiver<bool>,
) {
    // Small request/response exchanges: do not wait for Nagle.
    let _ = stream.set_nodelay(true);
    let Some(tls) = tls else {
        serve_http(stream, peer, app, stop).await;
        return;
    };
    // The configuration current now serves this connection to its end.
    let acceptor = TlsAcceptor::from(tls.current());
    let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream));
    let stream = tokio::select! {
        () = stopped(&mut stop) => return,
        done = handshake => match done {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => {
                debug!(peer = %peer, error = %e, "TLS handshake failed");
                return;
            }
            Err(_) => {
                debug!(peer = %peer, "TLS handshake timed out");
                return;
            }
        },
    };
    serve_http(stream, peer, app, stop).await;
}

async fn serve_http<IO>(io: IO, peer: SocketAddr, app: Router, mut stop: watch::Receiver<bool>)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = ConnectionService {
        inner: TowerToHyperService::new(app),
        peer,
    };
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .keep_alive(true)
        .header_read_timeout(HEADER_READ_TIMEOUT);
    let connection = builder.serve_connection(TokioIo::new(io), service);
    let mut connection = std::pin::pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        () = stopped(&mut stop) => {
            // Finish the request in progress (if any), then close.
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(e) = result {
        debug!(peer = %peer, error = %e, "HTTP connection ended with an error");
    }
}

/// The router, with the client's socket address added to every request as
/// axum's [`ConnectInfo<SocketAddr>`], as `axum::serve` does with
/// `into_make_service_with_connect_info`.
#[derive(Clone, Debug)]
struct ConnectionService {
    inner: TowerToHyperService<Router>,
    peer: SocketAddr,
}

impl hyper::service::Service<hyper::Request<Incoming>> for ConnectionService {
    type Response = <TowerToHyperService<Router> as hyper::service::Service<
        hyper::Request<Incoming>,
    >>::Response;
    type Error = std::convert::Infallible;
    type Future = TowerToHyperServiceFuture<Router, hyper::Request<Incoming>>;

    fn call(&self, mut request: hyper::Request<Incoming>) -> Self::Future {
        request.extensions_mut().insert(ConnectInfo(self.peer));
        self.inner.call(request)
    }
}
