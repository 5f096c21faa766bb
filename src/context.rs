//! [`Context`]: what a component's hooks and handlers get besides `&mut self`.

use std::future::Future;
use std::sync::Arc;

use tokio::task::{JoinError, JoinSet};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::cell::{Parent, OWNER};
use crate::{Component, Handle, Result};

/// The runtime's side of a component: its name and URI, a handle to itself,
/// its container ([`Context::container`]), supervised tasks and a
/// cancellation token for the current run.
pub struct Context<C: Component> {
    pub(crate) handle: Handle<C>,
    pub(crate) parent: Option<Arc<dyn Parent>>,
    /// Created on the first `spawn`: most components never spawn.
    tasks: Option<JoinSet<Result<()>>>,
    /// Created when first asked for.
    run_token: Option<CancellationToken>,
    pub(crate) span: tracing::Span,
    /// The remote caller of the operation being handled.
    pub(crate) caller: Option<Arc<crate::Caller>>,
}

impl<C: Component> std::fmt::Debug for Context<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context").field("uri", &self.uri()).finish_non_exhaustive()
    }
}

impl<C: Component> Context<C> {
    pub(crate) fn new(handle: Handle<C>, parent: Option<Arc<dyn Parent>>) -> Self {
        let span = tracing::info_span!("component", uri = %handle.uri());
        Context { handle, parent, tasks: None, run_token: None, span, caller: None }
    }

    /// The component's name within its container.
    pub fn name(&self) -> &str {
        self.handle.name()
    }

    /// The component's path from the root, such as `/root/app/counter`.
    pub fn uri(&self) -> &str {
        self.handle.uri()
    }

    /// A handle to this component, for tasks that talk back through its
    /// mailbox. Asking yourself from inside a handler deadlocks until the ask
    /// times out: use `tell` there.
    pub fn handle(&self) -> &Handle<C> {
        &self.handle
    }

    /// Spawns a supervised task. It is cancelled when the component stops or
    /// restarts. If it returns an error or panics the component fails and its
    /// restart policy applies; with [`Restart::Always`](crate::Restart::Always)
    /// a task that ends normally restarts the component too.
    pub fn spawn<F>(&mut self, task: F)
    where
        F: Future<Output = Result<()>> + Send + 'static,
    {
        let token = self.cancellation_token();
        let owner = OWNER.try_with(Arc::clone).ok();
        let task = async move {
            tokio::select! {
                r = task => r,
                () = token.cancelled() => Ok(()),
            }
        };
        let tasks = self.tasks.get_or_insert_with(JoinSet::new);
        match owner {
            // Callbacks the task registers belong to the component's run.
            Some(owner) => tasks.spawn(OWNER.scope(owner, task).instrument(self.span.clone())),
            None => tasks.spawn(task.instrument(self.span.clone())),
        };
    }

    /// Cancelled when the current run of the component ends (stop or
    /// restart). Long-running loops select on it to exit promptly.
    pub fn cancellation_token(&mut self) -> CancellationToken {
        self.run_token.get_or_insert_with(CancellationToken::new).clone()
    }

    /// The [task manager](crate::tasks), spawning on behalf of this
    /// component: its tasks run in the bounded pool of workers, report
    /// progress, can be cancelled, and are cancelled when this run of the
    /// component ends. A failing or panicking task is reported failed; the
    /// component carries on.
    pub fn tasks(&mut self) -> crate::tasks::ComponentTasks {
        let run = self.cancellation_token();
        crate::tasks::ComponentTasks::new(self.uri().to_owned(), run)
    }

    /// Who sent the message being handled, when it came through a remote
    /// surface that authenticates (a call by name, batch, replace or patch
    /// over HTTP); `None` for typed calls from in-process code and in hooks.
    pub fn caller(&self) -> Option<&crate::Caller> {
        self.caller.as_deref()
    }

    /// The fencing token of the lease this component runs under, when it is
    /// a [singleton](crate::App::singleton); `None` otherwise. It grows with
    /// every takeover: pass it to external systems that accept fenced
    /// writes. The component's own persisted fields are fenced by the store
    /// already (see [`lease`](crate::lease)).
    pub fn fencing_token(&self) -> Option<crate::lease::FencingToken> {
        self.handle.shared.fencing_token()
    }

    /// The tracing span carrying the component's URI.
    pub fn span(&self) -> &tracing::Span {
        &self.span
    }

    /// Ends the current run: cancels the token and aborts every task.
    pub(crate) fn end_run(&mut self) {
        if let Some(token) = self.run_token.take() {
            token.cancel();
        }
        if let Some(mut tasks) = self.tasks.take() {
            tasks.abort_all();
            tasks.detach_all();
        }
    }

    /// Whether tasks were spawned in this run.
    pub(crate) fn has_tasks(&self) -> bool {
        self.tasks.is_some()
    }

    /// The end of the next spawned task; never resolves without tasks.
    pub(crate) async fn join_next_task(&mut self) -> std::result::Result<Result<()>, JoinError> {
        match self.tasks.as_mut() {
            Some(tasks) => match tasks.join_next().await {
                Some(joined) => joined,
                None => std::future::pending().await,
            },
            None => std::future::pending().await,
        }
    }
}
