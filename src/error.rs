//! The one error type of kinesis.
//!
//! Every fallible operation returns [`Result<T>`](crate::Result), whose error
//! is [`Error`]. Callers match on the variant (or on [`Error::kind`]) to decide
//! what to do; [`Error::is_retryable`] says whether the same call may succeed
//! later. The HTTP add-on maps [`ErrorKind`] to a status in one table.

use std::time::Duration;

/// What went wrong. Cheap to clone, so one failure can answer many callers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No component, method or record by that name. Not retryable.
    #[error("not found: {0}")]
    NotFound(String),
    /// The state changed since it was read: the ETag (or stored version) given
    /// is stale. Re-read and try again.
    #[error("conflict: the state changed, current etag is {current}")]
    Conflict {
        /// The ETag that is current now.
        current: crate::ETag,
    },
    /// The component exists but is not in the `Started` stage yet. Retryable.
    #[error("component {0} is not started")]
    NotStarted(String),
    /// The component is stopping or stopped and takes no new messages.
    #[error("component {0} is stopping")]
    Stopping(String),
    /// The component's mailbox is full and the caller chose not to wait for
    /// room (calls by name, the path of remote surfaces, never wait).
    /// Retryable: come back later.
    #[error("component {0} is overloaded: its mailbox is full, try again later")]
    Overloaded(String),
    /// The operation did not finish in time. Retryable.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// The input does not fit: a bad name, wrong arguments, an invalid state.
    #[error("invalid: {0}")]
    Invalid(String),
    /// A handler or hook returned an error.
    #[error("handler failed: {0}")]
    Handler(String),
    /// A handler or hook panicked; the state was restored to the last
    /// published snapshot.
    #[error("panicked: {0}")]
    Panicked(String),
    /// The persistence store failed; the mutation was rolled back. Retryable.
    #[error("store: {0}")]
    Store(String),
    /// Encryption or decryption failed: a wrong or missing key, or a tampered
    /// value. Never carries key material or plaintext.
    #[error("crypto: {0}")]
    Crypto(String),
    /// A configuration value is missing or malformed.
    #[error("configuration: {0}")]
    Config(String),
}

/// The variant of an [`Error`] without its data, for matching and mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// [`Error::NotFound`]
    NotFound,
    /// [`Error::Conflict`]
    Conflict,
    /// [`Error::NotStarted`]
    NotStarted,
    /// [`Error::Stopping`]
    Stopping,
    /// [`Error::Overloaded`]
    Overloaded,
    /// [`Error::Timeout`]
    Timeout,
    /// [`Error::Invalid`]
    Invalid,
    /// [`Error::Handler`]
    Handler,
    /// [`Error::Panicked`]
    Panicked,
    /// [`Error::Store`]
    Store,
    /// [`Error::Crypto`]
    Crypto,
    /// [`Error::Config`]
    Config,
}

impl Error {
    /// The variant without its data.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::NotFound(_) => ErrorKind::NotFound,
            Error::Conflict { .. } => ErrorKind::Conflict,
            Error::NotStarted(_) => ErrorKind::NotStarted,
            Error::Stopping(_) => ErrorKind::Stopping,
            Error::Overloaded(_) => ErrorKind::Overloaded,
            Error::Timeout(_) => ErrorKind::Timeout,
            Error::Invalid(_) => ErrorKind::Invalid,
            Error::Handler(_) => ErrorKind::Handler,
            Error::Panicked(_) => ErrorKind::Panicked,
            Error::Store(_) => ErrorKind::Store,
            Error::Crypto(_) => ErrorKind::Crypto,
            Error::Config(_) => ErrorKind::Config,
        }
    }

    /// Whether the same call may succeed if tried again later (after
    /// re-reading, for a conflict).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self.kind(),
            ErrorKind::Conflict
                | ErrorKind::NotStarted
                | ErrorKind::Overloaded
                | ErrorKind::Timeout
                | ErrorKind::Store
        )
    }

    /// Shorthand for [`Error::Handler`] from anything displayable.
    pub fn handler(message: impl std::fmt::Display) -> Self {
        Error::Handler(message.to_string())
    }

    /// Shorthand for [`Error::Invalid`] from anything displayable.
    pub fn invalid(message: impl std::fmt::Display) -> Self {
        Error::Invalid(message.to_string())
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::Invalid(e.to_string())
    }
}

/// `Result` with [`Error`] as the default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;
