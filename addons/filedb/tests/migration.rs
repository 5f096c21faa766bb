//! Converting a directory of the file-per-record format on first start.
//!
//! The old files are written here the way kinesis-filedb wrote them before
//! the log (its encoding of names and its pretty-printed JSON are copied
//! below), then the directory is opened.

mod common;

use std::fs;
use std::path::Path;

use common::{block_on, entries, log_segments, record};
use kinesis::persist::{Record, Store};
use kinesis::Error;
use kinesis_filedb::FileStore;

/// The old file name stem of `uri`: ASCII letters, digits, `_`, `~` and `-`
/// stay, every other byte becomes `%XX` (upper-case hex).
fn old_stem(uri: &str) -> String {
    let mut out = String::new();
    for &byte in uri.as_bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'_' | b'~' | b'-') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Writes `record` as the old store did: `DIR/<stem>.json`, pretty JSON
/// and a newline, and its empty lock file `DIR/.locks/<stem>.lock`.
fn write_old(dir: &Path, record: &Record) {
    let stem = old_stem(&record.uri);
    let mut bytes = serde_json::to_vec_pretty(record).unwrap();
    bytes.push(b'\n');
    fs::write(dir.join(format!("{stem}.json")), bytes).unwrap();
    fs::create_dir_all(dir.join(".locks")).unwrap();
    fs::write(dir.join(".locks").join(format!("{stem}.lock")), b"").unwrap();
}

fn old_records() -> Vec<Record> {
    let mut records = vec![
        record("/root/kinesis", 7),
        record("/root/a.b_c~d-E9", 1),
        record("/é/中/🦀", 3),
        record("..", 2),
    ];
    let mut big = record("/root/big", 12);
    big.fields.insert("text".into(), "line \"quoted\"\n".repeat(5_000).into());
    records.push(big);
    records
}

/// Foreign files that must survive: a key file and names the old store
/// could not have written.
const FOREIGN: [&str; 4] = ["kinesis.key", "notes.txt", "%41.json", "a.b.json"];

/// Every old record loads exactly as it was, is listed once, and takes the
/// next save at its version; the record files, the temporary file a killed
/// writer left and the lock directory are gone; foreign files are as they
/// were.
#[test]
fn an_old_directory_is_converted_on_first_start() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let records = old_records();
    for r in &records {
        write_old(dir, r);
    }
    let leftover = dir.join(format!("{}.tmp", old_stem("/root/kinesis")));
    fs::write(&leftover, b"{\"schema\": 1, \"uri\": \"/root/kin").unwrap();
    for name in FOREIGN {
        fs::write(dir.join(name), b"foreign").unwrap();
    }

    let store = FileStore::open(dir).unwrap();
    check(&store, &records);
    for r in &records {
        assert!(!dir.join(format!("{}.json", old_stem(&r.uri))).exists(), "{}", r.uri);
    }
    assert!(!leftover.exists());
    assert!(!dir.join(".locks").exists());
    for name in FOREIGN {
        assert_eq!(fs::read(dir.join(name)).unwrap(), b"foreign", "{name}");
    }
    block_on(store.save(&record("/root/kinesis", 8), 7)).unwrap();
    drop(store);

    let store = FileStore::open(dir).unwrap();
    assert_eq!(block_on(store.load("/root/kinesis")).unwrap().unwrap().version, 8);
}

/// A conversion killed after it appended some records (and synced them) but
/// before it removed the old files: the next start finds the records in the
/// log and all old files still there. It appends only the missing ones, so
/// the log holds every record exactly once, and then removes the files.
#[test]
fn an_interrupted_conversion_finishes_with_every_record_once() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let records = old_records();
    let (first, rest) = records.split_at(2);

    // The first part was converted, then the process died before removing
    // the files: put them back.
    for r in first {
        write_old(dir, r);
    }
    drop(FileStore::open(dir).unwrap());
    for r in &records {
        write_old(dir, r);
    }

    let store = FileStore::open(dir).unwrap();
    check(&store, &records);
    drop(store);
    let mut in_log: Vec<String> = log_segments(dir)
        .iter()
        .flat_map(|s| entries(&fs::read(s).unwrap()))
        .map(|(kind, _, uri)| {
            assert_eq!(kind, 1);
            uri
        })
        .collect();
    in_log.sort();
    let mut uris: Vec<String> = records.iter().map(|r| r.uri.clone()).collect();
    uris.sort();
    assert_eq!(in_log, uris, "each record is in the log exactly once");
    assert!(rest.iter().all(|r| !dir.join(format!("{}.json", old_stem(&r.uri))).exists()));
}

/// An old file that is not a record stops the start with a message naming
/// it; the old files are left as they were.
#[test]
fn a_damaged_old_file_stops_the_start_and_names_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write_old(dir, &record("/fine", 1));
    let broken = dir.join(format!("{}.json", old_stem("/broken")));
    fs::write(&broken, b"{\"schema\": 1, \"uri\"").unwrap();
    match FileStore::open(dir) {
        Err(Error::Store(message)) => {
            assert!(message.contains(&broken.display().to_string()), "{message}");
            assert!(message.contains("not a record"), "{message}");
        }
        other => panic!("opened with a damaged old file: {other:?}"),
    }
    assert!(broken.exists());
    assert!(dir.join(format!("{}.json", old_stem("/fine"))).exists());
}

fn check(store: &FileStore, records: &[Record]) {
    block_on(async {
        for r in records {
            assert_eq!(store.load(&r.uri).await.unwrap().as_ref(), Some(r), "{}", r.uri);
        }
        let mut uris: Vec<String> = records.iter().map(|r| r.uri.clone()).collect();
        uris.sort();
        assert_eq!(store.list("").await.unwrap(), uris);
    });
}
