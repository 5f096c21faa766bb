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
    /// The caller did not prove who it is: no credentials, or bad ones
    /// (HTTP 401). Not retryable with the same credentials.
    #[error("unauthenticated: {0}")]
    Unauthenticated(String),
    /// The caller is known but may not do this (HTTP 403). Not retryable.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// A remote runtime could not be reached, or the connection broke before
    /// an answer came (see [`remote`](crate::remote)). Retryable; for a
    /// write, the write may or may not have happened: re-read first.
    #[error("unreachable: {0}")]
    Unreachable(String),
    /// A write by the holder of a singleton's lease was refused because a
    /// later holder (a higher fencing token) has written since: this process
    /// lost the lease. Not retryable here (HTTP 409).
    #[error("fenced: {0}")]
    Fenced(String),
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
    /// [`Error::Unauthenticated`].
    Unauthenticated,
    /// [`Error::Forbidden`].
    Forbidden,
    /// [`Error::Unreachable`].
    Unreachable,
    /// [`Error::Fenced`].
    Fenced,
}

impl ErrorKind {
    /// Every kind, in declaration order.
    pub const ALL: [ErrorKind; 16] = [
        ErrorKind::NotFound,
        ErrorKind::Conflict,
        ErrorKind::NotStarted,
        ErrorKind::Stopping,
        ErrorKind::Overloaded,
        ErrorKind::Timeout,
        ErrorKind::Invalid,
        ErrorKind::Handler,
        ErrorKind::Panicked,
        ErrorKind::Store,
        ErrorKind::Crypto,
        ErrorKind::Config,
        ErrorKind::Unauthenticated,
        ErrorKind::Forbidden,
        ErrorKind::Unreachable,
        ErrorKind::Fenced,
    ];

    /// The kind's name on the wire, the same for every transport: the last
    /// part of the HTTP problem type (`urn:kinesis:problem:not-found`), and
    /// what gRPC and the command line's `--json` output carry.
    ///
    /// ```
    /// use kinesis::ErrorKind;
    /// assert_eq!(ErrorKind::NotFound.name(), "not-found");
    /// assert_eq!(ErrorKind::from_name("not-found"), Some(ErrorKind::NotFound));
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::NotFound => "not-found",
            ErrorKind::Conflict => "conflict",
            ErrorKind::NotStarted => "not-started",
            ErrorKind::Stopping => "stopping",
            ErrorKind::Overloaded => "overloaded",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Invalid => "invalid",
            ErrorKind::Handler => "handler-failed",
            ErrorKind::Panicked => "panicked",
            ErrorKind::Store => "store-unavailable",
            ErrorKind::Crypto => "crypto",
            ErrorKind::Config => "configuration",
            ErrorKind::Unauthenticated => "unauthorized",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::Unreachable => "unreachable",
            ErrorKind::Fenced => "fenced",
        }
    }

    /// The kind named `name` (see [`ErrorKind::name`]).
    pub fn from_name(name: &str) -> Option<ErrorKind> {
        ErrorKind::ALL.into_iter().find(|kind| kind.name() == name)
    }
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
            Error::Unauthenticated(_) => ErrorKind::Unauthenticated,
            Error::Forbidden(_) => ErrorKind::Forbidden,
            Error::Unreachable(_) => ErrorKind::Unreachable,
            Error::Fenced(_) => ErrorKind::Fenced,
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
                | ErrorKind::Unreachable
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

    /// Rebuilds the error a remote runtime reported, from its kind and its
    /// text (`Display`, as the HTTP add-on writes it in a problem's
    /// `detail`), so that a remote caller gets the same error an in-process
    /// caller would: the same variant and the same inner message. The words
    /// this type's `Display` adds around the message are taken off again;
    /// text that does not have them is kept whole. A conflict takes the
    /// current ETag the server sent (`current_etag`), else the one in the
    /// text.
    ///
    /// ```
    /// use kinesis::{Error, ErrorKind};
    /// let sent = Error::NotFound("component /root/x".into());
    /// let got = Error::from_remote(ErrorKind::NotFound, &sent.to_string(), None);
    /// assert_eq!(got, sent);
    /// ```
    pub fn from_remote(kind: ErrorKind, text: &str, current_etag: Option<crate::ETag>) -> Error {
        // The words around the message: `Display` of the kind with a marker
        // for the message, split at the marker.
        const MARK: &str = "\u{1}";
        let unwrap = |make: fn(String) -> Error| {
            let shape = make(MARK.to_owned()).to_string();
            let (before, after) = shape.split_once(MARK).unwrap_or((&shape, ""));
            let inner =
                text.strip_prefix(before).and_then(|rest| rest.strip_suffix(after)).unwrap_or(text);
            make(inner.to_owned())
        };
        match kind {
            ErrorKind::NotFound => unwrap(Error::NotFound),
            ErrorKind::Conflict => {
                let current = current_etag
                    .or_else(|| text.rsplit(' ').next().and_then(|tag| tag.parse().ok()));
                match current {
                    Some(current) => Error::Conflict { current },
                    None => Error::Invalid(format!("a conflict without a current ETag: {text}")),
                }
            }
            ErrorKind::NotStarted => unwrap(Error::NotStarted),
            ErrorKind::Stopping => unwrap(Error::Stopping),
            ErrorKind::Overloaded => unwrap(Error::Overloaded),
            ErrorKind::Timeout => Error::Timeout(
                text.strip_prefix("timed out after ")
                    .and_then(parse_debug_duration)
                    .unwrap_or_default(),
            ),
            ErrorKind::Invalid => unwrap(Error::Invalid),
            ErrorKind::Handler => unwrap(Error::Handler),
            ErrorKind::Panicked => unwrap(Error::Panicked),
            ErrorKind::Store => unwrap(Error::Store),
            ErrorKind::Crypto => unwrap(Error::Crypto),
            ErrorKind::Config => unwrap(Error::Config),
            ErrorKind::Unauthenticated => unwrap(Error::Unauthenticated),
            ErrorKind::Forbidden => unwrap(Error::Forbidden),
            ErrorKind::Unreachable => unwrap(Error::Unreachable),
            ErrorKind::Fenced => unwrap(Error::Fenced),
        }
    }
}

