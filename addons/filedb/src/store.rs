//! [`FileStore`]: the [`Store`] over one directory.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use futures::future::BoxFuture;
use kinesis::persist::{Record, Store, StoreError, StoreResult};
use kinesis::Result;
use tokio::sync::oneshot;

use crate::commit::Request;
use crate::engine::{self, Engine, Shared};
use crate::fsutil::describe;
use crate::log::format;
use crate::log::segment::parse_name;
use crate::{compaction, name, registry};

/// How a store writes its log. The defaults suit most uses; tests and
/// benchmarks change them.
///
/// ```
/// let options = kinesis_filedb::Options { segment_bytes: 1 << 20, ..Default::default() };
/// assert_eq!(options.preallocate_bytes, 1 << 20);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// A segment is sealed, and a new one started, before a group commit
    /// would take it past this many bytes (default 16 MiB). A single commit
    /// larger than this gets a segment of its own.
    pub segment_bytes: u64,
    /// Zeros written ahead of the end of the log (default 1 MiB; 0: plain
    /// appends). Saves then overwrite blocks that are already allocated, so
    /// their `fdatasync` has no file size or block map to flush, only data
    /// (on ext4, one writer: about 9,800 saves/s against 6,400/s with plain
    /// appends, `cargo bench -p kinesis-filedb`).
    pub preallocate_bytes: u64,
    /// Compact in the background whenever a segment is sealed and the
    /// sealed segments are at least half garbage (default `true`).
    /// [`FileStore::compact`] works either way.
    pub background_compaction: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            segment_bytes: 16 * 1024 * 1024,
            preallocate_bytes: 1024 * 1024,
            background_compaction: true,
        }
    }
}

/// Figures of an open store, from [`FileStore::stats`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stats {
    /// Records stored.
    pub records: u64,
    /// Bytes of their latest entries in the log (entry header, URI and the
    /// record as compact JSON): the live data.
    pub live_bytes: u64,
    /// Bytes of all log files in the directory, zeros written ahead
    /// included.
    pub disk_bytes: u64,
    /// Number of log files (segments and the compacted file).
    pub files: u64,
}

/// The embedded file store (`file://DIR`): an append-only log with group
/// commit in one directory. See the [crate documentation](crate) for the
/// layout and the exact guarantees.
///
/// Cheap to clone; clones share the store. Opening a directory that this
/// process already has open gives a handle to the same store. Dropping the
/// last handle finishes the queued saves (waiting for the sync in flight),
/// stops the store's threads and releases the directory. Saves and
/// deletes are done by the store's commit thread, loads and listings on
/// tokio's blocking pool, so every operation must be awaited inside a tokio
/// runtime.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use kinesis::persist::{Record, Store, StoreError};
/// use kinesis_filedb::FileStore;
///
/// let dir = tempfile::tempdir().unwrap();
/// let store = FileStore::open(dir.path().join("data")).unwrap();
/// let record = Record::new("/root/counter", "app::Counter", 1, Default::default());
/// store.save(&record, 0).await.unwrap();
/// assert_eq!(store.load("/root/counter").await.unwrap(), Some(record.clone()));
/// // A second writer that still expects no record loses.
/// assert!(matches!(store.save(&record, 0).await, Err(StoreError::Conflict { .. })));
/// # });
/// ```
#[derive(Clone)]
pub struct FileStore {
    engine: Arc<Engine>,
}

impl FileStore {
    /// Opens the store in `dir` with the default [`Options`], creating the
    /// directory (and its parents) when missing.
    ///
    /// Fails with [`Error::Config`](kinesis::Error::Config) naming the
    /// directory and the cause when it cannot be created, is not a
    /// directory, is not writable (`cannot create data directory /srv/data:
    /// permission denied (os error 13)`), or is in use by another process;
    /// with [`Error::Store`](kinesis::Error::Store) when the log is damaged
    /// (naming the file and the byte offset) or cannot be read. The path is
    /// made absolute, so a later change of the working directory does not
    /// move the store. Reads the whole log: blocking, call it from
    /// [`tokio::task::spawn_blocking`] in async code (the registry does).
    pub fn open(dir: impl AsRef<Path>) -> Result<FileStore> {
        FileStore::open_with(dir, Options::default())
    }

