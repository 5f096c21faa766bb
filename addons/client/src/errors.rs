//! Error answers of a kinesis runtime, back to [`kinesis::Error`].
//!
//! A failed request answers `application/problem+json` whose `type` ends
//! in the error kind's wire name (`urn:kinesis:problem:not-found`, see
//! [`ErrorKind::name`]) and whose `detail` is the error's text:
//! [`Error::from_remote`] rebuilds the very error the runtime had. A 412
//! (`precondition-failed`) is a [`Error::Conflict`] with the `current_etag`
//! member. Problems of HTTP itself, and answers without a problem body
//! (from a proxy, say), are mapped by status in [`kind_of_status`].

use kinesis::{ETag, Error, ErrorKind};
use reqwest::StatusCode;
use serde::Deserialize;

/// The members of a problem body the client reads.
#[derive(Debug, Deserialize)]
struct ProblemBody {
    #[serde(rename = "type", default)]
    type_uri: String,
    #[serde(default)]
    detail: String,
    #[serde(default)]
    current_etag: Option<String>,
}

/// The prefix of every kinesis problem type.
const PROBLEM_PREFIX: &str = "urn:kinesis:problem:";

/// The error a failed response stands for. `body` is the response body.
pub(crate) fn error_of(status: StatusCode, body: &[u8]) -> Error {
    let problem: Option<ProblemBody> = serde_json::from_slice(body).ok();
    let detail = match &problem {
        Some(p) if !p.detail.is_empty() => p.detail.clone(),
        _ => {
            let text = String::from_utf8_lossy(body);
            let text = text.trim();
            if text.is_empty() || text.len() > 512 {
                status.canonical_reason().unwrap_or("error").to_owned()
            } else {
                text.to_owned()
            }
        }
    };
    let slug = problem.as_ref().and_then(|p| p.type_uri.strip_prefix(PROBLEM_PREFIX));
    let current_etag: Option<ETag> =
        problem.as_ref().and_then(|p| p.current_etag.as_deref()).and_then(|t| t.parse().ok());
    let kind = match slug {
        Some("precondition-failed") => Some(ErrorKind::Conflict),
        Some(slug) => ErrorKind::from_name(slug),
        None => None,
    };
    match kind {
        Some(kind) => Error::from_remote(kind, &detail, current_etag),
        None => Error::from_remote(kind_of_status(status), &detail, current_etag),
    }
}

/// The kind of an error answer that is not one of kinesis' own kinds: HTTP's
/// own problems (bad JSON, wrong method or media type, a body too big, a
/// missing `If-Match`) are [`ErrorKind::Invalid`]; the edge's refusals
/// (401, 403, 429) have their kinds; a gateway's 502 or 503 means the
/// runtime is out of reach.
pub(crate) fn kind_of_status(status: StatusCode) -> ErrorKind {
    match status.as_u16() {
        401 => ErrorKind::Unauthenticated,
        403 => ErrorKind::Forbidden,
        404 | 410 => ErrorKind::NotFound,
        429 => ErrorKind::Overloaded,
        408 | 504 => ErrorKind::Timeout,
        502 | 503 => ErrorKind::Unreachable,
        500..=599 => ErrorKind::Handler,
        _ => ErrorKind::Invalid,
    }
}

/// The error of a request that got no answer. Connecting is checked
/// first: a connect timeout is also `is_timeout`, but the runtime was never
/// reached, so it is [`Error::Unreachable`] (as `connect_timeout`
/// promises), not [`Error::Timeout`].
pub(crate) fn transport_error(
    base: &str,
    e: &reqwest::Error,
    timeout: std::time::Duration,
) -> Error {
    if e.is_connect() {
        Error::Unreachable(format!("cannot connect to {base}: {}", source_chain(e)))
    } else if e.is_timeout() {
        Error::Timeout(timeout)
    } else {
        Error::Unreachable(format!("{base}: {}", source_chain(e)))
    }
}

/// The error and its causes, `: `-separated (reqwest's own text alone says
/// only "error sending request").
fn source_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let next = c.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        cause = c.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_become_the_same_error() {
        let tag = ETag::of(b"{}", None);
        let body = format!(
            r#"{{"type":"urn:kinesis:problem:precondition-failed","status":412,"detail":"conflict: the state changed, current etag is {tag}","current_etag":"\"{tag}\""}}"#
        );
        assert_eq!(
            error_of(StatusCode::PRECONDITION_FAILED, body.as_bytes()),
            Error::Conflict { current: tag }
        );
        let body =
            r#"{"type":"urn:kinesis:problem:not-found","detail":"not found: component /root/x"}"#;
        assert_eq!(
            error_of(StatusCode::NOT_FOUND, body.as_bytes()),
            Error::NotFound("component /root/x".into())
        );
        let body = r#"{"type":"urn:kinesis:problem:unsupported-media-type","detail":"send JSON"}"#;
        assert_eq!(
            error_of(StatusCode::UNSUPPORTED_MEDIA_TYPE, body.as_bytes()),
            Error::Invalid("send JSON".into())
        );
        assert_eq!(
            error_of(StatusCode::BAD_GATEWAY, b""),
            Error::Unreachable("Bad Gateway".into())
        );
    }
}
