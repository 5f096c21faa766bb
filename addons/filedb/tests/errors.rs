//! Opening the file store, and how it fails when the disk will not let it.

use std::fs;
use std::path::{Component, Path, PathBuf};

use kinesis::persist::{Record, Store, StoreError, StoreRegistry};
use kinesis::Error;
use kinesis_filedb::{default_connection, dir_from_url, register, FileStore};
use serde_json::{json, Map};

fn record(uri: &str, version: u64) -> Record {
    let mut fields = Map::new();
    fields.insert("n".into(), json!(version));
    Record::new(uri, "test::Probe", version, fields)
}

fn config_message<T>(result: kinesis::Result<T>) -> String {
    match result {
        Err(Error::Config(message)) => message,
        Err(other) => panic!("expected a configuration error, got {other:?}"),
        Ok(_) => panic!("expected a configuration error, got success"),
    }
}

/// A data directory below a regular file cannot be created, even by root:
/// `open` and the registry fail with `Error::Config` saying which directory
/// and why.
#[tokio::test]
async fn a_directory_that_cannot_be_created_is_a_clear_config_error() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("file");
    fs::write(&file, b"x").unwrap();
    let dir = file.join("sub");

    let message = config_message(FileStore::open(&dir));
    assert!(message.starts_with("cannot create data directory"), "{message}");
    assert!(message.contains(&dir.display().to_string()), "{message}");
    assert!(message.contains("not a directory"), "{message}");

    let mut registry = StoreRegistry::with_builtin();
    register(&mut registry);
    let message = config_message(registry.open(&format!("file://{}", dir.display())).await);
    assert!(message.contains("cannot create data directory"), "{message}");

    // The path is a file itself.
    let message = config_message(FileStore::open(&file));
    assert!(message.contains(&file.display().to_string()), "{message}");
}

/// In a read-only directory, `open` refuses with "not writable: permission
/// denied" naming the directory, and works again once it is writable. (A
/// store already open keeps appending to its open segment; only a new
/// segment would fail.) Root ignores mode bits, so under root this is
/// skipped (the test says so), and
/// [`a_save_into_a_vanished_directory_fails_clearly`] covers a failing save.
#[cfg(unix)]
#[tokio::test]
async fn a_read_only_directory_is_refused_at_open() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let store = FileStore::open(&dir).unwrap();
    let first = record("/ro", 1);
    store.save(&first, 0).await.unwrap();
    drop(store);

    fs::set_permissions(&dir, fs::Permissions::from_mode(0o555)).unwrap();
    let permissions_apply = fs::write(dir.join("probe"), b"").is_err();
    if permissions_apply {
        let message = config_message(FileStore::open(&dir));
        assert!(message.contains("is not writable: permission denied"), "{message}");
        assert!(message.contains(&dir.display().to_string()), "{message}");
    } else {
        eprintln!("running as root: mode bits do not apply, read-only part skipped");
        let _ = fs::remove_file(dir.join("probe"));
    }
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
    let store = FileStore::open(&dir).unwrap();
    assert_eq!(store.load("/ro").await.unwrap(), Some(first));
}

/// The data directory is replaced by a regular file under a running store
/// (fails even for root): `save` fails with a `Backend` error naming the
/// record and "not a directory", and writes nothing.
#[tokio::test]
async fn a_save_into_a_vanished_directory_fails_clearly() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let store = FileStore::open(&dir).unwrap();
    store.save(&record("/gone", 1), 0).await.unwrap();
    fs::rename(&dir, tmp.path().join("aside")).unwrap();
    fs::write(&dir, b"").unwrap();
    match store.save(&record("/gone", 2), 1).await {
        Err(StoreError::Backend(message)) => {
            assert!(message.contains("/gone"), "{message}");
            assert!(message.contains("not a directory"), "{message}");
        }
        other => panic!("save into a vanished directory: {other:?}"),
    }
    assert!(matches!(store.load("/gone").await, Err(StoreError::Backend(_))));
    assert_eq!(fs::read(&dir).unwrap(), b"");
}

/// A save whose record version is not `expected + 1` is refused with a
/// message saying so, before anything is written.
#[tokio::test]
async fn a_save_that_skips_a_version_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let store = FileStore::open(tmp.path()).unwrap();
    match store.save(&record("/skip", 2), 0).await {
        Err(StoreError::Backend(message)) => {
            assert!(
                message.contains("version 2 is not the expected version 0 plus one"),
                "{message}"
            )
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(store.load("/skip").await.unwrap(), None);
    let stats = store.stats().await.unwrap();
    assert_eq!((stats.records, stats.live_bytes), (0, 0), "it wrote to the log");
}

/// `register` adds the scheme `file`; the registry opens absolute
/// (`file:///abs`) and relative (`file://../..`) URLs to the same directory;
/// the default connection is `file://./kinesis-data`; URLs without a
/// directory or of another scheme are configuration errors.
#[tokio::test]
async fn the_registry_opens_file_urls() {
    let mut registry = StoreRegistry::with_builtin();
    register(&mut registry);
    assert!(registry.schemes().contains(&"file"));
    assert_eq!(default_connection(), "file://./kinesis-data");
    assert!(registry.check(default_connection()).is_ok());
    assert_eq!(dir_from_url(default_connection()).unwrap(), Path::new("./kinesis-data"));

    let tmp = tempfile::tempdir().unwrap();
    let dir = fs::canonicalize(tmp.path()).unwrap().join("data");
    let absolute = registry.open(&format!("file://{}", dir.display())).await.unwrap();
    assert_eq!(absolute.backend(), "file");
    absolute.save(&record("/shared", 1), 0).await.unwrap();

    // The same directory, relative to the working directory (not changed:
    // tests run in parallel).
    let relative = relative_to_cwd(&dir);
    assert!(relative.is_relative());
    let url = format!("file://{}", relative.display());
    let through_relative = registry.open(&url).await.unwrap();
    assert_eq!(through_relative.load("/shared").await.unwrap().map(|r| r.version), Some(1));

    let message = config_message(registry.open("file://").await);
    assert!(message.contains("names no directory"), "{message}");
    let message = config_message(dir_from_url("sqlite://x.db"));
    assert!(message.contains("not a file store URL"), "{message}");
}

/// `target` (absolute) as a path relative to the current directory.
fn relative_to_cwd(target: &Path) -> PathBuf {
    let cwd = fs::canonicalize(std::env::current_dir().unwrap()).unwrap();
    let ups = cwd.components().filter(|c| matches!(c, Component::Normal(_))).count();
    let mut out = PathBuf::new();
    for _ in 0..ups {
        out.push("..");
    }
    out.join(target.strip_prefix("/").unwrap())
}
