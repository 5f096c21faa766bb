//! Persisted writes: a kinesis component with a `#[persist]` field, asked
//! to change it, back to back, for a fixed time. Each reply arrives only
//! after the store confirmed the write.
//!
//! * `filedb`: [`kinesis_filedb::FileStore`] — one JSON file per record,
//!   written to a temporary file, `fsync`ed, renamed, directory `fsync`ed.
//! * `sqlite` (the baseline): [`kinesis_sql::SqlStore`] on a SQLite file
//!   through sqlx, WAL mode, `synchronous = FULL`, default pool (10).
//!
//! With one writer, one task asks one component; with 64 writers, 64 tasks
//! each ask their own component (64 records). The stores live in a fresh
//! temporary directory on the same disk.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kinesis::persist::{Persistence, SharedStore};
use kinesis::{Component, Container, Context, Handle, Handler, Persist, Result};
use serde::{Deserialize, Serialize};

use crate::measure::{per_second, Metrics, StopFlag};

/// The stores, baseline first.
pub const STORES: [&str; 2] = ["sqlite", "filedb"];

/// The writer counts.
pub const WRITERS: [usize; 2] = [1, 64];

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
