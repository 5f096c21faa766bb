//! The process's own surface under `/_kinesis/`: health, readiness,
//! Prometheus metrics, diagnostics and the task manager.
//!
//! | request | answer | access (when auth is on) |
//! | --- | --- | --- |
//! | `GET /_kinesis/health` | `200 {"status":"ok", …}` while the runtime answers (liveness) | open |
//! | `GET /_kinesis/ready` | `200 {"status":"ready","checks":[…]}` when every component is `Started`, the store answers its ping and every [`Component::health`](kinesis::Component::health) passes; else `503` (`application/problem+json`, type `urn:kinesis:problem:not-ready`) whose `checks` list the failing ones | open |
//! | `GET /_kinesis/metrics` | the Prometheus text format (see [`kinesis::metrics`] and [`metrics`](self::metrics)) | `read:/_kinesis/**` |
//! | `GET /_kinesis/diagnostics` | the component tree: stage, state, version, restarts, last failure, mailbox depth, uptime, subscribers; containers' escalated failures; tasks | `read:/_kinesis/**` |
//! | `GET /_kinesis/tasks` | `{"tasks": [status, …]}` | `read:/_kinesis/**` |
//! | `GET /_kinesis/tasks/{id}` | one task's status | `read:/_kinesis/**` |
//! | `GET /_kinesis/tasks/{id}/_watch` | server-sent events: one `progress` event per change of the status, the last one when the task finished | `read:/_kinesis/**` |
//! | `DELETE /_kinesis/tasks/{id}` | cancels the task: `200` with its status once it ended (`202` if it has not within a second) | `control:/_kinesis/**` |
//!
//! [`ROUTE_KINDS`] names these for an access layer.

pub(crate) mod diagnostics;
pub(crate) mod health;
pub mod metrics;
pub(crate) mod tasks;

pub use health::readiness;

use std::time::Duration;

use axum::routing::get;
use axum::Router;
use kinesis::Container;
use tokio_util::sync::CancellationToken;

/// The routes under `/_kinesis/` and what an access layer should ask of
/// each: `("open" | "read" | "control", method, path pattern)`.
pub const ROUTE_KINDS: &[(&str, &str, &str)] = &[
    ("open", "GET", "/_kinesis/health"),
    ("open", "GET", "/_kinesis/ready"),
    ("read", "GET", "/_kinesis/metrics"),
    ("read", "GET", "/_kinesis/diagnostics"),
    ("read", "GET", "/_kinesis/tasks"),
    ("read", "GET", "/_kinesis/tasks/{id}"),
    ("read", "GET", "/_kinesis/tasks/{id}/_watch"),
    ("control", "DELETE", "/_kinesis/tasks/{id}"),
];

/// What the handlers of this module share.
#[derive(Clone)]
pub(crate) struct Ops {
    pub(crate) root: Container,
    /// Cancelled when the server stops: readiness fails and watches end.
    pub(crate) shutdown: CancellationToken,
    pub(crate) keep_alive: Duration,
    pub(crate) metrics: Option<::metrics_exporter_prometheus::PrometheusHandle>,
}

/// The `/_kinesis/` routes (besides `openapi.json`) for the tree of `root`.
pub(crate) fn routes(root: Container, shutdown: CancellationToken, keep_alive: Duration) -> Router {
    let ops = Ops { root, shutdown, keep_alive, metrics: metrics::recorder() };
    Router::new()
        .route("/_kinesis/health", get(health::health))
        .route("/_kinesis/ready", get(health::ready))
        .route("/_kinesis/metrics", get(metrics::render))
        .route("/_kinesis/diagnostics", get(diagnostics::diagnostics))
        .route("/_kinesis/tasks", get(tasks::list))
        .route("/_kinesis/tasks/{id}", get(tasks::get).delete(tasks::cancel))
        .route("/_kinesis/tasks/{id}/_watch", get(tasks::watch))
        .with_state(ops)
}

/// The trace id the request carries (its `Trace-ID` header, as the
/// standard layers leave it), for problem bodies.
pub(crate) fn trace_id(headers: &axum::http::HeaderMap) -> String {
    crate::ids::of_request(headers.get(crate::ids::TRACE_ID_HEADER)).as_str().to_owned()
}
