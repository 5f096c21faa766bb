//! The process's own surface: readiness through the lifecycle, user health
//! checks and a store that goes down; Prometheus metrics parsed with a real
//! exposition-format parser; diagnostics; tasks with progress over SSE,
//! cancellation and a panicking task.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kinesis::persist::StoreRegistry;
use kinesis::{
    Component, Config, Context, Error, Handle, Restart, RestartPolicy, Result, Runtime, Stage,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::sync::{Notify, Semaphore};

/// A component whose `start` and `stop` wait for a gate, and whose health
/// check is "can reach the database" (a TCP connect to `database`).
#[derive(Clone, Default, Serialize, Deserialize)]
struct Gated {
    #[serde(skip)]
    hold_start: Arc<AtomicBool>,
    #[serde(skip)]
    hold_stop: Arc<AtomicBool>,
    #[serde(skip)]
    entered: Arc<Notify>,
    #[serde(skip)]
    gate: Arc<Notify>,
    #[serde(skip)]
    database: Option<SocketAddr>,
}

impl Component for Gated {
    async fn start(&mut self, _: &mut Context<Self>) -> Result<()> {
        if self.hold_start.load(Ordering::SeqCst) {
            self.entered.notify_one();
            self.gate.notified().await;
        }
        Ok(())
    }

    async fn stop(&mut self, _: &mut Context<Self>) -> Result<()> {
        if self.hold_stop.load(Ordering::SeqCst) {
            self.entered.notify_one();
            self.gate.notified().await;
        }
        Ok(())
    }

    /// "Can reach the database".
    async fn health(&self) -> Result<()> {
        let Some(addr) = self.database else { return Ok(()) };
        tokio::net::TcpStream::connect(addr)
            .await
            .map(drop)
            .map_err(|e| Error::Store(format!("cannot reach the database at {addr}: {e}")))
    }
}

async fn ready(s: &common::Server) -> (u16, Value) {
    let r = s.get("/_kinesis/ready").await;
    (r.status().as_u16(), r.json().await.expect("JSON"))
}

fn failing_checks(body: &Value) -> String {
    body["checks"].to_string()
}

async fn entered(gated: &Gated) {
    tokio::time::timeout(Duration::from_secs(10), gated.entered.notified())
        .await
        .expect("the hook was entered within 10 s");
}

#[tokio::test]
async fn readiness_is_503_while_starting_200_when_started_and_503_while_stopping() {
    let s = common::serve_with(common::options()).await;
    assert_eq!(s.get("/_kinesis/health").await.status(), 200);
    assert_eq!(ready(&s).await.0, 200);

    let gated = Gated::default();
    gated.hold_start.store(true, Ordering::SeqCst);
    let root = s.runtime.root().clone();
    let adding = tokio::spawn({
        let gated = gated.clone();
        async move { root.add("slow", gated).await.map(drop) }
    });
    entered(&gated).await;
    let (status, body) = ready(common_problem_checked(&s).await).await;
    assert_eq!(status, 503, "{body}");
    assert!(failing_checks(&body).contains("/root/slow is starting"), "{body}");
    // Liveness does not care.
    assert_eq!(s.get("/_kinesis/health").await.status(), 200);

    gated.hold_start.store(false, Ordering::SeqCst);
    gated.gate.notify_one();
    adding.await.unwrap().unwrap();
    let (status, body) = ready(&s).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "ready");

    // Stopping: the root stops its children; `slow` waits in `stop`.
    gated.hold_stop.store(true, Ordering::SeqCst);
    let root = s.runtime.root().clone();
    let stopping = tokio::spawn(async move { root.shutdown().await });
    entered(&gated).await;
    let (status, body) = ready(&s).await;
    assert_eq!(status, 503, "{body}");
    assert!(failing_checks(&body).contains("/root/slow is Stopping"), "{body}");
    gated.gate.notify_one();
    stopping.await.unwrap().unwrap();
    let (status, body) = ready(&s).await;
    assert_eq!(status, 503, "{body}");
    s.runtime.shutdown().await;
}

/// `s`, after checking that a 503 of `/ready` is a well-formed problem.
async fn common_problem_checked(s: &common::Server) -> &common::Server {
    let r = s.get("/_kinesis/ready").await;
    if r.status() == 503 {
        let body = common::problem(r, 503).await;
        assert_eq!(body["type"], "urn:kinesis:problem:not-ready");
    }
    s
}

