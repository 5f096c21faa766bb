//! Changes: what subscribers and callbacks are told.
//!
//! Every stage change publishes [`Change::Stage`] (and [`Change::State`] when
//! the coarse state flips); every committed state change publishes
//! [`Change::Updated`] with the previous and the new snapshot.
//!
//! * **Callbacks** ([`Handle::on_change`](crate::Handle::on_change)) run inside
//!   the component's mailbox, in order (all `Head` callbacks, newest first,
//!   then all `Tail` callbacks, oldest first), each under a timeout (default
//!   4 s), before the next message is taken. A callback that times out is cut
//!   off and logged; one that panics is removed and logged; either way the
//!   component goes on. Callbacks are removed by their [`CallbackId`]; a
//!   callback registered from inside a component (its hooks, handlers or
//!   spawned tasks) is removed when that component stops or restarts.
//! * **Subscriptions** ([`Handle::subscribe`](crate::Handle::subscribe)) are
//!   bounded queues that never block the component: a subscriber that falls
//!   more than the queue's capacity (256 changes) behind gets [`Lagged`] with
//!   the number of changes it missed, then continues with the oldest change
//!   still queued. The queue is bounded by a count, so a subscriber that
//!   stops receiving keeps up to 256 snapshots alive: receive promptly, as
//!   the HTTP add-on's `_watch` does (it moves changes into a buffer bounded
//!   by bytes at once).
//! * **Order**: a committed change reaches every subscription (and the
//!   history below) before the operations that made it are answered, so a
//!   caller whose `ask` returned finds its change there; callbacks run after
//!   the answers.
//! * **Resuming** ([`Handle::resume`](crate::Handle::resume)): once a
//!   component has been subscribed to, it keeps its last 64 updates, as
//!   long as the ones before the newest hold at most 1 MiB of JSON text
//!   together (fewer for a big state: a 1 MB state keeps the newest and one
//!   before it; the newest is the current snapshot and costs nothing). A
//!   watcher that saw version `n` and lost its connection gets the updates
//!   after `n` ([`Replay::Updates`]) and a subscription that continues
//!   exactly after them; if `n` is older than that history (or not a version
//!   of this run), [`Replay::TooOld`] says to start over from a snapshot.

use std::sync::Arc;

use tokio::sync::broadcast;

use crate::{Snapshot, Stage, State};

/// One change of a component.
#[derive(Debug)]
pub enum Change<C> {
    /// The lifecycle stage moved.
    Stage {
        /// The stage before.
        prev: Stage,
        /// The stage now.
        curr: Stage,
    },
    /// The coarse state flipped between active and inactive.
    State {
        /// The state before.
        prev: State,
        /// The state now.
        curr: State,
    },
    /// The component's state changed (or peers were asked to be notified).
    Updated {
        /// The snapshot before.
        prev: Arc<Snapshot<C>>,
        /// The snapshot now.
        curr: Arc<Snapshot<C>>,
    },
}

impl<C> Clone for Change<C> {
    fn clone(&self) -> Self {
        match self {
            Change::Stage { prev, curr } => Change::Stage { prev: *prev, curr: *curr },
            Change::State { prev, curr } => Change::State { prev: *prev, curr: *curr },
            Change::Updated { prev, curr } => {
                Change::Updated { prev: Arc::clone(prev), curr: Arc::clone(curr) }
            }
        }
    }
}

/// Where a callback goes in the list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Position {
    /// Before every callback registered so far.
    Head,
    /// After every callback registered so far.
    Tail,
}

/// Names a registered callback, for removal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallbackId(u64);

impl CallbackId {
    pub(crate) fn new(id: u64) -> Self {
        CallbackId(id)
    }

    pub(crate) fn get(self) -> u64 {
        self.0
    }
}

/// The subscriber fell behind and missed this many changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("subscriber lagged behind and missed {missed} changes")]
pub struct Lagged {
    /// How many changes were dropped for this subscriber.
    pub missed: u64,
}

/// What a resumed watcher missed; see [`Handle::resume`](crate::Handle::resume).
#[derive(Debug)]
pub enum Replay<C> {
    /// The snapshots of the updates after the version asked for, oldest
    /// first, with consecutive versions (empty if nothing changed since).
    Updates(Vec<Arc<Snapshot<C>>>),
    /// The history does not reach back to that version: read the current
    /// snapshot and go on from there.
    TooOld,
}

/// A stream of a component's changes; see the module docs for the lag policy.
#[derive(Debug)]
pub struct Subscription<C> {
    rx: broadcast::Receiver<Change<C>>,
}

impl<C> Subscription<C> {
    pub(crate) fn new(rx: broadcast::Receiver<Change<C>>) -> Self {
        Subscription { rx }
    }

    /// The next change. `Ok(None)` once the component is torn down and every
    /// queued change was received; `Err(Lagged)` once after falling behind.
    pub async fn recv(&mut self) -> Result<Option<Change<C>>, Lagged> {
        match self.rx.recv().await {
            Ok(c) => Ok(Some(c)),
            Err(broadcast::error::RecvError::Closed) => Ok(None),
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                crate::metrics::lagged(missed);
                Err(Lagged { missed })
            }
        }
    }

    /// The next change if one is queued, without waiting.
    pub fn try_recv(&mut self) -> Result<Option<Change<C>>, Lagged> {
        match self.rx.try_recv() {
            Ok(c) => Ok(Some(c)),
            Err(broadcast::error::TryRecvError::Lagged(missed)) => {
                crate::metrics::lagged(missed);
                Err(Lagged { missed })
            }
            Err(_) => Ok(None),
        }
    }
}

