//! Trace ids: which request header names one, and new ones.
//!
//! The trace id of a request is taken from, in this order: the trace-id part
//! of a W3C `traceparent` header, a `TraceID` header, a `Trace-ID` header.
//! A value is used only if it is 1 to 64 characters of hex digits and `-`
//! (a uuid, a W3C or X-Ray trace id); anything else is ignored. Without one,
//! a new uuid v4 (32 hex digits) is made.
//!
//! [`layers`](crate::layers) puts the id into the request's `Trace-ID`
//! header ([`normalise`], then tower-http's `SetRequestId` with
//! [`MakeTraceId`]), and `PropagateRequestId` returns it in the response's.
//! The `http.request` span records it, and problem bodies carry it.

use axum::http::header::{HeaderName, HeaderValue};
use axum::http::{HeaderMap, Request};
use tower_http::request_id::{MakeRequestId, RequestId};

/// The response header that carries the trace id.
pub const TRACE_ID_HEADER: &str = "trace-id";

/// [`TRACE_ID_HEADER`] as a header name: looked up without parsing the
/// name again on every request.
pub(crate) static TRACE_ID: HeaderName = HeaderName::from_static(TRACE_ID_HEADER);

/// The W3C trace-context header.
static TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");

/// The `TraceID` header some clients send.
static TRACEID: HeaderName = HeaderName::from_static("traceid");

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
            .get(&TRACEPARENT)
            .and_then(|v| v.to_str().ok())
            .and_then(trace_id_of_traceparent)
        {
            return HeaderValue::from_str(id).ok().map(TraceId);
        }
        [&TRACEID, &TRACE_ID].into_iter().find_map(|name| {
            let value = headers.get(name)?;
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

pub(crate) fn loggable(path: &str) -> &str {
    if path.len() <= MAX_LOGGED_PATH {
        return path;
    }
    let mut end = MAX_LOGGED_PATH;
    while !path.is_char_boundary(end) {
        end -= 1;
    }
    &path[..end]
}

/// Leaves in the request's `Trace-ID` header the id the request names (from
/// `traceparent`, `TraceID` or a valid `Trace-ID`), or removes the header so
/// that [`MakeTraceId`] makes a new one.
pub(crate) fn normalise<B>(mut request: Request<B>) -> Request<B> {
    match TraceId::from_headers(request.headers()) {
        Some(id) => {
            request.headers_mut().insert(TRACE_ID.clone(), id.0);
        }
        None => {
            request.headers_mut().remove(&TRACE_ID);
        }
    }
    request
}

/// Makes the trace id of a request that names none: a new uuid.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct MakeTraceId;

impl MakeRequestId for MakeTraceId {
    fn make_request_id<B>(&mut self, _request: &Request<B>) -> Option<RequestId> {
        Some(RequestId::new(TraceId::generate().0))
    }
}

/// The trace id of a request's `Trace-ID` header (as [`normalise`] left
/// it), or a new one when nothing put one there.
pub(crate) fn of_request(header: Option<&HeaderValue>) -> TraceId {
    header
        .filter(|v| v.to_str().is_ok_and(valid_trace_id))
        .map_or_else(TraceId::generate, |v| TraceId(v.clone()))
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
    fn normalise_keeps_the_named_id_and_drops_an_invalid_one() {
        let request = |pairs: &[(&'static str, &str)]| {
            let mut r = Request::new(());
            *r.headers_mut() = headers(pairs);
            normalise(r).headers().get(TRACE_ID_HEADER).map(|v| v.to_str().unwrap().to_owned())
        };
        assert_eq!(request(&[("traceid", "abc")]).as_deref(), Some("abc"));
        assert_eq!(request(&[("trace-id", "<script>")]), None);
        assert_eq!(request(&[]), None);
    }

    #[test]
    fn long_paths_are_cut_for_the_log() {
        let long = "é".repeat(300);
        assert!(loggable(&long).len() <= MAX_LOGGED_PATH);
        assert_eq!(loggable("/root/x"), "/root/x");
    }
}
