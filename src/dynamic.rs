//! [`DynComponent`]: type-erased access to any component with JSON, for the
//! HTTP add-on, tests and tools that do not know the component's type.
//!
//! Encrypted persisted fields are shown as `"***"` in every JSON this module
//! produces; a replace or patch that sends `"***"` back keeps the stored value.
//! Replace and patch validate the result by deserialising it into the
//! component type: a result that does not fit, or that has members which are
//! not fields of the type (`meta`, `settings.colour`; a `#[serde(skip)]`
//! field is not one, an encrypted field is), is refused with
//! [`Error::Invalid`] naming the field or members, and nothing changes.
//! Members the component serialises itself may be sent back.

use std::any::Any;
use std::sync::Arc;

use futures::future::BoxFuture;
use futures::stream::BoxStream;
use serde::Serialize;
use serde_json::Value;

use crate::cell::Resume;
use crate::cell::{BatchJsonOp, CallJsonOp, JsonWrite, JsonWriteOp};
use crate::changes::{JsonQueue, Lagged, Replay};
pub use crate::json::{from_json, redacted_json, JsonSnapshot, JsonText};
use crate::methods::{methods_of, BatchCall, MethodInfo, MethodTable};
use crate::{
    Change, Component, ComponentDiagnostics, Container, Control, ETag, Error, Handle, Precondition,
    Result, Stage, State, Subscription,
};

/// What a component is, for listings and the HTTP `meta` object.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Meta {
    /// Name within its container.
    pub name: String,
    /// Path from the root.
    pub uri: String,
    /// Rust type name.
    #[serde(rename = "type")]
    pub type_name: &'static str,
    /// Lifecycle stage.
    pub stage: Stage,
    /// Coarse state.
    pub state: State,
    /// Current ETag.
    pub etag: ETag,
    /// Current version.
    pub version: u64,
    /// Methods callable by name.
    pub methods: &'static [MethodInfo],
}

/// One change as JSON, for `_watch` streams.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum JsonChange {
    /// The stage moved.
    Stage {
        /// Before.
        prev: Stage,
        /// Now.
        curr: Stage,
    },
    /// The coarse state flipped.
    State {
        /// Before.
        prev: State,
        /// Now.
        curr: State,
    },
    /// The state changed.
    Updated {
        /// Version before.
        prev_version: u64,
        /// Version now.
        version: u64,
        /// ETag now.
        etag: ETag,
        /// The state now, encrypted fields redacted.
        data: JsonText,
    },
}

impl JsonChange {
    /// The JSON form of a typed change.
    pub fn of<C: Component>(change: &Change<C>) -> Result<JsonChange> {
        Ok(match change {
            Change::Stage { prev, curr } => JsonChange::Stage { prev: *prev, curr: *curr },
            Change::State { prev, curr } => JsonChange::State { prev: *prev, curr: *curr },
            Change::Updated { prev, curr } => JsonChange::Updated {
                prev_version: prev.version,
                version: curr.version,
                etag: curr.etag,
                data: JsonText::from_serialised(curr.json()?),
            },
        })
    }

    /// The version this change leaves the component at, if it is an update.
    pub fn version(&self) -> Option<u64> {
        match self {
            JsonChange::Updated { version, .. } => Some(*version),
            _ => None,
        }
    }
}

/// A watch of a component as JSON: what comes first, then the changes.
pub struct JsonWatch {
    /// What the watcher gets before any change.
    pub start: WatchStart,
    /// The changes after `start`; updates that `start` already holds are
    /// left out, so every version arrives once.
    pub changes: BoxStream<'static, Result<JsonChange, Lagged>>,
}

/// How a [`JsonWatch`] begins.
#[derive(Debug, Clone, PartialEq)]
pub enum WatchStart {
    /// The state as it is now: a new watch, or one whose version is older
    /// than the component's history (or not a version of this run).
    Snapshot(JsonSnapshot),
    /// The updates after the version the watcher resumes from, oldest first
    /// (empty when nothing changed since).
    Replay(Vec<JsonChange>),
}

