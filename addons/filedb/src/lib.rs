//! The embedded file store of kinesis: `file://DIR`.
//!
//! [`FileStore`] keeps each record as one JSON file in one directory. It
//! needs no server, and several processes on one machine may share the
//! directory. [`register`] adds it to a
//! [`StoreRegistry`]; [`default_connection`] is the URL a program uses when
//! `KINESIS_DB_CONNECTION` is not set.
//!
//! # Layout
//!
//! | path | what |
//! | --- | --- |
//! | `DIR/<name>.json` | the record of one URI, serialised as in DESIGN §6 |
//! | `DIR/<name>.tmp` | the next version of that record while it is written |
//! | `DIR/.locks/<name>.lock` | the record's lock file (empty; kept after a delete) |
//!
//! `<name>` is the URI with every byte other than ASCII letters, digits, `_`,
//! `~` and `-` written as `%XX` (so `/root/a.b` is `%2Froot%2Fa%2Eb.json`).
//! Names never contain `/`, `.` or NUL, so no URI (`..`, `/../etc`, `a\0b`)
//! can name a file outside `DIR`. A URI whose name would be longer than 250
//! bytes (255, the usual file system limit, less the suffix) is refused with
//! [`StoreError::InvalidKey`](kinesis::persist::StoreError::InvalidKey); so
//! is the empty URI. Files in `DIR` whose names are not of this form are
//! never read, listed or touched, so other files (such as a key file) may
//! live there.
//!
//! # Guarantees
//!
//! * **Atomic, durable saves.** A save writes the whole record to
//!   `<name>.tmp`, syncs it (`fsync`), renames it over `<name>.json` and syncs
//!   the directory, and only then returns `Ok`. A reader (any process) sees
//!   the old record or the new one, never a mix; after a crash or power loss
//!   at any moment the file holds the old or the new record whole, and a
//!   save that returned `Ok` is never lost. An empty or half-written file is
//!   never visible as a record.
//! * **Compare-and-set across processes.** `save(record, expected)` holds an
//!   exclusive OS lock (`flock`) on the record's lock file while it reads the
//!   stored version, compares it with `expected`, and writes. Every handle in
//!   every process that uses the directory takes the same lock, so of
//!   concurrent writers expecting the same version exactly one wins and the
//!   others get [`StoreError::Conflict`](kinesis::persist::StoreError::Conflict);
//!   no write is ever silently lost. The kernel releases the lock of a
//!   process that dies. `delete` takes the same lock; `load` and `list` take
//!   none (renames are atomic).
//! * **Version steps.** A save whose `record.version` is not `expected + 1`
//!   is refused before any I/O.
//! * **Corruption is reported, not repaired.** A record file that is empty,
//!   not a record, or holds another URI's record (two URIs that differ only
//!   in case, on a case-insensitive file system) gives
//!   [`StoreError::Corrupt`](kinesis::persist::StoreError::Corrupt) naming the
//!   file, from `load` and from `save`, which then does not overwrite it.
//!   `delete` removes such a file. The store itself never writes one.
//! * **I/O failures** give
//!   [`StoreError::Backend`](kinesis::persist::StoreError::Backend) naming
//!   the record, the path and the OS error (`permission denied`, `no space
//!   left on device`…). A save that fails before the rename changed nothing;
//!   one that fails syncing the directory after the rename may or may not
//!   have replaced the record (load it to find out).
//! * **Blocking I/O stays off the async runtime:** every operation runs on
//!   tokio's blocking pool and must be awaited inside a tokio runtime. A save
//!   whose future is dropped may still complete.
//! * Files are created with mode `0600` on Unix. Records are pretty-printed
//!   JSON so that a person can read them.
//!
//! Not covered: network file systems (whose locks and renames may not be
//! atomic), and a directory shared between machines.
//!
//! # Example
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use kinesis::persist::StoreRegistry;
//!
//! let dir = tempfile::tempdir().unwrap();
//! let mut registry = StoreRegistry::with_builtin();
//! kinesis_filedb::register(&mut registry);
//! let store = registry.open(&format!("file://{}", dir.path().display())).await.unwrap();
//! assert_eq!(store.backend(), "file");
//! assert!(store.list("/").await.unwrap().is_empty());
//! # });
//! ```

mod name;
mod store;

use std::path::PathBuf;
use std::sync::Arc;

use futures::future::BoxFuture;
use kinesis::persist::{SharedStore, StoreRegistry};
use kinesis::{Error, Result};

pub use store::FileStore;

/// The URL scheme of the file store, and its [`backend`](kinesis::persist::Store::backend) name.
pub const SCHEME: &str = "file";

/// The connection URL used when `KINESIS_DB_CONNECTION` is not set and the
/// file store is built in: `file://./kinesis-data`, a directory beside the
/// working directory of the process.
pub fn default_connection() -> &'static str {
    "file://./kinesis-data"
}

/// Registers the scheme `file` in `registry`, opening [`FileStore`]s from
/// `file://DIR` URLs (see [`dir_from_url`]).
pub fn register(registry: &mut StoreRegistry) {
    registry.register(SCHEME, open_url);
}

fn open_url(url: String) -> BoxFuture<'static, Result<SharedStore>> {
    Box::pin(async move {
        let store = tokio::task::spawn_blocking(move || FileStore::from_url(&url))
            .await
            .map_err(|e| Error::Store(format!("opening the file store failed: {e}")))??;
        Ok(Arc::new(store) as SharedStore)
    })
}

/// The directory a `file://DIR` URL names.
///
/// Everything after `file://` is the path, taken literally (no percent
/// decoding, no host): `file://./kinesis-data` and `file://data` are relative
/// to the working directory, `file:///srv/kinesis` is absolute. Fails with
/// [`Error::Config`] when the URL is not `file://` or names no directory.
///
/// ```
/// use std::path::Path;
/// use kinesis_filedb::dir_from_url;
///
/// assert_eq!(dir_from_url("file://./kinesis-data").unwrap(), Path::new("./kinesis-data"));
/// assert_eq!(dir_from_url("file:///srv/kinesis").unwrap(), Path::new("/srv/kinesis"));
/// assert!(dir_from_url("file://").is_err());
/// assert!(dir_from_url("sqlite://x.db").is_err());
/// ```
pub fn dir_from_url(url: &str) -> Result<PathBuf> {
    let Some(path) = url.strip_prefix("file://") else {
        return Err(Error::Config(format!(
            "`{}` is not a file store URL; it takes file://DIR, e.g. {}",
            kinesis::persist::redact_url(url),
            default_connection()
        )));
    };
    if path.is_empty() {
        return Err(Error::Config(format!(
            "`{url}` names no directory; it takes file://DIR, e.g. {}",
            default_connection()
        )));
    }
    Ok(PathBuf::from(path))
}
