//! Changes saved by other processes, applied in the cell.
//!
//! A component whose store has a [`ChangeFeed`](crate::persist::ChangeFeed)
//! registers its URI there when its cell is made. What the feed delivers
//! arrives through the control lane (so between two messages, in the order
//! delivered) and is applied here; the rules are in the feed's module docs:
//! a version at or below the one held is dropped, the next one is applied
//! from the record that came with it, and a gap is filled from the feed's
//! history, else from the store's latest record. Applied records are
//! committed without being written back, and each is published as one
//! `Updated`.

use std::sync::{Arc, Weak};

use super::commit::{Committer, Published};
use super::mailbox::{ControlEnvelope, Signal};
use super::{Cell, Shared};
use crate::persist::{Holder, Incoming, Record, RemoteChange};
use crate::{Change, Component, Result};

impl<C: Component> Holder for Weak<Shared<C>> {
    fn deliver(&self, incoming: Incoming) -> bool {
        let Some(shared) = self.upgrade() else { return false };
        let envelope = ControlEnvelope { signal: Signal::Remote(Box::new(incoming)), reply: None };
        match shared.mailbox.push_control(envelope) {
            Ok(wake) => {
                wake.run();
                true
            }
            Err(_) => false,
        }
    }
}

/// Registers the component of `shared` with its store's feed, if it has one.
pub(super) fn hold<C: Component>(shared: &Arc<Shared<C>>, committer: &Committer<C>) {
    if let Some(feed) = committer.persisted().and_then(|p| p.feed()) {
        feed.hold(&shared.uri, Arc::new(Arc::downgrade(shared)));
    }
}

impl<C: Component> Cell<C> {
    /// Applies what the feed delivered and publishes each applied version.
    pub(crate) async fn apply_remote(&mut self, incoming: Incoming) {
        let Cell { committer, state, shared, .. } = self;
        let changes =
            Box::pin(committer.catch_up(state, &shared.snapshot, &shared.uri, incoming)).await;
        for change in changes {
            self.publish(change).await;
        }
    }
}

impl<C: Component> Committer<C> {
    /// The version of the stored record this component holds.
    fn held(&self) -> u64 {
        self.persisted().map_or(0, |p| p.saved_version())
    }

    /// Brings `state` up to what `incoming` says the store holds; returns
    /// one change per version applied, oldest first.
    pub(crate) async fn catch_up(
        &mut self,
        state: &mut C,
        published: &Published<C>,
        uri: &str,
        incoming: Incoming,
    ) -> Vec<Change<C>> {
        let Some(feed) = self.persisted().and_then(|p| p.feed()).cloned() else {
            return Vec::new();
        };
        let held = self.held();
        let (mut records, target) = match incoming {
            // An echo of a save this process made, or a duplicate.
            Incoming::Change(c) if c.version <= held => return Vec::new(),
            Incoming::Change(RemoteChange { version, record: Some(r), .. })
                if version == held + 1 && r.version == version =>
            {
                (vec![r], Some(version))
            }
            Incoming::Change(c) => (Vec::new(), Some(c.version)),
            Incoming::Resync => (Vec::new(), None),
        };
        let mut replayed = false;
        if records.is_empty() {
            if let Some(history) = feed.history(uri, held).await {
                replayed = true;
                records = history;
            }
        }
        let mut broken = false;
        let mut changes = Vec::new();
        for record in &records {
            let held = self.held();
            if record.version <= held {
                continue;
            }
            if record.version != held + 1 {
                broken = true;
                break;
            }
            match self.apply_record(state, published, record) {
                Ok(change) => changes.extend(change),
                Err(e) => {
                    tracing::warn!(%uri, version = record.version, error = %e, "cannot apply a remote change");
                    broken = true;
                    break;
                }
            }
        }
        // What neither the transport nor the history gave: the latest
        // record, as one change. A resync that the history bridged is
        // done: what is saved after its read comes as notifications, and
        // loading the store could skip the versions saved in between.
        let held = self.held();
        let load = match target {
            Some(t) => t > held,
            None => !replayed || broken,
        };
        if load {
            let latest = match self.persisted() {
                Some(p) => p.fetch().await,
                None => Ok(None),
            };
            match latest {
                Ok(Some(record)) if record.version > held => {
                    if record.version > held + 1 {
                        tracing::info!(%uri, from = held + 1, to = record.version, "versions missed; applying the latest as one change");
                    }
                    match self.apply_record(state, published, &record) {
                        Ok(change) => changes.extend(change),
                        Err(e) => {
                            tracing::warn!(%uri, version = record.version, error = %e, "cannot apply a remote change")
                        }
                    }
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(%uri, error = %e, "cannot load a remote change"),
            }
        }
        changes
    }

    /// Loads `record` into `state` and commits it without saving; the
    /// change to publish, if the state changed.
    fn apply_record(
        &mut self,
        state: &mut C,
        published: &Published<C>,
        record: &Record,
    ) -> Result<Option<Change<C>>> {
        let applied = match self.persisted_mut() {
            Some(p) => p.apply(state, record),
            None => Ok(()),
        };
        let changed = applied.and_then(|()| self.examine(state));
        match changed {
            Ok(true) => Ok(Some(self.publish(state, published))),
            Ok(false) => Ok(None),
            Err(e) => {
                self.rollback(state);
                Err(e)
            }
        }
    }
}
