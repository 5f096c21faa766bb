//! One open store: the state shared by the handles, the commit thread and
//! the compaction thread, and the order in which a directory is opened.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{
    mpsc, Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard,
};
use std::thread::JoinHandle;

use kinesis::{Error, Result};

use crate::commit::{Committer, Queue};
use crate::fsutil::{describe, private_options, sync_dir, DirId};
use crate::index::Index;
use crate::lock::DirLock;
use crate::log::active::ActiveLog;
use crate::log::segment::Segment;
use crate::{compaction, migrate, recovery, Options};

/// What the handles, the commit thread and the compaction thread share.
#[derive(Debug)]
pub(crate) struct Shared {
    /// The data directory, absolute.
    pub(crate) dir: PathBuf,
    dir_id: DirId,
    /// How the store was opened.
    pub(crate) options: Options,
    index: RwLock<Index>,
    /// Sealed segments, oldest first (the compacted one, if any, first).
    sealed: Mutex<Vec<Arc<Segment>>>,
    /// Saves and deletes waiting for the commit thread.
    pub(crate) queue: Queue,
    /// Set when the last handle is gone: background work stops early.
    pub(crate) closing: AtomicBool,
    /// Held while a compaction runs: one at a time.
    pub(crate) compacting: Mutex<()>,
}

impl Shared {
    /// `Ok` while the data directory is still where the store opened it;
    /// otherwise why not (every call then fails rather than write into a
    /// directory that was moved away or deleted).
    pub(crate) fn check_dir(&self) -> std::result::Result<(), String> {
        self.dir_id.check(&self.dir)
    }

    /// The index, for reading.
    pub(crate) fn index(&self) -> RwLockReadGuard<'_, Index> {
        self.index.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// The index, for changing.
    pub(crate) fn index_mut(&self) -> RwLockWriteGuard<'_, Index> {
        self.index.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// The sealed segments.
    pub(crate) fn sealed(&self) -> MutexGuard<'_, Vec<Arc<Segment>>> {
        self.sealed.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// An open store: the shared state, its two threads, and the directory
/// lock. Dropping it finishes the queued requests, stops the threads and
/// releases the lock.
#[derive(Debug)]
pub(crate) struct Engine {
    shared: Arc<Shared>,
    committer: Option<JoinHandle<()>>,
    compactor: Option<JoinHandle<()>>,
    wake_compactor: Option<mpsc::Sender<()>>,
    lock: Option<DirLock>,
    /// Whether the process-wide registry lists this store.
    registered: AtomicBool,
}

impl Engine {
    /// Opens the store in `dir` (absolute, existing): locks the directory,
    /// recovers the log, converts records of the file-per-record format,
    /// and starts the commit and compaction threads.
    pub(crate) fn open(dir: PathBuf, options: Options) -> Result<Engine> {
        let lock = DirLock::acquire(&dir)?;
        probe_writable(&dir)?;
        let dir_id = DirId::of(&dir).map_err(Error::Config)?;
        let recovered = recovery::recover(&dir).map_err(Error::Store)?;
        if let Some(torn) = &recovered.truncated {
            tracing::warn!(
                segment = %torn.path.display(),
                offset = torn.offset,
                bytes = torn.removed,
                "file store: cut off the end of the log that a crash left unfinished \
                 (no acknowledged save is lost)"
            );
        }
        let shared = Arc::new(Shared {
            dir,
            dir_id,
            options,
            index: RwLock::new(recovered.index),
            sealed: Mutex::new(recovered.sealed),
            queue: Queue::default(),
            closing: AtomicBool::new(false),
            compacting: Mutex::new(()),
        });
        let mut log = match recovered.active {
            Some(active) => ActiveLog::resume(active.segment, active.end, active.file_len),
            None => ActiveLog::create(&shared, recovered.next_seq).map_err(|e| {
                Error::Store(format!(
                    "cannot start a log segment in {}: {}",
                    shared.dir.display(),
                    describe(&e)
                ))
            })?,
        };
        let converted = migrate::migrate(&shared, &mut log).map_err(Error::Store)?;
        if converted > 0 {
            tracing::info!(
                dir = %shared.dir.display(),
                records = converted,
                "file store: converted the records of the file-per-record format into the log"
            );
        }

        let (wake_compactor, wakes) = mpsc::channel();
        let spawn_failed = |e: std::io::Error| {
            Error::Store(format!("cannot start a file store thread: {}", describe(&e)))
        };
        let committer = Committer::new(Arc::clone(&shared), log, wake_compactor.clone());
        let committer = std::thread::Builder::new()
            .name("filedb-commit".into())
            .spawn(move || committer.run())
            .map_err(spawn_failed)?;
        let background = Arc::clone(&shared);
        let compactor = std::thread::Builder::new()
            .name("filedb-compact".into())
            .spawn(move || compaction::run_background(&background, &wakes));
        let mut engine = Engine {
            shared,
            committer: Some(committer),
            compactor: None,
            wake_compactor: Some(wake_compactor),
            lock: Some(lock),
            registered: AtomicBool::new(false),
        };
        engine.compactor = Some(compactor.map_err(spawn_failed)?);
        // The log found at start may already hold enough garbage.
        engine.wake_compactor();
        Ok(engine)
    }

    /// The shared state.
    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Marks the store as listed in the registry, which it then leaves
    /// when dropped.
    pub(crate) fn set_registered(&self) {
        self.registered.store(true, Ordering::Relaxed);
    }

    fn wake_compactor(&self) {
        if let Some(wake) = &self.wake_compactor {
            let _ = wake.send(());
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.shared.closing.store(true, Ordering::Relaxed);
        self.shared.queue.close();
        if let Some(committer) = self.committer.take() {
            let _ = committer.join();
        }
        // The committer's sender went with it; this one closes the channel.
        self.wake_compactor = None;
        if let Some(compactor) = self.compactor.take() {
            let _ = compactor.join();
        }
        self.lock = None;
        if self.registered.load(Ordering::Relaxed) {
            crate::registry::closed(&self.shared.dir);
        }
    }
}

/// Creates the data directory when missing and returns it absolute.
pub(crate) fn resolve_dir(dir: &Path) -> Result<PathBuf> {
    if dir.as_os_str().is_empty() {
        return Err(Error::Config("file store: the data directory path is empty".into()));
    }
    let existed = dir.exists();
    fs::create_dir_all(dir).map_err(|e| {
        Error::Config(format!("cannot create data directory {}: {}", dir.display(), describe(&e)))
    })?;
    let data = fs::canonicalize(dir).map_err(|e| {
        Error::Config(format!("cannot resolve data directory {}: {}", dir.display(), describe(&e)))
    })?;
    if !data.is_dir() {
        return Err(Error::Config(format!("data directory {} is not a directory", data.display())));
    }
    if !existed {
        // Make the new directory's own entry durable. Best effort: the
        // parent may not be readable, which does not stop us writing.
        if let Some(parent) = data.parent() {
            let _ = sync_dir(parent);
        }
    }
    Ok(data)
}

/// Creates and removes a file in `dir`, so an unwritable directory is found
/// when the store is opened rather than at the first save.
pub(crate) fn probe_writable(dir: &Path) -> Result<()> {
    let probe = dir.join(format!(".probe-{}", std::process::id()));
    let not_writable = |e: &std::io::Error| {
        Error::Config(format!("data directory {} is not writable: {}", dir.display(), describe(e)))
    };
    let _ = fs::remove_file(&probe);
    private_options().write(true).create_new(true).open(&probe).map_err(|e| not_writable(&e))?;
    fs::remove_file(&probe).map_err(|e| not_writable(&e))
}
