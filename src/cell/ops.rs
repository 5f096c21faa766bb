//! The operations a mailbox runs, each with its reply slot in one
//! allocation.

use std::sync::Arc;

use futures::future::BoxFuture;
use serde_json::Value;

use super::slot::{Deadline, Run, Slot};
use crate::json::{from_json_known, unredact};
use crate::methods::{BatchCall, MethodTable};
use crate::metrics::OpKind;
use crate::{Caller, Component, Context, ETag, Error, Handler, Precondition, Result, Snapshot};

/// A unit of work for a component's mailbox.
pub(crate) trait Operation<C: Component>: Send + Sync {
    /// Runs against the state. `Err` rolls the state back.
    fn run<'a>(
        &'a self,
        state: &'a mut C,
        ctx: &'a mut Context<C>,
        current: &'a Snapshot<C>,
    ) -> Run<'a>;

    /// Whether `run` may have changed the state.
    fn mutates(&self) -> bool {
        true
    }

    /// Whether `run` checks an `If-Match` ETag, and so must see the state
    /// as committed.
    fn conditional(&self) -> bool {
        false
    }

    /// Answers the caller: `outcome` is the result of run and commit together.
    fn finish(&self, outcome: Result<()>, snapshot: &Arc<Snapshot<C>>);

    /// The operation's reply slot.
    fn slot(&self) -> &dyn Answer;

    /// When the caller stops waiting.
    fn deadline(&self) -> Option<Deadline> {
        self.slot().deadline()
    }

    /// Answers `error` unless answered already; an operation that is still
    /// queued then never runs.
    fn fail(&self, error: &Error) {
        self.slot().fail(error);
    }

    /// Whether the caller was answered (it may not have collected it yet).
    fn answered(&self) -> bool {
        self.slot().answered()
    }

    /// What kind of operation this is, for metrics.
    fn kind(&self) -> OpKind;
}

/// Answers `op` with a timeout if its deadline is past `now`.
pub(crate) fn expire_if_due<C: Component>(op: &dyn Operation<C>, now: tokio::time::Instant) {
    if let Some(d) = op.deadline().filter(|d| d.at <= now) {
        op.fail(&d.error());
    }
}

/// What every reply slot can do, whatever its input and reply types.
pub(crate) trait Answer: Send + Sync {
    /// See [`Operation::deadline`].
    fn deadline(&self) -> Option<Deadline>;
    /// See [`Operation::fail`].
    fn fail(&self, error: &Error);
    /// See [`Operation::answered`].
    fn answered(&self) -> bool;
    /// The span that was current when the operation was made.
    fn span(&self) -> Option<&tracing::Span>;
}

impl<I: Send, R: Send> Answer for Slot<I, R> {
    fn deadline(&self) -> Option<Deadline> {
        Slot::deadline(self)
    }

    fn fail(&self, error: &Error) {
        self.answer_with(|_| Err(error.clone()));
    }

    fn answered(&self) -> bool {
        Slot::answered(self)
    }

    fn span(&self) -> Option<&tracing::Span> {
        Slot::span(self)
    }
}

/// A queued operation. Dropping it unanswered (the component's task ended)
/// answers `Stopping`, so no caller ever waits for a mailbox that is gone.
///
/// The operation in the envelope carries the sender's tracing span (an HTTP
/// request's `http.request` span, with its trace id, in its reply slot), so
/// the handler runs in a span that is its child wherever the message was
/// sent from.
pub(crate) struct Envelope<C: Component> {
    /// `None` once answered.
    op: Option<Arc<dyn Operation<C>>>,
}

impl<C: Component> Envelope<C> {
    pub(crate) fn new(op: Arc<dyn Operation<C>>) -> Self {
        Envelope { op: Some(op) }
    }

    pub(crate) fn op(&self) -> &dyn Operation<C> {
        match &self.op {
            Some(op) => &**op,
            None => unreachable!("an envelope is used only until it is answered"),
        }
    }

    /// Answers with `outcome` (see [`Operation::finish`]) and consumes the
    /// envelope.
    pub(crate) fn finish(mut self, outcome: Result<()>, snapshot: &Arc<Snapshot<C>>) {
        if let Some(op) = self.op.take() {
            op.finish(outcome, snapshot);
        }
    }
}

impl<C: Component> Drop for Envelope<C> {
    fn drop(&mut self) {
        // Normal paths answered through `finish` or failed the operation with
        // the component's URI; this is the last resort (the task ended).
        if let Some(op) = self.op.take() {
            op.fail(&Error::Stopping(String::new()));
        }
    }
}

