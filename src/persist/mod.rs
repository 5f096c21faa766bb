//! Persistence: which fields are stored, in what form, and where.
//!
//! * [`Persist`](macro@crate::Persist) (the derive) marks fields with
//!   `#[persist]` or `#[persist(encrypt)]`; the runtime finds that schema by
//!   type ([`schema_of`]).
//! * A [`Record`] is the stored form; a [`Store`] keeps records with
//!   compare-and-set on their version.
//! * [`Cipher`] encrypts fields with AES-256-GCM, the component URI and field
//!   name as associated data.
//! * [`StoreRegistry`] opens a store from a connection URL by its scheme.
//!
//! The rules the runtime keeps (see `docs/runtime-semantics.md`): persisted
//! fields are loaded before `init`; after every message, batch or stage change
//! that changed them they are saved, and the caller's reply is sent only once
//! the store confirmed the write. If the write fails the state is rolled back
//! and the caller gets [`Error::Store`](crate::Error::Store).

mod cipher;
#[cfg(feature = "conformance")]
pub mod conformance;
mod feed;
mod fence;
mod memory;
mod record;
mod registry;
mod schema;
mod store;

pub use cipher::{Cipher, ExposeSecret, KeyId, SecretString, ENCRYPTED_MARKER};
pub use feed::{ChangeFeed, History, RemoteChange};
pub(crate) use feed::{Holder, Incoming};
pub use fence::{claim, fence_of, FencedStore, FENCE_FIELD};
pub use memory::MemoryStore;
pub use record::{now_rfc3339, Record, RECORD_SCHEMA};
pub use registry::{StoreOpener, StoreRegistry};
pub use schema::{schema_of, PersistField, PersistSchema, REDACTED};
pub use store::{SharedStore, Store, StoreError, StoreResult};

/// Where a container's components keep their persisted fields.
#[derive(Clone)]
pub struct Persistence {
    /// The store records go to.
    pub store: SharedStore,
    /// The cipher for `#[persist(encrypt)]` fields, if a key is configured.
    pub cipher: Option<std::sync::Arc<Cipher>>,
}

impl std::fmt::Debug for Persistence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Persistence")
            .field("store", &self.store.backend())
            .field("cipher", &self.cipher.as_ref().map(|c| c.key_id()))
            .finish()
    }
}

/// A connection URL with any password replaced by `***`, safe for logs and
/// error messages.
///
/// ```
/// assert_eq!(kinesis::persist::redact_url("postgres://u:secret@h/db"), "postgres://u:***@h/db");
/// assert_eq!(kinesis::persist::redact_url("file://./data"), "file://./data");
/// ```
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{scheme}://{user}:***@{host}{path}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}
