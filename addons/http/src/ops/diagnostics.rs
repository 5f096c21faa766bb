//! `GET /_kinesis/diagnostics`.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::Ops;

/// The component tree with each component's diagnostics, the containers'
/// escalated failures and the tasks; see [`kinesis::diagnostics::report`].
pub(crate) async fn diagnostics(State(ops): State<Ops>) -> Response {
    let report = kinesis::diagnostics::report(&[&ops.root]);
    Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "task_workers": kinesis::tasks::TaskManager::global().workers(),
        "components": report.components,
        "failures": report.failures,
        "tasks": report.tasks,
    }))
    .into_response()
}
