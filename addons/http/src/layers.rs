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
//!    `trace_id`, and `subject`, the authenticated caller, which the
//!    router's guard records); inside it, when the response is ready, one access-log
//!    event (target `kinesis_http::access`, level info) says method, path,
//!    status, latency and trace id.
//! 3. `CompressionLayer` compresses bodies over 1 KiB with gzip, brotli or
//!    zstd when the request's `Accept-Encoding` asks for one (never
//!    server-sent events, whose events must arrive as they happen).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::Body;
use axum::http::header::{HeaderValue, ACCEPT_ENCODING, CONTENT_ENCODING, VARY};
use axum::http::{Method, Uri};
use axum::http::{Request, Response};
use axum::Router;
use tower::util::MapRequestLayer;
use tower_http::compression::predicate::{NotForContentType, Predicate, SizeAbove};
use tower_http::compression::CompressionLayer;
use tower_http::map_response_body::MapResponseBodyLayer;
use tower_http::request_id::{PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use tracing::Span;

use crate::ids::{self, loggable, MakeTraceId, TRACE_ID};
use crate::router::HttpService;

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
    Router::new().fallback_service(standard(router))
}

/// `inner` inside the standard layers, as a service: [`layers`] puts it
/// behind a router's fallback; the add-on's own server serves it as it is,
/// which saves a router's dispatch (a boxed clone of the service and a boxed
/// future) per request.
pub(crate) fn standard(inner: impl HttpService) -> impl HttpService {
    let compress = SizeAbove::new(COMPRESS_ABOVE)
        .and(NotForContentType::GRPC)
        .and(NotForContentType::IMAGES)
        .and(NotForContentType::SSE);
    let trace = TraceLayer::new_for_http()
        .make_span_with(request_span as fn(&Request<Body>) -> Span)
        .on_request(())
        .on_response(())
        .on_body_chunk(())
        .on_eos(())
        .on_failure(());
    let trace_id = TRACE_ID.clone();
    // Outermost first.
    tower::ServiceBuilder::new()
        .layer(MapResponseBodyLayer::new(Body::new))
        .layer(MapRequestLayer::new(ids::normalise::<Body>))
        .layer(SetRequestIdLayer::new(trace_id.clone(), MakeTraceId))
        .layer(PropagateRequestIdLayer::new(trace_id))
        .layer(trace)
        .layer(AccessLogLayer)
        .layer(CompressWhenAcceptedLayer(compress))
        .service(inner)
}

/// When a body may be compressed: over 1 KiB, and not an image, gRPC or
/// server-sent events.
type CompressPredicate = tower_http::compression::predicate::And<
    tower_http::compression::predicate::And<
        tower_http::compression::predicate::And<SizeAbove, NotForContentType>,
        NotForContentType,
    >,
    NotForContentType,
>;

/// tower-http's `CompressionLayer`, for the requests that name an encoding
/// they accept (`Accept-Encoding`). The others go straight to the service
/// inside: for them the layer would only wrap the body in its own type
/// (carrying encoder state, hundreds of bytes, boxed once more) to send it
/// as it is. Their answers still say `Vary: Accept-Encoding` wherever the
/// layer would have compressed, as the layer itself does, so that caches
/// keep the two apart.
#[derive(Debug, Clone)]
struct CompressWhenAcceptedLayer(CompressPredicate);

impl<S: Clone> tower::Layer<S> for CompressWhenAcceptedLayer {
    type Service = CompressWhenAccepted<S>;

    fn layer(&self, inner: S) -> CompressWhenAccepted<S> {
        let compressed = tower::ServiceBuilder::new()
            // A compressed body carries its encoders' state: boxed here
            // once, rather than copied through every layer outside.
            .layer(MapResponseBodyLayer::new(Body::new as fn(CompressedBody) -> Body))
            .layer(CompressionLayer::new().compress_when(self.0.clone()))
            .service(inner.clone());
        CompressWhenAccepted { plain: inner, compressed, predicate: self.0.clone() }
    }
}

/// The body of a response that went through the compression layer.
type CompressedBody = tower_http::compression::CompressionBody<Body>;

/// The service of [`CompressWhenAcceptedLayer`].
#[derive(Clone)]
struct CompressWhenAccepted<S> {
    plain: S,
    compressed: tower_http::map_response_body::MapResponseBody<
        tower_http::compression::Compression<S, CompressPredicate>,
        fn(CompressedBody) -> Body,
    >,
    predicate: CompressPredicate,
}

