//! TLS modes, against the local server and one without TLS.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener};
use std::thread;
use std::time::{Duration, Instant};

use super::super::PostgresStorage;
use super::super::deadline::{Effect, OPERATION_TIMEOUT};
use super::support::{TestSchema, unavailable};

/// Whether this storage's sessions use TLS, asked of the server.
fn session_uses_tls(s: &PostgresStorage) -> bool {
    s.run(
        "ssl".to_owned(),
        OPERATION_TIMEOUT,
        Effect::None,
        |conn, _, _| {
            Ok(conn
                .client
                .query_one(
                    "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                    &[],
                )
                .unwrap()
                .get::<_, bool>(0))
        },
    )
    .unwrap()
}

#[test]
fn tls_modes_against_the_local_server() {
    // The local server has TLS with a self-signed certificate for
    // "localhost" (Debian's snakeoil); these cases follow libpq.
    let schema = TestSchema::new();
    let plain = schema.open();
    let open = |extra: &str| {
        PostgresStorage::connect(
            &schema.config_for(&format!("host=127.0.0.1 user=postgres dbname=test {extra}")),
        )
    };
    // prefer (the default) and require: encrypted, not authenticated.
    assert!(session_uses_tls(&plain));
    assert!(session_uses_tls(&open("sslmode=require").unwrap()));
    assert!(session_uses_tls(&open("sslmode=allow").unwrap()));
    assert!(!session_uses_tls(&open("sslmode=disable").unwrap()));
    // verify-full against the public roots: a clean error, no panic.
    let msg = unavailable(open("sslmode=verify-full"));
    assert!(msg.contains("TLS"), "{msg}");
    assert!(msg.contains("certificate"), "{msg}");
    let msg = unavailable(open("sslmode=verify-ca"));
    assert!(msg.contains("certificate"), "{msg}");
    // With the server's certificate as the root.
    let cert = "/etc/ssl/certs/ssl-cert-snakeoil.pem";
    assert!(session_uses_tls(
        &open(&format!("sslmode=verify-ca sslrootcert={cert}")).unwrap()
    ));
    // require + sslrootcert checks the chain like verify-ca.
    assert!(session_uses_tls(
        &open(&format!("sslmode=require sslrootcert={cert}")).unwrap()
    ));
    // verify-full also checks the name: 127.0.0.1 is not "localhost".
    let msg = unavailable(open(&format!("sslmode=verify-full sslrootcert={cert}")));
    assert!(msg.contains("certificate"), "{msg}");
    let localhost = PostgresStorage::connect(&schema.config_for(&format!(
        "postgresql://postgres@localhost/test?sslmode=verify-full&sslrootcert={cert}"
    )))
    .unwrap();
    assert!(session_uses_tls(&localhost));
    // A missing root file.
    let msg = unavailable(open(
        "sslmode=verify-full sslrootcert=/nonexistent/root.pem",
    ));
    assert!(msg.contains("sslrootcert"), "{msg}");
    // An unknown mode.
    let msg = unavailable(open("sslmode=sometimes"));
    assert!(msg.contains("unknown sslmode"), "{msg}");
}

/// A server that answers "no TLS" to the TLS request, then closes.
fn server_without_tls() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut request = [0u8; 8];
            if stream.read_exact(&mut request).is_ok() {
                let _ = stream.write_all(b"N");
            }
            let _ = stream.shutdown(Shutdown::Both);
        }
    });
    port
}

#[test]
fn tls_required_from_a_server_without_tls_is_unavailable() {
    let schema = TestSchema::new();
    let port = server_without_tls();
    for mode in ["require", "verify-full"] {
        let started = Instant::now();
        let msg = unavailable(PostgresStorage::connect(&schema.config_for(&format!(
            "postgres://postgres:pw-not-shown@127.0.0.1:{port}/test?sslmode={mode}"
        ))));
        assert!(started.elapsed() < Duration::from_secs(6));
        assert!(msg.starts_with("postgresql: "), "{msg}");
        assert!(msg.contains("TLS"), "{msg}");
        assert!(!msg.contains("pw-not-shown"), "{msg}");
    }
}
