//! Trace ids, the access log, and the last touch on every response.
//!
//! The trace id of a request is taken from, in this order: the trace-id part
//! of a W3C `traceparent` header, a `TraceID` header, a `Trace-ID` header.
//! A value is used only if it is 1 to 64 characters of hex digits and `-`
//! (a uuid, a W3C or X-Ray trace id); anything else is ignored. Without one,
//! a new uuid v4 (32 hex digits) is made.
//!
//! The id is recorded on the request's `http.request` tracing span, returned
//! in a `Trace-ID` header on every response the service produces (errors and
//! 404s included) and written into every problem body. Each request ends
//! with one access-log event (target `kinesis_http::access`, level info) with
//! method, path, status, latency and trace id.

use std::time::{Duration, Instant};

use std::convert::Infallible;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes, HttpBody};
use axum::http::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use axum::http::{HeaderMap, Request, StatusCode};
use axum::response::Response;
use axum::BoxError;
use futures::future::BoxFuture;
use tower::Service;
use tracing::Instrument;

use crate::problem::{Pending, Problem, PROBLEM_JSON};

/// The response header that carries the trace id.
pub const TRACE_ID_HEADER: &str = "trace-id";

/// Longest trace id accepted from a request.
const MAX_TRACE_ID_LEN: usize = 64;

/// Longest path written to the access log.
const MAX_LOGGED_PATH: usize = 256;

/// The trace id of one request.
#[derive(Debug, Clone)]
pub(crate) struct TraceId(HeaderValue);

impl TraceId {
    /// The id the request names, if it names a valid one.
    pub(crate) fn from_headers(headers: &HeaderMap) -> Option<TraceId> {
        if let Some(id) = headers
            .get("traceparent")
            .and_then(|v| v.to_str().ok())
            .and_then(trace_id_of_traceparent)
        {
            return HeaderValue::from_str(id).ok().map(TraceId);
        }
        ["traceid", TRACE_ID_HEADER].iter().find_map(|name| {
            let value = headers.get(*name)?;
            let text = value.to_str().ok()?;
            valid_trace_id(text).then(|| TraceId(value.clone()))
        })
    }

    /// A new random id: a uuid v4 as 32 hex digits.
    pub(crate) fn generate() -> TraceId {
        let mut buf = [0u8; uuid::fmt::Simple::LENGTH];
        let id = uuid::Uuid::new_v4().simple().encode_lower(&mut buf);
        TraceId(HeaderValue::from_str(id).expect("hex digits are a valid header value"))
    }

    /// The id as text.
    pub(crate) fn as_str(&self) -> &str {
        self.0.to_str().unwrap_or_default()
    }
}

fn valid_trace_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_TRACE_ID_LEN
        && id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
}

/// The trace-id field of `version-traceid-parentid-flags`.
fn trace_id_of_traceparent(value: &str) -> Option<&str> {
    let mut parts = value.trim().split('-');
    let version = parts.next()?;
    let trace_id = parts.next()?;
    let parent = parts.next()?;
    let flags = parts.next()?;
    let hex = |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit());
    let ok = hex(version, 2)
        && version != "ff"
        && hex(trace_id, 32)
        && trace_id.bytes().any(|b| b != b'0')
        && hex(parent, 16)
        && hex(flags, 2);
    ok.then_some(trace_id)
}

/// What the middleware needs to describe errors produced below it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// The body limit, for 413 details.
    pub(crate) body_limit: usize,
    /// The request timeout, for 504 details.
    pub(crate) request_timeout: Duration,
}

/// The outermost middleware: trace id, span, problem bodies, access log.
#[derive(Debug, Clone)]
pub(crate) struct Trace<S> {
    inner: S,
    limits: Limits,
}

impl<S> Trace<S> {
    /// `inner`, traced; `limits` describe errors produced below.
    pub(crate) fn new(inner: S, limits: Limits) -> Self {
        Trace { inner, limits }
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for Trace<S>
where
    S: Service<Request<ReqBody>, Response = axum::http::Response<ResBody>, Error = Infallible>,
    S::Future: Send + 'static,
    ResBody: HttpBody<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let started = Instant::now();
        let id = TraceId::from_headers(request.headers()).unwrap_or_else(TraceId::generate);
        let method = request.method().clone();
        let uri = request.uri().clone();
        let span = tracing::info_span!(
            "http.request",
            %method,
            path = loggable(uri.path()),
            trace_id = id.as_str()
        );
        let future = span.in_scope(|| self.inner.call(request));
        let limits = self.limits;
        Box::pin(async move {
            let response = match future.instrument(span.clone()).await {
                Ok(response) => response.map(Body::new),
                Err(never) => match never {},
            };
            let mut response = finish(response, &id, &limits);
            response.headers_mut().insert(TRACE_ID_HEADER, id.0.clone());
            let status = response.status().as_u16();
            let latency_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
            span.in_scope(|| {
                tracing::info!(
                    target: "kinesis_http::access",
                    %method,
                    path = loggable(uri.path()),
                    status,
                    latency_us,
                    trace_id = id.as_str(),
                    "request"
                );
            });
            Ok(response)
        })
    }
}

