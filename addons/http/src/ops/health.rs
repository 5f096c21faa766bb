//! `GET /_kinesis/health` and `GET /_kinesis/ready`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use kinesis::{Container, DynComponent, Stage};
use serde::Serialize;
use serde_json::json;

use super::Ops;

/// How long one check may take before it counts as failed.
pub(crate) const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// One readiness check.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Check {
    /// `server`, `components`, `store` or `health:{uri}`.
    name: String,
    ok: bool,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<String>,
}

impl Check {
    fn pass(name: impl Into<String>) -> Check {
        Check { name: name.into(), ok: true, detail: None }
    }

    fn fail(name: impl Into<String>, detail: impl Into<String>) -> Check {
        Check { name: name.into(), ok: false, detail: Some(detail.into()) }
    }
}

fn started_at() -> Instant {
    static AT: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *AT.get_or_init(Instant::now)
}

/// Liveness: the runtime answers.
pub(crate) async fn health(State(ops): State<Ops>) -> Response {
    let _ = &ops;
    Json(json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_seconds": started_at().elapsed().as_secs_f64(),
    }))
    .into_response()
}

/// Readiness: see the [module table](super).
pub(crate) async fn ready(State(ops): State<Ops>, headers: HeaderMap) -> Response {
    started_at();
    let checks = checks(&ops).await;
    if checks.iter().all(|c| c.ok) {
        return Json(json!({"status": "ready", "checks": checks})).into_response();
    }
    let failing: Vec<&Check> = checks.iter().filter(|c| !c.ok).collect();
    let detail = failing
        .iter()
        .map(|c| format!("{}: {}", c.name, c.detail.as_deref().unwrap_or("failed")))
        .collect::<Vec<_>>()
        .join("; ");
    let body = json!({
        "type": "urn:kinesis:problem:not-ready",
        "title": "Service Unavailable",
        "status": 503,
        "detail": format!("not ready: {detail}"),
        "trace_id": super::trace_id(&headers),
        "checks": failing,
    });
    let mut response = (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response();
    response
        .headers_mut()
        .insert(CONTENT_TYPE, axum::http::HeaderValue::from_static(crate::problem::PROBLEM_JSON));
    response
}

/// Every readiness check, in a fixed order: the server, the components'
/// stages, the store, then each component's own health check.
pub(crate) async fn checks(ops: &Ops) -> Vec<Check> {
    let mut checks = Vec::new();
    checks.push(if ops.shutdown.is_cancelled() {
        Check::fail("server", "the HTTP server is stopping")
    } else {
        Check::pass("server")
    });
    checks.extend(tree_checks(&ops.root).await);
    checks
}

/// The checks of the tree under `root`: the components' stages, the store,
/// then each component's own health check. `Err` with the failing ones,
/// `name: detail` joined by `; `. What the gRPC add-on's health service
/// follows.
pub async fn readiness(root: &Container) -> Result<(), String> {
    let failing: Vec<String> = tree_checks(root)
        .await
        .into_iter()
        .filter(|c| !c.ok)
        .map(|c| format!("{}: {}", c.name, c.detail.as_deref().unwrap_or("failed")))
        .collect();
    if failing.is_empty() {
        Ok(())
    } else {
        Err(failing.join("; "))
    }
}

async fn tree_checks(root: &Container) -> Vec<Check> {
    let mut checks = Vec::new();
    let own = root.handle().map(|h| Arc::new(h) as Arc<dyn DynComponent>);
    let components: Vec<Arc<dyn DynComponent>> = own.into_iter().chain(root.walk()).collect();
    let mut not_started: Vec<String> = components
        .iter()
        .filter(|c| c.stage() != Stage::Started)
        .map(|c| format!("{} is {}", c.uri(), c.stage()))
        .collect();
    let containers =
        std::iter::once(root.clone()).chain(components.iter().filter_map(|c| c.as_container()));
    for container in containers {
        not_started
            .extend(container.starting().into_iter().map(|uri| format!("{uri} is starting")));
    }
    checks.push(match (components.is_empty(), not_started.is_empty()) {
        (true, _) => Check::fail("components", "the root container is not started"),
        (false, true) => Check::pass("components"),
        (false, false) => Check::fail("components", not_started.join(", ")),
    });
    if let Some(persistence) = root.persistence() {
        let name = format!("store:{}", persistence.store.backend());
        checks.push(match tokio::time::timeout(CHECK_TIMEOUT, persistence.store.ping()).await {
            Ok(Ok(())) => Check::pass(name),
            Ok(Err(e)) => Check::fail(name, e.to_string()),
            Err(_) => Check::fail(name, format!("no answer within {CHECK_TIMEOUT:?}")),
        });
    }
    let health = components.iter().map(|c| {
        let check = c.health();
        let name = format!("health:{}", c.uri());
        async move {
            match tokio::time::timeout(CHECK_TIMEOUT, check).await {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(Check::fail(name, e.to_string())),
                Err(_) => Some(Check::fail(name, format!("no answer within {CHECK_TIMEOUT:?}"))),
            }
        }
    });
    let failed: Vec<Check> =
        futures::future::join_all(health).await.into_iter().flatten().collect();
    if failed.is_empty() {
        checks.push(Check::pass("health"));
    } else {
        checks.extend(failed);
    }
    checks
}
