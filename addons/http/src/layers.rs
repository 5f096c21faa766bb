//! The standard layers around [`router`](crate::router): request ids,
//! tracing and the access log, and compression, all from tower-http.
//!
//! From the outside in:
//!
//! 1. [`ids::normalise`](crate::ids::normalise) keeps a valid trace id the
//!    request names (`traceparent`, `TraceID`, `Trace-ID`) in its `Trace-ID`
//!    header; then `SetRequestId` makes a new one where there was none and
//!    `PropagateRequestId` returns it in the response's `Trace-ID` header.
//! 2. `TraceLayer` opens the `http.request` span (`method`, `path`,
//!    `trace_id`); inside it, when the response is ready, one access-log
//!    event (target `kinesis_http::access`, level info) says method, path,
//!    status, latency and trace id.
//! 3. `CompressionLayer` compresses bodies over 1 KiB with gzip, brotli or
//!    zstd when the request's `Accept-Encoding` asks for one (never
//!    server-sent events, whose events must arrive as they happen).

use std::time::Instant;

use axum::extract::Request;
use axum::http::header::HeaderName;
use axum::middleware::Next;
use axum::response::Response;
use axum::Router;
use tower_http::compression::predicate::{NotForContentType, Predicate, SizeAbove};
use tower_http::compression::CompressionLayer;
use tower_http::request_id::{PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use tracing::Span;

use crate::ids::{self, loggable, MakeTraceId, TRACE_ID_HEADER};

/// Bodies at most this large are sent as they are.
const COMPRESS_ABOVE: u16 = 1024;

/// `router` with the standard layers (see the module docs): what the
/// add-on's own server serves.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let root = kinesis::Container::root().await.unwrap();
/// let app = kinesis_http::layers(kinesis_http::router(root.clone(), &Default::default()));
/// # let _: axum::Router = app;
/// # root.shutdown().await.unwrap();
/// # });
/// ```
pub fn layers(router: Router) -> Router {
    let compress = SizeAbove::new(COMPRESS_ABOVE)
        .and(NotForContentType::GRPC)
        .and(NotForContentType::IMAGES)
        .and(NotForContentType::SSE);
    let trace = TraceLayer::new_for_http()
        .make_span_with(request_span)
        .on_request(())
        .on_response(())
        .on_body_chunk(())
        .on_eos(())
        .on_failure(());
    let trace_id = HeaderName::from_static(TRACE_ID_HEADER);
    router
        .layer(CompressionLayer::new().compress_when(compress))
        .layer(axum::middleware::from_fn(access_log))
        .layer(trace)
        .layer(PropagateRequestIdLayer::new(trace_id.clone()))
        .layer(SetRequestIdLayer::new(trace_id, MakeTraceId))
        .layer(axum::middleware::map_request(|r: Request| async move { ids::normalise(r) }))
}

/// The `http.request` span of `request`.
fn request_span(request: &Request) -> Span {
    let trace_id = request.headers().get(TRACE_ID_HEADER).and_then(|v| v.to_str().ok());
    tracing::info_span!(
        "http.request",
        method = %request.method(),
        path = loggable(request.uri().path()),
        trace_id = trace_id.unwrap_or_default(),
    )
}

/// Writes the access-log event of each request, inside its span.
async fn access_log(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let path = loggable(request.uri().path()).to_owned();
    let trace_id = request.headers().get(TRACE_ID_HEADER).cloned();
    let response = next.run(request).await;
    let latency_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    tracing::info!(
        target: "kinesis_http::access",
        %method,
        path,
        status = response.status().as_u16(),
        latency_us,
        trace_id = trace_id.as_ref().and_then(|v| v.to_str().ok()).unwrap_or_default(),
        "request"
    );
    response
}
