//! Load benchmark of the HTTP add-on against a bare axum handler, measured
//! in the same run: `cargo bench -p kinesis-http --bench http_load`.
//!
//! A hyper HTTP/1.1 client keeps 64 connections busy for a fixed time per
//! scenario (each connection sends its next request as soon as the last
//! answer is read). The time is split into three rounds, the scenarios taking
//! turns, so that other load on the machine falls on all of them alike:
//!
//! * `bare axum GET` — an axum route serialising the same JSON the kinesis
//!   GET answers, with an `ETag` header;
//! * `kinesis GET` — `GET /root/probe`: live path resolution, snapshot as
//!   JSON, meta, ETag, trace id and body limit middleware;
//! * `kinesis POST` — `POST /root/probe/increment`: a mutating method
//!   through the component's mailbox (serialise, hash, publish per call).
//! * the two kinesis scenarios again with metrics off
//!   ([`kinesis::metrics::disable`]; the others run with them on, the
//!   Prometheus recorder installed by the router), and the ratio on / off.
//!
//! Server and client run on separate 2-thread tokio runtimes in this
//! process. No tracing subscriber is installed, as for the bare server.
//! Besides requests per second it prints the CPU time the server threads
//! spent per request (from `/proc/self/task/*/stat`): on a machine shared
//! with other work, throughput swings with what else runs, while CPU time
//! per request does much less.
//!
//! `BENCH_SECONDS` changes the time per scenario (default 3); `BENCH_ONLY`
//! (`bare`, `get` or `post`) runs one scenario alone, for profiling.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::header::{CONTENT_TYPE, ETAG};
use axum::http::{HeaderValue, Method, Request, StatusCode};
use axum::response::IntoResponse;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use kinesis::{Component, Config, Runtime};
use kinesis_http::{HttpOptions, HttpServer};
use serde::{Deserialize, Serialize};
use serde_json::Value;

const CONNECTIONS: usize = 64;

/// Each scenario's time is split into this many rounds, run in turn.
const ROUNDS: u32 = 3;

/// The component served.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Probe {
    count: u64,
    label: String,
}

impl Component for Probe {}

#[kinesis::handlers]
impl Probe {
    /// Adds `by`.
    pub fn increment(&mut self, by: u64) -> u64 {
        self.count += by;
        self.count
    }
}

/// The name of the server runtime's threads, whose CPU time is measured.
const SERVER_THREADS: &str = "load-server";

/// What one scenario measured.
struct Outcome {
    requests: u64,
    errors: u64,
    elapsed: Duration,
    /// CPU time the server threads used, in clock ticks (1/100 s).
    server_ticks: u64,
}

impl Outcome {
    fn rate(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }

    /// Server CPU time per request, in microseconds.
    fn server_us(&self) -> f64 {
        self.server_ticks as f64 * 10_000.0 / self.requests.max(1) as f64
    }
}

/// User plus system CPU time of this process's threads called `name`, in
/// clock ticks (Linux: 100 per second); 0 where `/proc` is not there.
fn cpu_ticks(name: &str) -> u64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else { return 0 };
    let mut ticks = 0;
    for task in tasks.flatten() {
        let path = task.path();
        let comm = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
        if comm.trim() != name {
            continue;
        }
        let stat = std::fs::read_to_string(path.join("stat")).unwrap_or_default();
        // Fields after the `(comm)`: state is the first, utime the 12th, stime the 13th.
        let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
        let fields: Vec<&str> = after.split_whitespace().collect();
        let field = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
        ticks += field(11) + field(12);
    }
    ticks
}

fn runtime(name: &str) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(name)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Starts kinesis with a `probe` and the HTTP add-on; answers its address
/// and the body of `GET /root/probe`.
async fn start_kinesis() -> (Runtime, SocketAddr, Bytes, HeaderValue) {
    let runtime = Runtime::builder(Config::default()).start().await.expect("runtime");
    runtime.root().add("probe", Probe { count: 0, label: "bench".into() }).await.expect("probe");
    let options = HttpOptions { addr: SocketAddr::from(([127, 0, 0, 1], 0)), ..Default::default() };
    let http = HttpServer::new(runtime.root().clone(), options);
    let http = runtime.addons().add("http", http).await.expect("server");
    let addr = http.snapshot().state.local_addr().expect("listening");
    let (status, etag, body) = request(addr, Method::GET, "/root/probe", None).await;
    assert_eq!(status, StatusCode::OK);
    (runtime, addr, body, etag.expect("an ETag"))
}