#[tokio::test]
async fn readiness_is_503_when_a_health_check_fails() {
    let s = common::serve_with(common::options()).await;
    let database = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gated = Gated { database: Some(database.local_addr().unwrap()), ..Gated::default() };
    s.runtime.root().add("orders", gated).await.unwrap();
    let (status, body) = ready(&s).await;
    assert_eq!(status, 200, "{body}");

    drop(database);
    let (status, body) = ready(&s).await;
    assert_eq!(status, 503, "{body}");
    let checks = failing_checks(&body);
    assert!(checks.contains("health:/root/orders"), "{body}");
    assert!(checks.contains("cannot reach the database"), "{body}");
    s.runtime.shutdown().await;
}

#[tokio::test]
async fn readiness_is_503_when_the_file_store_is_down() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut stores = StoreRegistry::with_builtin();
    kinesis_filedb::register(&mut stores);
    let config = Config {
        db_connection: Some(format!("file://{}", data.display())),
        encrypt_key: Some(kinesis::persist::Cipher::generate_key()),
        ..Config::default()
    };
    let runtime = Runtime::builder(config).stores(stores).start().await.unwrap();
    let s = common::serve_runtime(runtime, common::options()).await;
    let (status, body) = ready(&s).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["checks"].to_string().contains("store:file"), "{body}");

    // The directory goes away and a file takes its place: unwritable, even
    // for root.
    std::fs::rename(&data, dir.path().join("moved")).unwrap();
    std::fs::write(&data, b"not a directory").unwrap();
    let (status, body) = ready(&s).await;
    assert_eq!(status, 503, "{body}");
    assert!(failing_checks(&body).contains("store:file"), "{body}");
    s.runtime.shutdown().await;
}

/// A component that restarts when it fails.
#[derive(Clone, Default, Serialize, Deserialize)]
struct Fragile {
    count: u64,
}

impl Component for Fragile {
    fn restart_policy(&self) -> RestartPolicy {
        RestartPolicy { when: Restart::OnFailure, ..RestartPolicy::never() }
    }
}

#[kinesis::handlers]
impl Fragile {
    /// Adds one.
    pub fn increment(&mut self) -> u64 {
        self.count += 1;
        self.count
    }

    /// Panics.
    pub fn explode(&mut self) -> u64 {
        panic!("boom")
    }
}

/// The scrape, parsed.
async fn scrape(s: &common::Server) -> prometheus_parse::Scrape {
    let r = s.get("/_kinesis/metrics").await;
    assert_eq!(r.status(), 200);
    assert!(common::header(&r, "content-type").starts_with("text/plain; version=0.0.4"));
    let text = r.text().await.unwrap();
    let lines = text.lines().map(|l| Ok(l.to_owned()));
    prometheus_parse::Scrape::parse(lines).expect("the exposition format parses")
}

/// The value of the sample of `name` whose labels include `labels`.
fn value(scrape: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    scrape
        .samples
        .iter()
        .find(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match &s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => *v,
            other => panic!("{name} is not a single value: {other:?}"),
        })
}

fn buckets(scrape: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> usize {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match &s.value {
            prometheus_parse::Value::Histogram(b) => b.len(),
            other => panic!("{name} is not a histogram: {other:?}"),
        })
        .max()
        .unwrap_or(0)
}

