//! The cell: the task that owns one component's state and drives it through
//! its lifecycle and its mailbox.

use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use futures::future::BoxFuture;
use futures::FutureExt;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tracing::Instrument;

use super::persisted::{Persisted, SaveError};
use super::{Control, Envelope, Operation};
use crate::changes::Callbacks;
use crate::container::{ActivationSet, ACTIVATING};
use crate::persist::{schema_of, Persistence};
use crate::supervisor::{Restart, RestartTracker};
use crate::{
    Change, Component, Container, Context, ETag, Error, Handle, Result, Snapshot, Stage, State,
};

/// How many envelopes a mailbox queues before senders wait.
pub(crate) const MAILBOX_CAPACITY: usize = 1024;
/// How many changes a subscriber may fall behind before it lags.
pub(crate) const SUBSCRIPTION_CAPACITY: usize = 256;
/// The most mutations committed together.
pub(crate) const GROUP_LIMIT: usize = 128;
/// Default time a callback may take.
pub(crate) const CALLBACK_TIMEOUT: Duration = Duration::from_secs(4);

/// What every handle of a component shares.
pub(crate) struct Shared<C: Component> {
    pub(crate) name: String,
    pub(crate) uri: String,
    pub(crate) tx: mpsc::Sender<Envelope<C>>,
    pub(crate) snapshot: ArcSwap<Snapshot<C>>,
    pub(crate) stage: watch::Sender<Stage>,
    changes: Mutex<Option<broadcast::Sender<Change<C>>>>,
    /// Set on the first subscription, so components nobody watches skip the lock.
    watched: std::sync::atomic::AtomicBool,
    pub(crate) callbacks: Callbacks<C>,
}

impl<C: Component> Shared<C> {
    /// A receiver of future changes; `None` once the component is torn down.
    pub(crate) fn subscribe(&self) -> Option<broadcast::Receiver<Change<C>>> {
        let mut guard = self.changes.lock().unwrap_or_else(|p| p.into_inner());
        if *self.stage.borrow() == Stage::TornDown {
            return None;
        }
        let tx = guard.get_or_insert_with(|| broadcast::channel(SUBSCRIPTION_CAPACITY).0);
        self.watched.store(true, std::sync::atomic::Ordering::Release);
        Some(tx.subscribe())
    }

    fn broadcast(&self, change: &Change<C>) {
        if !self.watched.load(std::sync::atomic::Ordering::Acquire) {
            return;
        }
        let guard = self.changes.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(tx) = guard.as_ref() {
            if tx.receiver_count() > 0 {
                let _ = tx.send(change.clone());
            }
        }
    }

    fn close_changes(&self) {
        self.changes.lock().unwrap_or_else(|p| p.into_inner()).take();
    }
}

/// Creates a component's cell, runs it to `Started` and returns its handle,
/// or the error that stopped it on the way.
pub(crate) async fn spawn_component<C: Component>(
    name: &str,
    uri: String,
    state: C,
    container: Option<Container>,
    persistence: Option<&Persistence>,
) -> Result<Handle<C>> {
    prepare_component(name, uri, state, container, persistence)?.launch().await
}

/// A cell that exists (its handle works, changes can be subscribed to) but
/// whose task has not started: the component is `Submitted`.
pub(crate) struct PreparedCell<C: Component> {
    handle: Handle<C>,
    cell: Cell<C>,
}

impl<C: Component> PreparedCell<C> {
    pub(crate) fn handle(&self) -> &Handle<C> {
        &self.handle
    }

    /// Spawns the cell's task and waits until it is started or has failed.
    pub(crate) async fn launch(self) -> Result<Handle<C>> {
        let PreparedCell { handle, cell } = self;
        let mut activating: ActivationSet = ACTIVATING.try_with(Clone::clone).unwrap_or_default();
        if let Some(c) = &cell.ctx.container {
            Arc::make_mut(&mut activating).push(c.id());
        }
        let span = cell.ctx.span.clone();
        let (ready_tx, ready_rx) = oneshot::channel();
        tokio::spawn(cell.run(ready_tx, activating).instrument(span));
        match ready_rx.await {
            Ok(Ok(())) => Ok(handle),
            Ok(Err(e)) => Err(e),
            Err(_) => {
                Err(Error::Panicked(format!("component {} died while starting", handle.uri())))
            }
        }
    }
}