fn loggable(path: &str) -> &str {
    if path.len() <= MAX_LOGGED_PATH {
        return path;
    }
    let mut end = MAX_LOGGED_PATH;
    while !path.is_char_boundary(end) {
        end -= 1;
    }
    &path[..end]
}

/// Renders a pending problem, or turns a bare error response of some
/// middleware into one.
fn finish(mut response: Response, id: &TraceId, limits: &Limits) -> Response {
    if let Some(Pending(problem)) = response.extensions_mut().remove::<Pending>() {
        return problem.render(id.as_str());
    }
    let status = response.status();
    let is_error = status.is_client_error() || status.is_server_error();
    let is_problem = response.headers().get(CONTENT_TYPE).is_some_and(|v| v == PROBLEM_JSON);
    if !is_error || is_problem {
        return response;
    }
    let problem = match status {
        StatusCode::PAYLOAD_TOO_LARGE => Problem::payload_too_large(limits.body_limit),
        StatusCode::GATEWAY_TIMEOUT | StatusCode::REQUEST_TIMEOUT => {
            Problem::timeout(limits.request_timeout)
        }
        other => Problem::from_status(other),
    };
    let mut rendered = problem.render(id.as_str());
    for (name, value) in response.headers() {
        if !is_body_header(name) && !rendered.headers().contains_key(name) {
            rendered.headers_mut().append(name.clone(), value.clone());
        }
    }
    rendered
}

fn is_body_header(name: &HeaderName) -> bool {
    use axum::http::header::{CONTENT_ENCODING, CONTENT_LENGTH, TRANSFER_ENCODING};
    [CONTENT_TYPE, CONTENT_LENGTH, CONTENT_ENCODING, TRANSFER_ENCODING].contains(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn id_of(pairs: &[(&'static str, &str)]) -> Option<String> {
        TraceId::from_headers(&headers(pairs)).map(|t| t.as_str().to_owned())
    }

    #[test]
    fn traceparent_wins_then_traceid_then_trace_id() {
        let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        assert_eq!(
            id_of(&[("traceparent", tp), ("traceid", "aa"), ("trace-id", "bb")]).as_deref(),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        assert_eq!(id_of(&[("traceid", "aa"), ("trace-id", "bb")]).as_deref(), Some("aa"));
        assert_eq!(id_of(&[("trace-id", "bb")]).as_deref(), Some("bb"));
        let uuid = "0b0f4f2e-6a8f-4c1b-9f55-8f1f0f5b2a11";
        assert_eq!(id_of(&[("trace-id", uuid)]).as_deref(), Some(uuid));
    }

    #[test]
    fn invalid_ids_are_ignored() {
        let long = "a".repeat(65);
        for bad in ["", "xyz", "a b", "<script>", long.as_str(), "12;34"] {
            assert_eq!(id_of(&[("trace-id", bad)]), None, "{bad:?}");
        }
        for bad in [
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "garbage",
        ] {
            assert_eq!(id_of(&[("traceparent", bad)]), None, "{bad:?}");
        }
        assert_eq!(
            id_of(&[("traceparent", "garbage"), ("trace-id", "cafe")]).as_deref(),
            Some("cafe")
        );
    }

    #[test]
    fn generated_ids_are_fresh_uuids() {
        let a = TraceId::generate();
        let b = TraceId::generate();
        assert_eq!(a.as_str().len(), 32);
        assert!(valid_trace_id(a.as_str()));
        assert_ne!(a.as_str(), b.as_str());
        assert!(uuid::Uuid::parse_str(a.as_str()).is_ok());
    }

    #[test]
    fn long_paths_are_cut_for_the_log() {
        let long = "é".repeat(300);
        assert!(loggable(&long).len() <= MAX_LOGGED_PATH);
        assert_eq!(loggable("/root/x"), "/root/x");
    }
}