impl<S> tower::Service<Request<Body>> for CompressWhenAccepted<S>
where
    S: tower::Service<Request<Body>, Response = Response<Body>>,
    S::Future: Send,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = futures::future::Either<
        VaryFuture<S::Future>,
        <tower_http::map_response_body::MapResponseBody<
            tower_http::compression::Compression<S, CompressPredicate>,
            fn(CompressedBody) -> Body,
        > as tower::Service<Request<Body>>>::Future,
    >;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        // Either may take the request: both must be ready.
        std::task::ready!(self.plain.poll_ready(cx))?;
        self.compressed.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        if request.headers().contains_key(ACCEPT_ENCODING) {
            return futures::future::Either::Right(self.compressed.call(request));
        }
        futures::future::Either::Left(VaryFuture {
            inner: self.plain.call(request),
            // The predicates name static content types: copies, no counts.
            predicate: self.predicate.clone(),
        })
    }
}

pin_project_lite::pin_project! {
    /// The future of a request that named no encoding: adds `Vary:
    /// Accept-Encoding` where the answer could have been compressed.
    struct VaryFuture<F> {
        #[pin]
        inner: F,
        predicate: CompressPredicate,
    }
}

impl<F, E> Future for VaryFuture<F>
where
    F: Future<Output = Result<Response<Body>, E>>,
{
    type Output = Result<Response<Body>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut response = std::task::ready!(this.inner.poll(cx))?;
        let compressible = !response.headers().contains_key(CONTENT_ENCODING)
            && this.predicate.should_compress(&response);
        if compressible && !varies_by_encoding(response.headers()) {
            response.headers_mut().append(VARY, HeaderValue::from_static("accept-encoding"));
        }
        Poll::Ready(Ok(response))
    }
}

/// Whether `headers` say already that the answer varies by `Accept-Encoding`.
fn varies_by_encoding(headers: &axum::http::HeaderMap) -> bool {
    headers.get_all(VARY).iter().any(|value| {
        value
            .as_bytes()
            .split(|b| *b == b',')
            .any(|name| name.trim_ascii().eq_ignore_ascii_case(ACCEPT_ENCODING.as_str().as_bytes()))
    })
}

/// The `http.request` span of `request`.
fn request_span<B>(request: &Request<B>) -> Span {
    let trace_id = request.headers().get(&TRACE_ID).and_then(|v| v.to_str().ok());
    tracing::info_span!(
        "http.request",
        method = %request.method(),
        path = loggable(request.uri().path()),
        trace_id = trace_id.unwrap_or_default(),
        subject = tracing::field::Empty,
    )
}

/// Writes the access-log event of each request, inside its span: a plain
/// tower layer that captures nothing when the event is disabled.
#[derive(Debug, Clone, Copy)]
struct AccessLogLayer;

impl<S> tower::Layer<S> for AccessLogLayer {
    type Service = AccessLog<S>;

    fn layer(&self, inner: S) -> AccessLog<S> {
        AccessLog { inner }
    }
}

/// The service of [`AccessLogLayer`].
#[derive(Debug, Clone)]
struct AccessLog<S> {
    inner: S,
}

/// What the access-log event says of the request.
struct RequestLine {
    started: Instant,
    method: Method,
    uri: Uri,
    trace_id: Option<HeaderValue>,
}

impl<S, B, ResB> tower::Service<Request<B>> for AccessLog<S>
where
    S: tower::Service<Request<B>, Response = Response<ResB>>,
{
    type Response = Response<ResB>;
    type Error = S::Error;
    type Future = AccessFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let line =
            tracing::enabled!(target: "kinesis_http::access", tracing::Level::INFO).then(|| {
                RequestLine {
                    started: Instant::now(),
                    method: request.method().clone(),
                    uri: request.uri().clone(),
                    trace_id: request.headers().get(&TRACE_ID).cloned(),
                }
            });
        AccessFuture { inner: self.inner.call(request), line }
    }
}

pin_project_lite::pin_project! {
    /// The future of [`AccessLog`].
    struct AccessFuture<F> {
        #[pin]
        inner: F,
        line: Option<RequestLine>,
    }
}

impl<F, E, ResB> Future for AccessFuture<F>
where
    F: Future<Output = Result<Response<ResB>, E>>,
{
    type Output = Result<Response<ResB>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = std::task::ready!(this.inner.poll(cx));
        if let (Some(line), Ok(response)) = (this.line.take(), &result) {
            let latency_us = u64::try_from(line.started.elapsed().as_micros()).unwrap_or(u64::MAX);
            tracing::info!(
                target: "kinesis_http::access",
                method = %line.method,
                path = loggable(line.uri.path()),
                status = response.status().as_u16(),
                latency_us,
                trace_id = line.trace_id.as_ref().and_then(|v| v.to_str().ok()).unwrap_or_default(),
                "request"
            );
        }
        Poll::Ready(result)
    }
}
