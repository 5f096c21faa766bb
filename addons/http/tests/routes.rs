//! Every row of the route table (DESIGN §7) against a real server, and every
//! error status with its problem+json body and Trace-ID header.

mod common;

use std::time::Duration;

use common::{header, problem, serve, serve_with, Counter, CounterHandle, Hidden};
use serde_json::{json, Value};

#[tokio::test]
async fn get_root_lists_the_exposed_tree() {
    let s = serve().await;
    let app = s.runtime.root().add_container("app").await.unwrap();
    app.add("counter", Counter::default()).await.unwrap();
    s.runtime.root().add("hidden", Hidden::default()).await.unwrap();

    let r = s.get("/").await;
    assert_eq!(r.status(), 200);
    assert!(r.headers().contains_key("trace-id"));
    let tree: Value = r.json().await.unwrap();
    let uris: Vec<&str> =
        tree["components"].as_array().unwrap().iter().map(|c| c["uri"].as_str().unwrap()).collect();
    assert_eq!(uris, ["/root", "/root/app", "/root/app/counter"]);
    let counter = &tree["components"][2];
    assert!(counter["type"].as_str().unwrap().ends_with("Counter"));
    assert_eq!(counter["stage"], "Started");
    assert_eq!(counter["state"], "Active");
    assert_eq!(counter["etag"].as_str().unwrap().len(), 32);
    assert_eq!(counter["version"], 1);

    // Hidden components and the add-ons are not reachable either.
    problem(s.get("/root/hidden").await, 404).await;
    problem(s.get("/addons/http").await, 404).await;
    problem(s.get("/addons").await, 404).await;
    let r = s.client.delete(s.url("/")).send().await.unwrap();
    assert_eq!(header(&r, "allow"), "GET, HEAD");
    problem(r, 405).await;
}

#[tokio::test]
async fn get_component_answers_meta_data_and_etag() {
    let s = serve().await;
    let counter = s.counter("counter").await;
    let r = s.get("/root/counter").await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "content-type"), "application/json");
    let etag = header(&r, "etag");
    assert_eq!(etag, counter.etag().quoted());
    let body: Value = r.json().await.unwrap();
    let meta = &body["meta"];
    assert_eq!(meta["name"], "counter");
    assert_eq!(meta["uri"], "/root/counter");
    assert_eq!(meta["stage"], "Started");
    assert_eq!(meta["state"], "Active");
    assert_eq!(meta["version"], 1);
    assert_eq!(format!("\"{}\"", meta["etag"].as_str().unwrap()), etag);
    let methods: Vec<(&str, bool)> = meta["methods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["name"].as_str().unwrap(), m["mutating"].as_bool().unwrap()))
        .collect();
    assert!(methods.contains(&("increment", true)));
    assert!(methods.contains(&("total", false)));
    assert_eq!(body["data"]["count"], 0);

    // If-None-Match with the current tag: 304 with the tag, no body.
    let r =
        s.client.get(s.url("/root/counter")).header("if-none-match", &etag).send().await.unwrap();
    assert_eq!(r.status(), 304);
    assert_eq!(header(&r, "etag"), etag);
    assert!(r.headers().contains_key("trace-id"));
    assert!(r.bytes().await.unwrap().is_empty());
    // A stale tag: the full answer.
    let r = s.client.get(s.url("/root/counter")).header("if-none-match", "\"stale\"").send().await;
    assert_eq!(r.unwrap().status(), 200);
    // HEAD: headers only.
    let r = s.client.head(s.url("/root/counter")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "etag"), etag);

    // The root container is a resource too.
    let r = s.get("/root").await;
    assert_eq!(r.status(), 200);
    let root: Value = r.json().await.unwrap();
    assert_eq!(root["meta"]["uri"], "/root");

    let r = s.client.delete(s.url("/root/counter")).send().await.unwrap();
    assert_eq!(header(&r, "allow"), "GET, HEAD, PUT, PATCH");
    problem(r, 405).await;
}

