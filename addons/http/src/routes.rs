//! The requests of the route table, routed through
//! [`DynComponent`](kinesis::DynComponent).
//!
//! Order of checks: the path (404, 414), the method (405 with `Allow`), the
//! component's stage (409 before `Started`, 503 once stopping), the content
//! type (415), the preconditions (428, 400 for a malformed header), the body
//! (413, 400, 422), then the component itself.
//!
//! Requests that may wait (for their body, or for a component: writes,
//! method calls, control) are bounded by the request timeout (504). Reads of
//! the tree and of a component answer from the latest snapshot at once and
//! carry no timer: arming one per request wakes the runtime's timer driver
//! every time (a syscall and a thread wake-up), which cost reads about a
//! third of their throughput.

use axum::body::Body;
use axum::extract::Request;
use axum::http::header::{HeaderName, HeaderValue, CONTENT_TYPE, ETAG};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::future::BoxFuture;
use kinesis::dynamic::{control_from_op, SharedDyn};
use kinesis::methods::MethodInfo;
use kinesis::{DynComponent, ETag, Error, JsonSnapshot, Precondition, Stage, State as Coarse};
use serde::Serialize;
use serde_json::Value;

use crate::app::AppState;
use crate::body::{self, Accept};
use crate::conditional;
use crate::problem::Problem;
use crate::resolve::{resolve, Target};

const ALLOW_TREE: &str = "GET, HEAD";
const ALLOW_RESOURCE: &str = "GET, HEAD, PUT, PATCH";
const ALLOW_POST: &str = "POST";
const ALLOW_READ_METHOD: &str = "GET, HEAD, POST";

/// Handles every request: resolves the path, then routes by method.
///
/// Everything that needs no waiting (resolution, checks, reads of the tree,
/// of a component and `_watch`) is done before a future is made, so those
/// answers cost one small allocation; only work that waits gets a (bounded)
/// future.
pub(crate) fn dispatch(app: AppState, request: Request) -> BoxFuture<'static, Response> {
    match plan(&app, request) {
        Ok(Plan::Now(response)) => Box::pin(std::future::ready(response)),
        Ok(Plan::Wait(work)) => {
            let timeout = app.options().request_timeout;
            Box::pin(async move {
                match tokio::time::timeout(timeout, work).await {
                    Ok(Ok(response)) => response,
                    Ok(Err(problem)) => problem.into_response(),
                    Err(_) => Problem::timeout(timeout).into_response(),
                }
            })
        }
        Err(problem) => Box::pin(std::future::ready(problem.into_response())),
    }
}