/// The reply of an operation that ran a handler: its result when the commit
/// succeeded; the handler's own error when it failed; else the commit's error.
fn reply_of<T>(outcome: Result<()>, handled: Option<Result<T>>) -> Result<T> {
    match (outcome, handled) {
        (Ok(()), Some(r)) => r,
        (Err(_), Some(Err(handler_err))) => Err(handler_err),
        (Err(e), _) => Err(e),
        (Ok(()), None) => Err(Error::Invalid("the message was not handled".into())),
    }
}

/// A typed message (`ask` or `tell`).
pub(crate) struct AskOp<M, C: Handler<M>>
where
    M: Send + 'static,
{
    slot: Slot<M, C::Reply>,
    /// A `tell`: nobody waits, errors are logged.
    told: bool,
}

impl<M: Send + 'static, C: Handler<M>> AskOp<M, C> {
    pub(crate) fn new(msg: M, deadline: Option<Deadline>, told: bool) -> Self {
        AskOp { slot: Slot::new(msg, deadline), told }
    }

    pub(crate) async fn reply(&self) -> Result<C::Reply> {
        self.slot.wait().await
    }
}

impl<M: Send + 'static, C: Handler<M>> Operation<C> for AskOp<M, C> {
    fn run<'a>(&'a self, state: &'a mut C, ctx: &'a mut Context<C>, _: &'a Snapshot<C>) -> Run<'a> {
        Box::pin(async move {
            let Some(msg) = self.slot.take_input() else { return Ok(()) };
            // Typed calls carry no caller (one a panicking call by name left).
            ctx.caller = None;
            let r = state.handle(msg, ctx).await;
            let outcome = r.as_ref().map(|_| ()).map_err(Clone::clone);
            self.slot.set_ran(r);
            outcome
        })
    }

    fn mutates(&self) -> bool {
        C::MUTATES
    }

    fn slot(&self) -> &dyn Answer {
        &self.slot
    }

    fn kind(&self) -> OpKind {
        if self.told {
            OpKind::Tell
        } else {
            OpKind::Ask
        }
    }

    fn finish(&self, outcome: Result<()>, _: &Arc<Snapshot<C>>) {
        if self.told {
            if let Err(e) = &outcome {
                tracing::warn!(error = %e, "told message failed");
            }
        }
        self.slot.answer_with(|ran| reply_of(outcome, ran));
    }
}

/// Messages handled in order as one unit: all or nothing.
pub(crate) struct BatchOp<M, C: Handler<M>>
where
    M: Send + 'static,
{
    slot: Slot<Vec<M>, Vec<C::Reply>>,
}

impl<M: Send + 'static, C: Handler<M>> BatchOp<M, C> {
    pub(crate) fn new(msgs: Vec<M>, deadline: Option<Deadline>) -> Self {
        BatchOp { slot: Slot::new(msgs, deadline) }
    }

    pub(crate) async fn reply(&self) -> Result<Vec<C::Reply>> {
        self.slot.wait().await
    }
}

impl<M: Send + 'static, C: Handler<M>> Operation<C> for BatchOp<M, C> {
    fn run<'a>(&'a self, state: &'a mut C, ctx: &'a mut Context<C>, _: &'a Snapshot<C>) -> Run<'a> {
        Box::pin(async move {
            let Some(msgs) = self.slot.take_input() else { return Ok(()) };
            ctx.caller = None;
            let mut replies = Vec::with_capacity(msgs.len());
            for (index, msg) in msgs.into_iter().enumerate() {
                match state.handle(msg, ctx).await {
                    Ok(r) => replies.push(r),
                    Err(e) => {
                        let e = batch_error(index, e);
                        self.slot.set_ran(Err(e.clone()));
                        return Err(e);
                    }
                }
            }
            self.slot.set_ran(Ok(replies));
            Ok(())
        })
    }

    fn slot(&self) -> &dyn Answer {
        &self.slot
    }

    fn kind(&self) -> OpKind {
        OpKind::Batch
    }

    fn finish(&self, outcome: Result<()>, _: &Arc<Snapshot<C>>) {
        self.slot.answer_with(|ran| reply_of(outcome, ran));
    }
}

fn batch_error(index: usize, e: Error) -> Error {
    prefixed(format!("batch message {index} failed, batch rolled back: "), e)
}