#[tokio::test]
async fn put_replaces_data_with_if_match() {
    let s = serve().await;
    let counter = s.counter("counter").await;
    let url = s.url("/root/counter");
    let etag = s.etag("/root/counter").await;
    let data = json!({"count": 41, "start_delay_ms": 0, "stop_delay_ms": 0, "blob": ""});

    // 428 without If-Match; nothing changes.
    let body = problem(s.client.put(&url).json(&data).send().await.unwrap(), 428).await;
    assert_eq!(body["type"], "urn:kinesis:problem:precondition-required");
    assert_eq!(counter.snapshot().state.count, 0);

    // 200 with the current tag: the new representation and tag.
    let r = s.client.put(&url).header("if-match", &etag).json(&data).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let new_etag = header(&r, "etag");
    assert_ne!(new_etag, etag);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["data"]["count"], 41);
    assert_eq!(body["meta"]["version"], 2);
    assert_eq!(format!("\"{}\"", body["meta"]["etag"].as_str().unwrap()), new_etag);
    assert_eq!(counter.snapshot().state.count, 41);

    // 412 with the stale tag; the body and header name the current one.
    let r = s.client.put(&url).header("if-match", &etag).json(&data).send().await.unwrap();
    assert_eq!(header(&r, "etag"), new_etag);
    let body = problem(r, 412).await;
    assert_eq!(body["current_etag"], new_etag.as_str());
    // A weak tag never matches If-Match.
    let weak = format!("W/{new_etag}");
    problem(s.client.put(&url).header("if-match", weak).json(&data).send().await.unwrap(), 412)
        .await;

    // `*` matches any tag.
    let star = json!({"count": 7, "start_delay_ms": 0, "stop_delay_ms": 0, "blob": ""});
    let r = s.client.put(&url).header("if-match", "*").json(&star).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(counter.snapshot().state.count, 7);

    // 422: JSON that does not fit the component, naming the field.
    let body = problem(
        s.client
            .put(&url)
            .header("if-match", "*")
            .json(&json!({"count": "seven"}))
            .send()
            .await
            .unwrap(),
        422,
    )
    .await;
    assert!(body["detail"].as_str().unwrap().contains("count"), "{body}");
    // 400: not JSON. 415: not a JSON content type.
    let r = s.client.put(&url).header("if-match", "*").header("content-type", "application/json");
    problem(r.body("{\"count\":").send().await.unwrap(), 400).await;
    let r = s.client.put(&url).header("if-match", "*").header("content-type", "text/plain");
    problem(r.body("{}").send().await.unwrap(), 415).await;
    assert_eq!(counter.snapshot().state.count, 7);
}

