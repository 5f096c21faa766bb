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
//!   off and logged; the component goes on. Callbacks are removed by their
//!   [`CallbackId`].
//! * **Subscriptions** ([`Handle::subscribe`](crate::Handle::subscribe)) are
//!   bounded queues that never block the component: a subscriber that falls
//!   more than the queue's capacity behind gets [`Lagged`] with the number of
//!   changes it missed, then continues with the oldest change still queued.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

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

/// The subscriber fell behind and missed this many changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("subscriber lagged behind and missed {missed} changes")]
pub struct Lagged {
    /// How many changes were dropped for this subscriber.
    pub missed: u64,
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
            Err(broadcast::error::RecvError::Lagged(missed)) => Err(Lagged { missed }),
        }
    }

    /// The next change if one is queued, without waiting.
    pub fn try_recv(&mut self) -> Result<Option<Change<C>>, Lagged> {
        match self.rx.try_recv() {
            Ok(c) => Ok(Some(c)),
            Err(broadcast::error::TryRecvError::Lagged(missed)) => Err(Lagged { missed }),
            Err(_) => Ok(None),
        }
    }
}

type CallbackFn<C> =
    Arc<dyn Fn(Change<C>) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// The callbacks of one component, in run order.
pub(crate) struct Callbacks<C> {
    list: std::sync::Mutex<Vec<(CallbackId, CallbackFn<C>)>>,
    next_id: AtomicU64,
    pub(crate) timeout: Duration,
    empty: std::sync::atomic::AtomicBool,
}

impl<C: Send + Sync + 'static> Callbacks<C> {
    pub(crate) fn new(timeout: Duration) -> Self {
        Callbacks {
            list: std::sync::Mutex::new(Vec::new()),
            next_id: AtomicU64::new(1),
            timeout,
            empty: std::sync::atomic::AtomicBool::new(true),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(CallbackId, CallbackFn<C>)>> {
        self.list.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn add<F, Fut>(&self, position: Position, f: F) -> CallbackId
    where
        F: Fn(Change<C>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let id = CallbackId(self.next_id.fetch_add(1, Ordering::Relaxed));
        let f: CallbackFn<C> = Arc::new(move |c| Box::pin(f(c)));
        let mut list = self.lock();
        match position {
            Position::Head => list.insert(0, (id, f)),
            Position::Tail => list.push((id, f)),
        }
        self.empty.store(false, Ordering::Release);
        id
    }

    pub(crate) fn remove(&self, id: CallbackId) -> bool {
        let mut list = self.lock();
        let before = list.len();
        list.retain(|(i, _)| *i != id);
        self.empty.store(list.is_empty(), Ordering::Release);
        list.len() != before
    }

    /// Runs every callback in order, each under the timeout.
    pub(crate) async fn run(&self, change: &Change<C>, uri: &str) {
        if self.empty.load(Ordering::Acquire) {
            return;
        }
        let list: Vec<_> = self.lock().iter().cloned().collect();
        for (id, f) in list {
            if tokio::time::timeout(self.timeout, f(change.clone())).await.is_err() {
                tracing::warn!(uri, callback = id.0, timeout = ?self.timeout, "change callback timed out and was cut off");
            }
        }
    }
}
