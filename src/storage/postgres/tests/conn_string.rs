//! Parsing connection strings, and redacting their passwords.

use ::postgres::config::SslMode;

use super::super::PostgresConfig;
use super::super::conn_string::{ConnectionString, TlsPolicy, redact_connection_url};
use super::support::strings;

#[test]
fn connection_strings() {
    let p = ConnectionString::parse(
        "postgres://u:p%40ss@db:5433/transit?sslmode=verify-full&sslrootcert=%2Fetc%2Froot.pem&connect_timeout=3",
    )
    .unwrap();
    assert_eq!(p.tls, TlsPolicy::VerifyFull);
    assert_eq!(p.root_cert.as_deref(), Some("/etc/root.pem"));
    assert_eq!(
        p.driver,
        "postgres://u:p%40ss@db:5433/transit?sslmode=require&connect_timeout=3"
    );
    assert_eq!(
        p.keys,
        strings(&["sslmode", "sslrootcert", "connect_timeout"])
    );
    let pg: ::postgres::Config = p.driver.parse().unwrap();
    assert_eq!(pg.get_password(), Some(&b"p@ss"[..]));
    assert_eq!(pg.get_ssl_mode(), SslMode::Require);

    // `?` inside the credentials belongs to the password, as for tokio-postgres.
    let p = ConnectionString::parse("postgresql://u:a?b@db/x").unwrap();
    assert_eq!(p.driver, "postgresql://u:a?b@db/x");
    assert_eq!(p.tls, TlsPolicy::Prefer);

    let p = ConnectionString::parse(
        "host=db user=me password='it\\'s \\\\x' sslmode = verify-ca sslrootcert='/a b/root.pem' dbname=x\\ y",
    )
    .unwrap();
    assert_eq!(p.tls, TlsPolicy::VerifyCa);
    assert_eq!(p.root_cert.as_deref(), Some("/a b/root.pem"));
    let pg: ::postgres::Config = p.driver.parse().unwrap();
    assert_eq!(pg.get_password(), Some(&b"it's \\x"[..]));
    assert_eq!(pg.get_dbname(), Some("x y"));
    assert_eq!(pg.get_user(), Some("me"));
    assert_eq!(pg.get_ssl_mode(), SslMode::Require);

    for (mode, policy) in [
        ("disable", TlsPolicy::Disable),
        ("allow", TlsPolicy::Prefer),
        ("prefer", TlsPolicy::Prefer),
        ("require", TlsPolicy::Require),
    ] {
        let p = ConnectionString::parse(&format!("host=db sslmode={mode}")).unwrap();
        assert_eq!(p.tls, policy, "{mode}");
    }
    assert!(ConnectionString::parse("host=db sslmode=bogus").is_err());
    assert!(ConnectionString::parse("").is_err());
    assert!(ConnectionString::parse("host").is_err());
    assert!(ConnectionString::parse("host='db").is_err());
    assert!(ConnectionString::parse("postgres://db/x?novalue").is_err());
}

#[test]
fn redacts_passwords() {
    for (input, shown) in [
        (
            "postgres://u:secret@db:5432/x?sslmode=require",
            "postgres://u:<redacted>@db:5432/x?sslmode=require",
        ),
        ("postgresql://u@db/x", "postgresql://u@db/x"),
        ("postgresql://db/x", "postgresql://db/x"),
        (
            "postgres://u:se:cr@et@db/x?password=secret&a=b",
            "postgres://u:<redacted>@et@db/x?password=<redacted>&a=b",
        ),
        (
            "postgres://db/x?pass%77ord=secret",
            "postgres://db/x?pass%77ord=<redacted>",
        ),
        (
            "host=db password=secret user=u",
            "host=db password=<redacted> user=u",
        ),
        (
            "host=db password='sec ret' dbname='a b'",
            "host=db password=<redacted> dbname='a b'",
        ),
        ("host='db", "<unparsable connection string>"),
    ] {
        let out = redact_connection_url(input);
        assert_eq!(out, shown, "{input}");
        assert!(!out.contains("secret") && !out.contains("sec ret"), "{out}");
    }
    let config = PostgresConfig::new("postgres://u:secret@db/x");
    let debug = format!("{config:?}");
    assert!(!debug.contains("secret"), "{debug}");
    assert!(debug.contains("u:<redacted>@db"), "{debug}");
}

#[test]
fn a_refused_connection_string_is_never_repeated_in_the_error() {
    for s in [
        "Postgres://u:SecretPW@127.0.0.1:1/db",
        "postgresql+psycopg2://u:SecretPW@h/db",
        "mysql://u:SecretPW@h/db",
        "host=h SecretPW",
    ] {
        let e = ConnectionString::parse(s).unwrap_err();
        assert!(!e.contains("SecretPW"), "{s}: {e}");
        assert!(e.contains("has no ="), "{s}: {e}");
    }
}
