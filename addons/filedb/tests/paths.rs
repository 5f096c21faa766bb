//! What the file store does with hostile and long URIs, foreign files in its
//! directory, and what its files look like on disk.
#![cfg(unix)]

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::{entries, frames, log_segments, record};
use kinesis::persist::{Record, Store, StoreError};
use kinesis_filedb::FileStore;
use serde_json::{json, Value};

/// Every path below `root`, relative to it, sorted.
fn tree(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path.clone());
            }
            out.push(path.strip_prefix(root).unwrap().to_path_buf());
        }
    }
    out.sort();
    out
}

/// URIs made of `..`, `/`, NUL, backslashes, dots and names that look like
/// the store's own files are only keys: each round trips, is listed as
/// written, and the directory holds nothing but the lock file and the log
/// (no file is named after a URI, nothing is created elsewhere); deleting
/// them all leaves an empty listing.
#[tokio::test]
async fn hostile_uris_are_only_keys() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let store = FileStore::open(&data).unwrap();
    let hostile = [
        "..",
        ".",
        "/",
        "//",
        "/..",
        "../x",
        "../../../../../../etc/passwd",
        "/a/../../b",
        "a/b",
        "\0",
        "a\0b",
        "/root/\0/..",
        "./x",
        "\\..\\x",
        "C:\\x",
        "%2F..",
        "%2E%2E",
        "name.json",
        "filedb.lock",
        "filedb-0000000000000001.log",
        ".locks",
        "~",
        "a b",
        "\n",
        "é/中/🦀",
    ];
    for uri in hostile {
        let r = record(uri, 1);
        store.save(&r, 0).await.unwrap_or_else(|e| panic!("{uri:?}: {e}"));
        assert_eq!(store.load(uri).await.unwrap(), Some(r), "{uri:?}");
    }
    let mut sorted: Vec<String> = hostile.iter().map(|s| s.to_string()).collect();
    sorted.sort();
    assert_eq!(store.list("").await.unwrap(), sorted);

    let expected = vec![
        PathBuf::from("data"),
        PathBuf::from("data/filedb-0000000000000001.log"),
        PathBuf::from("data/filedb.lock"),
    ];
    assert_eq!(tree(tmp.path()), expected);

    for uri in hostile {
        assert!(store.delete(uri).await.unwrap(), "{uri:?}");
        assert_eq!(store.load(uri).await.unwrap(), None, "{uri:?}");
    }
    assert!(store.list("").await.unwrap().is_empty());
    assert_eq!(tree(tmp.path()), expected);
}

/// Any non-empty URI of up to 4096 bytes is taken; a longer one is refused
/// with `InvalidKey` by `save`, `load` and `delete`, with a short message
/// even for a 100 000-byte URI; so is the empty URI.
#[tokio::test]
async fn uris_longer_than_4096_bytes_are_invalid_keys() {
    let tmp = tempfile::tempdir().unwrap();
    let store = FileStore::open(tmp.path()).unwrap();

    let fits = ["a".repeat(4096), "é".repeat(2048), format!("/{}", "b".repeat(4095))];
    for uri in &fits {
        store.save(&record(uri, 1), 0).await.unwrap();
        assert_eq!(store.load(uri).await.unwrap().map(|r| r.version), Some(1));
    }
    let too_long = ["a".repeat(4097), "é".repeat(2049), "x".repeat(100_000)];
    for uri in &too_long {
        let shown = &uri[..12];
        match store.save(&record(uri, 1), 0).await {
            Err(StoreError::InvalidKey(message)) => {
                assert!(message.len() < 300, "{message}");
                assert!(message.contains("at most 4096"), "{message}");
            }
            other => panic!("save of {shown}…: {other:?}"),
        }
        assert!(matches!(store.load(uri).await, Err(StoreError::InvalidKey(_))), "{shown}");
        assert!(matches!(store.delete(uri).await, Err(StoreError::InvalidKey(_))), "{shown}");
    }
    assert!(matches!(store.save(&record("", 1), 0).await, Err(StoreError::InvalidKey(_))));
    let mut expected: Vec<String> = fits.to_vec();
    expected.sort();
    assert_eq!(store.list("").await.unwrap(), expected);
}

/// Files the store did not write (other names, near misses of its own
/// names, a key file) are not listed, not touched, and do not disturb
/// saving, compacting or opening again.
#[tokio::test]
async fn foreign_files_are_ignored() {
    let tmp = tempfile::tempdir().unwrap();
    let foreign = [
        "notes.txt",
        "%2fx.json",
        "a.b.json",
        ".hidden.json",
        "%41.json",
        "kinesis.key",
        "filedb-1.log",
        "filedb-000000000000000G.log",
        "filedb-0000000000000001.log.bak",
        "filedb.lock.old",
    ];
    for name in foreign {
        fs::write(tmp.path().join(name), b"foreign").unwrap();
    }
    let store = FileStore::open(tmp.path()).unwrap();
    assert!(store.list("").await.unwrap().is_empty());
    store.save(&record("/x", 1), 0).await.unwrap();
    assert_eq!(store.list("").await.unwrap(), vec!["/x".to_owned()]);
    store.compact().await.unwrap();
    assert!(store.delete("/x").await.unwrap());
    drop(store);
    drop(FileStore::open(tmp.path()).unwrap());
    for name in foreign {
        assert_eq!(fs::read(tmp.path().join(name)).unwrap(), b"foreign", "{name}");
    }
}

/// On disk: the lock file and a segment, readable by the owner only; the
/// segment is the documented header and one frame per commit, whose entry
/// holds the URI, the version and the record of DESIGN §6 as JSON; a
/// delete is a tombstone entry.
#[tokio::test]
async fn the_log_is_the_documented_format() {
    let tmp = tempfile::tempdir().unwrap();
    let store = FileStore::open(tmp.path()).unwrap();
    let r = record("/root/a.b_c~d-E9", 1);
    store.save(&r, 0).await.unwrap();
    assert!(store.delete(&r.uri).await.unwrap());

    let segment = &log_segments(tmp.path())[0];
    let bytes = fs::read(segment).unwrap();
    assert_eq!(&bytes[..16], b"kinesis-filedb\x00\x01");
    let all = frames(&bytes);
    assert_eq!(all.len(), 2, "one frame per commit");
    assert_eq!(
        entries(&bytes),
        vec![(1, 1, r.uri.clone()), (2, 1, r.uri.clone())],
        "a save, then a tombstone"
    );
    // The first entry's data is the record as JSON.
    let (at, _) = all[0];
    let entry = &bytes[at + 12..];
    let uri_len = u16::from_le_bytes([entry[13], entry[14]]) as usize;
    let data_len = u32::from_le_bytes(entry[15..19].try_into().unwrap()) as usize;
    let data = &entry[19 + uri_len..19 + uri_len + data_len];
    let on_disk: Value = serde_json::from_slice(data).unwrap();
    assert_eq!(
        on_disk,
        json!({"schema": 1, "uri": r.uri, "type": "test::Probe", "version": 1,
               "updated_at": r.updated_at, "fields": {"n": 1}})
    );
    let parsed: Record = serde_json::from_slice(data).unwrap();
    assert_eq!(parsed, r);

    use std::os::unix::fs::PermissionsExt;
    for file in [segment.clone(), tmp.path().join("filedb.lock")] {
        let mode = fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", file.display());
    }
}
