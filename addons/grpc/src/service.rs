//! The generic kinesis service (`kinesis.v1.Kinesis`): the REST surface of
//! the HTTP add-on over gRPC, on the components under one container.
//!
//! Each call resolves its component against the live tree (an unexposed
//! component, or one below it, is `NOT_FOUND` as over HTTP), checks the
//! caller's grant on its URI (`read`, `write` or `control`, as over HTTP;
//! `PERMISSION_DENIED` without it), checks the stage (`UNAVAILABLE` before
//! `Started` and once stopping), and runs as the caller
//! ([`kinesis::Caller::scope`]) through the same by-name path
//! ([`DynComponent`]) the HTTP add-on takes, so the answers and the errors
//! are the same. `Watch` streams end when the server stops; a client
//! resumes them with `since`.

use std::pin::Pin;
use std::sync::Arc;

use futures::stream::{Stream, StreamExt};
use kinesis::dynamic::{ready, JsonChange, JsonSnapshot, WatchStart};
use kinesis::methods::BatchCall;
use kinesis::{Caller, Container, Control, DynComponent, ETag, Error, Precondition, Result};
use kinesis_http::security::{Identity, Verb};
use kinesis_proto::kinesis_server::Kinesis;
use kinesis_proto::v1 as pb;
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use kinesis_proto::status::status_of;

/// What one watcher may hold queued, in bytes (as the in-process transport).
const WATCH_BUDGET: usize = 1 << 20;

/// The service over the components under `root`.
#[derive(Clone)]
pub(crate) struct Generic {
    root: Container,
    /// Cancelled when the server stops: watches end.
    shutdown: CancellationToken,
}

impl Generic {
    pub(crate) fn new(root: Container, shutdown: CancellationToken) -> Generic {
        Generic { root, shutdown }
    }

    /// The component at `uri`, if remote surfaces may show it.
    fn find(&self, uri: &str) -> Result<Arc<dyn DynComponent>> {
        let c = self.root.lookup(uri)?;
        if !c.exposed() {
            return Err(Error::NotFound(format!("component {uri}")));
        }
        Ok(c)
    }

    /// The component at `uri`, once the caller may do `verb` on it and it
    /// is started.
    fn target<T>(
        &self,
        request: &Request<T>,
        uri: &str,
        verb: impl FnOnce(&dyn DynComponent) -> Result<Verb>,
    ) -> Result<(Arc<dyn DynComponent>, Arc<Caller>)> {
        let identity = identity(request)?;
        let c = self.find(uri)?;
        let verb = verb(&*c)?;
        authorize(&identity, verb, c.uri())?;
        ready(&*c)?;
        Ok((c, Arc::clone(identity.caller())))
    }
}

/// The caller the edge put in the request.
fn identity<T>(request: &Request<T>) -> Result<Arc<Identity>> {
    request
        .extensions()
        .get::<Arc<Identity>>()
        .cloned()
        .ok_or_else(|| Error::Unauthenticated("the call carries no identity".into()))
}

fn authorize(identity: &Identity, verb: Verb, uri: &str) -> Result<()> {
    if identity.allows(verb, uri) {
        return Ok(());
    }
    Err(Error::Forbidden(format!(
        "`{}` may not {verb} {uri}: that needs a grant such as {verb}:{uri}",
        identity.subject
    )))
}

fn fail(error: Error) -> Status {
    status_of(&error)
}

/// A JSON text of a request: `empty` when blank.
fn parse_json(text: &str, what: &str, empty: Value) -> Result<Value> {
    if text.trim().is_empty() {
        return Ok(empty);
    }
    serde_json::from_str(text).map_err(|e| Error::Invalid(format!("{what} is not JSON: {e}")))
}

/// Named arguments: a JSON object, or nothing.
fn arguments(text: &str) -> Result<Value> {
    match parse_json(text, "args_json", Value::Object(Default::default()))? {
        Value::Null => Ok(Value::Object(Default::default())),
        args @ Value::Object(_) => Ok(args),
        _ => Err(Error::Invalid("args_json must be a JSON object of named arguments".into())),
    }
}

