//! `GET /_kinesis/metrics` and the HTTP request metrics.
//!
//! The add-on installs `metrics-exporter-prometheus` as the process's
//! global `metrics` recorder the first time a router is built ([`recorder`],
//! without an HTTP listener of its own: the router serves it) and turns
//! kinesis's recording on ([`kinesis::metrics::enable`]). An application's
//! own `metrics::counter!(…)` land in the same registry and appear in the
//! same scrape. If another recorder was installed first, the route answers
//! 404 and kinesis records into that recorder.
//!
//! Histograms are rendered as Prometheus histograms with [`BUCKETS`]
//! (seconds).
//!
//! The HTTP metrics, recorded by [`RequestMetricsLayer`] around the router:
//!
//! | metric | type | labels |
//! | --- | --- | --- |
//! | `kinesis_http_requests_total` | counter | `kind`, `method`, `status` |
//! | `kinesis_http_request_duration_seconds` | histogram | `kind`, `method`, `status` (time to the response head) |
//! | `kinesis_http_sse_open` | gauge | open server-sent event streams (`_watch` of components and tasks) |
//!
//! `kind` is what the path names, never the path itself: `tree` (`/`),
//! `resource` (`GET`/`PUT`/`PATCH` of a component, or a read-only method
//! call), `method` (`POST` of a method), `control`, `batch`, `watch`,
//! `kinesis` (`/_kinesis/…`) or `other`; `method` is one of the HTTP
//! methods or `other`. Lagged watchers count in `kinesis_lagged_total`.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderValue, Method, Request, Response, StatusCode};
use axum::response::IntoResponse;
use metrics::{Counter, Gauge, Histogram};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use super::Ops;
use crate::problem::Problem;

/// Buckets of the latency histograms, in seconds.
pub const BUCKETS: &[f64] =
    &[0.000_01, 0.000_05, 0.000_1, 0.000_5, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0];

/// Requests served.
pub const HTTP_REQUESTS: &str = "kinesis_http_requests_total";
/// Time to the response head.
pub const HTTP_DURATION: &str = "kinesis_http_request_duration_seconds";
/// Open server-sent event streams.
pub const SSE_OPEN: &str = "kinesis_http_sse_open";

/// How often histograms are drained into their buckets between scrapes.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// The process's Prometheus recorder: installed on the first call (and
/// kinesis's recording turned on); `None` if another recorder was installed
/// before.
pub fn recorder() -> Option<PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE.get_or_init(install).clone()
}

fn install() -> Option<PrometheusHandle> {
    let builder = PrometheusBuilder::new().set_buckets(BUCKETS).ok()?;
    let recorder = builder.build_recorder();
    let handle = recorder.handle();
    if let Err(e) = metrics::set_global_recorder(recorder) {
        tracing::warn!(error = %e, "a metrics recorder is installed already; /_kinesis/metrics is off");
        return None;
    }
    kinesis::metrics::enable();
    let upkeep = handle.clone();
    let spawned =
        std::thread::Builder::new().name("kinesis-metrics-upkeep".into()).spawn(move || loop {
            std::thread::sleep(UPKEEP_EVERY);
            upkeep.run_upkeep();
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot start the metrics upkeep thread; histograms drain at scrapes only");
    }
    Some(handle)
}

/// `GET /_kinesis/metrics`: sets the observed gauges, then renders.
pub(crate) async fn render(State(ops): State<Ops>) -> axum::response::Response {
    let Some(handle) = ops.metrics.as_ref() else {
        return Problem::not_found("/_kinesis/metrics (another metrics recorder is installed)")
            .into_response();
    };
    kinesis::metrics::observe(&[&ops.root]);
    handle.run_upkeep();
    let mut response = handle.render().into_response();
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"));
    response
}

/// What a request's path names; the `kind` label.
fn kind_of(method: &Method, path: &str) -> &'static str {
    if path == "/" {
        return "tree";
    }
    if path.starts_with("/_kinesis/") {
        return if path.ends_with("/_watch") { "watch" } else { "kinesis" };
    }
    match path.rsplit('/').next().unwrap_or_default() {
        "_watch" => "watch",
        "_control" => "control",
        "_batch" => "batch",
        _ if *method == Method::POST => "method",
        _ if [Method::GET, Method::HEAD, Method::PUT, Method::PATCH].contains(method) => "resource",
        _ => "other",
    }
}

const METHODS: [Method; 7] = [
    Method::GET,
    Method::HEAD,
    Method::POST,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
    Method::OPTIONS,
];

fn method_label(method: &Method) -> (u8, &'static str) {
    match METHODS.iter().position(|m| m == method) {
        Some(i) => (i as u8, METHODS[i].as_str()),
        None => (u8::MAX, "other"),
    }
}

