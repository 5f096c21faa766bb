//! The mailbox: two lanes into a component's task.
//!
//! * The **message lane** carries operations, in the order they were
//!   accepted, and holds at most [`MAILBOX_CAPACITY`] of them; a sender
//!   waits for room beyond that.
//! * The **control lane** carries control messages (stop, restart, …). It
//!   is served first: a `Shutdown` overtakes every queued message.
//!
//! Both lanes are `VecDeque`s behind one mutex, allocated on the first
//! message (an idle component's mailbox costs no heap memory), and the task
//! takes every queued message in one lock. tokio's `mpsc` allocates its
//! first block of slots eagerly and has no priority lane, hence this small
//! queue built from two tokio `Notify`s.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Mutex;

use tokio::sync::{oneshot, Notify};
use tokio::time::Instant;

use super::ops::{expire_if_due, Envelope};
use super::park::Parked;
use crate::{Component, Control, Result};

/// How many messages a mailbox queues before senders wait.
pub(crate) const MAILBOX_CAPACITY: usize = 1024;

/// What the control lane carries.
pub(crate) enum Signal {
    /// A control message.
    Control(Control),
    /// A change saved by another process (see `cell::remote`).
    Remote(Box<crate::persist::Incoming>),
}

/// A control message and who waits for it to be carried out.
pub(crate) struct ControlEnvelope {
    pub(crate) signal: Signal,
    pub(crate) reply: Option<oneshot::Sender<Result<()>>>,
}

struct Lanes<C: Component> {
    control: VecDeque<ControlEnvelope>,
    messages: VecDeque<Envelope<C>>,
    /// The earliest deadline of an unanswered message in `messages`.
    earliest: Option<Instant>,
    closed: bool,
    /// The cell, while it waits without a task (see `cell::park`): the
    /// next sender takes it out, in the lock it takes anyway, and spawns it.
    parked: Option<Box<Parked<C>>>,
}

/// What a sender must do after queueing: spawn the parked cell it took out
/// (through [`Wake::run`]).
#[must_use = "a parked cell must be woken, or what was queued waits forever"]
pub(crate) struct Wake<C: Component>(pub(super) Option<Box<Parked<C>>>);

/// Why a message was not queued.
pub(crate) enum Refused<C: Component> {
    /// The mailbox is full; the envelope comes back.
    Full(Envelope<C>),
    /// The component stopped.
    Closed,
}

/// The two lanes of one component.
pub(crate) struct Mailbox<C: Component> {
    lanes: Mutex<Lanes<C>>,
    /// Wakes the task when something arrives.
    arrived: Notify,
    /// Wakes senders waiting for room in a full message lane.
    room: Notify,
    /// Set while the control lane is not empty, so the task checks it
    /// between messages without taking the lock.
    control_pending: AtomicBool,
    /// Messages the task took out of the lanes but has not handled yet.
    in_task: AtomicU32,
}