#[tokio::test]
async fn patch_applies_a_merge_patch_with_if_match() {
    let s = serve().await;
    let counter = s.counter("counter").await;
    let url = s.url("/root/counter");
    let etag = s.etag("/root/counter").await;
    let merge = |etag: &str| {
        s.client
            .patch(&url)
            .header("if-match", etag)
            .header("content-type", "application/merge-patch+json")
    };

    let r = merge(&etag).body(r#"{"count": 5}"#).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let etag2 = header(&r, "etag");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["data"]["count"], 5);
    assert_eq!(body["data"]["blob"], "");
    assert_eq!(counter.snapshot().state.count, 5);

    // application/json is accepted as a merge patch too.
    let r = s.client.patch(&url).header("if-match", &etag2).json(&json!({"blob": "b"})).send();
    let r = r.await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(counter.snapshot().state.blob, "b");
    assert_eq!(counter.snapshot().state.count, 5);

    problem(merge(&etag2).body(r#"{"count": 6}"#).send().await.unwrap(), 412).await;
    let r = s.client.patch(&url).header("content-type", "application/merge-patch+json");
    problem(r.body(r#"{"count": 6}"#).send().await.unwrap(), 428).await;
    let r = s.client.patch(&url).header("if-match", "*");
    let r = r.header("content-type", "application/json-patch+json").body("[]").send().await;
    let r = r.unwrap();
    assert_eq!(header(&r, "accept-patch"), "application/merge-patch+json");
    problem(r, 415).await;
    problem(merge("*").body(r#"{"count": -1}"#).send().await.unwrap(), 422).await;
    problem(merge("*").body("{").send().await.unwrap(), 400).await;
    assert_eq!(counter.snapshot().state.count, 5);
}

#[tokio::test]
async fn post_calls_mutating_methods_with_named_arguments() {
    let s = serve().await;
    let counter = s.counter("counter").await;
    let r = s.post_json("/root/counter/increment", json!({"by": 3})).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap(), json!(3));
    assert_eq!(counter.snapshot().state.count, 3);

    // Optional If-Match: current passes, stale is 412 and changes nothing.
    let etag = s.etag("/root/counter").await;
    let call = |tag: &str| {
        s.client
            .post(s.url("/root/counter/increment"))
            .header("if-match", tag)
            .json(&json!({"by": 1}))
    };
    assert_eq!(call(&etag).send().await.unwrap().status(), 200);
    let body = problem(call(&etag).send().await.unwrap(), 412).await;
    assert_eq!(body["current_etag"], counter.etag().quoted());
    assert_eq!(counter.snapshot().state.count, 4);

    // Arguments that do not fit: 422 naming the argument; not an object: 422.
    let body = problem(s.post_json("/root/counter/increment", json!({"by": "x"})).await, 422).await;
    assert!(body["detail"].as_str().unwrap().contains("by"), "{body}");
    problem(s.post_json("/root/counter/increment", json!({"by": 1, "extra": 2})).await, 422).await;
    problem(s.post_json("/root/counter/increment", json!([1])).await, 422).await;
    // No body at all is no arguments; `total` needs none. The content type
    // is needed even then (no cross-site form can send it).
    let r = s.client.post(s.url("/root/counter/total")).send().await.unwrap();
    problem(r, 415).await;
    let r = s
        .client
        .post(s.url("/root/counter/total"))
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap(), json!(4));
    // Unknown method: 404. A mutating method over GET: 405, Allow: POST.
    let body = problem(s.post_json("/root/counter/nope", json!({})).await, 404).await;
    assert!(body["detail"].as_str().unwrap().contains("nope"));
    let r = s.get("/root/counter/increment?by=1").await;
    assert_eq!(header(&r, "allow"), "POST");
    problem(r, 405).await;
    let r = s.client.put(s.url("/root/counter/total")).json(&json!({})).send().await.unwrap();
    assert_eq!(header(&r, "allow"), "GET, HEAD, POST");
    problem(r, 405).await;
    assert_eq!(counter.snapshot().state.count, 4);
}

#[tokio::test]
async fn get_calls_read_only_methods_with_query_arguments() {
    let s = serve().await;
    let counter = s.counter("counter").await;
    counter.increment(9).await.unwrap();
    let r = s.get("/root/counter/total").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap(), json!(9));

    let r = s.get("/root/counter/echo?a=3&b=ada").await;
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"a": 3, "b": "ada"}));
    let r = s.get("/root/counter/echo?a=%223%22&b=%7B%22x%22%3A%5B1%2Ctrue%5D%7D").await;
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"a": "3", "b": {"x": [1, true]}}));
    let r = s.get("/root/counter/echo").await;
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"a": null, "b": null}));
    problem(s.get("/root/counter/echo?a=1&a=2").await, 400).await;
    problem(s.get("/root/counter/echo?zzz=1").await, 422).await;
    problem(s.get("/root/counter/nope").await, 404).await;
}