/// What a queued JSON change costs beyond its data (the event's name, id and
/// framing, and the queue entry), for [`JsonQueue`]'s budget.
const JSON_EVENT_OVERHEAD: usize = 128;

/// The queue of one JSON watch ([`DynComponent::watch_json`](crate::DynComponent::watch_json)),
/// bounded by bytes: the publisher pushes each change into it as the change
/// is published (so the component's own subscription queue never holds
/// changes for it), and the watcher takes them at its pace.
///
/// A change that would take the queue past its budget (the data of its
/// updates plus a small overhead per change) empties it instead; one change
/// larger than the budget is still queued, alone. From then on changes are
/// only counted until the watcher takes the next one: it gets
/// [`Lagged`] with the number it missed, then the changes published after
/// that. Whatever is queued is freed when the watcher drops its stream.
pub(crate) struct JsonQueue {
    inner: std::sync::Mutex<QueueState>,
    /// Wakes the watcher (a permit is kept while it is not waiting, so no
    /// wake-up is lost).
    ready: tokio::sync::Notify,
    budget: usize,
}

#[derive(Default)]
struct QueueState {
    changes: std::collections::VecDeque<(crate::JsonChange, usize)>,
    /// The bytes of `changes`.
    bytes: usize,
    /// The changes dropped since the watcher last took one; while more than
    /// 0 nothing is queued.
    missed: u64,
    /// The component was torn down: no more changes.
    ended: bool,
}

impl JsonQueue {
    /// An empty queue holding at most `budget` bytes.
    pub(crate) fn new(budget: usize) -> JsonQueue {
        JsonQueue {
            inner: std::sync::Mutex::new(QueueState::default()),
            ready: tokio::sync::Notify::new(),
            budget,
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, QueueState> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues `change`, or counts it missed (see the type's docs). Never waits.
    pub(crate) fn push(&self, change: crate::JsonChange) {
        let size = JSON_EVENT_OVERHEAD
            + match &change {
                crate::JsonChange::Updated { data, .. } => data.as_bytes().len(),
                _ => 0,
            };
        let dropped = {
            let mut state = self.state();
            if state.missed > 0 {
                state.missed += 1;
                None
            } else if !state.changes.is_empty() && state.bytes + size > self.budget {
                state.missed = state.changes.len() as u64 + 1;
                state.bytes = 0;
                Some(std::mem::take(&mut state.changes))
            } else {
                state.bytes += size;
                state.changes.push_back((change, size));
                None
            }
        };
        // What was let go is freed outside the lock.
        drop(dropped);
        self.ready.notify_one();
    }

    /// No more changes come: the watcher's stream ends once it has taken
    /// what is queued.
    pub(crate) fn end(&self) {
        self.state().ended = true;
        self.ready.notify_one();
    }

    /// The changes as a stream, leaving out updates to versions up to
    /// `after` (the watcher has them already; re-publications of the
    /// current version, as `NotifyPeers` sends, still pass).
    pub(crate) fn stream(
        self: Arc<Self>,
        after: u64,
    ) -> futures::stream::BoxStream<'static, Result<crate::JsonChange, Lagged>> {
        Box::pin(futures::stream::unfold(self, move |queue| async move {
            loop {
                let next = {
                    let mut state = queue.state();
                    if state.missed > 0 {
                        Some(Err(Lagged { missed: std::mem::take(&mut state.missed) }))
                    } else if let Some((change, size)) = state.changes.pop_front() {
                        state.bytes -= size;
                        Some(Ok(change))
                    } else if state.ended {
                        return None;
                    } else {
                        None
                    }
                };
                match next {
                    Some(Ok(crate::JsonChange::Updated { prev_version, version, .. }))
                        if version <= after && prev_version != version =>
                    {
                        continue
                    }
                    Some(item) => return Some((item, queue)),
                    // A push after the look above left a permit.
                    None => queue.ready.notified().await,
                }
            }
        }))
    }
}

#[cfg(test)]
mod tests {
    use futures::StreamExt;

    use super::*;
    use crate::{ETag, JsonChange, JsonText};

    fn update(version: u64, size: usize) -> JsonChange {
        JsonChange::Updated {
            prev_version: version - 1,
            version,
            etag: ETag::of(b"x", None),
            data: JsonText::from_serialised(vec![b'1'; size].into()),
        }
    }

    #[tokio::test]
    async fn a_json_queue_holds_its_budget_then_counts_what_it_misses() {
        let queue = Arc::new(JsonQueue::new(1000));
        let mut stream = Arc::clone(&queue).stream(1);
        queue.push(update(1, 10)); // the watcher has it: left out
        queue.push(update(2, 300));
        assert_eq!(stream.next().await.unwrap().unwrap().version(), Some(2));
        queue.push(update(3, 300));
        queue.push(update(4, 300));
        assert_eq!(queue.state().bytes, 2 * (300 + JSON_EVENT_OVERHEAD));
        queue.push(update(5, 300)); // past 1000 bytes: everything goes
        assert_eq!(queue.state().bytes, 0);
        queue.push(update(6, 300)); // counted only
        assert_eq!(stream.next().await, Some(Err(Lagged { missed: 4 })));
        queue.push(update(7, 5000)); // bigger than the budget, alone: kept
        queue.end();
        assert_eq!(stream.next().await.unwrap().unwrap().version(), Some(7));
        assert_eq!(stream.next().await, None);
    }
}
