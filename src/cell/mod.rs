//! The cell: everything that runs one component.
//!
//! A component's state lives in its *cell*, driven by one tokio task. The
//! parts, each in its own module with one job:
//!
//! * [`mailbox`]: two lanes into the task, control first, messages in order.
//! * [`ops`] and [`slot`]: the operations (ask, tell, batch, replace, JSON
//!   writes and calls), each in one allocation with its reply slot.
//! * [`watchdog`]: ask deadlines without a timer per ask.
//! * [`commit`]: serialise once (canonical JSON), compare, hash, store,
//!   publish a new snapshot.
//! * [`publish`]: subscribers and callbacks, panics contained.
//! * [`lifecycle`]: stages, hooks and supervision decisions.
//! * [`serve`]: the message loop and group commit.
//! * [`park`]: an idle cell waits without a task until something arrives.
//!
//! The lifecycle up to `Started` runs in the task that adds the component
//! (`Container::add` returns once it is started, so nothing is gained by a
//! hand-off); the message loop then runs in a task of its own, spawned when
//! the first message arrives (see [`park`]). A cell talks to its container
//! only through [`Parent`].

mod commit;
mod lifecycle;
mod mailbox;
mod ops;
mod park;
mod persisted;
mod publish;
mod remote;
mod serve;
mod slot;
mod watchdog;

use std::any::Any;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, AtomicU8, Ordering};
use std::sync::Arc;

use tokio::sync::Notify;
use tracing::Instrument;

use self::commit::{Committer, Published};
pub(crate) use self::mailbox::{ControlEnvelope, Mailbox, Refused, Signal};
pub(crate) use self::ops::{
    AskOp, BatchJsonOp, BatchOp, CallJsonOp, Envelope, JsonWrite, JsonWriteOp, Operation, ReplaceOp,
};
use self::publish::Owned;
pub(crate) use self::publish::{panic_message, CallbackOwner, Publisher, Resume, OWNER};
pub(crate) use self::slot::Deadline;
use crate::persist::Persistence;
use crate::supervisor::RestartTracker;
use crate::{Component, Context, Error, Handle, Result, Stage};

/// The most mutations committed together.
pub(crate) const GROUP_LIMIT: usize = 128;

tokio::task_local! {
    /// The containers whose activation lock the current task's activation
    /// chain holds (so a component may add siblings from `pre_start`).
    pub(crate) static ACTIVATING: ActivationSet;
}

/// Ids of containers, see [`ACTIVATING`].
pub(crate) type ActivationSet = Arc<[usize]>;

/// What a cell needs from the container it lives in.
pub(crate) trait Parent: Send + Sync + 'static {
    /// Identifies the container (for [`ACTIVATING`]).
    fn id(&self) -> usize;
    /// The child is torn down: forget it and free its name.
    fn child_gone(&self, name: &str, uri: &str);
    /// The child failed for good (its restart policy gave up).
    fn child_failed(&self, uri: &str, error: &Error);
    /// The container itself, for downcasting.
    fn into_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync>;
}

/// What every handle of a component shares with its cell.
pub(crate) struct Shared<C: Component> {
    /// The path from the root; the name is its last segment.
    pub(crate) uri: String,
    pub(crate) mailbox: Mailbox<C>,
    pub(crate) snapshot: Published<C>,
    stage: AtomicU8,
    /// When the current run reached `Started`, in whole seconds since the
    /// process's first component (plus one); 0 when not running. Here and
    /// not in `stats`, so a component that never gets a message allocates
    /// nothing for its uptime (it fits the padding beside `stage`).
    started_at: AtomicU32,
    /// Tasks in [`wait_for_stage`](Shared::wait_for_stage): a stage change
    /// with nobody waiting skips `notify_waiters` (and its lock).
    stage_waiters: AtomicU32,
    stage_changed: Notify,
    pub(crate) publisher: Publisher<C>,
    /// Callbacks this component registered during its current run.
    owned: Owned,
    /// Messages, commits, restarts and the last failure, for diagnostics;
    /// allocated on the first of them (8 bytes until then).
    stats: once_cell::race::OnceBox<crate::diagnostics::Stats>,
}

