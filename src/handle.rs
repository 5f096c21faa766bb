//! [`Handle`]: how everything outside a component talks to it.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;

use crate::cell::{
    AskOp, BatchOp, ControlEnvelope, Deadline, Envelope, Operation, Refused, ReplaceOp, Resume,
    Shared, Signal, OWNER,
};
use crate::changes::Replay;
use crate::{
    CallbackId, Change, Component, Control, ETag, Error, Handler, Position, Result, Snapshot,
    Stage, State, Subscription,
};

/// The default time [`Handle::ask`] waits for a reply.
pub const DEFAULT_ASK_TIMEOUT: Duration = Duration::from_secs(30);

/// A cheap, clonable reference to a running component.
///
/// A handle stays valid across restarts of its component. Once the component
/// is torn down every call answers [`Error::Stopping`].
///
/// ```
/// use kinesis::{Component, Container, Context, Handler, Result};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Clone, Default, Serialize, Deserialize)]
/// struct Counter { count: u64 }
/// impl Component for Counter {}
///
/// struct Add(u64);
/// impl Handler<Add> for Counter {
///     type Reply = u64;
///     async fn handle(&mut self, Add(n): Add, _: &mut Context<Self>) -> Result<u64> {
///         self.count += n;
///         Ok(self.count)
///     }
/// }
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let root = Container::root().await?;
/// let counter = root.add("counter", Counter::default()).await?;
/// assert_eq!(counter.ask(Add(2)).await?, 2);
/// assert_eq!(counter.snapshot().state.count, 2);
/// assert_eq!(counter.snapshot().version, 2);
/// root.shutdown().await?;
/// # Ok::<(), kinesis::Error>(()) }).unwrap();
/// ```
pub struct Handle<C: Component> {
    pub(crate) shared: Arc<Shared<C>>,
    /// `None`: wait as long as it takes.
    timeout: Option<Duration>,
}

impl<C: Component> Clone for Handle<C> {
    fn clone(&self) -> Self {
        Handle { shared: Arc::clone(&self.shared), timeout: self.timeout }
    }
}

impl<C: Component> std::fmt::Debug for Handle<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handle")
            .field("uri", &self.shared.uri)
            .field("stage", &self.stage())
            .finish()
    }
}

impl<C: Component> Handle<C> {
    pub(crate) fn from_shared(shared: Arc<Shared<C>>) -> Self {
        Handle { shared, timeout: Some(DEFAULT_ASK_TIMEOUT) }
    }

    /// The same handle with another timeout for `ask`, `batch` and `replace`.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// The same handle without a timeout: calls wait until the component
    /// answers or stops. Use it where something else bounds the wait, such as
    /// an HTTP request timeout. (A timeout costs no timer per call either
    /// way: the deadline travels with the message.)
    pub fn without_timeout(mut self) -> Self {
        self.timeout = None;
        self
    }

    /// The component's name within its container.
    pub fn name(&self) -> &str {
        self.shared.name()
    }

    /// The component's path from the root.
    pub fn uri(&self) -> &str {
        &self.shared.uri
    }

    /// The current lifecycle stage.
    pub fn stage(&self) -> Stage {
        self.shared.stage()
    }

    /// The current coarse state.
    pub fn state(&self) -> State {
        self.stage().state()
    }

    /// The latest published snapshot. Never waits: it does not queue behind
    /// messages.
    pub fn snapshot(&self) -> Arc<Snapshot<C>> {
        self.shared.snapshot.load()
    }

    /// The ETag of the latest snapshot.
    pub fn etag(&self) -> ETag {
        self.shared.snapshot.etag()
    }

