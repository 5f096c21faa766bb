//! The operations a mailbox runs.

use std::sync::Arc;

use futures::future::BoxFuture;
use serde_json::Value;
use tokio::sync::oneshot;

use super::Operation;
use crate::dynamic::{unredact, JsonSnapshot};
use crate::methods::MethodTable;
use crate::{Component, Context, Error, Handler, Result, Snapshot};

/// A typed message and the channel its reply goes to.
pub(crate) struct AskOp<M, C: Handler<M>>
where
    M: Send + 'static,
{
    msg: Option<M>,
    result: Option<Result<C::Reply>>,
    tx: Option<oneshot::Sender<Result<C::Reply>>>,
}

impl<M: Send + 'static, C: Handler<M>> AskOp<M, C> {
    pub(crate) fn new(msg: M, tx: Option<oneshot::Sender<Result<C::Reply>>>) -> Self {
        AskOp { msg: Some(msg), result: None, tx }
    }
}

impl<M: Send + 'static, C: Handler<M>> Operation<C> for AskOp<M, C> {
    fn run<'a>(
        &'a mut self,
        state: &'a mut C,
        ctx: &'a mut Context<C>,
        _current: &'a Snapshot<C>,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let Some(msg) = self.msg.take() else {
                return Err(Error::Invalid("message already handled".into()));
            };
            let r = state.handle(msg, ctx).await;
            let outcome = r.as_ref().map(|_| ()).map_err(Clone::clone);
            self.result = Some(r);
            outcome
        })
    }

    fn mutates(&self) -> bool {
        C::MUTATES
    }

    fn finish(self: Box<Self>, outcome: Result<()>, _snapshot: &Arc<Snapshot<C>>) {
        let this = *self;
        let reply = reply_of(outcome, this.result);
        match this.tx {
            Some(tx) => {
                let _ = tx.send(reply);
            }
            None => {
                if let Err(e) = reply {
                    tracing::warn!(error = %e, "told message failed");
                }
            }
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

/// Messages handled in order as one unit: all or nothing.
pub(crate) struct BatchOp<M, C: Handler<M>>
where
    M: Send + 'static,
{
    msgs: Vec<M>,
    replies: Vec<C::Reply>,
    failed: Option<Error>,
    tx: oneshot::Sender<Result<Vec<C::Reply>>>,
}

impl<M: Send + 'static, C: Handler<M>> BatchOp<M, C> {
    pub(crate) fn new(msgs: Vec<M>, tx: oneshot::Sender<Result<Vec<C::Reply>>>) -> Self {
        BatchOp { replies: Vec::with_capacity(msgs.len()), msgs, failed: None, tx }
    }
}

impl<M: Send + 'static, C: Handler<M>> Operation<C> for BatchOp<M, C> {
    fn run<'a>(
        &'a mut self,
        state: &'a mut C,
        ctx: &'a mut Context<C>,
        _current: &'a Snapshot<C>,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let msgs = std::mem::take(&mut self.msgs);
            for (index, msg) in msgs.into_iter().enumerate() {
                match state.handle(msg, ctx).await {
                    Ok(r) => self.replies.push(r),
                    Err(e) => {
                        let e = batch_error(index, e);
                        self.failed = Some(e.clone());
                        self.replies.clear();
                        return Err(e);
                    }
                }
            }
            Ok(())
        })
    }

    fn finish(self: Box<Self>, outcome: Result<()>, _snapshot: &Arc<Snapshot<C>>) {
        let this = *self;
        let reply = match outcome {
            Ok(()) => Ok(this.replies),
            Err(e) => Err(this.failed.unwrap_or(e)),
        };
        let _ = this.tx.send(reply);
    }
}

fn batch_error(index: usize, e: Error) -> Error {
    let prefix = format!("batch message {index} failed, batch rolled back: ");
    match e {
        Error::Handler(m) => Error::Handler(prefix + &m),
        Error::Invalid(m) => Error::Invalid(prefix + &m),
        other => other,
    }
}

/// Checks an optional `If-Match` value against the current ETag.
pub(crate) fn check_if_match<C>(if_match: Option<&str>, current: &Snapshot<C>) -> Result<()> {
    match if_match {
        None => Ok(()),
        Some(tag) if tag.trim() == "*" => Ok(()),
        Some(tag) if tag.split(',').any(|t| current.etag.matches(t)) => Ok(()),
        Some(_) => Err(Error::Conflict { current_etag: current.etag.quoted() }),
    }
}

