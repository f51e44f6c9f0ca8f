//! The one error type of auditing, shared by the devices, the broker and
//! their callers: kept apart from both so that neither imports the other for
//! it.

/// What can go wrong with auditing.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AuditError {
    #[error("invalid audit device configuration: {0}")]
    Config(String),
    #[error("an audit device is already enabled at {0}")]
    AlreadyEnabled(String),
    #[error("no audit device is enabled at {0}")]
    NotEnabled(String),
    #[error("audit device {target}: {message}")]
    Io { target: String, message: String },
    #[error(
        "audit log {target} failed its integrity check: {message}; run `transitd audit verify`, \
         then move the file and its .checkpoint aside to start a new log"
    )]
    Tampered { target: String, message: String },
    #[error("audit device {0} is stopped")]
    Stopped(String),
    #[error("audit entry could not be formatted: {0}")]
    Format(String),
    #[error("no audit device recorded the entry: {}", .0.join("; "))]
    AllFailed(Vec<String>),
}
