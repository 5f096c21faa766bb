//! HTTP load on 127.0.0.1: kinesis-http next to a bare axum service that
//! does the same work.
//!
//! Both servers serve the same paths and JSON:
//!
//! * `GET /root/probe`: the component as `{"meta": {…}, "data": {…}}` with
//!   its `ETag`, serialised per request from the current state;
//! * `POST /root/probe/increment` with `{"by": 1}`: a mutating method; the
//!   new state is serialised and hashed into a new ETag (BLAKE3, as kinesis)
//!   before the reply;
//! * `PUT /root/p{i}` with `If-Match`: replaces the state of one of 64
//!   resources if the ETag is current (else 412); answers like `GET`.
//!
//! The bare service keeps each resource as an `ArcSwap` of (state, ETag,
//! version), written under a per-resource mutex: readers never wait.
//!
//! The load generator is a hyper HTTP/1.1 client with 64 keep-alive
//! connections, each sending its next request as soon as the last answer
//! was read, for a fixed time. For `PUT` connection `i` owns resource
//! `p{i}`: it reads its ETag once, then sends each `PUT` with the ETag the
//! previous answer carried, so no request conflicts. Server and client run
//! on separate 2-worker tokio runtimes of one process (4 threads sharing the
//! machine's cores); no tracing subscriber is installed.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::header::{CONTENT_TYPE, ETAG, IF_MATCH};
use axum::http::{HeaderMap, HeaderValue, Method, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use kinesis::{Component, Config, Runtime};
use kinesis_http::{HttpOptions, HttpServer};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::measure::{per_second, Metrics};

/// Keep-alive connections of the load generator.
pub const CONNECTIONS: usize = 64;

/// The request mixes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// `GET /root/probe`.
    Get,
    /// `POST /root/probe/increment`.
    Post,
    /// `PUT /root/p{i}` with `If-Match`.
    Put,
}

impl Op {
    /// Every op, in report order.
    pub const ALL: [Op; 3] = [Op::Get, Op::Post, Op::Put];

    /// The command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Op::Get => "get",
            Op::Post => "post",
            Op::Put => "put",
        }
    }

    /// The op called `name`.
    pub fn parse(name: &str) -> Option<Op> {
        Op::ALL.into_iter().find(|o| o.name() == name)
    }

    /// How the report describes it.
    pub fn title(self) -> &'static str {
        match self {
            Op::Get => "GET component",
            Op::Post => "POST mutating method",
            Op::Put => "PUT with If-Match",
        }
    }
}

/// The servers: `kinesis-jwt` is kinesis with JWT authentication (HS256),
/// every request carrying a valid bearer token.
pub const SERVERS: [&str; 3] = ["bare-axum", "kinesis", "kinesis-jwt"];

/// The HS256 secret of `kinesis-jwt`.
const JWT_SECRET: &str = "benchmark-secret-benchmark-secret-benchmark";

/// A valid token for `kinesis-jwt`: every grant, an hour to live.
fn bench_token() -> HeaderValue {
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
        + 3600;
    let claims = json!({"sub": "bench", "scope": "admin:/**", "exp": exp});
    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )
    .expect("token");
    HeaderValue::from_str(&format!("Bearer {token}")).expect("header")
}

/// The component served; the bare service serves the same JSON.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Probe {
    count: u64,
    label: String,
}

impl Component for Probe {}

#[kinesis::handlers]
impl Probe {
    /// Adds `by` and returns the new count.
    pub fn increment(&mut self, by: u64) -> u64 {
        self.count += by;
        self.count
    }
}

fn probe() -> Probe {
    Probe { count: 0, label: "bench".into() }
}

/// Names of the `PUT` resources, `p0` to `p63`.
fn put_names() -> impl Iterator<Item = String> {
    (0..CONNECTIONS).map(|i| format!("p{i}"))
}

/// Runs `op` against `server` (one of [`SERVERS`]) for `seconds` after a
/// short warm-up. Metric: `req_per_s`.
pub fn run(op: Op, server: &str, seconds: f64) -> Metrics {
    let server_rt = crate::runtime();
    let client_rt = crate::runtime();
    let token = (server == "kinesis-jwt").then(bench_token);
    let (addr, kinesis) = match server {
        "kinesis" | "kinesis-jwt" => {
            let (addr, rt) = server_rt.block_on(start_kinesis(token.is_some()));
            (addr, Some(rt))
        }
        "bare-axum" => (server_rt.block_on(start_bare()), None),
        other => panic!("unknown server `{other}`"),
    };
    let warm_up = Duration::from_secs_f64((seconds / 5.0).min(0.3));
    client_rt.block_on(load(addr, op, warm_up, token.clone()));
    let (requests, elapsed) =
        client_rt.block_on(load(addr, op, Duration::from_secs_f64(seconds), token));
    if let Some(rt) = kinesis {
        let report = server_rt.block_on(rt.shutdown());
        assert!(report.clean, "kinesis stopped cleanly: {report:?}");
    }
    vec![("req_per_s".to_owned(), per_second(requests, elapsed))]
}