/// A bare axum server answering `GET /bare` with `json` serialised per
/// request and `etag`.
async fn start_bare(json: Value, etag: HeaderValue) -> SocketAddr {
    let json = Arc::new(json);
    let app = axum::Router::new().route(
        "/bare",
        axum::routing::get(move || {
            let (json, etag) = (json.clone(), etag.clone());
            async move {
                let body = serde_json::to_vec(&*json).expect("serialises");
                let headers =
                    [(CONTENT_TYPE, HeaderValue::from_static("application/json")), (ETAG, etag)];
                (headers, body).into_response()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// One request on a new connection: status, ETag, body.
async fn request(
    addr: SocketAddr,
    method: Method,
    path: &str,
    body: Option<&'static str>,
) -> (StatusCode, Option<HeaderValue>, Bytes) {
    let mut sender = connect(addr).await;
    let response = sender.send_request(build(addr, &method, path, body)).await.expect("answer");
    let status = response.status();
    let etag = response.headers().get(ETAG).cloned();
    let body = response.into_body().collect().await.expect("body").to_bytes();
    (status, etag, body)
}

async fn connect(addr: SocketAddr) -> hyper::client::conn::http1::SendRequest<Full<Bytes>> {
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    let (sender, conn) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.expect("handshake");
    tokio::spawn(conn);
    sender
}

fn build(
    addr: SocketAddr,
    method: &Method,
    path: &str,
    body: Option<&'static str>,
) -> Request<Full<Bytes>> {
    let mut builder =
        Request::builder().method(method.clone()).uri(path).header("host", addr.to_string());
    if body.is_some() {
        builder = builder.header(CONTENT_TYPE, "application/json");
    }
    builder.body(Full::new(Bytes::from_static(body.unwrap_or("").as_bytes()))).expect("request")
}

/// 64 keep-alive connections sending requests back to back for `duration`.
async fn load(
    addr: SocketAddr,
    method: Method,
    path: &'static str,
    body: Option<&'static str>,
    duration: Duration,
) -> Outcome {
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::new();
    for _ in 0..CONNECTIONS {
        let method = method.clone();
        tasks.push(tokio::spawn(async move {
            let mut sender = connect(addr).await;
            let (mut ok, mut errors) = (0u64, 0u64);
            while Instant::now() < deadline {
                sender.ready().await.expect("connection stays up");
                let response = sender.send_request(build(addr, &method, path, body)).await;
                let response = response.expect("answer");
                let success = response.status().is_success();
                response.into_body().collect().await.expect("body");
                if success {
                    ok += 1;
                } else {
                    errors += 1;
                }
            }
            (ok, errors)
        }));
    }
    let (mut requests, mut errors) = (0, 0);
    for task in tasks {
        let (ok, err) = task.await.expect("load task");
        requests += ok;
        errors += err;
    }
    let elapsed = started.elapsed();
    Outcome { requests, errors, elapsed, server_ticks: 0 }
}

fn main() {
    let seconds = std::env::var("BENCH_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(3);
    let duration = Duration::from_secs(seconds);
    let server = runtime(SERVER_THREADS);
    let client = runtime("load-client");
    let (kinesis_runtime, kinesis_addr, body, etag) = server.block_on(start_kinesis());
    let json: Value = serde_json::from_slice(&body).expect("JSON");
    let bare_addr = server.block_on(start_bare(json, etag));
    let (_, _, bare_body) = client.block_on(request(bare_addr, Method::GET, "/bare", None));
    let same: Value = serde_json::from_slice(&bare_body).expect("JSON");
    assert_eq!(same, serde_json::from_slice::<Value>(&body).expect("JSON"), "the same JSON");
    assert_eq!(bare_body.len(), body.len(), "the same JSON, keys in another order");
    println!("{CONNECTIONS} connections, {seconds} s per scenario, {} byte JSON body", body.len());

    type Scenario = (&'static str, SocketAddr, Method, &'static str, Option<&'static str>, bool);
    let post = Some("{\"by\":1}");
    let scenarios: [Scenario; 5] = [
        ("bare axum GET", bare_addr, Method::GET, "/bare", None, true),
        ("kinesis GET", kinesis_addr, Method::GET, "/root/probe", None, true),
        ("kinesis POST method", kinesis_addr, Method::POST, "/root/probe/increment", post, true),
        ("GET, metrics off", kinesis_addr, Method::GET, "/root/probe", None, false),
        ("POST, metrics off", kinesis_addr, Method::POST, "/root/probe/increment", post, false),
    ];
    let only = std::env::var("BENCH_ONLY").ok();
    if let Some(only) = only.as_deref() {
        let index = ["bare", "get", "post"].iter().position(|s| *s == only).expect("bare|get|post");
        let (name, addr, method, path, body, _) = scenarios[index].clone();
        let outcome = client.block_on(load(addr, method, path, body, duration));
        println!("{name}: {:.0} req/s", outcome.rate());
        return;
    }
    // Rounds of every scenario in turn, so that load from elsewhere on the
    // machine falls on all of them alike.
    let mut totals: Vec<Outcome> = scenarios
        .iter()
        .map(|_| Outcome { requests: 0, errors: 0, elapsed: Duration::ZERO, server_ticks: 0 })
        .collect();
    for _ in 0..ROUNDS {
        for ((name, addr, method, path, body, metrics), total) in scenarios.iter().zip(&mut totals)
        {
            if *metrics {
                kinesis::metrics::enable();
            } else {
                kinesis::metrics::disable();
            }
            let before = cpu_ticks(SERVER_THREADS);
            let outcome =
                client.block_on(load(*addr, method.clone(), path, *body, duration / ROUNDS));
            assert_eq!(outcome.errors, 0, "{name}: {} errors", outcome.errors);
            total.server_ticks += cpu_ticks(SERVER_THREADS) - before;
            total.requests += outcome.requests;
            total.elapsed += outcome.elapsed;
        }
    }
    let (bare_rate, bare_us) = (totals[0].rate(), totals[0].server_us());
    println!(
        "{:<22} {:>9} {:>9} {:>10} {:>14} {:>14}",
        "scenario", "requests", "req/s", "vs bare", "server µs/req", "bare µs / this"
    );
    for ((name, ..), outcome) in scenarios.iter().zip(&totals) {
        println!(
            "{:<22} {:>9} {:>9.0} {:>9.2}x {:>14.1} {:>13.2}x",
            name,
            outcome.requests,
            outcome.rate(),
            outcome.rate() / bare_rate,
            outcome.server_us(),
            bare_us / outcome.server_us()
        );
    }
    for (on, off, what) in [(1, 3, "GET"), (2, 4, "POST")] {
        println!(
            "metrics on / off, {what}: {:.2}x req/s, {:.2}x server CPU per request",
            totals[on].rate() / totals[off].rate(),
            totals[on].server_us() / totals[off].server_us()
        );
    }
    kinesis::metrics::enable();
    let report = server.block_on(kinesis_runtime.shutdown());
    assert!(report.clean, "{report:?}");
}
