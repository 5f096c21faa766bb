//! The reply slot: where the mailbox puts an operation's answer and where
//! the caller waits for it.
//!
//! A slot lives in the same allocation as the operation it belongs to (see
//! [`ops`](super::ops)), so an ask costs one allocation for its message,
//! its reply and its deadline together. The first answer wins: a timeout
//! from the watchdog, a `Stopping` from a closing mailbox or the handler's
//! result, whichever comes first; later ones are dropped.

use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Poll, Waker};

use std::time::Duration;

use tokio::time::Instant;

use crate::{Error, Result};

/// When a caller stops waiting for its answer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Deadline {
    /// The moment.
    pub(crate) at: Instant,
    /// The timeout it came from, for the error.
    pub(crate) after: Duration,
}

impl Deadline {
    /// `after` from now.
    pub(crate) fn after(after: Duration) -> Self {
        Deadline { at: Instant::now() + after, after }
    }

    /// The error an operation past this deadline is answered with.
    pub(crate) fn error(&self) -> Error {
        Error::Timeout(self.after)
    }
}

/// Where an operation is: its input waiting, its result kept until the
/// commit, or its answer given.
enum Phase<I, R> {
    Queued(I),
    Running,
    /// The handler's own result, kept until the commit decides.
    Ran(Result<R>),
    Answered(Result<R>),
    Collected,
}

/// The input, the result and the waiting caller of one operation.
///
/// It also carries the tracing span that was current when the operation
/// was made (an HTTP request's span, with its trace id), so the handler can
/// run in a child of it.
pub(crate) struct Slot<I, R> {
    inner: Mutex<(Phase<I, R>, Option<Waker>)>,
    deadline: Option<Deadline>,
    /// The sender's span, if it was in one.
    span: Option<tracing::Span>,
}

impl<I, R> Slot<I, R> {
    pub(crate) fn new(input: I, deadline: Option<Deadline>) -> Self {
        // No subscriber, no span: skip the look-up (a third of it per ask).
        let span = if tracing::dispatcher::has_been_set() {
            let current = tracing::Span::current();
            (!current.is_none()).then_some(current)
        } else {
            None
        };
        Slot { inner: Mutex::new((Phase::Queued(input), None)), deadline, span }
    }

    /// The span that was current when the operation was made.
    pub(crate) fn span(&self) -> Option<&tracing::Span> {
        self.span.as_ref()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (Phase<I, R>, Option<Waker>)> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// When the caller stops waiting, if it set a timeout.
    pub(crate) fn deadline(&self) -> Option<Deadline> {
        self.deadline
    }

    /// Takes the input to run; `None` if the operation was answered already
    /// (it timed out while queued) and must not run.
    pub(crate) fn take_input(&self) -> Option<I> {
        let mut guard = self.lock();
        match std::mem::replace(&mut guard.0, Phase::Running) {
            Phase::Queued(input) => Some(input),
            other => {
                guard.0 = other;
                None
            }
        }
    }

    /// Keeps the handler's result until the commit decides.
    pub(crate) fn set_ran(&self, result: Result<R>) {
        let mut guard = self.lock();
        if matches!(guard.0, Phase::Running) {
            guard.0 = Phase::Ran(result);
        }
    }

    /// Answers with `f(result kept by set_ran)`, unless answered already.
    pub(crate) fn answer_with(&self, f: impl FnOnce(Option<Result<R>>) -> Result<R>) {
        let waker = {
            let mut guard = self.lock();
            let ran = match std::mem::replace(&mut guard.0, Phase::Collected) {
                Phase::Ran(r) => Some(r),
                Phase::Queued(_) | Phase::Running => None,
                done @ (Phase::Answered(_) | Phase::Collected) => {
                    guard.0 = done;
                    return;
                }
            };
            guard.0 = Phase::Answered(f(ran));
            guard.1.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// Answers `result`, unless answered already.
    pub(crate) fn answer(&self, result: Result<R>) {
        self.answer_with(|_| result);
    }

    /// Whether an answer was given (the caller may not have collected it).
    pub(crate) fn answered(&self) -> bool {
        matches!(self.lock().0, Phase::Answered(_) | Phase::Collected)
    }

    /// Waits for the answer.
    pub(crate) fn wait(&self) -> impl Future<Output = Result<R>> + '_ {
        std::future::poll_fn(move |cx| {
            let mut guard = self.lock();
            match std::mem::replace(&mut guard.0, Phase::Collected) {
                Phase::Answered(r) => Poll::Ready(r),
                other => {
                    guard.0 = other;
                    match &mut guard.1 {
                        Some(w) if w.will_wake(cx.waker()) => {}
                        slot => *slot = Some(cx.waker().clone()),
                    }
                    Poll::Pending
                }
            }
        })
    }
}

/// A boxed future, as the mailbox runs it.
pub(crate) type Run<'a> = Pin<Box<dyn Future<Output = Result<()>> + Send + 'a>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_first_answer_wins() {
        let slot: Slot<u8, u8> = Slot::new(1, None);
        assert_eq!(slot.take_input(), Some(1));
        slot.set_ran(Ok(2));
        slot.answer(Err(Error::Timeout(std::time::Duration::from_secs(1))));
        slot.answer_with(|ran| ran.unwrap());
        assert!(matches!(slot.wait().await, Err(Error::Timeout(_))));
    }

    #[tokio::test]
    async fn an_operation_answered_while_queued_does_not_run() {
        let slot: Slot<u8, u8> = Slot::new(1, None);
        slot.answer(Err(Error::Stopping("/x".into())));
        assert_eq!(slot.take_input(), None);
        assert!(slot.answered());
    }
}
