//! The handlers of the REST surface, routed through
//! [`DynComponent`](kinesis::DynComponent).
//!
//! Every path below the root is resolved against the live tree per request
//! ([`resolve`](crate::resolve::resolve)), so a component's routes appear
//! when it starts and disappear when it stops; the router gives each HTTP
//! method its handler here, and [`other`] answers the rest.
//!
//! Order of checks: the path (404, 414), the method (405 with `Allow`), the
//! component's stage (409 before `Started`, 503 once stopping), the content
//! type (415), the preconditions (428, 400 for a malformed header), the body
//! (413, 400, 422), then the component itself.
//!
//! Requests that may wait (for their body, or for a component: writes,
//! method calls, control) are bounded by the request timeout (504): the
//! router puts tower-http's `TimeoutLayer` on `PUT`, `PATCH` and `POST`, and
//! [`get`] bounds the read-only method calls itself. Reads of the tree and of
//! a component answer from the latest snapshot at once and carry no timer:
//! arming one per request wakes the runtime's timer driver every time (a
//! syscall and a thread wake-up), which cost reads about a third of their
//! throughput.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::{HeaderName, HeaderValue, CONTENT_TYPE, ETAG};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use kinesis::dynamic::{control_from_op, SharedDyn};
use kinesis::methods::MethodInfo;
use kinesis::{
    Caller, Container, Control, DynComponent, ETag, Error, JsonSnapshot, Precondition, Stage,
    State as Coarse,
};
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::body::{self, Accept};
use crate::conditional;
use crate::problem::Problem;
use crate::resolve::{resolve, Target};
use crate::security::guard::{authorize, authorize_tree};
use crate::security::{Identity, Verb};

const ALLOW_TREE: &str = "GET, HEAD";
const ALLOW_RESOURCE: &str = "GET, HEAD, PUT, PATCH";
const ALLOW_POST: &str = "POST";
const ALLOW_READ_METHOD: &str = "GET, HEAD, POST";

/// What every handler shares: the tree served and the settings.
#[derive(Clone)]
pub(crate) struct Api(Arc<ApiShared>);

struct ApiShared {
    root: Container,
    body_limit: usize,
    request_timeout: Duration,
    keep_alive: Duration,
    watch_buffer: usize,
    shutdown: CancellationToken,
}

impl Api {
    pub(crate) fn new(
        root: Container,
        body_limit: usize,
        request_timeout: Duration,
        keep_alive: Duration,
        watch_buffer: usize,
        shutdown: CancellationToken,
    ) -> Api {
        Api(Arc::new(ApiShared {
            root,
            body_limit,
            request_timeout,
            keep_alive,
            watch_buffer,
            shutdown,
        }))
    }

    /// The container whose tree is served.
    pub(crate) fn root(&self) -> &Container {
        &self.0.root
    }

    /// How long a request that waits for a component may take.
    pub(crate) fn request_timeout(&self) -> Duration {
        self.0.request_timeout
    }
}

/// `GET` and `HEAD` of every path but `/`.
pub(crate) async fn get(State(api): State<Api>, request: Request) -> Result<Response, Problem> {
    let (uri, headers) = (request.uri(), request.headers());
    let identity = request.extensions().get::<Arc<Identity>>();
    let may = |verb, c: &SharedDyn| authorize(identity, verb, c.uri());
    match resolve(api.root(), uri.path())? {
        Target::Tree => {
            authorize_tree(identity)?;
            tree(&api)
        }
        Target::Resource(c) => {
            may(Verb::Read, &c)?;
            ready(&*c)?;
            read(&*c, headers)
        }
        Target::Member(_, "_control" | "_batch") => {
            Err(Problem::method_not_allowed("GET", ALLOW_POST))
        }
        Target::Member(c, "_watch") => {
            may(Verb::Read, &c)?;
            ready(&*c)?;
            if let Some(prefix) = crate::kv_watch::prefix_of(uri.query()) {
                return crate::kv_watch::watch(&c, prefix, &api.0.shutdown, api.0.keep_alive);
            }
            let since = crate::sse::resume_from(headers, uri.query())?;
            crate::sse::watch(&c, since, &api.0.shutdown, api.0.keep_alive, api.0.watch_buffer)
        }
        Target::Member(c, name) => {
            let info = method_of(&c, name, uri)?;
            if info.mutating {
                return Err(Problem::method_not_allowed("GET", ALLOW_POST));
            }
            may(Verb::Read, &c)?;
            ready(&*c)?;
            let args = body::query_arguments(uri.query(), info.args)?;
            let timeout = api.0.request_timeout;
            match tokio::time::timeout(timeout, call(c, info.name, Value::Object(args), None)).await
            {
                Ok(answer) => answer,
                Err(_) => Err(Problem::timeout(timeout)),
            }
        }
    }
}