/// kinesis with `probe`, `p0`…`p63` and the HTTP add-on on a free port;
/// with `jwt`, requests must carry a token signed with [`JWT_SECRET`].
async fn start_kinesis(jwt: bool) -> (SocketAddr, Runtime) {
    let runtime = Runtime::builder(Config::default()).start().await.expect("kinesis runtime");
    runtime.root().add("probe", probe()).await.expect("probe");
    for name in put_names() {
        runtime.root().add(&name, probe()).await.expect("put resource");
    }
    let mut options =
        HttpOptions { addr: SocketAddr::from(([127, 0, 0, 1], 0)), ..Default::default() };
    if jwt {
        let vars = [("KINESIS_AUTH_JWT_SECRET", JWT_SECRET)];
        options.security = kinesis_http::security::SecurityConfig::from_lookup(
            &kinesis::config::from_pairs(&vars),
        )
        .expect("JWT settings");
    }
    let http = HttpServer::new(runtime.root().clone(), options);
    let http = runtime.addons().add("http", http).await.expect("HTTP server");
    let addr = http.snapshot().state.local_addr().expect("listening");
    (addr, runtime)
}

// ----- the bare axum service ------------------------------------------------

/// One version of a bare resource.
struct Entity {
    data: Probe,
    /// 32 hex digits.
    tag: String,
    /// The tag quoted, as a header.
    header: HeaderValue,
    version: u64,
}

impl Entity {
    /// Serialises `data` and hashes it into the ETag, as kinesis does.
    fn new(data: Probe, version: u64) -> Entity {
        let bytes = serde_json::to_vec(&data).expect("serialises");
        let hash = blake3::hash(&bytes);
        let tag: String = hash.as_bytes()[..16].iter().map(|b| format!("{b:02x}")).collect();
        let header = HeaderValue::from_str(&format!("\"{tag}\"")).expect("header value");
        Entity { data, tag, header, version }
    }
}

/// A resource: readers load the current entity, writers take the mutex.
struct Resource {
    name: String,
    uri: String,
    current: ArcSwap<Entity>,
    write: Mutex<()>,
}

/// Everything the bare service holds.
struct Bare {
    resources: HashMap<String, Resource>,
    /// The method table shown in `meta`, as kinesis shows it.
    methods: Value,
}

/// The `GET` document.
#[derive(Serialize)]
struct Doc<'a> {
    meta: Meta<'a>,
    data: &'a Probe,
}

#[derive(Serialize)]
struct Meta<'a> {
    name: &'a str,
    uri: &'a str,
    #[serde(rename = "type")]
    type_name: &'static str,
    stage: &'static str,
    state: &'static str,
    etag: &'a str,
    version: u64,
    methods: &'a Value,
}

#[derive(Deserialize)]
struct IncrementArgs {
    by: u64,
}

impl Bare {
    fn document(&self, resource: &Resource, entity: &Entity) -> Response {
        let doc = Doc {
            meta: Meta {
                name: &resource.name,
                uri: &resource.uri,
                type_name: std::any::type_name::<Probe>(),
                stage: "Started",
                state: "Active",
                etag: &entity.tag,
                version: entity.version,
                methods: &self.methods,
            },
            data: &entity.data,
        };
        let body = serde_json::to_vec(&doc).expect("serialises");
        let headers = [
            (CONTENT_TYPE, HeaderValue::from_static("application/json")),
            (ETAG, entity.header.clone()),
        ];
        (headers, body).into_response()
    }
}

async fn bare_get(State(bare): State<Arc<Bare>>, Path(name): Path<String>) -> Response {
    let Some(resource) = bare.resources.get(&name) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    bare.document(resource, &resource.current.load())
}

async fn bare_increment(
    State(bare): State<Arc<Bare>>,
    Path(name): Path<String>,
    body: Bytes,
) -> Response {
    let Some(resource) = bare.resources.get(&name) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let Ok(args) = serde_json::from_slice::<IncrementArgs>(&body) else {
        return StatusCode::UNPROCESSABLE_ENTITY.into_response();
    };
    let count = {
        let _write = resource.write.lock().expect("write lock");
        let current = resource.current.load();
        let mut data = current.data.clone();
        data.count += args.by;
        let count = data.count;
        resource.current.store(Arc::new(Entity::new(data, current.version + 1)));
        count
    };
    let body = serde_json::to_vec(&count).expect("serialises");
    ([(CONTENT_TYPE, HeaderValue::from_static("application/json"))], body).into_response()
}