/// Object-safe, type-erased access to a component. Every `Handle<C>` is one.
///
/// Calls through this trait wait without a deadline of their own (see
/// [`Handle::without_timeout`]): callers bound them, as the HTTP add-on does
/// with its request timeout. They never wait for room in a full mailbox:
/// they fail at once with [`Error::Overloaded`] (retryable), so a remote
/// caller is told to come back (HTTP answers 503 with `Retry-After`) rather
/// than queueing without end.
pub trait DynComponent: Send + Sync + 'static {
    /// Name within its container.
    fn name(&self) -> &str;
    /// Path from the root.
    fn uri(&self) -> &str;
    /// Rust type name of the component.
    fn type_name(&self) -> &'static str;
    /// Current stage.
    fn stage(&self) -> Stage;
    /// Whether remote surfaces (HTTP) may expose it.
    fn exposed(&self) -> bool;
    /// Name, URI, type, stage, state, ETag, version and methods.
    fn meta(&self) -> Meta;
    /// The latest snapshot as JSON.
    fn snapshot_json(&self) -> Result<JsonSnapshot>;
    /// Replaces the state from JSON if `if_match` passes.
    fn replace_json(
        &self,
        value: Value,
        if_match: Precondition,
    ) -> BoxFuture<'static, Result<JsonSnapshot>>;
    /// Applies an RFC 7396 merge patch if `if_match` passes.
    fn merge_patch_json(
        &self,
        patch: Value,
        if_match: Precondition,
    ) -> BoxFuture<'static, Result<JsonSnapshot>>;
    /// The methods callable by name (empty without `#[kinesis::handlers]`).
    fn methods(&self) -> &'static [MethodInfo];
    /// The JSON Schema of the state, written with `generator` (see
    /// [`methods`](crate::methods#json-schemas)): `None` unless the component
    /// has `#[kinesis::handlers]` (an empty block will do) and its type
    /// implements `schemars::JsonSchema`.
    fn state_schema(&self, generator: &mut schemars::SchemaGenerator) -> Option<schemars::Schema>;
    /// Calls a method by name with a JSON object of named arguments.
    /// Read-only methods run on the latest snapshot; mutating ones go through
    /// the mailbox, checked against `if_match`.
    fn call_json(
        &self,
        method: &str,
        args: Value,
        if_match: Precondition,
    ) -> BoxFuture<'static, Result<Value>>;
    /// Calls methods by name in order, in one turn of the mailbox, all or
    /// nothing: if one fails, the state is rolled back to before the batch,
    /// nothing is stored or published, and the error names the failing call
    /// (`batch call 2 (`fail`) failed, …`) with that call's error kind.
    /// Checked against `if_match` once, before the first call. Read-only
    /// methods in a batch see the changes of the calls before them.
    fn batch_json(
        &self,
        calls: Vec<BatchCall>,
        if_match: Precondition,
    ) -> BoxFuture<'static, Result<Vec<Value>>>;
    /// Sends a control message and waits until it was carried out.
    fn control(&self, control: Control) -> BoxFuture<'static, Result<()>>;
    /// The changes from now on, as JSON.
    fn subscribe_json(&self) -> BoxStream<'static, Result<JsonChange, Lagged>>;
    /// A watch that starts with a snapshot (`since` = `None`), or resumes
    /// after version `since` with the updates the watcher missed; see
    /// [`Handle::resume`].
    ///
    /// Its changes are queued for it as they are published, holding at most
    /// `budget` bytes (the data of its updates and a small overhead per
    /// change; one change bigger than that is still queued, alone). A
    /// watcher that falls further behind loses what was queued and gets
    /// [`Lagged`] with the number of changes it missed, then the changes
    /// after that: read a fresh snapshot then. The queue is freed when the
    /// stream is dropped.
    fn watch_json(&self, since: Option<u64>, budget: usize) -> Result<JsonWatch>;
    /// Resolves when the component reaches `stage` or is torn down.
    fn wait_for_stage(&self, stage: Stage) -> BoxFuture<'static, ()>;
    /// The `Handle<C>` behind this object, for downcasting.
    fn as_any(&self) -> &dyn Any;
    /// The container, if this component is one.
    fn as_container(&self) -> Option<Container>;
    /// Runs the component's [`Component::health`] check on its latest
    /// snapshot.
    fn health(&self) -> BoxFuture<'static, Result<()>>;
    /// Stage, version, restarts, last failure, mailbox depth, uptime and
    /// subscribers.
    fn diagnostics(&self) -> ComponentDiagnostics;
}

impl<C: Component> DynComponent for Handle<C> {
    fn name(&self) -> &str {
        Handle::name(self)
    }

    fn uri(&self) -> &str {
        Handle::uri(self)
    }

