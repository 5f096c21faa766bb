//! The runtime's metrics, through the [`metrics`] facade.
//!
//! kinesis records through whatever recorder is installed (the HTTP add-on
//! installs `metrics-exporter-prometheus` and serves it at
//! `/_kinesis/metrics`), so an application's own `metrics::counter!(…)`
//! land in the same registry. Nothing is recorded until [`enable`] was
//! called: without it the hot path pays one relaxed atomic load per message.
//! A component resolves its handles on its first message after [`enable`]
//! and keeps them; [`disable`] stops recording at once.
//!
//! | metric | type | labels | what |
//! | --- | --- | --- | --- |
//! | `kinesis_messages_total` | counter | `uri`, `kind` | operations handled by a component's mailbox; `kind` is `ask`, `tell`, `batch`, `replace`, `write`, `call` or `call_batch` |
//! | `kinesis_message_duration_seconds` | histogram | `uri` | time a component spent handling an operation (its handler, not the queue); one operation in [`DURATION_SAMPLE`] is timed |
//! | `kinesis_commits_total` | counter | `uri`, `outcome` | group commits (`ok`, `error`) |
//! | `kinesis_committed_operations_total` | counter | `uri` | operations answered by successful group commits; divided by `kinesis_commits_total{outcome="ok"}`: the mean group size |
//! | `kinesis_restarts_total` | counter | `uri` | restarts (a panic or a failure that the restart policy restarts) |
//! | `kinesis_lagged_total` | counter | | changes subscribers missed because they fell behind |
//! | `kinesis_store_operations_total` | counter | `backend`, `op`, `outcome` | store calls; `outcome` is `ok`, `conflict` or `error` |
//! | `kinesis_store_duration_seconds` | histogram | `backend`, `op`, `outcome` | store call latency |
//! | `kinesis_component_stage` | gauge | `uri` | the stage's position in [`Stage::ALL`] (0 `Submitted`, 6 `Started`, 7 `Restarting`, 8 `Stopping`, 11 `TornDown`, 12 `Aborting`), set by [`observe`] |
//! | `kinesis_mailbox_depth` | gauge | `uri` | operations waiting in the mailbox, set by [`observe`] |
//! | `kinesis_component_uptime_seconds` | gauge | `uri` | time since the component last reached `Started`, set by [`observe`] |
//! | `kinesis_subscribers` | gauge | `uri` | open subscriptions, set by [`observe`] |
//! | `kinesis_tasks` | gauge | `state` | tasks of the [task manager](crate::tasks) by state, set by [`observe`] |
//!
//! Labels stay bounded: component URIs and fixed words, never request ids,
//! ETags or versions. Nothing builds a label set per message: a component
//! counts its messages and commits in relaxed atomics of its own
//! ([`Activity`](crate::diagnostics::Activity)), which [`observe`] copies into the registry when scraped
//! (so these counters are as of the last [`observe`]), and holds the handle
//! of its duration histogram from its first message on.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use futures::future::BoxFuture;
use metrics::Histogram;

use crate::persist::{Record, SharedStore, Store, StoreError, StoreResult};
use crate::{Container, Stage};

/// Operations handled, by component and kind.
pub const MESSAGES: &str = "kinesis_messages_total";
/// Handling time of one operation.
pub const MESSAGE_DURATION: &str = "kinesis_message_duration_seconds";
/// Group commits.
pub const COMMITS: &str = "kinesis_commits_total";
/// Operations answered by successful group commits.
pub const COMMITTED_OPERATIONS: &str = "kinesis_committed_operations_total";
/// Restarts.
pub const RESTARTS: &str = "kinesis_restarts_total";
/// Changes missed by subscribers that fell behind.
pub const LAGGED: &str = "kinesis_lagged_total";
/// Store calls.
pub const STORE_OPERATIONS: &str = "kinesis_store_operations_total";
/// Store call latency.
pub const STORE_DURATION: &str = "kinesis_store_duration_seconds";
/// A component's stage (its index in [`Stage::ALL`]).
pub const STAGE: &str = "kinesis_component_stage";
/// Operations waiting in a mailbox.
pub const MAILBOX_DEPTH: &str = "kinesis_mailbox_depth";
/// Seconds since a component last started.
pub const UPTIME: &str = "kinesis_component_uptime_seconds";
/// Open subscriptions of a component.
pub const SUBSCRIBERS: &str = "kinesis_subscribers";
/// Tasks of the task manager, by state.
pub const TASKS: &str = "kinesis_tasks";

