//! Bad input gets the right 4xx, and the server stays up: malformed JSON,
//! wrong content types, bodies over the limit, unknown methods, path tricks,
//! invalid header values, and a few thousand random and garbled requests.

mod common;

use std::net::SocketAddr;

use common::{header, problem, raw, raw_then_eof, serve, Raw};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

const TWO_MIB: usize = 2 * 1024 * 1024;

/// A request on a connection of its own, closed after the answer.
fn request(method: &str, target: &str, headers: &[(&str, &[u8])], body: &[u8]) -> Vec<u8> {
    let mut bytes =
        format!("{method} {target} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n")
            .into_bytes();
    for (name, value) in headers {
        bytes.extend_from_slice(name.as_bytes());
        bytes.extend_from_slice(b": ");
        bytes.extend_from_slice(value);
        bytes.extend_from_slice(b"\r\n");
    }
    bytes.extend_from_slice(format!("content-length: {}\r\n\r\n", body.len()).as_bytes());
    bytes.extend_from_slice(body);
    bytes
}

async fn send(addr: SocketAddr, bytes: &[u8]) -> Raw {
    raw(addr, bytes).await.expect("an HTTP answer")
}

/// A raw answer that is a problem with `status` and a trace id.
fn assert_problem(r: &Raw, status: u16) -> Value {
    assert_eq!(r.status, status, "{r:?}");
    assert_eq!(r.header("content-type").as_deref(), Some("application/problem+json"), "{r:?}");
    let trace = r.header("trace-id").expect("a trace id");
    let body: Value = serde_json::from_str(&r.body).expect("JSON body");
    assert_eq!(body["status"], status);
    assert_eq!(body["trace_id"], trace.as_str());
    body
}

#[tokio::test]
async fn malformed_json_is_400_everywhere() {
    let s = serve().await;
    let counter = s.counter("counter").await;
    for (method, path) in [
        ("PUT", "/root/counter"),
        ("PATCH", "/root/counter"),
        ("POST", "/root/counter/increment"),
        ("POST", "/root/counter/_control"),
    ] {
        for body in ["{", "{\"by\": 1,}", "nul", "\u{0}", "[1, 2"] {
            let r = s
                .client
                .request(method.parse().unwrap(), s.url(path))
                .header("content-type", "application/json")
                .header("if-match", "*")
                .body(body)
                .send()
                .await
                .unwrap();
            let p = problem(r, 400).await;
            assert_eq!(p["type"], "urn:kinesis:problem:malformed-json", "{method} {path} {body:?}");
        }
    }
    assert_eq!(counter.snapshot().version, 1);
}

#[tokio::test]
async fn wrong_content_types_are_415() {
    let s = serve().await;
    s.counter("counter").await;
    for (method, path, ct) in [
        ("PUT", "/root/counter", "text/plain"),
        ("PUT", "/root/counter", "application/x-www-form-urlencoded"),
        ("PATCH", "/root/counter", "application/json-patch+json"),
        ("PATCH", "/root/counter", "text/json"),
        ("POST", "/root/counter/increment", "text/plain"),
        ("POST", "/root/counter/_control", "multipart/form-data"),
    ] {
        let r = s
            .client
            .request(method.parse().unwrap(), s.url(path))
            .header("content-type", ct)
            .header("if-match", "*")
            .body("{}")
            .send()
            .await
            .unwrap();
        problem(r, 415).await;
    }
    // A body without any content type.
    let r = s.client.put(s.url("/root/counter")).header("if-match", "*").body("{}").send().await;
    problem(r.unwrap(), 415).await;
}

#[tokio::test]
async fn bodies_over_the_limit_are_413_with_or_without_a_length() {
    let s = serve().await;
    let counter = s.counter("counter").await;
    let big = format!("{{\"by\": 1, \"pad\": \"{}\"}}", "x".repeat(TWO_MIB));
    // With a Content-Length: refused before it is read.
    let r = send(
        s.addr,
        &request(
            "POST",
            "/root/counter/increment",
            &[("content-type", b"application/json")],
            big.as_bytes(),
        ),
    )
    .await;
    let p = assert_problem(&r, 413);
    assert!(p["detail"].as_str().unwrap().contains("1048576"), "{p}");
    // Chunked, without a length: refused while it is read.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        big.as_bytes().chunks(64 * 1024).map(|c| Ok(c.to_vec())).collect();
    let r = s
        .client
        .post(s.url("/root/counter/increment"))
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        .send()
        .await;
    if let Ok(r) = r {
        // The server may also close before the client finished sending.
        problem(r, 413).await;
    }
    let r = s
        .client
        .put(s.url("/root/counter"))
        .header("if-match", "*")
        .json(&json!({"blob": "x".repeat(TWO_MIB)}));
    let r = r.send().await;
    if let Ok(r) = r {
        problem(r, 413).await;
    }
    assert_eq!(counter.snapshot().state.count, 0);
    // A body just under the limit is fine.
    let fits = json!({"count": 1, "blob": "x".repeat(1024 * 1024 - 100)});
    let r = s.client.put(s.url("/root/counter")).header("if-match", "*").json(&fits).send().await;
    assert_eq!(r.unwrap().status(), 200);
    assert_eq!(s.get("/").await.status(), 200);
}

