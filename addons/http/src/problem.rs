//! Errors as `application/problem+json` (RFC 9457), from one table.
//!
//! Every error response of the add-on is a [`Problem`]: handlers return one
//! (it is their `IntoResponse` error), and error responses that layers made
//! without a problem body (413 from the body limit, 504 from the request
//! timeout, axum's own rejections) are turned into one by [`ProblemLayer`],
//! the router's outermost layer ([`ProblemLayer`]), which also fills in the `trace_id` member
//! from the request's `Trace-ID` header. The body is
//!
//! ```json
//! {"type": "urn:kinesis:problem:precondition-failed", "title": "Precondition Failed",
//!  "status": 412, "detail": "…", "trace_id": "…", "current_etag": "\"…\""}
//! ```
//!
//! [`status_of`] is the one table from [`ErrorKind`] to status; the HTTP-level
//! problems (400, 405, 413, 415, 428, …) have their own constructors here.
//! The detail of an error is its message: kinesis errors never carry key
//! material or plaintext of encrypted fields, so nothing else is added.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::Request;
use axum::http::header::{HeaderName, HeaderValue, ALLOW, CONTENT_TYPE, RETRY_AFTER};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use kinesis::{Error, ErrorKind};
use serde::Serialize;

/// The media type of every error body.
pub(crate) const PROBLEM_JSON: &str = "application/problem+json";

/// The status, problem type and title of a kinesis error kind.
///
/// `conditional` says whether the request carried `If-Match`: a
/// [`ErrorKind::Conflict`] is then `412 Precondition Failed` (the client's
/// precondition is what failed), otherwise `409 Conflict` (another writer won
/// a compare-and-set in the store).
///
/// ```
/// use kinesis::ErrorKind;
/// use kinesis_http::status_of;
/// assert_eq!(status_of(ErrorKind::NotFound, false).as_u16(), 404);
/// assert_eq!(status_of(ErrorKind::Conflict, true).as_u16(), 412);
/// assert_eq!(status_of(ErrorKind::Conflict, false).as_u16(), 409);
/// assert_eq!(status_of(ErrorKind::Invalid, false).as_u16(), 422);
/// ```
pub fn status_of(kind: ErrorKind, conditional: bool) -> StatusCode {
    kind_entry(kind, conditional).0
}

/// The one table: kind → (status, problem type slug). The slug is the
/// kind's wire name ([`ErrorKind::name`]), except for a conditional
/// conflict, which is HTTP's own 412.
fn kind_entry(kind: ErrorKind, conditional: bool) -> (StatusCode, &'static str) {
    let status = match kind {
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Conflict if conditional => {
            return (StatusCode::PRECONDITION_FAILED, "precondition-failed")
        }
        ErrorKind::Conflict | ErrorKind::NotStarted | ErrorKind::Fenced => StatusCode::CONFLICT,
        ErrorKind::Stopping | ErrorKind::Overloaded | ErrorKind::Store => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        ErrorKind::Timeout => StatusCode::GATEWAY_TIMEOUT,
        ErrorKind::Invalid => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorKind::Handler | ErrorKind::Panicked | ErrorKind::Crypto | ErrorKind::Config => {
            StatusCode::INTERNAL_SERVER_ERROR
        }
        ErrorKind::Unauthenticated => StatusCode::UNAUTHORIZED,
        ErrorKind::Forbidden => StatusCode::FORBIDDEN,
        // A component that called another runtime and could not reach it.
        ErrorKind::Unreachable => StatusCode::BAD_GATEWAY,
    };
    (status, kind.name())
}

/// One error response, before its trace id is known.
#[derive(Debug, Clone)]
pub(crate) struct Problem {
    status: StatusCode,
    slug: &'static str,
    detail: String,
    current_etag: Option<String>,
    headers: Vec<(HeaderName, HeaderValue)>,
}

impl Problem {
    fn new(status: StatusCode, slug: &'static str, detail: impl Into<String>) -> Problem {
        Problem { status, slug, detail: detail.into(), current_etag: None, headers: Vec::new() }
    }

    /// A problem with this status, type slug and detail.
    pub(crate) fn new_status(
        status: StatusCode,
        slug: &'static str,
        detail: impl Into<String>,
    ) -> Problem {
        Problem::new(status, slug, detail)
    }

    /// 403 of type `slug`.
    pub(crate) fn forbidden(slug: &'static str, detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::FORBIDDEN, slug, detail)
    }

    /// Adds a response header with a value made at run time.
    pub(crate) fn with_header_value(mut self, name: HeaderName, value: HeaderValue) -> Problem {
        self.headers.push((name, value));
        self
    }

    /// A kinesis error; see [`status_of`] for `conditional`.
    pub(crate) fn from_error(error: &Error, conditional: bool) -> Problem {
        let (status, slug) = kind_entry(error.kind(), conditional);
        let mut problem = Problem::new(status, slug, error.to_string());
        if let Error::Conflict { current } = error {
            problem
                .headers
                .push((axum::http::header::ETAG, crate::conditional::etag_value(current)));
            problem.current_etag = Some(current.quoted());
        }
        if error.kind() == ErrorKind::Overloaded {
            problem.headers.push((RETRY_AFTER, HeaderValue::from_static("1")));
        }
        if status.is_server_error() {
            tracing::warn!(%error, status = status.as_u16(), "request failed");
        }
        problem
    }

