//! The active segment: where commit frames are appended, and when a new
//! segment is started.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use super::format::SEGMENT_HEADER_LEN;
use super::segment::{FileKind, Segment};
use crate::engine::Shared;
use crate::fsutil::sync_dir;

/// Why an append failed.
#[derive(Debug)]
pub(crate) enum AppendError {
    /// Writing failed: nothing new is durable, the next append may succeed.
    Write(PathBuf, io::Error),
    /// `fdatasync` failed: what reached the disk is unknown, and after a
    /// failed sync the kernel may have dropped the dirty pages, so later
    /// syncs prove nothing. The store must stop writing.
    Sync(PathBuf, io::Error),
}

impl AppendError {
    /// The error as the tail of a message.
    pub(crate) fn describe(&self) -> String {
        match self {
            AppendError::Write(path, e) => {
                format!("cannot write to {}: {}", path.display(), crate::fsutil::describe(e))
            }
            AppendError::Sync(path, e) => format!(
                "cannot sync {}: {}; the store accepts no more writes until it is opened again",
                path.display(),
                crate::fsutil::describe(e)
            ),
        }
    }
}

/// Where a frame went.
#[derive(Debug)]
pub(crate) struct Appended {
    /// The segment holding it.
    pub(crate) segment: Arc<Segment>,
    /// Offset of the frame in the segment.
    pub(crate) offset: u64,
    /// True when a new segment was started for it (compaction may have
    /// something to do).
    pub(crate) rolled: bool,
}

/// The segment being appended to.
#[derive(Debug)]
pub(crate) struct ActiveLog {
    segment: Arc<Segment>,
    /// Where the next frame goes.
    end: u64,
    /// Bytes of the file known to be written (zeros past `end`).
    allocated: u64,
    /// Bytes past `end` up to here may hold a frame whose write failed: they
    /// are zeroed with the next successful append.
    dirty_until: u64,
}

impl ActiveLog {
    /// Continues appending to a segment recovery found: frames end at `end`,
    /// the file is `file_len` bytes long and holds only zeros past `end`.
    pub(crate) fn resume(segment: Arc<Segment>, end: u64, file_len: u64) -> ActiveLog {
        segment.set_used(end);
        ActiveLog { segment, end, allocated: file_len, dirty_until: end }
    }

    /// Starts the new segment `seq`.
    pub(crate) fn create(shared: &Shared, seq: u64) -> io::Result<ActiveLog> {
        let zeros = shared.options.preallocate_bytes;
        let segment = Segment::create(&shared.dir, seq, FileKind::Log, zeros)?;
        sync_dir(&shared.dir)?;
        let end = SEGMENT_HEADER_LEN;
        Ok(ActiveLog { segment: Arc::new(segment), end, allocated: end + zeros, dirty_until: end })
    }

    /// True when no frame was appended to the segment yet.
    pub(crate) fn is_empty(&self) -> bool {
        self.end == SEGMENT_HEADER_LEN
    }

    /// Appends `frame` and makes it durable with one `fdatasync`. Starts a
    /// new segment first when the frame would take this one past
    /// [`Options::segment_bytes`](crate::Options::segment_bytes); a frame
    /// larger than that gets a segment of its own.
    pub(crate) fn append(
        &mut self,
        shared: &Shared,
        frame: &[u8],
    ) -> Result<Appended, AppendError> {
        let len = frame.len() as u64;
        let mut rolled = false;
        if !self.is_empty() && self.end + len > shared.options.segment_bytes {
            self.roll(shared).map_err(|e| AppendError::Write(shared.dir.clone(), e))?;
            rolled = true;
        }
        let offset = self.end;
        let new_end = offset + len;
        let path = self.segment.path().to_path_buf();
        let written = self.segment.write_at(offset, frame).and_then(|()| {
            // Zero what a failed earlier write may have left past the frame,
            // and keep written (allocated) zeros ahead of the log, so that
            // the next appends change no file size or block map.
            let mut zero_to = self.dirty_until.max(new_end);
            let ahead = shared.options.preallocate_bytes;
            if ahead > 0 && new_end > self.allocated {
                zero_to = zero_to.max(new_end + ahead);
            }
            if zero_to > new_end {
                self.segment.zero_fill(new_end, zero_to - new_end)?;
            }
            Ok(zero_to)
        });
        let zero_to = match written {
            Ok(zero_to) => zero_to,
            Err(e) => {
                self.dirty_until = self.dirty_until.max(new_end);
                return Err(AppendError::Write(path, e));
            }
        };
        if let Err(e) = self.segment.sync_data() {
            self.dirty_until = self.dirty_until.max(new_end);
            return Err(AppendError::Sync(path, e));
        }
        self.end = new_end;
        self.allocated = self.allocated.max(zero_to);
        self.dirty_until = new_end;
        self.segment.set_used(new_end);
        Ok(Appended { segment: Arc::clone(&self.segment), offset, rolled })
    }

    /// Seals this segment and starts the next one. The sealed segment joins
    /// the ones compaction may rewrite.
    pub(crate) fn roll(&mut self, shared: &Shared) -> io::Result<()> {
        if self.dirty_until > self.end {
            self.segment.zero_fill(self.end, self.dirty_until - self.end)?;
            self.segment.sync_data()?;
            self.dirty_until = self.end;
        }
        let next = ActiveLog::create(shared, self.segment.seq() + 1)?;
        let sealed = std::mem::replace(self, next);
        shared.sealed().push(sealed.segment);
        Ok(())
    }
}
