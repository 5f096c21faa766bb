//! No lost updates: 32 clients read, modify and PUT one counter with
//! `If-Match` for about three seconds, retrying on 412. Every 2xx PUT must be
//! counted exactly once in the final value, and nothing may answer 5xx.

mod common;

use std::time::{Duration, Instant};

use common::{header, serve};
use serde_json::Value;

const CLIENTS: usize = 32;
const RUN_FOR: Duration = Duration::from_secs(3);

#[derive(Debug, Default)]
struct Tally {
    ok: u64,
    stale: u64,
    other: Vec<u16>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_read_modify_write_loses_no_update() {
    let s = serve().await;
    let counter = s.counter("counter").await;
    let url = s.url("/root/counter");
    let deadline = Instant::now() + RUN_FOR;
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        let (client, url) = (s.client.clone(), url.clone());
        clients.push(tokio::spawn(async move {
            let mut tally = Tally::default();
            while Instant::now() < deadline {
                let r = client.get(&url).send().await.unwrap();
                assert_eq!(r.status(), 200);
                let etag = header(&r, "etag");
                let mut data = r.json::<Value>().await.unwrap()["data"].take();
                data["count"] = (data["count"].as_u64().unwrap() + 1).into();
                let r = client.put(&url).header("if-match", etag).json(&data).send().await;
                match r.unwrap().status().as_u16() {
                    200 => tally.ok += 1,
                    412 => tally.stale += 1,
                    other => tally.other.push(other),
                }
            }
            tally
        }));
    }
    let mut total = Tally::default();
    for c in clients {
        let t = c.await.unwrap();
        total.ok += t.ok;
        total.stale += t.stale;
        total.other.extend(t.other);
    }
    assert!(total.other.is_empty(), "unexpected statuses: {:?}", total.other);
    assert!(total.ok >= 8, "too few writes to mean anything: {total:?}");
    assert!(total.stale > 0, "no conflicts at all: the test did not race: {total:?}");
    let r = s.get("/root/counter").await;
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["data"]["count"], total.ok, "{total:?}");
    assert_eq!(counter.snapshot().state.count, total.ok);
    // Every successful PUT made exactly one new version.
    assert_eq!(body["meta"]["version"], total.ok + 1);
    eprintln!("{} PUTs succeeded, {} were stale", total.ok, total.stale);
}
