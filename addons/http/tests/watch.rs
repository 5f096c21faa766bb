//! `GET {uri}/_watch`: server-sent events of a component's changes.

mod common;

use std::time::{Duration, Instant};

use common::{options_with, problem, serve, serve_with, CounterHandle};
use futures::StreamExt;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One parsed event (comments are kept as events named `:`).
#[derive(Debug, Clone, Default, PartialEq)]
struct Event {
    name: String,
    id: Option<String>,
    data: String,
}

impl Event {
    fn json(&self) -> Value {
        serde_json::from_str(&self.data).unwrap_or_else(|e| panic!("{e}: {}", self.data))
    }
}

/// Reads events from an SSE response.
struct Events {
    stream: futures::stream::BoxStream<'static, reqwest::Result<axum::body::Bytes>>,
    buf: String,
}

impl Events {
    async fn open(r: reqwest::Response) -> Events {
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["content-type"], "text/event-stream");
        assert!(r.headers().contains_key("trace-id"));
        Events { stream: r.bytes_stream().boxed(), buf: String::new() }
    }

    /// The next event or comment; `None` when the stream ended.
    async fn next(&mut self) -> Option<Event> {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                return Some(parse(&block));
            }
            let chunk = tokio::time::timeout(Duration::from_secs(10), self.stream.next())
                .await
                .expect("an event within 10 s")?;
            self.buf.push_str(std::str::from_utf8(&chunk.expect("stream reads")).unwrap());
        }
    }

    /// The next event that is not a comment.
    async fn event(&mut self) -> Option<Event> {
        loop {
            let e = self.next().await?;
            if e.name != ":" {
                return Some(e);
            }
        }
    }
}

fn parse(block: &str) -> Event {
    let mut e = Event::default();
    for line in block.lines() {
        if let Some(c) = line.strip_prefix(':') {
            e.name = ":".into();
            e.data = c.trim().to_owned();
        } else if let Some(v) = line.strip_prefix("event:") {
            e.name = v.trim().to_owned();
        } else if let Some(v) = line.strip_prefix("id:") {
            e.id = Some(v.trim().to_owned());
        } else if let Some(v) = line.strip_prefix("data:") {
            e.data.push_str(v.trim_start());
        }
    }
    e
}

#[tokio::test]
async fn watch_sends_a_snapshot_then_one_event_per_change_with_the_version_as_id() {
    let s = serve().await;
    let counter = s.counter("counter").await;
    let mut events = Events::open(s.get("/root/counter/_watch").await).await;
    let first = events.event().await.unwrap();
    assert_eq!(first.name, "snapshot");
    assert_eq!(first.id.as_deref(), Some("1"));
    assert_eq!(first.json()["data"]["count"], 0);
    assert_eq!(first.json()["version"], 1);

    for by in [1, 2, 3] {
        s.post_json("/root/counter/increment", json!({ "by": by })).await;
    }
    let mut total = 0;
    for (i, by) in [1, 2, 3].into_iter().enumerate() {
        total += by;
        let e = events.event().await.unwrap();
        let version = i as u64 + 2;
        assert_eq!(e.name, "updated");
        assert_eq!(e.id, Some(version.to_string()));
        let data = e.json();
        assert_eq!(data["type"], "updated");
        assert_eq!(data["version"], version);
        assert_eq!(data["prev_version"], version - 1);
        assert_eq!(data["data"]["count"], total);
        assert_eq!(data["etag"].as_str().unwrap().len(), 32);
    }
    assert_eq!(counter.snapshot().version, 4);

    // Stage changes are events too; the stream ends once the component is gone.
    s.post_json("/root/counter/_control", json!({"op": "stop"})).await;
    let mut stages = Vec::new();
    while let Some(e) = events.event().await {
        assert!(e.id.is_none(), "{e:?}");
        let data = e.json();
        assert_eq!(data["type"], e.name.as_str());
        if e.name == "stage" {
            stages.push(data["curr"].as_str().unwrap().to_owned());
        }
    }
    assert_eq!(stages.first().map(String::as_str), Some("Stopping"));
    assert!(stages.contains(&"Stopped".to_owned()), "{stages:?}");
}

#[tokio::test]
async fn idle_watches_get_keep_alive_comments() {
    let s = serve_with(options_with(|o| o.keep_alive = Duration::from_millis(100))).await;
    s.counter("counter").await;
    let mut events = Events::open(s.get("/root/counter/_watch").await).await;
    assert_eq!(events.next().await.unwrap().name, "snapshot");
    let comment = events.next().await.unwrap();
    assert_eq!(comment, Event { name: ":".into(), id: None, data: "keep-alive".into() });
}

#[tokio::test]
async fn watch_of_unknown_components_and_wrong_methods_are_problems() {
    let s = serve().await;
    s.counter("counter").await;
    problem(s.get("/root/nothing/_watch").await, 404).await;
    problem(s.post_json("/root/counter/_watch", json!({})).await, 405).await;
}