/// What a request needs: an answer now, or work that waits (for its body,
/// or for a component), bounded by the request timeout (504 past it; what
/// the component was asked to do may still happen).
enum Plan {
    Now(Response),
    Wait(BoxFuture<'static, Result<Response, Problem>>),
}

fn plan(app: &AppState, request: Request) -> Result<Plan, Problem> {
    let (parts, body) = request.into_parts();
    let method = &parts.method;
    let headers = parts.headers;
    let limit = app.options().body_limit;
    let is_get = *method == Method::GET || *method == Method::HEAD;
    match resolve(app.root(), parts.uri.path())? {
        Target::Tree if is_get => tree(app).map(Plan::Now),
        Target::Tree => Err(Problem::method_not_allowed(method.as_str(), ALLOW_TREE)),
        Target::Resource(c) => {
            let allowed = is_get || *method == Method::PUT || *method == Method::PATCH;
            if !allowed {
                return Err(Problem::method_not_allowed(method.as_str(), ALLOW_RESOURCE));
            }
            ready(&*c)?;
            if is_get {
                return read(&*c, &headers).map(Plan::Now);
            }
            let accept = if *method == Method::PUT { Accept::Json } else { Accept::MergePatch };
            body::require(&headers, accept).map_err(|p| match accept {
                Accept::Json => p,
                Accept::MergePatch => p.with_header(
                    HeaderName::from_static("accept-patch"),
                    "application/merge-patch+json",
                ),
            })?;
            let if_match =
                conditional::if_match(&headers)?.ok_or_else(Problem::precondition_required)?;
            Ok(Plan::Wait(Box::pin(write(c, accept, body, limit, if_match))))
        }
        Target::Member(c, "_control") => {
            if *method != Method::POST {
                return Err(Problem::method_not_allowed(method.as_str(), ALLOW_POST));
            }
            ready(&*c)?;
            Ok(Plan::Wait(Box::pin(control(c, headers, body, limit))))
        }
        Target::Member(c, "_watch") => {
            if !is_get {
                return Err(Problem::method_not_allowed(method.as_str(), ALLOW_TREE));
            }
            ready(&*c)?;
            crate::sse::watch(&c, app.shutdown(), app.options().keep_alive).map(Plan::Now)
        }
        Target::Member(c, name) => {
            let info = c.methods().iter().find(|m| m.name == name).ok_or_else(|| {
                if c.as_container().is_some() {
                    Problem::not_found(&format!("no component or method at {}", parts.uri.path()))
                } else {
                    Problem::not_found(&format!("{} has no method `{name}`", c.uri()))
                }
            })?;
            if *method == Method::POST {
                ready(&*c)?;
                let if_match = conditional::if_match(&headers)?;
                Ok(Plan::Wait(Box::pin(async move {
                    let args = body::arguments(&headers, body, limit).await?;
                    call(c, info.name, Value::Object(args), if_match).await
                })))
            } else if is_get && !info.mutating {
                ready(&*c)?;
                let args = body::query_arguments(parts.uri.query(), info.args)?;
                Ok(Plan::Wait(Box::pin(call(c, info.name, Value::Object(args), None))))
            } else if info.mutating {
                Err(Problem::method_not_allowed(method.as_str(), ALLOW_POST))
            } else {
                Err(Problem::method_not_allowed(method.as_str(), ALLOW_READ_METHOD))
            }
        }
    }
}

/// 409 unless the component is `Started`; 503 once it is stopping.
fn ready(c: &dyn DynComponent) -> Result<(), Problem> {
    match c.stage() {
        Stage::Started => Ok(()),
        Stage::Aborting
        | Stage::Stopping
        | Stage::Stopped
        | Stage::TearingDown
        | Stage::TornDown => Err(Problem::from_error(&Error::Stopping(c.uri().to_owned()), false)),
        _ => Err(Problem::from_error(&Error::NotStarted(c.uri().to_owned()), false)),
    }
}

/// One line of `GET /`.
#[derive(Serialize)]
struct Node {
    uri: String,
    #[serde(rename = "type")]
    type_name: &'static str,
    stage: Stage,
    state: Coarse,
    etag: ETag,
    version: u64,
}

/// `GET /`: every exposed component, depth first in start order.
fn tree(app: &AppState) -> Result<Response, Problem> {
    fn visit(c: &SharedDyn, out: &mut Vec<Node>) {
        if !c.exposed() {
            return;
        }
        let meta = c.meta();
        out.push(Node {
            uri: meta.uri,
            type_name: meta.type_name,
            stage: meta.stage,
            state: meta.state,
            etag: meta.etag,
            version: meta.version,
        });
        if let Some(container) = c.as_container() {
            for child in container.list() {
                visit(&child, out);
            }
        }
    }
    let mut components = Vec::new();
    if let Some(root) = app.root().handle() {
        visit(&(std::sync::Arc::new(root) as SharedDyn), &mut components);
    }
    #[derive(Serialize)]
    struct Tree {
        components: Vec<Node>,
    }
    json(StatusCode::OK, &Tree { components })
}

/// `{"meta", "data"}` of one snapshot.
#[derive(Serialize)]
struct Resource<'a> {
    meta: MetaView<'a>,
    data: &'a kinesis::JsonText,
}

/// The fields of [`Meta`], in its order, borrowed from the component and
/// one snapshot (so `meta`, `data` and the `ETag` header always agree, and
/// the hot path allocates nothing for them).
#[derive(Serialize)]
struct MetaView<'a> {
    name: &'a str,
    uri: &'a str,
    #[serde(rename = "type")]
    type_name: &'static str,
    stage: Stage,
    state: Coarse,
    etag: &'a str,
    version: u64,
    methods: &'static [MethodInfo],
}

impl<'a> MetaView<'a> {
    fn of(c: &'a dyn DynComponent, snapshot: &JsonSnapshot, etag: &'a str) -> Self {
        MetaView {
            name: c.name(),
            uri: c.uri(),
            type_name: c.type_name(),
            stage: snapshot.stage,
            state: snapshot.stage.state(),
            etag,
            version: snapshot.version,
            methods: c.methods(),
        }
    }
}