/// The instant uptimes count from: when the first component started.
fn process_epoch() -> std::time::Instant {
    static EPOCH: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    *EPOCH.get_or_init(std::time::Instant::now)
}

fn stage_index(stage: Stage) -> u8 {
    Stage::ALL.iter().position(|s| *s == stage).map_or(0, |i| i as u8)
}

impl<C: Component> Shared<C> {
    /// The fencing token set by [`PreparedCell::set_fencing_token`] (kept
    /// in the stats, which only singletons allocate for it).
    pub(crate) fn fencing_token(&self) -> Option<crate::lease::FencingToken> {
        let token = self.stats_if_any()?.fencing_token.load(Ordering::Relaxed);
        (token != 0).then_some(token)
    }

    /// The name within the container: the last segment of the URI.
    pub(crate) fn name(&self) -> &str {
        self.uri.rsplit('/').next().unwrap_or_default()
    }

    /// The current stage.
    pub(crate) fn stage(&self) -> Stage {
        Stage::ALL[usize::from(self.stage.load(Ordering::Acquire))]
    }

    fn store_stage(&self, stage: Stage) {
        // Store, then count waiters; a waiter counts itself, then reads the
        // stage (both sequentially consistent): either the waiter sees the
        // new stage or this sees the waiter, whose `Notified` exists by then.
        self.stage.store(stage_index(stage), Ordering::SeqCst);
        if self.stage_waiters.load(Ordering::SeqCst) > 0 {
            self.stage_changed.notify_waiters();
        }
    }

    /// Resolves when the component is at `stage` or torn down.
    pub(crate) async fn wait_for_stage(self: Arc<Self>, stage: Stage) {
        /// Counts the waiter out however the wait ends (it may be dropped).
        struct Waiting<'a>(&'a AtomicU32);
        impl Drop for Waiting<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::SeqCst);
            }
        }
        let now = self.stage();
        if now == stage || now == Stage::TornDown {
            return;
        }
        loop {
            // `notify_waiters` reaches a `Notified` from its creation on.
            let changed = self.stage_changed.notified();
            self.stage_waiters.fetch_add(1, Ordering::SeqCst);
            let _waiting = Waiting(&self.stage_waiters);
            let now = Stage::ALL[usize::from(self.stage.load(Ordering::SeqCst))];
            if now == stage || now == Stage::TornDown {
                return;
            }
            changed.await;
        }
    }

    /// A receiver of future changes; `None` once the component is torn down.
    pub(crate) fn subscribe(&self) -> Option<tokio::sync::broadcast::Receiver<crate::Change<C>>> {
        self.publisher.subscribe(self.stage() == Stage::TornDown)
    }

    /// A receiver of future changes and the updates after `since` it will
    /// not see; `None` once the component is torn down.
    /// What is recorded for diagnostics.
    pub(crate) fn stats(&self) -> &crate::diagnostics::Stats {
        self.stats.get_or_init(Box::default)
    }

    /// Records that the current run reached `Started`.
    pub(crate) fn mark_started(&self) {
        let secs = u32::try_from(process_epoch().elapsed().as_secs()).unwrap_or(u32::MAX - 1);
        self.started_at.store(secs + 1, Ordering::Relaxed);
    }

    /// Records that the current run ended.
    pub(crate) fn mark_stopped(&self) {
        self.started_at.store(0, Ordering::Relaxed);
    }

    /// Seconds since the current run started (whole seconds); `None` when
    /// not running.
    pub(crate) fn uptime_seconds(&self) -> Option<f64> {
        match self.started_at.load(Ordering::Relaxed) {
            0 => None,
            at => {
                let now = process_epoch().elapsed().as_secs_f64();
                Some((now - f64::from(at - 1)).max(0.0).floor())
            }
        }
    }

    /// What was recorded for diagnostics, if anything was.
    pub(crate) fn stats_if_any(&self) -> Option<&crate::diagnostics::Stats> {
        self.stats.get()
    }

    /// Open subscriptions.
    pub(crate) fn subscribers(&self) -> usize {
        self.publisher.subscribers()
    }

    pub(crate) fn resume(
        &self,
        since: u64,
    ) -> Option<(tokio::sync::broadcast::Receiver<crate::Change<C>>, Resume<C>)> {
        self.publisher.resume(self.stage() == Stage::TornDown, Some(since))
    }
}

