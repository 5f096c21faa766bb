//! Compaction: it loses nothing while saves and deletes go on, and it keeps
//! the disk space within twice the live data.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{files_ending, log_segments};
use kinesis::persist::{Record, Store};
use kinesis_filedb::{FileStore, Options};
use serde_json::{json, Map};

const WRITERS: u64 = 8;
const URIS_PER_WRITER: u64 = 25;
const ROUNDS: u64 = 40;

fn padded(uri: &str, version: u64, pad: usize) -> Record {
    let mut fields = Map::new();
    fields.insert("version".into(), json!(version));
    fields.insert("pad".into(), json!(format!("{uri}@{version}|").repeat(pad / 16 + 1)));
    Record::new(uri, "test::Padded", version, fields)
}

/// Eight tasks save and delete their own records round after round (small
/// segments, so dozens are sealed), while another task compacts again and
/// again and background compaction runs too. Each writer keeps what it was
/// told: the version of every save acknowledged, and which records it
/// deleted. Afterwards every record loads at exactly that version (or is
/// gone when deleted last), the listing matches, and so it does after the
/// directory is opened again. A compaction that put back an entry a newer
/// save or delete had replaced, or dropped a live one, fails this.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn compaction_under_concurrent_writes_loses_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let options = Options {
        segment_bytes: 64 * 1024,
        preallocate_bytes: 16 * 1024,
        background_compaction: true,
    };
    let store = FileStore::open_with(tmp.path(), options).unwrap();
    let done = Arc::new(AtomicBool::new(false));

    let compactor = {
        let (store, done) = (store.clone(), done.clone());
        tokio::spawn(async move {
            let mut runs = 0u32;
            while !done.load(Ordering::Relaxed) {
                store.compact().await.unwrap();
                runs += 1;
                tokio::task::yield_now().await;
            }
            runs
        })
    };

    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let store = store.clone();
        writers.push(tokio::spawn(async move {
            // uri -> Some(version) saved last, or None: deleted last.
            let mut expected: BTreeMap<String, Option<u64>> = BTreeMap::new();
            for round in 0..ROUNDS {
                for i in 0..URIS_PER_WRITER {
                    let uri = format!("/w{w}/r{i}");
                    let current = expected.get(&uri).copied().flatten().unwrap_or(0);
                    if (round + i + w) % 7 == 6 && current > 0 {
                        assert!(store.delete(&uri).await.unwrap(), "{uri} was there");
                        expected.insert(uri, None);
                    } else {
                        let next = current + 1;
                        store.save(&padded(&uri, next, 200), current).await.unwrap();
                        expected.insert(uri, Some(next));
                    }
                }
            }
            expected
        }));
    }
    let mut expected = BTreeMap::new();
    for writer in writers {
        expected.extend(writer.await.unwrap());
    }
    done.store(true, Ordering::Relaxed);
    let runs = compactor.await.unwrap();
    assert!(runs >= 3, "only {runs} compactions ran during the writes");

    check(&store, &expected).await;
    assert!(
        !files_ending(store.dir(), ".compacted").is_empty(),
        "no compacted file: compaction never finished"
    );
    let dir = store.dir().to_path_buf();
    drop(store);

    let store = FileStore::open(&dir).unwrap();
    check(&store, &expected).await;
}

async fn check(store: &FileStore, expected: &BTreeMap<String, Option<u64>>) {
    for (uri, version) in expected {
        let loaded = store.load(uri).await.unwrap();
        match version {
            Some(v) => {
                let record = loaded.unwrap_or_else(|| panic!("{uri} is lost"));
                assert_eq!(record.version, *v, "{uri}");
                assert_eq!(
                    record,
                    Record { updated_at: record.updated_at.clone(), ..padded(uri, *v, 200) }
                );
            }
            None => assert_eq!(loaded, None, "{uri} came back after its delete"),
        }
    }
    let live: Vec<String> =
        expected.iter().filter(|(_, v)| v.is_some()).map(|(u, _)| u.clone()).collect();
    assert_eq!(store.list("/").await.unwrap(), live);
}

/// 3,000 records saved five times each (about five times the live data
/// written): after `compact` the files take at most twice the live data;
/// left to background compaction alone they stay within twice the live data
/// plus two segments (the active one, and a sealed one compaction may not
/// have taken yet).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_space_stays_within_twice_the_live_data() {
    const RECORDS: u64 = 3_000;
    const SEGMENT: u64 = 512 * 1024;
    const AHEAD: u64 = 64 * 1024;
    // The active segment, zeros ahead included, and one sealed segment that
    // compaction may not have taken yet.
    const SLACK: u64 = 2 * SEGMENT + AHEAD;
    let tmp = tempfile::tempdir().unwrap();
    let options =
        Options { segment_bytes: SEGMENT, preallocate_bytes: AHEAD, ..Options::default() };
    let store = FileStore::open_with(tmp.path(), options).unwrap();
    for version in 1..=5 {
        let mut tasks = Vec::new();
        for part in 0..4 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                for i in (part..RECORDS).step_by(4) {
                    let uri = format!("/space/{i}");
                    store.save(&padded(&uri, version, 300), version - 1).await.unwrap();
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
    }

    // Background compaction runs on its own thread: wait for it to catch up.
    let deadline = Instant::now() + Duration::from_secs(30);
    let stats = loop {
        let stats = store.stats().await.unwrap();
        if stats.disk_bytes <= 2 * stats.live_bytes + SLACK || Instant::now() > deadline {
            break stats;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    assert_eq!(stats.records, RECORDS);
    assert!(
        stats.disk_bytes <= 2 * stats.live_bytes + SLACK,
        "background compaction let the log grow: {stats:?}"
    );

    store.compact().await.unwrap();
    let stats = store.stats().await.unwrap();
    assert!(stats.disk_bytes <= 2 * stats.live_bytes, "after compact: {stats:?}");
    assert_eq!(log_segments(store.dir()).len(), 1, "only the new, empty segment is left");
    assert_eq!(files_ending(store.dir(), ".compacted").len(), 1);
}
