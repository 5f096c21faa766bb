//! The key-value store (`kinesis::kv::Kv`) through a real server on
//! 127.0.0.1: compare-and-set under 32 concurrent HTTP writers, the status
//! of each refusal, listing by prefix, and prefix watches as server-sent
//! events.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{options, problem, serve_runtime, Server};
use futures::StreamExt;
use kinesis::kv::{Kv, KvHandle, KvOptions};
use kinesis::{Config, Handle, Runtime};
use serde_json::{json, Value};

/// A server whose runtime has a memory store (the store's entries are
/// persisted fields), with a store at `/root/kv`.
async fn serve_kv() -> (Server, Handle<Kv>) {
    let runtime = Runtime::builder(Config::default())
        .default_store("memory://", None)
        .start()
        .await
        .expect("runtime starts");
    let s = serve_runtime(runtime, options()).await;
    let kv = s.runtime.root().add("kv", Kv::new(KvOptions::default())).await.expect("kv starts");
    (s, kv)
}

/// One read-modify-write over HTTP, retried until its compare-and-set wins;
/// answers how many times it lost (409).
async fn increment(client: &reqwest::Client, base: &str, key: &str) -> u64 {
    let mut lost = 0;
    loop {
        let r = client.get(format!("{base}/root/kv/get?key={key}")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let item: Value = r.json().await.unwrap();
        let (count, version) = match item {
            Value::Null => (0, 0),
            item => (item["value"].as_u64().unwrap(), item["version"].as_u64().unwrap()),
        };
        let r = client
            .post(format!("{base}/root/kv/put"))
            .json(&json!({"key": key, "value": count + 1, "version": version}))
            .send()
            .await
            .unwrap();
        match r.status().as_u16() {
            200 => return lost,
            409 => lost += 1,
            other => panic!("unexpected status {other}: {}", r.text().await.unwrap()),
        }
    }
}

/// 32 concurrent HTTP clients increment 4 counters with read-modify-write
/// and compare-and-set, retrying on 409: the counters add up to the number
/// of successful writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compare_and_set_under_32_concurrent_http_writers_loses_nothing() {
    const WRITERS: u64 = 32;
    const ROUNDS: u64 = 20;
    let (s, kv) = serve_kv().await;
    let conflicts = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        // A connection pool of its own per writer: 32 real clients.
        let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
        let (base, conflicts) = (s.base.clone(), conflicts.clone());
        tasks.push(tokio::spawn(async move {
            for round in 0..ROUNDS {
                let key = format!("counters/{}", (w + round) % 4);
                conflicts.fetch_add(increment(&client, &base, &key).await, Ordering::Relaxed);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let r = s.get("/root/kv/list?prefix=counters/").await;
    assert_eq!(r.status(), 200);
    let items: Vec<Value> = r.json().await.unwrap();
    assert_eq!(items.len(), 4);
    let total: u64 = items.iter().map(|i| i["value"].as_u64().unwrap()).sum();
    assert_eq!(total, WRITERS * ROUNDS, "every successful write is counted");
    assert_eq!(kv.snapshot().state.revision(), WRITERS * ROUNDS, "one revision per success");
    let conflicts = conflicts.load(Ordering::Relaxed);
    assert!(conflicts > 0, "the writers never collided: the test proves nothing");
    eprintln!("{} HTTP writes, {conflicts} conflicts retried", WRITERS * ROUNDS);
    s.runtime.shutdown().await;
}

/// The statuses: 409 for a lost compare-and-set, 422 for a bad key, a
/// null value or a value over the bound; reads by query string.
#[tokio::test]
async fn refusals_have_the_right_status() {
    let (s, _kv) = serve_kv().await;
    let r = s.post_json("/root/kv/put", json!({"key": "app/a", "value": {"x": 1}})).await;
    assert_eq!(r.status(), 200);
    let version = r.json::<u64>().await.unwrap();
    let r = s.post_json("/root/kv/put", json!({"key": "app/a", "value": 2, "version": 0})).await;
    problem(r, 409).await;
    let r =
        s.post_json("/root/kv/put", json!({"key": "app/a", "value": 2, "version": version})).await;
    assert_eq!(r.status(), 200);
    for (args, needle) in [
        (json!({"key": "bad key", "value": 1}), "character"),
        (json!({"key": "app/a"}), "must not be null"),
        (json!({"key": "app/a", "value": "x".repeat(70_000)}), "bytes of JSON"),
        (json!({"key": "app/a", "value": 1, "ttl_ms": 0}), "ttl_ms"),
    ] {
        let body = problem(s.post_json("/root/kv/put", args.clone()).await, 422).await;
        assert!(body["detail"].as_str().unwrap().contains(needle), "{args}: {body}");
    }
    s.post_json("/root/kv/put", json!({"key": "app/b", "value": "b", "ttl_ms": 60_000})).await;
    s.post_json("/root/kv/put", json!({"key": "other", "value": 0})).await;

    let item: Value = s.get("/root/kv/get?key=app/b").await.json().await.unwrap();
    assert_eq!(item["value"], "b");
    assert!(item["expires_at_ms"].as_u64().is_some());
    let listed: Vec<Value> = s.get("/root/kv/list?prefix=app/").await.json().await.unwrap();
    let keys: Vec<&str> = listed.iter().map(|i| i["key"].as_str().unwrap()).collect();
    assert_eq!(keys, ["app/a", "app/b"]);
    assert_eq!(s.get("/root/kv/count").await.json::<u64>().await.unwrap(), 3);
    assert_eq!(s.get("/root/kv/get?key=nothing").await.json::<Value>().await.unwrap(), Value::Null);
    problem(s.get("/root/kv/list?prefix=a%0Ab").await, 422).await;
    let r = s.post_json("/root/kv/delete", json!({"key": "app/a", "version": 1})).await;
    problem(r, 409).await;
    let r = s.post_json("/root/kv/delete", json!({"key": "app/a"})).await;
    assert!(r.json::<bool>().await.unwrap(), "it existed");

    // The store's methods are in the OpenAPI document like any component's.
    let r = s.get("/_kinesis/openapi.json").await;
    assert_eq!(r.status(), 200);
    let spec: Value = r.json().await.unwrap();
    for path in ["/root/kv/put", "/root/kv/get", "/root/kv/list", "/root/kv/delete"] {
        assert!(spec["paths"].get(path).is_some(), "{path} missing from {}", spec["paths"]);
    }
    s.runtime.shutdown().await;
}

/// Reads server-sent events as `(event, data)`.
struct Events {
    stream: futures::stream::BoxStream<'static, reqwest::Result<axum::body::Bytes>>,
    buf: String,
}

impl Events {
    async fn open(r: reqwest::Response) -> Events {
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["content-type"], "text/event-stream");
        Events { stream: r.bytes_stream().boxed(), buf: String::new() }
    }

    /// The next event that is not a comment.
    async fn next(&mut self) -> (String, Value) {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let (mut name, mut data) = (String::new(), String::new());
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        name = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    }
                }
                if name.is_empty() {
                    continue; // a keep-alive comment
                }
                return (name, serde_json::from_str(&data).unwrap());
            }
            let chunk = tokio::time::timeout(Duration::from_secs(10), self.stream.next())
                .await
                .expect("an event within 10 s")
                .expect("the stream goes on");
            self.buf.push_str(std::str::from_utf8(&chunk.unwrap()).unwrap());
        }
    }
}

