//! `POST {uri}/_batch`: several method calls by name, all or nothing.
//!
//! The body is a JSON array of calls, `[{"method": "increment", "args":
//! {"by": 2}}, {"method": "relabel", "args": {"label": "x"}}, …]` (`args`
//! may be left out for none). The calls run in order in one turn of the
//! component's mailbox ([`DynComponent::batch_json`]): nothing else runs
//! between them, read-only methods see the changes of the calls before them,
//! and the state is committed (stored, published, given a new ETag) once,
//! after the last one.
//!
//! * Every call succeeds: `200` with `{"results": [reply, …]}`, one reply
//!   per call, in order, and the new `ETag`.
//! * One call fails: the state is left as it was before the batch, nothing
//!   is stored or published, and the problem body names the failing call
//!   (`batch call 2 (`fail`) failed, batch rolled back: …`), with the status
//!   of that call's error.
//! * `If-Match` is checked once, before the first call: a stale ETag refuses
//!   the whole batch with `412`.
//!
//! [`DynComponent::batch_json`]: kinesis::DynComponent::batch_json

use axum::body::Body;
use axum::http::header::ETAG;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use kinesis::dynamic::SharedDyn;
use kinesis::methods::BatchCall;
use kinesis::{Error, Precondition};
use serde::Serialize;

use crate::body::{self, Accept};
use crate::conditional;
use crate::problem::Problem;

/// Most calls in one batch.
pub(crate) const MAX_CALLS: usize = 1024;

/// Runs the batch in `body` on `c`.
pub(crate) async fn batch(
    c: SharedDyn,
    headers: &HeaderMap,
    body: Body,
    limit: usize,
    if_match: Option<Precondition>,
) -> Result<Response, Problem> {
    body::require(headers, Accept::Json)?;
    let value = body::parse(&body::read(body, limit).await?)?;
    let calls: Vec<BatchCall> = serde_json::from_value(value).map_err(|e| {
        Problem::from_error(
            &Error::Invalid(format!(
                "the body must be an array of {{\"method\": \"…\", \"args\": {{…}}}}: {e}"
            )),
            false,
        )
    })?;
    if calls.is_empty() || calls.len() > MAX_CALLS {
        return Err(Problem::from_error(
            &Error::Invalid(format!("a batch holds 1 to {MAX_CALLS} calls, not {}", calls.len())),
            false,
        ));
    }
    let conditional = if_match.is_some();
    let results = c
        .batch_json(calls, if_match.unwrap_or_default())
        .await
        .map_err(|e| Problem::from_error(&e, conditional))?;
    #[derive(Serialize)]
    struct Results {
        results: Vec<serde_json::Value>,
    }
    let mut response = crate::handlers::json(StatusCode::OK, &Results { results })?;
    if let Ok(snapshot) = c.snapshot_json() {
        response.headers_mut().insert(ETAG, conditional::etag_value(&snapshot.etag));
    }
    Ok(response)
}
