//! A unary call over gRPC against the same call over HTTP, in the same run,
//! and how many changes a `Watch` stream delivers to one client:
//! `cargo bench -p kinesis-grpc --bench grpc`.
//!
//! One runtime serves one component with both add-ons on 127.0.0.1 (port
//! 0), on a 2-thread tokio runtime of its own in this process.
//!
//! * **Call.** `TallyHandle::add(1)` on a `Remote<Tally>` from
//!   `kinesis_client::Client`, once over `http://` (the HTTP add-on,
//!   HTTP/1.1) and once over `grpc://` (the gRPC add-on, HTTP/2): the same
//!   typed handle, the same by-name call on the server. `callers` tasks
//!   call in a loop on a 1-thread client runtime, for a fixed time split
//!   into rounds that the two take in turn (so other load on the machine
//!   falls on both alike). It prints calls per second for each, the ratio
//!   gRPC / HTTP per round and over all (the target: at least 0.9), and the
//!   CPU time the whole process spent per call.
//! * **Watch.** A producer on the server runtime asks the component to
//!   `add(1)` in a loop (one ask at a time: each a new version); one client
//!   reads the `Watch` stream with the generated tonic client and counts
//!   the `Updated` events it gets, resuming with `since` after a `Lagged`.
//!   It prints the changes delivered per second (the target: at least
//!   50,000) and the versions the producer made.
//!
//! `BENCH_SECONDS` sets the time per scenario (default 4), `BENCH_CALLERS`
//! the concurrent callers (default: 1, then 16).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use kinesis::remote::Remote;
use kinesis::{Component, Config, Handle, Runtime};
use kinesis_grpc::{GrpcAddr, GrpcOptions, GrpcServer};
use kinesis_http::HttpConfig;
use kinesis_proto::v1 as pb;
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
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = [11, 12].iter().filter_map(|&i| fields.get(i)?.parse::<u64>().ok()).sum();
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