    fn type_name(&self) -> &'static str {
        std::any::type_name::<C>()
    }

    fn stage(&self) -> Stage {
        Handle::stage(self)
    }

    fn exposed(&self) -> bool {
        self.snapshot().state.exposed()
    }

    fn meta(&self) -> Meta {
        let snap = self.snapshot();
        Meta {
            name: self.name().to_owned(),
            uri: self.uri().to_owned(),
            type_name: std::any::type_name::<C>(),
            stage: Handle::stage(self),
            state: Handle::state(self),
            etag: snap.etag,
            version: snap.version,
            methods: DynComponent::methods(self),
        }
    }

    fn snapshot_json(&self) -> Result<JsonSnapshot> {
        JsonSnapshot::of(&self.snapshot(), Handle::stage(self))
    }

    fn replace_json(
        &self,
        value: Value,
        if_match: Precondition,
    ) -> BoxFuture<'static, Result<JsonSnapshot>> {
        write_json(self, JsonWrite::Replace(value), if_match)
    }

    fn merge_patch_json(
        &self,
        patch: Value,
        if_match: Precondition,
    ) -> BoxFuture<'static, Result<JsonSnapshot>> {
        write_json(self, JsonWrite::MergePatch(patch), if_match)
    }

    fn methods(&self) -> &'static [MethodInfo] {
        table_of(self).map_or(&[], |t| t.methods)
    }

    fn state_schema(&self, generator: &mut schemars::SchemaGenerator) -> Option<schemars::Schema> {
        table_of(self).and_then(|t| (t.state_schema)(generator))
    }

    fn call_json(
        &self,
        method: &str,
        args: Value,
        if_match: Precondition,
    ) -> BoxFuture<'static, Result<Value>> {
        let handle = self.clone().without_timeout();
        let method = method.to_owned();
        Box::pin(async move {
            let table = table_of(&handle).ok_or_else(|| {
                Error::NotFound(format!("{} has no method `{method}`", handle.uri()))
            })?;
            let info = table.method(&method).ok_or_else(|| {
                Error::NotFound(format!("{} has no method `{method}`", handle.uri()))
            })?;
            if !info.mutating {
                let snap = handle.snapshot();
                return (table.call_ref)(&snap.state, &method, args).await;
            }
            let op = Arc::new(CallJsonOp::new(table, (method, args), if_match));
            handle.try_send_op(op.clone())?;
            handle.named(op.reply().await)
        })
    }

    fn batch_json(
        &self,
        calls: Vec<BatchCall>,
        if_match: Precondition,
    ) -> BoxFuture<'static, Result<Vec<Value>>> {
        let handle = self.clone().without_timeout();
        Box::pin(async move {
            let table = table_of(&handle).ok_or_else(|| {
                Error::NotFound(format!("{} has no methods to call by name", handle.uri()))
            })?;
            let op = Arc::new(BatchJsonOp::new(table, calls, if_match));
            handle.try_send_op(op.clone())?;
            handle.named(op.reply().await)
        })
    }

    fn control(&self, control: Control) -> BoxFuture<'static, Result<()>> {
        let handle = self.clone().without_timeout();
        Box::pin(async move {
            match control {
                Control::Shutdown => handle.shutdown().await,
                other => handle.control(other).await,
            }
        })
    }

    fn subscribe_json(&self) -> BoxStream<'static, Result<JsonChange, Lagged>> {
        json_changes(self.subscribe(), 0)
    }

    fn watch_json(&self, since: Option<u64>, budget: usize) -> Result<JsonWatch> {
        let closed = Handle::stage(self) == Stage::TornDown;
        let (replay, queue) = match self.shared.publisher.resume_json(closed, since, budget) {
            Some((queue, Resume::Replay(updates))) => (Replay::Updates(updates), queue),
            Some((queue, Resume::Snapshot)) => (Replay::TooOld, queue),
            None => {
                let queue = Arc::new(JsonQueue::new(budget));
                queue.end();
                (Replay::TooOld, queue)
            }
        };
        let (start, last) = match replay {
            Replay::Updates(updates) => {
                let last = updates.last().map_or(since.unwrap_or(0), |s| s.version);
                let changes = updates
                    .iter()
                    .map(|s| {
                        Ok(JsonChange::Updated {
                            prev_version: s.version - 1,
                            version: s.version,
                            etag: s.etag,
                            data: JsonText::from_serialised(s.json()?),
                        })
                    })
                    .collect::<Result<_>>()?;
                (WatchStart::Replay(changes), last)
            }
            Replay::TooOld => {
                let snapshot = self.snapshot();
                if since == Some(snapshot.version) {
                    (WatchStart::Replay(Vec::new()), snapshot.version)
                } else {
                    let json = JsonSnapshot::of(&snapshot, Handle::stage(self))?;
                    (WatchStart::Snapshot(json), snapshot.version)
                }
            }
        };
        Ok(JsonWatch { start, changes: queue.stream(last) })
    }

    fn wait_for_stage(&self, stage: Stage) -> BoxFuture<'static, ()> {
        Box::pin(Handle::wait_for_stage(self, stage))
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_container(&self) -> Option<Container> {
        (&self.snapshot().state as &dyn Any).downcast_ref::<Container>().cloned()
    }

    fn health(&self) -> BoxFuture<'static, Result<()>> {
        let snapshot = self.snapshot();
        Box::pin(async move { snapshot.state.health().await })
    }

    fn diagnostics(&self) -> ComponentDiagnostics {
        let shared = &self.shared;
        ComponentDiagnostics {
            uri: self.uri().to_owned(),
            type_name: std::any::type_name::<C>(),
            stage: Handle::stage(self),
            state: Handle::state(self),
            version: self.snapshot().version,
            restarts: shared.stats_if_any().map_or(0, |s| s.restarts()),
            last_failure: shared.stats_if_any().and_then(|s| s.last_failure()),
            mailbox_depth: shared.mailbox.len(),
            uptime_seconds: shared.uptime_seconds(),
            subscribers: shared.subscribers(),
            activity: shared.stats_if_any().map(|s| s.activity()).unwrap_or_default(),
        }
    }
}