impl<C: Component> CallbackOwner for Shared<C> {
    fn adopt(&self, removal: Box<dyn FnOnce() + Send>) {
        self.owned.push(removal);
    }
}

/// A cell that exists (its handle works, changes can be subscribed to) but
/// has not started: the component is `Submitted`.
pub(crate) struct PreparedCell<C: Component> {
    handle: Handle<C>,
    cell: Cell<C>,
}

/// Creates a component's cell without starting it.
pub(crate) fn prepare_component<C: Component>(
    name: &str,
    uri: String,
    state: C,
    parent: Option<Arc<dyn Parent>>,
    persistence: Option<&Persistence>,
) -> Result<PreparedCell<C>> {
    let committer = Committer::new(&state, &uri, persistence)?;
    debug_assert_eq!(uri.rsplit('/').next(), Some(name), "the name is the URI's last segment");
    let shared = Arc::new(Shared {
        uri,
        mailbox: Mailbox::new(),
        snapshot: Published::new(Arc::clone(committer.current())),
        stage: AtomicU8::new(stage_index(Stage::Submitted)),
        stage_waiters: AtomicU32::new(0),
        stage_changed: Notify::new(),
        publisher: Publisher::new(),
        owned: Owned::default(),
        stats: once_cell::race::OnceBox::new(),
        started_at: AtomicU32::new(0),
    });
    remote::hold(&shared, &committer);
    let handle = Handle::from_shared(Arc::clone(&shared));
    let ctx = Context::new(handle.clone(), parent);
    let cell = Cell {
        shared,
        state,
        ctx,
        committer,
        tracker: RestartTracker::default(),
        pending: Vec::new(),
        inbox: VecDeque::new(),
        done: false,
    };
    Ok(PreparedCell { handle, cell })
}

/// Creates a component's cell and runs it to `Started`.
pub(crate) async fn spawn_component<C: Component>(
    name: &str,
    uri: String,
    state: C,
    parent: Option<Arc<dyn Parent>>,
    persistence: Option<&Persistence>,
) -> Result<Handle<C>> {
    prepare_component(name, uri, state, parent, persistence)?.launch().await
}

impl<C: Component> PreparedCell<C> {
    pub(crate) fn handle(&self) -> &Handle<C> {
        &self.handle
    }

    /// Runs the component under a lease: `ctx.fencing_token()` answers it.
    pub(crate) fn set_fencing_token(&mut self, token: crate::lease::FencingToken) {
        self.cell.shared.stats().fencing_token.store(token, Ordering::Relaxed);
    }

    /// Runs the lifecycle to `Started` in the calling task, then parks the
    /// cell until something arrives (or spawns its message loop at once when
    /// something did). Returns the error that stopped the component on the way.
    pub(crate) async fn launch(self) -> Result<Handle<C>> {
        let PreparedCell { handle, mut cell } = self;
        let outer: Option<ActivationSet> = ACTIVATING.try_with(Clone::clone).ok();
        // One allocation: the outer set and the parent, collected at once.
        let activating: ActivationSet = outer
            .as_deref()
            .unwrap_or_default()
            .iter()
            .copied()
            .chain(cell.ctx.parent.as_ref().map(|p| p.id()))
            .collect();
        let span = cell.ctx.span.clone();
        let owner: Arc<dyn CallbackOwner> = cell.shared.clone();
        let activation = Box::pin(cell.activate());
        let activated =
            OWNER.scope(owner, ACTIVATING.scope(activating, activation)).instrument(span).await;
        activated?;
        cell.serve_or_park();
        Ok(handle)
    }
}

