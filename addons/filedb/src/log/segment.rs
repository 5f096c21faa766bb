//! Segment files: their names, creating them, reading and writing them.
//!
//! | name | what |
//! | --- | --- |
//! | `filedb-<seq>.log` | a log segment; `<seq>` is 16 lower-case hex digits, counting from 1 |
//! | `filedb-<seq>.compacted` | the live records of every segment up to `<seq>`, written by compaction |
//! | `filedb-<seq>.compacted.tmp` | a compaction in progress; removed at the next start |

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::format::SEGMENT_HEADER;
use crate::fsutil::{self, private_options};

/// What a file in the data directory is to the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum FileKind {
    /// `filedb-<seq>.log`
    Log,
    /// `filedb-<seq>.compacted`
    Compacted,
    /// `filedb-<seq>.compacted.tmp`
    CompactedTemp,
}

const PREFIX: &str = "filedb-";

/// The file name of segment `seq` of `kind`.
pub(crate) fn file_name(seq: u64, kind: FileKind) -> String {
    let suffix = match kind {
        FileKind::Log => ".log",
        FileKind::Compacted => ".compacted",
        FileKind::CompactedTemp => ".compacted.tmp",
    };
    format!("{PREFIX}{seq:016x}{suffix}")
}

/// The sequence number and kind a file name stands for, or `None` for a
/// file that is not part of the log.
pub(crate) fn parse_name(name: &str) -> Option<(u64, FileKind)> {
    let rest = name.strip_prefix(PREFIX)?;
    let (hex, suffix) = rest.split_at_checked(16)?;
    if !hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return None;
    }
    let seq = u64::from_str_radix(hex, 16).ok()?;
    let kind = match suffix {
        ".log" => FileKind::Log,
        ".compacted" => FileKind::Compacted,
        ".compacted.tmp" => FileKind::CompactedTemp,
        _ => return None,
    };
    Some((seq, kind))
}

/// One open segment file. Shared (`Arc`) by the index entries that point
/// into it, so a load that raced with compaction still reads from the file
/// after it was removed.
#[derive(Debug)]
pub(crate) struct Segment {
    seq: u64,
    kind: FileKind,
    path: PathBuf,
    file: File,
    /// Bytes of the entries in this segment that are the latest of their
    /// record (kept up to date by the index).
    live: AtomicU64,
    /// Bytes of this segment holding frames (header included).
    used: AtomicU64,
}

impl Segment {
    /// Creates segment `seq` of `kind` in `dir`: the header followed by
    /// `zeros` zero bytes, synced. The caller syncs the directory.
    pub(crate) fn create(dir: &Path, seq: u64, kind: FileKind, zeros: u64) -> io::Result<Segment> {
        let path = dir.join(file_name(seq, kind));
        let file = private_options().read(true).write(true).create_new(true).open(&path)?;
        let segment = Segment::with_file(seq, kind, path, file);
        let result = segment.write_at(0, &SEGMENT_HEADER).and_then(|()| {
            if zeros > 0 {
                segment.zero_fill(SEGMENT_HEADER.len() as u64, zeros)?;
            }
            segment.file.sync_all()
        });
        if let Err(e) = result {
            let _ = std::fs::remove_file(&segment.path);
            return Err(e);
        }
        segment.used.store(SEGMENT_HEADER.len() as u64, Ordering::Relaxed);
        Ok(segment)
    }

    /// Opens the existing segment `seq` of `kind` in `dir` for reading and
    /// writing.
    pub(crate) fn open(dir: &Path, seq: u64, kind: FileKind) -> io::Result<Segment> {
        let path = dir.join(file_name(seq, kind));
        let file = private_options().read(true).write(true).open(&path)?;
        Ok(Segment::with_file(seq, kind, path, file))
    }

    fn with_file(seq: u64, kind: FileKind, path: PathBuf, file: File) -> Segment {
        Segment { seq, kind, path, file, live: AtomicU64::new(0), used: AtomicU64::new(0) }
    }

