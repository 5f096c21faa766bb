//! `ask` round trips per second against one component, next to the floor
//! for this design: a raw tokio `mpsc` + `oneshot` actor, measured in the
//! same run on the same runtime (2 worker threads).
//!
//! ```text
//! cargo bench --bench ask
//! ```
//!
//! Criterion reports each scenario; the summary at the end prints the median
//! of 5 timed runs per scenario and the ratio kinesis / raw tokio, then the
//! same asks with metrics recorded (a Prometheus recorder installed,
//! [`kinesis::metrics::enable`]) against metrics off, in alternating runs
//! on the same component, and the ratio on / off.

#![allow(missing_docs)] // criterion_group! generates an undocumented fn

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, Criterion, Throughput};
use kinesis::{Component, Container, Context, Handle, Handler, Result};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

#[derive(Clone, Default, Serialize, Deserialize)]
struct Counter {
    count: u64,
}
impl Component for Counter {}

struct Inc(u64);
impl Handler<Inc> for Counter {
    type Reply = u64;
    async fn handle(&mut self, Inc(n): Inc, _: &mut Context<Self>) -> Result<u64> {
        self.count += n;
        Ok(self.count)
    }
}

type RawMsg = (u64, oneshot::Sender<u64>);

fn raw_actor() -> mpsc::Sender<RawMsg> {
    let (tx, mut rx) = mpsc::channel::<RawMsg>(1024);
    tokio::spawn(async move {
        let mut count = 0u64;
        while let Some((n, reply)) = rx.recv().await {
            count += n;
            let _ = reply.send(count);
        }
    });
    tx
}

async fn raw_ask(tx: &mpsc::Sender<RawMsg>, n: u64) -> u64 {
    let (otx, orx) = oneshot::channel();
    tx.send((n, otx)).await.unwrap();
    orx.await.unwrap()
}

#[derive(Clone)]
enum Target {
    Raw(mpsc::Sender<RawMsg>),
    Kinesis(Handle<Counter>),
}

impl Target {
    async fn ask(&self) -> u64 {
        match self {
            Target::Raw(tx) => raw_ask(tx, 1).await,
            Target::Kinesis(h) => h.ask(Inc(1)).await.unwrap(),
        }
    }
}

