//! Driver errors as storage errors, on one line: `Corrupt` for damaged data,
//! `Unavailable` for the rest, never with a server error's detail (which may
//! quote data).

use ::postgres::error::SqlState;

use super::StorageError;

/// A driver error as a storage error: damaged data is `Corrupt`, the rest
/// (network, server down, timeouts, permissions...) `Unavailable`.
pub(super) fn db_err(e: ::postgres::Error) -> StorageError {
    let corrupt = e
        .code()
        .is_some_and(|c| *c == SqlState::DATA_CORRUPTED || *c == SqlState::INDEX_CORRUPTED);
    if corrupt {
        StorageError::Corrupt(describe(&e))
    } else {
        StorageError::Unavailable(describe(&e))
    }
}

/// A column that does not hold what the schema says.
pub(super) fn column_err(e: ::postgres::Error) -> StorageError {
    StorageError::Corrupt(format!("unexpected column content: {}", describe(&e)))
}

/// A driver error and its causes on one line. A server error shows its
/// severity, message and SQLSTATE, not its detail (which may quote data).
pub(super) fn describe(e: &::postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!(
            "{}: {} (SQLSTATE {})",
            db.severity(),
            db.message(),
            db.code().code()
        );
    }
    let mut message = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.ends_with(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    message.replace('\n', " ")
}
