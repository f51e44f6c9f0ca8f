//! What a check of an audit log found: a verified log's counts, or the
//! first sign of tampering with its line, kind and explanation, or a read
//! error; printed as one line, with the exit status `transitd audit verify`
//! gives it.

use std::fmt;

/// What a check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyReport {
    /// Every line chains and every signature verifies.
    Ok(Box<Verified>),
    /// The first sign of tampering.
    Tampered(Tampering),
    /// The file could not be read at all.
    Error(String),
}

/// A log that checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// Complete lines read, headers and checkpoints included.
    pub lines: u64,
    /// The `seq` the first file continues from (0: it starts the log).
    pub first_seq: u64,
    /// `seq` of the last entry (0: header only).
    pub last_seq: u64,
    /// Checkpoint lines in the files.
    pub checkpoints: u64,
    /// Files checked as one chain.
    pub files: u64,
    /// `seq` of the last signed point the log agrees with: entries after it
    /// are unsigned.
    pub last_signed_seq: u64,
    /// `seq` of the last file's sidecar checkpoint, when there is a sidecar.
    pub sidecar_seq: Option<u64>,
    /// `seq` of the server's checkpoint, when given and found in the files.
    pub server_checkpoint: Option<u64>,
    /// The header's (raw 32-byte) public key.
    pub public_key: Vec<u8>,
    /// Things worth knowing that are not tampering.
    pub notes: Vec<String>,
}

/// What kind of tampering was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TamperKind {
    /// No valid header: not a tamper-evident log, or its header was removed.
    NotAuditLog,
    /// A line's content no longer matches the chain.
    Edited,
    /// Entries missing from the middle.
    Removed,
    /// Entries out of order.
    Reordered,
    /// A line that was not written by the device.
    Inserted,
    /// A checkpoint (in the file or the sidecar) whose signature fails.
    BadSignature,
    /// The header's key is not the pinned key.
    WrongPublicKey,
    /// The file ends before the sidecar's checkpoint.
    Truncated,
    /// The chain at the sidecar's (or the server's) checkpoint `seq` is not
    /// the one it records.
    CheckpointMismatch,
    /// A file continues from a `seq` past the end of the file given before
    /// it: a file between them is missing.
    MissingFile,
    /// A file does not continue the one given before it.
    NotContinuation,
}

/// Where and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tampering {
    /// The file, when several were checked.
    pub file: Option<String>,
    /// 1-based line number, `None` for the sidecar file or the log as a whole.
    pub line: Option<u64>,
    pub kind: TamperKind,
    pub message: String,
}

impl VerifyReport {
    pub fn is_ok(&self) -> bool {
        matches!(self, Self::Ok(_))
    }

    /// Entries after the last signed point, when the log checked out.
    pub fn unsigned_entries(&self) -> Option<u64> {
        match self {
            Self::Ok(v) => Some(v.last_seq - v.last_signed_seq),
            _ => None,
        }
    }

    /// 0 verified, 2 tampered, 1 unreadable.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Ok(_) => 0,
            Self::Tampered(_) => 2,
            Self::Error(_) => 1,
        }
    }
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ok(v) => {
                write!(
                    f,
                    "OK: {} lines, last seq {}, {} checkpoints",
                    v.lines, v.last_seq, v.checkpoints
                )?;
                if v.files > 1 {
                    write!(f, ", {} files in one chain", v.files)?;
                }
                if let Some(s) = v.sidecar_seq {
                    write!(f, ", signed checkpoint at seq {s} matches")?;
                }
                if let Some(s) = v.server_checkpoint {
                    write!(f, ", the server's checkpoint at seq {s} matches")?;
                }
                if v.last_seq > v.last_signed_seq {
                    write!(
                        f,
                        "; UNSIGNED: the last {} entries (seq {}..{}) come after the last signed checkpoint \
                         (seq {}), so they could have been dropped or rewritten unseen (the writer was \
                         still running, or stopped within a second of them)",
                        v.last_seq - v.last_signed_seq,
                        v.last_signed_seq + 1,
                        v.last_seq,
                        v.last_signed_seq
                    )?;
                }
                for note in &v.notes {
                    write!(f, "; {note}")?;
                }
                Ok(())
            }
            Self::Tampered(t) => {
                write!(f, "TAMPERED: ")?;
                if let Some(file) = &t.file {
                    write!(f, "{file}: ")?;
                }
                if let Some(n) = t.line {
                    write!(f, "line {n}: ")?;
                }
                write!(f, "{}", t.message)
            }
            Self::Error(e) => write!(f, "ERROR: {e}"),
        }
    }
}

pub(super) fn tampered(line: Option<u64>, kind: TamperKind, message: String) -> VerifyReport {
    VerifyReport::Tampered(Tampering {
        file: None,
        line,
        kind,
        message,
    })
}