#[tokio::test]
async fn metrics_count_each_message_have_histograms_and_count_a_panic_as_a_restart() {
    let s = common::serve_with(common::options()).await;
    let fragile: Handle<Fragile> =
        s.runtime.root().add("fragile", Fragile::default()).await.unwrap();
    let uri = fragile.uri().to_owned();
    let labels = [("uri", uri.as_str()), ("kind", "call")];

    let before = scrape(&s).await;
    let start = value(&before, "kinesis_messages_total", &labels).unwrap_or(0.0);
    const N: u64 = 7;
    for _ in 0..N {
        let r = s.post_json("/root/fragile/increment", json!({})).await;
        assert_eq!(r.status(), 200);
    }
    let after = scrape(&s).await;
    let end = value(&after, "kinesis_messages_total", &labels).expect("counted");
    assert_eq!(end - start, N as f64, "exactly one count per message");

    let uri_only = [("uri", uri.as_str())];
    assert!(buckets(&after, "kinesis_message_duration_seconds", &uri_only) > 5);
    let commits = value(&after, "kinesis_commits_total", &[("uri", &uri), ("outcome", "ok")]);
    let committed = value(&after, "kinesis_committed_operations_total", &uri_only);
    assert_eq!(committed, Some(N as f64), "every increment was committed");
    assert!(commits.unwrap() >= 1.0 && commits.unwrap() <= N as f64, "{commits:?}");
    let http = [("kind", "method"), ("method", "POST"), ("status", "200")];
    assert!(buckets(&after, "kinesis_http_request_duration_seconds", &http) > 5);
    assert!(value(&after, "kinesis_http_requests_total", &http).unwrap() >= N as f64);
    assert_eq!(value(&after, "kinesis_component_stage", &uri_only), Some(6.0), "Started");
    assert_eq!(value(&after, "kinesis_mailbox_depth", &uri_only), Some(0.0));
    assert_eq!(value(&after, "kinesis_restarts_total", &uri_only), None);

    // A panic restarts the component: one restart.
    let r = s.post_json("/root/fragile/explode", json!({})).await;
    assert_eq!(r.status(), 500);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while fragile.stage() != Stage::Started || fragile.state() != kinesis::State::Active {
        assert!(tokio::time::Instant::now() < deadline, "restarted within 10 s");
        tokio::task::yield_now().await;
    }
    let restarted = scrape(&s).await;
    assert_eq!(value(&restarted, "kinesis_restarts_total", &uri_only), Some(1.0));

    // The diagnostics say so too.
    let d: Value = s.get("/_kinesis/diagnostics").await.json().await.unwrap();
    let me = d["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["uri"] == uri.as_str())
        .expect("listed")
        .clone();
    assert_eq!(me["restarts"], 1, "{me}");
    assert_eq!(me["stage"], "Started");
    assert!(me["last_failure"]["message"].as_str().unwrap().contains("boom"), "{me}");
    assert!(me["last_failure"]["at"].is_string(), "{me}");
    assert!(me["uptime_seconds"].as_f64().is_some(), "{me}");
    assert_eq!(me["mailbox_depth"], 0);
    assert_eq!(me["version"], N + 1);
    s.runtime.shutdown().await;
}

#[tokio::test]
async fn diagnostics_include_escalated_failures_and_subscribers() {
    let s = common::serve_with(common::options()).await;
    let counter = s.counter("watched").await;
    let _sub = counter.subscribe();
    s.runtime.root().add("doomed", common::Counter::default()).await.unwrap();
    let r = s.post_json("/root/doomed/explode", json!({})).await;
    assert_eq!(r.status(), 500);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while s.runtime.root().failures().is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "escalated within 10 s");
        tokio::task::yield_now().await;
    }
    let d: Value = s.get("/_kinesis/diagnostics").await.json().await.unwrap();
    let failures = &d["failures"][0];
    assert_eq!(failures["uri"], "/root", "{d}");
    assert_eq!(failures["failures"][0]["uri"], "/root/doomed", "{d}");
    let watched = d["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["uri"] == "/root/watched")
        .unwrap()
        .clone();
    assert_eq!(watched["subscribers"], 1, "{watched}");
    s.runtime.shutdown().await;
}

/// A component that starts tasks: one that steps when the test allows,
/// one that waits to be cancelled, one that panics.
#[derive(Clone, Serialize, Deserialize)]
struct Worker {
    #[serde(skip, default = "no_permits")]
    steps: Arc<Semaphore>,
}

fn no_permits() -> Arc<Semaphore> {
    Arc::new(Semaphore::new(0))
}

impl Default for Worker {
    fn default() -> Self {
        Worker { steps: no_permits() }
    }
}

impl Component for Worker {}

#[kinesis::handlers]
impl Worker {
    /// Runs `total` steps, each when the test adds a permit.
    pub fn stepped(&mut self, total: u64, ctx: &mut Context<Self>) -> u64 {
        let steps = Arc::clone(&self.steps);
        ctx.tasks()
            .spawn("stepped", move |progress| async move {
                progress.update(0, total, "starting");
                for i in 1..=total {
                    steps.acquire().await.map_err(|e| Error::handler(e.to_string()))?.forget();
                    progress.update(i, total, format!("step {i}"));
                }
                Ok(())
            })
            .id()
    }

    /// Waits until cancelled.
    pub fn forever(&mut self, ctx: &mut Context<Self>) -> u64 {
        ctx.tasks()
            .spawn("forever", |progress| async move {
                progress.message("waiting");
                std::future::pending::<()>().await;
                Ok(())
            })
            .id()
    }

    /// Panics on its worker.
    pub fn doomed(&mut self, ctx: &mut Context<Self>) -> u64 {
        ctx.tasks().spawn("doomed", |_| async move { panic!("task boom") }).id()
    }

    /// Still answers.
    pub fn ping(&self) -> String {
        "pong".into()
    }
}