    /// Gives a finished compaction output its final name.
    pub(crate) fn rename_to(self, kind: FileKind) -> io::Result<Segment> {
        let dir = self.path.parent().map(Path::to_path_buf).unwrap_or_default();
        let path = dir.join(file_name(self.seq, kind));
        std::fs::rename(&self.path, &path)?;
        Ok(Segment { path, kind, ..self })
    }

    /// The sequence number.
    pub(crate) fn seq(&self) -> u64 {
        self.seq
    }

    /// Log or compacted.
    pub(crate) fn kind(&self) -> FileKind {
        self.kind
    }

    /// The file's path, for messages.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The whole file.
    pub(crate) fn read_all(&self) -> io::Result<Vec<u8>> {
        let len = self.file.metadata()?.len();
        let len = usize::try_from(len).map_err(|_| io::Error::other("segment too large"))?;
        fsutil::read_at(&self.file, 0, len)
    }

    /// `len` bytes at `offset`.
    pub(crate) fn read_at(&self, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        fsutil::read_at(&self.file, offset, len)
    }

    /// Writes `bytes` at `offset` (not synced).
    pub(crate) fn write_at(&self, offset: u64, bytes: &[u8]) -> io::Result<()> {
        fsutil::write_at(&self.file, offset, bytes)
    }

    /// Writes `len` zero bytes at `offset` (not synced), so that later
    /// writes there overwrite allocated blocks and `fdatasync` has no file
    /// size or block map to flush.
    pub(crate) fn zero_fill(&self, offset: u64, len: u64) -> io::Result<()> {
        const CHUNK: u64 = 256 * 1024;
        let zeros = vec![0; CHUNK.min(len) as usize];
        let mut done = 0;
        while done < len {
            let n = CHUNK.min(len - done);
            self.write_at(offset + done, &zeros[..n as usize])?;
            done += n;
        }
        Ok(())
    }

    /// Makes the written data durable (`fdatasync`).
    pub(crate) fn sync_data(&self) -> io::Result<()> {
        self.file.sync_data()
    }

    /// Cuts the file to `len` bytes and syncs it.
    pub(crate) fn truncate(&self, len: u64) -> io::Result<()> {
        self.file.set_len(len)?;
        self.file.sync_all()
    }

    /// Bytes of live entries in this segment.
    pub(crate) fn live(&self) -> u64 {
        self.live.load(Ordering::Relaxed)
    }

    /// Adds `delta` live bytes (the index calls this under its lock).
    pub(crate) fn add_live(&self, delta: u64) {
        self.live.fetch_add(delta, Ordering::Relaxed);
    }

    /// Removes `delta` live bytes (the index calls this under its lock).
    pub(crate) fn sub_live(&self, delta: u64) {
        self.live.fetch_sub(delta, Ordering::Relaxed);
    }

    /// Bytes holding frames, header included.
    pub(crate) fn used(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }

    /// Records how many bytes hold frames.
    pub(crate) fn set_used(&self, used: u64) {
        self.used.store(used, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_foreign_names_are_not_segments() {
        for kind in [FileKind::Log, FileKind::Compacted, FileKind::CompactedTemp] {
            for seq in [1, 0x2a, u64::MAX] {
                assert_eq!(parse_name(&file_name(seq, kind)), Some((seq, kind)));
            }
        }
        assert_eq!(file_name(42, FileKind::Log), "filedb-000000000000002a.log");
        for foreign in [
            "filedb.lock",
            "kinesis.key",
            "filedb-000000000000002A.log",
            "filedb-2a.log",
            "filedb-000000000000002a.log.bak",
            "filedb-00000000000000+a.log",
            "%2Froot.json",
            "filedb-é00000000000002a.log",
        ] {
            assert_eq!(parse_name(foreign), None, "{foreign}");
        }
    }
}
