//! `transitd audit verify [-public-key=B64] FILE`: the command line of the
//! audit log checker ([`crate::audit::verify`]), which prints its report and
//! exits 0 (intact), 2 (tampered) or 1 (usage or read error).

use std::path::Path;
use std::process::ExitCode;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use super::{Flags, print_line};
use crate::audit::verify_file;

const USAGE: &str = "usage: transitd audit verify [-public-key=BASE64] FILE\n\n\
     Checks a tamper-evident audit log: its hash chain, its signed checkpoints and\n\
     its FILE.checkpoint sidecar. -public-key pins the Ed25519 key (base64 of the\n\
     raw 32 bytes) the checkpoints must be signed with.\n\
     Exit status: 0 intact, 2 tampered, 1 usage or read error.";

/// `transitd audit <args>`; `args` starts after `audit`.
pub(super) fn run(args: &[String]) -> ExitCode {
    let flags = match Flags::parse(args, &["public-key"]) {
        Ok(f) => f,
        Err(e) => return usage(&e),
    };
    if let Some((name, _)) = flags.named.iter().find(|(name, _)| name != "public-key") {
        return usage(&format!("unknown flag -{name}"));
    }
    let file = match flags.positional.as_slice() {
        [cmd, file] if cmd == "verify" => file,
        _ => return usage(""),
    };
    let pinned = match flags.value("public-key") {
        None => None,
        Some(b64) => match B64.decode(b64.trim()) {
            Ok(k) if k.len() == 32 => Some(k),
            _ => return usage("-public-key must be the base64 of a 32-byte Ed25519 public key"),
        },
    };
    let report = verify_file(Path::new(file), pinned.as_deref());
    print_line(&format!("{file}: {report}"));
    ExitCode::from(report.exit_code())
}

fn usage(problem: &str) -> ExitCode {
    if problem.is_empty() {
        eprintln!("{USAGE}");
    } else {
        eprintln!("{problem}\n\n{USAGE}");
    }
    ExitCode::FAILURE
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::verify::tests::make_log;

    #[tokio::test]
    async fn cli_exit_codes() {
        let (_dir, path, _key, pk) = make_log(5, 100).await;
        let args = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let file = path.display().to_string();
        assert_eq!(run(&args(&["verify", &file])), ExitCode::SUCCESS);
        let pin = format!("-public-key={}", B64.encode(&pk));
        assert_eq!(run(&args(&["verify", &pin, &file])), ExitCode::SUCCESS);
        let wrong = format!("-public-key={}", B64.encode([7u8; 32]));
        assert_eq!(run(&args(&["verify", &wrong, &file])), ExitCode::from(2));
        assert_eq!(run(&args(&["verify"])), ExitCode::FAILURE);
        assert_eq!(
            run(&args(&["verify", "-public-key=abc", &file])),
            ExitCode::FAILURE
        );
        assert_eq!(
            run(&args(&["verify", "/nonexistent/audit.log"])),
            ExitCode::FAILURE
        );
    }
}