static ENABLED: AtomicBool = AtomicBool::new(false);

/// Turns recording on: call it once a recorder is installed
/// (`metrics::set_global_recorder`); the HTTP add-on does so when it
/// installs its Prometheus recorder.
pub fn enable() {
    ENABLED.store(true, Ordering::Release);
}

/// Turns recording off again, at once (for benchmarks that compare both in
/// one process).
pub fn disable() {
    ENABLED.store(false, Ordering::Release);
}

/// Whether recording is on.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// The kinds of operations a mailbox handles, the `kind` label of
/// [`MESSAGES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OpKind {
    Ask,
    Tell,
    Batch,
    Replace,
    Write,
    Call,
    CallBatch,
}

impl OpKind {
    pub(crate) const COUNT: usize = 7;

    pub(crate) const ALL: [OpKind; OpKind::COUNT] = [
        OpKind::Ask,
        OpKind::Tell,
        OpKind::Batch,
        OpKind::Replace,
        OpKind::Write,
        OpKind::Call,
        OpKind::CallBatch,
    ];

    pub(crate) fn label(self) -> &'static str {
        match self {
            OpKind::Ask => "ask",
            OpKind::Tell => "tell",
            OpKind::Batch => "batch",
            OpKind::Replace => "replace",
            OpKind::Write => "write",
            OpKind::Call => "call",
            OpKind::CallBatch => "call_batch",
        }
    }
}

/// The timing of one component's operations: written only by its task
/// (relaxed atomics, so it can live beside the counts that scrapes read),
/// its histogram handle resolved on the first timed operation.
#[derive(Default)]
pub(crate) struct Timing {
    duration: OnceLock<Histogram>,
    /// Operations started, to pick the timed ones.
    ticks: AtomicU32,
    /// When the operation being handled started, in nanoseconds since
    /// [`epoch`] plus one; 0: it is not timed.
    started: AtomicU64,
}

/// One operation in this many is timed for [`MESSAGE_DURATION`]; every one
/// is counted. A clock read costs 30–80 ns on the virtual machines kinesis
/// is measured on; two per operation were 5 % of an ask round trip.
pub const DURATION_SAMPLE: u32 = 16;

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

impl Timing {
    /// An operation starts being handled; one in [`DURATION_SAMPLE`] is
    /// timed (the first of each component included).
    pub(crate) fn start(&self) {
        let tick = self.ticks.load(Ordering::Relaxed);
        self.ticks.store(tick.wrapping_add(1), Ordering::Relaxed);
        let at = if tick.is_multiple_of(DURATION_SAMPLE) {
            epoch().elapsed().as_nanos() as u64 + 1
        } else {
            0
        };
        self.started.store(at, Ordering::Relaxed);
    }

    /// The operation started last was handled, by the component at `uri`.
    pub(crate) fn handled(&self, uri: &str) {
        let started = self.started.swap(0, Ordering::Relaxed);
        if started == 0 {
            return;
        }
        let took = (epoch().elapsed().as_nanos() as u64 + 1).saturating_sub(started);
        self.duration
            .get_or_init(|| metrics::histogram!(MESSAGE_DURATION, "uri" => uri.to_owned()))
            .record(took as f64 / 1e9);
    }
}

/// A restart of the component at `uri`.
pub(crate) fn restarted(uri: &str) {
    if enabled() {
        metrics::counter!(RESTARTS, "uri" => uri.to_owned()).increment(1);
    }
}

/// A subscriber missed `missed` changes.
pub(crate) fn lagged(missed: u64) {
    if enabled() {
        metrics::counter!(LAGGED).increment(missed);
    }
}

/// A [`Store`] that records [`STORE_OPERATIONS`] and [`STORE_DURATION`] of
/// every call of the store it wraps. [`Runtime`](crate::Runtime) wraps the
/// store it opens; wrap a store of your own with [`metered`].
pub struct MeteredStore {
    inner: SharedStore,
}

/// `store`, measured (see [`MeteredStore`]).
pub fn metered(store: SharedStore) -> SharedStore {
    Arc::new(MeteredStore { inner: store })
}

