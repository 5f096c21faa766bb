//! Raw `save` throughput of the file store, fsync on.
//!
//! * `one_writer`: one record, one save after another (each save is one
//!   commit: a write and an `fdatasync`), the log growing into zeros written
//!   ahead ([`Options::preallocate_bytes`], the default).
//! * `one_writer_append`: the same with plain appends (no zeros written
//!   ahead: every `fdatasync` also flushes the new file size).
//! * `64_writers_64_records`: 64 saves at once, one per record, each
//!   iteration; throughput counts saves (group commit: a few syncs for 64
//!   saves).
//!
//! The directory is a temporary one under `KINESIS_BENCH_DIR` if set, else
//! the system's temporary directory: put it on the disk you want measured
//! (a tmpfs makes fsync free).
//!
//! Run: `cargo bench -p kinesis-filedb --bench filedb_save -- --quick`.

// `criterion_group!` defines a public function that cannot carry a doc comment.
#![allow(missing_docs)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use kinesis::persist::{Record, Store};
use kinesis_filedb::{FileStore, Options};
use serde_json::{json, Map};

const WRITERS: usize = 64;

fn record(uri: &str, version: u64) -> Record {
    let mut fields = Map::new();
    fields.insert("count".into(), json!(version));
    fields.insert("name".into(), json!("a typical small component state"));
    fields.insert("tags".into(), json!(["alpha", "beta", "gamma"]));
    Record::new(uri, "bench::Counter", version, fields)
}

fn save_throughput(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let base = std::env::var_os("KINESIS_BENCH_DIR").map_or_else(std::env::temp_dir, Into::into);
    let tmp = tempfile::tempdir_in(&base).unwrap();
    let store = Arc::new(FileStore::open(tmp.path()).unwrap());
    let append_tmp = tempfile::tempdir_in(&base).unwrap();
    let append_only = Options { preallocate_bytes: 0, ..Options::default() };
    let append_store = Arc::new(FileStore::open_with(append_tmp.path(), append_only).unwrap());

    let mut group = c.benchmark_group("filedb_save");

    group.throughput(Throughput::Elements(1));
    for (name, store) in [("one_writer", &store), ("one_writer_append", &append_store)] {
        let version = AtomicU64::new(0);
        group.bench_function(name, |b| {
            b.to_async(&runtime).iter(|| async {
                let expected = version.fetch_add(1, Ordering::Relaxed);
                store.save(&record("/bench/one", expected + 1), expected).await.unwrap();
            })
        });
    }

    group.throughput(Throughput::Elements(WRITERS as u64));
    let uris: Vec<String> = (0..WRITERS).map(|i| format!("/bench/many/{i}")).collect();
    let versions: Arc<Vec<AtomicU64>> = Arc::new((0..WRITERS).map(|_| AtomicU64::new(0)).collect());
    group.bench_function("64_writers_64_records", |b| {
        b.to_async(&runtime).iter(|| async {
            let mut tasks = Vec::with_capacity(WRITERS);
            for (i, uri) in uris.iter().enumerate() {
                let store = Arc::clone(&store);
                let versions = Arc::clone(&versions);
                let uri = uri.clone();
                tasks.push(tokio::spawn(async move {
                    let expected = versions[i].fetch_add(1, Ordering::Relaxed);
                    store.save(&record(&uri, expected + 1), expected).await.unwrap();
                }));
            }
            for task in tasks {
                task.await.unwrap();
            }
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    targets = save_throughput
}
criterion_main!(benches);
