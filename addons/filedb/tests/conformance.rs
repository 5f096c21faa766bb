//! The shared conformance suite on the file store, and racing handles.

use std::fs;
use std::sync::Arc;

use kinesis::persist::{conformance, Record, SharedStore, Store, StoreError};
use kinesis_filedb::FileStore;
use serde_json::{json, Map, Value};

/// The whole suite passes on a fresh directory, and again on the same
/// directory through a second handle (runs do not disturb each other).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_file_store_passes_the_conformance_suite() {
    let tmp = tempfile::tempdir().unwrap();
    let store: SharedStore = Arc::new(FileStore::open(tmp.path().join("data")).unwrap());
    conformance::run_all(store, &conformance::unique_prefix("filedb")).await;

    let again: SharedStore = Arc::new(FileStore::open(tmp.path().join("data")).unwrap());
    conformance::run_all(again, &conformance::unique_prefix("filedb")).await;
}

/// The data directory is replaced by a regular file (which makes every file
/// operation fail, even for root) and then put back: every call fails while
/// it is away, nothing changed, and the same handle works afterwards.
#[tokio::test]
async fn the_file_store_survives_its_directory_going_away() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let aside = tmp.path().join("aside");
    let store: SharedStore = Arc::new(FileStore::open(&data).unwrap());
    let (d1, a1, d2, a2) = (data.clone(), aside.clone(), data.clone(), aside.clone());
    conformance::store_goes_away(
        &store,
        &conformance::unique_prefix("filedb"),
        || async move {
            fs::rename(&d1, &a1).unwrap();
            fs::write(&d1, b"not a directory").unwrap();
        },
        || async move {
            fs::remove_file(&d2).unwrap();
            fs::rename(&a2, &d2).unwrap();
        },
    )
    .await;
}

/// Two handles opened separately on one directory, eight tasks on each,
/// race to extend one record: each task loads the record, appends its id to
/// the `history` field and saves expecting the version it loaded, until the
/// record reaches `ROUNDS`. Every version is won exactly once, losers get
/// `Conflict`, and the history lists exactly the winners in order: no
/// acknowledged write was lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_handles_on_one_directory_race_compare_and_set() {
    const ROUNDS: u64 = 40;
    const TASKS_PER_HANDLE: u64 = 8;
    let tmp = tempfile::tempdir().unwrap();
    let handles = [
        FileStore::open(tmp.path().join("data")).unwrap(),
        FileStore::open(tmp.path().join("data")).unwrap(),
    ];
    let uri = "/race/two-handles";
    let barrier = Arc::new(tokio::sync::Barrier::new(2 * TASKS_PER_HANDLE as usize));
    let mut tasks = Vec::new();
    for (h, handle) in handles.iter().enumerate() {
        for t in 0..TASKS_PER_HANDLE {
            let store = handle.clone();
            let barrier = barrier.clone();
            let id = h as u64 * 100 + t;
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                extend_until(&store, uri, id, ROUNDS).await
            }));
        }
    }
    let mut wins: Vec<(u64, u64)> = Vec::new();
    let mut conflicts = 0;
    for task in tasks {
        let (won, lost) = task.await.unwrap();
        wins.extend(won);
        conflicts += lost;
    }
    wins.sort();
    let versions: Vec<u64> = wins.iter().map(|(v, _)| *v).collect();
    assert_eq!(versions, (0..ROUNDS).collect::<Vec<_>>(), "each version won exactly once");
    assert!(conflicts > 0, "the writers never collided; the test proved nothing");

    let record = handles[1].load(uri).await.unwrap().unwrap();
    assert_eq!(record.version, ROUNDS);
    let winners: Vec<Value> = wins.iter().map(|(_, id)| json!(id)).collect();
    assert_eq!(record.fields["history"], Value::Array(winners), "a won write was lost");
}

/// Extends the history of `uri` with `id` until it has `rounds` entries.
/// Returns the versions this writer won (as `(expected, id)`) and how many
/// conflicts it got.
async fn extend_until(
    store: &FileStore,
    uri: &str,
    id: u64,
    rounds: u64,
) -> (Vec<(u64, u64)>, u64) {
    let (mut won, mut lost) = (Vec::new(), 0);
    loop {
        let current = store.load(uri).await.unwrap();
        let (version, mut history) = match current {
            Some(r) => (r.version, r.fields["history"].as_array().unwrap().clone()),
            None => (0, Vec::new()),
        };
        if version >= rounds {
            return (won, lost);
        }
        history.push(json!(id));
        let mut fields = Map::new();
        fields.insert("history".into(), Value::Array(history));
        let record = Record::new(uri, "test::History", version + 1, fields);
        match store.save(&record, version).await {
            Ok(()) => won.push((version, id)),
            Err(StoreError::Conflict { expected, .. }) => {
                assert_eq!(expected, version);
                lost += 1;
            }
            Err(e) => panic!("writer {id}: {e}"),
        }
        tokio::task::yield_now().await;
    }
}
