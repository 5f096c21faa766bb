//! The message loop: control messages first, then operations in order,
//! with group commit.
//!
//! Group commit: a successful mutation joins the pending group instead of
//! being committed at once. The group is committed (one serialisation, one
//! store write, one new version) and answered when the inbox and the
//! mailbox are both empty, when it holds [`GROUP_LIMIT`] operations, or
//! before anything that must see committed state (a read, an `If-Match`
//! check, a control message). A mutation that fails is undone from a copy
//! of the state taken just before it; the rest of the group is unaffected.
//! If the commit fails, every operation of the group gets the error and the
//! state goes back to before the group.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use tracing::Instrument;

use super::mailbox::{ControlEnvelope, Signal};
use super::ops::{expire_if_due, Envelope};
use super::watchdog::guard;
use super::{panic_message, Cell, GROUP_LIMIT};
use crate::{Change, Component, Control, Error, Result};

impl<C: Component> Cell<C> {
    /// Serves the mailbox until the component is torn down. The task's
    /// future holds the cell once (an `async fn` taking `self` would hold it
    /// twice: as its argument and as its local).
    #[allow(clippy::manual_async_fn, reason = "an async fn would hold the cell twice")]
    pub(crate) fn serve(mut self) -> impl std::future::Future<Output = ()> + Send {
        async move { self.serve_loop().await }
    }

    async fn serve_loop(&mut self) {
        while !self.done {
            if let Some(control) = self.shared.mailbox.take_control() {
                Box::pin(async {
                    self.flush().await;
                    self.handle_control(control).await;
                })
                .await;
                continue;
            }
            if self.inbox.is_empty() && self.take_messages() == 0 {
                if !self.pending.is_empty() {
                    self.flush_group().await;
                    continue;
                }
                self.wait().await;
                continue;
            }
            if let Some(env) = self.inbox.pop_front() {
                self.shared.mailbox.set_in_task(self.inbox.len());
                self.handle_op(env).await;
            }
        }
    }

    /// Takes what the mailbox holds; answers the overdue ones right away.
    fn take_messages(&mut self) -> usize {
        let taken = self.shared.mailbox.take_messages(&mut self.inbox);
        self.shared.mailbox.set_in_task(self.inbox.len());
        if taken > 1 {
            let now = tokio::time::Instant::now();
            for env in self.inbox.iter() {
                expire_if_due(env.op(), now);
            }
        }
        taken
    }

    /// Waits for a message, a control message, or the end of a spawned task.
    async fn wait(&mut self) {
        if !self.ctx.has_tasks() {
            self.shared.mailbox.arrived().await;
            return;
        }
        Box::pin(self.wait_with_tasks()).await;
    }

    async fn wait_with_tasks(&mut self) {
        let ended = {
            let arrived = self.shared.mailbox.arrived();
            let tasks = self.ctx.join_next_task();
            tokio::select! {
                biased;
                () = arrived => None,
                joined = tasks => Some(joined),
            }
        };
        let Some(joined) = ended else { return };
        let failure = match joined {
            Ok(Ok(())) => (Error::Handler("task ended".into()), true),
            Ok(Err(e)) => (e, false),
            Err(e) if e.is_panic() => {
                (Error::Panicked(format!("task: {}", panic_message(&*e.into_panic()))), false)
            }
            Err(_) => return,
        };
        Box::pin(self.fail(failure.0, failure.1)).await;
    }