#[tokio::test]
async fn unknown_methods_are_405_and_unknown_names_404() {
    let s = serve().await;
    s.counter("counter").await;
    for method in ["DELETE", "OPTIONS", "FOO", "BREW", "TRACE"] {
        let r = send(s.addr, &request(method, "/root/counter", &[], b"")).await;
        assert_problem(&r, 405);
        assert_eq!(r.header("allow").as_deref(), Some("GET, HEAD, PUT, PATCH"), "{method}");
        let r = send(s.addr, &request(method, "/root/counter/increment", &[], b"")).await;
        assert_problem(&r, 405);
    }
    for path in ["/root/counter/nothing", "/root/nothing", "/nothing", "/root/counter/_nothing"] {
        assert_problem(&send(s.addr, &request("GET", path, &[], b"")).await, 404);
    }
}

#[tokio::test]
async fn path_tricks_name_nothing() {
    let s = serve().await;
    s.counter("counter").await;
    let long = format!("/root/{}", "a".repeat(10 * 1024));
    let deep = format!("/root{}", "/a".repeat(1500));
    for path in [
        "/root/../root/counter",
        "/root/counter/..",
        "/root/./counter",
        "/root/counter/../counter",
        "/root%2Fcounter",
        "/root/counter%2Ftotal",
        "/root/%63ounter",
        "//root/counter",
        "/root//counter",
        "/root/counter/",
        "/root/counter/total/",
        "/root/counter/total/x",
        "/ROOT/counter",
        "/root/counter%00",
        deep.as_str(),
    ] {
        let r = send(s.addr, &request("GET", path, &[], b"")).await;
        assert_problem(&r, 404);
    }
    let r = send(s.addr, &request("GET", &long, &[], b"")).await;
    assert_problem(&r, 414);
    // The real thing still works.
    assert_eq!(send(s.addr, &request("GET", "/root/counter", &[], b"")).await.status, 200);
}

#[tokio::test]
async fn invalid_header_values_are_400_or_ignored() {
    let s = serve().await;
    let counter = s.counter("counter").await;
    let body = br#"{"count": 3}"#;
    let ct: (&str, &[u8]) = ("content-type", b"application/json");
    // Not visible ASCII in If-Match or Content-Type: 400.
    for headers in [
        vec![ct, ("if-match", b"\"\xff\xfe\"".as_slice())],
        vec![("content-type", b"application/json\xff".as_slice()), ("if-match", b"*")],
    ] {
        let r = send(s.addr, &request("PUT", "/root/counter", &headers, body)).await;
        assert_problem(&r, 400);
    }
    let r = send(s.addr, &request("GET", "/root/counter", &[("if-none-match", b"\"\xff\"")], b""))
        .await;
    assert!(r.status == 400 || r.status == 200, "{r:?}");
    // Tags that are no entity tags never match: 412.
    for tag in [b"abc".as_slice(), b"\"", b"W/", b",,,"] {
        let r =
            send(s.addr, &request("PUT", "/root/counter", &[ct, ("if-match", tag)], body)).await;
        assert!(r.status == 412 || r.status == 400, "{r:?}");
        assert!(r.header("trace-id").is_some());
    }
    // A garbled trace id is replaced.
    let r = send(s.addr, &request("GET", "/root/counter", &[("trace-id", b"\xff\xfe")], b"")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("trace-id").unwrap().len(), 32);
    // Control characters are refused by the HTTP parser itself.
    let r =
        raw(s.addr, b"GET /root/counter HTTP/1.1\r\nhost: localhost\r\nif-match: a\x01b\r\n\r\n")
            .await;
    assert!(r.as_ref().is_none_or(|r| r.status == 400), "{r:?}");
    assert_eq!(counter.snapshot().version, 1);
    assert_eq!(s.get("/root/counter").await.status(), 200);
}

