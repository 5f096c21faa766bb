//! The watchdog: ask deadlines without a timer per ask.
//!
//! A caller's deadline travels in its envelope; the caller itself arms no
//! timer. Most handlers finish on their first poll, and then nothing else
//! happens. Only when the task has to wait (a handler that awaits, a store
//! write, a slow callback, a hook, a restart backoff) does the watchdog arm
//! one timer, for the earliest deadline among the operation running, the
//! group waiting for its commit and the queued messages. When it fires,
//! every overdue operation is answered with [`Error::Timeout`]: one still
//! queued is then skipped, one running finishes and its answer is dropped.
//! The mailbox keeps the earliest deadline of its queued messages up to
//! date, so messages that arrive while the task waits count too.
//!
//! [`Error::Timeout`]: crate::Error::Timeout

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::time::Instant;

use super::mailbox::Mailbox;
use super::ops::{expire_if_due, Envelope, Operation};
use crate::Component;

/// What the watchdog keeps an eye on while the task waits.
pub(crate) struct Watched<'a, C: Component> {
    pub(crate) mailbox: &'a Mailbox<C>,
    pub(crate) inbox: &'a VecDeque<Envelope<C>>,
    pub(crate) pending: &'a [Envelope<C>],
    pub(crate) running: Option<&'a dyn Operation<C>>,
}

impl<C: Component> Watched<'_, C> {
    fn ops(&self) -> impl Iterator<Item = &dyn Operation<C>> {
        self.running
            .into_iter()
            .chain(self.pending.iter().map(Envelope::op))
            .chain(self.inbox.iter().map(Envelope::op))
    }

    fn earliest(&self) -> Option<Instant> {
        let local = self.ops().filter(|op| !op.answered()).filter_map(|op| op.deadline());
        let local = local.map(|d| d.at).min();
        match (local, self.mailbox.earliest_deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn expire(&self, now: Instant) {
        for op in self.ops() {
            expire_if_due(op, now);
        }
        self.mailbox.expire(now);
    }
}

/// Runs `fut` to completion, answering overdue operations meanwhile. The
/// first poll happens in place; only a future that has to wait moves into
/// the (boxed) watching loop, so the common case adds nothing to the task.
pub(crate) fn guard<'a, F, C>(fut: F, watched: Watched<'a, C>) -> Guard<'a, F, C>
where
    F: Future + Unpin + Send + 'a,
    C: Component,
{
    Guard::First(Some((fut, watched)))
}

/// The future [`guard`] returns.
pub(crate) enum Guard<'a, F: Future, C: Component> {
    First(Option<(F, Watched<'a, C>)>),
    Watching(Pin<Box<dyn Future<Output = F::Output> + Send + 'a>>),
}

impl<'a, F, C> Future for Guard<'a, F, C>
where
    F: Future + Unpin + Send + 'a,
    C: Component,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.get_mut();
        if let Guard::First(first) = this {
            let Some((mut fut, watched)) = first.take() else {
                unreachable!("a guard is not polled after it moved to watching");
            };
            if let Poll::Ready(out) = Pin::new(&mut fut).poll(cx) {
                return Poll::Ready(out);
            }
            *this = Guard::Watching(Box::pin(watch(fut, watched)));
        }
        match this {
            Guard::Watching(slow) => slow.as_mut().poll(cx),
            Guard::First(_) => unreachable!("moved to watching above"),
        }
    }
}

async fn watch<F: Future + Unpin, C: Component>(mut fut: F, watched: Watched<'_, C>) -> F::Output {
    let mut next = watched.earliest();
    loop {
        let alarm = async {
            match next {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            out = &mut fut => return out,
            () = watched.mailbox.arrived() => {
                // Taken the wake-up meant for the loop: it looks at the lanes
                // anyway before it waits again.
                if let Some(at) = watched.mailbox.earliest_deadline() {
                    next = Some(next.map_or(at, |n| n.min(at)));
                }
            }
            () = alarm => {
                watched.expire(Instant::now());
                next = watched.earliest();
            }
        }
    }
}
