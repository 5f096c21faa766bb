//! What the file store does with hostile URIs, foreign files and damaged
//! records on disk.

use std::fs;
use std::path::{Path, PathBuf};

use kinesis::persist::{Record, Store, StoreError};
use kinesis_filedb::FileStore;
use serde_json::{json, Map, Value};

fn record(uri: &str, version: u64) -> Record {
    let mut fields = Map::new();
    fields.insert("n".into(), json!(version));
    Record::new(uri, "test::Probe", version, fields)
}

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

/// URIs made of `..`, `/`, NUL, backslashes, dots and file-store suffixes
/// are stored as single files directly in the data directory: each round
/// trips, is listed as written, and nothing is created outside the data
/// directory or in a sub-directory of it; deleting them all leaves only the
/// lock directory.
#[tokio::test]
async fn hostile_uris_never_leave_the_data_directory() {
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
        "x.tmp",
        ".locks",
        ".locks/../x.lock",
        "~",
        "a b",
        "\n",
        "é/中/🦀",
    ];
    for (i, uri) in hostile.iter().enumerate() {
        let r = record(uri, 1);
        store.save(&r, 0).await.unwrap_or_else(|e| panic!("{uri:?}: {e}"));
        assert_eq!(store.load(uri).await.unwrap(), Some(r), "{uri:?}");
        let path = store.record_path(uri).unwrap();
        assert_eq!(path.parent(), Some(store.dir()), "{uri:?} is stored at {}", path.display());
        assert_eq!(
            tree(tmp.path()).iter().filter(|p| p.extension() == Some("json".as_ref())).count(),
            i + 1
        );
    }
    let mut sorted: Vec<String> = hostile.iter().map(|s| s.to_string()).collect();
    sorted.sort();
    assert_eq!(store.list("").await.unwrap(), sorted);

    // Only `data`, its `.locks`, and plain files directly in them.
    for path in tree(tmp.path()) {
        let parts: Vec<_> = path.components().collect();
        match parts.len() {
            1 => assert_eq!(path, Path::new("data")),
            2 => assert!(
                path == Path::new("data/.locks") || tmp.path().join(&path).is_file(),
                "unexpected {}",
                path.display()
            ),
            3 => assert!(path.starts_with("data/.locks"), "unexpected {}", path.display()),
            _ => panic!("unexpected {}", path.display()),
        }
    }

    for uri in hostile {
        assert!(store.delete(uri).await.unwrap(), "{uri:?}");
    }
    let left: Vec<_> = fs::read_dir(&data).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(left, vec![std::ffi::OsString::from(".locks")]);
}

/// A URI whose file name would exceed 255 bytes is refused with
/// `InvalidKey` by `save`, `load` and `delete`, at exactly the limit: 250
/// encoded bytes are taken, 251 are not, counting three bytes for every
/// escaped byte. Nothing is written for a refused URI and the error message
/// stays short even for a 100 000-byte URI.
#[tokio::test]
async fn uris_too_long_for_a_file_name_are_invalid_keys() {
    let tmp = tempfile::tempdir().unwrap();
    let store = FileStore::open(tmp.path()).unwrap();

    let fits = ["a".repeat(250), "/".repeat(83), "é".repeat(41), format!("{}/", "b".repeat(247))];
    for uri in &fits {
        store.save(&record(uri, 1), 0).await.unwrap();
        assert_eq!(store.load(uri).await.unwrap().map(|r| r.version), Some(1));
        let name = store.record_path(uri).unwrap();
        assert!(name.file_name().unwrap().len() <= 255);
    }

    let too_long = [
        "a".repeat(251),
        "/".repeat(84),
        "é".repeat(42),
        format!("{}/", "b".repeat(248)),
        "x".repeat(100_000),
    ];
    for uri in &too_long {
        let shown = &uri[..uri.len().min(12)];
        match store.save(&record(uri, 1), 0).await {
            Err(StoreError::InvalidKey(message)) => {
                assert!(message.len() < 300, "{message}");
                assert!(message.contains("at most 250"), "{message}");
            }
            other => panic!("save of {shown}…: {other:?}"),
        }
        assert!(matches!(store.load(uri).await, Err(StoreError::InvalidKey(_))), "{shown}");
        assert!(matches!(store.delete(uri).await, Err(StoreError::InvalidKey(_))), "{shown}");
        assert!(matches!(store.record_path(uri), Err(StoreError::InvalidKey(_))), "{shown}");
    }
    assert!(matches!(store.save(&record("", 1), 0).await, Err(StoreError::InvalidKey(_))));

    let mut expected: Vec<String> = fits.to_vec();
    expected.sort();
    assert_eq!(store.list("").await.unwrap(), expected);
}

