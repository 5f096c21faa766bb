//! `GET {uri}/_watch?prefix=P` on a key-value store
//! ([`kinesis::kv::Kv`]): the changes to the keys under a prefix as
//! server-sent events.
//!
//! | event | data |
//! | --- | --- |
//! | `put` | `{"type":"put","key","value","version","expires_at_ms"?}`: the key is there with this value (first for every key under the prefix when the watch starts, then for each key put) |
//! | `delete` | `{"type":"delete","key","revision"}`: the key was deleted or expired |
//!
//! The events come from [`kinesis::kv::watch_prefix`]: they compare
//! committed states, so several writes to a key between two looks give one
//! `put` with the latest value, and a client that reads slowly gets, when
//! it catches up, the latest value of each key that changed meanwhile (a
//! watch holds at most one pending event per key, never a backlog of
//! changes). Events carry no `id`: a client that reconnects starts again
//! with a `put` for every key there (`Last-Event-ID` and `since` are
//! ignored), which brings it up to date. An empty prefix watches every
//! key. The other components have no prefix watch: `prefix` on their
//! `_watch` is a 400.

use std::convert::Infallible;
use std::time::Duration;

use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use kinesis::dynamic::SharedDyn;
use kinesis::kv::{watch_prefix, Kv, KvEvent, KvWatch};
use kinesis::Handle;
use tokio_util::sync::CancellationToken;

use crate::problem::Problem;

/// The `prefix` of the query string, if the client asked for one.
pub(crate) fn prefix_of(query: Option<&str>) -> Option<String> {
    form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(name, _)| name == "prefix")
        .map(|(_, value)| value.into_owned())
}

/// The event stream of the keys under `prefix` of the store `component`;
/// it ends when the store is torn down or `shutdown` is cancelled.
pub(crate) fn watch(
    component: &SharedDyn,
    prefix: String,
    shutdown: &CancellationToken,
    keep_alive: Duration,
) -> Result<Response, Problem> {
    let Some(kv) = component.as_any().downcast_ref::<Handle<Kv>>() else {
        return Err(Problem::bad_request(format!(
            "`prefix` watches are for key-value stores (kinesis::kv::Kv); {} is a {}",
            component.uri(),
            component.type_name()
        )));
    };
    let watch = watch_prefix(kv, prefix).map_err(|e| Problem::from_error(&e, false))?;
    let events = futures::stream::unfold(watch, |mut watch: KvWatch| async move {
        let event = watch.next().await?;
        Some((to_event(&event), watch))
    })
    .take_until(shutdown.clone().cancelled_owned())
    .map(Ok::<_, Infallible>);
    let keep_alive = KeepAlive::new().interval(keep_alive).text("keep-alive");
    Ok(Sse::new(events).keep_alive(keep_alive).into_response())
}

fn to_event(event: &KvEvent) -> Event {
    let name = match event {
        KvEvent::Put(_) => "put",
        KvEvent::Delete { .. } => "delete",
    };
    let data = serde_json::to_string(event).unwrap_or_else(|e| {
        tracing::warn!(error = %e, "key-value event does not serialise");
        "null".to_owned()
    });
    Event::default().event(name).data(data)
}
