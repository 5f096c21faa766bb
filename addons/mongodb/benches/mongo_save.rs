//! `save` throughput of the MongoDB store: one writer saving one record over
//! and over, and 64 writers at once, each on its own record (64 records).
//! Every save is a real compare-and-set acknowledged with the store's write
//! concern (`w: majority, j: true`).
//!
//! ```text
//! eval "$(scripts/test-services)"
//! cargo bench -p kinesis-mongodb --bench mongo_save
//! ```
//!
//! Runs against `KINESIS_TEST_MONGODB_URL` and is skipped with a notice
//! when it is unset or unreachable. Against nx-27017 (the test server) the
//! figures measure that server, not MongoDB.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
use kinesis::persist::{conformance, Record, SharedStore};
use kinesis_mongodb::MongoStore;
use serde_json::{json, Map};

const WRITERS: usize = 64;

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

fn benches(c: &mut Criterion) {
    let Ok(url) = std::env::var("KINESIS_TEST_MONGODB_URL") else {
        eprintln!("NOTICE: KINESIS_TEST_MONGODB_URL is not set; nothing to measure");
        return;
    };
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let collection = conformance::unique_prefix("bench").replace(['/', '-'], "_");
    let url =
        format!("{}{}collection={collection}", url, if url.contains('?') { "&" } else { "?" });
    let store: SharedStore = match runtime.block_on(MongoStore::connect(&url)) {
        Ok(store) => Arc::new(store),
        Err(e) => {
            eprintln!("NOTICE: skipping mongodb: {e}");
            return;
        }
    };
    let slots: Arc<Vec<Slot>> = Arc::new(
        (0..WRITERS)
            .map(|i| Slot { uri: format!("/bench/c{i}"), version: AtomicU64::new(0) })
            .collect(),
    );
    let mut group = c.benchmark_group("mongo_save");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));

    group.throughput(Throughput::Elements(1));
    group.bench_function(BenchmarkId::new("mongodb", "1 writer"), |b| {
        b.to_async(&runtime).iter_custom(|iters| {
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
    group.bench_function(BenchmarkId::new("mongodb", "64 writers"), |b| {
        b.to_async(&runtime).iter_custom(|iters| {
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
        for uri in store.list("/bench/").await.expect("list") {
            store.delete(&uri).await.expect("delete");
        }
    });
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    benches(&mut criterion);
    criterion.final_summary();
}