impl<C: Component> Mailbox<C> {
    pub(crate) fn new() -> Self {
        Mailbox {
            lanes: Mutex::new(Lanes {
                control: VecDeque::new(),
                messages: VecDeque::new(),
                earliest: None,
                closed: false,
                parked: None,
            }),
            arrived: Notify::new(),
            room: Notify::new(),
            control_pending: AtomicBool::new(false),
            in_task: AtomicU32::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Lanes<C>> {
        self.lanes.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues `env` if there is room.
    pub(crate) fn try_push(&self, env: Envelope<C>) -> Result<Wake<C>, Refused<C>> {
        let wake = {
            let mut lanes = self.lock();
            if lanes.closed {
                return Err(Refused::Closed);
            }
            if lanes.messages.len() >= MAILBOX_CAPACITY {
                return Err(Refused::Full(env));
            }
            if let Some(d) = env.op().deadline() {
                lanes.earliest = Some(lanes.earliest.map_or(d.at, |e| e.min(d.at)));
            }
            lanes.messages.push_back(env);
            Wake(lanes.parked.take())
        };
        self.arrived.notify_one();
        Ok(wake)
    }

    /// Waits for room, then queues `env`.
    pub(crate) async fn push(&self, mut env: Envelope<C>) -> Result<Wake<C>, Refused<C>> {
        loop {
            // Listening before looking, so room made in between is not missed.
            let room = self.room.notified();
            let mut room = std::pin::pin!(room);
            room.as_mut().enable();
            match self.try_push(env) {
                Err(Refused::Full(back)) => env = back,
                other => return other,
            }
            room.await;
        }
    }

    /// Queues a control message ahead of every queued message.
    pub(crate) fn push_control(&self, env: ControlEnvelope) -> Result<Wake<C>, ControlEnvelope> {
        let wake = {
            let mut lanes = self.lock();
            if lanes.closed {
                return Err(env);
            }
            lanes.control.push_back(env);
            self.control_pending.store(true, Ordering::Release);
            Wake(lanes.parked.take())
        };
        self.arrived.notify_one();
        Ok(wake)
    }

    /// Keeps the cell here if nothing is queued; else hands it back (then
    /// it must run).
    pub(crate) fn park(&self, cell: Box<Parked<C>>) -> Option<Box<Parked<C>>> {
        let mut lanes = self.lock();
        if lanes.messages.is_empty() && lanes.control.is_empty() && !lanes.closed {
            lanes.parked = Some(cell);
            None
        } else {
            Some(cell)
        }
    }

    /// Takes the parked cell out, so no sender spawns it.
    pub(crate) fn unpark(&self) -> Option<Box<Parked<C>>> {
        self.lock().parked.take()
    }

    /// Whether a control message waits.
    pub(crate) fn control_pending(&self) -> bool {
        self.control_pending.load(Ordering::Acquire)
    }

    /// The next control message, if any.
    pub(crate) fn take_control(&self) -> Option<ControlEnvelope> {
        if !self.control_pending() {
            return None;
        }
        let mut lanes = self.lock();
        let next = lanes.control.pop_front();
        self.control_pending.store(!lanes.control.is_empty(), Ordering::Release);
        next
    }

    /// Moves every queued message to the end of `into`; returns how many.
    pub(crate) fn take_messages(&self, into: &mut VecDeque<Envelope<C>>) -> usize {
        let taken = {
            let mut lanes = self.lock();
            let n = lanes.messages.len();
            if n == 0 {
                return 0;
            }
            lanes.earliest = None;
            if into.is_empty() {
                // Swap: no copying, and both allocations are reused.
                std::mem::swap(into, &mut lanes.messages);
            } else {
                into.extend(lanes.messages.drain(..));
            }
            n
        };
        if taken >= MAILBOX_CAPACITY {
            // Only a full lane has senders waiting for room.
            self.room.notify_waiters();
        }
        taken
    }

    /// Messages and control messages waiting, in the lanes and in the task.
    pub(crate) fn len(&self) -> usize {
        let lanes = self.lock();
        lanes.messages.len() + lanes.control.len() + self.in_task.load(Ordering::Relaxed) as usize
    }

    /// The task says how many messages it holds, not yet handled.
    pub(crate) fn set_in_task(&self, n: usize) {
        // At most twice the capacity: the lanes' and the task's share.
        self.in_task.store(u32::try_from(n).unwrap_or(u32::MAX), Ordering::Relaxed);
    }

    /// Waits until something may have arrived (a message, a control message
    /// or a close); returns at once if something arrived since the last wait.
    pub(crate) async fn arrived(&self) {
        self.arrived.notified().await;
    }

    /// Refuses everything from now on and hands back what was queued.
    pub(crate) fn close(&self) -> (Vec<ControlEnvelope>, VecDeque<Envelope<C>>) {
        let (control, messages) = {
            let mut lanes = self.lock();
            lanes.closed = true;
            self.control_pending.store(false, Ordering::Release);
            (lanes.control.drain(..).collect(), std::mem::take(&mut lanes.messages))
        };
        // Senders waiting for room look again and find the mailbox closed.
        self.room.notify_waiters();
        (control, messages)
    }
}

impl<C: Component> Mailbox<C> {
    /// The earliest deadline of the queued, unanswered messages.
    pub(crate) fn earliest_deadline(&self) -> Option<Instant> {
        self.lock().earliest
    }

    /// Answers every queued message whose deadline passed with a timeout;
    /// they stay queued and do nothing when their turn comes.
    pub(crate) fn expire(&self, now: Instant) {
        let mut lanes = self.lock();
        let mut earliest: Option<Instant> = None;
        for env in &lanes.messages {
            let op = env.op();
            expire_if_due(op, now);
            if let Some(d) = op.deadline().filter(|_| !op.answered()) {
                earliest = Some(earliest.map_or(d.at, |e| e.min(d.at)));
            }
        }
        lanes.earliest = earliest;
    }
}
