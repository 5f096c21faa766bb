//! HTTP add-on of kinesis: every component as a REST resource.
//!
//! [`serve`] adds an [`HttpServer`] to the runtime's add-ons container. It
//! listens on `KINESIS_HTTP_ADDR` (default `127.0.0.1:8080`; the add-on's
//! variables are read by [`HttpConfig`] and listed in [`VARIABLES`]) and serves the
//! components under `/root` as they are *now*: routes are resolved per
//! request against the live tree, so a component's routes appear when it
//! reaches `Started` and disappear when it stops. Components whose
//! [`exposed`](kinesis::Component::exposed) is false (add-ons such as this
//! server) are not served, nor is anything below them.
//!
//! The whole surface is an axum [`Router`](axum::Router): [`router`] (with
//! [`router_with_shutdown`]) builds it, to nest or merge into an app of your
//! own beside your routes and under your layers; [`layers`] adds the
//! standard tower-http ones (request ids, `TraceLayer`, compression). The
//! server of [`serve`] serves the same routes inside the same layers as
//! `layers(router_with_shutdown(…))`, without the two routers those two
//! functions put around them to return a `Router` (each router's dispatch
//! costs a boxed clone of the service per request).
//! `examples/embed.rs` mounts it under `/api`.
//!
//! # Routes
//!
//! | request | answer |
//! | --- | --- |
//! | `GET /` | `{"components": [{uri, type, stage, state, etag, version}, …]}`: the root and every exposed component below it, depth first |
//! | `GET {uri}` | `{"meta": {name, uri, type, stage, state, etag, version, methods}, "data": {…}}`, header `ETag`; `If-None-Match` → 304 |
//! | `PUT {uri}` | replaces `data` with the body; needs `If-Match` (428 without, 412 if stale, `*` accepted); answers like `GET` |
//! | `PATCH {uri}` | JSON merge patch (RFC 7396, `application/merge-patch+json` or `application/json`) on `data`; `If-Match` as for `PUT` |
//! | `POST {uri}/{method}` | calls a mutating method with a JSON object of named arguments (an empty body is no arguments); optional `If-Match`; answers the method's JSON reply |
//! | `GET {uri}/{method}` | calls a read-only (`&self`) method; arguments from the query string, each parsed as JSON if it parses, else taken as a string (read-only methods also take `POST` with a JSON body) |
//! | `POST {uri}/_control` | `{"op": "restart" \| "stop" \| "persist" \| "notify"}`; answers `{op, uri, stage}` once done; `{"op": "restart", "after": "5s"}` stops now, starts after the delay, and answers `202` with `after` at once |
//! | `POST {uri}/_batch` | `[{"method", "args"}, …]`: the calls in order in one mailbox turn, all or nothing, `If-Match` checked once; answers `{"results": […]}` or a problem naming the failing call |
//! | `GET {uri}/_watch` | server-sent events: a `snapshot` event, then one event per change (`updated` with `id` = version, `stage`, `state`, `lagged`); `Last-Event-ID: N` or `?since=N` resumes after version `N`; see [`sse`](crate#watching-changes) |
//! | `GET /_kinesis/openapi.json` | the OpenAPI 3.1 document of the live tree ([`openapi::document`]) |
//! | `GET /_kinesis/health`, `GET /_kinesis/ready` | liveness; readiness with its checks (503 with the failing ones) — see [`ops`] |
//! | `GET /_kinesis/metrics` | Prometheus text format ([`ops::metrics`]) |
//! | `GET /_kinesis/diagnostics` | the component tree with stage, version, restarts, last failure, mailbox depth, uptime, subscribers; escalated failures; tasks |
//! | `GET /_kinesis/tasks[/{id}[/_watch]]`, `DELETE /_kinesis/tasks/{id}` | the [task manager](kinesis::tasks): list, one task, its progress as server-sent events, cancel |
//!
//! `HEAD` is accepted wherever `GET` is. A path is tried as a component URI
//! first; otherwise its last segment names a method, `_control`, `_batch` or
//! `_watch` of the component before it. Answers over 1 KiB are compressed
//! (gzip, br or zstd) when the request's `Accept-Encoding` asks for it. Paths are never percent-decoded or
//! normalised (names use only unreserved characters), so `%2F`, `..` and `//`
//! name nothing and get 404.
//!
//! # Errors
//!
//! Every error is `application/problem+json` (RFC 9457) with `type`,
//! `title`, `status`, `detail` and `trace_id` (and `current_etag` for 412).
//! kinesis errors map to a status in one table, [`status_of`]:
//!
//! | status | when |
//! | --- | --- |
//! | 400 | malformed JSON, a malformed `If-Match`/`If-None-Match`, an argument given twice |
//! | 404 | no such component or method (`NotFound`) |
//! | 405 | a method the resource does not allow; `Allow` lists the ones it does |
//! | 409 | the component is not started (`NotStarted`, e.g. while restarting), or another writer won (`Conflict` without `If-Match`) |
//! | 412 | `If-Match` is stale (`Conflict`); the body has `current_etag` |
//! | 413 | the body is over the limit (1 MiB unless `KINESIS_HTTP_BODY_LIMIT`) |
//! | 414 | the path is over 4096 bytes |
//! | 415 | a wrong content type (`PATCH` answers with `Accept-Patch`) |
//! | 422 | arguments or state that do not fit (`Invalid`) |
//! | 428 | `PUT`/`PATCH` without `If-Match` |
//! | 500 | a handler failed or panicked, a crypto or configuration error |
//! | 503 | the component is stopping (`Stopping`), the store failed (`Store`); also, before any routing, a connection past `KINESIS_HTTP_MAX_CONNECTIONS` (`urn:kinesis:problem:at-capacity`, `Retry-After: 1`) |
//! | 504 | the request took longer than the request timeout (`Timeout`) |
//!
//! Encrypted persisted fields are `"***"` in every response and event; a
//! `PUT` or `PATCH` that sends `"***"` back keeps the stored value.
//!
//! # Trace ids and logs
//!
//! Every response carries a `Trace-ID` header: the trace id of a W3C
//! `traceparent`, a `TraceID` or a `Trace-ID` request header (1–64 hex
//! digits and dashes), else a new uuid. It is recorded on the request's
//! `http.request` span and written into problem bodies; each request ends
//! with an access-log event (target `kinesis_http::access`).
//!
//! # Watching changes
//!
//! `GET {uri}/_watch` answers `text/event-stream`. The first event is
//! `snapshot` (the state when the watch began); then every change is one
//! event named after its type, `updated` events with `id` = the new version.
//! A watcher never slows the component and holds at most
//! `KINESIS_HTTP_WATCH_BUFFER` bytes (default 1 MiB) of events its client has
//! not taken; one that falls further behind gets `event: lagged` with
//! `{"missed": n}`, then a fresh `snapshot` event, then the changes after it.
//! Keep-alive comments are sent every 15 s of silence. A watch that
//! reconnects with `Last-Event-ID: N` (as `EventSource` does) or `?since=N`
//! gets the `updated` events after version `N` it missed, from a history of
//! the last 64 updates (at most 1 MiB of JSON before the newest), then the
//! live ones; a version older than the history starts with a `snapshot`
//! event.
//!
//! # Connections
//!
//! The server speaks HTTP/1.1 (hyper), over TLS (rustls) when
//! `KINESIS_HTTP_TLS_CERT` and `KINESIS_HTTP_TLS_KEY` name a PEM certificate
//! chain and its key ([`TlsConfig`]). A connection must send a complete
//! request header (and finish its TLS handshake) within
//! `KINESIS_HTTP_HEADER_TIMEOUT` (default 10 s) of the server starting to
//! wait for one, after the accept and after each response, so the same
//! timeout closes idle keep-alive connections. At most
//! `KINESIS_HTTP_MAX_CONNECTIONS` (default 10,000) are served at once; past
//! it a new connection is answered `503` with `Retry-After: 1` and a
//! problem+json body (plain HTTP) or closed (TLS). See [`HttpOptions`].
//!
//! # A session
//!
//! With a component `counter` in the root (`count: u64`, a mutating method
//! `increment(by)` and a read-only method `total()`):
//!
//! ```text
//! $ curl -si localhost:8080/root/counter
//! HTTP/1.1 200 OK
//! content-type: application/json
//! etag: "8c1f…"
//! trace-id: 6f0e…
//!
//! {"meta":{"name":"counter","uri":"/root/counter","type":"app::Counter","stage":"Started",
//!  "state":"Active","etag":"8c1f…","version":1,"methods":[…]},"data":{"count":0}}
//!
//! $ curl -s -X POST localhost:8080/root/counter/increment \
//!     -H 'content-type: application/json' -d '{"by": 5}'
//! 5
//! $ curl -s 'localhost:8080/root/counter/total'
//! 5
//!
//! $ curl -si -X PUT localhost:8080/root/counter -H 'if-match: "8c1f…"' \
//!     -H 'content-type: application/json' -d '{"count": 100}'
//! HTTP/1.1 412 Precondition Failed
//! content-type: application/problem+json
//! etag: "51d0…"
//!
//! {"type":"urn:kinesis:problem:precondition-failed","title":"Precondition Failed","status":412,
//!  "detail":"conflict: the state changed, current etag is \"51d0…\"","trace_id":"…","current_etag":"\"51d0…\""}
//!
//! $ curl -s -X PATCH localhost:8080/root/counter -H 'if-match: "51d0…"' \
//!     -H 'content-type: application/merge-patch+json' -d '{"count": 100}'
//! {"meta":{…,"version":3},"data":{"count":100}}
//!
//! $ curl -sN localhost:8080/root/counter/_watch
//! event: snapshot
//! data: {"data":{"count":100},"etag":"…","version":3,"stage":"Started"}
//! id: 3
//!
//! event: updated
//! data: {"type":"updated","prev_version":3,"version":4,"etag":"…","data":{"count":101}}
//! id: 4
//!
//! $ curl -s -X POST localhost:8080/root/counter/_control -H 'content-type: application/json' \
//!     -d '{"op":"stop"}'
//! {"op":"stop","uri":"/root/counter","stage":"TornDown"}
//! $ curl -s -o /dev/null -w '%{http_code}\n' localhost:8080/root/counter
//! 404
//! ```
//!
//! # Wiring
//!
//! ```no_run
//! # async fn run() -> kinesis::Result<()> {
//! let runtime = kinesis::Runtime::builder(kinesis::Config::from_env()?).start().await?;
//! kinesis_http::serve(&runtime, &kinesis_http::HttpConfig::from_env()?).await?;
//! let report = runtime.run_until_signal().await?; // stops the server first, draining requests
//! std::process::exit(report.exit_code());
//! # }
//! ```

mod batch;
mod body;
mod conditional;
mod config;
mod handlers;
mod ids;
mod kv_watch;
mod layers;
pub mod openapi;
pub mod ops;
mod problem;
mod resolve;
mod router;
pub mod security;
mod server;
mod sse;
#[cfg(feature = "testing")]
pub mod testing;
mod tls;
pub mod unix;

pub use config::{HttpConfig, VARIABLES};
pub use ids::TRACE_ID_HEADER;
pub use layers::layers;
pub use problem::status_of;
pub use router::{router, router_with_shutdown};
pub use server::{serve, HttpOptions, HttpServer};
pub use tls::TlsConfig;
