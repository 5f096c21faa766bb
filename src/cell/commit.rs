//! The commit pipeline: serialise once, compare, hash, store, publish.
//!
//! After an operation that may have changed the state the task commits:
//! the state is serialised into canonical JSON (a per-thread buffer, so an
//! unchanged state costs no allocation), compared with the bytes of the last
//! commit, and if it changed hashed into a new [`ETag`], written through to
//! the store (persisted fields only) and published as a new snapshot. An
//! operation is answered only after its commit, so an answer that says a
//! mutation succeeded means it is visible and durable.

use std::cell::RefCell;
use std::sync::Arc;

use super::persisted::{Persisted, SaveError};
use crate::persist::{schema_of, Incoming, Persistence};
use crate::{Change, Component, ETag, Error, Result, Snapshot};

thread_local! {
    /// Where states are serialised; one per worker thread, reused.
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// The latest snapshot, where readers take it.
///
/// A commit stores one snapshot per change; readers clone the `Arc` under a
/// read lock that is held for a pointer copy. (`arc_swap` made readers
/// lock-free, but its writers scan every thread's debt slots on each store:
/// 15 % of an ask round trip with 1,000 components.)
pub(crate) struct Published<C>(std::sync::RwLock<Arc<Snapshot<C>>>);

impl<C> Published<C> {
    pub(crate) fn new(snapshot: Arc<Snapshot<C>>) -> Self {
        Published(std::sync::RwLock::new(snapshot))
    }

    /// The latest snapshot.
    pub(crate) fn load(&self) -> Arc<Snapshot<C>> {
        Arc::clone(&self.0.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// The ETag of the latest snapshot, without cloning it.
    pub(crate) fn etag(&self) -> ETag {
        self.0.read().unwrap_or_else(|p| p.into_inner()).etag
    }

    /// Publishes `snapshot`; returns the one it replaces.
    fn store(&self, snapshot: Arc<Snapshot<C>>) -> Arc<Snapshot<C>> {
        std::mem::replace(&mut *self.0.write().unwrap_or_else(|p| p.into_inner()), snapshot)
    }
}

/// Why a commit failed.
pub(crate) enum CommitError {
    /// Another writer saved first (compare-and-set lost).
    Conflict,
    /// Anything else.
    Failed(Error),
}

/// One component's committed state and its way to the store.
pub(crate) struct Committer<C> {
    /// The snapshot last published; the committer is its only writer.
    current: Arc<Snapshot<C>>,
    /// Canonical JSON of `current.state`.
    last_bytes: Vec<u8>,
    persisted: Option<Box<Persisted>>,
}

/// Canonical JSON of `state` into `out`.
fn serialise<C: Component>(state: &C, out: &mut Vec<u8>) -> Result<()> {
    out.clear();
    crate::canonical::write(out, state)
        .map_err(|e| Error::Invalid(format!("state does not serialise: {e}")))
}

impl<C: Component> Committer<C> {
    /// The committer of a new component at `uri`, and its first snapshot
    /// (version 1).
    pub(crate) fn new(state: &C, uri: &str, persistence: Option<&Persistence>) -> Result<Self> {
        let persisted = match schema_of::<C>() {
            Some(s) if !s.fields.is_empty() => Some(Box::new(Persisted::new(s, persistence, uri)?)),
            _ => None,
        };
        let etag_key = persisted.as_ref().and_then(|p| p.etag_key());
        let mut bytes = Vec::new();
        serialise(state, &mut bytes)
            .map_err(|e| Error::Invalid(format!("the state of {uri}: {e}")))?;
        let current =
            Arc::new(Snapshot::new(state.clone(), ETag::of(&bytes, etag_key.as_ref()), 1));
        Ok(Committer { current, last_bytes: bytes, persisted })
    }

    /// The key ETags are hashed with: only components with encrypted fields
    /// have one.
    fn etag_key(&self) -> Option<[u8; 32]> {
        self.persisted.as_ref().and_then(|p| p.etag_key())
    }

    /// The snapshot last published.
    pub(crate) fn current(&self) -> &Arc<Snapshot<C>> {
        &self.current
    }

    /// Puts the last committed state back into `state`.
    pub(crate) fn rollback(&self, state: &mut C) {
        *state = self.current.state.clone();
    }

    /// Loads the persisted fields into `state`; returns whether the stored
    /// record must be written again (old key, missing fields).
    pub(crate) async fn load(&mut self, state: &mut C) -> Result<bool> {
        match self.persisted.as_mut() {
            None => Ok(false),
            Some(p) => {
                p.load(state).await?;
                Ok(p.needs_rewrite())
            }
        }
    }

    /// The binding to the store, if the component has persisted fields.
    pub(crate) fn persisted(&self) -> Option<&Persisted> {
        self.persisted.as_deref()
    }

    /// The binding to the store, for applying remote changes.
    pub(crate) fn persisted_mut(&mut self) -> Option<&mut Persisted> {
        self.persisted.as_deref_mut()
    }

    /// Whether persisted fields are written through to a store.
    pub(crate) fn persists(&self) -> bool {
        self.persisted.is_some()
    }

    /// Step 1: serialises `state` and compares it with the last commit.
    /// Returns whether it changed; then `last_bytes` holds the new bytes
    /// until [`publish`](Committer::publish) or [`refused`](Committer::refused).
    pub(crate) fn examine(&mut self, state: &C) -> Result<bool> {
        SCRATCH.with(|scratch| {
            let mut scratch = scratch.borrow_mut();
            serialise(state, &mut scratch)?;
            if *scratch == self.last_bytes {
                return Ok(false);
            }
            // Both buffers keep their allocations: no copy, no allocation.
            std::mem::swap(&mut *scratch, &mut self.last_bytes);
            Ok(true)
        })
    }

    /// Step 2 (with a store): writes the persisted fields of `state`.
    pub(crate) async fn save(&mut self, state: &C, force: bool) -> Result<(), CommitError> {
        let Some(p) = self.persisted.as_mut() else { return Ok(()) };
        match p.save(state, force).await {
            Ok(()) => Ok(()),
            Err(SaveError::Conflict(e)) => {
                tracing::warn!(error = %e, "another writer saved first");
                Err(CommitError::Conflict)
            }
            Err(SaveError::Failed(e)) => Err(CommitError::Failed(e)),
        }
    }

    /// After a failed step 2 of a changed state: `last_bytes` describes the
    /// committed state again.
    pub(crate) fn refused(&mut self) {
        let _ = serialise(&self.current.state, &mut self.last_bytes);
    }

    /// Step 3: publishes `state` (examined as changed) as a new snapshot
    /// into `published`; returns the change to tell about.
    pub(crate) fn publish(&mut self, state: &C, published: &Published<C>) -> Change<C> {
        let prev = Arc::clone(&self.current);
        let curr = Arc::new(Snapshot::new(
            state.clone(),
            ETag::of(&self.last_bytes, self.etag_key().as_ref()),
            prev.version + 1,
        ));
        // The replaced snapshot is `prev`; dropped outside the lock.
        drop(published.store(Arc::clone(&curr)));
        self.current = Arc::clone(&curr);
        Change::Updated { prev, curr }
    }

    /// The three steps in one, for the reload after a conflict.
    async fn commit(
        &mut self,
        state: &C,
        published: &Published<C>,
    ) -> Result<Option<Change<C>>, CommitError> {
        if !self.examine(state).map_err(CommitError::Failed)? {
            return Ok(None);
        }
        if let Err(e) = self.save(state, false).await {
            self.refused();
            return Err(e);
        }
        Ok(Some(self.publish(state, published)))
    }

    /// After a lost compare-and-set: loads what the other writers stored
    /// into `state` and commits it. Returns the error for the callers and
    /// the changes to publish, oldest first: one per version the others
    /// saved when the store's feed has a history to replay them from, else
    /// at most one, to the latest record.
    pub(crate) async fn reload_after_conflict(
        &mut self,
        state: &mut C,
        published: &Published<C>,
        uri: &str,
    ) -> (Error, Vec<Change<C>>) {
        self.rollback(state);
        let Some(p) = self.persisted.as_mut() else {
            return (Error::Store("conflict without a store".into()), Vec::new());
        };
        if p.feed().is_some_and(|f| f.has_history()) {
            let changes = self.catch_up(state, published, uri, Incoming::Resync).await;
            return (Error::Conflict { current: self.current.etag }, changes);
        }
        if let Err(e) = p.load(state).await {
            self.rollback(state);
            return (Error::Store(format!("reloading after a conflict failed: {e}")), Vec::new());
        }
        let change = match self.commit(state, published).await {
            Ok(change) => change,
            Err(_) => {
                self.rollback(state);
                None
            }
        };
        (Error::Conflict { current: self.current.etag }, change.into_iter().collect())
    }
}