/// The `progress` events of a task's `_watch`, as they come.
async fn watch_events(s: &common::Server, id: u64) -> impl futures::Stream<Item = Value> + Unpin {
    let r = s.get(&format!("/_kinesis/tasks/{id}/_watch")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(common::header(&r, "content-type"), "text/event-stream");
    let bytes = r.bytes_stream();
    Box::pin(futures::stream::unfold((bytes, String::new()), |(mut bytes, mut buf)| async move {
        loop {
            if let Some(end) = buf.find("\n\n") {
                let event: String = buf.drain(..end + 2).collect();
                let data = event.lines().find_map(|l| l.strip_prefix("data: "));
                if let Some(data) = data {
                    return Some((serde_json::from_str(data).unwrap(), (bytes, buf)));
                }
                continue;
            }
            let chunk = bytes.next().await?.ok()?;
            buf.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }))
}

async fn next(events: &mut (impl futures::Stream<Item = Value> + Unpin)) -> Value {
    tokio::time::timeout(Duration::from_secs(10), events.next())
        .await
        .expect("an event within 10 s")
        .expect("the stream goes on")
}

#[tokio::test]
async fn a_task_reports_progress_from_0_to_100_percent_over_sse() {
    let s = common::serve_with(common::options()).await;
    let worker = s.runtime.root().add("worker", Worker::default()).await.unwrap();
    let id: u64 =
        s.post_json("/root/worker/stepped", json!({"total": 4})).await.json().await.unwrap();
    let mut events = watch_events(&s, id).await;
    let mut seen = Vec::new();
    loop {
        let e = next(&mut events).await;
        if e["percent"].as_f64() == Some(0.0) || !seen.is_empty() {
            seen.push(e["percent"].as_f64().unwrap());
        }
        if e["state"] == "succeeded" {
            assert_eq!(e["done"], 4);
            assert!(e["finished_at"].is_string());
            break;
        }
        if e["percent"].is_number() && e["state"] == "running" {
            // One step at a time, so every value is seen.
            worker.snapshot().state.steps.add_permits(1);
        }
    }
    assert_eq!(seen.first(), Some(&0.0), "{seen:?}");
    assert_eq!(seen.last(), Some(&100.0), "{seen:?}");
    for pair in seen.windows(2) {
        assert!(pair[0] <= pair[1], "{seen:?}");
    }
    assert!(seen.contains(&50.0), "{seen:?}");
    assert!(
        tokio::time::timeout(Duration::from_secs(10), events.next()).await.unwrap().is_none(),
        "the stream ends when the task finished"
    );
    let listed: Value = s.get("/_kinesis/tasks").await.json().await.unwrap();
    assert!(listed["tasks"].as_array().unwrap().iter().any(|t| t["id"] == id), "{listed}");
    s.runtime.shutdown().await;
}

#[tokio::test]
async fn a_task_can_be_cancelled_and_a_panicking_task_fails_alone() {
    let s = common::serve_with(common::options()).await;
    s.runtime.root().add("worker", Worker::default()).await.unwrap();

    let id: u64 = s.post_json("/root/worker/forever", json!({})).await.json().await.unwrap();
    let mut events = watch_events(&s, id).await;
    while next(&mut events).await["message"] != "waiting" {}
    let r = s.client.delete(s.url(&format!("/_kinesis/tasks/{id}"))).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let status: Value = r.json().await.unwrap();
    assert_eq!(status["state"], "cancelled", "{status}");
    let mut last = Value::Null;
    while let Ok(Some(e)) = tokio::time::timeout(Duration::from_secs(10), events.next()).await {
        last = e;
    }
    assert_eq!(last["state"], "cancelled", "the watch ends with the cancellation");

    let id: u64 = s.post_json("/root/worker/doomed", json!({})).await.json().await.unwrap();
    let task = kinesis::tasks::TaskManager::global().get(id).unwrap();
    let status = tokio::time::timeout(Duration::from_secs(10), task.wait()).await.unwrap();
    assert_eq!(status.state, kinesis::tasks::TaskState::Failed);
    assert!(status.error.as_deref().unwrap().contains("task boom"), "{status:?}");
    let got: Value = s.get(&format!("/_kinesis/tasks/{id}")).await.json().await.unwrap();
    assert_eq!(got["state"], "failed");
    // The component did not go down.
    let r = s.get("/root/worker/ping").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap(), "pong");
    let worker = s.runtime.root().get::<Worker>("worker").unwrap();
    assert_eq!(worker.stage(), Stage::Started);

    let missing = s.get("/_kinesis/tasks/999999999").await;
    common::problem(missing, 404).await;
    s.runtime.shutdown().await;
}