/// The method table of `handle`'s component: the one `#[kinesis::handlers]`
/// registered for its type, else the one its value gives
/// ([`Component::method_table`], read from the latest snapshot).
fn table_of<C: Component>(handle: &Handle<C>) -> Option<&'static MethodTable> {
    methods_of::<C>().or_else(|| handle.snapshot().state.method_table())
}

/// The changes of `sub` as JSON, leaving out updates to versions up to
/// `after` (a watcher has them already); re-publications of the current
/// version (`NotifyPeers`) still pass.
fn json_changes<C: Component>(
    sub: Subscription<C>,
    after: u64,
) -> BoxStream<'static, Result<JsonChange, Lagged>> {
    Box::pin(futures::stream::unfold(sub, move |mut sub| async move {
        loop {
            match sub.recv().await {
                Ok(Some(Change::Updated { prev, curr }))
                    if curr.version <= after && prev.version != curr.version =>
                {
                    continue
                }
                Ok(Some(change)) => match JsonChange::of(&change) {
                    Ok(json) => return Some((Ok(json), sub)),
                    Err(e) => {
                        tracing::warn!(error = %e, "change does not serialise; skipped");
                        continue;
                    }
                },
                Ok(None) => return None,
                Err(lagged) => return Some((Err(lagged), sub)),
            }
        }
    }))
}

/// Sends a JSON replace or patch through the mailbox and waits for the
/// committed snapshot.
fn write_json<C: Component>(
    handle: &Handle<C>,
    write: JsonWrite,
    if_match: Precondition,
) -> BoxFuture<'static, Result<JsonSnapshot>> {
    let handle = handle.clone().without_timeout();
    Box::pin(async move {
        let op = Arc::new(JsonWriteOp::<C>::new(write, if_match));
        handle.try_send_op(op.clone())?;
        let snapshot = handle.named(op.reply().await)?;
        JsonSnapshot::of(&snapshot, handle.stage())
    })
}

/// Whether `c` takes calls now: `Ok` when started, [`Error::NotStarted`]
/// before, [`Error::Stopping`] once it is on its way out. What remote
/// surfaces check before they serve a component.
pub fn ready(c: &dyn DynComponent) -> Result<()> {
    match c.stage() {
        Stage::Started => Ok(()),
        Stage::Aborting
        | Stage::Stopping
        | Stage::Stopped
        | Stage::TearingDown
        | Stage::TornDown => Err(Error::Stopping(c.uri().to_owned())),
        _ => Err(Error::NotStarted(c.uri().to_owned())),
    }
}

/// Parses the `op` of a `_control` request: `restart`, `stop`, `persist`, `notify`.
pub fn control_from_op(op: &str) -> Result<Control> {
    match op {
        "restart" => Ok(Control::Restart),
        "stop" => Ok(Control::Shutdown),
        "persist" => Ok(Control::Persist),
        "notify" => Ok(Control::NotifyPeers),
        other => Err(Error::Invalid(format!(
            "unknown control op `{other}`; use restart, stop, persist or notify"
        ))),
    }
}

/// A shared type-erased component.
pub type SharedDyn = Arc<dyn DynComponent>;
