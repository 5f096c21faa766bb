//! The mailbox: one task per component owns its state and processes what
//! arrives, one envelope at a time, in the order envelopes were accepted.
//!
//! An envelope is either an [`Operation`] (a typed message, a batch, a
//! replace, a JSON call) or a [`Control`] message. After operations that may
//! have changed the state the cell commits: serialise, compare, persist,
//! publish. An operation's reply is sent only after the commit, so a reply
//! that says a mutation succeeded means it is visible and durable.
//!
//! Group commit: while more envelopes are queued, successful mutations are
//! kept pending (up to 128) and committed together when the mailbox runs
//! empty, before a read, a conditional (`If-Match`) operation or a control
//! message. A failing mutation in a group is undone from a copy of the state
//! taken just before it; the others are unaffected. If the commit itself
//! fails every operation of the group gets the error and the state goes back
//! to before the group. Under load, one version and one store write then
//! cover many messages.

mod cell;
mod ops;
mod persisted;

use std::time::Duration;

use futures::future::BoxFuture;
use tokio::sync::oneshot;

use crate::{Component, Context, Result, Snapshot};

pub(crate) use cell::{prepare_component, spawn_component, PreparedCell, Shared};
pub(crate) use ops::{AskOp, BatchOp, CallJsonOp, JsonWrite, JsonWriteOp, ReplaceOp};

/// A unit of work for a component's mailbox.
pub(crate) trait Operation<C: Component>: Send {
    /// Runs against the state. `Err` rolls the state back to the last
    /// committed snapshot.
    fn run<'a>(
        &'a mut self,
        state: &'a mut C,
        ctx: &'a mut Context<C>,
        current: &'a Snapshot<C>,
    ) -> BoxFuture<'a, Result<()>>;

    /// Whether `run` may have changed the state.
    fn mutates(&self) -> bool {
        true
    }

    /// Whether `run` checks an `If-Match` ETag, and so must see the state
    /// as committed.
    fn conditional(&self) -> bool {
        false
    }

    /// Sends the reply: `outcome` is the result of run and commit together.
    fn finish(self: Box<Self>, outcome: Result<()>, snapshot: &std::sync::Arc<Snapshot<C>>);
}

/// Control messages, as in the original Go Kinesis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Stop the component for good: `stop`, then tear down. Messages queued
    /// behind it get `Error::Stopping`.
    Shutdown,
    /// `stop`, then `start` again, keeping state and queued messages.
    Restart,
    /// As `Restart`, waiting this long between `stop` and `start`; messages
    /// wait meanwhile.
    RestartAfter(Duration),
    /// Write the persisted fields now, even if they did not change.
    Persist,
    /// Publish the current snapshot to callbacks and subscribers again.
    NotifyPeers,
}

pub(crate) enum Envelope<C: Component> {
    Op(Box<dyn Operation<C>>),
    Control(Control, Option<oneshot::Sender<Result<()>>>),
}

impl<C: Component> Envelope<C> {
    /// Answers the sender with `err` without running anything.
    pub(crate) fn reject(self, err: crate::Error, snapshot: &std::sync::Arc<Snapshot<C>>) {
        match self {
            Envelope::Op(op) => op.finish(Err(err), snapshot),
            Envelope::Control(_, Some(tx)) => {
                let _ = tx.send(Err(err));
            }
            Envelope::Control(_, None) => {}
        }
    }
}
