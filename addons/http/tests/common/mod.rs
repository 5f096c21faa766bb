//! What the HTTP integration tests share: a test component, a real server on
//! 127.0.0.1 (port 0) and helpers to check problem bodies and send raw bytes.
#![allow(dead_code, missing_docs, unreachable_pub)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use kinesis::{Component, Config, Context, Error, Handle, Result, Runtime};
use kinesis_http::{HttpConfig, HttpOptions, HttpServer};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Notify;

/// A counter whose hooks can be slowed down and whose methods succeed, fail
/// with every error kind, panic and sleep.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Counter {
    pub count: u64,
    #[serde(default)]
    pub start_delay_ms: u64,
    #[serde(default)]
    pub stop_delay_ms: u64,
    #[serde(default)]
    pub blob: String,
    /// Notified when `wait` or `slow_increment` begins (a permit is kept
    /// until someone waits), so a test knows a request is in its handler.
    /// Shared by the clones (snapshots); not part of the state.
    #[serde(skip)]
    pub entered: Arc<Notify>,
}

impl Component for Counter {
    async fn start(&mut self, _ctx: &mut Context<Self>) -> Result<()> {
        tokio::time::sleep(Duration::from_millis(self.start_delay_ms)).await;
        Ok(())
    }

    async fn stop(&mut self, _ctx: &mut Context<Self>) -> Result<()> {
        tokio::time::sleep(Duration::from_millis(self.stop_delay_ms)).await;
        Ok(())
    }
}

#[kinesis::handlers]
impl Counter {
    /// Adds `by`; an overflow is refused.
    pub fn increment(&mut self, by: u64) -> Result<u64> {
        self.count =
            self.count.checked_add(by).ok_or_else(|| Error::invalid("the count would overflow"))?;
        Ok(self.count)
    }

    /// The count.
    pub fn total(&self) -> u64 {
        self.count
    }

    /// Answers its arguments.
    pub fn echo(&self, a: Option<Value>, b: Option<Value>) -> Value {
        serde_json::json!({ "a": a, "b": b })
    }

    /// Sleeps `ms` on the latest snapshot, outside the mailbox.
    pub async fn wait(&self, ms: u64) -> u64 {
        self.entered.notify_one();
        tokio::time::sleep(Duration::from_millis(ms)).await;
        ms
    }

    /// Sleeps `ms` inside the mailbox, then adds one.
    pub async fn slow_increment(&mut self, ms: u64) -> u64 {
        self.entered.notify_one();
        tokio::time::sleep(Duration::from_millis(ms)).await;
        self.count += 1;
        self.count
    }

    /// Fails with the error kind named.
    pub fn fail(&mut self, kind: String) -> Result<()> {
        Err(match kind.as_str() {
            "not_found" => Error::NotFound("the thing".into()),
            "conflict" => Error::Conflict { current: kinesis::ETag::of(b"00", None) },
            "not_started" => Error::NotStarted("the thing".into()),
            "stopping" => Error::Stopping("the thing".into()),
            "timeout" => Error::Timeout(Duration::from_secs(1)),
            "invalid" => Error::invalid("does not fit"),
            "handler" => Error::handler("refused"),
            "store" => Error::Store("disk on fire".into()),
            "crypto" => Error::Crypto("bad tag".into()),
            "config" => Error::Config("no such setting".into()),
            other => Error::invalid(format!("unknown kind {other}")),
        })
    }

    /// Panics.
    pub fn explode(&mut self) -> u64 {
        panic!("boom")
    }

    /// Sets a string of `size` bytes, to make big states and events.
    pub fn set_blob(&mut self, size: usize) -> usize {
        self.blob = "x".repeat(size);
        size
    }
}

/// A component the HTTP surface must not show.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Hidden {
    pub secret_count: u64,
}

impl Component for Hidden {
    fn exposed(&self) -> bool {
        false
    }
}

/// A runtime with an HTTP server in its add-ons.
pub struct Server {
    pub runtime: Runtime,
    pub http: Handle<HttpServer>,
    pub addr: SocketAddr,
    pub base: String,
    pub client: reqwest::Client,
}

/// Options for tests: port 0, short timeouts.
pub fn options() -> HttpOptions {
    HttpOptions {
        addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        drain_timeout: Duration::from_secs(5),
        ..HttpOptions::default()
    }
}

/// [`options`], changed by `f`.
pub fn options_with(f: impl FnOnce(&mut HttpOptions)) -> HttpOptions {
    let mut o = options();
    f(&mut o);
    o
}

