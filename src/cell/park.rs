//! An idle cell needs no task.
//!
//! Once started, a component with nothing queued and no spawned tasks to
//! watch is *parked*: its cell waits in its shared part instead of in a
//! tokio task of its own. The first message or control message spawns that
//! task (the message loop of [`serve`](super::serve), as if it had run all
//! along), and a `Shutdown` of a parked component runs its `stop` hook and
//! its teardown in the task that asked for it, with no hand-off. So an idle
//! component costs no task, and starting and stopping one wakes no other
//! task or thread.
//!
//! Nothing queued is ever left without a task. The parked cell lives in
//! the mailbox, under the lock every sender takes to queue: the mailbox
//! keeps it only if nothing is queued (else the cell runs at once), and the
//! sender that queues next takes it out in that same lock and spawns it. So
//! exactly one of them does, and a busy mailbox pays nothing more than an
//! empty `Option` it reads under a lock it holds anyway.

use std::sync::Arc;

use tracing::Instrument;

use super::mailbox::Wake;
use super::{CallbackOwner, Cell, Shared, OWNER};
use crate::Component;

/// A parked cell and the runtime its task will run on.
pub(crate) struct Parked<C: Component> {
    cell: Cell<C>,
    runtime: tokio::runtime::Handle,
}

impl<C: Component> Wake<C> {
    /// Gives the parked cell that queueing took out, if any, its task.
    pub(crate) fn run(self) {
        if let Some(parked) = self.0 {
            (*parked).spawn();
        }
    }
}

impl<C: Component> Shared<C> {
    /// The parked cell, taken out of the mailbox (no sender spawns it then).
    pub(crate) fn take_parked(&self) -> Option<Box<Parked<C>>> {
        self.mailbox.unpark()
    }
}

impl<C: Component> Cell<C> {
    /// Parks the started cell if it has nothing to do; else spawns its
    /// message loop.
    pub(crate) fn serve_or_park(self) {
        let runtime = tokio::runtime::Handle::current();
        if self.ctx.has_tasks() {
            return spawn(self, &runtime);
        }
        let shared = Arc::clone(&self.shared);
        if let Some(parked) = shared.mailbox.park(Box::new(Parked { cell: self, runtime })) {
            // Something was queued meanwhile: run at once.
            (*parked).spawn();
        }
    }
}

/// Spawns the message loop of `cell` on `runtime`, in the component's span
/// unless that span is disabled (no subscriber wanted it: entering it on
/// every poll would cost without telling anyone anything).
fn spawn<C: Component>(cell: Cell<C>, runtime: &tokio::runtime::Handle) {
    let span = cell.ctx.span.clone();
    let owner: Arc<dyn CallbackOwner> = cell.shared.clone();
    let serve = OWNER.scope(owner, cell.serve());
    if span.is_disabled() {
        runtime.spawn(serve);
    } else {
        runtime.spawn(serve.instrument(span));
    }
}

impl<C: Component> Parked<C> {
    fn spawn(self) {
        spawn(self.cell, &self.runtime);
    }

    /// Stops the component in the calling task: `stop` hook, then teardown,
    /// as its message loop would on a `Shutdown`. Anything queued meanwhile
    /// is answered `Stopping` when the mailbox closes.
    pub(crate) async fn stop_here(self: Box<Self>) {
        let mut cell = self.cell;
        let span = cell.ctx.span.clone();
        let owner: Arc<dyn CallbackOwner> = cell.shared.clone();
        OWNER.scope(owner, async move { cell.stop_and_teardown().await }).instrument(span).await;
    }
}
