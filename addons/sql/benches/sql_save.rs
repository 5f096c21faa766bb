//! `save` throughput of the SQL stores: one writer saving one record over
//! and over, and 64 writers at once, each on its own record (64 records).
//! Every save is a real compare-and-set committed by the database.
//!
//! ```text
//! cargo bench -p kinesis-sql --features sqlite,postgres,mysql --bench sql_save
//! ```
//!
//! SQLite runs on a temporary file (WAL, `synchronous = FULL`). PostgreSQL
//! and MySQL run against `KINESIS_TEST_POSTGRES_URL` / `KINESIS_TEST_MYSQL_URL`
//! (defaults as in the tests) and are skipped with a notice when unreachable.
//! Pools have the default size ([`kinesis_sql::DEFAULT_POOL_SIZE`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
use kinesis::persist::{conformance, Record, SharedStore};
use kinesis_sql::SqlStore;
use serde_json::{json, Map};

const WRITERS: usize = 64;

/// One record's uri and the version it is at.
struct Slot {
    uri: String,
    version: AtomicU64,
}

fn record(uri: &str, version: u64) -> Record {
    let mut fields = Map::new();
    fields.insert("count".into(), json!(version));
    fields.insert("label".into(), json!("a short string field"));
    Record::new(uri, "bench::Counter", version, fields)
}

async fn save_next(store: &SharedStore, slot: &Slot) {
    let expected = slot.version.load(Ordering::Relaxed);
    store.save(&record(&slot.uri, expected + 1), expected).await.expect("save");
    slot.version.store(expected + 1, Ordering::Relaxed);
}

fn bench_store(
    c: &mut Criterion,
    runtime: &tokio::runtime::Runtime,
    name: &str,
    store: SharedStore,
) {
    let prefix = conformance::unique_prefix(&format!("bench-{name}"));
    let slots: Arc<Vec<Slot>> = Arc::new(
        (0..WRITERS)
            .map(|i| Slot { uri: format!("{prefix}/c{i}"), version: AtomicU64::new(0) })
            .collect(),
    );
    let mut group = c.benchmark_group("sql_save");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));

    group.throughput(Throughput::Elements(1));
    group.bench_function(BenchmarkId::new(name, "1 writer"), |b| {
        b.to_async(runtime).iter_custom(|iters| {
            let (store, slots) = (store.clone(), slots.clone());
            async move {
                let started = Instant::now();
                for _ in 0..iters {
                    save_next(&store, &slots[0]).await;
                }
                started.elapsed()
            }
        })
    });

    group.throughput(Throughput::Elements(WRITERS as u64));
    group.bench_function(BenchmarkId::new(name, "64 writers"), |b| {
        b.to_async(runtime).iter_custom(|iters| {
            let (store, slots) = (store.clone(), slots.clone());
            async move {
                let started = Instant::now();
                let tasks: Vec<_> = (0..WRITERS)
                    .map(|i| {
                        let (store, slots) = (store.clone(), slots.clone());
                        tokio::spawn(async move {
                            for _ in 0..iters {
                                save_next(&store, &slots[i]).await;
                            }
                        })
                    })
                    .collect();
                for t in tasks {
                    t.await.expect("writer");
                }
                started.elapsed()
            }
        })
    });
    group.finish();

    runtime.block_on(async {
        for uri in store.list(&prefix).await.expect("list") {
            store.delete(&uri).await.expect("delete");
        }
    });
}

fn open(runtime: &tokio::runtime::Runtime, url: &str) -> Option<SharedStore> {
    match runtime.block_on(SqlStore::connect(url)) {
        Ok(store) => Some(Arc::new(store)),
        Err(e) => {
            eprintln!("NOTICE: skipping {}: {e}", url.split(':').next().unwrap_or(url));
            None
        }
    }
}

fn benches(c: &mut Criterion) {
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");

    let dir = tempfile::tempdir().expect("temp dir");
    let sqlite = format!("sqlite://{}", dir.path().join("bench.db").display());
    if let Some(store) = open(&runtime, &sqlite) {
        bench_store(c, &runtime, "sqlite", store);
    }

    let postgres = std::env::var("KINESIS_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    if let Some(store) = open(&runtime, &postgres) {
        bench_store(c, &runtime, "postgres", store);
    }

    #[cfg(feature = "mysql")]
    {
        let mysql = std::env::var("KINESIS_TEST_MYSQL_URL")
            .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".to_owned());
        if let Some(store) = open(&runtime, &mysql) {
            bench_store(c, &runtime, "mysql", store);
        }
    }
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    benches(&mut criterion);
    criterion.final_summary();
}
