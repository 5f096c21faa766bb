//! The publisher: tells subscribers and callbacks about a change, and
//! survives whatever they do.
//!
//! * Subscribers get the change through a bounded broadcast queue, created
//!   on the first subscription; nobody watching costs one atomic load.
//! * JSON watchers (the HTTP `_watch`) each get a [`JsonQueue`] bounded by
//!   bytes, filled here as the change is published, so a watcher that does
//!   not keep up never leaves changes in the broadcast queue.
//! * From the first subscription on, the last [`HISTORY`] updates are kept,
//!   so a watcher that lost its connection can resume after the version it
//!   saw last ([`Publisher::resume`]) without missing or repeating one. The
//!   history is bounded by bytes too: the updates before the newest hold at
//!   most [`HISTORY_BYTES`] of JSON text (the newest is the current
//!   snapshot, so keeping it costs nothing). To weigh an update its JSON is
//!   made when it is published, once per commit of a watched component;
//!   watchers and `GET`s then share it.
//! * Callbacks run in order, each under a timeout and under
//!   `catch_unwind`: a callback that panics (while building its future or
//!   while running it) is removed and logged, and the component goes on.
//! * A callback registered from inside a component (one of its hooks,
//!   handlers or spawned tasks) belongs to that component's current run and
//!   is removed when the run ends (stop or restart), so it never outlives
//!   the component that registered it and restarts do not pile it up.

use std::collections::VecDeque;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt;
use tokio::sync::broadcast;

use crate::changes::JsonQueue;
use crate::{CallbackId, Change, JsonChange, Position, Snapshot};

/// How many changes a subscriber may fall behind before it lags.
pub(crate) const SUBSCRIPTION_CAPACITY: usize = 256;
/// How many updates a watched component keeps for resuming watchers.
pub(crate) const HISTORY: usize = 64;
/// How many bytes of JSON text the kept updates before the newest may hold.
pub(crate) const HISTORY_BYTES: usize = 1024 * 1024;
/// Default time a callback may take.
pub(crate) const CALLBACK_TIMEOUT: Duration = Duration::from_secs(4);

type CallbackFn<C> =
    Arc<dyn Fn(Change<C>) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

tokio::task_local! {
    /// The component whose task (or spawned task) is running, if any.
    pub(crate) static OWNER: Arc<dyn CallbackOwner>;
}

/// A component that keeps track of the callbacks it registered elsewhere.
pub(crate) trait CallbackOwner: Send + Sync {
    /// Remembers how to remove a callback registered during the current run.
    fn adopt(&self, removal: Box<dyn FnOnce() + Send>);
}

/// The registrations a component made during its current run.
#[derive(Default)]
pub(crate) struct Owned(Mutex<Vec<Box<dyn FnOnce() + Send>>>);

impl Owned {
    pub(crate) fn push(&self, removal: Box<dyn FnOnce() + Send>) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).push(removal);
    }

    /// Removes every callback registered during the run that ends.
    pub(crate) fn release_all(&self) {
        let removals = std::mem::take(&mut *self.0.lock().unwrap_or_else(|p| p.into_inner()));
        for remove in removals {
            remove();
        }
    }
}

/// The subscribers' side: the queue and the recent updates.
struct Watchers<C> {
    tx: broadcast::Sender<Change<C>>,
    /// The snapshots of the last [`HISTORY`] updates (within
    /// [`HISTORY_BYTES`]), oldest first, with consecutive versions, each with
    /// the length of its JSON text.
    history: VecDeque<(Arc<Snapshot<C>>, usize)>,
    /// The sum of the lengths in `history`.
    history_bytes: usize,
    /// The JSON watchers' queues; gone ones are dropped on the next change.
    sinks: Vec<std::sync::Weak<JsonQueue>>,
}

/// Where a resumed watcher starts.
pub(crate) enum Resume<C> {
    /// The updates after the version asked for, oldest first (empty when
    /// nothing changed since).
    Replay(Vec<Arc<Snapshot<C>>>),
    /// The history does not reach back to that version: start from a
    /// snapshot.
    Snapshot,
}

/// Everything a component's changes go out to.
pub(crate) struct Publisher<C> {
    changes: Mutex<Option<Box<Watchers<C>>>>,
    /// Set on the first subscription, so components nobody watches skip the lock.
    watched: AtomicBool,
    callbacks: Mutex<Vec<(CallbackId, CallbackFn<C>)>>,
    no_callbacks: AtomicBool,
    next_id: AtomicU64,
}