/// `if_match`: empty is no condition, `*` any state, else ETags.
fn precondition(tags: &[String]) -> Result<Option<Precondition>> {
    if tags.is_empty() {
        return Ok(None);
    }
    if tags.iter().any(|t| t.trim() == "*") {
        return Ok(Some(Precondition::Any));
    }
    let tags = tags.iter().map(|t| t.parse::<ETag>()).collect::<Result<Vec<_>>>()?;
    Ok(Some(Precondition::Tags(tags)))
}

fn text(json: &kinesis::dynamic::JsonText) -> String {
    String::from_utf8_lossy(json.as_bytes()).into_owned()
}

/// The meta of `c` at `snapshot`.
fn meta_of(c: &dyn DynComponent, snapshot: &JsonSnapshot) -> pb::Meta {
    pb::Meta {
        name: c.name().to_owned(),
        uri: c.uri().to_owned(),
        r#type: c.type_name().to_owned(),
        stage: snapshot.stage.to_string(),
        state: snapshot.stage.state().to_string(),
        etag: snapshot.etag.to_hex(),
        version: snapshot.version,
        methods: c
            .methods()
            .iter()
            .map(|m| pb::Method {
                name: m.name.to_owned(),
                mutating: m.mutating,
                args: m
                    .args
                    .iter()
                    .map(|a| pb::Arg { name: a.name.to_owned(), r#type: a.ty.to_owned() })
                    .collect(),
                returns: m.returns.to_owned(),
                doc: m.doc.to_owned(),
            })
            .collect(),
    }
}

fn resource(c: &dyn DynComponent, snapshot: &JsonSnapshot) -> pb::Resource {
    pb::Resource {
        meta: Some(meta_of(c, snapshot)),
        data_json: text(&snapshot.data),
        etag: snapshot.etag.to_hex(),
        version: snapshot.version,
    }
}

fn event(event: pb::watch_event::Event) -> pb::WatchEvent {
    pb::WatchEvent { event: Some(event) }
}

fn event_of(change: JsonChange, run: &str) -> pb::WatchEvent {
    use pb::watch_event::Event;
    event(match change {
        JsonChange::Stage { prev, curr } => {
            Event::Stage(pb::StageChange { prev: prev.to_string(), curr: curr.to_string() })
        }
        JsonChange::State { prev, curr } => {
            Event::State(pb::StateChange { prev: prev.to_string(), curr: curr.to_string() })
        }
        JsonChange::Updated { prev_version, version, etag, data } => Event::Updated(pb::Updated {
            prev_version,
            version,
            etag: etag.to_hex(),
            data_json: text(&data),
            run: run.to_owned(),
        }),
    })
}

/// The stream a `Watch` answers.
pub(crate) type WatchStream = Pin<Box<dyn Stream<Item = Result<pb::WatchEvent, Status>> + Send>>;

#[tonic::async_trait]
impl Kinesis for Generic {
    async fn tree(
        &self,
        request: Request<pb::TreeRequest>,
    ) -> Result<Response<pb::TreeReply>, Status> {
        let identity = identity(&request).map_err(fail)?;
        if !identity.grants.has_verb(Verb::Read) {
            return Err(fail(authorize(&identity, Verb::Read, "/").unwrap_err()));
        }
        let everything = self.root.handle().map(|h| Arc::new(h) as Arc<dyn DynComponent>);
        let mut components = Vec::new();
        for c in everything.into_iter().chain(self.root.walk()) {
            if !c.exposed() {
                continue;
            }
            let meta = c.meta();
            components.push(pb::Node {
                uri: meta.uri,
                r#type: meta.type_name.to_owned(),
                stage: meta.stage.to_string(),
                state: meta.state.to_string(),
                etag: meta.etag.to_hex(),
                version: meta.version,
                restarts: c.diagnostics().restarts,
            });
        }
        Ok(Response::new(pb::TreeReply { components }))
    }

    async fn get(
        &self,
        request: Request<pb::GetRequest>,
    ) -> Result<Response<pb::GetReply>, Status> {
        let (c, _) =
            self.target(&request, &request.get_ref().uri, |_| Ok(Verb::Read)).map_err(fail)?;
        let if_none_match = match request.get_ref().if_none_match.trim() {
            "" => None,
            tag => Some(tag.parse::<ETag>().map_err(fail)?),
        };
        let snapshot = c.snapshot_json().map_err(fail)?;
        if if_none_match == Some(snapshot.etag) {
            return Ok(Response::new(pb::GetReply { resource: None, not_modified: true }));
        }
        Ok(Response::new(pb::GetReply {
            resource: Some(resource(&*c, &snapshot)),
            not_modified: false,
        }))
    }

    async fn replace(
        &self,
        request: Request<pb::WriteRequest>,
    ) -> Result<Response<pb::Resource>, Status> {
        self.write(request, false).await
    }

    async fn patch(
        &self,
        request: Request<pb::WriteRequest>,
    ) -> Result<Response<pb::Resource>, Status> {
        self.write(request, true).await
    }

    async fn call(
        &self,
        request: Request<pb::CallRequest>,
    ) -> Result<Response<pb::CallReply>, Status> {
        let name = request.get_ref().method.as_str();
        let (c, caller) = self
            .target(&request, &request.get_ref().uri, |c| {
                let info = c.methods().iter().find(|m| m.name == name).ok_or_else(|| {
                    Error::NotFound(format!("{} has no method `{name}`", c.uri()))
                })?;
                Ok(if info.mutating { Verb::Write } else { Verb::Read })
            })
            .map_err(fail)?;
        let pb::CallRequest { method, args_json, if_match, .. } = request.into_inner();
        let args = arguments(&args_json).map_err(fail)?;
        let if_match = precondition(&if_match).map_err(fail)?.unwrap_or_default();
        let reply =
            Caller::scope(caller, c.call_json(&method, args, if_match)).await.map_err(fail)?;
        let json = serde_json::to_string(&reply)
            .map_err(|e| fail(Error::Handler(format!("the reply does not serialise: {e}"))))?;
        Ok(Response::new(pb::CallReply { json }))
    }

    async fn batch(
        &self,
        request: Request<pb::BatchRequest>,
    ) -> Result<Response<pb::BatchReply>, Status> {
        let (c, caller) =
            self.target(&request, &request.get_ref().uri, |_| Ok(Verb::Write)).map_err(fail)?;
        let pb::BatchRequest { calls, if_match, .. } = request.into_inner();
        let calls = calls
            .into_iter()
            .map(|call| Ok(BatchCall { method: call.method, args: arguments(&call.args_json)? }))
            .collect::<Result<Vec<_>>>()
            .map_err(fail)?;
        let if_match = precondition(&if_match).map_err(fail)?.unwrap_or_default();
        let results = Caller::scope(caller, c.batch_json(calls, if_match)).await.map_err(fail)?;
        let results_json = results.iter().map(Value::to_string).collect();
        Ok(Response::new(pb::BatchReply { results_json }))
    }

    async fn control(
        &self,
        request: Request<pb::ControlRequest>,
    ) -> Result<Response<pb::ControlReply>, Status> {
        let (c, caller) =
            self.target(&request, &request.get_ref().uri, |_| Ok(Verb::Control)).map_err(fail)?;
        let pb::ControlRequest { op, after_ms, .. } = request.into_inner();
        let control = match pb::ControlOp::try_from(op) {
            Ok(pb::ControlOp::Stop) => Control::Shutdown,
            Ok(pb::ControlOp::Restart) if after_ms > 0 => {
                Control::RestartAfter(std::time::Duration::from_millis(after_ms))
            }
            Ok(pb::ControlOp::Restart) => Control::Restart,
            Ok(pb::ControlOp::Persist) => Control::Persist,
            Ok(pb::ControlOp::Notify) => Control::NotifyPeers,
            _ => {
                return Err(fail(Error::Invalid(
                    "op must be CONTROL_OP_STOP, _RESTART, _PERSIST or _NOTIFY".into(),
                )))
            }
        };
        if after_ms > 0 && !matches!(control, Control::RestartAfter(_)) {
            return Err(fail(Error::Invalid("after_ms is for a restart only".into())));
        }
        let delayed = matches!(control, Control::RestartAfter(_));
        let mut pending = Box::pin(Caller::scope(caller, c.control(control)));
        if delayed {
            // As over HTTP: the control is queued now, the answer does not
            // wait for the delay.
            if let std::task::Poll::Ready(done) = futures::poll!(pending.as_mut()) {
                done.map_err(fail)?;
            } else {
                let uri = c.uri().to_owned();
                tokio::spawn(async move {
                    if let Err(e) = pending.await {
                        tracing::warn!(uri, error = %e, "delayed restart failed");
                    }
                });
            }
        } else {
            pending.await.map_err(fail)?;
        }
        Ok(Response::new(pb::ControlReply {
            uri: c.uri().to_owned(),
            stage: c.stage().to_string(),
        }))
    }

    type WatchStream = WatchStream;

    async fn watch(
        &self,
        request: Request<pb::WatchRequest>,
    ) -> Result<Response<WatchStream>, Status> {
        let (c, _) =
            self.target(&request, &request.get_ref().uri, |_| Ok(Verb::Read)).map_err(fail)?;
        let pb::WatchRequest { since, run, .. } = request.into_inner();
        let this_run = kinesis::runtime::run_id();
        // A version of another run is no place to resume from.
        let since = since.filter(|_| run.is_empty() || run == this_run);
        let watch = c.watch_json(since, WATCH_BUDGET).map_err(fail)?;
        let first: Vec<Result<pb::WatchEvent, Status>> = match watch.start {
            WatchStart::Snapshot(s) => {
                vec![Ok(event(pb::watch_event::Event::Snapshot(pb::Snapshot {
                    version: s.version,
                    etag: s.etag.to_hex(),
                    data_json: text(&s.data),
                    run: this_run.to_owned(),
                })))]
            }
            WatchStart::Replay(changes) => {
                changes.into_iter().map(|change| Ok(event_of(change, this_run))).collect()
            }
        };
        // After `Lagged` the stream ends: the client resumes from the last
        // version it has.
        let rest = watch.changes.scan(false, move |lagged, item| {
            let next = match item {
                _ if *lagged => None,
                Ok(change) => Some(Ok(event_of(change, this_run))),
                Err(missed) => {
                    *lagged = true;
                    Some(Ok(event(pb::watch_event::Event::Lagged(pb::Lagged {
                        missed: missed.missed,
                    }))))
                }
            };
            futures::future::ready(next)
        });
        let shutdown = self.shutdown.clone().cancelled_owned();
        let stream = futures::stream::iter(first).chain(rest).take_until(shutdown);
        Ok(Response::new(Box::pin(stream)))
    }
}

impl Generic {
    /// `Replace` (`patch` false) and `Patch`.
    async fn write(
        &self,
        request: Request<pb::WriteRequest>,
        patch: bool,
    ) -> Result<Response<pb::Resource>, Status> {
        let (c, caller) =
            self.target(&request, &request.get_ref().uri, |_| Ok(Verb::Write)).map_err(fail)?;
        let pb::WriteRequest { data_json, if_match, .. } = request.into_inner();
        let if_match = precondition(&if_match).map_err(fail)?.ok_or_else(|| {
            fail(Error::Invalid(
                "a write needs if_match: the ETag it was read at, or `*` for any state".into(),
            ))
        })?;
        let value = parse_json(&data_json, "data_json", Value::Null).map_err(fail)?;
        let written = if patch {
            Caller::scope(caller, c.merge_patch_json(value, if_match)).await
        } else {
            Caller::scope(caller, c.replace_json(value, if_match)).await
        };
        let snapshot = written.map_err(fail)?;
        Ok(Response::new(resource(&*c, &snapshot)))
    }
}