/// Creates a component's cell without starting it.
pub(crate) fn prepare_component<C: Component>(
    name: &str,
    uri: String,
    state: C,
    container: Option<Container>,
    persistence: Option<&Persistence>,
) -> Result<PreparedCell<C>> {
    let schema = schema_of::<C>();
    let persisted = match schema {
        Some(s) if !s.fields.is_empty() => Some(Persisted::new(s, persistence, &uri)?),
        _ => None,
    };
    let etag_key = persisted.as_ref().and_then(Persisted::etag_key);
    let bytes = serde_json::to_vec(&state)
        .map_err(|e| Error::Invalid(format!("state of {uri} does not serialise: {e}")))?;
    let snapshot = Arc::new(Snapshot {
        state: state.clone(),
        etag: ETag::of(&bytes, etag_key.as_ref()),
        version: 1,
        stage: Stage::Submitted,
    });
    let (tx, rx) = mpsc::channel(MAILBOX_CAPACITY);
    let shared = Arc::new(Shared {
        name: name.to_owned(),
        uri,
        tx,
        snapshot: ArcSwap::new(Arc::clone(&snapshot)),
        stage: watch::Sender::new(Stage::Submitted),
        changes: Mutex::new(None),
        watched: std::sync::atomic::AtomicBool::new(false),
        callbacks: Callbacks::new(CALLBACK_TIMEOUT),
    });
    let handle = Handle::from_shared(shared.clone());
    let ctx = Context::new(handle.clone(), container);
    let cell = Cell {
        shared,
        current: snapshot,
        state,
        ctx,
        rx,
        last_bytes: bytes,
        scratch: Vec::new(),
        etag_key,
        persisted,
        tracker: RestartTracker::default(),
        pending: Vec::new(),
        done: false,
    };
    Ok(PreparedCell { handle, cell })
}

/// What to do after a failure.
enum Decision {
    Restart(Duration),
    Stop,
    Ignore,
}

#[derive(Debug, Clone, Copy)]
enum Hook {
    Init,
    PostInit,
    PreStart,
    Start,
    Stop,
}

struct Cell<C: Component> {
    shared: Arc<Shared<C>>,
    /// The snapshot last published; the cell is its only writer.
    current: Arc<Snapshot<C>>,
    state: C,
    ctx: Context<C>,
    rx: mpsc::Receiver<Envelope<C>>,
    /// Serialised state as of the last commit.
    last_bytes: Vec<u8>,
    scratch: Vec<u8>,
    etag_key: Option<[u8; 32]>,
    persisted: Option<Persisted>,
    tracker: RestartTracker,
    /// Mutations handled but not yet committed and answered.
    pending: Vec<Box<dyn Operation<C>>>,
    done: bool,
}

enum CommitError {
    Conflict,
    Failed(Error),
}

impl<C: Component> Cell<C> {
    async fn run(mut self, ready: oneshot::Sender<Result<()>>, activating: ActivationSet) {
        let activated = ACTIVATING.scope(activating, self.activate()).await;
        match activated {
            Ok(()) => {
                let _ = ready.send(Ok(()));
                self.serve().await;
            }
            Err(e) => {
                let _ = ready.send(Err(e));
            }
        }
    }

    fn uri(&self) -> &str {
        &self.shared.uri
    }

    // ----- lifecycle -------------------------------------------------------

    async fn activate(&mut self) -> Result<()> {
        self.set_stage(Stage::Preinitializing).await;
        self.set_stage(Stage::Preinitialized).await;
        self.set_stage(Stage::Initializing).await;
        if let Err(e) = self.initialize().await {
            tracing::error!(error = %e, "initialisation failed; aborting");
            self.set_stage(Stage::Aborting).await;
            self.teardown().await;
            return Err(e);
        }
        self.set_stage(Stage::Initialized).await;
        self.set_stage(Stage::Starting).await;
        let pre = self.hook(Hook::PreStart).await;
        let started = match pre {
            Ok(()) => self.start_with_retries().await,
            Err(e) => Err(e),
        };
        match started {
            Ok(()) => {
                if let Some(c) = self.ctx.container.clone() {
                    c.register(Arc::new(self.ctx.handle.clone()));
                }
                Ok(())
            }
            Err(e) => {
                tracing::error!(error = %e, "start failed; stopping");
                self.stop_and_teardown().await;
                Err(e)
            }
        }
    }