/// `GET /`: the tree.
pub(crate) async fn tree_root(
    State(api): State<Api>,
    request: Request,
) -> Result<Response, Problem> {
    authorize_tree(request.extensions().get())?;
    tree(&api)
}

/// `GET /_kinesis/openapi.json`: the OpenAPI 3.1 document of the live tree.
pub(crate) async fn openapi(State(api): State<Api>) -> Result<Response, Problem> {
    json(StatusCode::OK, &crate::openapi::document(api.root()))
}

/// Any other method on `/`.
pub(crate) async fn tree_other(method: Method) -> Problem {
    Problem::method_not_allowed(method.as_str(), ALLOW_TREE)
}

/// `PUT {uri}`: replace the state.
pub(crate) async fn put(State(api): State<Api>, request: Request) -> Result<Response, Problem> {
    let (parts, body) = request.into_parts();
    let (uri, headers) = (parts.uri, parts.headers);
    let c = resource_for(&api, &Method::PUT, &uri)?;
    authorize(parts.extensions.get(), Verb::Write, c.uri())?;
    let caller = caller_of(&parts.extensions);
    Caller::scope(caller, write(c, Accept::Json, &headers, body, api.0.body_limit)).await
}

/// `PATCH {uri}`: merge-patch the state.
pub(crate) async fn patch(State(api): State<Api>, request: Request) -> Result<Response, Problem> {
    let (parts, body) = request.into_parts();
    let (uri, headers) = (parts.uri, parts.headers);
    let c = resource_for(&api, &Method::PATCH, &uri)?;
    authorize(parts.extensions.get(), Verb::Write, c.uri())?;
    let caller = caller_of(&parts.extensions);
    Caller::scope(caller, write(c, Accept::MergePatch, &headers, body, api.0.body_limit)).await
}

/// `POST {uri}/{method}`, `{uri}/_control` and `{uri}/_batch`.
pub(crate) async fn post(State(api): State<Api>, request: Request) -> Result<Response, Problem> {
    let (parts, body) = request.into_parts();
    let (uri, headers, extensions) = (parts.uri, parts.headers, parts.extensions);
    let may = |verb, c: &SharedDyn| authorize(extensions.get(), verb, c.uri());
    let answer = async {
        match resolve(api.root(), uri.path())? {
            Target::Tree => Err(Problem::method_not_allowed("POST", ALLOW_TREE)),
            Target::Resource(_) => Err(Problem::method_not_allowed("POST", ALLOW_RESOURCE)),
            Target::Member(_, "_watch") => Err(Problem::method_not_allowed("POST", ALLOW_TREE)),
            Target::Member(c, "_control") => {
                may(Verb::Control, &c)?;
                ready(&*c)?;
                control(c, &headers, body, api.0.body_limit).await
            }
            Target::Member(c, "_batch") => {
                may(Verb::Write, &c)?;
                ready(&*c)?;
                let if_match = conditional::if_match(&headers)?;
                crate::batch::batch(c, &headers, body, api.0.body_limit, if_match).await
            }
            Target::Member(c, name) => {
                let info = method_of(&c, name, &uri)?;
                may(if info.mutating { Verb::Write } else { Verb::Read }, &c)?;
                ready(&*c)?;
                let if_match = conditional::if_match(&headers)?;
                let args = body::arguments(&headers, body, api.0.body_limit).await?;
                call(c, info.name, Value::Object(args), if_match).await
            }
        }
    };
    Caller::scope(caller_of(&extensions), answer).await
}

