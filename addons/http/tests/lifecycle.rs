//! Routes follow the component lifecycle; the server is a component with its
//! own lifecycle: bind errors fail its start, stop drains requests in flight
//! and refuses new connections.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{in_handler, options, options_with, problem, serve, serve_with, Counter};
use kinesis::{Config, Error, Runtime, Stage};
use kinesis_http::{HttpConfig, HttpOptions, HttpServer};
use serde_json::{json, Value};

#[tokio::test]
async fn routes_disappear_when_a_component_stops_and_come_back_when_it_is_added() {
    let s = serve().await;
    s.counter("counter").await;
    assert_eq!(s.get("/root/counter").await.status(), 200);
    assert_eq!(s.get("/root/counter/total").await.status(), 200);

    let r = s.post_json("/root/counter/_control", json!({"op": "stop"})).await;
    assert_eq!(r.status(), 200);
    problem(s.get("/root/counter").await, 404).await;
    problem(s.get("/root/counter/total").await, 404).await;
    problem(s.post_json("/root/counter/increment", json!({"by": 1})).await, 404).await;
    problem(s.post_json("/root/counter/_control", json!({"op": "restart"})).await, 404).await;
    let tree: Value = s.get("/").await.json().await.unwrap();
    assert!(!tree.to_string().contains("/root/counter"), "{tree}");

    let again = s.runtime.root().add("counter", Counter { count: 5, ..Counter::default() });
    again.await.unwrap();
    let r = s.get("/root/counter").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["data"]["count"], 5);
    let tree: Value = s.get("/").await.json().await.unwrap();
    assert!(tree.to_string().contains("/root/counter"), "{tree}");
}

#[tokio::test]
async fn a_restarting_component_is_409_and_a_stopping_one_503() {
    let s = serve().await;
    let counter = s.counter("counter").await;
    let patch = |body: Value| {
        s.client.patch(s.url("/root/counter")).header("if-match", "*").json(&body).send()
    };
    assert_eq!(patch(json!({"start_delay_ms": 1500})).await.unwrap().status(), 200);

    let restart = tokio::spawn({
        let (client, url) = (s.client.clone(), s.url("/root/counter/_control"));
        async move { client.post(url).json(&json!({"op": "restart"})).send().await.unwrap() }
    });
    wait_for(|| counter.stage() == Stage::Starting).await;
    let body = problem(s.get("/root/counter").await, 409).await;
    assert_eq!(body["type"], "urn:kinesis:problem:not-started");
    problem(s.post_json("/root/counter/increment", json!({"by": 1})).await, 409).await;
    assert_eq!(restart.await.unwrap().status(), 200);
    assert_eq!(s.get("/root/counter").await.status(), 200);

    assert_eq!(patch(json!({"stop_delay_ms": 1500})).await.unwrap().status(), 200);
    let stop = tokio::spawn({
        let (client, url) = (s.client.clone(), s.url("/root/counter/_control"));
        async move { client.post(url).json(&json!({"op": "stop"})).send().await.unwrap() }
    });
    wait_for(|| counter.stage() == Stage::Stopping).await;
    let body = problem(s.get("/root/counter").await, 503).await;
    assert_eq!(body["type"], "urn:kinesis:problem:stopping");
    assert_eq!(stop.await.unwrap().status(), 200);
    problem(s.get("/root/counter").await, 404).await;
}

