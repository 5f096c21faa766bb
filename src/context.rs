//! [`Context`]: what a component's hooks and handlers get besides `&mut self`.

use std::future::Future;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::{Component, Container, Handle, Result};

/// The runtime's side of a component: its name and URI, a handle to itself,
/// its container, supervised tasks and a cancellation token for the current
/// run.
pub struct Context<C: Component> {
    pub(crate) handle: Handle<C>,
    pub(crate) container: Option<Container>,
    pub(crate) tasks: JoinSet<Result<()>>,
    pub(crate) run_token: CancellationToken,
    pub(crate) span: tracing::Span,
}

impl<C: Component> std::fmt::Debug for Context<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context").field("uri", &self.uri()).finish_non_exhaustive()
    }
}

impl<C: Component> Context<C> {
    pub(crate) fn new(handle: Handle<C>, container: Option<Container>) -> Self {
        let span = tracing::info_span!("component", uri = %handle.uri());
        Context {
            handle,
            container,
            tasks: JoinSet::new(),
            run_token: CancellationToken::new(),
            span,
        }
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

    /// The container this component lives in (`None` only for the root).
    pub fn container(&self) -> Option<&Container> {
        self.container.as_ref()
    }

    /// Spawns a supervised task. It is cancelled when the component stops or
    /// restarts. If it returns an error or panics the component fails and its
    /// restart policy applies; with [`Restart::Always`](crate::Restart::Always)
    /// a task that ends normally restarts the component too.
    pub fn spawn<F>(&mut self, task: F)
    where
        F: Future<Output = Result<()>> + Send + 'static,
    {
        let token = self.run_token.clone();
        self.tasks.spawn(
            async move {
                tokio::select! {
                    r = task => r,
                    () = token.cancelled() => Ok(()),
                }
            }
            .instrument(self.span.clone()),
        );
    }

    /// Cancelled when the current run of the component ends (stop or
    /// restart). Long-running loops select on it to exit promptly.
    pub fn cancellation_token(&self) -> CancellationToken {
        self.run_token.clone()
    }

    /// The tracing span carrying the component's URI.
    pub fn span(&self) -> &tracing::Span {
        &self.span
    }

    /// Ends the current run: cancels the token and aborts every task.
    pub(crate) fn end_run(&mut self) {
        self.run_token.cancel();
        self.tasks.abort_all();
        self.tasks.detach_all();
        self.run_token = CancellationToken::new();
    }
}
