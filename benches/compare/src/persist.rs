//! Persisted writes: a kinesis component with a `#[persist]` field, asked
//! to change it, back to back, for a fixed time. Each reply arrives only
//! after the store confirmed the write.
//!
//! * `filedb`: [`kinesis_filedb::FileStore`] — an append-only log with
//!   group commit: the saves waiting while a sync is in flight are written
//!   together and made durable by one `fdatasync`.
//! * `sqlite` (the baseline): [`kinesis_sql::SqlStore`] on a SQLite file
//!   through sqlx, WAL mode, `synchronous = FULL`, default pool (10).
//!
//! With one writer, one task asks one component; with 64 writers, 64 tasks
//! each ask their own component (64 records). The stores live in a fresh
//! temporary directory on the same disk.
//!
//! [`run_startup`] (workload `persist-startup`, filedb only) measures what
//! a large log costs: the time to open a store of [`STARTUP_RECORDS`]
//! records (read the log, build the index) and load one, and the disk space
//! against the live data before and after compaction.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kinesis::persist::{Persistence, SharedStore, Store};
use kinesis::{Component, Container, Context, Handle, Handler, Persist, Result};
use serde::{Deserialize, Serialize};

use crate::measure::{per_second, Metrics, StopFlag};

/// The stores, baseline first.
pub const STORES: [&str; 2] = ["sqlite", "filedb"];

/// The writer counts.
pub const WRITERS: [usize; 2] = [1, 64];

/// Records in the start-up and disk-space workload.
pub const STARTUP_RECORDS: u64 = 100_000;

/// Concurrent writers that fill the store for [`run_startup`].
const FILL_WRITERS: u64 = 64;

/// A component whose total is persisted.
#[derive(Clone, Debug, Default, Serialize, Deserialize, Persist)]
pub struct Ledger {
    #[persist]
    total: u64,
}

impl Component for Ledger {}

/// Adds one to the persisted total.
pub struct Add;

impl Handler<Add> for Ledger {
    type Reply = u64;

    async fn handle(&mut self, _: Add, _: &mut Context<Self>) -> Result<u64> {
        self.total += 1;
        Ok(self.total)
    }
}

/// Runs `writers` writers against `store` (one of [`STORES`]) for
/// `seconds` after a short warm-up. Metric: `writes_per_s`.
pub fn run(store: &str, writers: usize, seconds: f64) -> Metrics {
    let dir = tempfile::tempdir().expect("temporary directory");
    crate::runtime().block_on(async {
        let store: SharedStore = match store {
            "filedb" => Arc::new(kinesis_filedb::FileStore::open(dir.path()).expect("file store")),
            "sqlite" => {
                let url = format!("sqlite://{}", dir.path().join("bench.db").display());
                Arc::new(kinesis_sql::SqlStore::connect(&url).await.expect("sqlite store"))
            }
            other => panic!("unknown store `{other}`"),
        };
        let root = Container::root_with(Some(Persistence { store, cipher: None }))
            .await
            .expect("root container");
        let mut ledgers = Vec::with_capacity(writers);
        for i in 0..writers {
            ledgers.push(root.add(&format!("l{i}"), Ledger::default()).await.expect("ledger"));
        }
        round(&ledgers, Duration::from_secs_f64((seconds / 5.0).min(0.3))).await;
        let rate = round(&ledgers, Duration::from_secs_f64(seconds)).await;
        root.shutdown().await.expect("root stops");
        vec![("writes_per_s".to_owned(), rate)]
    })
}

/// Each ledger gets its own writer task for `duration`; writes per second.
async fn round(ledgers: &[Handle<Ledger>], duration: Duration) -> f64 {
    let stop = StopFlag::after(duration);
    let started = Instant::now();
    let tasks: Vec<_> = ledgers
        .iter()
        .map(|ledger| {
            let (ledger, stop) = (ledger.clone(), stop.clone());
            tokio::spawn(async move {
                let mut n = 0u64;
                while !stop.is_raised() {
                    black_box(ledger.ask(Add).await.expect("persisted write"));
                    n += 1;
                }
                n
            })
        })
        .collect();
    let mut total = 0;
    for t in tasks {
        total += t.await.expect("writer task");
    }
    per_second(total, started.elapsed())
}

/// Fills a file store with [`STARTUP_RECORDS`] records of a small
/// component (each saved twice, so half the log is garbage), closes it,
/// then opens it again. Metrics: `startup_s` (open and load one record),
/// `disk_ratio_before` and `disk_ratio_after` (bytes of log files ÷ bytes
/// of live records, before and after [`FileStore::compact`](kinesis_filedb::FileStore::compact)).
pub fn run_startup(store: &str) -> Metrics {
    assert_eq!(store, "filedb", "the start-up workload measures the file store only");
    let dir = tempfile::tempdir().expect("temporary directory");
    crate::runtime().block_on(async {
        let store = kinesis_filedb::FileStore::open(dir.path()).expect("file store");
        for version in 1..=2u64 {
            let tasks: Vec<_> = (0..FILL_WRITERS)
                .map(|w| {
                    let store = store.clone();
                    tokio::spawn(async move {
                        for i in (w..STARTUP_RECORDS).step_by(FILL_WRITERS as usize) {
                            let record = ledger_record(i, version);
                            store.save(&record, version - 1).await.expect("fill");
                        }
                    })
                })
                .collect();
            for task in tasks {
                task.await.expect("fill task");
            }
        }
        drop(store);

        let started = Instant::now();
        let path = dir.path().to_path_buf();
        let store = tokio::task::spawn_blocking(move || kinesis_filedb::FileStore::open(path))
            .await
            .expect("open task")
            .expect("reopen");
        let loaded = store.load(&ledger_uri(STARTUP_RECORDS / 2)).await.expect("load");
        let startup = started.elapsed().as_secs_f64();
        assert_eq!(loaded.map(|r| r.version), Some(2));

        let before = store.stats().await.expect("stats");
        store.compact().await.expect("compact");
        let after = store.stats().await.expect("stats");
        assert_eq!(after.records, STARTUP_RECORDS);
        let ratio = |s: &kinesis_filedb::Stats| s.disk_bytes as f64 / s.live_bytes as f64;
        vec![
            ("startup_s".to_owned(), startup),
            ("disk_ratio_before".to_owned(), ratio(&before)),
            ("disk_ratio_after".to_owned(), ratio(&after)),
            ("live_bytes".to_owned(), after.live_bytes as f64),
        ]
    })
}

fn ledger_uri(i: u64) -> String {
    format!("/root/ledgers/l{i}")
}

/// The record a [`Ledger`] at `total` would save.
fn ledger_record(i: u64, version: u64) -> kinesis::persist::Record {
    let mut fields = serde_json::Map::new();
    fields.insert("total".into(), serde_json::json!(version));
    kinesis::persist::Record::new(
        &ledger_uri(i),
        "kinesis_compare::persist::Ledger",
        version,
        fields,
    )
}