    async fn initialize(&mut self) -> Result<()> {
        if let Some(p) = self.persisted.as_mut() {
            p.load(&mut self.state).await?;
            let rewrite = p.needs_rewrite();
            self.commit_or_rollback(rewrite).await?;
        }
        self.hook(Hook::Init).await?;
        self.hook(Hook::PostInit).await
    }

    /// Runs `start` until it succeeds or the restart policy gives up.
    async fn start_with_retries(&mut self) -> Result<()> {
        loop {
            match self.hook(Hook::Start).await {
                Ok(()) => {
                    self.set_stage(Stage::Started).await;
                    return Ok(());
                }
                Err(e) => {
                    let Decision::Restart(delay) = self.decide(false) else { return Err(e) };
                    tracing::warn!(error = %e, ?delay, "start failed; restarting");
                    self.set_stage(Stage::Restarting).await;
                    self.stop_run().await;
                    tokio::time::sleep(delay).await;
                    self.set_stage(Stage::Starting).await;
                }
            }
        }
    }

    /// What the restart policy says about a failure (or, with
    /// `normal_exit`, about a spawned task that ended without error).
    fn decide(&mut self, normal_exit: bool) -> Decision {
        let policy = self.state.restart_policy();
        match policy.when {
            Restart::Never if normal_exit => Decision::Ignore,
            Restart::OnFailure if normal_exit => Decision::Ignore,
            Restart::Never => Decision::Stop,
            Restart::OnFailure | Restart::Always => {
                match self.tracker.next_attempt(&policy.intensity) {
                    Some(attempt) => Decision::Restart(policy.backoff.delay(attempt)),
                    None => Decision::Stop,
                }
            }
        }
    }

    /// `stop` hook of the current run, then its tasks are cancelled.
    async fn stop_run(&mut self) {
        if let Err(e) = self.hook(Hook::Stop).await {
            tracing::warn!(error = %e, "stop hook failed");
        }
        self.ctx.end_run();
    }

    /// Restarts a started component: `stop`, wait, `start`.
    async fn restart(&mut self, delay: Duration) {
        self.set_stage(Stage::Restarting).await;
        self.stop_run().await;
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        self.set_stage(Stage::Starting).await;
        if let Err(e) = self.start_with_retries().await {
            tracing::error!(error = %e, "restart failed; stopping for good");
            self.escalate(&e);
            self.stop_and_teardown().await;
        }
    }

    /// A failure while started: restart or stop, as the policy says.
    async fn fail(&mut self, error: Error, normal_exit: bool) {
        match self.decide(normal_exit) {
            Decision::Restart(delay) => {
                tracing::warn!(%error, ?delay, "component failed; restarting");
                self.restart(delay).await;
            }
            Decision::Ignore => {}
            Decision::Stop => {
                tracing::error!(%error, "component failed; stopping for good");
                self.escalate(&error);
                self.stop_and_teardown().await;
            }
        }
    }

    fn escalate(&self, error: &Error) {
        if let Some(c) = &self.ctx.container {
            c.child_failed(self.uri(), error);
        }
    }

    async fn stop_and_teardown(&mut self) {
        self.set_stage(Stage::Stopping).await;
        self.stop_run().await;
        self.set_stage(Stage::Stopped).await;
        self.teardown().await;
    }

    async fn teardown(&mut self) {
        self.set_stage(Stage::TearingDown).await;
        self.rx.close();
        while let Ok(env) = self.rx.try_recv() {
            env.reject(Error::Stopping(self.shared.uri.clone()), &self.current);
        }
        if let Some(c) = &self.ctx.container {
            c.deregister(&self.shared.name, &self.shared.uri);
        }
        self.set_stage(Stage::TornDown).await;
        self.shared.close_changes();
        self.done = true;
        tracing::info!("stopped");
    }

    // ----- hooks -----------------------------------------------------------

