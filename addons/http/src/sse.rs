//! `GET {uri}/_watch`: a component's changes as server-sent events.
//!
//! The stream starts with one `snapshot` event (the state when the watch
//! began: `id` = its version, data `{"version", "etag", "stage", "data"}`),
//! then one event per change, named after the change type:
//!
//! | event | id | data |
//! | --- | --- | --- |
//! | `updated` | the new version | `{"type":"updated","prev_version","version","etag","data"}` |
//! | `stage` | — | `{"type":"stage","prev","curr"}` |
//! | `state` | — | `{"type":"state","prev","curr"}` |
//! | `lagged` | — | `{"missed": n}`: this watcher fell behind and missed `n` changes |
//!
//! Changes already in the snapshot may follow it (their `id` is not above the
//! snapshot's); skip them by version. A comment line (`:keep-alive`) is sent
//! when nothing else was for the keep-alive interval. The stream ends when
//! the component is torn down or the server stops.
//!
//! A watcher never slows the component: its subscription is a bounded queue
//! the component never waits on. A client that stops reading lets the queue
//! fill up; when it reads again it gets `lagged`, then the newest changes.

use std::convert::Infallible;
use std::time::Duration;

use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use kinesis::dynamic::SharedDyn;
use kinesis::{JsonChange, Lagged};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::problem::Problem;

/// The event stream of `component`, ending when `shutdown` is cancelled.
pub(crate) fn watch(
    component: &SharedDyn,
    shutdown: &CancellationToken,
    keep_alive: Duration,
) -> Result<Response, Problem> {
    let changes = component.subscribe_json();
    let snapshot = component.snapshot_json().map_err(|e| Problem::from_error(&e, false))?;
    let first = snapshot_event(&snapshot);
    let events = futures::stream::once(async move { first })
        .chain(changes.map(change_event))
        .take_until(shutdown.clone().cancelled_owned())
        .map(Ok::<_, Infallible>);
    let keep_alive = KeepAlive::new().interval(keep_alive).text("keep-alive");
    Ok(Sse::new(events).keep_alive(keep_alive).into_response())
}

fn snapshot_event(snapshot: &kinesis::JsonSnapshot) -> Event {
    Event::default().event("snapshot").id(snapshot.version.to_string()).data(to_json(snapshot))
}

fn change_event(item: Result<JsonChange, Lagged>) -> Event {
    match item {
        Ok(change) => {
            let name = match &change {
                JsonChange::Stage { .. } => "stage",
                JsonChange::State { .. } => "state",
                JsonChange::Updated { .. } => "updated",
            };
            let event = Event::default().event(name).data(to_json(&change));
            match change.version() {
                Some(version) => event.id(version.to_string()),
                None => event,
            }
        }
        Err(lagged) => {
            Event::default().event("lagged").data(format!("{{\"missed\":{}}}", lagged.missed))
        }
    }
}

fn to_json(value: &impl Serialize) -> String {
    serde_json::to_string(value).unwrap_or_else(|e| {
        tracing::warn!(error = %e, "watch event does not serialise");
        "null".to_owned()
    })
}
