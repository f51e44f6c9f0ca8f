//! What a check of an audit log found: a verified log's counts, or the
//! first sign of tampering with its line, kind and explanation, or a read
//! error; printed as one line, with the exit status `transitd audit verify`
//! gives it.

use std::fmt;

/// What a check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyReport {
    /// Every line chains and every signature verifies.
    Ok(Verified),
    /// The first sign of tampering.
    Tampered(Tampering),
    /// The file could not be read at all.
    Error(String),
}

/// A log that checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// Complete lines read, header and checkpoints included.
    pub lines: u64,
    /// `seq` of the last entry (0: header only).
    pub last_seq: u64,
    /// Checkpoint lines in the file.
    pub checkpoints: u64,
    /// `seq` of the sidecar's checkpoint, when there is a sidecar.
    pub sidecar_seq: Option<u64>,
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
    /// The chain at the sidecar checkpoint's `seq` is not the signed one.
    CheckpointMismatch,
}

/// Where and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tampering {
    /// 1-based line number, `None` for the sidecar file.
    pub line: Option<u64>,
    pub kind: TamperKind,
    pub message: String,
}

impl VerifyReport {
    pub fn is_ok(&self) -> bool {
        matches!(self, Self::Ok(_))
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
                if let Some(s) = v.sidecar_seq {
                    write!(f, ", signed checkpoint at seq {s} matches")?;
                }
                for note in &v.notes {
                    write!(f, "; {note}")?;
                }
                Ok(())
            }
            Self::Tampered(t) => match t.line {
                Some(n) => write!(f, "TAMPERED: line {n}: {}", t.message),
                None => write!(f, "TAMPERED: {}", t.message),
            },
            Self::Error(e) => write!(f, "ERROR: {e}"),
        }
    }
}

pub(super) fn tampered(line: Option<u64>, kind: TamperKind, message: String) -> VerifyReport {
    VerifyReport::Tampered(Tampering {
        line,
        kind,
        message,
    })
}