/// `e` with `prefix` before its message, kind kept (kinds without a
/// message stay as they are).
fn prefixed(prefix: String, e: Error) -> Error {
    match e {
        Error::Handler(m) => Error::Handler(prefix + &m),
        Error::Invalid(m) => Error::Invalid(prefix + &m),
        Error::NotFound(m) => Error::NotFound(prefix + &m),
        Error::Panicked(m) => Error::Panicked(prefix + &m),
        Error::Store(m) => Error::Store(prefix + &m),
        Error::Crypto(m) => Error::Crypto(prefix + &m),
        other => other,
    }
}

/// Checks a precondition against the current ETag.
pub(crate) fn check_if_match<C>(if_match: &Precondition, current: &Snapshot<C>) -> Result<()> {
    if if_match.passes(&current.etag) {
        Ok(())
    } else {
        Err(Error::Conflict { current: current.etag })
    }
}

/// Replaces the whole state if the ETag is current.
pub(crate) struct ReplaceOp<C: Component> {
    slot: Slot<C, Arc<Snapshot<C>>>,
    if_match: ETag,
}

impl<C: Component> ReplaceOp<C> {
    pub(crate) fn new(new_state: C, if_match: ETag, deadline: Option<Deadline>) -> Self {
        ReplaceOp { slot: Slot::new(new_state, deadline), if_match }
    }

    pub(crate) async fn reply(&self) -> Result<Arc<Snapshot<C>>> {
        self.slot.wait().await
    }
}

impl<C: Component> Operation<C> for ReplaceOp<C> {
    fn conditional(&self) -> bool {
        true
    }

    fn run<'a>(
        &'a self,
        state: &'a mut C,
        _: &'a mut Context<C>,
        current: &'a Snapshot<C>,
    ) -> Run<'a> {
        Box::pin(async move {
            if current.etag != self.if_match {
                return Err(Error::Conflict { current: current.etag });
            }
            if let Some(new_state) = self.slot.take_input() {
                *state = new_state;
            }
            Ok(())
        })
    }

    fn slot(&self) -> &dyn Answer {
        &self.slot
    }

    fn kind(&self) -> OpKind {
        OpKind::Replace
    }

    fn finish(&self, outcome: Result<()>, snapshot: &Arc<Snapshot<C>>) {
        self.slot.answer(outcome.map(|()| Arc::clone(snapshot)));
    }
}

/// How a [`JsonWriteOp`] builds the new state.
pub(crate) enum JsonWrite {
    /// The whole new state.
    Replace(Value),
    /// An RFC 7396 merge patch applied to the current state.
    MergePatch(Value),
}

/// Replaces or patches the state from JSON; the result is validated by
/// deserialising it into `C`, and `"***"` keeps an encrypted field's value.
pub(crate) struct JsonWriteOp<C> {
    slot: Slot<JsonWrite, Arc<Snapshot<C>>>,
    if_match: Precondition,
}

impl<C: Component> JsonWriteOp<C> {
    pub(crate) fn new(write: JsonWrite, if_match: Precondition) -> Self {
        JsonWriteOp { slot: Slot::new(write, None), if_match }
    }

    pub(crate) async fn reply(&self) -> Result<Arc<Snapshot<C>>> {
        self.slot.wait().await
    }
}

impl<C: Component> Operation<C> for JsonWriteOp<C> {
    fn conditional(&self) -> bool {
        self.if_match.is_conditional()
    }

    fn run<'a>(
        &'a self,
        state: &'a mut C,
        _: &'a mut Context<C>,
        current: &'a Snapshot<C>,
    ) -> Run<'a> {
        Box::pin(async move {
            check_if_match(&self.if_match, current)?;
            let value = match self.slot.take_input() {
                Some(JsonWrite::Replace(mut value)) => {
                    unredact::<C>(&mut value, state)?;
                    value
                }
                Some(JsonWrite::MergePatch(mut patch)) => {
                    let mut value = serde_json::to_value(&*state)
                        .map_err(|e| Error::Invalid(format!("state does not serialise: {e}")))?;
                    unredact::<C>(&mut patch, state)?;
                    json_patch::merge(&mut value, &patch);
                    value
                }
                None => return Ok(()),
            };
            let mut rebuilt = from_json_known::<C>(value, state)?;
            rebuilt.restore_skipped(state);
            *state = rebuilt;
            Ok(())
        })
    }

    fn slot(&self) -> &dyn Answer {
        &self.slot
    }

    fn kind(&self) -> OpKind {
        OpKind::Write
    }

    fn finish(&self, outcome: Result<()>, snapshot: &Arc<Snapshot<C>>) {
        self.slot.answer(outcome.map(|()| Arc::clone(snapshot)));
    }
}