/// Runs `total` asks split over `callers` tasks; returns elapsed time.
async fn drive(target: &Target, callers: usize, total: u64) -> Duration {
    let per = total / callers as u64;
    let start = Instant::now();
    if callers == 1 {
        // On a worker thread, as a request handler would be.
        let t = target.clone();
        tokio::spawn(async move {
            for _ in 0..per {
                black_box(t.ask().await);
            }
        })
        .await
        .unwrap();
    } else {
        let tasks: Vec<_> = (0..callers)
            .map(|_| {
                let t = target.clone();
                tokio::spawn(async move {
                    for _ in 0..per {
                        black_box(t.ask().await);
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
    }
    start.elapsed()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

/// The root, the raw baseline, kinesis with the default 30 s ask timeout,
/// and kinesis without a timeout.
async fn targets() -> (Container, Target, Target, Target) {
    let root = Container::root().await.unwrap();
    let h = root.add("counter", Counter::default()).await.unwrap();
    let untimed = Target::Kinesis(h.clone().without_timeout());
    (root, Target::Raw(raw_actor()), Target::Kinesis(h), untimed)
}

fn bench_ask(c: &mut Criterion) {
    let rt = runtime();
    let (_root, raw, kin, _) = rt.block_on(targets());
    let mut group = c.benchmark_group("ask");
    group.measurement_time(Duration::from_secs(2)).warm_up_time(Duration::from_millis(500));
    for (callers, batch) in [(1usize, 1_000u64), (64, 6_400)] {
        group.throughput(Throughput::Elements(batch));
        for (name, target) in [("raw_tokio", &raw), ("kinesis", &kin)] {
            group.bench_function(format!("{name}/{callers}_callers"), |b| {
                b.to_async(&rt).iter(|| drive(target, callers, batch))
            });
        }
    }
    group.finish();
}

fn summary() {
    let rt = runtime();
    println!("\nask round trips per second (median of 5 runs, 2 worker threads)");
    println!(
        "{:<14}{:>12}{:>12}{:>8}{:>16}{:>8}",
        "scenario", "raw tokio", "kinesis", "ratio", "no timeout", "ratio"
    );
    rt.block_on(async {
        let (root, raw, kin, untimed) = targets().await;
        // KINESIS_BENCH_SCALE=0.01 shortens the runs (for profiling).
        let scale: f64 =
            std::env::var("KINESIS_BENCH_SCALE").ok().and_then(|s| s.parse().ok()).unwrap_or(1.0);
        for (callers, total) in [(1usize, 200_000u64), (64, 640_000)] {
            let total = ((total as f64 * scale) as u64).max(callers as u64 * 10);
            let mut rates = [Vec::new(), Vec::new(), Vec::new()];
            for t in [&raw, &kin, &untimed] {
                drive(t, callers, total / 10).await;
            }
            for _ in 0..5 {
                for (i, t) in [&raw, &kin, &untimed].into_iter().enumerate() {
                    rates[i].push(total as f64 / drive(t, callers, total).await.as_secs_f64());
                }
            }
            let [r, k, u] = rates.map(|mut v| median(&mut v));
            println!(
                "{:<14}{:>12.0}{:>12.0}{:>7.2}x{:>16.0}{:>7.2}x",
                format!("{callers} caller(s)"),
                r,
                k,
                k / r,
                u,
                u / r
            );
        }
        root.shutdown().await.unwrap();
    });
    metrics_on_off(&rt);
}

/// Asks with metrics on against off, on the same component, in alternating
/// runs; prints the medians and the ratio on / off.
fn metrics_on_off(rt: &tokio::runtime::Runtime) {
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new()
        .set_buckets(&[0.000_01, 0.000_1, 0.001, 0.01, 0.1, 1.0])
        .unwrap()
        .build_recorder();
    let handle = recorder.handle();
    if metrics::set_global_recorder(recorder).is_err() {
        println!("(a metrics recorder was installed already; metrics on/off skipped)");
        return;
    }
    println!("\nask round trips per second, metrics on vs off (median of 7 alternating runs)");
    println!("{:<14}{:>12}{:>12}{:>8}", "scenario", "off", "on", "on/off");
    rt.block_on(async {
        let (root, _, kin, _) = targets().await;
        let scale: f64 =
            std::env::var("KINESIS_BENCH_SCALE").ok().and_then(|s| s.parse().ok()).unwrap_or(1.0);
        for (callers, total) in [(1usize, 200_000u64), (64, 640_000)] {
            let total = ((total as f64 * scale) as u64).max(callers as u64 * 10);
            let mut rates = [Vec::new(), Vec::new()];
            for on in [false, true] {
                set_metrics(on);
                drive(&kin, callers, total / 10).await;
            }
            for _ in 0..7 {
                for (i, on) in [false, true].into_iter().enumerate() {
                    set_metrics(on);
                    rates[i].push(total as f64 / drive(&kin, callers, total).await.as_secs_f64());
                    handle.run_upkeep();
                }
            }
            let [off, on] = rates.map(|mut v| median(&mut v));
            println!(
                "{:<14}{:>12.0}{:>12.0}{:>7.2}x",
                format!("{callers} caller(s)"),
                off,
                on,
                on / off
            );
        }
        set_metrics(false);
        root.shutdown().await.unwrap();
    });
}

/// `KINESIS_BENCH_ASKS` asks (default 10,000) from one caller, metrics on
/// or off (the recorder installed either way).
fn asks_only(on: bool) {
    let n: u64 =
        std::env::var("KINESIS_BENCH_ASKS").ok().and_then(|s| s.parse().ok()).unwrap_or(10_000);
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new()
        .set_buckets(&[0.000_01, 0.000_1, 0.001, 0.01, 0.1, 1.0])
        .unwrap()
        .build_recorder();
    metrics::set_global_recorder(recorder).expect("the only recorder");
    // The recorder's clock calibrates itself on first use, for a time, not
    // a number of instructions: done here, before anything is counted.
    metrics::histogram!("kinesis_bench_warm_up").record(1.0);
    set_metrics(on);
    // One thread: the same instructions on every run, nothing spins.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let (root, _, kin, _) = targets().await;
        drive(&kin, 1, n).await;
        root.shutdown().await.unwrap();
    });
}

fn set_metrics(on: bool) {
    if on {
        kinesis::metrics::enable();
    } else {
        kinesis::metrics::disable();
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

criterion_group!(benches, bench_ask);

/// Runs the criterion benches, then the ratio summary.
fn main() {
    // KINESIS_BENCH_METRICS=on|off with KINESIS_BENCH_ASKS=n: only n asks
    // from one caller with metrics on or off, for instruction counts
    // (valgrind --tool=callgrind; the difference of two n per ask).
    if let Ok(which) = std::env::var("KINESIS_BENCH_METRICS") {
        return asks_only(which == "on");
    }
    // KINESIS_BENCH_SUMMARY_ONLY=1 skips criterion (for profiling runs).
    if std::env::var_os("KINESIS_BENCH_SUMMARY_ONLY").is_none() {
        benches();
        Criterion::default().configure_from_args().final_summary();
    }
    summary();
}
