//! Compaction: rewriting the live records of the sealed segments into one
//! compacted file, so the log does not grow without bound.
//!
//! The commit thread only ever appends to the active segment; compaction
//! only reads sealed ones. For the sealed segments up to sequence number
//! `n` it
//! 1. notes where the index says each live record is (only those in
//!    segments up to `n`),
//! 2. copies those entries, checksums checked, into
//!    `filedb-<n>.compacted.tmp`, syncs it, renames it to
//!    `filedb-<n>.compacted` and syncs the directory: from here on a start
//!    reads this file instead of the segments up to `n`;
//! 3. points the index at the copies, but only for records the index still
//!    has at the noted place: a save or delete that came in meanwhile went
//!    to the active segment, after `n`, and wins at the next start too;
//! 4. removes the old files. A load still reading one keeps it open.
//!
//! A crash at any point leaves either the old files (step 2 not reached)
//! or the compacted file, which a start prefers; nothing acknowledged is
//! lost either way. Tombstones in the compacted segments are dropped: the
//! compacted file holds everything up to `n`, so no older put is left for
//! them to hide.

use std::fs;
use std::io;
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc, PoisonError};

use crate::engine::Shared;
use crate::fsutil::{describe, sync_dir};
use crate::index::Location;
use crate::log::format;
use crate::log::segment::{FileKind, Segment};

/// Bytes of entries per frame in a compacted file.
const FRAME_TARGET: usize = 1024 * 1024;

/// The compaction thread: compacts when woken (a segment was sealed) and
/// the sealed segments are at least half garbage, until the channel closes.
pub(crate) fn run_background(shared: &Shared, wakes: &mpsc::Receiver<()>) {
    while wakes.recv().is_ok() {
        while wakes.try_recv().is_ok() {}
        if shared.closing.load(Ordering::Relaxed) {
            return;
        }
        if !shared.options.background_compaction || !worth_it(shared) {
            continue;
        }
        if let Err(why) = compact(shared) {
            tracing::warn!(dir = %shared.dir.display(), "file store: compaction failed: {why}");
        }
    }
}

/// True when the sealed segments hold at least as many dead bytes as live
/// ones (so compacting at least halves them) and there is more than an
/// already compacted file.
pub(crate) fn worth_it(shared: &Shared) -> bool {
    let sealed = shared.sealed();
    if sealed.iter().all(|s| s.kind() == FileKind::Compacted) {
        return false;
    }
    let used: u64 = sealed.iter().map(|s| s.used()).sum();
    let live: u64 = sealed.iter().map(|s| s.live()).sum();
    used - live.min(used) >= live
}

/// Compacts every sealed segment into one compacted file. Returns how many
/// records it moved (`None`: nothing to do, or the store is closing).
pub(crate) fn compact(shared: &Shared) -> Result<Option<usize>, String> {
    let _one_at_a_time = shared.compacting.lock().unwrap_or_else(PoisonError::into_inner);
    let picked: Vec<Arc<Segment>> = shared.sealed().clone();
    let Some(last) = picked.iter().map(|s| s.seq()).max() else { return Ok(None) };
    if picked.iter().all(|s| s.kind() == FileKind::Compacted) {
        return Ok(None);
    }
    // Every segment up to `last` is sealed: the active one comes after.
    let mut moving = shared.index().locations_in(|s| s.seq() <= last);
    moving.sort_by_key(|(_, at)| (at.segment.seq(), at.offset));

    let dir = &shared.dir;
    let temp_path = dir.join(crate::log::segment::file_name(last, FileKind::CompactedTemp));
    let _ = fs::remove_file(&temp_path);
    let output = Segment::create(dir, last, FileKind::CompactedTemp, 0)
        .map_err(|e| format!("cannot create {}: {}", temp_path.display(), describe(&e)))?;
    let written = match copy_entries(shared, &output, &moving) {
        Ok(Some(written)) => written,
        Ok(None) => {
            let _ = fs::remove_file(output.path());
            return Ok(None);
        }
        Err(why) => {
            let _ = fs::remove_file(output.path());
            return Err(why);
        }
    };
    let output = output
        .rename_to(FileKind::Compacted)
        .and_then(|segment| sync_dir(dir).map(|()| segment))
        .map_err(|e| format!("cannot put {} in place: {}", temp_path.display(), describe(&e)))?;
    output.set_used(written.end);
    let output = Arc::new(output);

    // From here on a start reads the compacted file.
    {
        let mut index = shared.index_mut();
        for ((uri, from), (offset, len)) in moving.iter().zip(&written.places) {
            let to = Location { segment: Arc::clone(&output), offset: *offset, len: *len };
            index.relocate(uri, from, to);
        }
    }
    {
        let mut sealed = shared.sealed();
        sealed.retain(|s| s.seq() > last);
        sealed.insert(0, Arc::clone(&output));
    }
    for old in &picked {
        if let Err(e) = fs::remove_file(old.path()) {
            if e.kind() != io::ErrorKind::NotFound {
                tracing::warn!(
                    "file store: cannot remove the compacted {}: {}",
                    old.path().display(),
                    describe(&e)
                );
            }
        }
    }
    sync_dir(dir).map_err(|e| format!("cannot sync {}: {}", dir.display(), describe(&e)))?;
    Ok(Some(moving.len()))
}

/// Where the copies went.
struct Written {
    /// Offset and length of each copy, in the order of the input.
    places: Vec<(u64, u32)>,
    /// Where the frames of the output end.
    end: u64,
}

/// Copies the entries at `moving` into `output`, in frames, and syncs it.
/// `None` when the store began closing.
fn copy_entries(
    shared: &Shared,
    output: &Segment,
    moving: &[(String, Location)],
) -> Result<Option<Written>, String> {
    let out_path = output.path();
    let write_failed =
        |e: io::Error| format!("cannot write {}: {}", out_path.display(), describe(&e));
    let mut places = Vec::with_capacity(moving.len());
    let mut end = format::SEGMENT_HEADER_LEN;
    let mut frame = Vec::with_capacity(FRAME_TARGET + 64 * 1024);
    let mut start = format::begin_frame(&mut frame);
    for (uri, at) in moving {
        let bytes = at.segment.read_at(at.offset, at.len as usize).map_err(|e| {
            format!("cannot read {}: {}", at.segment.path().display(), describe(&e))
        })?;
        match format::decode_entry(&bytes) {
            Ok((entry, _)) if entry.uri == uri => {}
            Ok(_) => {
                return Err(format!(
                    "{} at byte offset {} holds another record than the index says",
                    at.segment.path().display(),
                    at.offset
                ))
            }
            Err(reason) => {
                return Err(format!(
                    "the log is damaged: {} has a bad record at byte offset {} ({reason})",
                    at.segment.path().display(),
                    at.offset
                ))
            }
        }
        places.push((end + frame.len() as u64, at.len));
        frame.extend_from_slice(&bytes);
        if frame.len() >= FRAME_TARGET {
            if shared.closing.load(Ordering::Relaxed) {
                return Ok(None);
            }
            format::finish_frame(&mut frame, start);
            output.write_at(end, &frame).map_err(write_failed)?;
            end += frame.len() as u64;
            frame.clear();
            start = format::begin_frame(&mut frame);
        }
    }
    if frame.len() > format::FRAME_HEADER_LEN {
        format::finish_frame(&mut frame, start);
        output.write_at(end, &frame).map_err(write_failed)?;
        end += frame.len() as u64;
    }
    output.sync_data().map_err(write_failed)?;
    Ok(Some(Written { places, end }))
}