/// A runtime without persistence, served by `kinesis_http::serve`.
pub async fn serve() -> Server {
    let config =
        HttpConfig { addr: SocketAddr::from(([127, 0, 0, 1], 0)), ..HttpConfig::default() };
    let runtime = Runtime::builder(Config::default()).start().await.expect("runtime starts");
    let http = kinesis_http::serve(&runtime, &config).await.expect("server starts");
    finish(runtime, http)
}

/// A runtime without persistence, served with `options`.
pub async fn serve_with(options: HttpOptions) -> Server {
    let runtime = Runtime::builder(Config::default()).start().await.expect("runtime starts");
    serve_runtime(runtime, options).await
}

/// `runtime`, served with `options`.
pub async fn serve_runtime(runtime: Runtime, options: HttpOptions) -> Server {
    let server = HttpServer::new(runtime.root().clone(), options);
    let http = runtime.addons().add("http", server).await.expect("server starts");
    finish(runtime, http)
}

fn finish(runtime: Runtime, http: Handle<HttpServer>) -> Server {
    let addr = http.snapshot().state.local_addr().expect("listening");
    assert_ne!(addr.port(), 0);
    let client =
        reqwest::Client::builder().timeout(Duration::from_secs(30)).build().expect("client builds");
    Server { runtime, http, addr, base: format!("http://{addr}"), client }
}

impl Server {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Adds a counter under the root.
    pub async fn counter(&self, name: &str) -> Handle<Counter> {
        self.runtime.root().add(name, Counter::default()).await.expect("counter starts")
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.expect("request sent")
    }

    pub async fn post_json(&self, path: &str, body: Value) -> reqwest::Response {
        self.client.post(self.url(path)).json(&body).send().await.expect("request sent")
    }

    /// The ETag header of `GET path`.
    pub async fn etag(&self, path: &str) -> String {
        let r = self.get(path).await;
        assert_eq!(r.status(), 200);
        header(&r, "etag")
    }
}

/// Waits until a request is in the handler of `counter` (see
/// [`Counter::entered`]); fails after 10 s.
pub async fn in_handler(counter: &Handle<Counter>) {
    let entered = counter.snapshot().state.entered.clone();
    tokio::time::timeout(Duration::from_secs(10), entered.notified())
        .await
        .expect("the request reached the handler within 10 s");
}

pub fn header(r: &reqwest::Response, name: &str) -> String {
    r.headers()
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .to_str()
        .expect("ASCII header")
        .to_owned()
}

/// Checks that `r` is a problem with `status`, a Trace-ID header and that id
/// in its body; returns the body.
pub async fn problem(r: reqwest::Response, status: u16) -> Value {
    let url = r.url().clone();
    assert_eq!(r.status().as_u16(), status, "status of {url}");
    assert_eq!(header(&r, "content-type"), "application/problem+json", "{url}");
    let trace_id = header(&r, "trace-id");
    let body: Value = r.json().await.expect("problem body is JSON");
    assert_eq!(body["status"], status, "{body}");
    assert_eq!(body["trace_id"], trace_id.as_str(), "{body}");
    assert!(body["type"].as_str().unwrap().starts_with("urn:kinesis:problem:"), "{body}");
    assert!(!body["title"].as_str().unwrap().is_empty(), "{body}");
    assert!(body["detail"].is_string(), "{body}");
    body
}

/// A response read from a raw connection.
#[derive(Debug)]
pub struct Raw {
    pub status: u16,
    pub head: String,
    pub body: String,
}

impl Raw {
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().skip(1).find_map(|line| {
            let (k, v) = line.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
        })
    }
}

/// Sends `request` as is on a new connection and reads until the server
/// closes it (or 10 s pass). `None` if the server answered nothing.
pub async fn raw(addr: SocketAddr, request: &[u8]) -> Option<Raw> {
    exchange(addr, request, false).await
}

/// As [`raw`], but whenever the server is silent for a second (the request
/// may be incomplete, or garbling turned `connection: close` into
/// keep-alive), closes the sending side so that the server sees the end.
pub async fn raw_then_eof(addr: SocketAddr, request: &[u8]) -> Option<Raw> {
    exchange(addr, request, true).await
}

async fn exchange(addr: SocketAddr, request: &[u8], eof: bool) -> Option<Raw> {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("server accepts");
    let _ = stream.write_all(request).await;
    let mut buf = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut shut = !eof;
    let mut chunk = [0u8; 8192];
    loop {
        let wait =
            if shut { deadline } else { tokio::time::Instant::now() + Duration::from_secs(1) };
        match tokio::time::timeout_at(wait.min(deadline), stream.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
            Err(_) if !shut => {
                let _ = stream.shutdown().await;
                shut = true;
            }
            Err(_) => panic!("the server neither answered nor closed for {request:?}"),
        }
    }
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    Some(Raw { status, head: head.to_owned(), body: body.to_owned() })
}
