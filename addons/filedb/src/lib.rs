//! The embedded file store of kinesis: `file://DIR`.
//!
//! [`FileStore`] keeps every record of a process in one append-only log in
//! one directory, in the manner of Bitcask or a write-ahead log: a save
//! appends the new record, an in-memory index knows where the latest record
//! of each URI is, and old records are compacted away in the background. It
//! needs no server. [`register`] adds it to a [`StoreRegistry`];
//! [`default_connection`] is the URL a program uses when
//! `KINESIS_DB_CONNECTION` is not set.
//!
//! # Layout
//!
//! | path | what |
//! | --- | --- |
//! | `DIR/filedb.lock` | the directory lock; holds the owner's process id |
//! | `DIR/filedb-<seq>.log` | log segments, `<seq>` 16 hex digits counting from 1; the last one is appended to |
//! | `DIR/filedb-<seq>.compacted` | the live records of every segment up to `<seq>`, written by compaction |
//! | `DIR/filedb-<seq>.compacted.tmp` | a compaction in progress (removed at start) |
//!
//! Other files in `DIR` are never read, listed or touched (except those of
//! the former file-per-record format, see *Conversion* below), so other
//! files, such as a key file, may live there.
//!
//! A segment is a 16-byte header followed by frames: one frame per group
//! commit, `"KFR1"`, its length and a CRC-32, then its entries. An entry is
//! a CRC-32 of its own, the kind (save or delete), the record's version,
//! the URI, and the record of DESIGN §6 as compact JSON (nothing for a
//! delete: a tombstone). Integers are little endian. A segment is sealed at
//! 16 MiB ([`Options::segment_bytes`]). A record may take up to 256 MiB as
//! JSON; one group commit takes up to 16 MiB of records, more wait for the
//! next. URIs are stored as they are: any non-empty URI of at most 4096
//! bytes is taken; others are refused with
//! [`StoreError::InvalidKey`](kinesis::persist::StoreError::InvalidKey).
//!
//! # Guarantees
//!
//! * **Durable saves, one fsync per group.** A save returns `Ok` only after
//!   its record is on disk (`fdatasync`). Saves and deletes from every task
//!   and every handle of the process go through one commit thread: all
//!   those that arrive while a sync is in flight are written together as one
//!   frame and made durable by the next single sync. The log is written
//!   ahead into zeroed, allocated space ([`Options::preallocate_bytes`]), so
//!   a sync only flushes data. After a commit the thread looks for the next
//!   request for 50 µs (yielding its core) before it sleeps: a single writer's
//!   next save comes sooner than a sleeping thread could be woken.
//! * **Atomic commits.** A frame is checked as a whole: after a crash or
//!   power loss at any moment, a start sees every acknowledged save, and
//!   of the group being written either all or nothing.
//! * **Compare-and-set.** `save(record, expected)` succeeds only if the
//!   latest version of the record (counting saves queued before it) is
//!   `expected`; otherwise it fails with
//!   [`StoreError::Conflict`](kinesis::persist::StoreError::Conflict)
//!   naming the version found. A save whose `record.version` is not
//!   `expected + 1` is refused before any I/O.
//! * **One process per directory.** The index lives in the memory of the
//!   process that opened the directory, so the compare-and-set holds within
//!   that process only. To keep it exact, opening takes an exclusive OS lock
//!   (`flock`) on `DIR/filedb.lock` for as long as the store is open: a
//!   second process that opens the directory is refused with
//!   [`Error::Config`] naming the directory, the lock file and the holder's
//!   process id. Within one process, opening the directory again shares the
//!   store that is open. The kernel releases the lock of a process that
//!   dies, however it dies.
//! * **Recovery at start.** The whole log is read into the index (about
//!   0.1 s for 100,000 small records, measured by `scripts/bench`). A frame at the very end of
//!   the last segment that is torn or fails its checksum, with nothing valid
//!   after it, is the commit a crash interrupted (never acknowledged): it is
//!   cut off and the file truncated there. A bad frame anywhere else is
//!   damage, not a crash: the store refuses to start with
//!   [`Error::Store`] naming the segment file and the byte offset, rather
//!   than silently drop the records after it. A load checks the entry's
//!   checksum again and reports
//!   [`StoreError::Corrupt`](kinesis::persist::StoreError::Corrupt) naming
//!   the file and offset.
//! * **Compaction.** When a segment is sealed and the sealed segments hold
//!   at least as many dead bytes as live ones, a background thread copies
//!   the live records into one compacted file, syncs and renames it into
//!   place, then removes the old segments. Saves and loads go on meanwhile;
//!   a crash at any step loses nothing. So the log takes at most about
//!   twice the live data, plus the active segment.
//!   [`FileStore::compact`] compacts on demand.
//! * **Memory.** The index holds each URI and where its record is (about
//!   100 bytes plus the URI per record), not the records: a load reads its
//!   entry back with one positioned read, usually from the page cache.
//! * **Conversion.** A directory of the earlier file-per-record format
//!   (`DIR/<name>.json`, `DIR/.locks/`) is converted on the first start:
//!   the records are appended to the log and synced, then the old files are
//!   removed. Killed midway, the next start finishes the job, with every
//!   record there exactly once.
//! * **I/O failures** give
//!   [`StoreError::Backend`](kinesis::persist::StoreError::Backend) naming
//!   the record, the path and the OS error (`no space left on device`…); a
//!   failed write changed nothing. After a failed `fdatasync` the store
//!   accepts no more writes until it is opened again (the kernel may have
//!   dropped the unsynced data, so later syncs would prove nothing). A data
//!   directory moved away, deleted or replaced under a running store makes
//!   every call fail, rather than write where nobody will read; putting it
//!   back makes the store work again.
//! * **Blocking I/O stays off the async runtime:** saves and deletes are
//!   written by the commit thread, loads and listings run on tokio's
//!   blocking pool; every operation must be awaited inside a tokio runtime.
//!   A save whose future is dropped may still complete.
//! * Files are created with mode `0600` on Unix.
//!
//! Not covered: network file systems (whose locks may not work), and a
//! directory shared between machines.
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

mod commit;
mod compaction;
mod engine;
mod fsutil;
mod index;
mod lock;
mod log;
mod migrate;
mod name;
mod recovery;
mod registry;
mod store;

use std::path::PathBuf;
use std::sync::Arc;

use futures::future::BoxFuture;
use kinesis::persist::{SharedStore, StoreRegistry};
use kinesis::{Error, Result};

pub use store::{FileStore, Options, Stats};

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