#[tokio::test]
async fn control_restarts_persists_notifies_and_stops() {
    let s = serve().await;
    let counter = s.counter("counter").await;
    for op in ["restart", "persist", "notify"] {
        let r = s.post_json("/root/counter/_control", json!({"op": op})).await;
        assert_eq!(r.status(), 200, "{op}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body, json!({"op": op, "uri": "/root/counter", "stage": "Started"}));
    }
    let body = problem(s.post_json("/root/counter/_control", json!({"op": "explode"})).await, 422);
    assert!(body.await["detail"].as_str().unwrap().contains("explode"));
    problem(s.post_json("/root/counter/_control", json!({})).await, 422).await;
    let r = s.get("/root/counter/_control").await;
    assert_eq!(header(&r, "allow"), "POST");
    problem(r, 405).await;
    assert_eq!(counter.stage(), kinesis::Stage::Started);

    let r = s.post_json("/root/counter/_control", json!({"op": "stop"})).await;
    assert_eq!(r.json::<Value>().await.unwrap()["stage"], "TornDown");
    assert_eq!(counter.stage(), kinesis::Stage::TornDown);
    problem(s.get("/root/counter").await, 404).await;
}

#[tokio::test]
async fn every_error_kind_has_its_status_and_a_problem_body() {
    let s = serve().await;
    s.counter("counter").await;
    let cases = [
        ("not_found", 404, "not-found"),
        ("conflict", 409, "conflict"),
        ("not_started", 409, "not-started"),
        ("stopping", 503, "stopping"),
        ("timeout", 504, "timeout"),
        ("invalid", 422, "invalid"),
        ("handler", 500, "handler-failed"),
        ("store", 503, "store-unavailable"),
        ("crypto", 500, "crypto"),
        ("config", 500, "configuration"),
    ];
    for (kind, status, slug) in cases {
        let r = s.post_json("/root/counter/fail", json!({ "kind": kind })).await;
        let body = problem(r, status).await;
        assert_eq!(body["type"], format!("urn:kinesis:problem:{slug}"), "{kind}");
    }
    // With If-Match, a conflict is the client's failed precondition.
    let r = s.client.post(s.url("/root/counter/fail")).header("if-match", "*");
    let body = problem(r.json(&json!({"kind": "conflict"})).send().await.unwrap(), 412).await;
    assert_eq!(body["current_etag"], kinesis::ETag::of(b"00", None).quoted());

    // A panic is a 500 and does not take the server down.
    let victim = s.runtime.root().add("victim", Counter::default()).await.unwrap();
    let body = problem(s.post_json("/root/victim/explode", json!({})).await, 500).await;
    assert_eq!(body["type"], "urn:kinesis:problem:panicked");
    assert!(body["detail"].as_str().unwrap().contains("boom"));
    victim.wait_for_stage(kinesis::Stage::TornDown).await;
    assert_eq!(s.get("/root/counter").await.status(), 200);
}

#[tokio::test]
async fn request_timeout_is_a_504_problem() {
    let s =
        serve_with(common::options_with(|o| o.request_timeout = Duration::from_millis(300))).await;
    s.counter("counter").await;
    let body = problem(s.get("/root/counter/wait?ms=2000").await, 504).await;
    assert_eq!(body["type"], "urn:kinesis:problem:timeout");
    assert_eq!(s.get("/root/counter/wait?ms=10").await.status(), 200);
    // A method that waits inside the mailbox: the layer's timeout answers.
    let slow = s.post_json("/root/counter/slow_increment", json!({"ms": 2000})).await;
    let body = problem(slow, 504).await;
    assert_eq!(body["type"], "urn:kinesis:problem:timeout");
}

#[tokio::test]
async fn trace_ids_come_from_the_request_or_are_new() {
    let s = serve().await;
    s.counter("counter").await;
    let get = |name: &'static str, value: &'static str| {
        s.client.get(s.url("/root/nothing")).header(name, value).send()
    };
    let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let r = get("traceparent", tp).await.unwrap();
    assert_eq!(header(&r, "trace-id"), "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(problem(r, 404).await["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
    let r = get("TraceID", "0b0f4f2e-6a8f-4c1b-9f55-8f1f0f5b2a11").await.unwrap();
    assert_eq!(header(&r, "trace-id"), "0b0f4f2e-6a8f-4c1b-9f55-8f1f0f5b2a11");
    let r = get("Trace-ID", "cafe01").await.unwrap();
    assert_eq!(header(&r, "trace-id"), "cafe01");
    // Invalid ids are replaced by new ones, different every time.
    let a = header(&get("Trace-ID", "not a trace id!").await.unwrap(), "trace-id");
    let b = header(&s.get("/root/counter").await, "trace-id");
    let c = header(&s.get("/root/counter").await, "trace-id");
    for id in [&a, &b, &c] {
        assert_eq!(id.len(), 32, "{id}");
        assert!(id.bytes().all(|x| x.is_ascii_hexdigit()));
    }
    assert_ne!(b, c);
}
