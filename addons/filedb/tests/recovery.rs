//! Recovery at start: a torn tail is cut off, damage anywhere else stops
//! the start with the segment and the offset named, and left-overs of an
//! interrupted compaction go. Every test damages real files written (and
//! synced) by the store, then opens the directory again.
#![cfg(unix)]

mod common;

use std::fs::{self, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::Path;

use common::{block_on, frames, frames_end, log_segments, record};
use kinesis::persist::{Store, StoreError};
use kinesis::Error;
use kinesis_filedb::{FileStore, Options};

/// Both ways of growing the log: zeros written ahead, and plain appends.
fn modes() -> [Options; 2] {
    [Options::default(), Options { preallocate_bytes: 0, ..Options::default() }]
}

/// Saves `/a` v1, `/b` v1, `/a` v2 one after the other (three commits,
/// three frames) and closes the store.
fn three_commits(dir: &Path, options: &Options) {
    let store = FileStore::open_with(dir, options.clone()).unwrap();
    block_on(async {
        store.save(&record("/a", 1), 0).await.unwrap();
        store.save(&record("/b", 1), 0).await.unwrap();
        store.save(&record("/a", 2), 1).await.unwrap();
    });
}

fn versions(store: &FileStore) -> (Option<u64>, Option<u64>) {
    block_on(async {
        let a = store.load("/a").await.unwrap().map(|r| r.version);
        let b = store.load("/b").await.unwrap().map(|r| r.version);
        (a, b)
    })
}

fn store_error(result: kinesis::Result<FileStore>) -> String {
    match result {
        Err(Error::Store(message)) => message,
        Err(other) => panic!("expected a store error, got {other:?}"),
        Ok(_) => panic!("the store opened on a damaged log"),
    }
}

/// Garbage after the last frame (where a crash left half of the next
/// commit) is cut off: every earlier record is there, the file ends where
/// the last whole frame ends, and the store appends from there, in both
/// growth modes.
#[test]
fn a_torn_tail_is_cut_off_and_earlier_records_stay() {
    for options in modes() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        three_commits(dir, &options);
        let segment = &log_segments(dir)[0];
        let bytes = fs::read(segment).unwrap();
        let all = frames(&bytes);
        assert_eq!(all.len(), 3, "one frame per commit");
        let end = frames_end(&bytes);
        // Half of a copy of the last frame, where the next one would go.
        let (last_at, last_len) = all[2];
        let half = &bytes[last_at..last_at + last_len / 2];
        fs::OpenOptions::new()
            .write(true)
            .open(segment)
            .unwrap()
            .write_all_at(half, end as u64)
            .unwrap();

        let store = FileStore::open_with(dir, options.clone()).unwrap();
        assert_eq!(versions(&store), (Some(2), Some(1)), "{options:?}");
        assert_eq!(fs::metadata(segment).unwrap().len(), end as u64, "not truncated: {options:?}");
        block_on(store.save(&record("/b", 2), 1)).unwrap();
        drop(store);
        let bytes = fs::read(segment).unwrap();
        assert_eq!(frames(&bytes).len(), 4, "the next commit follows the last whole frame");
        let store = FileStore::open(dir).unwrap();
        assert_eq!(versions(&store), (Some(2), Some(2)));
    }
}

/// Garbage at the very end of the file, past the zeros written ahead, is
/// cut off too.
#[test]
fn garbage_past_the_zeros_is_cut_off() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    three_commits(dir, &Options::default());
    let segment = &log_segments(dir)[0];
    let end = frames_end(&fs::read(segment).unwrap());
    let len = fs::metadata(segment).unwrap().len();
    assert!(len > end as u64, "no zeros were written ahead");
    let mut file = OpenOptions::new().append(true).open(segment).unwrap();
    std::io::Write::write_all(&mut file, b"\x17garbage from a crash\xff").unwrap();

    let store = FileStore::open(dir).unwrap();
    assert_eq!(versions(&store), (Some(2), Some(1)));
    assert_eq!(fs::metadata(segment).unwrap().len(), end as u64);
}

/// A flipped bit in the last frame is a commit the crash interrupted: it
/// alone is dropped (here `/a` goes back to version 1), and the file is cut
/// where that frame started.
#[test]
fn a_damaged_last_frame_is_dropped() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    three_commits(dir, &Options::default());
    let segment = &log_segments(dir)[0];
    let bytes = fs::read(segment).unwrap();
    let (last_at, last_len) = frames(&bytes)[2];
    flip_bit(segment, last_at + last_len - 3);

    let store = FileStore::open(dir).unwrap();
    assert_eq!(versions(&store), (Some(1), Some(1)));
    assert_eq!(fs::metadata(segment).unwrap().len(), last_at as u64);
}

