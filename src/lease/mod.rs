//! Leases: leader election for singletons, with fencing tokens.
//!
//! A *lease* is a named lock held by one process of a group for a limited
//! time (its TTL) and kept by renewing it. A [`LeaseBackend`] grants them:
//! the `kinesis-lock` add-on has PostgreSQL (advisory locks on a dedicated
//! connection) and Redis (`SET NX PX`); [`MemoryLeases`] serves tests and
//! single-process programs.
//!
//! Every successful [`acquire`](LeaseBackend::acquire) returns a new
//! [`FencingToken`], larger than every token granted before under that name.
//! A holder that was paused (a stop-the-world pause, `SIGSTOP`, a lost
//! network) may still believe it holds the lease after it expired and
//! someone else took it; the token lets the store tell the two apart:
//! [`FencedStore`](crate::persist::FencedStore) refuses a write whose token
//! is lower than the token of the record it replaces
//! ([`Error::Fenced`](crate::Error::Fenced)).
//!
//! A [singleton](crate::App::singleton) component is started by
//! [`run_singleton`] only while this process holds the lease named after its
//! URI, and stopped as soon as a renewal fails or the lease time passes
//! without a successful renewal, as measured by this process's own monotonic
//! clock (so a process resumed after a pause stops the component without
//! waiting for an answer from the backend).
//!
//! The backend contract (checked for every backend by
//! `kinesis::lease::conformance` with the `conformance` feature):
//!
//! * At most one holder of a name at a time: `acquire` answers `None` while
//!   an unexpired lease of that name is held, by this process or another.
//! * A lease not renewed within its TTL expires; then `acquire` succeeds.
//! * `renew` of an expired or released lease answers `false` and does not
//!   bring it back; `renew` of a held one extends it by the TTL.
//! * Tokens of one name increase strictly with every grant, across
//!   processes and restarts of the backend's clients.

#[cfg(feature = "conformance")]
pub mod conformance;
mod memory;
mod singleton;

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;

pub use memory::MemoryLeases;
pub use singleton::{run_singleton, SingletonOptions};

/// A number that grows with every grant of a lease of one name: the holder
/// with the highest token is the current one.
pub type FencingToken = u64;

/// A lease held by this process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The lease's name (a singleton's URI).
    pub name: String,
    /// The fencing token of this grant.
    pub token: FencingToken,
    /// What the backend knows this grant by (a random id): renewals and the
    /// release check it, so a holder never extends or frees a later grant.
    pub holder: String,
}

/// Why a lease operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LeaseError {
    /// The backend could not be reached or failed. Retryable; for `renew`,
    /// the holder must treat the lease as lost once its time has passed.
    #[error("lease backend: {0}")]
    Backend(String),
    /// The lease name cannot be used by this backend.
    #[error("invalid lease name {0}")]
    InvalidName(String),
}

/// `Result` of lease operations.
pub type LeaseResult<T> = Result<T, LeaseError>;

/// Grants, renews and releases leases; see the [module docs](self) for the
/// contract. Object safe, used as `Arc<dyn LeaseBackend>`.
pub trait LeaseBackend: Send + Sync + 'static {
    /// A short name of the backend for logs: `memory`, `postgres`, `redis`.
    fn backend(&self) -> &'static str;

    /// Takes the lease `name` for `ttl` if nobody holds it; `None` if it is
    /// held.
    fn acquire<'a>(
        &'a self,
        name: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, LeaseResult<Option<Lease>>>;

    /// Extends `lease` by `ttl` from now; `false` if it was lost (expired,
    /// released, taken by another holder).
    fn renew<'a>(&'a self, lease: &'a Lease, ttl: Duration) -> BoxFuture<'a, LeaseResult<bool>>;

    /// Gives `lease` up so another process can take it at once; a lease
    /// already lost is left alone.
    fn release<'a>(&'a self, lease: &'a Lease) -> BoxFuture<'a, LeaseResult<()>>;
}

/// A shared lease backend.
pub type SharedLeases = Arc<dyn LeaseBackend>;

/// The lease backend and lease time singletons use.
#[derive(Clone)]
pub struct LeaseConfig {
    /// Where leases are taken.
    pub backend: SharedLeases,
    /// How long a lease lasts without renewal; renewed every third of it.
    pub ttl: Duration,
}

impl std::fmt::Debug for LeaseConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaseConfig")
            .field("backend", &self.backend.backend())
            .field("ttl", &self.ttl)
            .finish()
    }
}

/// The default lease time: 10 seconds.
pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(10);

/// The shortest lease time accepted: 300 ms (renewals every 100 ms).
pub const MIN_LEASE_TTL: Duration = Duration::from_millis(300);
