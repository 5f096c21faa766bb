//! Converting a directory of the file-per-record format (kinesis-filedb
//! before the log) on the first start.
//!
//! That format kept each record as `DIR/<name>.json` (the record as JSON,
//! `<name>` the URI with every byte other than ASCII letters, digits, `_`,
//! `~` and `-` written as `%XX`), a `<name>.tmp` while it was written, and
//! an empty lock file `DIR/.locks/<name>.lock`.
//!
//! The conversion appends the records to the log, synced, and only then
//! removes the old files. Killed in between, the next start finds both: a
//! record the log already has at the same or a later version is not
//! appended again, so every record is there exactly once. A record file
//! that does not hold a record (empty, not JSON, another URI's record) stops
//! the start with a message naming it, as loading it did before; the files
//! are left as they are.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use kinesis::persist::Record;

use crate::engine::Shared;
use crate::fsutil::{describe, sync_dir};
use crate::index::{Entry, Location};
use crate::log::active::ActiveLog;
use crate::log::format::{self, PUT};
use crate::name;

/// The sub-directory of the lock files.
const LOCK_DIR: &str = ".locks";
/// Bytes of records per frame while converting.
const FRAME_TARGET: usize = 1024 * 1024;

/// The old files found in the data directory.
#[derive(Debug, Default)]
struct OldFiles {
    /// `(uri, path)` of every `<name>.json`, sorted.
    records: Vec<(String, PathBuf)>,
    /// Temporary and lock files to remove after.
    leftovers: Vec<PathBuf>,
    /// Whether `.locks` exists.
    lock_dir: bool,
}

/// Converts the old files in the store's directory; returns how many
/// records it appended.
pub(crate) fn migrate(shared: &Shared, log: &mut ActiveLog) -> Result<usize, String> {
    let dir = &shared.dir;
    let old = find(dir).map_err(|e| format!("cannot list {}: {}", dir.display(), describe(&e)))?;
    if old.records.is_empty() && old.leftovers.is_empty() && !old.lock_dir {
        return Ok(0);
    }

    let mut appended = 0;
    let mut frame = Vec::new();
    let mut start = format::begin_frame(&mut frame);
    let mut pending: Vec<(String, u64, usize, u32)> = Vec::new();
    for (uri, path) in &old.records {
        let record = read_old(path, uri)?;
        let known = shared.index().get(uri).map(|e| e.version);
        if known.is_some_and(|v| v >= record.version) {
            continue;
        }
        let data = serde_json::to_vec(&record)
            .map_err(|e| format!("cannot convert {}: {e}", path.display()))?;
        let rel = frame.len();
        let len = format::encode_entry(&mut frame, PUT, record.version, uri, &data);
        pending.push((uri.clone(), record.version, rel, len));
        if frame.len() >= FRAME_TARGET {
            appended += flush(shared, log, &mut frame, start, &mut pending)?;
            start = format::begin_frame(&mut frame);
        }
    }
    if !pending.is_empty() {
        appended += flush(shared, log, &mut frame, start, &mut pending)?;
    }

    // Every record is in the log, synced: the old files can go.
    let remove = |path: &Path| match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            Err(format!("cannot remove the converted {}: {}", path.display(), describe(&e)))
        }
        _ => Ok(()),
    };
    for (_, path) in &old.records {
        remove(path)?;
    }
    for path in &old.leftovers {
        remove(path)?;
    }
    if old.lock_dir {
        // Kept when it holds files that are not ours.
        let _ = fs::remove_dir(dir.join(LOCK_DIR));
    }
    sync_dir(dir).map_err(|e| format!("cannot sync {}: {}", dir.display(), describe(&e)))?;
    Ok(appended)
}

/// Appends the frame in `frame` and indexes its entries.
fn flush(
    shared: &Shared,
    log: &mut ActiveLog,
    frame: &mut Vec<u8>,
    start: usize,
    pending: &mut Vec<(String, u64, usize, u32)>,
) -> Result<usize, String> {
    format::finish_frame(frame, start);
    let appended = log.append(shared, frame).map_err(|e| {
        format!("cannot convert the records of the file-per-record format: {}", e.describe())
    })?;
    let mut index = shared.index_mut();
    let count = pending.len();
    for (uri, version, rel, len) in pending.drain(..) {
        let at = Location {
            segment: std::sync::Arc::clone(&appended.segment),
            offset: appended.offset + rel as u64,
            len,
        };
        index.put(&uri, Entry { version, at });
    }
    frame.clear();
    Ok(count)
}

/// The old record in `path`, which must be the record of `uri`.
fn read_old(path: &Path, uri: &str) -> Result<Record, String> {
    let refuse = |why: String| {
        format!(
            "cannot convert {} of the file-per-record format: {why}; repair, move or delete it, \
             then start again",
            path.display()
        )
    };
    let bytes = fs::read(path).map_err(|e| refuse(describe(&e)))?;
    if bytes.is_empty() {
        return Err(refuse("it is empty".into()));
    }
    let record: Record =
        serde_json::from_slice(&bytes).map_err(|e| refuse(format!("it is not a record: {e}")))?;
    if record.uri != uri {
        return Err(refuse(format!("it holds the record of {}", name::shorten(&record.uri))));
    }
    Ok(record)
}

/// The files of the old format in `dir`: only names the old store could
/// have written; anything else is left alone.
fn find(dir: &Path) -> io::Result<OldFiles> {
    let mut old = OldFiles::default();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let file_name = entry.file_name();
        let Some(file_name) = file_name.to_str() else { continue };
        if file_name == LOCK_DIR && entry.file_type()?.is_dir() {
            old.lock_dir = true;
            for lock in fs::read_dir(entry.path())? {
                let lock = lock?;
                let lock_name = lock.file_name();
                let stem = lock_name.to_str().and_then(|n| n.strip_suffix(".lock"));
                if stem.and_then(name::decode).is_some() {
                    old.leftovers.push(lock.path());
                }
            }
        } else if let Some(uri) = file_name.strip_suffix(".json").and_then(name::decode) {
            old.records.push((uri, entry.path()));
        } else if file_name.strip_suffix(".tmp").and_then(name::decode).is_some() {
            old.leftovers.push(entry.path());
        }
    }
    old.records.sort();
    Ok(old)
}