/// Files the store did not write (other names, lower-case or broken escapes,
/// dotted names, temporary files, a key file) are not listed and not
/// touched, and do not disturb saving.
#[tokio::test]
async fn foreign_files_are_ignored() {
    let tmp = tempfile::tempdir().unwrap();
    let store = FileStore::open(tmp.path()).unwrap();
    let foreign = [
        "notes.txt",
        "%2Fother.tmp",
        "%2fx.json",
        "%zz.json",
        "a.b.json",
        ".hidden.json",
        "%41.json",
        "kinesis.key",
    ];
    for name in foreign {
        fs::write(tmp.path().join(name), b"foreign").unwrap();
    }
    assert!(store.list("").await.unwrap().is_empty());
    store.save(&record("/x", 1), 0).await.unwrap();
    assert_eq!(store.list("").await.unwrap(), vec!["/x".to_owned()]);
    assert!(store.delete("/x").await.unwrap());
    for name in foreign {
        assert_eq!(fs::read(tmp.path().join(name)).unwrap(), b"foreign", "{name}");
    }
}

/// The file on disk is the record of DESIGN §6 as JSON, readable by the
/// owner only, and the URI is encoded as documented.
#[tokio::test]
async fn the_record_file_is_the_documented_json() {
    let tmp = tempfile::tempdir().unwrap();
    let store = FileStore::open(tmp.path()).unwrap();
    let r = record("/root/a.b_c~d-E9", 1);
    store.save(&r, 0).await.unwrap();
    let path = store.record_path(&r.uri).unwrap();
    assert_eq!(path.file_name().unwrap(), "%2Froot%2Fa%2Eb_c~d-E9.json");
    let on_disk: Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    assert_eq!(
        on_disk,
        json!({"schema": 1, "uri": r.uri, "type": "test::Probe", "version": 1,
               "updated_at": r.updated_at, "fields": {"n": 1}})
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }
}

/// An empty file, garbage, a truncated record and another URI's record are
/// each reported by `load` and `save` as `Corrupt` naming the file; `save`
/// leaves the file as it was; `delete` removes it, after which the URI can
/// be created again.
#[tokio::test]
async fn damaged_record_files_are_corrupt_and_never_overwritten() {
    let tmp = tempfile::tempdir().unwrap();
    let store = FileStore::open(tmp.path()).unwrap();
    let whole = serde_json::to_vec(&record("/c", 1)).unwrap();
    let other = serde_json::to_vec(&record("/someone-else", 1)).unwrap();
    let damages: [(&str, Vec<u8>, &str); 4] = [
        ("empty", Vec::new(), "is empty"),
        ("garbage", b"\x00\xffnot json".to_vec(), "is not a record"),
        ("truncated", whole[..whole.len() / 2].to_vec(), "is not a record"),
        ("moved", other, "holds the record of \"/someone-else\""),
    ];
    for (what, bytes, says) in damages {
        let uri = "/c";
        let path = store.record_path(uri).unwrap();
        fs::write(&path, &bytes).unwrap();
        let shown = path.display().to_string();
        for result in [store.load(uri).await.map(|_| ()), store.save(&record(uri, 1), 0).await] {
            match result {
                Err(StoreError::Corrupt { uri: u, reason }) => {
                    assert_eq!(u, uri, "{what}");
                    assert!(reason.contains(&shown) && reason.contains(says), "{what}: {reason}");
                }
                other => panic!("{what}: {other:?}"),
            }
        }
        assert!(matches!(store.save(&record(uri, 2), 1).await, Err(StoreError::Corrupt { .. })));
        assert_eq!(fs::read(&path).unwrap(), bytes, "{what}: a save overwrote the damaged file");
        assert!(store.delete(uri).await.unwrap(), "{what}");
        store.save(&record(uri, 1), 0).await.unwrap();
        assert!(store.delete(uri).await.unwrap());
    }
}

/// A temporary file left by a writer killed mid-save (here: garbage in
/// `<name>.tmp`) is invisible: the record loads as before, is listed once,
/// and the next save replaces the leftover.
#[tokio::test]
async fn a_leftover_temporary_file_is_invisible() {
    let tmp = tempfile::tempdir().unwrap();
    let store = FileStore::open(tmp.path()).unwrap();
    let first = record("/t", 1);
    store.save(&first, 0).await.unwrap();
    let json_path = store.record_path("/t").unwrap();
    let temp_path = json_path.with_extension("tmp");
    fs::write(&temp_path, b"{\"schema\": 1, \"uri\": \"/t\", \"vers").unwrap();
    assert_eq!(store.load("/t").await.unwrap(), Some(first));
    assert_eq!(store.list("").await.unwrap(), vec!["/t".to_owned()]);
    let second = record("/t", 2);
    store.save(&second, 1).await.unwrap();
    assert!(!temp_path.exists(), "the save did not replace the leftover");
    assert_eq!(store.load("/t").await.unwrap(), Some(second));
}
