//! Command line, in the Vault CLI's flag style (`-flag=value`, `-flag value`,
//! `--flag` too).

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use crate::state::{AppState, Limits};

/// Parsed `-name[=value]` flags and the remaining positional words.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Flags {
    pub named: Vec<(String, Option<String>)>,
    pub positional: Vec<String>,
}

impl Flags {
    pub fn parse(args: &[String], takes_value: &[&str]) -> Result<Self, String> {
        let mut flags = Self::default();
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            let Some(body) = arg.strip_prefix("--").or_else(|| arg.strip_prefix('-')) else {
                flags.positional.push(arg.clone());
                continue;
            };
            match body.split_once('=') {
                Some((name, value)) => flags.named.push((name.to_owned(), Some(value.to_owned()))),
                None if takes_value.contains(&body) => {
                    let value = it
                        .next()
                        .ok_or_else(|| format!("flag -{body} needs a value"))?;
                    flags.named.push((body.to_owned(), Some(value.clone())));
                }
                None => flags.named.push((body.to_owned(), None)),
            }
        }
        Ok(flags)
    }

    pub fn value(&self, name: &str) -> Option<&str> {
        self.named
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| v.as_deref())
    }

    pub fn is_set(&self, name: &str) -> bool {
        self.named
            .iter()
            .any(|(n, v)| n == name && v.as_deref().is_none_or(|v| v != "false"))
    }
}

const USAGE: &str =
    "usage: transitd server -dev [-dev-root-token-id=ID] [-dev-listen-address=ADDR]";

pub fn main(args: Vec<String>) -> ExitCode {
    let (command, rest) = match args.split_first() {
        Some((c, rest)) => (c.as_str(), rest),
        None => ("", &[][..]),
    };
    let result = match command {
        "server" => server(rest),
        "version" | "-version" | "--version" => {
            print_line(&format!("transitd v{}", env!("CARGO_PKG_VERSION")));
            Ok(())
        }
        _ => Err(USAGE.to_owned()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("{message}");
            ExitCode::FAILURE
        }
    }
}

#[allow(clippy::print_stdout)]
fn print_line(line: &str) {
    println!("{line}");
}

fn server(args: &[String]) -> Result<(), String> {
    let flags = Flags::parse(
        args,
        &[
            "dev-root-token-id",
            "dev-listen-address",
            "config",
            "log-level",
        ],
    )?;
    if !flags.is_set("dev") {
        return Err(format!(
            "only dev mode is available in this release\n{USAGE}"
        ));
    }
    let known = [
        "dev",
        "dev-root-token-id",
        "dev-listen-address",
        "log-level",
    ];
    if let Some((name, _)) = flags
        .named
        .iter()
        .find(|(n, _)| !known.contains(&n.as_str()))
    {
        return Err(format!("unknown flag -{name}\n{USAGE}"));
    }
    init_logging(flags.value("log-level").unwrap_or("info"));
    let token = match flags.value("dev-root-token-id") {
        Some(t) if !t.is_empty() => t.to_owned(),
        _ => format!("s.{}", uuid::Uuid::new_v4().simple()),
    };
    let address: SocketAddr = flags
        .value("dev-listen-address")
        .unwrap_or("127.0.0.1:8200")
        .parse()
        .map_err(|e| format!("invalid -dev-listen-address: {e}"))?;
    let state = Arc::new(AppState::dev(&token, Limits::default()));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(address)
            .await
            .map_err(|e| format!("cannot listen on {address}: {e}"))?;
        print_line(&format!(
            "transitd dev server listening on http://{address}\n\
             WARNING: dev mode keeps keys in memory only; they are gone when it stops.\n\n\
             export VAULT_ADDR='http://{address}'\nRoot Token: {token}\n"
        ));
        axum::serve(listener, crate::app(state))
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await
            .map_err(|e| format!("server error: {e}"))
    })
}

fn init_logging(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_style_flags() {
        let args: Vec<String> = [
            "-dev",
            "-dev-root-token-id=root",
            "--dev-listen-address",
            "127.0.0.1:9",
        ]
        .map(String::from)
        .to_vec();
        let f = Flags::parse(&args, &["dev-listen-address"]).unwrap();
        assert!(f.is_set("dev"));
        assert_eq!(f.value("dev-root-token-id"), Some("root"));
        assert_eq!(f.value("dev-listen-address"), Some("127.0.0.1:9"));
        assert!(
            Flags::parse(&["-dev-listen-address".to_owned()], &["dev-listen-address"]).is_err()
        );
    }
}