    /// 404 for `what`.
    pub(crate) fn not_found(what: &str) -> Problem {
        Problem::from_error(&Error::NotFound(what.to_owned()), false)
    }

    /// 400: the body is not JSON.
    pub(crate) fn malformed_json(detail: impl std::fmt::Display) -> Problem {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "malformed-json",
            format!("the body is not valid JSON: {detail}"),
        )
    }

    /// 400: something else about the request is malformed.
    pub(crate) fn bad_request(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::BAD_REQUEST, "bad-request", detail)
    }

    /// 405 with the methods the resource allows.
    pub(crate) fn method_not_allowed(method: &str, allow: &'static str) -> Problem {
        let mut p = Problem::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method-not-allowed",
            format!("{method} is not allowed here; allowed: {allow}"),
        );
        p.headers.push((ALLOW, HeaderValue::from_static(allow)));
        p
    }

    /// 413: the body is larger than `limit` bytes.
    pub(crate) fn payload_too_large(limit: usize) -> Problem {
        Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload-too-large",
            format!("the request body is larger than the limit of {limit} bytes (KINESIS_HTTP_BODY_LIMIT)"),
        )
    }

    /// 414: the path is longer than `limit` bytes.
    pub(crate) fn uri_too_long(limit: usize) -> Problem {
        Problem::new(
            StatusCode::URI_TOO_LONG,
            "uri-too-long",
            format!("the path is longer than {limit} bytes"),
        )
    }

    /// 415: the content type is not one of `accepted`.
    pub(crate) fn unsupported_media_type(got: Option<&str>, accepted: &'static str) -> Problem {
        let got = got.map_or_else(|| "no content type".to_owned(), |g| format!("`{g}`"));
        Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            format!("{got} is not accepted here; send {accepted}"),
        )
    }

    /// Adds a response header (such as `Accept-Patch`).
    pub(crate) fn with_header(mut self, name: HeaderName, value: &'static str) -> Problem {
        self.headers.push((name, HeaderValue::from_static(value)));
        self
    }

    /// 428: `If-Match` is required.
    pub(crate) fn precondition_required() -> Problem {
        Problem::new(
            StatusCode::PRECONDITION_REQUIRED,
            "precondition-required",
            "this request needs an If-Match header with the ETag the state was read at (or `*`)",
        )
    }

    /// 504: the request took longer than `timeout`.
    pub(crate) fn timeout(timeout: std::time::Duration) -> Problem {
        Problem::from_error(&Error::Timeout(timeout), false)
    }

    /// A problem for an error status some middleware produced without a body.
    pub(crate) fn from_status(status: StatusCode) -> Problem {
        let slug = match status.as_u16() {
            400 => "bad-request",
            401 => "unauthorized",
            403 => "forbidden",
            404 => "not-found",
            405 => "method-not-allowed",
            408 | 504 => "timeout",
            413 => "payload-too-large",
            415 => "unsupported-media-type",
            429 => "too-many-requests",
            503 => "unavailable",
            _ => "http-error",
        };
        let detail = status.canonical_reason().unwrap_or("error").to_owned();
        Problem::new(status, slug, detail)
    }

    /// The status.
    #[cfg(test)]
    pub(crate) fn status(&self) -> StatusCode {
        self.status
    }

    /// The response with its body, carrying `trace_id`.
    pub(crate) fn render(&self, trace_id: &str) -> Response {
        #[derive(Serialize)]
        struct Body<'a> {
            #[serde(rename = "type")]
            type_uri: String,
            title: &'a str,
            status: u16,
            detail: &'a str,
            trace_id: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            current_etag: Option<&'a str>,
        }
        let body = Body {
            type_uri: format!("urn:kinesis:problem:{}", self.slug),
            title: self.status.canonical_reason().unwrap_or("Error"),
            status: self.status.as_u16(),
            detail: &self.detail,
            trace_id,
            current_etag: self.current_etag.as_deref(),
        };
        let bytes = serde_json::to_vec(&body).unwrap_or_default();
        let mut response = (self.status, bytes).into_response();
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        for (name, value) in &self.headers {
            headers.append(name.clone(), value.clone());
        }
        response
    }
}

/// A problem whose body is rendered later, once the trace middleware knows
/// the trace id; it travels in the response's extensions.
#[derive(Debug, Clone)]
pub(crate) struct Pending(pub(crate) Problem);

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let mut response = self.status.into_response();
        response.extensions_mut().insert(Pending(self));
        response
    }
}

/// What [`problem_bodies`] needs to describe a layer's error.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// The body limit, for 413.
    pub(crate) body_limit: usize,
    /// The request timeout, for 504.
    pub(crate) request_timeout: Duration,
}

