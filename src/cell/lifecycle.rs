//! The lifecycle driver: moves a component through its stages, runs its
//! hooks with panics contained, and applies its restart policy.
//!
//! Every stage change goes through the transition table of
//! [`kinesis_fsm`]; an illegal one is a bug of the runtime, logged and
//! refused, never taken silently.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::time::Duration;

use futures::FutureExt;

use super::commit::CommitError;
use super::{panic_message, Cell};
use crate::supervisor::Restart;
use crate::{Change, Component, Error, Result, Stage, State};

/// What to do after a failure.
pub(crate) enum Decision {
    Restart(Duration),
    Stop,
    Ignore,
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Hook {
    Init,
    PostInit,
    PreStart,
    Start,
    Stop,
}

/// Runs a hook's future with panics caught, answering overdue asks meanwhile.
async fn contained<C: Component>(
    hook: impl Future<Output = Result<()>> + Send,
    watched: super::watchdog::Watched<'_, C>,
) -> std::thread::Result<Result<()>> {
    let hook = std::pin::pin!(AssertUnwindSafe(hook).catch_unwind());
    super::watchdog::guard(hook, watched).await
}

impl<C: Component> Cell<C> {
    /// `Submitted` to `Started`, or the error that stopped the component
    /// (which is then torn down).
    pub(crate) async fn activate(&mut self) -> Result<()> {
        self.set_stage(Stage::Preinitializing).await;
        self.set_stage(Stage::Preinitialized).await;
        self.set_stage(Stage::Initializing).await;
        if let Err(e) = self.initialize().await {
            self.shared.stats().failed(format!("initialisation: {e}"));
            tracing::error!(error = %e, "initialisation failed; aborting");
            self.set_stage(Stage::Aborting).await;
            self.teardown().await;
            return Err(e);
        }
        self.set_stage(Stage::Initialized).await;
        self.set_stage(Stage::Starting).await;
        let started = match self.hook(Hook::PreStart).await {
            Ok(()) => self.start_with_retries().await,
            Err(e) => Err(e),
        };
        match started {
            Ok(()) => Ok(()),
            Err(e) => {
                tracing::error!(error = %e, "start failed; stopping");
                self.stop_and_teardown().await;
                Err(e)
            }
        }
    }

