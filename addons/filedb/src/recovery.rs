//! Reading the log at start: which files count, the index they make, and
//! what to do with damage.
//!
//! * The compacted file with the highest sequence number, if any, holds
//!   every live record up to its number; older compacted files and log
//!   segments up to that number are left-overs of a compaction that was cut
//!   short after it had finished its output, and are removed, as are
//!   unfinished outputs (`.compacted.tmp`).
//! * The log segments after it must follow each other without a gap; a
//!   missing one is an error naming it.
//! * Every frame must be whole and match its checksum, except at the end of
//!   the last segment: there a frame cut short or garbled by a crash, with
//!   nothing valid after it, is the group commit that was being written
//!   (never acknowledged). It is cut off, and the file truncated there.
//! * A bad frame anywhere else (in a sealed segment, in the compacted file,
//!   or followed by a valid frame) is damage: the store refuses to start,
//!   naming the file and the byte offset, rather than silently drop
//!   acknowledged records after it.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::fsutil::{describe, sync_dir};
use crate::index::{Entry, Index, Location};
use crate::log::format::{self, Found, DELETE, SEGMENT_HEADER, SEGMENT_HEADER_LEN};
use crate::log::segment::{file_name, parse_name, FileKind, Segment};

/// What the log on disk amounts to.
#[derive(Debug, Default)]
pub(crate) struct Recovered {
    /// Every live record.
    pub(crate) index: Index,
    /// The compacted file and the log segments before the last, oldest
    /// first.
    pub(crate) sealed: Vec<Arc<Segment>>,
    /// The last log segment, to append to.
    pub(crate) active: Option<Active>,
    /// The sequence number of the next segment, when there is no active one.
    pub(crate) next_seq: u64,
    /// Where a torn tail was cut off.
    pub(crate) truncated: Option<Truncated>,
}

/// The last log segment.
#[derive(Debug)]
pub(crate) struct Active {
    /// The segment.
    pub(crate) segment: Arc<Segment>,
    /// Where its frames end.
    pub(crate) end: u64,
    /// The file's length (zeros past `end`).
    pub(crate) file_len: u64,
}

/// A torn tail that was cut off.
#[derive(Debug)]
pub(crate) struct Truncated {
    /// The segment file.
    pub(crate) path: PathBuf,
    /// Where the valid log ends now.
    pub(crate) offset: u64,
    /// How many bytes were cut.
    pub(crate) removed: u64,
}

/// Reads the log in `dir` (locked by the caller).
pub(crate) fn recover(dir: &Path) -> Result<Recovered, String> {
    let (mut logs, mut compacted, mut temps) = (BTreeSet::new(), BTreeSet::new(), Vec::new());
    let entries = fs::read_dir(dir)
        .map_err(|e| format!("cannot list data directory {}: {}", dir.display(), describe(&e)))?;
    for entry in entries {
        let entry = entry.map_err(|e| {
            format!("cannot list data directory {}: {}", dir.display(), describe(&e))
        })?;
        let Some((seq, kind)) = entry.file_name().to_str().and_then(parse_name) else { continue };
        match kind {
            FileKind::Log => logs.insert(seq),
            FileKind::Compacted => compacted.insert(seq),
            FileKind::CompactedTemp => {
                temps.push(seq);
                true
            }
        };
    }

    // Left-overs of compactions.
    let base = compacted.last().copied();
    let mut stale: Vec<PathBuf> =
        temps.iter().map(|&s| dir.join(file_name(s, FileKind::CompactedTemp))).collect();
    if let Some(base) = base {
        stale.extend(compacted.range(..base).map(|&s| dir.join(file_name(s, FileKind::Compacted))));
        stale.extend(logs.range(..=base).map(|&s| dir.join(file_name(s, FileKind::Log))));
        logs = logs.split_off(&(base + 1));
    }
    for path in &stale {
        fs::remove_file(path)
            .map_err(|e| format!("cannot remove the stale {}: {}", path.display(), describe(&e)))?;
    }
    if !stale.is_empty() {
        sync_dir(dir).map_err(|e| format!("cannot sync {}: {}", dir.display(), describe(&e)))?;
    }

    let mut expected = base.map_or(1, |b| b + 1);
    for &seq in &logs {
        if seq != expected {
            return Err(format!(
                "the log in {} is incomplete: {} is missing (found {} after it); restore it from \
                 a backup",
                dir.display(),
                file_name(expected, FileKind::Log),
                file_name(seq, FileKind::Log)
            ));
        }
        expected += 1;
    }

    let mut recovered = Recovered { next_seq: expected, ..Recovered::default() };
    let open = |seq, kind| {
        Segment::open(dir, seq, kind).map(Arc::new).map_err(|e| {
            format!("cannot open {}: {}", dir.join(file_name(seq, kind)).display(), describe(&e))
        })
    };
    if let Some(base) = base {
        let segment = open(base, FileKind::Compacted)?;
        read_segment(&segment, &mut recovered, false)?;
        recovered.sealed.push(segment);
    }
    let last = logs.last().copied();
    for seq in logs {
        let segment = open(seq, FileKind::Log)?;
        if Some(seq) == last {
            let (end, file_len) = read_segment(&segment, &mut recovered, true)?;
            recovered.active = Some(Active { segment, end, file_len });
        } else {
            read_segment(&segment, &mut recovered, false)?;
            recovered.sealed.push(segment);
        }
    }
    Ok(recovered)
}