    /// Whether two handles point at the same component.
    pub fn same_component(&self, other: &Handle<C>) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
    }

    fn stopping(&self) -> Error {
        Error::Stopping(self.shared.uri.clone())
    }

    /// The deadline of a call made now.
    fn deadline(&self) -> Option<Deadline> {
        self.timeout.map(Deadline::after)
    }

    /// Queues `op`; waits for room (at most the handle's timeout) only when
    /// the mailbox is full.
    pub(crate) async fn send_op(&self, op: Arc<dyn Operation<C>>) -> Result<()> {
        let env = match self.shared.mailbox.try_push(Envelope::new(op)) {
            Ok(wake) => {
                wake.run();
                return Ok(());
            }
            Err(Refused::Closed) => return Err(self.stopping()),
            Err(Refused::Full(env)) => env,
        };
        let push = self.shared.mailbox.push(env);
        let pushed = match self.timeout {
            None => push.await,
            Some(t) => match tokio::time::timeout(t, push).await {
                Ok(pushed) => pushed,
                Err(_) => return Err(Error::Timeout(t)),
            },
        };
        let wake = pushed.map_err(|_| self.stopping())?;
        wake.run();
        Ok(())
    }

    /// Queues `op` if the mailbox has room; [`Error::Overloaded`] if not.
    pub(crate) fn try_send_op(&self, op: Arc<dyn Operation<C>>) -> Result<()> {
        match self.shared.mailbox.try_push(Envelope::new(op)) {
            Ok(wake) => {
                wake.run();
                Ok(())
            }
            Err(Refused::Closed) => Err(self.stopping()),
            Err(Refused::Full(_)) => Err(Error::Overloaded(self.shared.uri.to_string())),
        }
    }

    /// Fills in the component's URI of a `Stopping` answered by a mailbox
    /// whose task ended abnormally.
    pub(crate) fn named<T>(&self, reply: Result<T>) -> Result<T> {
        match reply {
            Err(Error::Stopping(uri)) if uri.is_empty() => Err(self.stopping()),
            other => other,
        }
    }

    /// Sends `msg` and waits for the reply, at most the handle's timeout
    /// (30 s unless set with [`with_timeout`](Handle::with_timeout) or
    /// removed with [`without_timeout`](Handle::without_timeout)).
    ///
    /// The deadline travels with the message; no timer is armed per ask. A
    /// message still queued at its deadline is answered [`Error::Timeout`]
    /// and never handled; one being handled finishes, and its reply is
    /// dropped. A handler that blocks its thread without awaiting delays the
    /// timeout until it returns.
    pub async fn ask<M: Send + 'static>(&self, msg: M) -> Result<C::Reply>
    where
        C: Handler<M>,
    {
        let op = Arc::new(AskOp::<M, C>::new(msg, self.deadline(), false));
        self.send_op(op.clone()).await?;
        self.named(op.reply().await)
    }

    /// Sends `msg` without waiting for it to be handled. Waits only while the
    /// mailbox is full. Errors of the handler are logged.
    pub async fn tell<M: Send + 'static>(&self, msg: M) -> Result<()>
    where
        C: Handler<M>,
    {
        self.send_op(Arc::new(AskOp::<M, C>::new(msg, None, true))).await
    }

    /// Handles `msgs` in order as one unit: if one fails, the state goes back
    /// to before the batch, nothing is persisted or published, and the error
    /// names the failing message.
    pub async fn batch<M: Send + 'static>(&self, msgs: Vec<M>) -> Result<Vec<C::Reply>>
    where
        C: Handler<M>,
    {
        let op = Arc::new(BatchOp::<M, C>::new(msgs, self.deadline()));
        self.send_op(op.clone()).await?;
        self.named(op.reply().await)
    }

    /// Replaces the whole state if `if_match` is still the current ETag;
    /// otherwise [`Error::Conflict`] with the current one.
    pub async fn replace(&self, state: C, if_match: &ETag) -> Result<Arc<Snapshot<C>>> {
        let op = Arc::new(ReplaceOp::new(state, *if_match, self.deadline()));
        self.send_op(op.clone()).await?;
        self.named(op.reply().await)
    }

    /// Sends a control message and waits until it was carried out.
    ///
    /// Control messages take a lane of their own, served before queued
    /// messages: they wait only for the message being handled (and the
    /// commit of its group). `Shutdown` returns once the component is torn
    /// down.
    pub async fn control(&self, control: Control) -> Result<()> {
        if matches!(control, Control::Shutdown) {
            // A component without a task (idle since it started) stops
            // here, in the caller's task: no hand-off and back.
            if let Some(parked) = self.shared.take_parked() {
                Box::pin(parked.stop_here()).await;
                return Ok(());
            }
        }
        let (tx, rx) = oneshot::channel();
        let envelope = ControlEnvelope { signal: Signal::Control(control), reply: Some(tx) };
        match self.shared.mailbox.push_control(envelope) {
            Ok(wake) => wake.run(),
            Err(_) => return Err(self.stopping()),
        }
        rx.await.unwrap_or_else(|_| Err(self.stopping()))
    }

    /// How many messages and control messages wait in the mailbox.
    pub fn queued(&self) -> usize {
        self.shared.mailbox.len()
    }

    /// Stops the component for good: the message being handled finishes,
    /// messages still queued are answered [`Error::Stopping`]. Waits until
    /// it is torn down. Stopping a stopped component is Ok.
    pub async fn shutdown(&self) -> Result<()> {
        match self.control(Control::Shutdown).await {
            Err(Error::Stopping(_)) => {
                self.wait_for_stage(Stage::TornDown).await;
                Ok(())
            }
            other => other,
        }
    }

    /// Restarts the component (`stop`, then `start`), keeping its state.
    pub async fn restart(&self) -> Result<()> {
        self.control(Control::Restart).await
    }

    /// Waits until the component reaches `stage` (or has passed it on its way
    /// to `TornDown`).
    pub fn wait_for_stage(&self, stage: Stage) -> impl Future<Output = ()> + Send + 'static {
        Arc::clone(&self.shared).wait_for_stage(stage)
    }

    /// Subscribes to the changes from now on. See [`crate::changes`] for the
    /// lag policy. A subscription to a torn-down component ends at once.
    pub fn subscribe(&self) -> Subscription<C> {
        match self.shared.subscribe() {
            Some(rx) => Subscription::new(rx),
            None => {
                let (tx, rx) = tokio::sync::broadcast::channel(1);
                drop(tx);
                Subscription::new(rx)
            }
        }
    }

    /// Subscribes to the changes after version `since`: the updates already
    /// made after it (kept in a bounded history, see [`crate::changes`]) and
    /// a subscription that continues right after them, so together they
    /// hold every update after `since` exactly once, in order.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # use kinesis::{Component, Container, Context, Handler, Result};
    /// # #[derive(Clone, Default, serde::Serialize, serde::Deserialize)]
    /// # struct Counter { count: u64 }
    /// # impl Component for Counter {}
    /// # struct Add;
    /// # impl Handler<Add> for Counter {
    /// #     type Reply = ();
    /// #     async fn handle(&mut self, _: Add, _: &mut Context<Self>) -> Result<()> {
    /// #         self.count += 1;
    /// #         Ok(())
    /// #     }
    /// # }
    /// use kinesis::changes::Replay;
    /// let root = Container::root().await.unwrap();
    /// let counter = root.add("counter", Counter::default()).await.unwrap();
    /// drop(counter.subscribe()); // a watcher came and went: history is kept from now on
    /// counter.ask(Add).await.unwrap(); // version 2
    /// counter.ask(Add).await.unwrap(); // version 3
    /// let (replay, _live) = counter.resume(1);
    /// let Replay::Updates(missed) = replay else { panic!("history reaches back to 1") };
    /// assert_eq!(missed.iter().map(|s| s.version).collect::<Vec<_>>(), [2, 3]);
    /// # root.shutdown().await.unwrap();
    /// # });
    /// ```
    pub fn resume(&self, since: u64) -> (Replay<C>, Subscription<C>) {
        match self.shared.resume(since) {
            Some((rx, Resume::Replay(updates))) => {
                (Replay::Updates(updates), Subscription::new(rx))
            }
            Some((rx, Resume::Snapshot)) => (Replay::TooOld, Subscription::new(rx)),
            None => (Replay::TooOld, self.subscribe()),
        }
    }

    /// Registers a callback run inside the mailbox after every change,
    /// before the next message; see [`crate::changes`].
    ///
    /// Registered from inside a component (its hooks, handlers or spawned
    /// tasks), the callback belongs to that component's current run: it is
    /// removed when that component stops or restarts.
    pub fn on_change<F, Fut>(&self, position: Position, f: F) -> CallbackId
    where
        F: Fn(Change<C>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let id = self.shared.publisher.add(position, f);
        let target = Arc::downgrade(&self.shared);
        let _ = OWNER.try_with(|owner| {
            owner.adopt(Box::new(move || {
                if let Some(target) = target.upgrade() {
                    target.publisher.remove(id);
                }
            }));
        });
        id
    }

    /// Removes a callback; `false` if there was none with this id.
    pub fn remove_callback(&self, id: CallbackId) -> bool {
        self.shared.publisher.remove(id)
    }
}