    /// Opens the store in `dir` with `options`. When this process has the
    /// directory open already, the handle shares that store and `options`
    /// are ignored.
    pub fn open_with(dir: impl AsRef<Path>, options: Options) -> Result<FileStore> {
        let dir = engine::resolve_dir(dir.as_ref())?;
        Ok(FileStore { engine: registry::open(dir, options)? })
    }

    /// Opens the store a `file://DIR` URL names; see [`crate::dir_from_url`].
    pub fn from_url(url: &str) -> Result<FileStore> {
        FileStore::open(crate::dir_from_url(url)?)
    }

    /// The data directory, absolute.
    pub fn dir(&self) -> &Path {
        &self.shared().dir
    }

    /// Compacts now: seals the active segment and rewrites the live records
    /// of all sealed segments into one compacted file, then removes them.
    /// Saves and loads go on meanwhile. Background compaction does the same
    /// on its own (see [`Options::background_compaction`]); this is for
    /// tools, tests and benchmarks.
    pub async fn compact(&self) -> StoreResult<()> {
        let (reply, answer) = oneshot::channel();
        self.submit(Request::Roll { reply }, answer).await?;
        let shared = Arc::clone(self.shared());
        blocking(move || compaction::compact(&shared).map(|_| ()).map_err(StoreError::Backend))
            .await
    }

    /// Records, live bytes and bytes on disk; see [`Stats`].
    pub async fn stats(&self) -> StoreResult<Stats> {
        let shared = Arc::clone(self.shared());
        blocking(move || {
            let (records, live_bytes) = {
                let index = shared.index();
                (index.len() as u64, index.live_bytes())
            };
            let (mut disk_bytes, mut files) = (0, 0);
            let failed = |e: std::io::Error| {
                crate::fsutil::io_failure("cannot list data directory", &shared.dir, &e)
            };
            for entry in std::fs::read_dir(&shared.dir).map_err(failed)? {
                let entry = entry.map_err(failed)?;
                if entry.file_name().to_str().and_then(parse_name).is_some() {
                    disk_bytes += entry.metadata().map_err(failed)?.len();
                    files += 1;
                }
            }
            Ok(Stats { records, live_bytes, disk_bytes, files })
        })
        .await
    }

    fn shared(&self) -> &Arc<Shared> {
        self.engine.shared()
    }

    /// Queues `request` for the commit thread and waits for its answer.
    async fn submit<T>(
        &self,
        request: Request,
        answer: oneshot::Receiver<StoreResult<T>>,
    ) -> StoreResult<T> {
        if self.shared().queue.push(request).is_err() {
            return Err(StoreError::Backend("the file store is closing".into()));
        }
        answer.await.unwrap_or_else(|_| {
            Err(StoreError::Backend("the file store's commit thread stopped".into()))
        })
    }
}

impl fmt::Debug for FileStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileStore").field("dir", &self.dir()).finish_non_exhaustive()
    }
}

/// The largest record, as JSON, a save takes (256 MiB).
const MAX_RECORD_BYTES: usize = 256 * 1024 * 1024;

