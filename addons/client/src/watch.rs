//! `GET {uri}/_watch`: server-sent events, back to [`WatchEvent`]s.
//!
//! The events are those the HTTP add-on writes: `snapshot` (data
//! `{"data","etag","version","stage"}`), `updated`, `stage`, `state` (data
//! tagged with `type`, as [`WatchEvent`] reads it) and `lagged`
//! (`{"missed": n}`). Comments (keep-alives) are skipped. One call is one
//! connection: resuming after it ends is [`RemoteDyn::watch`]'s job.
//!
//! [`RemoteDyn::watch`]: kinesis::remote::RemoteDyn::watch

use std::sync::Arc;
use std::time::Duration;

use eventsource_stream::Eventsource;
use futures::stream::{BoxStream, StreamExt};
use kinesis::remote::WatchEvent;
use kinesis::{ETag, Error, Result};
use reqwest::RequestBuilder;
use serde::Deserialize;
use serde_json::Value;

use crate::errors::error_of;

/// The data of a `snapshot` event.
#[derive(Deserialize)]
struct SnapshotData {
    data: Value,
    etag: ETag,
    version: u64,
    #[serde(default)]
    run: Option<String>,
}

/// The data of a `lagged` event.
#[derive(Deserialize)]
struct LaggedData {
    missed: u64,
}

/// The events of one watch connection. Connecting is bounded by `timeout`;
/// the stream itself has no deadline (keep-alives come every few seconds).
pub(crate) fn events(
    unix: Option<std::sync::Arc<crate::unix::UnixSocket>>,
    base: Arc<str>,
    timeout: Duration,
    request: Result<RequestBuilder>,
) -> BoxStream<'static, Result<WatchEvent>> {
    let connect = async move {
        let request = request?;
        let response = tokio::time::timeout(
            timeout,
            crate::transport::dispatch(unix.as_deref(), &base, timeout, request),
        )
        .await
        .map_err(|_| Error::Timeout(timeout))??;
        let status = response.status();
        if !status.is_success() {
            let body = response.bytes().await.unwrap_or_default();
            return Err(error_of(status, &body));
        }
        let base = Arc::clone(&base);
        Ok(response.bytes_stream().eventsource().filter_map(move |item| {
            let event = match item {
                Ok(event) => parse(&event.event, &event.data).transpose(),
                Err(e) => {
                    Some(Err(Error::Unreachable(format!("the watch from {base} broke: {e}"))))
                }
            };
            futures::future::ready(event)
        }))
    };
    futures::stream::once(connect)
        .flat_map(|connected| match connected {
            Ok(events) => events.boxed(),
            Err(e) => futures::stream::once(async move { Err(e) }).boxed(),
        })
        .boxed()
}

/// One event; `None` for names this client does not know (a newer server).
fn parse(name: &str, data: &str) -> Result<Option<WatchEvent>> {
    let bad =
        |e: serde_json::Error| Error::Invalid(format!("a `{name}` event that does not fit: {e}"));
    Ok(Some(match name {
        "snapshot" => {
            let s: SnapshotData = serde_json::from_str(data).map_err(bad)?;
            WatchEvent::Snapshot { version: s.version, etag: s.etag, data: s.data, run: s.run }
        }
        "updated" | "stage" | "state" => serde_json::from_str(data).map_err(bad)?,
        "lagged" => {
            let l: LaggedData = serde_json::from_str(data).map_err(bad)?;
            WatchEvent::Lagged { missed: l.missed }
        }
        _ => return Ok(None),
    }))
}
