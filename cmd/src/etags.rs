//! The ETags `kinesis get` saw, so that a later `kinesis put` of the same
//! component is conditional on them without `--if-match`.
//!
//! They live in `$XDG_STATE_HOME/kinesis/etags.json` (else
//! `~/.local/state/kinesis/etags.json`), a JSON object keyed by
//! `URL URI`, written whole to a temporary file (mode 0600) and renamed
//! over the old one. Nothing secret is kept there: no token, no state.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

use kinesis::ETag;

/// The most entries kept; the oldest written go first.
const MAX_ENTRIES: usize = 1000;

/// The file of remembered ETags.
#[derive(Debug, Clone)]
pub(crate) struct EtagStore {
    path: Option<PathBuf>,
}

/// One remembered ETag.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Entry {
    etag: ETag,
    /// When it was saved (seconds since 1970), to drop the oldest.
    at: u64,
}

impl EtagStore {
    /// The store at the usual place; `None` inside when neither
    /// `XDG_STATE_HOME` nor `HOME` is set (nothing is remembered then).
    pub(crate) fn from_env() -> EtagStore {
        let base = std::env::var_os("XDG_STATE_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os("HOME")
                    .filter(|v| !v.is_empty())
                    .map(|home| PathBuf::from(home).join(".local").join("state"))
            });
        EtagStore { path: base.map(|b| b.join("kinesis").join("etags.json")) }
    }

    /// Where the ETags are kept, if anywhere.
    pub(crate) fn path(&self) -> Option<&PathBuf> {
        self.path.as_ref()
    }

    /// The ETag last seen of `uri` at `url`.
    pub(crate) fn get(&self, url: &str, uri: &str) -> Option<ETag> {
        self.load().remove(&key(url, uri)).map(|e| e.etag)
    }

    /// Remembers `etag` for `uri` at `url`. A failure to write is reported
    /// as a warning by the caller: the command itself succeeded.
    pub(crate) fn put(&self, url: &str, uri: &str, etag: ETag) -> std::io::Result<()> {
        let Some(path) = &self.path else { return Ok(()) };
        let mut entries = self.load();
        let at = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        entries.insert(key(url, uri), Entry { etag, at });
        while entries.len() > MAX_ENTRIES {
            let oldest = entries.iter().min_by_key(|(_, e)| e.at).map(|(k, _)| k.clone());
            match oldest {
                Some(k) => entries.remove(&k),
                None => break,
            };
        }
        let dir = path.parent().unwrap_or(path);
        std::fs::create_dir_all(dir)?;
        let tmp = path.with_extension(format!("json.{}", std::process::id()));
        let mut file = open_private(&tmp)?;
        let text = serde_json::to_vec_pretty(&entries).map_err(std::io::Error::other)?;
        file.write_all(&text)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    }

    fn load(&self) -> BTreeMap<String, Entry> {
        let Some(path) = &self.path else { return BTreeMap::new() };
        std::fs::read(path)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default()
    }
}

/// The key of `uri` at `url`: the URL without a trailing slash.
fn key(url: &str, uri: &str) -> String {
    format!("{} {uri}", url.trim_end_matches('/'))
}

#[cfg(unix)]
fn open_private(path: &std::path::Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)
}

#[cfg(not(unix))]
fn open_private(path: &std::path::Path) -> std::io::Result<std::fs::File> {
    std::fs::File::create(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_by_url_and_uri() {
        let dir = tempfile::tempdir().unwrap();
        let store = EtagStore { path: Some(dir.path().join("k").join("etags.json")) };
        let a = ETag::of(b"a", None);
        let b = ETag::of(b"b", None);
        store.put("http://h:1/", "/root/x", a).unwrap();
        store.put("http://h:2", "/root/x", b).unwrap();
        assert_eq!(store.get("http://h:1", "/root/x"), Some(a));
        assert_eq!(store.get("http://h:2/", "/root/x"), Some(b));
        assert_eq!(store.get("http://h:1", "/root/y"), None);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(store.path().unwrap()).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let nowhere = EtagStore { path: None };
        nowhere.put("http://h:1", "/root/x", a).unwrap();
        assert_eq!(nowhere.get("http://h:1", "/root/x"), None);
    }
}
