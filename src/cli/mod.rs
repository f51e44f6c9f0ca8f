//! Command line, in the Vault CLI's flag style (`-flag=value`, `-flag value`,
//! `--flag` too).

use std::process::ExitCode;

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
            // A lone `-` is stdin or stdout, a positional word.
            let Some(body) = Some(arg.as_str())
                .filter(|a| *a != "-")
                .and_then(|a| a.strip_prefix("--").or_else(|| a.strip_prefix('-')))
            else {
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

mod audit;
mod client;
mod envelope;
mod operator;
mod rewrap;
mod server;
mod snapshot;
mod transit_seal;

const USAGE: &str = "usage: transitd <command> [args]\n\n\
     server              run the server (-dev, or -config=FILE)\n\
     operator init       initialize a new server (-key-shares, -key-threshold)\n\
     operator unseal     give one unseal key share (prompts when none is given)\n\
     operator seal       seal the server\n\
     operator snapshot save|restore  copy a SQLite store while it runs; put a copy back (server stopped)\n\
     status              show the seal status\n\
     audit verify FILE   check an audit log's hash chain and signed checkpoints\n\
     rewrap -key=K IN OUT  rewrap every ciphertext of a file (lines, CSV, JSONL); resumable\n\
     envelope encrypt -key=K IN OUT, envelope decrypt IN OUT, envelope rewrap FILE\n\
                         encrypt files of any size under a data key the transit key wraps\n\
     version             print the version\n\n\
     Client commands talk to BAO_ADDR or VAULT_ADDR (default https://127.0.0.1:8200).";

pub fn main(args: Vec<String>) -> ExitCode {
    let (command, rest) = match args.split_first() {
        Some((c, rest)) => (c.as_str(), rest),
        None => ("", &[][..]),
    };
    let result = match command {
        "server" => server::run(rest).map(|()| ExitCode::SUCCESS),
        "operator" => operator::run_operator(rest),
        "status" => operator::status(rest),
        "audit" => return audit::run(rest),
        "rewrap" => rewrap::run(rest),
        "envelope" => envelope::run(rest),
        "version" | "-version" | "--version" => {
            print_line(&format!("transitd v{}", env!("CARGO_PKG_VERSION")));
            Ok(ExitCode::SUCCESS)
        }
        _ => Err(USAGE.to_owned()),
    };
    match result {
        Ok(code) => code,
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

fn init_logging(level: &str, format: crate::config::LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        crate::config::LogFormat::Standard => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init(),
        // One JSON object per line, for log collectors: never colour codes.
        crate::config::LogFormat::Json => builder.json().with_ansi(false).try_init(),
    };
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
        let f = Flags::parse(&["-".to_owned(), "-x".to_owned(), "-".to_owned()], &[]).unwrap();
        assert_eq!(f.positional, ["-", "-"]);
    }
}