/// Adds the entries of `segment` to the index. Returns where its frames end
/// and the file's length afterwards. `is_last`: the last log segment, whose
/// torn tail is cut off.
fn read_segment(
    segment: &Arc<Segment>,
    recovered: &mut Recovered,
    is_last: bool,
) -> Result<(u64, u64), String> {
    let path = segment.path();
    let bytes = segment
        .read_all()
        .map_err(|e| format!("cannot read {}: {}", path.display(), describe(&e)))?;
    let header_len = SEGMENT_HEADER_LEN as usize;
    if bytes.len() < header_len || bytes[..header_len] != SEGMENT_HEADER {
        if is_last && format::next_valid_frame(&bytes, 0).is_none() {
            // Its creation was cut short: nothing was ever written to it.
            segment
                .write_at(0, &SEGMENT_HEADER)
                .and_then(|()| segment.truncate(SEGMENT_HEADER_LEN))
                .map_err(|e| format!("cannot repair {}: {}", path.display(), describe(&e)))?;
            segment.set_used(SEGMENT_HEADER_LEN);
            return Ok((SEGMENT_HEADER_LEN, SEGMENT_HEADER_LEN));
        }
        return Err(format!(
            "{} is not a segment of the file store: its header is wrong",
            path.display()
        ));
    }

    let mut at = header_len;
    let bad = loop {
        match format::frame_at(&bytes, at) {
            Found::Frame { body_start, next } => {
                apply(segment, &bytes[body_start..next], body_start, &mut recovered.index)?;
                at = next;
            }
            Found::End => match bytes[at..].iter().position(|&b| b != 0) {
                None => {
                    segment.set_used(at as u64);
                    return Ok((at as u64, bytes.len() as u64));
                }
                Some(p) => {
                    break (at, format!("non-zero bytes at offset {} after the end", at + p))
                }
            },
            Found::Bad(reason) => break (at, reason),
        }
    };

    let (offset, reason) = bad;
    let damage = |more: &str| {
        format!(
            "the log is damaged: {} has a bad record at byte offset {offset} ({reason}){more}; \
             the store will not start rather than lose the records after it",
            path.display()
        )
    };
    if !is_last {
        return Err(damage(""));
    }
    if let Some(next) = format::next_valid_frame(&bytes, offset + 1) {
        return Err(damage(&format!(", and a valid record follows at offset {next}")));
    }
    segment
        .truncate(offset as u64)
        .map_err(|e| format!("cannot truncate {}: {}", path.display(), describe(&e)))?;
    segment.set_used(offset as u64);
    recovered.truncated = Some(Truncated {
        path: path.to_path_buf(),
        offset: offset as u64,
        removed: (bytes.len() - offset) as u64,
    });
    Ok((offset as u64, offset as u64))
}

/// Applies the entries of one frame body (at `body_start` in the file).
fn apply(
    segment: &Arc<Segment>,
    body: &[u8],
    body_start: usize,
    index: &mut Index,
) -> Result<(), String> {
    for item in format::entries(body) {
        let (rel, entry, len) = item.map_err(|reason| {
            format!(
                "the log is damaged: {} has a frame at byte offset {} whose checksum matches but \
                 whose entries do not decode ({reason})",
                segment.path().display(),
                body_start - format::FRAME_HEADER_LEN
            )
        })?;
        if entry.kind == DELETE {
            index.remove(entry.uri);
        } else {
            let at = Location {
                segment: Arc::clone(segment),
                offset: (body_start + rel) as u64,
                len: len as u32,
            };
            index.put(entry.uri, Entry { version: entry.version, at });
        }
    }
    Ok(())
}
