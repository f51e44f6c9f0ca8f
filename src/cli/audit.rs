//! `transitd audit verify [-public-key=B64] [-checkpoint=SEQ:HEX] FILE...`:
//! the command line of the audit log checker ([`crate::audit::verify`]),
//! which prints its report and exits 0 (intact), 2 (tampered) or 1 (usage
//! or read error); and the server's `SIGHUP` handler, which has every audit
//! device follow its file after log rotation.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use super::{Flags, print_line};
use crate::audit::verify::{Expect, KnownCheckpoint, verify_files};
use crate::state::AppState;

const USAGE: &str = "usage: transitd audit verify [-public-key=BASE64] [-checkpoint=SEQ:HEX] FILE...\n\n\
     Checks a tamper-evident audit log: its hash chain, its signed checkpoints and\n\
     each FILE.checkpoint sidecar. Several files (oldest first, e.g. audit.log.2\n\
     audit.log.1 audit.log) are checked as one chain: each must continue the one\n\
     before it, and a missing file between them is reported.\n\
     -public-key pins the Ed25519 key (base64 of the raw 32 bytes) the checkpoints\n\
     must be signed with. -checkpoint is the checkpoint the server keeps for this\n\
     device and node (GET sys/audit-checkpoint/:path gives `seq` and `chain`): the\n\
     files must reach it and agree with it, which catches a log rolled back to an\n\
     earlier state sidecar and all.\n\
     Entries after the last signed checkpoint are reported as UNSIGNED.\n\
     Exit status: 0 intact, 2 tampered, 1 usage or read error.";

/// `transitd audit <args>`; `args` starts after `audit`.
pub(super) fn run(args: &[String]) -> ExitCode {
    let flags = match Flags::parse(args, &["public-key", "checkpoint"]) {
        Ok(f) => f,
        Err(e) => return usage(&e),
    };
    if let Some((name, _)) = flags
        .named
        .iter()
        .find(|(name, _)| name != "public-key" && name != "checkpoint")
    {
        return usage(&format!("unknown flag -{name}"));
    }
    let files: Vec<PathBuf> = match flags.positional.split_first() {
        Some((cmd, files)) if cmd == "verify" && !files.is_empty() => {
            files.iter().map(PathBuf::from).collect()
        }
        _ => return usage(""),
    };
    let pinned = match flags.value("public-key") {
        None => None,
        Some(b64) => match B64.decode(b64.trim()) {
            Ok(k) if k.len() == 32 => Some(k),
            _ => return usage("-public-key must be the base64 of a 32-byte Ed25519 public key"),
        },
    };
    let checkpoint = match flags.value("checkpoint") {
        None => None,
        Some(text) => match KnownCheckpoint::parse(text) {
            Some(cp) => Some(cp),
            None => return usage("-checkpoint must be SEQ:HEX (a decimal seq, 64 hex digits)"),
        },
    };
    let report = verify_files(
        &files,
        &Expect {
            public_key: pinned.as_deref(),
            checkpoint,
        },
    );
    let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    print_line(&format!("{}: {report}", names.join(" ")));
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

/// Every `SIGHUP`, has each audit device follow its file to what is at its
/// path now (a new file after rotation continues the chain), as Vault and
/// OpenBao reopen their audit files. Runs for the life of the server.
pub(super) async fn reopen_audit_files_on_hangup(state: Arc<AppState>) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangups = match signal(SignalKind::hangup()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "SIGHUP cannot be handled: audit files will not be reopened on SIGHUP");
            return;
        }
    };
    while hangups.recv().await.is_some() {
        let Ok(unsealed) = state.unsealed() else {
            tracing::info!("SIGHUP while sealed: no audit file is open");
            continue;
        };
        for (path, outcome) in unsealed.audit.broker.reopen().await {
            match outcome {
                Ok(()) => tracing::info!(device = %path, "SIGHUP: audit file reopened"),
                Err(e) => {
                    tracing::error!(device = %path, error = %e, "SIGHUP: audit file not reopened");
                }
            }
        }
    }
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
            run(&args(&["verify", "-checkpoint=5", &file])),
            ExitCode::FAILURE
        );
        assert_eq!(
            run(&args(&["verify", "/nonexistent/audit.log"])),
            ExitCode::FAILURE
        );
        // The same file twice is not one chain.
        assert_eq!(run(&args(&["verify", &file, &file])), ExitCode::from(2));
    }
}