    /// Runs a hook with panics contained; on failure the state goes back to
    /// the last snapshot, on success the state is committed.
    async fn hook(&mut self, hook: Hook) -> Result<()> {
        let Cell { state, ctx, .. } = self;
        let fut: BoxFuture<'_, Result<()>> = match hook {
            Hook::Init => Box::pin(state.init(ctx)),
            Hook::PostInit => Box::pin(state.post_init(ctx)),
            Hook::PreStart => Box::pin(state.pre_start(ctx)),
            Hook::Start => Box::pin(state.start(ctx)),
            Hook::Stop => Box::pin(state.stop(ctx)),
        };
        let result = match AssertUnwindSafe(fut).catch_unwind().await {
            Ok(r) => r,
            Err(panic) => {
                Err(Error::Panicked(format!("{hook:?} hook: {}", panic_message(&*panic))))
            }
        };
        match result {
            Ok(()) => self.commit_or_rollback(false).await,
            Err(e) => {
                self.rollback();
                Err(e)
            }
        }
    }

    // ----- mailbox ---------------------------------------------------------

    async fn serve(&mut self) {
        while !self.done {
            let env = tokio::select! {
                biased;
                env = self.rx.recv() => env,
                Some(joined) = self.ctx.tasks.join_next() => {
                    self.flush().await;
                    match joined {
                        Ok(Ok(())) => self.fail(Error::Handler("task ended".into()), true).await,
                        Ok(Err(e)) => self.fail(e, false).await,
                        Err(e) if e.is_panic() => {
                            let msg = panic_message(&*e.into_panic());
                            self.fail(Error::Panicked(format!("task: {msg}")), false).await;
                        }
                        Err(_) => {}
                    }
                    continue;
                }
            };
            match env {
                Some(Envelope::Op(op)) => self.handle_op(op).await,
                Some(Envelope::Control(c, reply)) => {
                    self.flush().await;
                    self.handle_control(c, reply).await;
                }
                None => break,
            }
        }
    }

    /// Runs one operation. Successful mutations join the pending group,
    /// which is committed (serialised, persisted, published) once the mailbox
    /// is empty or the group is full, and only then answered: under load
    /// many messages share one commit and one store write.
    async fn handle_op(&mut self, mut op: Box<dyn Operation<C>>) {
        let mutates = op.mutates();
        if !mutates || op.conditional() {
            // Reads and If-Match checks see only committed state.
            self.flush().await;
        }
        let checkpoint = (mutates && !self.pending.is_empty()).then(|| self.state.clone());
        let current = Arc::clone(&self.current);
        let run =
            AssertUnwindSafe(op.run(&mut self.state, &mut self.ctx, &current)).catch_unwind().await;
        match run {
            Ok(Ok(())) if !mutates => op.finish(Ok(()), &current),
            Ok(Ok(())) => {
                self.pending.push(op);
                if self.pending.len() >= GROUP_LIMIT || self.rx.is_empty() {
                    self.flush().await;
                }
            }
            Ok(Err(e)) => {
                if mutates {
                    self.restore(checkpoint);
                }
                op.finish(Err(e), &current);
                if self.rx.is_empty() {
                    self.flush().await;
                }
            }
            Err(panic) => {
                self.restore(checkpoint);
                let e = Error::Panicked(panic_message(&*panic));
                tracing::error!(error = %e, "handler panicked; state restored");
                op.finish(Err(e.clone()), &current);
                self.flush().await;
                self.fail(e, false).await;
            }
        }
    }

    /// Goes back to `checkpoint`, or to the last committed state.
    fn restore(&mut self, checkpoint: Option<C>) {
        match checkpoint {
            Some(state) => self.state = state,
            None => self.rollback(),
        }
    }

    /// Commits the pending group and answers its operations.
    async fn flush(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        // Taken out and put back, so the allocation is reused.
        let mut ops = std::mem::take(&mut self.pending);
        let (outcome, change) = match self.commit(false).await {
            Ok(change) => (Ok(()), change),
            Err(CommitError::Failed(e)) => {
                self.rollback();
                (Err(e), None)
            }
            Err(CommitError::Conflict) => {
                self.rollback();
                (Err(self.reload_after_conflict().await), None)
            }
        };
        for op in ops.drain(..) {
            op.finish(outcome.clone(), &self.current);
        }
        self.pending = ops;
        if let Some(change) = change {
            self.publish(change).await;
        }
    }

    async fn handle_control(
        &mut self,
        control: Control,
        reply: Option<oneshot::Sender<Result<()>>>,
    ) {
        let result = match control {
            Control::Shutdown => {
                self.stop_and_teardown().await;
                Ok(())
            }
            Control::Restart => {
                self.restart(Duration::ZERO).await;
                Ok(())
            }
            Control::RestartAfter(d) => {
                self.restart(d).await;
                Ok(())
            }
            Control::Persist => self.commit_or_rollback(true).await,
            Control::NotifyPeers => {
                let curr = Arc::clone(&self.current);
                self.publish(Change::Updated { prev: curr.clone(), curr }).await;
                Ok(())
            }
        };
        if let Some(tx) = reply {
            let _ = tx.send(result);
        }
    }

    // ----- state -----------------------------------------------------------

    fn rollback(&mut self) {
        self.state = self.current.state.clone();
    }

    /// Commits; on failure rolls back and says why.
    async fn commit_or_rollback(&mut self, force_persist: bool) -> Result<()> {
        match self.commit(force_persist).await {
            Ok(change) => {
                if let Some(change) = change {
                    self.publish(change).await;
                }
                Ok(())
            }
            Err(CommitError::Failed(e)) => {
                self.rollback();
                Err(e)
            }
            Err(CommitError::Conflict) => {
                self.rollback();
                Err(self.reload_after_conflict().await)
            }
        }
    }

    /// Serialises the state; if it changed, persists it and publishes a new
    /// snapshot. Returns the change to tell callbacks and subscribers about.
    async fn commit(&mut self, force_persist: bool) -> Result<Option<Change<C>>, CommitError> {
        self.scratch.clear();
        serde_json::to_writer(&mut self.scratch, &self.state).map_err(|e| {
            CommitError::Failed(Error::Invalid(format!("state does not serialise: {e}")))
        })?;
        let changed = self.scratch != self.last_bytes;
        if !changed && !force_persist {
            return Ok(None);
        }
        if let Some(p) = self.persisted.as_mut() {
            match p.save(&self.state, force_persist).await {
                Ok(()) => {}
                Err(SaveError::Conflict(e)) => {
                    tracing::warn!(error = %e, "another writer saved first");
                    return Err(CommitError::Conflict);
                }
                Err(SaveError::Failed(e)) => return Err(CommitError::Failed(e)),
            }
        }
        if !changed {
            return Ok(None);
        }
        std::mem::swap(&mut self.scratch, &mut self.last_bytes);
        let prev = Arc::clone(&self.current);
        let curr = Arc::new(Snapshot {
            state: self.state.clone(),
            etag: ETag::of(&self.last_bytes, self.etag_key.as_ref()),
            version: prev.version + 1,
            stage: prev.stage,
        });
        self.set_current(Arc::clone(&curr));
        Ok(Some(Change::Updated { prev, curr }))
    }

    /// After a lost compare-and-set: loads what the other writer stored and
    /// publishes it. Returns the error for the caller.
    async fn reload_after_conflict(&mut self) -> Error {
        let Some(p) = self.persisted.as_mut() else {
            return Error::Store("conflict without a store".into());
        };
        if let Err(e) = p.load(&mut self.state).await {
            self.rollback();
            return Error::Store(format!("reloading after a conflict failed: {e}"));
        }
        match self.commit(false).await {
            Ok(change) => {
                if let Some(change) = change {
                    self.publish(change).await;
                }
            }
            Err(_) => self.rollback(),
        }
        Error::Conflict { current_etag: self.current.etag.quoted() }
    }

    fn set_current(&mut self, snapshot: Arc<Snapshot<C>>) {
        self.shared.snapshot.store(Arc::clone(&snapshot));
        self.current = snapshot;
    }

    /// Tells subscribers and callbacks about `change`. The future owns what
    /// it needs, so the cell (whose pending operations are not `Sync`) is
    /// not borrowed across the callbacks' awaits.
    fn publish(&self, change: Change<C>) -> impl std::future::Future<Output = ()> + Send + 'static {
        let shared = Arc::clone(&self.shared);
        async move {
            shared.broadcast(&change);
            shared.callbacks.run(&change, &shared.uri).await;
        }
    }

    async fn set_stage(&mut self, next: Stage) {
        let prev = *self.shared.stage.borrow();
        if let Err(e) = prev.transition(next) {
            // A bug in the runtime: report loudly, never move silently.
            tracing::error!(error = %e, "refusing illegal lifecycle transition");
            debug_assert!(false, "{e}");
            return;
        }
        let snap = Arc::clone(&self.current);
        self.set_current(Arc::new(Snapshot {
            state: snap.state.clone(),
            etag: snap.etag,
            version: snap.version,
            stage: next,
        }));
        self.shared.stage.send_replace(next);
        tracing::debug!(%prev, %next, "stage");
        self.publish(Change::Stage { prev, curr: next }).await;
        let (ps, ns): (State, State) = (prev.state(), next.state());
        if ps != ns {
            self.publish(Change::State { prev: ps, curr: ns }).await;
        }
    }
}

/// The message of a panic payload.
pub(crate) fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-string payload".to_owned()
    }
}
