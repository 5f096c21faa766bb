//! [`Handle`]: how everything outside a component talks to it.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;

use crate::mailbox::{AskOp, BatchOp, Control, Envelope, ReplaceOp, Shared};
use crate::{
    CallbackId, Change, Component, ETag, Error, Handler, Position, Result, Snapshot, Stage, State,
    Subscription,
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
    /// `None`: wait as long as it takes (no timer on the hot path).
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
    /// answers or stops. Saves arming a timer per call (about a third of the
    /// cost of an `ask` round trip); use it where something else bounds the
    /// wait, such as an HTTP request timeout.
    pub fn without_timeout(mut self) -> Self {
        self.timeout = None;
        self
    }

    /// The component's name within its container.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The component's path from the root.
    pub fn uri(&self) -> &str {
        &self.shared.uri
    }

    /// The current lifecycle stage.
    pub fn stage(&self) -> Stage {
        *self.shared.stage.borrow()
    }

    /// The current coarse state.
    pub fn state(&self) -> State {
        self.stage().state()
    }

    /// The latest published snapshot. Never waits: it does not queue behind
    /// messages.
    pub fn snapshot(&self) -> Arc<Snapshot<C>> {
        self.shared.snapshot.load_full()
    }

    /// The ETag of the latest snapshot.
    pub fn etag(&self) -> ETag {
        self.shared.snapshot.load().etag
    }

    /// Whether two handles point at the same component.
    pub fn same_component(&self, other: &Handle<C>) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
    }

    async fn send(&self, env: Envelope<C>) -> Result<()> {
        // Fast path without a timer: the mailbox has room.
        let env = match self.shared.tx.try_send(env) {
            Ok(()) => return Ok(()),
            Err(tokio::sync::mpsc::error::TrySendError::Closed(_)) => {
                return Err(Error::Stopping(self.shared.uri.clone()))
            }
            Err(tokio::sync::mpsc::error::TrySendError::Full(env)) => env,
        };
        let closed = || Error::Stopping(self.shared.uri.clone());
        match self.timeout {
            None => self.shared.tx.send(env).await.map_err(|_| closed()),
            Some(t) => match self.shared.tx.send_timeout(env, t).await {
                Ok(()) => Ok(()),
                Err(tokio::sync::mpsc::error::SendTimeoutError::Closed(_)) => Err(closed()),
                Err(tokio::sync::mpsc::error::SendTimeoutError::Timeout(_)) => {
                    Err(Error::Timeout(t))
                }
            },
        }
    }

    async fn reply<T>(&self, rx: oneshot::Receiver<Result<T>>) -> Result<T> {
        let closed = || Error::Stopping(self.shared.uri.clone());
        match self.timeout {
            None => rx.await.unwrap_or_else(|_| Err(closed())),
            Some(t) => match tokio::time::timeout(t, rx).await {
                Ok(Ok(r)) => r,
                Ok(Err(_)) => Err(closed()),
                Err(_) => Err(Error::Timeout(t)),
            },
        }
    }

    /// Sends `msg` and waits for the reply, at most the handle's timeout
    /// (30 s unless set with [`with_timeout`](Handle::with_timeout) or
    /// removed with [`without_timeout`](Handle::without_timeout)). A message
    /// that timed out may still be handled later.
    pub async fn ask<M: Send + 'static>(&self, msg: M) -> Result<C::Reply>
    where
        C: Handler<M>,
    {
        let (tx, rx) = oneshot::channel();
        self.send(Envelope::Op(Box::new(AskOp::<M, C>::new(msg, Some(tx))))).await?;
        self.reply(rx).await
    }

    /// Sends `msg` without waiting for it to be handled. Waits only while the
    /// mailbox is full. Errors of the handler are logged.
    pub async fn tell<M: Send + 'static>(&self, msg: M) -> Result<()>
    where
        C: Handler<M>,
    {
        self.send(Envelope::Op(Box::new(AskOp::<M, C>::new(msg, None)))).await
    }

    /// Handles `msgs` in order as one unit: if one fails, the state goes back
    /// to before the batch, nothing is persisted or published, and the error
    /// names the failing message.
    pub async fn batch<M: Send + 'static>(&self, msgs: Vec<M>) -> Result<Vec<C::Reply>>
    where
        C: Handler<M>,
    {
        let (tx, rx) = oneshot::channel();
        self.send(Envelope::Op(Box::new(BatchOp::<M, C>::new(msgs, tx)))).await?;
        self.reply(rx).await
    }

    /// Replaces the whole state if `if_match` is still the current ETag;
    /// otherwise [`Error::Conflict`] with the current one.
    pub async fn replace(&self, state: C, if_match: &ETag) -> Result<Arc<Snapshot<C>>> {
        let (tx, rx) = oneshot::channel();
        let op = ReplaceOp::new(state, Some(if_match.to_string()), tx);
        self.send(Envelope::Op(Box::new(op))).await?;
        self.reply(rx).await
    }

    /// Sends a control message and waits until it was carried out.
    /// `Shutdown` returns once the component is torn down.
    pub async fn control(&self, control: Control) -> Result<()> {
        let (tx, rx) = oneshot::channel();
        self.send(Envelope::Control(control, Some(tx))).await?;
        match rx.await {
            Ok(r) => r,
            Err(_) => Err(Error::Stopping(self.shared.uri.clone())),
        }
    }

    /// Stops the component for good after the messages queued before this
    /// call; waits until it is torn down. Stopping a stopped component is Ok.
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
        let mut rx = self.shared.stage.subscribe();
        async move {
            let _ = rx.wait_for(|s| *s == stage || *s == Stage::TornDown).await;
        }
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

    /// Registers a callback run inside the mailbox after every change,
    /// before the next message; see [`crate::changes`].
    pub fn on_change<F, Fut>(&self, position: Position, f: F) -> CallbackId
    where
        F: Fn(Change<C>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.shared.callbacks.add(position, f)
    }

    /// Removes a callback; `false` if there was none with this id.
    pub fn remove_callback(&self, id: CallbackId) -> bool {
        self.shared.callbacks.remove(id)
    }

    pub(crate) async fn send_op(&self, op: Box<dyn crate::mailbox::Operation<C>>) -> Result<()> {
        self.send(Envelope::Op(op)).await
    }

    pub(crate) async fn await_reply<T>(&self, rx: oneshot::Receiver<Result<T>>) -> Result<T> {
        self.reply(rx).await
    }
}
