//! `GET {uri}/_watch`: a component's changes as server-sent events.
//!
//! A new watch starts with one `snapshot` event (the state when the watch
//! began: `id` = its version, data `{"data", "etag", "version", "run", "stage"}`),
//! then one event per change, named after the change type:
//!
//! | event | id | data |
//! | --- | --- | --- |
//! | `updated` | the new version | `{"type":"updated","prev_version","version","etag","run","data"}` |
//! | `stage` | — | `{"type":"stage","prev","curr"}` |
//! | `state` | — | `{"type":"state","prev","curr"}` |
//! | `lagged` | — | `{"missed": n}`: this watcher fell behind and missed `n` changes |
//!
//! Every version arrives once, in order: updates the snapshot already holds
//! are left out.
//!
//! On a key-value store (`kinesis::kv::Kv`), `?prefix=P` asks for the
//! changes to the keys under `P` instead, one `put` or `delete` event per
//! key (see `kv_watch`).
//!
//! **Resuming.** A watch that sends `Last-Event-ID: N` (as browsers'
//! `EventSource` do when they reconnect) or `?since=N` resumes after version
//! `N`. Versions count from 1 again when the process restarts, so the
//! `snapshot` and `updated` events carry the process's run id (`"run"`,
//! [`kinesis::runtime::run_id`]); a watcher that sends it back
//! (`Kinesis-Run: R` or `?run=R`) with a version of another run starts with
//! a `snapshot` event. Resuming within the run: it starts with the `updated` events of the versions after `N` that
//! it missed, then goes on live, with no `snapshot` event. A component keeps
//! its last 64 updates once it has been watched, as long as those before the
//! newest hold at most 1 MiB of JSON together (so a big component keeps
//! fewer); if `N` is older than that (or not a version of this process's
//! run), the watch starts with a `snapshot` event instead.
//!
//! A comment line (`:keep-alive`) is sent when nothing else was for the
//! keep-alive interval. The stream ends when the component is torn down or
//! the server stops.
//!
//! **Slow clients.** A watcher never slows the component, and holds at most
//! [`HttpOptions::watch_buffer`](crate::HttpOptions::watch_buffer) bytes
//! (`KINESIS_HTTP_WATCH_BUFFER`, default 1 MiB) of events its client has not
//! taken yet: each change is put in the watch's own buffer as the component
//! publishes it (never in the component's subscription queue), and the
//! buffer counts the bytes of the events' data. A change that would take
//! the buffer past its budget
//! empties it instead (one event bigger than the budget is still kept,
//! alone), and nothing more is kept until the client catches up: then it
//! gets `lagged` with the number of changes it missed, a fresh `snapshot`
//! (the state at that moment, with its version as `id`), and the changes
//! after it. So a client that stops reading costs the budget, one event
//! being written and what the socket buffers hold, and all of it is freed
//! when the connection closes.
//!
//! The `data` of `snapshot` and `updated` events is the snapshot's JSON
//! text, serialised once per commit and shared by every watcher and `GET`.

use std::convert::Infallible;
use std::time::Duration;

use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::stream::BoxStream;
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
    let mut since = None;
    let mut run = headers.get("kinesis-run").map(|v| v.as_bytes().to_vec());
    if let Some(value) = headers.get("last-event-id") {
        let text = value
            .to_str()
            .map_err(|_| Problem::bad_request("the Last-Event-ID header is not visible ASCII"))?;
        since = parse(text, "Last-Event-ID")?;
    }
    for (name, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        if name == "since" && since.is_none() {
            since = parse(&value, "`since`")?;
        } else if name == "run" && run.is_none() {
            run = Some(value.as_bytes().to_vec());
        }
    }
    // A version of another run of the process means another state: start
    // with a snapshot.
    if run.is_some_and(|run| run != kinesis::runtime::run_id().as_bytes()) {
        return Ok(None);
    }
    Ok(since)
}

/// The event stream of `component`, resuming after version `since` when
/// given, holding at most `budget` bytes of events the client has not taken
/// (see the module docs); it ends when `shutdown` is cancelled.
pub(crate) fn watch(
    component: &SharedDyn,
    since: Option<u64>,
    shutdown: &CancellationToken,
    keep_alive: Duration,
    budget: usize,
) -> Result<Response, Problem> {
    let watch = component.watch_json(since, budget).map_err(|e| Problem::from_error(&e, false))?;
    let (first, after): (Vec<Event>, u64) = match watch.start {
        WatchStart::Snapshot(snapshot) => (vec![snapshot_event(&snapshot)], snapshot.version),
        WatchStart::Replay(changes) => {
            let after = changes.last().and_then(JsonChange::version).or(since).unwrap_or(0);
            (changes.into_iter().map(|c| change_event(Ok(c))).collect(), after)
        }
    };
    let reader = Reader {
        component: SharedDyn::clone(component),
        changes: watch.changes,
        after,
        resnapshot: false,
    };
    let events = futures::stream::iter(first)
        .chain(futures::stream::unfold(reader, Reader::next))
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
        r#","etag":"{}","version":{},"run":"{}","stage":{}}}"#,
        snapshot.etag,
        snapshot.version,
        kinesis::runtime::run_id(),
        serde_json::to_string(&snapshot.stage).unwrap_or_default()
    ));
    Event::default().event("snapshot").id(snapshot.version.to_string()).data(text)
}

fn change_event(item: Result<JsonChange, Lagged>) -> Event {
    match item {
        Ok(JsonChange::Updated { prev_version, version, etag, data }) => {
            let mut text = String::with_capacity(data.as_bytes().len() + 128);
            text.push_str(&format!(
                r#"{{"type":"updated","prev_version":{prev_version},"version":{version},"etag":"{etag}","run":"{}","data":"#,
                kinesis::runtime::run_id()
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

/// The changes after the first events: `lagged`, then a fresh `snapshot`,
/// when the client fell behind.
struct Reader {
    component: SharedDyn,
    changes: BoxStream<'static, Result<JsonChange, Lagged>>,
    /// The last version the client has: updates up to it are left out.
    after: u64,
    /// The client was told it lagged; a fresh snapshot comes next.
    resnapshot: bool,
}

impl Reader {
    /// The next event for the client; `None` when the component's changes ended.
    async fn next(mut self) -> Option<(Event, Reader)> {
        loop {
            if self.resnapshot {
                self.resnapshot = false;
                match self.component.snapshot_json() {
                    Ok(snapshot) => {
                        self.after = snapshot.version;
                        return Some((snapshot_event(&snapshot), self));
                    }
                    // Torn down in between: the changes say so.
                    Err(e) => tracing::debug!(error = %e, "no snapshot after a lag"),
                }
            }
            match self.changes.next().await? {
                Err(lagged) => {
                    self.resnapshot = true;
                    return Some((change_event(Err(lagged)), self));
                }
                Ok(change) => {
                    // An update the client has (from the snapshot after a
                    // lag); a re-publication of the same version
                    // (`NotifyPeers`) still passes.
                    if let JsonChange::Updated { prev_version, version, .. } = &change {
                        if *version <= self.after && prev_version != version {
                            continue;
                        }
                        self.after = *version;
                    }
                    return Some((change_event(Ok(change)), self));
                }
            }
        }
    }
}
