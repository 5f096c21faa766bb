//! The [`Store`] trait every persistence back-end implements.

use std::sync::Arc;

use futures::future::BoxFuture;

use super::Record;
use crate::Error;

/// Why a store operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The compare-and-set on `version` failed: somebody else wrote first.
    #[error("version conflict on {uri}: expected version {expected}, found {found:?}")]
    Conflict {
        /// The record's URI.
        uri: String,
        /// The version the writer expected (0: no record).
        expected: u64,
        /// The version found (`None`: no record).
        found: Option<u64>,
    },
    /// The URI cannot be stored by this back-end (too long, bad characters).
    #[error("invalid record key {0}")]
    InvalidKey(String),
    /// A stored record could not be read back (torn or foreign data).
    #[error("corrupt record {uri}: {reason}")]
    Corrupt {
        /// The record's URI.
        uri: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The writer's fencing token is lower than the token of the record it
    /// would replace: a later holder of the lease wrote it (see
    /// [`FencedStore`](super::FencedStore)). Not retryable by this writer.
    #[error("fenced: the write to {uri} with fencing token {token} is refused, the record was written by the holder of token {current}")]
    Fenced {
        /// The record's URI.
        uri: String,
        /// The writer's token.
        token: u64,
        /// The token of the stored record.
        current: u64,
    },
    /// The back-end failed: I/O, connection, server error. Usually retryable.
    #[error("{0}")]
    Backend(String),
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Fenced { uri, token, current } => Error::Fenced(format!(
                "the write to {uri} with fencing token {token} is refused, the record was written by the holder of token {current}"
            )),
            e => Error::Store(e.to_string()),
        }
    }
}

/// `Result` of store operations.
pub type StoreResult<T> = Result<T, StoreError>;

/// A place records live. Object safe: the back-end is chosen at run time from
/// `KINESIS_DB_CONNECTION` and used as `Arc<dyn Store>`.
///
/// Versions: a record that does not exist has version 0. `save(record,
/// expected)` writes `record` (whose `version` must be `expected + 1`) only if
/// the stored version is `expected`, atomically, even against other processes
/// using the same back-end; otherwise it returns [`StoreError::Conflict`] and
/// changes nothing. A successful `save` is durable when it returns.
pub trait Store: Send + Sync + 'static {
    /// A short name of the back-end for logs: `file`, `sqlite`, `postgres`…
    fn backend(&self) -> &'static str;

    /// The record stored under `uri`, if any.
    fn load<'a>(&'a self, uri: &'a str) -> BoxFuture<'a, StoreResult<Option<Record>>>;

    /// Compare-and-set: writes `record` if the stored version is `expected`.
    fn save<'a>(&'a self, record: &'a Record, expected: u64) -> BoxFuture<'a, StoreResult<()>>;

    /// Deletes the record under `uri`; `Ok(false)` if there was none.
    fn delete<'a>(&'a self, uri: &'a str) -> BoxFuture<'a, StoreResult<bool>>;

    /// The URIs of all records whose URI starts with `prefix`, sorted.
    fn list<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, StoreResult<Vec<String>>>;

    /// A cheap check that the store is reachable and writable, for
    /// readiness (`GET /_kinesis/ready`). The default lists the records
    /// under a URI that names none (`/_kinesis/ping`); back-ends override it
    /// with something closer to a write (filedb checks that its directory
    /// takes a new file).
    fn ping(&self) -> BoxFuture<'_, StoreResult<()>> {
        Box::pin(async move { self.list("/_kinesis/ping/").await.map(drop) })
    }

    /// The feed that brings this store's changes made by other processes
    /// (see [`ChangeFeed`](super::ChangeFeed)); `None` (the default) when
    /// nothing tells this process about them. A store that wraps another
    /// returns the inner store's feed unless it has its own.
    fn feed(&self) -> Option<Arc<super::ChangeFeed>> {
        None
    }
}

/// A shared store.
pub type SharedStore = Arc<dyn Store>;
