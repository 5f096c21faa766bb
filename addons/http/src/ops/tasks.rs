//! `/_kinesis/tasks`: the [task manager](kinesis::tasks) over HTTP.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::StreamExt;
use kinesis::tasks::{TaskHandle, TaskManager};
use kinesis::Error;
use serde_json::json;

use super::Ops;
use crate::problem::Problem;

/// How long `DELETE` waits for a cancelled task to end before it answers
/// `202 Accepted`.
const CANCEL_WAIT: Duration = Duration::from_secs(1);

fn task(id: &str) -> Result<TaskHandle, Problem> {
    let not_found = || Problem::from_error(&Error::NotFound(format!("task {id}")), false);
    let id: u64 = id.parse().map_err(|_| not_found())?;
    TaskManager::global().get(id).ok_or_else(not_found)
}

/// `GET /_kinesis/tasks`.
pub(crate) async fn list() -> Response {
    Json(json!({ "tasks": TaskManager::global().list() })).into_response()
}

/// `GET /_kinesis/tasks/{id}`.
pub(crate) async fn get(Path(id): Path<String>) -> Result<Response, Problem> {
    Ok(Json(task(&id)?.status()).into_response())
}

/// `DELETE /_kinesis/tasks/{id}`: cancels; `200` with the final status, or
/// `202` with the current one if the task has not ended within
/// [`CANCEL_WAIT`].
pub(crate) async fn cancel(Path(id): Path<String>) -> Result<Response, Problem> {
    let task = task(&id)?;
    task.cancel();
    Ok(match tokio::time::timeout(CANCEL_WAIT, task.wait()).await {
        Ok(status) => (StatusCode::OK, Json(status)).into_response(),
        Err(_) => (StatusCode::ACCEPTED, Json(task.status())).into_response(),
    })
}

/// `GET /_kinesis/tasks/{id}/_watch`: one `progress` event per change of
/// the status (the first is the status now), `id` counting from 1; the
/// stream ends after the event that says the task finished, or when the
/// server stops.
pub(crate) async fn watch(
    State(ops): State<Ops>,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let task = task(&id)?;
    let mut seq = 0u64;
    let events = statuses(task.watch())
        .map(move |status| {
            seq += 1;
            let data = serde_json::to_string(&status).unwrap_or_else(|_| "null".into());
            Ok::<_, Infallible>(Event::default().event("progress").id(seq.to_string()).data(data))
        })
        .take_until(ops.shutdown.clone().cancelled_owned());
    let keep_alive = KeepAlive::new().interval(ops.keep_alive).text("keep-alive");
    Ok(Sse::new(events).keep_alive(keep_alive).into_response())
}

/// The statuses of a task as a stream, the current one first, ending with
/// the one that says it finished.
fn statuses(
    rx: tokio::sync::watch::Receiver<kinesis::tasks::TaskStatus>,
) -> impl futures::Stream<Item = kinesis::tasks::TaskStatus> {
    futures::stream::unfold(Some(rx), |rx| async move {
        let mut rx = rx?;
        rx.changed().await.ok()?;
        let status = rx.borrow_and_update().clone();
        let more = (!status.state.is_finished()).then_some(rx);
        Some((status, more))
    })
}