async fn bare_put(
    State(bare): State<Arc<Bare>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(resource) = bare.resources.get(&name) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let Some(if_match) = headers.get(IF_MATCH).cloned() else {
        return StatusCode::PRECONDITION_REQUIRED.into_response();
    };
    let Ok(data) = serde_json::from_slice::<Probe>(&body) else {
        return StatusCode::UNPROCESSABLE_ENTITY.into_response();
    };
    let entity = {
        let _write = resource.write.lock().expect("write lock");
        let current = resource.current.load();
        if if_match != current.header {
            return (StatusCode::PRECONDITION_FAILED, [(ETAG, current.header.clone())])
                .into_response();
        }
        let entity = Arc::new(Entity::new(data, current.version + 1));
        resource.current.store(Arc::clone(&entity));
        entity
    };
    bare.document(resource, &entity)
}

/// The bare service on a free port.
async fn start_bare() -> SocketAddr {
    let mut resources = HashMap::new();
    for name in std::iter::once("probe".to_owned()).chain(put_names()) {
        let resource = Resource {
            uri: format!("/root/{name}"),
            name: name.clone(),
            current: ArcSwap::from_pointee(Entity::new(probe(), 1)),
            write: Mutex::new(()),
        };
        resources.insert(name, resource);
    }
    let methods = json!([{
        "name": "increment",
        "mutating": true,
        "args": [{"name": "by", "type": "u64"}],
        "returns": "u64",
        "doc": "Adds `by` and returns the new count."
    }]);
    let bare = Arc::new(Bare { resources, methods });
    let app = axum::Router::new()
        .route("/root/{name}", axum::routing::get(bare_get).put(bare_put))
        .route("/root/{name}/increment", axum::routing::post(bare_increment))
        .with_state(bare);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

// ----- the load generator ---------------------------------------------------

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

async fn connect(addr: SocketAddr) -> Sender {
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    let (sender, conn) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.expect("handshake");
    tokio::spawn(conn);
    sender
}

fn request(
    addr: SocketAddr,
    method: Method,
    path: &str,
    body: Bytes,
    if_match: Option<&HeaderValue>,
    token: Option<&HeaderValue>,
) -> Request<Full<Bytes>> {
    let mut builder = Request::builder().method(method).uri(path).header("host", addr.to_string());
    if let Some(token) = token {
        builder = builder.header(axum::http::header::AUTHORIZATION, token);
    }
    if !body.is_empty() {
        builder = builder.header(CONTENT_TYPE, "application/json");
    }
    if let Some(tag) = if_match {
        builder = builder.header(IF_MATCH, tag);
    }
    builder.body(Full::new(body)).expect("request")
}

/// Sends one request on `sender`; answers the status and the `ETag` after
/// reading the whole body.
async fn send(sender: &mut Sender, req: Request<Full<Bytes>>) -> (StatusCode, Option<HeaderValue>) {
    sender.ready().await.expect("connection stays up");
    let response = sender.send_request(req).await.expect("an answer");
    let status = response.status();
    let etag = response.headers().get(ETAG).cloned();
    response.into_body().collect().await.expect("body");
    (status, etag)
}

/// [`CONNECTIONS`] connections sending `op` back to back for `duration`;
/// answers the requests completed and the time taken. Panics on any answer
/// other than 200.
async fn load(
    addr: SocketAddr,
    op: Op,
    duration: Duration,
    token: Option<HeaderValue>,
) -> (u64, Duration) {
    let mut connections = Vec::with_capacity(CONNECTIONS);
    for _ in 0..CONNECTIONS {
        connections.push(connect(addr).await);
    }
    let started = Instant::now();
    let deadline = started + duration;
    let tasks: Vec<_> = connections
        .into_iter()
        .enumerate()
        .map(|(i, mut sender)| {
            let token = token.clone();
            tokio::spawn(async move {
                let token = token.as_ref();
                let put_path = format!("/root/p{i}");
                let mut etag = None;
                if op == Op::Put {
                    let (status, tag) = send(
                        &mut sender,
                        request(addr, Method::GET, &put_path, Bytes::new(), None, token),
                    )
                    .await;
                    assert_eq!(status, StatusCode::OK, "GET {put_path}");
                    etag = tag;
                }
                let mut n = 0u64;
                while Instant::now() < deadline {
                    let req = match op {
                        Op::Get => {
                            request(addr, Method::GET, "/root/probe", Bytes::new(), None, token)
                        }
                        Op::Post => request(
                            addr,
                            Method::POST,
                            "/root/probe/increment",
                            Bytes::from_static(b"{\"by\":1}"),
                            None,
                            token,
                        ),
                        Op::Put => {
                            let body = format!("{{\"count\":{},\"label\":\"bench\"}}", n + 1);
                            request(
                                addr,
                                Method::PUT,
                                &put_path,
                                Bytes::from(body),
                                etag.as_ref(),
                                token,
                            )
                        }
                    };
                    let (status, tag) = send(&mut sender, req).await;
                    assert_eq!(status, StatusCode::OK, "{op:?} answered {status}");
                    if op == Op::Put {
                        etag = Some(tag.expect("PUT answers an ETag"));
                    }
                    n += 1;
                }
                n
            })
        })
        .collect();
    let mut total = 0;
    for t in tasks {
        total += t.await.expect("load task");
    }
    (total, started.elapsed())
}