#[tokio::test]
async fn stopping_the_server_ends_watch_streams() {
    let s = serve().await;
    s.counter("counter").await;
    let mut events = Events::open(s.get("/root/counter/_watch").await).await;
    assert_eq!(events.event().await.unwrap().name, "snapshot");
    let started = Instant::now();
    s.http.shutdown().await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(2), "stop waited for the stream");
    assert!(events.event().await.is_none());
}

#[tokio::test]
async fn a_client_that_stops_reading_lags_without_slowing_the_component() {
    let s = serve().await;
    let counter = s.counter("counter").await;
    counter.set_blob(16 * 1024).await.unwrap();

    // A watcher that sends its request and then reads nothing.
    let mut stream = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    let request = "GET /root/counter/_watch HTTP/1.1\r\nhost: localhost\r\n\r\n";
    stream.write_all(request.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;

    // 1,000 changes of 16 KiB each: more than socket buffers hold.
    let started = Instant::now();
    for _ in 0..1000 {
        counter.increment(1).await.unwrap();
    }
    let took = started.elapsed();
    assert!(took < Duration::from_secs(20), "the component was slowed down: {took:?}");
    assert_eq!(counter.snapshot().state.count, 1000);

    // Reading again: a `lagged` event, then the newest changes.
    let mut seen = Vec::new();
    let mut buf = vec![0u8; 1 << 16];
    let last = b"\"count\":1000";
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf))
            .await
            .expect("the stream goes on")
            .unwrap();
        assert!(n > 0, "the stream ended");
        let from = seen.len().saturating_sub(last.len());
        seen.extend_from_slice(&buf[..n]);
        if seen[from..].windows(last.len()).any(|w| w == last) {
            break;
        }
        assert!(Instant::now() < deadline, "never saw the last change");
    }
    let text = String::from_utf8_lossy(&seen);
    let lagged = text.find("event: lagged").expect("a lagged event");
    let missed: Value = {
        let rest = &text[lagged..];
        let data = rest.lines().find_map(|l| l.strip_prefix("data: ")).unwrap();
        serde_json::from_str(data).unwrap()
    };
    assert!(missed["missed"].as_u64().unwrap() > 0, "{missed}");
    assert!(text[lagged..].contains("id: 1002"), "the newest change follows the lag");
    // The server still serves others meanwhile.
    assert_eq!(s.get("/root/counter/total").await.json::<Value>().await.unwrap(), json!(1000));
}

/// Increments the counter `n` times over HTTP.
async fn increment(s: &common::Server, n: usize) {
    for _ in 0..n {
        let r = s.post_json("/root/counter/increment", json!({"by": 1})).await;
        assert_eq!(r.status(), 200);
    }
}

#[tokio::test]
async fn a_watch_resumes_after_last_event_id_with_exactly_the_missed_versions() {
    let s = serve().await;
    s.counter("counter").await;
    let mut events = Events::open(s.get("/root/counter/_watch").await).await;
    assert_eq!(events.event().await.unwrap().id.as_deref(), Some("1"));
    increment(&s, 1).await;
    let seen = events.event().await.unwrap();
    assert_eq!((seen.name.as_str(), seen.id.as_deref()), ("updated", Some("2")));
    // The connection drops after version 2; two writes happen meanwhile.
    drop(events);
    increment(&s, 2).await;

    let r = s.client.get(s.url("/root/counter/_watch")).header("last-event-id", "2").send().await;
    let mut events = Events::open(r.unwrap()).await;
    for version in [3, 4] {
        let e = events.event().await.unwrap();
        assert_eq!(e.name, "updated", "no snapshot first: {e:?}");
        assert_eq!(e.id, Some(version.to_string()));
        assert_eq!(e.json()["version"], version);
        assert_eq!(e.json()["data"]["count"], version - 1);
    }
    // Then it goes on live.
    increment(&s, 1).await;
    assert_eq!(events.event().await.unwrap().id.as_deref(), Some("5"));

    // `?since=` does the same.
    let mut events = Events::open(s.get("/root/counter/_watch?since=3").await).await;
    assert_eq!(events.event().await.unwrap().id.as_deref(), Some("4"));
    assert_eq!(events.event().await.unwrap().id.as_deref(), Some("5"));
}

#[tokio::test]
async fn a_version_older_than_the_history_starts_with_a_snapshot() {
    let s = serve().await;
    let counter = s.counter("counter").await;
    drop(Events::open(s.get("/root/counter/_watch").await).await);
    for _ in 0..70 {
        counter.increment(1).await.unwrap();
    }
    let r = s.client.get(s.url("/root/counter/_watch")).header("last-event-id", "1").send().await;
    let mut events = Events::open(r.unwrap()).await;
    let first = events.event().await.unwrap();
    assert_eq!(first.name, "snapshot");
    assert_eq!(first.id.as_deref(), Some("71"));
    assert_eq!(first.json()["data"]["count"], 70);
    counter.increment(1).await.unwrap();
    assert_eq!(events.event().await.unwrap().id.as_deref(), Some("72"));

    // A version that is not a number is a 400.
    let r = s.client.get(s.url("/root/counter/_watch")).header("last-event-id", "x").send().await;
    problem(r.unwrap(), 400).await;
    problem(s.get("/root/counter/_watch?since=-1").await, 400).await;
}
