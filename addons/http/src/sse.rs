//! `GET {uri}/_watch`: a component's changes as server-sent events.
//!
//! A new watch starts with one `snapshot` event (the state when the watch
//! began: `id` = its version, data `{"data", "etag", "version", "stage"}`),
//! then one event per change, named after the change type:
//!
//! | event | id | data |
//! | --- | --- | --- |
//! | `updated` | the new version | `{"type":"updated","prev_version","version","etag","data"}` |
//! | `stage` | — | `{"type":"stage","prev","curr"}` |
//! | `state` | — | `{"type":"state","prev","curr"}` |
//! | `lagged` | — | `{"missed": n}`: this watcher fell behind and missed `n` changes |
//!
//! Every version arrives once, in order: updates the snapshot already holds
//! are left out.
//!
//! **Resuming.** A watch that sends `Last-Event-ID: N` (as browsers'
//! `EventSource` do when they reconnect) or `?since=N` resumes after version
//! `N`: it starts with the `updated` events of the versions after `N` that
//! it missed, then goes on live, with no `snapshot` event. A component keeps
//! its last 64 updates once it has been watched; if `N` is older than that
//! (or not a version of this process's run), the watch starts with a
//! `snapshot` event instead.
//!
//! A comment line (`:keep-alive`) is sent when nothing else was for the
//! keep-alive interval. The stream ends when the component is torn down or
//! the server stops.
//!
//! A watcher never slows the component: its subscription is a bounded queue
//! the component never waits on. A client that stops reading lets the queue
//! fill up; when it reads again it gets `lagged`, then the newest changes.
//!
//! The `data` of `snapshot` and `updated` events is the snapshot's JSON
//! text, serialised once per commit and shared by every watcher and `GET`.

use std::convert::Infallible;
use std::time::Duration;

use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use kinesis::dynamic::SharedDyn;
use kinesis::{JsonChange, JsonSnapshot, JsonText, Lagged, WatchStart};
use tokio_util::sync::CancellationToken;

use crate::problem::Problem;

/// The version a watch resumes after: `Last-Event-ID`, else `?since=`.
pub(crate) fn resume_from(
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<Option<u64>, Problem> {
    let parse = |text: &str, source: &str| {
        text.trim().parse::<u64>().map(Some).map_err(|_| {
            Problem::bad_request(format!(
                "{source} must be a version (a whole number), not `{text}`"
            ))
        })
    };
    if let Some(value) = headers.get("last-event-id") {
        let text = value
            .to_str()
            .map_err(|_| Problem::bad_request("the Last-Event-ID header is not visible ASCII"))?;
        return parse(text, "Last-Event-ID");
    }
    for (name, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        if name == "since" {
            return parse(&value, "`since`");
        }
    }
    Ok(None)
}

/// The event stream of `component`, resuming after version `since` when
/// given; it ends when `shutdown` is cancelled.
pub(crate) fn watch(
    component: &SharedDyn,
    since: Option<u64>,
    shutdown: &CancellationToken,
    keep_alive: Duration,
) -> Result<Response, Problem> {
    let watch = component.watch_json(since).map_err(|e| Problem::from_error(&e, false))?;
    let first: Vec<Event> = match watch.start {
        WatchStart::Snapshot(snapshot) => vec![snapshot_event(&snapshot)],
        WatchStart::Replay(changes) => changes.into_iter().map(|c| change_event(Ok(c))).collect(),
    };
    let events = futures::stream::iter(first)
        .chain(watch.changes.map(change_event))
        .take_until(shutdown.clone().cancelled_owned())
        .map(Ok::<_, Infallible>);
    let keep_alive = KeepAlive::new().interval(keep_alive).text("keep-alive");
    Ok(Sse::new(events).keep_alive(keep_alive).into_response())
}

/// `{"data":…,"etag":"…","version":n,"stage":"…"}`, `data` copied as it is.
fn snapshot_event(snapshot: &JsonSnapshot) -> Event {
    let mut text = String::with_capacity(snapshot.data.as_bytes().len() + 96);
    text.push_str(r#"{"data":"#);
    push_json_text(&mut text, &snapshot.data);
    text.push_str(&format!(
        r#","etag":"{}","version":{},"stage":{}}}"#,
        snapshot.etag,
        snapshot.version,
        serde_json::to_string(&snapshot.stage).unwrap_or_default()
    ));
    Event::default().event("snapshot").id(snapshot.version.to_string()).data(text)
}

fn change_event(item: Result<JsonChange, Lagged>) -> Event {
    match item {
        Ok(JsonChange::Updated { prev_version, version, etag, data }) => {
            let mut text = String::with_capacity(data.as_bytes().len() + 128);
            text.push_str(&format!(
                r#"{{"type":"updated","prev_version":{prev_version},"version":{version},"etag":"{etag}","data":"#
            ));
            push_json_text(&mut text, &data);
            text.push('}');
            Event::default().event("updated").id(version.to_string()).data(text)
        }
        Ok(change) => {
            let name = match &change {
                JsonChange::Stage { .. } => "stage",
                _ => "state",
            };
            let text = serde_json::to_string(&change).unwrap_or_else(|e| {
                tracing::warn!(error = %e, "watch event does not serialise");
                "null".to_owned()
            });
            Event::default().event(name).data(text)
        }
        Err(lagged) => {
            Event::default().event("lagged").data(format!("{{\"missed\":{}}}", lagged.missed))
        }
    }
}

/// Appends JSON text that serde_json wrote (so valid UTF-8, on one line).
fn push_json_text(out: &mut String, json: &JsonText) {
    out.push_str(&String::from_utf8_lossy(json.as_bytes()));
}
