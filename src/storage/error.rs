//! The store layer's error: what the stores, the seal's edits, the server
//! state and the change follower return.
//!
//! Its kinds say what happened in the stores' terms, never in HTTP's: the one
//! mapping to a status and Vault's error body is `From<StoreError> for
//! ApiError` in `crate::error`. Code that must react to an error (retry it,
//! drop a cache entry) matches a kind here, never its message.

use transit_keys::ErrorKind;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The caller's input is refused; the text is for the caller.
    #[error("{0}")]
    Invalid(String),
    /// What the request names does not exist.
    #[error(transparent)]
    Missing(#[from] Missing),
    /// The server is sealed: nothing is served until it is unsealed.
    #[error("Vault is sealed")]
    Sealed,
    /// Other writers kept winning the compare-and-swap; a retry may succeed.
    #[error(transparent)]
    Contended(#[from] Contended),
    /// The storage backend could not be reached; a retry may succeed. The
    /// cause is for the log.
    #[error("storage is unavailable: {0}")]
    Unavailable(String),
    /// A fault (an unreadable or misplaced entry, a poisoned lock, a failed
    /// random number generator); the text is for the log only.
    #[error("internal error: {0}")]
    Internal(String),
}

/// What was not found.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Missing {
    /// A userpass user.
    #[error("username does not exist")]
    User,
    /// An AppRole role, named by a request about its secret IDs.
    #[error("role {0:?} does not exist")]
    Role(String),
    /// An AppRole role whose field a request sets (OpenBao serves no such
    /// path for a missing role).
    #[error("role does not exist")]
    RoleToUpdate,
}

/// What kept changing while a change was tried again and again.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Contended {
    /// One entry; names it (`the key`, `the mount table`, ...).
    #[error("{0} is being changed concurrently; retry")]
    Entry(&'static str),
    /// New children of a token being revoked.
    #[error("tokens are being created under this token concurrently; retry")]
    ChildTokens,
}

pub type StoreResult<T> = Result<T, StoreError>;

impl StoreError {
    pub fn invalid(msg: impl Into<String>) -> Self {
        Self::Invalid(msg.into())
    }

    /// Whether trying again later may succeed (storage down, lost races).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::Sealed | Self::Contended(_) | Self::Unavailable(_)
        )
    }
}

impl From<transit_keys::Error> for StoreError {
    fn from(e: transit_keys::Error) -> Self {
        match e.kind() {
            ErrorKind::InvalidRequest => Self::Invalid(e.to_string()),
            _ => Self::Internal(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_outages_and_lost_races_are_transient() {
        assert!(StoreError::Sealed.is_transient());
        assert!(StoreError::Unavailable("down".to_owned()).is_transient());
        assert!(StoreError::from(Contended::Entry("the key")).is_transient());
        assert!(StoreError::from(Contended::ChildTokens).is_transient());
        assert!(!StoreError::invalid("no").is_transient());
        assert!(!StoreError::from(Missing::User).is_transient());
        assert!(!StoreError::Internal("malformed".to_owned()).is_transient());
    }
}