/// Runs `callers` loops of `add(1)` on `tally` for `time`.
async fn calls(tally: &Remote<Tally>, callers: usize, time: Duration) -> u64 {
    let tally = tally.clone();
    drive(callers, time, move || {
        let t = tally.clone();
        async move {
            TallyHandle::add(&t, 1).await.expect("call");
        }
    })
    .await
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
    let (runtime, tally, http_addr, grpc_addr) = server.block_on(async {
        let runtime = Runtime::builder(Config::default()).start().await.expect("runtime");
        let tally = runtime.root().add("tally", Tally::default()).await.expect("tally");
        let config =
            HttpConfig { addr: SocketAddr::from(([127, 0, 0, 1], 0)), ..HttpConfig::default() };
        let http = kinesis_http::serve(&runtime, &config).await.expect("HTTP server");
        let http_addr = http.snapshot().state.local_addr().expect("listening");
        let options = GrpcOptions::new(GrpcAddr::Tcp(SocketAddr::from(([127, 0, 0, 1], 0))));
        let grpc = runtime
            .addons()
            .add("grpc", GrpcServer::new(runtime.root().clone(), options))
            .await
            .expect("gRPC server");
        let grpc_addr = grpc.snapshot().state.local_addr().expect("listening");
        (runtime, tally, http_addr, grpc_addr)
    });
    let client_rt =
        tokio::runtime::Builder::new_current_thread().enable_all().build().expect("client runtime");
    let round = Duration::from_secs_f64(seconds / f64::from(ROUNDS));

    println!("Remote call over gRPC vs over HTTP, add(1) on /root/tally, {seconds} s each\n");
    println!(
        "| callers | round | HTTP calls/s | gRPC calls/s | gRPC / HTTP | CPU µs/call HTTP | CPU µs/call gRPC |"
    );
    println!("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    let mut summary = Vec::new();
    for &n in &callers {
        let (http_total, grpc_total, cpu_ratio) = client_rt.block_on(async {
            let over_http = kinesis_client::Client::new(format!("http://{http_addr}"))
                .expect("client")
                .remote::<Tally>("/root/tally");
            let over_grpc = kinesis_client::Client::new(format!("grpc://{grpc_addr}"))
                .expect("client")
                .remote::<Tally>("/root/tally");
            let (mut http_total, mut grpc_total) = (0u64, 0u64);
            let (mut http_cpu, mut grpc_cpu) = (Duration::ZERO, Duration::ZERO);
            for r in 1..=ROUNDS {
                let cpu = cpu_time();
                let h = calls(&over_http, n, round).await;
                let h_spent = cpu_time() - cpu;
                let cpu = cpu_time();
                let g = calls(&over_grpc, n, round).await;
                let g_spent = cpu_time() - cpu;
                let per_s = |calls: u64| calls as f64 / round.as_secs_f64();
                let per_call =
                    |spent: Duration, calls: u64| spent.as_secs_f64() * 1e6 / calls as f64;
                println!(
                    "| {n} | {r} | {:.0} | {:.0} | {:.2}× | {:.0} | {:.0} |",
                    per_s(h),
                    per_s(g),
                    g as f64 / h as f64,
                    per_call(h_spent, h),
                    per_call(g_spent, g),
                );
                http_total += h;
                grpc_total += g;
                http_cpu += h_spent;
                grpc_cpu += g_spent;
            }
            let cpu_ratio = (http_cpu.as_secs_f64() / http_total as f64)
                / (grpc_cpu.as_secs_f64() / grpc_total as f64);
            (http_total, grpc_total, cpu_ratio)
        });
        summary.push((n, http_total, grpc_total, cpu_ratio));
    }
    println!();
    for (n, http, grpc, cpu_ratio) in summary {
        println!(
            "{n} caller(s): gRPC / HTTP = {:.2}× calls/s over all rounds, {cpu_ratio:.2}× by CPU time per call (target ≥ 0.90×)",
            grpc as f64 / http as f64
        );
    }

    let (delivered, made, lagged, elapsed) = watch(&server, &client_rt, &tally, grpc_addr, seconds);
    println!(
        "\nWatch over gRPC, one client, {seconds} s: {delivered} changes delivered = {:.0} changes/s (target ≥ 50,000/s); the producer made {made} ({:.0}/s); {lagged} lagged",
        delivered as f64 / elapsed.as_secs_f64(),
        made as f64 / elapsed.as_secs_f64(),
    );
    server.block_on(async {
        runtime.shutdown().await;
    });
}

/// The watch scenario: answers (changes delivered, versions made, lagged
/// events, time).
fn watch(
    server: &tokio::runtime::Runtime,
    client_rt: &tokio::runtime::Runtime,
    tally: &Handle<Tally>,
    addr: SocketAddr,
    seconds: f64,
) -> (u64, u64, u64, Duration) {
    let stop = Arc::new(AtomicBool::new(false));
    let producer = server.spawn({
        let (tally, stop) = (tally.clone(), Arc::clone(&stop));
        async move {
            let mut made = 0u64;
            while !stop.load(Ordering::Relaxed) {
                tally.add(1).await.expect("add");
                made += 1;
            }
            made
        }
    });
    let time = Duration::from_secs_f64(seconds);
    let (delivered, lagged, elapsed) = client_rt.block_on(async {
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .expect("endpoint")
            .connect()
            .await
            .expect("connects");
        let mut client = kinesis_proto::kinesis_client::KinesisClient::new(channel);
        let (mut delivered, mut lagged, mut since) = (0u64, 0u64, None);
        let start = Instant::now();
        while start.elapsed() < time {
            let request = pb::WatchRequest { uri: "/root/tally".into(), since, run: String::new() };
            let mut stream = client.watch(request).await.expect("watch").into_inner();
            while let Some(event) = stream.next().await {
                match event.expect("event").event {
                    Some(pb::watch_event::Event::Updated(u)) => {
                        delivered += 1;
                        since = Some(u.version);
                    }
                    Some(pb::watch_event::Event::Snapshot(s)) => since = Some(s.version),
                    Some(pb::watch_event::Event::Lagged(_)) => lagged += 1,
                    _ => {}
                }
                if start.elapsed() >= time {
                    break;
                }
            }
        }
        (delivered, lagged, start.elapsed())
    });
    stop.store(true, Ordering::Relaxed);
    let made = server.block_on(producer).expect("producer");
    (delivered, made, lagged, elapsed)
}