/// The handles of one label set, resolved once and kept.
struct Series {
    requests: Counter,
    duration: Histogram,
}

/// A label set: the kind (one of a few static names, compared by address:
/// two copies of one name would be two entries for the same series, which
/// the recorder shares), the method's index and the status.
type SeriesKey = (usize, u8, u16);

/// Counts one request and records its latency. The handles of each label
/// set are resolved once per thread and kept there: no lock, no shared
/// cache line, no label set built per request. A thread sees a few dozen
/// label sets at most, so they are found by a scan rather than a hash of
/// the kind's text.
fn record(kind: &'static str, method: &Method, status: StatusCode, took: Duration) {
    thread_local! {
        static SERIES: RefCell<Vec<(SeriesKey, Series)>> = const { RefCell::new(Vec::new()) };
    }
    let (m, method) = method_label(method);
    let key = (kind.as_ptr() as usize, m, status.as_u16());
    SERIES.with(|cache| {
        let mut cache = cache.borrow_mut();
        let index = match cache.iter().position(|(k, _)| *k == key) {
            Some(index) => index,
            None => {
                let status = status.as_str().to_owned();
                let labels =
                    [("kind", kind.to_owned()), ("method", method.to_owned()), ("status", status)];
                let series = Series {
                    requests: metrics::counter!(HTTP_REQUESTS, &labels),
                    duration: metrics::histogram!(HTTP_DURATION, &labels),
                };
                cache.push((key, series));
                cache.len() - 1
            }
        };
        let s = &cache[index].1;
        s.requests.increment(1);
        s.duration.record(took.as_secs_f64());
    });
}

fn sse_open() -> &'static Gauge {
    static GAUGE: OnceLock<Gauge> = OnceLock::new();
    GAUGE.get_or_init(|| metrics::gauge!(SSE_OPEN))
}

/// Records the HTTP metrics of every request (see the module docs); does
/// nothing while [`kinesis::metrics::enabled`] is false.
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestMetricsLayer;

impl<S> tower::Layer<S> for RequestMetricsLayer {
    type Service = RequestMetrics<S>;

    fn layer(&self, inner: S) -> RequestMetrics<S> {
        RequestMetrics { inner }
    }
}

/// The service of [`RequestMetricsLayer`].
#[derive(Debug, Clone)]
pub struct RequestMetrics<S> {
    inner: S,
}

impl<S, B> tower::Service<Request<B>> for RequestMetrics<S>
where
    S: tower::Service<Request<B>, Response = Response<Body>>,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = MetricsFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let line = kinesis::metrics::enabled().then(|| Line {
            started: Instant::now(),
            kind: kind_of(request.method(), request.uri().path()),
            method: request.method().clone(),
        });
        MetricsFuture { inner: self.inner.call(request), line }
    }
}

struct Line {
    started: Instant,
    kind: &'static str,
    method: Method,
}

pin_project_lite::pin_project! {
    /// The future of [`RequestMetrics`].
    pub struct MetricsFuture<F> {
        #[pin]
        inner: F,
        line: Option<Line>,
    }
}

impl<F, E> Future for MetricsFuture<F>
where
    F: Future<Output = Result<Response<Body>, E>>,
{
    type Output = Result<Response<Body>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = std::task::ready!(this.inner.poll(cx));
        let Some(line) = this.line.take() else { return Poll::Ready(result) };
        let response = match result {
            Ok(response) => response,
            Err(e) => return Poll::Ready(Err(e)),
        };
        let status = response.status();
        record(line.kind, &line.method, status, line.started.elapsed());
        let is_stream = line.kind == "watch"
            && status == StatusCode::OK
            && response.headers().get(CONTENT_TYPE).is_some_and(|v| v == "text/event-stream");
        if !is_stream {
            return Poll::Ready(Ok(response));
        }
        sse_open().increment(1.0);
        let (parts, body) = response.into_parts();
        let body = Body::new(OpenStream { inner: body, _guard: StreamGuard });
        Poll::Ready(Ok(Response::from_parts(parts, body)))
    }
}

/// Counts an open event stream down when dropped.
struct StreamGuard;

impl Drop for StreamGuard {
    fn drop(&mut self) {
        sse_open().decrement(1.0);
    }
}

pin_project_lite::pin_project! {
    /// An event stream's body, counted in [`SSE_OPEN`] while it lives.
    struct OpenStream {
        #[pin]
        inner: Body,
        _guard: StreamGuard,
    }
}

impl http_body::Body for OpenStream {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        self.project().inner.poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