async fn wait_for(cond: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !cond() {
        assert!(Instant::now() < deadline, "condition not reached in 5 s");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn the_server_is_a_hidden_add_on_with_its_address_as_state() {
    let s = serve().await;
    let json = kinesis::DynComponent::snapshot_json(&s.http).unwrap();
    assert_eq!(json.data, json!({"addr": s.addr.to_string()}));
    assert_eq!(s.http.uri(), "/addons/http");
    assert!(!kinesis::DynComponent::exposed(&s.http));
    assert_eq!(s.http.snapshot().state.options().body_limit, 1024 * 1024);
}

#[tokio::test]
async fn a_port_in_use_fails_the_start_with_a_config_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let runtime = Runtime::builder(Config::default()).start().await.unwrap();
    let server = HttpServer::new(runtime.root().clone(), HttpOptions { addr, ..options() });
    let err = runtime.addons().add("http", server).await.unwrap_err();
    assert!(matches!(err, Error::Config(_)), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("KINESIS_HTTP_ADDR") && msg.contains(&addr.to_string()), "{msg}");

    // The name is free again, and the server starts once the port is.
    drop(taken);
    let server = HttpServer::new(runtime.root().clone(), HttpOptions { addr, ..options() });
    let http = runtime.addons().add("http", server).await.unwrap();
    assert_eq!(http.snapshot().state.local_addr(), Some(addr));
    assert!(runtime.shutdown().await.clean);
}

#[tokio::test]
async fn an_address_not_on_this_machine_fails_through_serve() {
    // 192.0.2.1 is TEST-NET-1: never a local address.
    let config =
        HttpConfig { addr: SocketAddr::from(([192, 0, 2, 1], 8080)), ..HttpConfig::default() };
    let runtime = Runtime::builder(Config::default()).start().await.unwrap();
    let err = kinesis_http::serve(&runtime, &config).await.unwrap_err();
    assert!(matches!(err, Error::Config(_)), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("KINESIS_HTTP_ADDR=192.0.2.1:8080"), "{msg}");
    assert!(runtime.addons().names().is_empty());
}

#[tokio::test]
async fn stop_drains_requests_in_flight_and_refuses_new_connections() {
    let s = serve_with(options_with(|o| o.drain_timeout = Duration::from_secs(10))).await;
    let counter = s.counter("counter").await;
    let slow = tokio::spawn({
        let (client, url) = (s.client.clone(), s.url("/root/counter/slow_increment"));
        async move { client.post(url).json(&json!({"ms": 1500})).send().await }
    });
    in_handler(&counter).await;

    let started = Instant::now();
    let stop = tokio::spawn({
        let http = s.http.clone();
        async move { http.shutdown().await }
    });
    // New connections are refused soon after stop began, while the request
    // in flight is still being served.
    loop {
        if tokio::net::TcpStream::connect(s.addr).await.is_err() {
            break;
        }
        assert!(started.elapsed() < Duration::from_millis(1000), "still accepting connections");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(!slow.is_finished(), "the slow request ended before connections were refused");

    let r = slow.await.unwrap().expect("the request in flight completes");
    assert_eq!(r.status(), 200);
    assert!(r.headers().contains_key("trace-id"));
    assert_eq!(r.json::<Value>().await.unwrap(), json!(1));
    stop.await.unwrap().unwrap();
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(1000), "stop did not wait for the request: {took:?}");
    assert!(took < Duration::from_secs(5), "stop waited for the drain timeout: {took:?}");
    assert!(tokio::net::TcpStream::connect(s.addr).await.is_err());
    assert_eq!(s.http.stage(), Stage::TornDown);
    assert_eq!(s.http.snapshot().state.local_addr(), None);
}

#[tokio::test]
async fn runtime_shutdown_stops_the_server_first_and_reports_clean() {
    let s = serve().await;
    let counter = s.counter("counter").await;
    let slow = tokio::spawn({
        let (client, url) = (s.client.clone(), s.url("/root/counter/slow_increment"));
        async move { client.post(url).json(&json!({"ms": 500})).send().await }
    });
    in_handler(&counter).await;
    let report = s.runtime.shutdown().await;
    assert!(report.clean, "{report:?}");
    assert_eq!(report.exit_code(), 0);
    let r = slow.await.unwrap().expect("the request in flight completes");
    assert_eq!(r.status(), 200);
    assert_eq!(counter.stage(), Stage::TornDown);
    assert!(tokio::net::TcpStream::connect(s.addr).await.is_err());
}

#[tokio::test]
async fn drain_is_bounded_by_the_drain_timeout() {
    let s = serve_with(options_with(|o| o.drain_timeout = Duration::from_millis(300))).await;
    let counter = s.counter("counter").await;
    let slow = tokio::spawn({
        let (client, url) = (s.client.clone(), s.url("/root/counter/wait?ms=5000"));
        async move { client.get(url).send().await }
    });
    in_handler(&counter).await;
    let started = Instant::now();
    s.http.shutdown().await.unwrap();
    let took = started.elapsed();
    assert!(took < Duration::from_secs(2), "stop took {took:?}");
    assert!(tokio::net::TcpStream::connect(s.addr).await.is_err());
    slow.abort();
}
