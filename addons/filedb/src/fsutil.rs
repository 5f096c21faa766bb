//! Small file-system helpers: private files, directory syncs, positioned
//! I/O, the identity of the data directory and error messages.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::Path;

use kinesis::persist::StoreError;

/// Options that create files readable and writable by the owner only.
pub(crate) fn private_options() -> OpenOptions {
    #[allow(unused_mut)]
    let mut options = OpenOptions::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options
}

/// Makes the entries of directory `dir` (creations, renames, removals)
/// durable.
#[cfg(unix)]
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Directories cannot be opened for syncing here; NTFS journals renames.
#[cfg(not(unix))]
pub(crate) fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}

/// Reads exactly `len` bytes at `offset`.
pub(crate) fn read_at(file: &File, offset: u64, len: usize) -> io::Result<Vec<u8>> {
    let mut buf = vec![0; len];
    #[cfg(unix)]
    std::os::unix::fs::FileExt::read_exact_at(file, &mut buf, offset)?;
    #[cfg(windows)]
    {
        let mut done = 0;
        while done < len {
            let n = std::os::windows::fs::FileExt::seek_read(
                file,
                &mut buf[done..],
                offset + done as u64,
            )?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            done += n;
        }
    }
    Ok(buf)
}

/// Writes all of `bytes` at `offset`.
pub(crate) fn write_at(file: &File, offset: u64, bytes: &[u8]) -> io::Result<()> {
    #[cfg(unix)]
    std::os::unix::fs::FileExt::write_all_at(file, bytes, offset)?;
    #[cfg(windows)]
    {
        let mut done = 0;
        while done < bytes.len() {
            let n = std::os::windows::fs::FileExt::seek_write(
                file,
                &bytes[done..],
                offset + done as u64,
            )?;
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            done += n;
        }
    }
    Ok(())
}

/// What identifies the data directory while the store is open: a directory
/// moved away or replaced under a running store must make every call fail
/// rather than write into files nobody will read again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DirId {
    #[cfg(unix)]
    dev: u64,
    #[cfg(unix)]
    ino: u64,
}

impl DirId {
    /// The identity of the directory `path` names now, or why it is no
    /// longer a directory.
    pub(crate) fn of(path: &Path) -> Result<DirId, String> {
        let meta = fs::metadata(path).map_err(|e| {
            format!("data directory {} is not reachable: {}", path.display(), describe(&e))
        })?;
        if !meta.is_dir() {
            return Err(format!(
                "data directory {} is not a directory (it was moved or replaced while the store \
                 was open)",
                path.display()
            ));
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            Ok(DirId { dev: meta.dev(), ino: meta.ino() })
        }
        #[cfg(not(unix))]
        Ok(DirId {})
    }

    /// `Ok` when `path` still names this directory.
    pub(crate) fn check(&self, path: &Path) -> Result<(), String> {
        if DirId::of(path)? == *self {
            Ok(())
        } else {
            Err(format!(
                "data directory {} was replaced by another directory while the store was open",
                path.display()
            ))
        }
    }
}

/// A [`StoreError::Backend`] saying what failed on which path, and why.
pub(crate) fn io_failure(action: &str, path: &Path, e: &io::Error) -> StoreError {
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
    fn a_replaced_directory_is_noticed() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("d");
        fs::create_dir(&dir).unwrap();
        let id = DirId::of(&dir).unwrap();
        assert!(id.check(&dir).is_ok());
        fs::rename(&dir, tmp.path().join("aside")).unwrap();
        assert!(id.check(&dir).unwrap_err().contains("not reachable"));
        fs::create_dir(&dir).unwrap();
        assert!(id.check(&dir).unwrap_err().contains("replaced"));
        fs::remove_dir(&dir).unwrap();
        fs::write(&dir, b"").unwrap();
        assert!(id.check(&dir).unwrap_err().contains("not a directory"));
    }
}