/// Parses what `Debug` writes for a `Duration`: a decimal number and one of
/// `ns`, `µs`, `ms`, `s`.
fn parse_debug_duration(text: &str) -> Option<Duration> {
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let seconds = match unit {
        "s" => number,
        "ms" => number / 1e3,
        "µs" => number / 1e6,
        "ns" => number / 1e9,
        _ => return None,
    };
    Duration::try_from_secs_f64(seconds).ok()
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::Invalid(e.to_string())
    }
}

/// `Result` with [`Error`] as the default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    /// Every kind survives the trip through its text, message included.
    #[test]
    fn from_remote_inverts_display_for_every_kind() {
        let tag = crate::ETag::of(b"{}", None);
        let all = [
            Error::NotFound("component /root/x".into()),
            Error::Conflict { current: tag },
            Error::NotStarted("/root/a".into()),
            Error::Stopping("/root/a".into()),
            Error::Overloaded("/root/a".into()),
            Error::Timeout(Duration::from_millis(1500)),
            Error::Timeout(Duration::from_micros(250)),
            Error::Invalid("argument `by`: invalid type: string \"x\", expected u64".into()),
            Error::Handler("not found: this text looks like another kind".into()),
            Error::Panicked("boom".into()),
            Error::Store("down".into()),
            Error::Crypto("wrong key".into()),
            Error::Config("KINESIS_X".into()),
            Error::Unauthenticated("no token".into()),
            Error::Forbidden("read:/root/a".into()),
            Error::Unreachable("connection refused".into()),
            Error::Fenced("token 3 < 4".into()),
        ];
        for sent in all {
            let got = Error::from_remote(sent.kind(), &sent.to_string(), None);
            assert_eq!(got, sent);
        }
    }

    #[test]
    fn from_remote_keeps_text_it_does_not_recognise_and_prefers_the_sent_etag() {
        assert_eq!(
            Error::from_remote(ErrorKind::Invalid, "malformed JSON at line 1", None),
            Error::Invalid("malformed JSON at line 1".into())
        );
        let tag = crate::ETag::of(b"[]", None);
        assert_eq!(
            Error::from_remote(ErrorKind::Conflict, "If-Match failed", Some(tag)),
            Error::Conflict { current: tag }
        );
    }
}
