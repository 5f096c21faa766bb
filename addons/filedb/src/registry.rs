//! The stores this process has open, by directory.
//!
//! A second `open` of a directory in the same process shares the store
//! already open there (its lock, index and commit thread) instead of being
//! refused like another process. A store whose last handle is being dropped
//! still holds the directory lock until its threads have finished; an
//! `open` meanwhile waits for that.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, Weak};

use kinesis::Result;

use crate::engine::Engine;
use crate::Options;

static OPEN: Mutex<Vec<(PathBuf, Weak<Engine>)>> = Mutex::new(Vec::new());
static CLOSED: Condvar = Condvar::new();

fn open_stores() -> MutexGuard<'static, Vec<(PathBuf, Weak<Engine>)>> {
    OPEN.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The store open in `dir` (absolute), opened with `options` if this
/// process does not have it open.
pub(crate) fn open(dir: PathBuf, options: Options) -> Result<Arc<Engine>> {
    let mut open = open_stores();
    loop {
        match open.iter().find(|(d, _)| *d == dir) {
            None => break,
            Some((_, engine)) => match engine.upgrade() {
                Some(engine) => return Ok(engine),
                // Being closed: wait until its lock is released.
                None => open = CLOSED.wait(open).unwrap_or_else(PoisonError::into_inner),
            },
        }
    }
    let engine = Arc::new(Engine::open(dir.clone(), options)?);
    engine.set_registered();
    open.push((dir, Arc::downgrade(&engine)));
    Ok(engine)
}

/// Called by a registered store once it released its directory.
pub(crate) fn closed(dir: &Path) {
    open_stores().retain(|(d, _)| d != dir);
    CLOSED.notify_all();
}