/// The router's outermost layer: renders every [`Problem`] with the
/// request's trace id, and turns any other error response into one. A plain
/// tower layer (no boxed future, no cloned service), so the requests that
/// need none of this pay next to nothing.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ProblemLayer(pub(crate) Limits);

impl<S> tower::Layer<S> for ProblemLayer {
    type Service = ProblemBodies<S>;

    fn layer(&self, inner: S) -> ProblemBodies<S> {
        ProblemBodies { inner, limits: self.0 }
    }
}

/// The service of [`ProblemLayer`].
#[derive(Debug, Clone)]
pub(crate) struct ProblemBodies<S> {
    inner: S,
    limits: Limits,
}

impl<S> tower::Service<Request> for ProblemBodies<S>
where
    S: tower::Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = ProblemFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let trace_id = request.headers().get(&crate::ids::TRACE_ID).cloned();
        ProblemFuture { inner: self.inner.call(request), trace_id, limits: self.limits }
    }
}

pin_project_lite::pin_project! {
    /// The future of [`ProblemBodies`].
    pub(crate) struct ProblemFuture<F> {
        #[pin]
        inner: F,
        trace_id: Option<HeaderValue>,
        limits: Limits,
    }
}

impl<F, E> Future for ProblemFuture<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let response = std::task::ready!(this.inner.poll(cx))?;
        Poll::Ready(Ok(finish(response, this.trace_id.take(), *this.limits)))
    }
}

/// `response` with its problem rendered, if it is an error.
fn finish(mut response: Response, trace_id: Option<HeaderValue>, limits: Limits) -> Response {
    let pending = response.extensions_mut().remove::<Pending>();
    let status = response.status();
    let is_error = status.is_client_error() || status.is_server_error();
    if pending.is_none() && !is_error {
        return response;
    }
    let trace_id = crate::ids::of_request(trace_id.as_ref());
    if let Some(Pending(problem)) = pending {
        return problem.render(trace_id.as_str());
    }
    let is_problem = response.headers().get(CONTENT_TYPE).is_some_and(|v| v == PROBLEM_JSON);
    if is_problem {
        return response;
    }
    let problem = match status {
        StatusCode::PAYLOAD_TOO_LARGE => Problem::payload_too_large(limits.body_limit),
        StatusCode::GATEWAY_TIMEOUT | StatusCode::REQUEST_TIMEOUT => {
            Problem::timeout(limits.request_timeout)
        }
        other => Problem::from_status(other),
    };
    let mut rendered = problem.render(trace_id.as_str());
    for (name, value) in response.headers() {
        if !is_body_header(name) && !rendered.headers().contains_key(name) {
            rendered.headers_mut().append(name.clone(), value.clone());
        }
    }
    rendered
}

/// Headers that describe the body, which a rendered problem replaces.
fn is_body_header(name: &HeaderName) -> bool {
    use axum::http::header::{CONTENT_ENCODING, CONTENT_LENGTH, TRANSFER_ENCODING};
    [CONTENT_TYPE, CONTENT_LENGTH, CONTENT_ENCODING, TRANSFER_ENCODING].contains(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KINDS: [ErrorKind; 16] = ErrorKind::ALL;

    #[test]
    fn the_table_matches_the_design() {
        let expected =
            [404, 409, 409, 503, 503, 504, 422, 500, 500, 503, 500, 500, 401, 403, 502, 409];
        for (kind, status) in KINDS.iter().zip(expected) {
            assert_eq!(status_of(*kind, false).as_u16(), status, "{kind:?}");
        }
        assert_eq!(status_of(ErrorKind::Conflict, true), StatusCode::PRECONDITION_FAILED);
        for kind in KINDS.iter().filter(|k| **k != ErrorKind::Conflict) {
            assert_eq!(status_of(*kind, true), status_of(*kind, false), "{kind:?}");
        }
    }

    #[tokio::test]
    async fn bodies_are_problem_json_with_the_trace_id() {
        let current = kinesis::ETag::of(b"{}", None);
        let err = Error::Conflict { current };
        let response = Problem::from_error(&err, true).render("abc123");
        assert_eq!(response.status(), StatusCode::PRECONDITION_FAILED);
        assert_eq!(response.headers()[CONTENT_TYPE], PROBLEM_JSON);
        assert_eq!(response.headers()[axum::http::header::ETAG], current.quoted().as_str());
        let bytes = axum::body::to_bytes(response.into_body(), 4096).await.unwrap();
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["type"], "urn:kinesis:problem:precondition-failed");
        assert_eq!(v["title"], "Precondition Failed");
        assert_eq!(v["status"], 412);
        assert_eq!(v["trace_id"], "abc123");
        assert_eq!(v["current_etag"], current.quoted());
        assert!(v["detail"].as_str().unwrap().contains(&current.to_string()));
    }

    #[test]
    fn method_not_allowed_names_the_allowed_methods() {
        let response = Problem::method_not_allowed("DELETE", "GET, HEAD").render("t");
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(response.headers()[ALLOW], "GET, HEAD");
    }
}
