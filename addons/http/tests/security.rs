//! Security at the edge, against a real server on 127.0.0.1: the
//! authentication × authorisation matrix, static API tokens, the caller in
//! handlers, CSRF, DNS rebinding, CORS, the rate limit and the full
//! mailbox. Every refusal is a problem+json body.

mod common;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use common::{header, options_with, problem, serve_with, Server};
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use kinesis::config::from_pairs;
use kinesis::{Component, Context, Result};
use kinesis_http::security::{new_token, SecurityConfig};
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::sync::Notify;

const SECRET: &str = "a-test-secret-that-is-long-enough-for-hs256";
const ISSUER: &str = "https://issuer.test";
const AUDIENCE: &str = "kinesis-test";

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// A signed token with `scope`, valid for an hour unless `claims` says otherwise.
fn jwt(scope: &str, claims: Value, secret: &str) -> String {
    let mut body = json!({
        "sub": "tester", "scope": scope, "iss": ISSUER, "aud": AUDIENCE, "exp": now() + 3600,
    });
    for (k, v) in claims.as_object().unwrap() {
        body[k] = v.clone();
    }
    encode(&Header::new(Algorithm::HS256), &body, &EncodingKey::from_secret(secret.as_bytes()))
        .unwrap()
}

/// An unsigned token (`alg: none`) with every grant.
fn unsigned() -> String {
    let head = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let body = json!({"sub": "mallory", "scope": "admin:/**", "iss": ISSUER, "aud": AUDIENCE, "exp": now() + 3600});
    format!("{head}.{}.", URL_SAFE_NO_PAD.encode(body.to_string()))
}

fn security(vars: &[(&str, &str)]) -> SecurityConfig {
    SecurityConfig::from_lookup(&from_pairs(vars)).expect("valid security settings")
}

async fn jwt_server() -> Server {
    let sec = security(&[
        ("KINESIS_AUTH_JWT_SECRET", SECRET),
        ("KINESIS_AUTH_JWT_ISSUER", ISSUER),
        ("KINESIS_AUTH_JWT_AUDIENCE", AUDIENCE),
    ]);
    let s = serve_with(options_with(|o| o.security = sec)).await;
    s.counter("counter").await;
    s
}

/// One route kind of the matrix: a request and the verb it needs.
struct Route {
    name: &'static str,
    method: Method,
    path: &'static str,
    body: Option<Value>,
}

fn routes() -> Vec<Route> {
    let r = |name, method, path, body| Route { name, method, path, body };
    vec![
        r("GET state", Method::GET, "/root/counter", None),
        r("GET /", Method::GET, "/", None),
        r("_watch", Method::GET, "/root/counter/_watch", None),
        r("read-only method", Method::GET, "/root/counter/total", None),
        r("PUT", Method::PUT, "/root/counter", Some(json!({"count": 1}))),
        r("PATCH", Method::PATCH, "/root/counter", Some(json!({"count": 2}))),
        r("mutating method", Method::POST, "/root/counter/increment", Some(json!({"by": 1}))),
        r(
            "_batch",
            Method::POST,
            "/root/counter/_batch",
            Some(json!([{"method": "increment", "args": {"by": 1}}])),
        ),
        r("_control", Method::POST, "/root/counter/_control", Some(json!({"op": "notify"}))),
    ]
}

async fn send(s: &Server, route: &Route, token: Option<&str>) -> reqwest::Response {
    let mut req = s.client.request(route.method.clone(), s.url(route.path));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(body) = &route.body {
        let ct = if route.method == Method::PATCH {
            "application/merge-patch+json"
        } else {
            "application/json"
        };
        req = req.header("content-type", ct).body(body.to_string());
        if route.method != Method::POST {
            req = req.header("if-match", "*");
        }
    }
    req.send().await.expect("request sent")
}