/// Builds one random request from parts that mean something to the server
/// and parts that do not.
fn random_request(rng: &mut StdRng) -> Vec<u8> {
    const METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "X-Y"];
    const PATHS: &[&str] = &[
        "/",
        "/root",
        "/root/app",
        "/root/app/counter",
        "/root/app/counter/increment",
        "/root/app/counter/total",
        "/root/app/counter/echo",
        "/root/app/counter/_control",
        "/root/app/counter/nope",
        "/root/../root/app",
        "/root/app%2Fcounter",
        "/root//app",
        "/addons/http",
        "/root/app/counter/total?a=1&a=2",
        "/root/app/counter/echo?a=%7B&b=%ZZ",
        "/*",
        "/root/app/counter?x",
    ];
    const CONTENT_TYPES: &[&[u8]] = &[
        b"application/json",
        b"application/merge-patch+json",
        b"text/plain",
        b"application/json; charset=utf-8",
        b"application/\xff",
        b";;;",
        b"",
    ];
    const IF_MATCH: &[&[u8]] = &[b"*", b"\"0\"", b"W/\"0\"", b"garbage", b"\"\xff\"", b"\",\""];
    const BODIES: &[&str] = &[
        "",
        "{}",
        "null",
        "[]",
        "{\"by\": 1}",
        "{\"by\": -1}",
        "{\"by\": 18446744073709551615}",
        "{\"by\": \"x\"}",
        "{\"count\": 1}",
        "{\"count\": null}",
        "{\"op\": \"restart\"}",
        "{\"op\": \"persist\"}",
        "{\"op\": \"notify\"}",
        "{\"op\": 5}",
        "{\"a\": {\"b\": [1, 2, {}]}}",
        "{",
        "\"\\ud800\"",
        "1e999999",
    ];
    let pick = |rng: &mut StdRng, n: usize| rng.gen_range(0..n);
    let method = METHODS[pick(rng, METHODS.len())];
    let mut path = PATHS[pick(rng, PATHS.len())].to_owned();
    if rng.gen_bool(0.1) {
        path.push_str(&"/x".repeat(rng.gen_range(1..3000)));
    }
    let mut headers: Vec<(&str, Vec<u8>)> = Vec::new();
    if rng.gen_bool(0.7) {
        headers.push(("content-type", CONTENT_TYPES[pick(rng, CONTENT_TYPES.len())].to_vec()));
    }
    if rng.gen_bool(0.5) {
        headers.push(("if-match", IF_MATCH[pick(rng, IF_MATCH.len())].to_vec()));
    }
    if rng.gen_bool(0.3) {
        headers.push(("if-none-match", IF_MATCH[pick(rng, IF_MATCH.len())].to_vec()));
    }
    if rng.gen_bool(0.3) {
        let len = rng.gen_range(0..100);
        let id: Vec<u8> = (0..len).map(|_| rng.gen_range(0x21..0x7f)).collect();
        headers.push(("trace-id", id));
    }
    let mut body = BODIES[pick(rng, BODIES.len())].as_bytes().to_vec();
    if rng.gen_bool(0.1) {
        let len = rng.gen_range(0..200);
        body = (0..len).map(|_| rng.gen()).collect();
    }
    let refs: Vec<(&str, &[u8])> = headers.iter().map(|(k, v)| (*k, v.as_slice())).collect();
    let mut bytes = request(method, &path, &refs, &body);
    if rng.gen_bool(0.05) {
        // Garble: flip random bytes anywhere, including the request line.
        for _ in 0..rng.gen_range(1..8) {
            let i = rng.gen_range(0..bytes.len());
            bytes[i] = rng.gen();
        }
    }
    bytes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_random_requests_get_no_5xx_and_the_server_stays_up() {
    let s = serve().await;
    let app = s.runtime.root().add_container("app").await.unwrap();
    app.add("counter", common::Counter::default()).await.unwrap();
    let mut rng = StdRng::seed_from_u64(0x6b696e65);
    let mut statuses = std::collections::BTreeMap::<u16, u32>::new();
    for i in 0..3000 {
        let bytes = random_request(&mut rng);
        let Some(r) = raw_then_eof(s.addr, &bytes).await else {
            // The parser may drop a garbled request without an answer.
            *statuses.entry(0).or_default() += 1;
            continue;
        };
        assert!(r.status < 500, "request {i} {:?} got {r:?}", String::from_utf8_lossy(&bytes));
        if r.status >= 400 && r.header("trace-id").is_some() && !r.body.is_empty() {
            assert_problem(&r, r.status);
        }
        *statuses.entry(r.status).or_default() += 1;
    }
    eprintln!("statuses: {statuses:?}");
    assert!(statuses.keys().filter(|s| **s >= 400).count() >= 6, "{statuses:?}");
    assert!(statuses.get(&200).copied().unwrap_or(0) > 50, "{statuses:?}");
    let r = s.get("/root/app/counter").await;
    assert_eq!(r.status(), 200);
    assert!(!header(&r, "trace-id").is_empty());
}