impl Store for FileStore {
    fn backend(&self) -> &'static str {
        crate::SCHEME
    }

    fn load<'a>(&'a self, uri: &'a str) -> BoxFuture<'a, StoreResult<Option<Record>>> {
        Box::pin(async move {
            name::check(uri)?;
            let shared = Arc::clone(self.shared());
            let uri = uri.to_owned();
            blocking(move || load(&shared, &uri)).await
        })
    }

    fn save<'a>(&'a self, record: &'a Record, expected: u64) -> BoxFuture<'a, StoreResult<()>> {
        Box::pin(async move {
            if expected.checked_add(1) != Some(record.version) {
                return Err(StoreError::Backend(format!(
                    "refused to save {}: its version {} is not the expected version {expected} \
                     plus one",
                    record.uri, record.version
                )));
            }
            name::check(&record.uri)?;
            let data = serde_json::to_vec(record).map_err(|e| {
                StoreError::Backend(format!("cannot serialise record {}: {e}", record.uri))
            })?;
            if data.len() > MAX_RECORD_BYTES {
                return Err(StoreError::Backend(format!(
                    "cannot save record {}: it is {} bytes as JSON, the file store takes at most \
                     {MAX_RECORD_BYTES}",
                    name::shorten(&record.uri),
                    data.len()
                )));
            }
            let (reply, answer) = oneshot::channel();
            let request = Request::Save {
                uri: record.uri.clone(),
                version: record.version,
                expected,
                data,
                reply,
            };
            self.submit(request, answer).await
        })
    }

    fn delete<'a>(&'a self, uri: &'a str) -> BoxFuture<'a, StoreResult<bool>> {
        Box::pin(async move {
            name::check(uri)?;
            let (reply, answer) = oneshot::channel();
            self.submit(Request::Delete { uri: uri.to_owned(), reply }, answer).await
        })
    }

    fn list<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, StoreResult<Vec<String>>> {
        Box::pin(async move {
            let shared = Arc::clone(self.shared());
            let prefix = prefix.to_owned();
            blocking(move || {
                shared
                    .check_dir()
                    .map_err(|why| StoreError::Backend(format!("cannot list records: {why}")))?;
                Ok(shared.index().list(&prefix))
            })
            .await
        })
    }

    /// The data directory is still the one the store opened and takes a
    /// new file.
    fn ping(&self) -> BoxFuture<'_, StoreResult<()>> {
        Box::pin(async move {
            let shared = Arc::clone(self.shared());
            blocking(move || {
                shared.check_dir().map_err(StoreError::Backend)?;
                crate::engine::probe_writable(&shared.dir)
                    .map_err(|e| StoreError::Backend(e.to_string()))
            })
            .await
        })
    }
}

/// The latest record of `uri`: found in the index, read back with one
/// positioned read and checked.
fn load(shared: &Shared, uri: &str) -> StoreResult<Option<Record>> {
    shared.check_dir().map_err(|why| {
        StoreError::Backend(format!("cannot load record {}: {why}", name::shorten(uri)))
    })?;
    let Some(at) = shared.index().get(uri).map(|e| e.at.clone()) else { return Ok(None) };
    let path = at.segment.path();
    let bytes = at.segment.read_at(at.offset, at.len as usize).map_err(|e| {
        StoreError::Backend(format!(
            "cannot read record {} from {}: {}",
            name::shorten(uri),
            path.display(),
            describe(&e)
        ))
    })?;
    let corrupt = |reason: String| StoreError::Corrupt {
        uri: uri.to_owned(),
        reason: format!("{} at byte offset {}: {reason}", path.display(), at.offset),
    };
    let (entry, _) = format::decode_entry(&bytes).map_err(corrupt)?;
    if entry.uri != uri {
        return Err(corrupt(format!("holds the record of {}", name::shorten(entry.uri))));
    }
    let record: Record =
        serde_json::from_slice(entry.data).map_err(|e| corrupt(format!("not a record: {e}")))?;
    if record.uri != uri {
        return Err(corrupt(format!("holds the record of {}", name::shorten(&record.uri))));
    }
    Ok(Some(record))
}

/// Runs `f` on tokio's blocking pool.
async fn blocking<T, F>(f: F) -> StoreResult<T>
where
    F: FnOnce() -> StoreResult<T> + Send + 'static,
    T: Send + 'static,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(result) => result,
        Err(e) => Err(StoreError::Backend(format!("file store I/O task failed: {e}"))),
    }
}