    async fn initialize(&mut self) -> Result<()> {
        if self.committer.persists() {
            // Without persisted fields nothing was loaded: the state is the
            // one the first snapshot was made of, and examining it again
            // would only serialise it once more.
            let rewrite = self.committer.load(&mut self.state).await?;
            self.commit_now(rewrite).await?;
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
                    self.shared.stats().failed(format!("start: {e}"));
                    let Decision::Restart(delay) = self.decide(false) else { return Err(e) };
                    tracing::warn!(error = %e, ?delay, "start failed; restarting");
                    self.shared.stats().restarted();
                    crate::metrics::restarted(self.uri());
                    self.set_stage(Stage::Restarting).await;
                    self.stop_run().await;
                    self.pause(delay).await;
                    self.set_stage(Stage::Starting).await;
                }
            }
        }
    }

    /// What the restart policy says about a failure (or, with
    /// `normal_exit`, about a spawned task that ended without error).
    pub(crate) fn decide(&mut self, normal_exit: bool) -> Decision {
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

    /// Waits `delay`, answering overdue asks meanwhile.
    async fn pause(&mut self, delay: Duration) {
        if delay.is_zero() {
            return;
        }
        let Cell { shared, inbox, pending, .. } = self;
        let watched = Cell::watched(shared, inbox, pending, None);
        super::watchdog::guard(Box::pin(tokio::time::sleep(delay)), watched).await;
    }

    /// `stop` hook of the current run, then its tasks are cancelled and the
    /// callbacks it registered elsewhere removed.
    async fn stop_run(&mut self) {
        if let Err(e) = self.hook(Hook::Stop).await {
            tracing::warn!(error = %e, "stop hook failed");
        }
        self.ctx.end_run();
        self.shared.owned.release_all();
    }

    /// Restarts a started component: `stop`, wait, `start`.
    pub(crate) async fn restart(&mut self, delay: Duration) {
        self.shared.stats().restarted();
        crate::metrics::restarted(self.uri());
        self.set_stage(Stage::Restarting).await;
        self.stop_run().await;
        self.pause(delay).await;
        self.set_stage(Stage::Starting).await;
        if let Err(e) = self.start_with_retries().await {
            tracing::error!(error = %e, "restart failed; stopping for good");
            self.escalate(&e);
            self.stop_and_teardown().await;
        }
    }

    /// A failure while started: restart or stop, as the policy says.
    pub(crate) async fn fail(&mut self, error: Error, normal_exit: bool) {
        if !normal_exit {
            self.shared.stats().failed(error.to_string());
        }
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
        if let Some(p) = &self.ctx.parent {
            p.child_failed(self.uri(), error);
        }
    }

    pub(crate) async fn stop_and_teardown(&mut self) {
        self.set_stage(Stage::Stopping).await;
        self.stop_run().await;
        self.set_stage(Stage::Stopped).await;
        self.teardown().await;
    }

    async fn teardown(&mut self) {
        self.set_stage(Stage::TearingDown).await;
        self.close_mailbox();
        self.ctx.end_run();
        self.shared.owned.release_all();
        if let Some(p) = &self.ctx.parent {
            p.child_gone(self.shared.name(), &self.shared.uri);
        }
        self.set_stage(Stage::TornDown).await;
        self.shared.publisher.close();
        self.done = true;
        tracing::info!("stopped");
    }

    /// Runs a hook with panics contained; on failure the state goes back to
    /// the last snapshot, on success the state is committed.
    async fn hook(&mut self, hook: Hook) -> Result<()> {
        let Cell { state, ctx, shared, inbox, pending, .. } = self;
        let watched = Cell::watched(shared, inbox, pending, None);
        // Each hook's future is pinned in place (not boxed): this future,
        // boxed once by its caller, holds the largest of them.
        let ran = match hook {
            Hook::Init => contained(state.init(ctx), watched).await,
            Hook::PostInit => contained(state.post_init(ctx), watched).await,
            Hook::PreStart => contained(state.pre_start(ctx), watched).await,
            Hook::Start => contained(state.start(ctx), watched).await,
            Hook::Stop => contained(state.stop(ctx), watched).await,
        };
        let result = match ran {
            Ok(r) => r,
            Err(panic) => {
                Err(Error::Panicked(format!("{hook:?} hook: {}", panic_message(&*panic))))
            }
        };
        match result {
            Ok(()) => self.commit_now(false).await,
            Err(e) => {
                self.committer.rollback(&mut self.state);
                Err(e)
            }
        }
    }

    /// Commits and publishes; on failure rolls back and says why.
    pub(crate) async fn commit_now(&mut self, force_persist: bool) -> Result<()> {
        let (outcome, change) = self.commit(force_persist).await;
        if let Some(change) = change {
            self.publish(change).await;
        }
        outcome
    }

    /// Commits; returns the outcome for the operations it covers and the
    /// change to publish once they are answered.
    pub(crate) async fn commit(&mut self, force_persist: bool) -> (Result<()>, Option<Change<C>>) {
        let changed = match self.examine() {
            Ok(changed) => changed,
            Err(e) => return (Err(e), None),
        };
        if !changed && !force_persist {
            return (Ok(()), None);
        }
        if self.committer.persists() {
            let Cell { committer, state, shared, inbox, pending, .. } = self;
            let save = Box::pin(committer.save(state, force_persist));
            let saved = super::watchdog::guard(save, Cell::watched(shared, inbox, pending, None));
            match saved.await {
                Ok(()) => {}
                Err(CommitError::Failed(e)) => {
                    if changed {
                        self.committer.refused();
                    }
                    self.committer.rollback(&mut self.state);
                    return (Err(e), None);
                }
                Err(CommitError::Conflict) => {
                    if changed {
                        self.committer.refused();
                    }
                    let Cell { committer, state, shared, .. } = self;
                    let reload =
                        committer.reload_after_conflict(state, &shared.snapshot, &shared.uri);
                    let (e, mut changes) = Box::pin(reload).await;
                    // The versions the other writers made, in order: all
                    // but the last published here, the last by the caller.
                    let last = changes.pop();
                    for change in changes {
                        self.publish(change).await;
                    }
                    return (Err(e), last);
                }
            }
        }
        if !changed {
            return (Ok(()), None);
        }
        (Ok(()), Some(self.publish_snapshot()))
    }

    /// Commit step 1: whether the state changed since the last commit; a
    /// state that does not serialise is rolled back.
    pub(crate) fn examine(&mut self) -> Result<bool> {
        self.committer
            .examine(&self.state)
            .inspect_err(|_| self.committer.rollback(&mut self.state))
    }

    /// Commit step 3: publishes the examined state as a new snapshot.
    pub(crate) fn publish_snapshot(&mut self) -> Change<C> {
        self.committer.publish(&self.state, &self.shared.snapshot)
    }

    /// Tells subscribers and callbacks about `change`.
    pub(crate) async fn publish(&mut self, change: Change<C>) {
        self.shared.publisher.broadcast(&change);
        self.run_callbacks(change).await;
    }

    /// Runs the callbacks for `change` (subscribers were told already).
    pub(crate) async fn run_callbacks(&mut self, change: Change<C>) {
        if !self.shared.publisher.has_callbacks() {
            return;
        }
        let Cell { shared, inbox, pending, .. } = self;
        let shared = &**shared;
        let run = Box::pin(shared.publisher.run_callbacks(&change, &shared.uri));
        let watched = Cell::watched(shared, inbox, pending, None);
        super::watchdog::guard(run, watched).await;
    }

    pub(crate) async fn set_stage(&mut self, next: Stage) {
        let prev = self.shared.stage();
        if let Err(e) = prev.transition(next) {
            // A bug in the runtime: report loudly, never move silently.
            tracing::error!(error = %e, "refusing illegal lifecycle transition");
            debug_assert!(false, "{e}");
            return;
        }
        self.shared.store_stage(next);
        match next {
            Stage::Started => self.shared.mark_started(),
            Stage::Restarting | Stage::Stopping | Stage::Aborting => self.shared.mark_stopped(),
            _ => {}
        }
        tracing::debug!(%prev, %next, "stage");
        self.publish(Change::Stage { prev, curr: next }).await;
        let (ps, ns): (State, State) = (prev.state(), next.state());
        if ps != ns {
            self.publish(Change::State { prev: ps, curr: ns }).await;
        }
    }
}
