//! The surface added on axum's Router: `_batch`, compression, and a restart
//! after a delay.

mod common;

use std::time::{Duration, Instant};

use common::{header, problem, serve, CounterHandle};
use kinesis::Stage;
use serde_json::{json, Value};

#[tokio::test]
async fn a_batch_runs_mixed_calls_in_order_and_answers_every_result() {
    let s = serve().await;
    let counter = s.counter("counter").await;
    let before = counter.snapshot().version;
    let calls = json!([
        {"method": "increment", "args": {"by": 2}},
        {"method": "set_blob", "args": {"size": 3}},
        {"method": "total"},
        {"method": "increment", "args": {"by": 5}},
    ]);
    let r = s.post_json("/root/counter/_batch", calls).await;
    assert_eq!(r.status(), 200);
    let etag = header(&r, "etag");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body, json!({"results": [2, 3, 2, 7]}));
    let after = counter.snapshot();
    assert_eq!((after.state.count, after.state.blob.as_str()), (7, "xxx"));
    assert_eq!(after.version, before + 1, "one commit for the batch");
    assert_eq!(etag, after.etag.quoted());
}

#[tokio::test]
async fn a_batch_whose_third_call_fails_changes_nothing_and_names_the_call() {
    let s = serve().await;
    let counter = s.counter("counter").await;
    let before = counter.snapshot();
    let calls = json!([
        {"method": "increment", "args": {"by": 2}},
        {"method": "set_blob", "args": {"size": 3}},
        {"method": "fail", "args": {"kind": "invalid"}},
        {"method": "increment", "args": {"by": 5}},
    ]);
    let body = problem(s.post_json("/root/counter/_batch", calls).await, 422).await;
    let detail = body["detail"].as_str().unwrap();
    assert!(detail.contains("batch call 2 (`fail`) failed"), "{detail}");
    let after = counter.snapshot();
    assert_eq!((after.state.count, after.state.blob.as_str()), (0, ""), "rolled back");
    assert_eq!((after.version, after.etag), (before.version, before.etag));
}

#[tokio::test]
async fn a_stale_if_match_refuses_the_whole_batch() {
    let s = serve().await;
    let counter = s.counter("counter").await;
    let stale = counter.snapshot().etag.quoted();
    counter.increment(1).await.unwrap();
    let r = s
        .client
        .post(s.url("/root/counter/_batch"))
        .header("if-match", &stale)
        .json(&json!([{"method": "increment", "args": {"by": 1}}]))
        .send()
        .await
        .unwrap();
    let body = problem(r, 412).await;
    assert_eq!(body["current_etag"], counter.snapshot().etag.quoted());
    assert_eq!(counter.snapshot().state.count, 1, "nothing ran");

    // The current ETag lets it through.
    let current = counter.snapshot().etag.quoted();
    let r = s
        .client
        .post(s.url("/root/counter/_batch"))
        .header("if-match", &current)
        .json(&json!([{"method": "increment", "args": {"by": 1}}]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(counter.snapshot().state.count, 2);
}

#[tokio::test]
async fn batches_that_are_not_lists_of_calls_are_refused() {
    let s = serve().await;
    s.counter("counter").await;
    for bad in [json!({"method": "increment"}), json!([]), json!([{"args": {}}]), json!([1])] {
        problem(s.post_json("/root/counter/_batch", bad).await, 422).await;
    }
    let r = s
        .client
        .post(s.url("/root/counter/_batch"))
        .body("[")
        .header("content-type", "application/json");
    problem(r.send().await.unwrap(), 400).await;
    let r = s
        .client
        .post(s.url("/root/counter/_batch"))
        .body("[]")
        .header("content-type", "text/plain");
    problem(r.send().await.unwrap(), 415).await;
    let r = s.get("/root/counter/_batch").await;
    assert_eq!(header(&problem_response(r, 405).await, "allow"), "POST");
    problem(s.post_json("/root/nothing/_batch", json!([])).await, 404).await;
}

/// `r` after checking its status (headers stay readable).
async fn problem_response(r: reqwest::Response, status: u16) -> reqwest::Response {
    assert_eq!(r.status().as_u16(), status);
    r
}

#[tokio::test]
async fn a_large_get_is_compressed_when_the_client_asks_and_only_then() {
    let s = serve().await;
    let counter = s.counter("counter").await;
    counter.set_blob(64 * 1024).await.unwrap();
    let plain = s.get("/root/counter").await;
    assert_eq!(plain.status(), 200);
    assert!(plain.headers().get("content-encoding").is_none());
    // It could have been compressed: caches are told that it depends on
    // Accept-Encoding.
    assert_eq!(header(&plain, "vary"), "accept-encoding");
    let plain_len = plain.bytes().await.unwrap().len();
    assert!(plain_len > 64 * 1024);
    for encoding in ["gzip", "br", "zstd"] {
        let r = s
            .client
            .get(s.url("/root/counter"))
            .header("accept-encoding", encoding)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(header(&r, "content-encoding"), encoding);
        assert!(r.headers().contains_key("etag"));
        let compressed = r.bytes().await.unwrap().len();
        assert!(compressed * 10 < plain_len, "{encoding}: {compressed} of {plain_len} bytes");
    }
    // A small answer is sent as it is.
    let r = s.client.get(s.url("/root/counter/total")).header("accept-encoding", "gzip");
    let r = r.send().await.unwrap();
    assert!(r.headers().get("content-encoding").is_none());
    assert!(r.headers().get("vary").is_none());
}

#[tokio::test]
async fn a_restart_after_a_delay_is_accepted_at_once_and_happens_after_the_delay() {
    let s = serve().await;
    let counter = s.counter("counter").await;
    counter.increment(4).await.unwrap();
    let asked = Instant::now();
    let r = s.post_json("/root/counter/_control", json!({"op": "restart", "after": "300ms"})).await;
    assert_eq!(r.status(), 202);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["op"], "restart");
    assert_eq!(body["after"], "300ms");
    assert_eq!(body["uri"], "/root/counter");
    // It leaves Started, then comes back after the delay with its state.
    let deadline = Instant::now() + Duration::from_secs(10);
    while counter.stage() == Stage::Started {
        assert!(Instant::now() < deadline, "the restart never began");
        tokio::task::yield_now().await;
    }
    tokio::time::timeout(Duration::from_secs(10), counter.wait_for_stage(Stage::Started))
        .await
        .expect("started again");
    assert!(asked.elapsed() >= Duration::from_millis(300), "{:?}", asked.elapsed());
    assert_eq!(counter.snapshot().state.count, 4);

    for bad in [
        json!({"op": "restart", "after": "soon"}),
        json!({"op": "stop", "after": "1s"}),
        json!({"op": "restart", "after": 5}),
    ] {
        problem(s.post_json("/root/counter/_control", bad).await, 422).await;
    }
    assert_eq!(counter.stage(), Stage::Started);
}