/// Every route kind × every kind of token gets the right status; every
/// refusal is problem+json, and every 401 says `WWW-Authenticate: Bearer`.
#[tokio::test]
async fn the_matrix_of_tokens_and_routes() {
    let s = jwt_server().await;
    let all = |status: u16| [status; 9];
    //                         GET  /    watch ro   PUT  PATCH mut  batch ctl
    let read = [200, 200, 200, 200, 403, 403, 403, 403, 403];
    let write = [403, 403, 403, 403, 200, 200, 200, 200, 403];
    let control = [403, 403, 403, 403, 403, 403, 403, 403, 200];
    let cases: Vec<(&str, Option<String>, [u16; 9])> = vec![
        ("no token", None, all(401)),
        ("expired", Some(jwt("admin:/**", json!({"exp": now() - 120}), SECRET)), all(401)),
        ("not yet valid", Some(jwt("admin:/**", json!({"nbf": now() + 600}), SECRET)), all(401)),
        (
            "wrong signature",
            Some(jwt("admin:/**", json!({}), "another-secret-that-is-long-enough-too")),
            all(401),
        ),
        ("alg none", Some(unsigned()), all(401)),
        (
            "wrong issuer",
            Some(jwt("admin:/**", json!({"iss": "https://evil.test"}), SECRET)),
            all(401),
        ),
        ("wrong audience", Some(jwt("admin:/**", json!({"aud": "other"}), SECRET)), all(401)),
        ("no exp", Some(jwt("admin:/**", json!({"exp": null}), SECRET)), all(401)),
        ("read", Some(jwt("read:/root/**", json!({}), SECRET)), read),
        ("write", Some(jwt("write:/root/**", json!({}), SECRET)), write),
        ("control", Some(jwt("control:/root/counter", json!({}), SECRET)), control),
        ("admin", Some(jwt("admin:/**", json!({}), SECRET)), all(200)),
        // The tree is readable with any read grant; the counter is not.
        (
            "another URI",
            Some(jwt("admin:/root/other", json!({}), SECRET)),
            [403, 200, 403, 403, 403, 403, 403, 403, 403],
        ),
        (
            "scope as a list",
            Some(jwt("", json!({"scope": ["read:/root/counter", "write:/root/counter"]}), SECRET)),
            [200, 200, 200, 200, 200, 200, 200, 200, 403],
        ),
    ];
    for (who, token, expected) in &cases {
        for (route, want) in routes().iter().zip(expected) {
            let r = send(&s, route, token.as_deref()).await;
            let got = r.status().as_u16();
            assert_eq!(got, *want, "{who} × {}", route.name);
            if got == 401 {
                assert!(
                    header(&r, "www-authenticate").starts_with("Bearer"),
                    "{who} × {}",
                    route.name
                );
            }
            if got >= 400 {
                let body = problem(r, got).await;
                assert!(!body.to_string().contains(SECRET));
            }
        }
    }
}

/// An expired token that verified once (and sits in the verifier's cache)
/// is refused when it expires; `nbf` within the leeway is accepted.
#[tokio::test]
async fn cached_tokens_still_expire_and_leeway_applies() {
    let s = jwt_server().await;
    let route = &routes()[0];
    // Expired 10 s ago: inside the 30 s leeway, accepted.
    let t = jwt("read:/**", json!({"exp": now() - 10}), SECRET);
    assert_eq!(send(&s, route, Some(&t)).await.status(), 200);
    // Not before 10 s from now: inside the leeway, accepted.
    let t = jwt("read:/**", json!({"nbf": now() + 10}), SECRET);
    assert_eq!(send(&s, route, Some(&t)).await.status(), 200);
    let t = jwt("read:/**", json!({"exp": now() - 60}), SECRET);
    let body = problem(send(&s, route, Some(&t)).await, 401).await;
    assert!(body["detail"].as_str().unwrap().contains("expired"), "{body}");
}

/// Static API tokens from a tokens file: the token is found by its hash,
/// an unknown one is 401, and its grants apply.
#[tokio::test]
async fn static_tokens_from_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let (reader, line) = new_token("reader", "read:/root/**").unwrap();
    let path = dir.path().join("tokens");
    std::fs::write(&path, format!("# test tokens\n{line}\n")).unwrap();
    assert!(!std::fs::read_to_string(&path).unwrap().contains(reader.as_str()));
    let sec = security(&[("KINESIS_AUTH_TOKENS_FILE", path.to_str().unwrap())]);
    let s = serve_with(options_with(|o| o.security = sec)).await;
    s.counter("counter").await;
    let routes = routes();
    assert_eq!(send(&s, &routes[0], Some(&reader)).await.status(), 200);
    problem(send(&s, &routes[6], Some(&reader)).await, 403).await;
    let (stranger, _) = new_token("stranger", "admin").unwrap();
    problem(send(&s, &routes[0], Some(&stranger)).await, 401).await;
    problem(send(&s, &routes[0], Some("not-a-token")).await, 401).await;
}

/// A component that records who called it.
#[derive(Clone, Default, Serialize, Deserialize)]
struct Ledger {
    last_caller: String,
}
impl Component for Ledger {}

#[kinesis::handlers]
impl Ledger {
    /// Records the caller's subject.
    pub fn touch(&mut self, ctx: &mut Context<Self>) -> Result<String> {
        self.last_caller = ctx.caller().map_or("nobody", |c| c.subject()).to_owned();
        Ok(self.last_caller.clone())
    }
}