/// `_watch?prefix=` gives the keys there, then a `put` or `delete` per
/// change under the prefix only; on another component it is a 400.
#[tokio::test]
async fn a_prefix_watch_streams_puts_and_deletes_under_the_prefix() {
    let (s, kv) = serve_kv().await;
    kv.put("jobs/1".into(), json!("queued"), None, None).await.unwrap();
    kv.put("other".into(), json!(0), None, None).await.unwrap();
    let mut events = Events::open(s.get("/root/kv/_watch?prefix=jobs/").await).await;
    let (name, data) = events.next().await;
    assert_eq!(
        (name.as_str(), &data["key"], &data["value"]),
        ("put", &json!("jobs/1"), &json!("queued"))
    );

    s.post_json("/root/kv/put", json!({"key": "other", "value": 1})).await;
    s.post_json("/root/kv/put", json!({"key": "jobs/2", "value": {"step": 1}})).await;
    let (name, data) = events.next().await;
    assert_eq!(
        (name.as_str(), &data["key"], &data["value"]),
        ("put", &json!("jobs/2"), &json!({"step": 1}))
    );
    assert_eq!(data["type"], "put");
    s.post_json("/root/kv/delete", json!({"key": "jobs/1"})).await;
    let (name, data) = events.next().await;
    assert_eq!((name.as_str(), &data["key"]), ("delete", &json!("jobs/1")));
    assert!(data["revision"].as_u64().is_some());

    // The whole-state watch of the store is still there.
    let mut whole = Events::open(s.get("/root/kv/_watch").await).await;
    assert_eq!(whole.next().await.0, "snapshot");

    s.runtime.root().add("counter", common::Counter::default()).await.unwrap();
    let body = problem(s.get("/root/counter/_watch?prefix=a").await, 400).await;
    assert!(body["detail"].as_str().unwrap().contains("key-value stores"), "{body}");
    problem(s.get("/root/kv/_watch?prefix=bad%20prefix").await, 422).await;
    s.runtime.shutdown().await;
}
