//! The directory lock: one process at a time per data directory.
//!
//! The in-memory index and the group commit make compare-and-set exact
//! within one process; a second process would have its own index and could
//! overwrite what the first acknowledged. So the first process to open a
//! directory takes an exclusive OS lock (`flock` on Unix) on `filedb.lock`
//! in it and keeps it while the store is open; any other process is refused
//! with a message naming the directory. The kernel releases the lock of a
//! process that dies, however it dies.

use std::fs::{self, File};
use std::path::Path;

use kinesis::{Error, Result};

use crate::fsutil::{describe, private_options};

/// The lock file's name in the data directory.
pub(crate) const LOCK_FILE: &str = "filedb.lock";

/// The held lock; released when dropped.
#[derive(Debug)]
pub(crate) struct DirLock {
    _file: File,
}

impl DirLock {
    /// Takes the lock of `dir`, or fails with [`Error::Config`] when another
    /// process holds it.
    pub(crate) fn acquire(dir: &Path) -> Result<DirLock> {
        let path = dir.join(LOCK_FILE);
        let file = private_options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| {
                Error::Config(format!(
                    "cannot open the lock file {}: {}",
                    path.display(),
                    describe(&e)
                ))
            })?;
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                let holder = fs::read_to_string(&path)
                    .ok()
                    .and_then(|text| text.trim().parse::<u32>().ok())
                    .map_or_else(String::new, |pid| format!(" (pid {pid})"));
                return Err(Error::Config(format!(
                    "data directory {} is in use by another process{holder}, which holds the \
                     lock {}; the file store serves one process per directory: stop the other \
                     process or give this one its own directory",
                    dir.display(),
                    path.display()
                )));
            }
            Err(fs::TryLockError::Error(e)) => {
                return Err(Error::Config(format!(
                    "cannot lock {}: {}",
                    path.display(),
                    describe(&e)
                )));
            }
        }
        // Who holds it, for the message another process shows; best effort.
        let pid = format!("{}\n", std::process::id());
        let _ = file.set_len(0).and_then(|()| crate::fsutil::write_at(&file, 0, pid.as_bytes()));
        Ok(DirLock { _file: file })
    }
}
