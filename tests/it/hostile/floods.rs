//! Issue 15, finding 8: connections. A flood of idle connections must not
//! exhaust the server's file descriptors nor keep a health check out, and a
//! connection that sends nothing is closed after the header-read timeout.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use transitd_test_support::free_port;

use crate::node::Node;

const MAX_CONNECTIONS: usize = 64;

/// A transitd process whose listener keeps at most [`MAX_CONNECTIONS`] and
/// gives a client `header_timeout` to send its headers.
fn start(dir: &tempfile::TempDir, header_timeout: &str) -> (Node, String) {
    let port = free_port();
    let config = dir.path().join("transitd.hcl");
    std::fs::write(
        &config,
        format!(
            "storage \"inmem\" {{}}\n\
             listener \"tcp\" {{\n  address = \"127.0.0.1:{port}\"\n  tls_disable = true\n  \
             max_connections = {MAX_CONNECTIONS}\n  http_read_header_timeout = \"{header_timeout}\"\n}}\n\
             disable_mlock = true\n"
        ),
    )
    .unwrap();
    let addr = format!("127.0.0.1:{port}");
    let node = Node::start(&config, &format!("http://{addr}"), dir.path());
    (node, addr)
}

/// Whether the server closed this connection (without blocking).
fn closed_by_server(stream: &mut TcpStream) -> bool {
    stream.set_nonblocking(true).unwrap();
    let mut byte = [0u8; 1];
    match stream.read(&mut byte) {
        Ok(0) => true,
        Err(e) if e.kind() == ErrorKind::WouldBlock => false,
        _ => true,
    }
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

/// One request on a new connection: the status line of the reply.
fn health(addr: &str) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream
        .write_all(b"GET /v1/sys/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut reply = String::new();
    let _ = stream.read_to_string(&mut reply);
    reply.lines().next().unwrap_or_default().to_owned()
}

#[test]
fn idle_connection_flood_neither_exhausts_fds_nor_locks_out_health() {
    transitd::serve::raise_fd_limit().unwrap();
    let dir = tempfile::tempdir().unwrap();
    // A header timeout far longer than the test: only the limit closes them.
    let (node, addr) = start(&dir, "5m");
    let before = open_fds(node.pid());
    let mut flood: Vec<TcpStream> = (0..3000)
        .map(|_| TcpStream::connect(&addr).unwrap())
        .collect();
    // Health still answers, on a new connection, while the flood is open.
    assert!(
        health(&addr).starts_with("HTTP/1.1 "),
        "no reply to a health check"
    );
    // The server keeps at most its limit: the rest were closed (the oldest
    // idle ones first), bounded wait.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let closed = flood
            .iter_mut()
            .map(closed_by_server)
            .filter(|&c| c)
            .count();
        if closed >= flood.len() - MAX_CONNECTIONS {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {closed} of {} idle connections closed",
            flood.len()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let held = open_fds(node.pid()) - before;
    assert!(
        held <= MAX_CONNECTIONS + 1,
        "the server holds {held} more descriptors"
    );
    // The newest connections are the ones kept, and they are served.
    let newest = flood.last_mut().unwrap();
    newest.set_nonblocking(false).unwrap();
    newest
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    newest
        .write_all(b"GET /v1/sys/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut reply = String::new();
    let _ = newest.read_to_string(&mut reply);
    assert!(reply.starts_with("HTTP/1.1 "), "{reply}");
}

#[test]
fn a_silent_connection_is_closed_after_the_header_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let (_node, addr) = start(&dir, "1s");
    let mut silent = TcpStream::connect(&addr).unwrap();
    // And a keep-alive connection after its reply.
    let mut kept = TcpStream::connect(&addr).unwrap();
    kept.write_all(b"GET /v1/sys/health HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    for stream in [&mut silent, &mut kept] {
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut rest = Vec::new();
        // Returns once the server closes the connection.
        let _ = stream.read_to_end(&mut rest);
        assert!(Instant::now() < deadline, "still open after 10 s");
    }
}