/// The caller a request's identity (put there by the guard) makes.
fn caller_of(extensions: &axum::http::Extensions) -> Arc<Caller> {
    let identity = extensions.get::<Arc<Identity>>().cloned().unwrap_or_else(Identity::anonymous);
    Arc::clone(identity.caller())
}

/// Every other method: 405 with what the path allows (404 if it names
/// nothing).
pub(crate) async fn other(
    State(api): State<Api>,
    method: Method,
    uri: Uri,
) -> Result<Response, Problem> {
    let allow = match resolve(api.root(), uri.path())? {
        Target::Tree => ALLOW_TREE,
        Target::Resource(_) => ALLOW_RESOURCE,
        Target::Member(_, "_control" | "_batch") => ALLOW_POST,
        Target::Member(_, "_watch") => ALLOW_TREE,
        Target::Member(c, name) => {
            if method_of(&c, name, &uri)?.mutating {
                ALLOW_POST
            } else {
                ALLOW_READ_METHOD
            }
        }
    };
    Err(Problem::method_not_allowed(method.as_str(), allow))
}

/// The component `PUT` or `PATCH` names, checked up to its preconditions.
fn resource_for(api: &Api, method: &Method, uri: &Uri) -> Result<SharedDyn, Problem> {
    match resolve(api.root(), uri.path())? {
        Target::Resource(c) => Ok(c),
        Target::Tree | Target::Member(_, "_watch") => {
            Err(Problem::method_not_allowed(method.as_str(), ALLOW_TREE))
        }
        Target::Member(_, "_control" | "_batch") => {
            Err(Problem::method_not_allowed(method.as_str(), ALLOW_POST))
        }
        Target::Member(c, name) => {
            let allow =
                if method_of(&c, name, uri)?.mutating { ALLOW_POST } else { ALLOW_READ_METHOD };
            Err(Problem::method_not_allowed(method.as_str(), allow))
        }
    }
}

/// The method `name` of `c`, or 404.
fn method_of(c: &SharedDyn, name: &str, uri: &Uri) -> Result<&'static MethodInfo, Problem> {
    c.methods().iter().find(|m| m.name == name).ok_or_else(|| {
        if c.as_container().is_some() {
            Problem::not_found(&format!("no component or method at {}", uri.path()))
        } else {
            Problem::not_found(&format!("{} has no method `{name}`", c.uri()))
        }
    })
}

/// 409 unless the component is `Started`; 503 once it is stopping.
fn ready(c: &dyn DynComponent) -> Result<(), Problem> {
    kinesis::dynamic::ready(c).map_err(|e| Problem::from_error(&e, false))
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
    /// Restarts after failures.
    restarts: u32,
}

/// `GET /`: every exposed component, depth first in start order.
fn tree(api: &Api) -> Result<Response, Problem> {
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
            restarts: c.diagnostics().restarts,
        });
        if let Some(container) = c.as_container() {
            for child in container.list() {
                visit(&child, out);
            }
        }
    }
    let mut components = Vec::new();
    if let Some(root) = api.root().handle() {
        visit(&(std::sync::Arc::new(root) as SharedDyn), &mut components);
    }
    #[derive(Serialize)]
    struct Tree {
        components: Vec<Node>,
    }
    json(StatusCode::OK, &Tree { components })
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
    methods: MethodsJson,
}

/// A method table as JSON, serialised once per table (tables are static).
struct MethodsJson(&'static [MethodInfo]);

impl Serialize for MethodsJson {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        type Cache = std::sync::RwLock<std::collections::HashMap<usize, &'static RawValue>>;
        static CACHE: std::sync::OnceLock<Cache> = std::sync::OnceLock::new();
        let cache = CACHE.get_or_init(Cache::default);
        let key = self.0.as_ptr() as usize;
        let cached = cache.read().unwrap_or_else(|p| p.into_inner()).get(&key).copied();
        let raw = match cached {
            Some(raw) => raw,
            None => {
                let text = serde_json::to_string(self.0).map_err(serde::ser::Error::custom)?;
                let raw: &'static RawValue =
                    Box::leak(RawValue::from_string(text).map_err(serde::ser::Error::custom)?);
                *cache.write().unwrap_or_else(|p| p.into_inner()).entry(key).or_insert(raw)
            }
        };
        raw.serialize(s)
    }
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
            methods: MethodsJson(c.methods()),
        }
    }
}

