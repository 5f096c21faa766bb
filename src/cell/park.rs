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
//! Nothing queued is ever left without a task: a sender queues, then looks
//! for a parked cell ([`Shared::wake`]); the cell parks, then looks at the
//! mailbox. Both look with sequentially consistent atomics after their own
//! write, so at least one of them sees the other's (a Dekker handshake),
//! and only the one that takes the cell out of its slot spawns the task.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tracing::Instrument;

use super::{CallbackOwner, Cell, Shared, OWNER};
use crate::Component;

/// Where a parked cell waits; empty while the cell has a task.
pub(crate) struct ParkedSlot<C: Component> {
    /// Set while `cell` holds the cell: senders look here without a lock.
    parked: AtomicBool,
    cell: Mutex<Option<Box<Parked<C>>>>,
}

/// A parked cell and the runtime its task will run on.
pub(crate) struct Parked<C: Component> {
    cell: Cell<C>,
    runtime: tokio::runtime::Handle,
}

impl<C: Component> Default for ParkedSlot<C> {
    fn default() -> Self {
        ParkedSlot { parked: AtomicBool::new(false), cell: Mutex::new(None) }
    }
}

impl<C: Component> ParkedSlot<C> {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Box<Parked<C>>>> {
        self.cell.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes the parked cell out, if there is one.
    fn take(&self) -> Option<Box<Parked<C>>> {
        if !self.parked.load(Ordering::SeqCst) {
            return None;
        }
        let mut slot = self.lock();
        self.parked.store(false, Ordering::SeqCst);
        slot.take()
    }

    fn put(&self, parked: Box<Parked<C>>) {
        let mut slot = self.lock();
        *slot = Some(parked);
        self.parked.store(true, Ordering::SeqCst);
    }
}

impl<C: Component> Shared<C> {
    /// Called after queueing anything: a parked cell gets its task.
    pub(crate) fn wake(&self) {
        if let Some(parked) = self.parked.take() {
            (*parked).spawn();
        }
    }

    /// The parked cell, taken out of its slot (so no sender spawns it).
    pub(crate) fn take_parked(&self) -> Option<Box<Parked<C>>> {
        self.parked.take()
    }
}

impl<C: Component> Cell<C> {
    /// Parks the started cell if it has nothing to do; else spawns its
    /// message loop.
    pub(crate) fn serve_or_park(self) {
        let runtime = tokio::runtime::Handle::current();
        if self.ctx.has_tasks() || !self.shared.mailbox.is_empty() {
            return spawn(self, &runtime);
        }
        let shared = Arc::clone(&self.shared);
        shared.parked.put(Box::new(Parked { cell: self, runtime }));
        // A sender that queued before the cell was in its slot found nothing
        // to spawn: look once more.
        if !shared.mailbox.is_empty() {
            shared.wake();
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
