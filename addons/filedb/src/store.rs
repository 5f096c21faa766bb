//! [`FileStore`]: the [`Store`] over one directory.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::future::BoxFuture;
use kinesis::persist::{Record, Store, StoreError, StoreResult};
use kinesis::{Error, Result};

use crate::name::{self, LOCK_SUFFIX, RECORD_SUFFIX, TEMP_SUFFIX};

/// Name of the sub-directory that holds the lock files.
pub(crate) const LOCK_DIR: &str = ".locks";

/// The embedded file store: one JSON file per record in one directory
/// (`file://DIR`). See the [crate documentation](crate) for the layout and
/// the exact guarantees.
///
/// Cheap to clone; clones share the directory. Every operation runs its file
/// I/O on tokio's blocking pool, so it must be awaited inside a tokio
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
#[derive(Debug, Clone)]
pub struct FileStore {
    inner: Arc<Dirs>,
}

/// The directories of a store, absolute.
#[derive(Debug)]
struct Dirs {
    data: PathBuf,
    locks: PathBuf,
}

impl FileStore {
    /// Opens the store in `dir`, creating the directory (and its parents)
    /// when missing.
    ///
    /// Checks that records can be written there: fails with
    /// [`Error::Config`] naming the directory and the cause when it cannot be
    /// created, is not a directory, or is not writable, e.g. `cannot create
    /// data directory /srv/data: permission denied (os error 13)`. The path
    /// is made absolute, so a later change of the working directory does not
    /// move the store.
    pub fn open(dir: impl AsRef<Path>) -> Result<FileStore> {
        let dir = dir.as_ref();
        if dir.as_os_str().is_empty() {
            return Err(Error::Config("file store: the data directory path is empty".into()));
        }
        let existed = dir.exists();
        fs::create_dir_all(dir).map_err(|e| {
            Error::Config(format!(
                "cannot create data directory {}: {}",
                dir.display(),
                describe(&e)
            ))
        })?;
        let data = fs::canonicalize(dir).map_err(|e| {
            Error::Config(format!(
                "cannot resolve data directory {}: {}",
                dir.display(),
                describe(&e)
            ))
        })?;
        if !data.is_dir() {
            return Err(Error::Config(format!(
                "data directory {} is not a directory",
                data.display()
            )));
        }
        let locks = data.join(LOCK_DIR);
        fs::create_dir_all(&locks).map_err(|e| {
            Error::Config(format!(
                "cannot create lock directory {}: {}",
                locks.display(),
                describe(&e)
            ))
        })?;
        probe_writable(&data)?;
        if !existed {
            // Make the new directory's own entry durable. Best effort: the
            // parent may not be readable, which does not stop us writing.
            if let Some(parent) = data.parent() {
                let _ = sync_dir(parent);
            }
        }
        Ok(FileStore { inner: Arc::new(Dirs { data, locks }) })
    }

    /// Opens the store a `file://DIR` URL names; see [`crate::dir_from_url`].
    pub fn from_url(url: &str) -> Result<FileStore> {
        FileStore::open(crate::dir_from_url(url)?)
    }

    /// The data directory, absolute.
    pub fn dir(&self) -> &Path {
        &self.inner.data
    }

    /// The file the record of `uri` is (or would be) stored in, for tools
    /// and tests that look at the data on disk.
    ///
    /// Fails with [`StoreError::InvalidKey`] when `uri` cannot be stored.
    pub fn record_path(&self, uri: &str) -> StoreResult<PathBuf> {
        Ok(self.inner.record_file(&name::encode(uri)?))
    }
}

impl Store for FileStore {
    fn backend(&self) -> &'static str {
        crate::SCHEME
    }

    fn load<'a>(&'a self, uri: &'a str) -> BoxFuture<'a, StoreResult<Option<Record>>> {
        Box::pin(async move {
            let stem = name::encode(uri)?;
            let dirs = Arc::clone(&self.inner);
            let uri = uri.to_owned();
            blocking(move || dirs.load(&stem, &uri)).await
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
            let stem = name::encode(&record.uri)?;
            let dirs = Arc::clone(&self.inner);
            let record = record.clone();
            blocking(move || dirs.save(&stem, &record, expected)).await
        })
    }

    fn delete<'a>(&'a self, uri: &'a str) -> BoxFuture<'a, StoreResult<bool>> {
        Box::pin(async move {
            let stem = name::encode(uri)?;
            let dirs = Arc::clone(&self.inner);
            let uri = uri.to_owned();
            blocking(move || dirs.delete(&stem, &uri)).await
        })
    }

    fn list<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, StoreResult<Vec<String>>> {
        Box::pin(async move {
            let dirs = Arc::clone(&self.inner);
            let prefix = prefix.to_owned();
            blocking(move || dirs.list(&prefix)).await
        })
    }
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

impl Dirs {
    fn record_file(&self, stem: &str) -> PathBuf {
        self.data.join(format!("{stem}{RECORD_SUFFIX}"))
    }

    fn load(&self, stem: &str, uri: &str) -> StoreResult<Option<Record>> {
        read_record(&self.record_file(stem), uri)
    }