/// The resource representation of `snapshot`, `{"meta": …, "data": …}`,
/// with its `ETag`. `data` is the snapshot's JSON text as the commit's first
/// reader made it: only the small `meta` object is serialised here.
fn resource(c: &dyn DynComponent, snapshot: &JsonSnapshot) -> Result<Response, Problem> {
    let etag = snapshot.etag.to_hex();
    let meta = MetaView::of(c, snapshot, &etag);
    let data = snapshot.data.as_bytes();
    let mut bytes = Vec::with_capacity(data.len() + 320);
    bytes.extend_from_slice(br#"{"meta":"#);
    serde_json::to_writer(&mut bytes, &meta).map_err(|e| {
        Problem::from_error(&Error::Handler(format!("the meta does not serialise: {e}")), false)
    })?;
    bytes.extend_from_slice(br#","data":"#);
    bytes.extend_from_slice(data);
    bytes.push(b'}');
    let mut response = (StatusCode::OK, bytes).into_response();
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(ETAG, conditional::etag_value(&snapshot.etag));
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
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<Response, Problem> {
    ready(&*c)?;
    body::require(headers, accept).map_err(|p| match accept {
        Accept::Json => p,
        Accept::MergePatch => {
            p.with_header(HeaderName::from_static("accept-patch"), "application/merge-patch+json")
        }
    })?;
    let if_match = conditional::if_match(headers)?.ok_or_else(Problem::precondition_required)?;
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

/// `POST {uri}/_control`: `{"op": …}`, and for a restart an optional
/// `"after"` delay (`"5s"`, `"250ms"`, `"1m"`).
///
/// Answers `200` once the operation is done, except a restart with a delay:
/// the component stops now and starts again once the delay has passed, so
/// that one answers `202 Accepted` as soon as it is under way, with
/// `"after"` in the body.
async fn control(
    c: SharedDyn,
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<Response, Problem> {
    let invalid = |message: String| Problem::from_error(&Error::Invalid(message), false);
    let args = body::arguments(headers, body, limit).await?;
    let op = args.get("op").and_then(Value::as_str).ok_or_else(|| {
        invalid("the body needs {\"op\": \"restart\" | \"stop\" | \"persist\" | \"notify\"}".into())
    })?;
    let mut control = control_from_op(op).map_err(|e| Problem::from_error(&e, false))?;
    let after = match args.get("after") {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) if op == "restart" => {
            let delay = humantime::parse_duration(text).map_err(|e| {
                invalid(format!("`after` must be a duration such as \"5s\" or \"250ms\": {e}"))
            })?;
            control = Control::RestartAfter(delay);
            Some(text.as_str())
        }
        Some(Value::String(_)) => {
            return Err(invalid(format!("`after` is for restart only, not for `{op}`")))
        }
        Some(_) => return Err(invalid("`after` must be a duration string such as \"5s\"".into())),
    };
    #[derive(Serialize)]
    struct Done<'a> {
        op: &'a str,
        uri: &'a str,
        stage: Stage,
        #[serde(skip_serializing_if = "Option::is_none")]
        after: Option<&'a str>,
    }
    let status = if after.is_some() {
        // Polled once here, the control message is queued before the answer;
        // what follows (stop, the wait, start) goes on without this request.
        let mut pending = c.control(control);
        if let std::task::Poll::Ready(done) = futures::poll!(pending.as_mut()) {
            done.map_err(|e| Problem::from_error(&e, false))?;
        } else {
            let uri = c.uri().to_owned();
            tokio::spawn(async move {
                if let Err(e) = pending.await {
                    tracing::warn!(uri, error = %e, "delayed restart failed");
                }
            });
        }
        StatusCode::ACCEPTED
    } else {
        c.control(control).await.map_err(|e| Problem::from_error(&e, false))?;
        StatusCode::OK
    };
    json(status, &Done { op, uri: c.uri(), stage: c.stage(), after })
}

/// A JSON response.
pub(crate) fn json(status: StatusCode, value: &impl Serialize) -> Result<Response, Problem> {
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
