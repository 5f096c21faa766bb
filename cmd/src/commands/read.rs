//! `ps`, `get` and `tasks`: reading a runtime.

use serde_json::{json, Value};

use super::Session;
use crate::output::{cell, pretty, table, Failure};

/// `kinesis ps`: the component tree, depth first.
pub(super) async fn ps(s: &Session) -> Result<(), Failure> {
    let nodes = s.client.tree().await?;
    let human = || {
        let rows: Vec<Vec<String>> = nodes
            .iter()
            .map(|n| {
                vec![
                    n.uri.clone(),
                    n.type_name.clone(),
                    n.stage.to_string(),
                    n.version.to_string(),
                    n.restarts.to_string(),
                ]
            })
            .collect();
        table(&["URI", "TYPE", "STAGE", "VERSION", "RESTARTS"], &rows)
    };
    s.out.either(human, &json!(nodes));
    Ok(())
}

/// `kinesis get URI`: the state on stdout (meta too with `--json`), the
/// ETag on stderr; the ETag is remembered for `put`.
pub(super) async fn get(s: &Session, uri: &str) -> Result<(), Failure> {
    let snapshot = s.client.dyn_remote(uri).snapshot().await?;
    s.remember(uri, snapshot.etag);
    s.out.either(
        || pretty(&snapshot.data),
        &json!({
            "uri": uri,
            "etag": snapshot.etag,
            "version": snapshot.version,
            "meta": snapshot.meta,
            "data": snapshot.data,
        }),
    );
    s.out.note(&format!(
        "etag {} version {} (remembered for `kinesis put {uri}`)",
        snapshot.etag, snapshot.version
    ));
    Ok(())
}

/// `kinesis tasks`: the runtime's tasks and their progress.
pub(super) async fn tasks(s: &Session) -> Result<(), Failure> {
    let answer = s.client.runtime_resource("tasks").await?;
    let tasks = match answer.get("tasks") {
        Some(Value::Array(tasks)) => tasks.clone(),
        _ => {
            return Err(Failure::Remote(kinesis::Error::Invalid(format!(
                "{} answered tasks in a shape this command does not know",
                s.url
            ))))
        }
    };
    let human = || {
        let rows: Vec<Vec<String>> = tasks
            .iter()
            .map(|t| {
                let progress = match (t["done"].as_u64(), t["total"].as_u64()) {
                    (Some(done), Some(total)) if total > 0 => format!("{done}/{total}"),
                    (Some(done), _) => done.to_string(),
                    _ => "-".to_owned(),
                };
                let message = match t.get("error") {
                    Some(Value::String(e)) => format!("error: {e}"),
                    _ => cell(&t["message"]),
                };
                vec![
                    cell(&t["id"]),
                    cell(&t["name"]),
                    cell(&t["owner"]),
                    cell(&t["state"]),
                    progress,
                    message,
                ]
            })
            .collect();
        table(&["ID", "NAME", "OWNER", "STATE", "PROGRESS", "MESSAGE"], &rows)
    };
    s.out.either(human, &Value::Array(tasks.clone()));
    Ok(())
}