/// The task-side state of one component.
pub(crate) struct Cell<C: Component> {
    pub(crate) shared: Arc<Shared<C>>,
    pub(crate) state: C,
    pub(crate) ctx: Context<C>,
    pub(crate) committer: Committer<C>,
    pub(crate) tracker: RestartTracker,
    /// Mutations handled but not yet committed and answered.
    pub(crate) pending: Vec<Envelope<C>>,
    /// Messages taken from the mailbox, not yet handled.
    pub(crate) inbox: VecDeque<Envelope<C>>,
    /// Torn down: the loop ends.
    pub(crate) done: bool,
}

impl<C: Component> Cell<C> {
    pub(crate) fn uri(&self) -> &str {
        &self.shared.uri
    }

    /// What the watchdog watches while the task waits for something.
    pub(crate) fn watched<'a>(
        shared: &'a Shared<C>,
        inbox: &'a VecDeque<Envelope<C>>,
        pending: &'a [Envelope<C>],
        running: Option<&'a dyn Operation<C>>,
    ) -> watchdog::Watched<'a, C> {
        watchdog::Watched { mailbox: &shared.mailbox, inbox, pending, running }
    }

    /// Answers everything queued with `Stopping` and refuses what comes.
    pub(crate) fn close_mailbox(&mut self) {
        let stopping = Error::Stopping(self.shared.uri.clone());
        let (controls, messages) = self.shared.mailbox.close();
        for c in controls {
            if let Some(tx) = c.reply {
                let _ = tx.send(Err(stopping.clone()));
            }
        }
        for env in self.pending.drain(..).chain(self.inbox.drain(..)).chain(messages) {
            env.op().fail(&stopping);
        }
        self.shared.mailbox.set_in_task(0);
    }
}

impl<C: Component> Drop for Cell<C> {
    /// A cell dropped before it was torn down: its task panicked in the
    /// runtime's own code, or the future adding it was dropped. Nobody may
    /// be left waiting: callers get `Stopping`, the stage becomes
    /// `TornDown`, and the container forgets the component.
    fn drop(&mut self) {
        if self.done {
            return;
        }
        tracing::error!(uri = %self.shared.uri, stage = %self.shared.stage(), "component dropped before it was torn down");
        self.close_mailbox();
        self.ctx.end_run();
        self.shared.owned.release_all();
        if let Some(p) = &self.ctx.parent {
            p.child_gone(self.shared.name(), &self.shared.uri);
        }
        self.shared.store_stage(Stage::TornDown);
        self.shared.publisher.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Default, serde::Serialize, serde::Deserialize)]
    struct Count {
        count: u64,
    }
    impl Component for Count {}

    /// An idle component's memory is its shared part and its parked cell
    /// (it has no task until a message arrives); these bounds keep it well
    /// under 1,500 bytes (see BENCHMARKS.md). A component that got messages
    /// has a task instead of the parked cell: that bound is checked too.
    #[test]
    fn an_idle_component_stays_small() {
        let PreparedCell { handle, cell } =
            prepare_component("c", "/root/c".into(), Count::default(), None, None).unwrap();
        let shared = std::mem::size_of::<Shared<Count>>();
        assert!(shared <= 392, "Shared grew to {shared} bytes");
        let parked = std::mem::size_of::<park::Parked<Count>>();
        assert!(parked <= 320, "a parked cell grew to {parked} bytes");
        let owner: Arc<dyn CallbackOwner> = cell.shared.clone();
        let task = OWNER.scope(owner, cell.serve()).instrument(tracing::Span::none());
        let task = std::mem::size_of_val(&task);
        assert!(task <= 576, "the task's future grew to {task} bytes");
        drop(handle);
    }
}