/// What is called by name: one mutating method (`(name, args)`) or a
/// batch of calls.
pub(crate) trait ByName: Send + 'static {
    /// What the caller gets back.
    type Reply: Send + 'static;

    /// The operation's kind, for metrics.
    const KIND: OpKind;

    /// Calls into `state` through `table`.
    fn call<'a, C: Component>(
        self,
        table: &'static MethodTable,
        state: &'a mut C,
        ctx: &'a mut Context<C>,
    ) -> BoxFuture<'a, Result<Self::Reply>>;
}

impl ByName for (String, Value) {
    type Reply = Value;
    const KIND: OpKind = OpKind::Call;

    fn call<'a, C: Component>(
        self,
        table: &'static MethodTable,
        state: &'a mut C,
        ctx: &'a mut Context<C>,
    ) -> BoxFuture<'a, Result<Value>> {
        let (method, args) = self;
        Box::pin(async move { (table.call_mut)(state, ctx, &method, args).await })
    }
}

impl ByName for Vec<BatchCall> {
    type Reply = Vec<Value>;
    const KIND: OpKind = OpKind::CallBatch;

    /// In order; the first failure ends the batch, named.
    fn call<'a, C: Component>(
        self,
        table: &'static MethodTable,
        state: &'a mut C,
        ctx: &'a mut Context<C>,
    ) -> BoxFuture<'a, Result<Vec<Value>>> {
        Box::pin(async move {
            let mut replies = Vec::with_capacity(self.len());
            for (index, call) in self.into_iter().enumerate() {
                let reply = match table.method(&call.method) {
                    None => Err(Error::NotFound(format!("no method `{}`", call.method))),
                    Some(info) if info.mutating => {
                        (table.call_mut)(state, ctx, &call.method, call.args).await
                    }
                    // Read-only methods see the batch's changes so far.
                    Some(_) => (table.call_ref)(&*state, &call.method, call.args).await,
                };
                let prefix = || {
                    format!("batch call {index} (`{}`) failed, batch rolled back: ", call.method)
                };
                replies.push(reply.map_err(|e| prefixed(prefix(), e))?);
            }
            Ok(replies)
        })
    }
}

/// Calls by name with JSON, checked against a precondition first:
/// [`CallJsonOp`] and [`BatchJsonOp`].
pub(crate) struct ByNameOp<I: ByName> {
    slot: Slot<I, I::Reply>,
    table: &'static MethodTable,
    if_match: Precondition,
    caller: Option<Arc<Caller>>,
}

/// Calls one mutating method by name.
pub(crate) type CallJsonOp = ByNameOp<(String, Value)>;
/// Calls methods by name in order, in one mailbox turn, all or nothing.
pub(crate) type BatchJsonOp = ByNameOp<Vec<BatchCall>>;

impl<I: ByName> ByNameOp<I> {
    pub(crate) fn new(table: &'static MethodTable, input: I, if_match: Precondition) -> Self {
        ByNameOp { slot: Slot::new(input, None), table, if_match, caller: Caller::current() }
    }

    pub(crate) async fn reply(&self) -> Result<I::Reply> {
        self.slot.wait().await
    }
}

impl<C: Component, I: ByName> Operation<C> for ByNameOp<I> {
    fn conditional(&self) -> bool {
        self.if_match.is_conditional()
    }

    fn run<'a>(
        &'a self,
        state: &'a mut C,
        ctx: &'a mut Context<C>,
        current: &'a Snapshot<C>,
    ) -> Run<'a> {
        Box::pin(async move {
            check_if_match(&self.if_match, current)?;
            let Some(input) = self.slot.take_input() else { return Ok(()) };
            ctx.caller.clone_from(&self.caller);
            let r = input.call(self.table, state, ctx).await;
            ctx.caller = None;
            let outcome = r.as_ref().map(|_| ()).map_err(Clone::clone);
            self.slot.set_ran(r);
            outcome
        })
    }

    fn slot(&self) -> &dyn Answer {
        &self.slot
    }

    fn kind(&self) -> OpKind {
        I::KIND
    }

    fn finish(&self, outcome: Result<()>, _: &Arc<Snapshot<C>>) {
        self.slot.answer_with(|ran| reply_of(outcome, ran));
    }
}
