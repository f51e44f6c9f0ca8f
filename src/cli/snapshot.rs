//! `operator snapshot save|restore`: SQLite store snapshots, made from and
//! put back onto the database file named by the server's configuration
//! (`storage/snapshot/`). Not Vault's `operator raft snapshot`: transitd has
//! no raft, and its snapshot format is its own.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::{Flags, print_line};
use crate::config::{self, StorageConfig};
use crate::storage::snapshot::{self, Destination};

const USAGE: &str = "usage: transitd operator snapshot save -config=FILE SNAPSHOT   (SNAPSHOT `-`: stdout)\n       \
     transitd operator snapshot restore -config=FILE [-discard-old] SNAPSHOT   (server stopped)";

pub fn run(args: &[String]) -> Result<ExitCode, String> {
    let (sub, rest) = args.split_first().ok_or_else(|| USAGE.to_owned())?;
    // A lone `-` is stdout, not a flag.
    let (stdout, rest): (Vec<String>, Vec<String>) = rest.iter().cloned().partition(|a| a == "-");
    let mut flags = Flags::parse(&rest, &["config"])?;
    flags.positional.extend(stdout);
    let allowed: &[&str] = match sub.as_str() {
        "save" => &["config"],
        _ if flags.positional.iter().any(|p| p == "-") => {
            return Err(format!("restore reads a snapshot file, not stdin\n{USAGE}"));
        }
        "restore" => &["config", "discard-old"],
        _ => return Err(USAGE.to_owned()),
    };
    if let Some((name, _)) = flags
        .named
        .iter()
        .find(|(n, _)| !allowed.contains(&n.as_str()))
    {
        return Err(format!("unknown flag -{name}\n{USAGE}"));
    }
    let [target] = flags.positional.as_slice() else {
        return Err(USAGE.to_owned());
    };
    let db = database(&flags)?;
    match sub.as_str() {
        "save" => save(&db, target),
        _ => restore(&db, Path::new(target), !flags.is_set("discard-old")),
    }
}

/// The SQLite file of the configuration given by `-config`.
fn database(flags: &Flags) -> Result<PathBuf, String> {
    let path = flags.value("config").ok_or_else(|| {
        format!("-config=FILE is required: the server's configuration names its database\n{USAGE}")
    })?;
    match config::load(Path::new(path))?.storage {
        StorageConfig::Sqlite { path } => Ok(path),
        StorageConfig::Postgresql { .. } => Err(
            "snapshots are of SQLite stores; back up PostgreSQL storage with pg_dump or base \
             backups (docs/disaster-recovery.md)"
                .to_owned(),
        ),
        StorageConfig::Inmem => Err("storage \"inmem\" keeps nothing to snapshot".to_owned()),
    }
}

fn save(db: &Path, target: &str) -> Result<ExitCode, String> {
    let to = match target {
        "-" => Destination::Stdout,
        file => Destination::File(Path::new(file)),
    };
    let header = snapshot::save(db, &to)?;
    let summary = format!(
        "{} bytes of sealed storage, sha256 {}",
        header.content_len,
        hex::encode(header.sha256)
    );
    match to {
        // stdout carries the snapshot: the summary goes to stderr.
        Destination::Stdout => eprintln!("Snapshot of {} written: {summary}", db.display()),
        Destination::File(file) => print_line(&format!(
            "Success! Snapshot of {} saved to {} ({summary}).",
            db.display(),
            file.display()
        )),
    }
    Ok(ExitCode::SUCCESS)
}

fn restore(db: &Path, snapshot_file: &Path, keep_old: bool) -> Result<ExitCode, String> {
    let restored = snapshot::restore(snapshot_file, db, keep_old)?;
    let mut out = format!(
        "Success! {} restored to {} (snapshot taken at Unix time {}).\n",
        snapshot_file.display(),
        db.display(),
        restored.header.created_unix
    );
    if let Some(aside) = &restored.kept_aside {
        out.push_str(&format!(
            "The database it replaced is kept at {}.\n",
            aside.display()
        ));
    }
    out.push_str(
        "Start the server and unseal it with the unseal keys that were valid when the \
         snapshot was taken; writes made after it are gone.",
    );
    print_line(&out);
    Ok(ExitCode::SUCCESS)
}