/// Replaces the whole state if the ETag is current.
pub(crate) struct ReplaceOp<C: Component> {
    new_state: Option<C>,
    if_match: Option<String>,
    tx: oneshot::Sender<Result<Arc<Snapshot<C>>>>,
}

impl<C: Component> ReplaceOp<C> {
    pub(crate) fn new(
        new_state: C,
        if_match: Option<String>,
        tx: oneshot::Sender<Result<Arc<Snapshot<C>>>>,
    ) -> Self {
        ReplaceOp { new_state: Some(new_state), if_match, tx }
    }
}

impl<C: Component> Operation<C> for ReplaceOp<C> {
    fn conditional(&self) -> bool {
        self.if_match.is_some()
    }

    fn run<'a>(
        &'a mut self,
        state: &'a mut C,
        _ctx: &'a mut Context<C>,
        current: &'a Snapshot<C>,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            check_if_match(self.if_match.as_deref(), current)?;
            if let Some(new_state) = self.new_state.take() {
                *state = new_state;
            }
            Ok(())
        })
    }

    fn finish(self: Box<Self>, outcome: Result<()>, snapshot: &Arc<Snapshot<C>>) {
        let _ = self.tx.send(outcome.map(|()| Arc::clone(snapshot)));
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
pub(crate) struct JsonWriteOp {
    write: Option<JsonWrite>,
    if_match: Option<String>,
    tx: oneshot::Sender<Result<JsonSnapshot>>,
}

impl JsonWriteOp {
    pub(crate) fn new(
        write: JsonWrite,
        if_match: Option<String>,
        tx: oneshot::Sender<Result<JsonSnapshot>>,
    ) -> Self {
        JsonWriteOp { write: Some(write), if_match, tx }
    }
}

impl<C: Component> Operation<C> for JsonWriteOp {
    fn conditional(&self) -> bool {
        self.if_match.is_some()
    }

    fn run<'a>(
        &'a mut self,
        state: &'a mut C,
        _ctx: &'a mut Context<C>,
        current: &'a Snapshot<C>,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            check_if_match(self.if_match.as_deref(), current)?;
            let value = match self.write.take() {
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
                None => return Err(Error::Invalid("write already applied".into())),
            };
            let mut rebuilt = crate::dynamic::from_json::<C>(value)?;
            rebuilt.restore_skipped(state);
            *state = rebuilt;
            Ok(())
        })
    }

    fn finish(self: Box<Self>, outcome: Result<()>, snapshot: &Arc<Snapshot<C>>) {
        let _ = self.tx.send(outcome.and_then(|()| JsonSnapshot::of(snapshot)));
    }
}

/// Calls a mutating method by name with JSON arguments.
pub(crate) struct CallJsonOp {
    table: &'static MethodTable,
    method: String,
    args: Value,
    if_match: Option<String>,
    result: Option<Result<Value>>,
    tx: oneshot::Sender<Result<Value>>,
}

impl CallJsonOp {
    pub(crate) fn new(
        table: &'static MethodTable,
        method: String,
        args: Value,
        if_match: Option<String>,
        tx: oneshot::Sender<Result<Value>>,
    ) -> Self {
        CallJsonOp { table, method, args, if_match, result: None, tx }
    }
}

impl<C: Component> Operation<C> for CallJsonOp {
    fn conditional(&self) -> bool {
        self.if_match.is_some()
    }

    fn run<'a>(
        &'a mut self,
        state: &'a mut C,
        ctx: &'a mut Context<C>,
        current: &'a Snapshot<C>,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            check_if_match(self.if_match.as_deref(), current)?;
            let args = std::mem::take(&mut self.args);
            let r = (self.table.call_mut)(state, ctx, &self.method, args).await;
            let outcome = r.as_ref().map(|_| ()).map_err(Clone::clone);
            self.result = Some(r);
            outcome
        })
    }

    fn finish(self: Box<Self>, outcome: Result<()>, _snapshot: &Arc<Snapshot<C>>) {
        let this = *self;
        let _ = this.tx.send(reply_of(outcome, this.result));
    }
}