/// A flipped bit in a frame followed by a valid one is damage, not a
/// crash: the start fails with an error naming the segment file and the
/// byte offset of the bad frame, and the file is left as it was.
#[test]
fn a_flipped_bit_in_the_middle_is_an_error_naming_segment_and_offset() {
    for byte in [0, 5, 13, 40] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        three_commits(dir, &Options::default());
        let segment = &log_segments(dir)[0];
        let bytes = fs::read(segment).unwrap();
        let (middle_at, middle_len) = frames(&bytes)[1];
        assert!(byte < middle_len);
        flip_bit(segment, middle_at + byte);
        let damaged = fs::read(segment).unwrap();

        let message = store_error(FileStore::open(dir));
        assert!(message.contains(&segment.display().to_string()), "{message}");
        assert!(message.contains(&format!("byte offset {middle_at}")), "{message}");
        assert_eq!(fs::read(segment).unwrap(), damaged, "the failed start changed the file");
        // And again: the damage is not forgotten.
        assert!(store_error(FileStore::open(dir)).contains(&format!("byte offset {middle_at}")));
    }
}

/// Small segments, several of them: damage at the very end of a sealed
/// segment (not the last one) is an error too, and so is a missing segment.
#[test]
fn damage_in_a_sealed_segment_and_a_missing_segment_are_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let options =
        Options { segment_bytes: 4096, background_compaction: false, ..Options::default() };
    let store = FileStore::open_with(dir, options.clone()).unwrap();
    block_on(async {
        for v in 1..=20 {
            let mut r = record("/big", v);
            r.fields.insert("pad".into(), "x".repeat(900).into());
            store.save(&r, v - 1).await.unwrap();
        }
    });
    drop(store);
    let segments = log_segments(dir);
    assert!(segments.len() >= 3, "{segments:?}");

    let first = &segments[0];
    let bytes = fs::read(first).unwrap();
    let (last_at, last_len) = *frames(&bytes).last().unwrap();
    flip_bit(first, last_at + last_len - 1);
    let message = store_error(FileStore::open(dir));
    assert!(message.contains(&first.display().to_string()), "{message}");
    assert!(message.contains(&format!("byte offset {last_at}")), "{message}");
    flip_bit(first, last_at + last_len - 1);
    let store = FileStore::open_with(dir, options.clone()).unwrap();
    assert_eq!(block_on(store.load("/big")).unwrap().unwrap().version, 20);
    drop(store);

    fs::remove_file(&segments[1]).unwrap();
    let message = store_error(FileStore::open(dir));
    let missing = segments[1].file_name().unwrap().to_str().unwrap();
    assert!(message.contains(missing) && message.contains("missing"), "{message}");
}

/// An unfinished compaction output (`.compacted.tmp`) is removed at start
/// and changes nothing.
#[test]
fn an_unfinished_compaction_is_removed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    three_commits(dir, &Options::default());
    let leftover = dir.join("filedb-0000000000000001.compacted.tmp");
    fs::write(&leftover, b"kinesis-filedb\x00\x01 half written").unwrap();
    let store = FileStore::open(dir).unwrap();
    assert!(!leftover.exists());
    assert_eq!(versions(&store), (Some(2), Some(1)));
}

/// Damage that appears while the store runs is found by the load that
/// reads it: `Corrupt`, naming the segment file and the offset.
#[test]
fn a_load_checks_the_record_it_reads() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let store = FileStore::open(dir).unwrap();
    block_on(store.save(&record("/a", 1), 0)).unwrap();
    let segment = &log_segments(dir)[0];
    let bytes = fs::read(segment).unwrap();
    let (at, len) = frames(&bytes)[0];
    flip_bit(segment, at + len - 2);
    match block_on(store.load("/a")) {
        Err(StoreError::Corrupt { uri, reason }) => {
            assert_eq!(uri, "/a");
            assert!(reason.contains(&segment.display().to_string()), "{reason}");
            assert!(reason.contains("byte offset"), "{reason}");
        }
        other => panic!("a damaged record loaded: {other:?}"),
    }
}

fn flip_bit(path: &Path, at: usize) {
    let file = OpenOptions::new().read(true).write(true).open(path).unwrap();
    let mut byte = [0];
    file.read_exact_at(&mut byte, at as u64).unwrap();
    byte[0] ^= 0x10;
    file.write_all_at(&byte, at as u64).unwrap();
    file.sync_all().unwrap();
}