/// The resource representation of `snapshot`, with its `ETag`.
fn resource(c: &dyn DynComponent, snapshot: &JsonSnapshot) -> Result<Response, Problem> {
    let quoted = snapshot.etag.quoted();
    let meta = MetaView::of(c, snapshot, quoted.trim_matches('"'));
    let mut response = json(StatusCode::OK, &Resource { meta, data: &snapshot.data })?;
    let etag = HeaderValue::try_from(quoted).expect("a quoted ETag is a valid header value");
    response.headers_mut().insert(ETAG, etag);
    Ok(response)
}

/// `GET {uri}`.
fn read(c: &dyn DynComponent, headers: &HeaderMap) -> Result<Response, Problem> {
    let snapshot = c.snapshot_json().map_err(|e| Problem::from_error(&e, false))?;
    if conditional::not_modified(headers, &snapshot.etag)? {
        let mut response = StatusCode::NOT_MODIFIED.into_response();
        response.headers_mut().insert(ETAG, conditional::etag_value(&snapshot.etag));
        return Ok(response);
    }
    resource(c, &snapshot)
}

/// `PUT {uri}` (replace with the body) and `PATCH {uri}` (merge the body).
async fn write(
    c: SharedDyn,
    accept: Accept,
    body: Body,
    limit: usize,
    if_match: Precondition,
) -> Result<Response, Problem> {
    let value = body::parse(&body::read(body, limit).await?)?;
    let written = match accept {
        Accept::Json => c.replace_json(value, if_match).await,
        Accept::MergePatch => c.merge_patch_json(value, if_match).await,
    };
    let snapshot = written.map_err(|e| Problem::from_error(&e, true))?;
    resource(&*c, &snapshot)
}

/// `POST {uri}/{method}` and `GET {uri}/{method}`.
async fn call(
    c: SharedDyn,
    method: &'static str,
    args: Value,
    if_match: Option<Precondition>,
) -> Result<Response, Problem> {
    let conditional = if_match.is_some();
    let if_match = if_match.unwrap_or_default();
    let reply = c
        .call_json(method, args, if_match)
        .await
        .map_err(|e| Problem::from_error(&e, conditional))?;
    json(StatusCode::OK, &reply)
}

/// `POST {uri}/_control`.
async fn control(
    c: SharedDyn,
    headers: HeaderMap,
    body: Body,
    limit: usize,
) -> Result<Response, Problem> {
    let args = body::arguments(&headers, body, limit).await?;
    let op = args.get("op").and_then(Value::as_str).ok_or_else(|| {
        Problem::from_error(
            &Error::Invalid(
                "the body needs {\"op\": \"restart\" | \"stop\" | \"persist\" | \"notify\"}".into(),
            ),
            false,
        )
    })?;
    let control = control_from_op(op).map_err(|e| Problem::from_error(&e, false))?;
    c.control(control).await.map_err(|e| Problem::from_error(&e, false))?;
    #[derive(Serialize)]
    struct Done<'a> {
        op: &'a str,
        uri: &'a str,
        stage: Stage,
    }
    json(StatusCode::OK, &Done { op, uri: c.uri(), stage: c.stage() })
}

/// A JSON response.
fn json(status: StatusCode, value: &impl Serialize) -> Result<Response, Problem> {
    let mut bytes = Vec::with_capacity(512);
    serde_json::to_writer(&mut bytes, value).map_err(|e| {
        Problem::from_error(&Error::Handler(format!("the reply does not serialise: {e}")), false)
    })?;
    let mut response = (status, bytes).into_response();
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kinesis::{Component, Container};
    use serde::Deserialize;

    #[derive(Clone, Default, Serialize, Deserialize)]
    struct Thing {
        n: u64,
    }
    impl Component for Thing {}

    #[tokio::test]
    async fn the_meta_view_serialises_exactly_as_meta() {
        let root = Container::root().await.unwrap();
        root.add("thing", Thing { n: 3 }).await.unwrap();
        let c = root.get_dyn("thing").unwrap();
        let snapshot = c.snapshot_json().unwrap();
        let quoted = snapshot.etag.quoted();
        let view = MetaView::of(&*c, &snapshot, quoted.trim_matches('"'));
        assert_eq!(
            serde_json::to_string(&view).unwrap(),
            serde_json::to_string(&c.meta()).unwrap()
        );
        root.shutdown().await.unwrap();
    }
}