impl<C: Send + Sync + 'static> Publisher<C> {
    pub(crate) fn new() -> Self {
        Publisher {
            changes: Mutex::new(None),
            watched: AtomicBool::new(false),
            callbacks: Mutex::new(Vec::new()),
            no_callbacks: AtomicBool::new(true),
            next_id: AtomicU64::new(1),
        }
    }

    /// A receiver of future changes; `None` once the publisher is closed.
    pub(crate) fn subscribe(&self, closed: bool) -> Option<broadcast::Receiver<Change<C>>> {
        self.resume(closed, None).map(|(rx, _)| rx)
    }

    /// A receiver of future changes and, when `since` is given, the updates
    /// after version `since` that it will not see. Both are taken under the
    /// lock every change is sent under, so together they hold every update
    /// after `since` exactly once, in order.
    pub(crate) fn resume(
        &self,
        closed: bool,
        since: Option<u64>,
    ) -> Option<(broadcast::Receiver<Change<C>>, Resume<C>)> {
        self.watch(closed, since, |watchers| watchers.tx.subscribe())
    }

    /// How many subscriptions are open.
    pub(crate) fn subscribers(&self) -> usize {
        if !self.watched.load(Ordering::Acquire) {
            return 0;
        }
        let guard = self.changes.lock().unwrap_or_else(|p| p.into_inner());
        guard.as_ref().map_or(0, |w| {
            w.tx.receiver_count() + w.sinks.iter().filter(|s| s.strong_count() > 0).count()
        })
    }

    /// Runs `start` on the watchers (made on the first watch) and takes the
    /// updates after version `since` under the same lock, so the two meet
    /// without a gap or an overlap. `None` once the publisher is closed.
    fn watch<T>(
        &self,
        closed: bool,
        since: Option<u64>,
        start: impl FnOnce(&mut Watchers<C>) -> T,
    ) -> Option<(T, Resume<C>)> {
        let mut guard = self.changes.lock().unwrap_or_else(|p| p.into_inner());
        if closed {
            return None;
        }
        let watchers = guard.get_or_insert_with(|| {
            Box::new(Watchers {
                tx: broadcast::channel(SUBSCRIPTION_CAPACITY).0,
                history: VecDeque::new(),
                history_bytes: 0,
                sinks: Vec::new(),
            })
        });
        self.watched.store(true, Ordering::Release);
        let resume = match since {
            None => Resume::Snapshot,
            Some(since) => watchers.replay_after(since),
        };
        Some((start(watchers), resume))
    }

    /// A JSON watcher's queue of future changes (holding at most `budget`
    /// bytes) and, when `since` is given, the updates after version `since`
    /// it will not see; taken under one lock as for [`Publisher::resume`].
    /// `None` once the publisher is closed.
    pub(crate) fn resume_json(
        &self,
        closed: bool,
        since: Option<u64>,
        budget: usize,
    ) -> Option<(Arc<JsonQueue>, Resume<C>)> {
        self.watch(closed, since, |watchers| {
            let queue = Arc::new(JsonQueue::new(budget));
            watchers.sinks.retain(|s| s.strong_count() > 0);
            watchers.sinks.push(Arc::downgrade(&queue));
            queue
        })
    }

    /// Ends every subscription once its queued changes are received.
    pub(crate) fn close(&self) {
        let watchers = self.changes.lock().unwrap_or_else(|p| p.into_inner()).take();
        for sink in watchers.iter().flat_map(|w| &w.sinks) {
            if let Some(queue) = sink.upgrade() {
                queue.end();
            }
        }
    }

    fn callbacks(&self) -> std::sync::MutexGuard<'_, Vec<(CallbackId, CallbackFn<C>)>> {
        self.callbacks.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a callback; see the module docs for ownership.
    pub(crate) fn add<F, Fut>(&self, position: Position, f: F) -> CallbackId
    where
        F: Fn(Change<C>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let id = CallbackId::new(self.next_id.fetch_add(1, Ordering::Relaxed));
        let f: CallbackFn<C> = Arc::new(move |c| Box::pin(f(c)));
        {
            let mut list = self.callbacks();
            match position {
                Position::Head => list.insert(0, (id, f)),
                Position::Tail => list.push((id, f)),
            }
            self.no_callbacks.store(false, Ordering::Release);
        }
        id
    }

    /// Removes a callback; `false` if there was none with this id.
    pub(crate) fn remove(&self, id: CallbackId) -> bool {
        let mut list = self.callbacks();
        let before = list.len();
        list.retain(|(i, _)| *i != id);
        self.no_callbacks.store(list.is_empty(), Ordering::Release);
        list.len() != before
    }

    /// Whether publishing `change` has callbacks to run (and so may wait).
    pub(crate) fn has_callbacks(&self) -> bool {
        !self.no_callbacks.load(Ordering::Acquire)
    }

    /// Runs every callback in order, each under the timeout, panics contained.
    pub(crate) async fn run_callbacks(&self, change: &Change<C>, uri: &str) {
        if !self.has_callbacks() {
            return;
        }
        let list: Vec<_> = self.callbacks().iter().cloned().collect();
        for (id, f) in list {
            let fut = match std::panic::catch_unwind(AssertUnwindSafe(|| f(change.clone()))) {
                Ok(fut) => fut,
                Err(panic) => {
                    self.remove_panicked(id, uri, &*panic);
                    continue;
                }
            };
            match AssertUnwindSafe(tokio::time::timeout(CALLBACK_TIMEOUT, fut)).catch_unwind().await
            {
                Ok(Ok(())) => {}
                Ok(Err(_)) => tracing::warn!(
                    uri,
                    callback = id.get(),
                    timeout = ?CALLBACK_TIMEOUT,
                    "change callback timed out and was cut off"
                ),
                Err(panic) => self.remove_panicked(id, uri, &*panic),
            }
        }
    }

    fn remove_panicked(&self, id: CallbackId, uri: &str, panic: &(dyn std::any::Any + Send)) {
        self.remove(id);
        tracing::error!(
            uri,
            callback = id.get(),
            panic = %panic_message(panic),
            "change callback panicked and was removed"
        );
    }
}

