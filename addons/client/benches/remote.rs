//! A `Remote` call over HTTP against the same call hand-written with
//! reqwest, in the same run: `cargo bench -p kinesis-client --bench remote`.
//!
//! The server is the HTTP add-on on 127.0.0.1 (port 0) serving one
//! component, on a 2-thread tokio runtime of its own in this process. Each
//! scenario keeps `callers` tasks calling the mutating method `add(by)` in
//! a loop on a 1-thread client runtime, for a fixed time split into rounds
//! that the two scenarios take in turn (so other load on the machine falls
//! on both alike):
//!
//! * `reqwest` — the hand-written call: `POST /root/tally/add` with the
//!   JSON arguments and `content-type: application/json`, the status
//!   checked, the body parsed as a `u64`. One `reqwest::Client`, as any
//!   real client would keep.
//! * `Remote` — `TallyHandle::add` on a `Remote<Tally>` from
//!   `kinesis_client::Client`: the same request plus what the handle adds
//!   (argument serialisation, a `traceparent`, the reply checked against
//!   problem+json and deserialised).
//!
//! It prints calls per second for each and the ratio Remote / reqwest for
//! each round and over all (the target: at least 0.8), and the CPU time the
//! whole process (client and server) spent per call: on a machine busy with
//! other work throughput swings with what else runs, CPU time per call much
//! less, so the CPU ratio reqwest / Remote is the steadier figure.
//! `BENCH_SECONDS` sets the time per scenario (default 4), `BENCH_CALLERS`
//! the concurrent callers (default: 1, then 16).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kinesis::remote::Remote;
use kinesis::{Component, Config, Runtime};
use kinesis_http::HttpConfig;
use serde::{Deserialize, Serialize};

const ROUNDS: u32 = 4;

/// The component served.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Tally {
    n: u64,
}

impl Component for Tally {}

#[kinesis::handlers]
impl Tally {
    /// Adds `by`.
    pub fn add(&mut self, by: u64) -> u64 {
        self.n += by;
        self.n
    }
}

/// CPU time (user and system) this process has used, from
/// `/proc/self/stat`; zero where there is no such file.
fn cpu_time() -> Duration {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else { return Duration::ZERO };
    // The fields after the command name (which may hold spaces) in parens.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = [11, 12].iter().filter_map(|&i| fields.get(i)?.parse::<u64>().ok()).sum();
    // Clock ticks are 1/100 s on Linux.
    Duration::from_millis(ticks * 10)
}

/// Runs `callers` loops of `call` for `time`; answers the calls made.
async fn drive<F, Fut>(callers: usize, time: Duration, call: F) -> u64
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let done = Arc::new(AtomicU64::new(0));
    let until = Instant::now() + time;
    let tasks: Vec<_> = (0..callers)
        .map(|_| {
            let (call, done) = (call.clone(), Arc::clone(&done));
            tokio::spawn(async move {
                while Instant::now() < until {
                    call().await;
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("caller");
    }
    done.load(Ordering::Relaxed)
}

/// The hand-written call.
async fn raw_call(http: &reqwest::Client, url: &str) {
    let response = http
        .post(url)
        .header("content-type", "application/json")
        .body(r#"{"by":1}"#)
        .send()
        .await
        .expect("sent");
    assert!(response.status().is_success());
    let bytes = response.bytes().await.expect("body");
    let _: u64 = serde_json::from_slice(&bytes).expect("a number");
}

fn main() {
    let seconds: f64 =
        std::env::var("BENCH_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(4.0);
    let callers: Vec<usize> = match std::env::var("BENCH_CALLERS").ok().and_then(|s| s.parse().ok())
    {
        Some(n) => vec![n],
        None => vec![1, 16],
    };
    let server = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("server runtime");
    let (runtime, addr) = server.block_on(async {
        let runtime = Runtime::builder(Config::default()).start().await.expect("runtime");
        runtime.root().add("tally", Tally::default()).await.expect("tally");
        let config =
            HttpConfig { addr: SocketAddr::from(([127, 0, 0, 1], 0)), ..HttpConfig::default() };
        let http = kinesis_http::serve(&runtime, &config).await.expect("server");
        let addr = http.snapshot().state.local_addr().expect("listening");
        (runtime, addr)
    });
    let client_rt =
        tokio::runtime::Builder::new_current_thread().enable_all().build().expect("client runtime");
    let base = format!("http://{addr}");
    let round = Duration::from_secs_f64(seconds / f64::from(ROUNDS));

    println!("Remote call vs hand-written reqwest, POST /root/tally/add, {seconds} s each\n");
    println!(
        "| callers | round | reqwest calls/s | Remote calls/s | Remote / reqwest | CPU µs/call reqwest | CPU µs/call Remote |"
    );
    println!("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    let mut summary = Vec::new();
    for &n in &callers {
        let (raw_total, remote_total, cpu_ratio) = client_rt.block_on(async {
            let http = reqwest::Client::builder().tcp_nodelay(true).build().expect("reqwest");
            let url: Arc<str> = format!("{base}/root/tally/add").into();
            let client = kinesis_client::Client::new(&base).expect("client");
            let tally: Remote<Tally> = client.remote("/root/tally");
            let (mut raw_total, mut remote_total) = (0u64, 0u64);
            let (mut raw_cpu, mut remote_cpu) = (Duration::ZERO, Duration::ZERO);
            for r in 1..=ROUNDS {
                let (h, u) = (http.clone(), Arc::clone(&url));
                let cpu = cpu_time();
                let raw = drive(n, round, move || {
                    let (h, u) = (h.clone(), Arc::clone(&u));
                    async move { raw_call(&h, &u).await }
                })
                .await;
                let raw_spent = cpu_time() - cpu;
                let t = tally.clone();
                let cpu = cpu_time();
                let remote = drive(n, round, move || {
                    let t = t.clone();
                    async move {
                        TallyHandle::add(&t, 1).await.expect("call");
                    }
                })
                .await;
                let remote_spent = cpu_time() - cpu;
                let per_s = |calls: u64| calls as f64 / round.as_secs_f64();
                let per_call =
                    |spent: Duration, calls: u64| spent.as_secs_f64() * 1e6 / calls as f64;
                println!(
                    "| {n} | {r} | {:.0} | {:.0} | {:.2}× | {:.0} | {:.0} |",
                    per_s(raw),
                    per_s(remote),
                    remote as f64 / raw as f64,
                    per_call(raw_spent, raw),
                    per_call(remote_spent, remote),
                );
                raw_total += raw;
                remote_total += remote;
                raw_cpu += raw_spent;
                remote_cpu += remote_spent;
            }
            let cpu_ratio = (raw_cpu.as_secs_f64() / raw_total as f64)
                / (remote_cpu.as_secs_f64() / remote_total as f64);
            (raw_total, remote_total, cpu_ratio)
        });
        summary.push((n, raw_total, remote_total, cpu_ratio));
    }
    println!();
    for (n, raw, remote, cpu_ratio) in summary {
        println!(
            "{n} caller(s): Remote / reqwest = {:.2}× calls/s over all rounds, {cpu_ratio:.2}× by CPU time per call (target ≥ 0.80×)",
            remote as f64 / raw as f64
        );
    }
    server.block_on(async {
        runtime.shutdown().await;
    });
}