    /// Runs one operation; see the module docs for when it is committed.
    async fn handle_op(&mut self, env: Envelope<C>) {
        // An operation answered while queued (it timed out) does nothing
        // when run: its input is gone.
        let mutates = env.op().mutates();
        if (!mutates || env.op().conditional()) && !self.pending.is_empty() {
            // Reads and If-Match checks see only committed state.
            Box::pin(self.flush()).await;
        }
        let checkpoint = (mutates && !self.pending.is_empty()).then(|| self.state.clone());
        if crate::metrics::enabled() {
            self.shared.stats().timing.start();
        }
        let run = {
            let Cell { state, ctx, shared, inbox, pending, committer, .. } = self;
            let op = env.op();
            let fut = AssertUnwindSafe(op.run(state, ctx, committer.current())).catch_unwind();
            match op.slot().span() {
                // Sent from within a span (an HTTP request's): the handler
                // runs in a child of it, so its logs carry the trace id.
                // Boxed: the span stays off the task's future.
                Some(parent) => {
                    let span = tracing::info_span!(parent: parent, "handle", uri = %shared.uri, kind = ?op.kind());
                    let watched = Cell::watched(shared, inbox, pending, Some(op));
                    Box::pin(guard(fut.instrument(span), watched)).await
                }
                None => guard(fut, Cell::watched(shared, inbox, pending, Some(op))).await,
            }
        };
        if crate::metrics::enabled() {
            let stats = self.shared.stats();
            stats.handled(env.op().kind());
            stats.timing.handled(&self.shared.uri);
        }
        // Nothing was committed meanwhile: this is the snapshot the
        // operation ran against.
        let current = self.committer.current();
        match run {
            Ok(Ok(())) if !mutates => env.finish(Ok(()), current),
            Ok(Ok(())) => {
                self.pending.push(env);
                if self.pending.len() >= GROUP_LIMIT {
                    Box::pin(self.flush()).await;
                }
            }
            Ok(Err(e)) => {
                env.finish(Err(e), current);
                if mutates {
                    self.restore(checkpoint);
                }
            }
            Err(panic) => {
                let e = Error::Panicked(panic_message(&*panic));
                env.finish(Err(e.clone()), current);
                self.restore(checkpoint);
                tracing::error!(error = %e, "handler panicked; state restored");
                Box::pin(async {
                    self.flush().await;
                    self.fail(e, false).await;
                })
                .await;
            }
        }
    }

    /// Goes back to `checkpoint`, or to the last committed state.
    fn restore(&mut self, checkpoint: Option<C>) {
        match checkpoint {
            Some(state) => self.state = state,
            None => self.committer.rollback(&mut self.state),
        }
    }

    /// [`flush`](Cell::flush), without an await (nor a boxed future) when
    /// there is no store to write to and no callback to run: the common case
    /// stays off the task's future.
    async fn flush_group(&mut self) {
        if self.committer.persists() || self.shared.publisher.has_callbacks() {
            return Box::pin(self.flush()).await;
        }
        let (outcome, change) = match self.examine() {
            Ok(false) => (Ok(()), None),
            Ok(true) => (Ok(()), Some(self.publish_snapshot())),
            Err(e) => (Err(e), None),
        };
        // Subscribers (and the watch history) have the change before its
        // callers get their answers. No callbacks (checked above).
        if let Some(change) = &change {
            self.shared.publisher.broadcast(change);
        }
        self.answer_group(outcome);
    }

    /// Answers every operation of the pending group with `outcome`.
    fn answer_group(&mut self, outcome: Result<()>) {
        if crate::metrics::enabled() {
            self.shared.stats().committed(self.pending.len(), outcome.is_ok());
        }
        let current = self.committer.current();
        for env in self.pending.drain(..) {
            env.finish(outcome.clone(), current);
        }
    }

    /// Commits the pending group and answers its operations.
    pub(crate) async fn flush(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let (outcome, change) = self.commit(false).await;
        // Subscribers (and the watch history) have the change before its
        // callers get their answers; callbacks run after.
        if let Some(change) = &change {
            self.shared.publisher.broadcast(change);
        }
        self.answer_group(outcome);
        if let Some(change) = change {
            self.run_callbacks(change).await;
        }
    }

    async fn handle_control(&mut self, envelope: ControlEnvelope) {
        let ControlEnvelope { signal, reply } = envelope;
        let result = match signal {
            Signal::Control(control) => self.control(control).await,
            Signal::Remote(incoming) => {
                self.apply_remote(*incoming).await;
                Ok(())
            }
        };
        if let Some(tx) = reply {
            let _ = tx.send(result);
        }
    }

    async fn control(&mut self, control: Control) -> Result<()> {
        match control {
            Control::Shutdown => {
                Box::pin(self.stop_and_teardown()).await;
                Ok(())
            }
            Control::Restart => {
                Box::pin(self.restart(Duration::ZERO)).await;
                Ok(())
            }
            Control::RestartAfter(d) => {
                Box::pin(self.restart(d)).await;
                Ok(())
            }
            Control::Persist => Box::pin(self.commit_now(true)).await,
            Control::NotifyPeers => {
                let curr = Arc::clone(self.committer.current());
                self.publish(Change::Updated { prev: curr.clone(), curr }).await;
                Ok(())
            }
        }
    }
}