/// The caller's identity reaches the handler through `ctx.caller()`.
#[tokio::test]
async fn handlers_see_the_caller() {
    let s = jwt_server().await;
    let ledger = s.runtime.root().add("ledger", Ledger::default()).await.unwrap();
    let token = jwt("write:/root/ledger", json!({"sub": "alice"}), SECRET);
    let r = s
        .client
        .post(s.url("/root/ledger/touch"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap(), json!("alice"));
    assert_eq!(ledger.snapshot().state.last_caller, "alice");
    // In-process typed calls carry no caller.
    assert_eq!(ledger.touch().await.unwrap(), "nobody");
}

/// CSRF: a state-changing request from a foreign origin is refused, with a
/// body or without one and whatever its content type; a request without a
/// JSON content type is refused too (what a `no-cors` fetch or a form can
/// send); an allowed origin works, with its CORS preflight answered.
#[tokio::test]
async fn cross_site_requests_are_refused_and_allowed_origins_work() {
    let sec = security(&[("KINESIS_HTTP_CORS_ORIGINS", "https://app.example")]);
    let s = serve_with(options_with(|o| o.security = sec)).await;
    let counter = s.counter("counter").await;
    let post = |origin: Option<&str>, ct: Option<&str>| {
        let mut req = s.client.post(s.url("/root/counter/increment"));
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        if let Some(ct) = ct {
            req = req.header("content-type", ct).body(r#"{"by": 1}"#);
        }
        req
    };
    // What `fetch(…, {method: 'POST', mode: 'no-cors'})` sends: no body, or text/plain.
    let body = problem(post(Some("https://evil.example"), None).send().await.unwrap(), 403).await;
    assert!(body["detail"].as_str().unwrap().contains("evil.example"), "{body}");
    problem(post(Some("https://evil.example"), Some("text/plain")).send().await.unwrap(), 403)
        .await;
    problem(
        post(Some("https://evil.example"), Some("application/json")).send().await.unwrap(),
        403,
    )
    .await;
    problem(post(Some("null"), Some("application/json")).send().await.unwrap(), 403).await;
    // No origin (curl), but a form's content type: 415.
    problem(post(None, Some("application/x-www-form-urlencoded")).send().await.unwrap(), 415).await;
    problem(post(None, Some("text/plain")).send().await.unwrap(), 415).await;
    assert_eq!(counter.snapshot().state.count, 0, "no refused request ran");

    // The allowed origin: preflight, then the request.
    let preflight = s
        .client
        .request(Method::OPTIONS, s.url("/root/counter/increment"))
        .header("origin", "https://app.example")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type, authorization")
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success(), "{}", preflight.status());
    assert_eq!(header(&preflight, "access-control-allow-origin"), "https://app.example");
    assert!(header(&preflight, "access-control-allow-methods").contains("POST"));
    let r = post(Some("https://app.example"), Some("application/json")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "access-control-allow-origin"), "https://app.example");
    assert_eq!(counter.snapshot().state.count, 1);
    // A foreign origin's preflight gets no permission.
    let preflight = s
        .client
        .request(Method::OPTIONS, s.url("/root/counter/increment"))
        .header("origin", "https://evil.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert!(preflight.headers().get("access-control-allow-origin").is_none());
    // Same origin (a page this server serves) is allowed.
    let own = format!("http://{}", s.addr);
    let r = s
        .client
        .post(s.url("/root/counter/increment"))
        .header("origin", own)
        .header("host", s.addr.to_string())
        .header("content-type", "application/json")
        .body(r#"{"by": 1}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

/// DNS rebinding: a foreign `Host` is refused; the bound IP, `localhost`
/// and an allowed host are served.
#[tokio::test]
async fn foreign_hosts_are_refused() {
    let sec = security(&[("KINESIS_HTTP_ALLOWED_HOSTS", "kinesis.internal")]);
    let s = serve_with(options_with(|o| o.security = sec)).await;
    s.counter("counter").await;
    let port = s.addr.port();
    let get = |host: String| s.client.get(s.url("/root/counter")).header("host", host).send();
    let body = problem(get(format!("evil.example:{port}")).await.unwrap(), 403).await;
    assert!(body["detail"].as_str().unwrap().contains("evil.example"), "{body}");
    problem(get(format!("10.1.2.3:{port}")).await.unwrap(), 403).await;
    for ok in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        "LOCALHOST".into(),
        format!("kinesis.internal:{port}"),
    ] {
        assert_eq!(get(ok.clone()).await.unwrap().status(), 200, "{ok}");
    }
}

/// The rate limit answers 429 with `Retry-After` past the burst, and
/// recovers.
#[tokio::test]
async fn the_rate_limit_answers_429_and_recovers() {
    let sec = security(&[("KINESIS_HTTP_RATE_LIMIT", "5/s")]);
    let s = serve_with(options_with(|o| o.security = sec)).await;
    s.counter("counter").await;
    for i in 0..5 {
        assert_eq!(s.get("/root/counter").await.status(), 200, "request {i} of the burst");
    }
    let r = s.get("/root/counter").await;
    assert_eq!(header(&r, "retry-after"), "1");
    let body = problem(r, 429).await;
    assert!(body["detail"].as_str().unwrap().contains("KINESIS_HTTP_RATE_LIMIT"), "{body}");
    // One request's worth of allowance comes back every 200 ms.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let status = s.get("/root/counter").await.status();
        if status == 200 {
            break;
        }
        assert_eq!(status, 429);
        assert!(tokio::time::Instant::now() < deadline, "the limit did not recover in 5 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Holds its mailbox until told.
#[derive(Clone, Default, Serialize, Deserialize)]
struct Held {
    n: u64,
    #[serde(skip)]
    gate: Arc<(Notify, Notify)>,
}
impl Component for Held {}

#[kinesis::handlers]
impl Held {
    /// Holds the mailbox until the test releases it.
    pub async fn hold(&mut self) {
        self.gate.0.notify_one();
        self.gate.1.notified().await;
    }

    /// Adds one.
    pub fn bump(&mut self) -> u64 {
        self.n += 1;
        self.n
    }
}

/// A full mailbox answers 503 with `Retry-After` at once instead of
/// queueing the request.
#[tokio::test]
async fn a_full_mailbox_answers_503_with_retry_after() {
    let s = serve_with(common::options()).await;
    let held = Held::default();
    let gate = Arc::clone(&held.gate);
    let h = s.runtime.root().add("held", held).await.unwrap();
    let holder = h.clone();
    tokio::spawn(async move { holder.hold().await });
    gate.0.notified().await;
    // Fill the mailbox behind the held handler.
    let mut queued = Vec::new();
    for _ in 0..1024 {
        let h = h.clone();
        queued.push(tokio::spawn(async move { h.bump().await }));
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while h.queued() < 1024 {
        assert!(tokio::time::Instant::now() < deadline, "only {} queued", h.queued());
        tokio::task::yield_now().await;
    }
    let r = s
        .client
        .post(s.url("/root/held/bump"))
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(header(&r, "retry-after"), "1");
    let body = problem(r, 503).await;
    assert_eq!(body["type"], "urn:kinesis:problem:overloaded");
    gate.1.notify_one();
    for q in queued {
        q.await.unwrap().unwrap();
    }
    assert_eq!(h.snapshot().state.n, 1024, "the refused request did not run");
}

/// The operations routes under auth: health and ready are open; metrics,
/// diagnostics, tasks and the OpenAPI document need `read:/_kinesis/**`;
/// cancelling a task needs `control`. Each entry of
/// `kinesis_http::ops::ROUTE_KINDS` is checked.
#[tokio::test]
async fn operations_routes_follow_the_access_rules() {
    let s = jwt_server().await;
    let reader = jwt("read:/_kinesis/**", json!({}), SECRET);
    let app_reader = jwt("read:/root/**", json!({}), SECRET);
    let controller = jwt("control:/_kinesis/**", json!({}), SECRET);
    let mut kinds = kinesis_http::ops::ROUTE_KINDS.to_vec();
    kinds.push(("read", "GET", "/_kinesis/openapi.json"));
    for (kind, method, pattern) in kinds {
        let path = pattern.replace("{id}", "404");
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let status = |token: Option<String>| {
            let mut req = s.client.request(method.clone(), s.url(&path));
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            async move { req.send().await.unwrap().status().as_u16() }
        };
        // "Passed the guard": anything but 401 and 403 (an unknown task is 404).
        let passes = |code: u16| code != 401 && code != 403;
        match kind {
            "open" => {
                let code = status(None).await;
                assert!(passes(code), "{path} without a token: {code}");
            }
            "read" => {
                assert_eq!(status(None).await, 401, "{path}");
                assert_eq!(status(Some(app_reader.clone())).await, 403, "{path}");
                let code = status(Some(reader.clone())).await;
                assert!(passes(code), "{path} with read:/_kinesis/**: {code}");
            }
            "control" => {
                assert_eq!(status(None).await, 401, "{path}");
                assert_eq!(status(Some(reader.clone())).await, 403, "{path}");
                let code = status(Some(controller.clone())).await;
                assert!(passes(code), "{path} with control:/_kinesis/**: {code}");
            }
            other => panic!("unknown route kind {other}"),
        }
    }
}
