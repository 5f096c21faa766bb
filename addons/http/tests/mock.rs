//! A mock (`kinesis::testing::Mock`) standing at `/root/counter` in place of
//! the demo's Counter: served by a real server on 127.0.0.1 like any
//! component, its calls recorded.

mod common;

use kinesis::testing::{Mock, TestRuntime};
use serde_json::{json, Value};

use common::{options, problem};

#[tokio::test]
async fn a_mock_counter_is_served_like_the_real_one() {
    let rt = TestRuntime::memory().await;
    let counter = Mock::new()
        .state(json!({"count": 0}))
        .mutating("increment", |args| Ok(json!(40 + args["by"].as_u64().unwrap_or(1))))
        .mutating("reset", |_| Ok(json!(0)))
        .read_only("total", |args| Ok(json!({"asked": args})));
    rt.root().add("counter", counter.clone()).await.unwrap();
    let server = common::serve_runtime(rt.runtime().clone(), options()).await;

    // POST {uri}/{method}, with the content type every POST needs.
    let r = server.post_json("/root/counter/increment", json!({"by": 2})).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap(), json!(42));
    assert_eq!(counter.calls("increment"), [json!({"by": 2})]);

    // GET {uri}/{method} for a read-only method, arguments from the query.
    let r = server.get("/root/counter/total?x=1").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"asked": {"x": 1}}));
    assert_eq!(counter.calls("total"), [json!({"x": 1})]);

    // The resource itself: its state and its methods in `meta`.
    let body: Value = server.get("/root/counter").await.json().await.unwrap();
    assert_eq!(body["data"], json!({"count": 0}));
    let methods: Vec<(String, bool)> = body["meta"]["methods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["name"].as_str().unwrap().to_owned(), m["mutating"].as_bool().unwrap()))
        .collect();
    assert_eq!(
        methods,
        [("increment".to_owned(), true), ("reset".to_owned(), true), ("total".to_owned(), false)]
    );

    // A mutating method is not callable with GET; an unknown one is 404.
    assert_eq!(server.get("/root/counter/increment").await.status(), 405);
    problem(server.post_json("/root/counter/nope", json!({})).await, 404).await;
    assert!(counter.calls("nope").is_empty());
    assert_eq!(counter.all_calls().len(), 2);

    // The batch endpoint reaches the mock's methods too.
    let r = server
        .post_json(
            "/root/counter/_batch",
            json!([{"method": "reset"}, {"method": "increment", "args": {"by": 1}}]),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"results": [0, 41]}));
    assert_eq!(counter.calls("reset"), [Value::Null]);

    drop(server);
    assert!(rt.shutdown().await.clean);
}