    fn save(&self, stem: &str, record: &Record, expected: u64) -> StoreResult<()> {
        let uri = record.uri.as_str();
        let mut bytes = serde_json::to_vec_pretty(record)
            .map_err(|e| StoreError::Backend(format!("cannot serialise record {uri}: {e}")))?;
        bytes.push(b'\n');

        let _lock = self.lock(stem, uri)?;
        let path = self.record_file(stem);
        let found = read_record(&path, uri)?.map(|r| r.version);
        if found.unwrap_or(0) != expected {
            return Err(StoreError::Conflict { uri: uri.to_owned(), expected, found });
        }
        let temp = self.data.join(format!("{stem}{TEMP_SUFFIX}"));
        if let Err(e) = write_synced(&temp, &bytes) {
            let _ = fs::remove_file(&temp);
            return Err(io_failure(&format!("cannot write record {uri} to"), &temp, &e));
        }
        if let Err(e) = fs::rename(&temp, &path) {
            let _ = fs::remove_file(&temp);
            return Err(io_failure(&format!("cannot move record {uri} into"), &path, &e));
        }
        sync_dir(&self.data).map_err(|e| {
            io_failure(&format!("wrote record {uri} but cannot sync directory"), &self.data, &e)
        })
    }

    fn delete(&self, stem: &str, uri: &str) -> StoreResult<bool> {
        let _lock = self.lock(stem, uri)?;
        let path = self.record_file(stem);
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(io_failure(&format!("cannot delete record {uri}:"), &path, &e)),
        }
        // A temporary file a killed writer left behind goes too.
        let _ = fs::remove_file(self.data.join(format!("{stem}{TEMP_SUFFIX}")));
        sync_dir(&self.data).map_err(|e| {
            io_failure(&format!("deleted record {uri} but cannot sync directory"), &self.data, &e)
        })?;
        Ok(true)
    }

    fn list(&self, prefix: &str) -> StoreResult<Vec<String>> {
        let entries = fs::read_dir(&self.data)
            .map_err(|e| io_failure("cannot list data directory", &self.data, &e))?;
        let mut uris = Vec::new();
        for entry in entries {
            let entry =
                entry.map_err(|e| io_failure("cannot list data directory", &self.data, &e))?;
            let file_name = entry.file_name();
            let Some(stem) = file_name.to_str().and_then(|n| n.strip_suffix(RECORD_SUFFIX)) else {
                continue;
            };
            if let Some(uri) = name::decode(stem) {
                if uri.starts_with(prefix) {
                    uris.push(uri);
                }
            }
        }
        uris.sort_unstable();
        Ok(uris)
    }

    /// Takes the exclusive OS lock of a record; released when the returned
    /// file is dropped (closed), or by the kernel when the process dies.
    fn lock(&self, stem: &str, uri: &str) -> StoreResult<File> {
        let path = self.locks.join(format!("{stem}{LOCK_SUFFIX}"));
        let file = private_options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| {
                io_failure(&format!("cannot open the lock of record {uri}:"), &path, &e)
            })?;
        file.lock().map_err(|e| io_failure(&format!("cannot lock record {uri}:"), &path, &e))?;
        Ok(file)
    }
}

/// The record in `path`: `None` when there is no file; [`StoreError::Corrupt`]
/// naming the file when it is empty, not a record, or another URI's record.
fn read_record(path: &Path, uri: &str) -> StoreResult<Option<Record>> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_failure(&format!("cannot read record {uri} from"), path, &e)),
    };
    let corrupt = |reason: String| StoreError::Corrupt { uri: uri.to_owned(), reason };
    if bytes.is_empty() {
        return Err(corrupt(format!("{} is empty", path.display())));
    }
    let record: Record = serde_json::from_slice(&bytes)
        .map_err(|e| corrupt(format!("{} is not a record: {e}", path.display())))?;
    if record.uri != uri {
        return Err(corrupt(format!(
            "{} holds the record of {}",
            path.display(),
            name::shorten(&record.uri)
        )));
    }
    Ok(Some(record))
}

/// Writes `bytes` to `path` (created or truncated) and syncs it to disk.
fn write_synced(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = private_options().write(true).create(true).truncate(true).open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Makes the entries of directory `dir` (creations, renames, removals)
/// durable.
#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Directories cannot be opened for syncing here; NTFS journals renames.
#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}

/// Options that create files readable and writable by the owner only.
fn private_options() -> OpenOptions {
    #[allow(unused_mut)]
    let mut options = OpenOptions::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options
}

/// Creates and removes a file in `dir`, so an unwritable directory is found
/// when the store is opened rather than at the first save.
fn probe_writable(dir: &Path) -> Result<()> {
    let probe = dir.join(format!(".probe-{}-{:x}", std::process::id(), rand_suffix()));
    let not_writable = |e: &io::Error| {
        Error::Config(format!("data directory {} is not writable: {}", dir.display(), describe(e)))
    };
    private_options().write(true).create_new(true).open(&probe).map_err(|e| not_writable(&e))?;
    fs::remove_file(&probe).map_err(|e| not_writable(&e))
}

/// A number that differs between calls, to name probe files.
fn rand_suffix() -> u128 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    nanos ^ u128::from(COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// A [`StoreError::Backend`] saying what failed on which path, and why.
fn io_failure(action: &str, path: &Path, e: &io::Error) -> StoreError {
    StoreError::Backend(format!("{action} {}: {}", path.display(), describe(e)))
}

/// An I/O error in the lower case of a message tail: `permission denied (os
/// error 13)`.
pub(crate) fn describe(e: &io::Error) -> String {
    let text = e.to_string();
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => format!("{:?}", e.kind()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describe_lowercases_the_os_message() {
        let e = io::Error::from_raw_os_error(13);
        assert_eq!(describe(&e), "permission denied (os error 13)");
    }

    #[test]
    fn open_rejects_an_empty_path() {
        assert!(matches!(FileStore::open(""), Err(Error::Config(_))));
    }

    #[test]
    fn open_makes_the_path_absolute_and_leaves_no_probe() {
        let tmp = tempfile::tempdir().unwrap();
        let store = FileStore::open(tmp.path().join("a/b")).unwrap();
        assert!(store.dir().is_absolute());
        let names: Vec<_> =
            fs::read_dir(store.dir()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from(LOCK_DIR)]);
    }
}
