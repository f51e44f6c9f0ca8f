//! Serving one listener: its accept loop, and a task per connection that does
//! the TLS handshake, then HTTP/1.1 over the router, until shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes, HttpBody};
use axum::extract::ConnectInfo;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tracing::{debug, error, warn};

use super::admission::{Admission, Admitted, BusyGuard, ConnectionLimits, Slot};
use super::client_cert::ClientTls;
use super::listener::{Listener, TlsReloader};

/// How long a client has to complete the TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

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
    let Listener {
        tcp,
        tls,
        limits,
        access,
    } = listener;
    // Each request carries its listener's metrics access to `api::handle`.
    let app = app.layer(axum::Extension(access));
    let local = tcp.local_addr().ok();
    let admission = Admission::new(limits.max_connections);
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
                Ok((stream, peer)) => match admission.admit() {
                    Some(admitted) => {
                        connections.spawn(handle_connection(
                            Accepted { stream, peer, admitted, limits },
                            tls.clone(),
                            app.clone(),
                            stop.clone(),
                        ));
                    }
                    // Every place is taken by a request in flight.
                    None => debug!(peer = %peer, "connection limit reached; closing"),
                },
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

/// A connection let in, with its place in the listener's table.
struct Accepted {
    stream: TcpStream,
    peer: SocketAddr,
    admitted: Admitted,
    limits: ConnectionLimits,
}

async fn handle_connection(
    accepted: Accepted,
    tls: Option<TlsReloader>,
    app: Router,
    mut stop: watch::Receiver<bool>,
) {
    let Accepted {
        stream,
        peer,
        admitted,
        limits,
    } = accepted;
    // Small request/response exchanges: do not wait for Nagle.
    let _ = stream.set_nodelay(true);
    let Some(tls) = tls else {
        serve_http(stream, peer, ClientTls::Plain, app, stop, admitted, limits).await;
        return;
    };
    // The configuration current now serves this connection to its end.
    let acceptor = TlsAcceptor::from(tls.current());
    let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream));
    let stream = tokio::select! {
        () = stopped(&mut stop) => return,
        () = admitted.slot.evicted() => return,
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
    let client = ClientTls::of(stream.get_ref().1);
    serve_http(stream, peer, client, app, stop, admitted, limits).await;
}

async fn serve_http<IO>(
    io: IO,
    peer: SocketAddr,
    client: ClientTls,
    app: Router,
    mut stop: watch::Receiver<bool>,
    admitted: Admitted,
    limits: ConnectionLimits,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = ConnectionService {
        inner: TowerToHyperService::new(app),
        peer,
        client,
        slot: Arc::clone(&admitted.slot),
    };
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .keep_alive(true)
        .header_read_timeout(limits.header_read_timeout);
    let connection = builder.serve_connection(TokioIo::new(io), service);
    let mut connection = std::pin::pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        () = admitted.slot.evicted() => {
            if admitted.slot.is_idle() {
                // Nothing in flight: closing loses nothing.
                debug!(peer = %peer, "closing an idle connection to make room for a new one");
                return;
            }
            // A request started meanwhile: finish it, then close.
            connection.as_mut().graceful_shutdown();
            connection.await
        }
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
/// `into_make_service_with_connect_info`, and its TLS client certificate
/// ([`ClientTls`]); each request marks its connection busy until its reply
/// has been sent.
#[derive(Clone, Debug)]
struct ConnectionService {
    inner: TowerToHyperService<Router>,
    peer: SocketAddr,
    client: ClientTls,
    slot: Arc<Slot>,
}

type Reply = hyper::Response<Body>;

impl hyper::service::Service<hyper::Request<Incoming>> for ConnectionService {
    type Response = Reply;
    type Error = std::convert::Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Reply, Self::Error>> + Send>>;

    fn call(&self, mut request: hyper::Request<Incoming>) -> Self::Future {
        request.extensions_mut().insert(ConnectInfo(self.peer));
        request.extensions_mut().insert(self.client.clone());
        let busy = self.slot.busy();
        let reply = self.inner.call(request);
        Box::pin(async move {
            let reply = reply.await?;
            Ok(reply.map(|body| Body::new(UntilSent { body, _busy: busy })))
        })
    }
}

/// A reply body that keeps its connection busy until hyper has taken all of
/// it (hyper drops the body when it is done with it).
struct UntilSent {
    body: Body,
    _busy: BusyGuard,
}

impl HttpBody for UntilSent {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