impl<C: crate::Component> Publisher<C> {
    /// Sends `change` to the subscribers and keeps an update in the
    /// history (weighed by its JSON text, made here if nobody asked for it
    /// yet, outside the lock). Never waits.
    pub(crate) fn broadcast(&self, change: &Change<C>) {
        if !self.watched.load(Ordering::Acquire) {
            return;
        }
        let weight = match change {
            Change::Updated { curr, .. } => curr.json().map_or(0, |json| json.len()),
            _ => 0,
        };
        let mut guard = self.changes.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(watchers) = guard.as_mut() {
            if let Change::Updated { curr, .. } = change {
                watchers.remember(curr, weight);
            }
            if watchers.tx.receiver_count() > 0 {
                let _ = watchers.tx.send(change.clone());
            }
            if !watchers.sinks.is_empty() {
                match JsonChange::of(change) {
                    Ok(json) => watchers.sinks.retain(|sink| match sink.upgrade() {
                        Some(queue) => {
                            queue.push(json.clone());
                            true
                        }
                        None => false,
                    }),
                    Err(e) => {
                        tracing::warn!(error = %e, "change does not serialise; not sent to watchers")
                    }
                }
            }
        }
    }
}

impl<C> Watchers<C> {
    /// Keeps `snapshot` as the newest update (a re-publication of the same
    /// version, as `NotifyPeers` sends, is not a new one).
    /// `weight` is the length of its JSON text.
    fn remember(&mut self, snapshot: &Arc<Snapshot<C>>, weight: usize) {
        if self.history.back().is_some_and(|(last, _)| last.version >= snapshot.version) {
            return;
        }
        if self.history.back().is_some_and(|(last, _)| last.version + 1 != snapshot.version) {
            // A gap (cannot happen while versions count commits): start over
            // rather than replay a history with a hole in it.
            self.history.clear();
            self.history_bytes = 0;
        }
        self.history.push_back((Arc::clone(snapshot), weight));
        self.history_bytes += weight;
        // The newest is the current snapshot: only the ones before it count.
        while self.history.len() > 1
            && (self.history.len() > HISTORY || self.history_bytes - weight > HISTORY_BYTES)
        {
            if let Some((_, dropped)) = self.history.pop_front() {
                self.history_bytes -= dropped;
            }
        }
    }

    /// The updates after version `since`, if the history reaches back to it.
    fn replay_after(&self, since: u64) -> Resume<C> {
        let (Some((first, _)), Some((last, _))) = (self.history.front(), self.history.back())
        else {
            return Resume::Snapshot;
        };
        if since + 1 < first.version || since > last.version {
            return Resume::Snapshot;
        }
        Resume::Replay(
            self.history
                .iter()
                .filter(|(s, _)| s.version > since)
                .map(|(s, _)| Arc::clone(s))
                .collect(),
        )
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ETag;

    fn watchers() -> Watchers<()> {
        Watchers {
            tx: broadcast::channel(1).0,
            history: VecDeque::new(),
            history_bytes: 0,
            sinks: Vec::new(),
        }
    }

    fn snapshot(version: u64) -> Arc<Snapshot<()>> {
        Arc::new(Snapshot::new((), ETag::of(b"x", None), version))
    }

    fn versions(w: &Watchers<()>) -> Vec<u64> {
        w.history.iter().map(|(s, _)| s.version).collect()
    }

    #[test]
    fn small_updates_are_kept_by_count() {
        let mut w = watchers();
        for v in 1..=100 {
            w.remember(&snapshot(v), 100);
        }
        assert_eq!(versions(&w), (37..=100).collect::<Vec<_>>());
        assert_eq!(w.history_bytes, 64 * 100);
    }

    #[test]
    fn big_updates_are_kept_within_the_byte_budget_before_the_newest() {
        let mut w = watchers();
        for v in 1..=10 {
            w.remember(&snapshot(v), 400 * 1024);
        }
        // 2 × 400 KiB fit in 1 MiB, 3 do not; the newest is free.
        assert_eq!(versions(&w), [8, 9, 10]);
        assert!(matches!(w.replay_after(7), Resume::Replay(r) if r.len() == 3));
        assert!(matches!(w.replay_after(6), Resume::Snapshot));

        // Bigger than the whole budget: only the newest, the current one.
        for v in 11..=13 {
            w.remember(&snapshot(v), 3 * 1024 * 1024);
        }
        assert_eq!(versions(&w), [13]);
        assert_eq!(w.history_bytes, 3 * 1024 * 1024);
        assert!(matches!(w.replay_after(12), Resume::Replay(r) if r.len() == 1));
        assert!(matches!(w.replay_after(11), Resume::Snapshot));
    }
}