impl MeteredStore {
    async fn measure<T>(
        &self,
        op: &'static str,
        call: BoxFuture<'_, StoreResult<T>>,
    ) -> StoreResult<T> {
        if !enabled() {
            return call.await;
        }
        let started = Instant::now();
        let result = call.await;
        let outcome = match &result {
            Ok(_) => "ok",
            Err(StoreError::Conflict { .. }) => "conflict",
            Err(_) => "error",
        };
        let backend = self.inner.backend();
        let labels = [("backend", backend), ("op", op), ("outcome", outcome)];
        metrics::counter!(STORE_OPERATIONS, &labels).increment(1);
        metrics::histogram!(STORE_DURATION, &labels).record(started.elapsed().as_secs_f64());
        result
    }
}

impl Store for MeteredStore {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }

    fn feed(&self) -> Option<Arc<crate::persist::ChangeFeed>> {
        self.inner.feed()
    }

    fn load<'a>(&'a self, uri: &'a str) -> BoxFuture<'a, StoreResult<Option<Record>>> {
        Box::pin(self.measure("load", self.inner.load(uri)))
    }

    fn save<'a>(&'a self, record: &'a Record, expected: u64) -> BoxFuture<'a, StoreResult<()>> {
        Box::pin(self.measure("save", self.inner.save(record, expected)))
    }

    fn delete<'a>(&'a self, uri: &'a str) -> BoxFuture<'a, StoreResult<bool>> {
        Box::pin(self.measure("delete", self.inner.delete(uri)))
    }

    fn list<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, StoreResult<Vec<String>>> {
        Box::pin(self.measure("list", self.inner.list(prefix)))
    }

    fn ping(&self) -> BoxFuture<'_, StoreResult<()>> {
        Box::pin(self.measure("ping", self.inner.ping()))
    }
}

/// The URIs [`observe`] set gauges for last time, so that the gauges of
/// components that are gone can be set to `TornDown`.
static OBSERVED: Mutex<Option<HashSet<String>>> = Mutex::new(None);

/// Sets the gauges that are read rather than counted ([`STAGE`],
/// [`MAILBOX_DEPTH`], [`UPTIME`], [`SUBSCRIBERS`], [`TASKS`]) for `root`
/// and every component below it. Call it before rendering (the HTTP add-on
/// does, on every scrape): the hot path never touches them. A component
/// seen before and gone now gets the stage `TornDown` and depth 0.
pub fn observe(roots: &[&Container]) {
    if !enabled() {
        return;
    }
    let mut seen = HashSet::new();
    for root in roots {
        let all = root.handle().map(|h| Arc::new(h) as Arc<dyn crate::DynComponent>);
        for component in all.into_iter().chain(root.walk()) {
            let d = component.diagnostics();
            let uri = d.uri.clone();
            let a = &d.activity;
            for (kind, n) in &a.messages {
                metrics::counter!(MESSAGES, "uri" => uri.clone(), "kind" => *kind).absolute(*n);
            }
            if a.commits > 0 {
                metrics::counter!(COMMITS, "uri" => uri.clone(), "outcome" => "ok")
                    .absolute(a.commits);
                metrics::counter!(COMMITTED_OPERATIONS, "uri" => uri.clone())
                    .absolute(a.committed_operations);
            }
            if a.commit_errors > 0 {
                metrics::counter!(COMMITS, "uri" => uri.clone(), "outcome" => "error")
                    .absolute(a.commit_errors);
            }
            metrics::gauge!(STAGE, "uri" => uri.clone()).set(stage_value(d.stage));
            metrics::gauge!(MAILBOX_DEPTH, "uri" => uri.clone()).set(d.mailbox_depth as f64);
            metrics::gauge!(UPTIME, "uri" => uri.clone()).set(d.uptime_seconds.unwrap_or_default());
            metrics::gauge!(SUBSCRIBERS, "uri" => uri.clone()).set(d.subscribers as f64);
            seen.insert(uri);
        }
    }
    let mut observed = OBSERVED.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(before) = observed.as_ref() {
        for gone in before.difference(&seen) {
            metrics::gauge!(STAGE, "uri" => gone.clone()).set(stage_value(Stage::TornDown));
            metrics::gauge!(MAILBOX_DEPTH, "uri" => gone.clone()).set(0.0);
            metrics::gauge!(SUBSCRIBERS, "uri" => gone.clone()).set(0.0);
        }
    }
    *observed = Some(seen);
    for (state, n) in crate::tasks::TaskManager::global().counts() {
        metrics::gauge!(TASKS, "state" => state.label()).set(n as f64);
    }
}

/// The value of [`STAGE`] for `stage`: its index in [`Stage::ALL`].
pub fn stage_value(stage: Stage) -> f64 {
    Stage::ALL.iter().position(|s| *s == stage).unwrap_or_default() as f64
}
