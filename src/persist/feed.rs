//! [`ChangeFeed`]: changes of stored records that cross processes.
//!
//! Several processes may share one store. When one of them saves a record,
//! every other process that holds the component at that URI must load the
//! new version and tell its own subscribers. A *transport* (PostgreSQL
//! `LISTEN/NOTIFY` in `kinesis-sql`, NATS JetStream in `kinesis-events`)
//! carries the news; this module is the transport-neutral part of the
//! receiving side:
//!
//! * A store that has a feed returns it from
//!   [`Store::feed`](super::Store::feed). Every running component with
//!   persisted fields on that store registers its URI with the feed.
//! * The transport hands each change it receives to
//!   [`ChangeFeed::deliver`]: the URI, the record's version and, when the
//!   transport carries it, the stored record itself (encrypted fields stay
//!   encrypted: no secret crosses the wire). A URI this process does not
//!   hold is ignored.
//! * The change reaches the component as a control message, so it is
//!   applied between two messages, never in the middle of one. There a
//!   version at or below the one the component holds is dropped (the
//!   component's own saves come back as such echoes, and a change carried by
//!   two transports arrives twice): duplicates are dropped by
//!   `(uri, version)`. The next version, with its record, is applied: its
//!   fields are decrypted and loaded, the state is committed *without*
//!   writing it back, and subscribers, callbacks and watchers get
//!   `Updated`. A gap (a version further ahead, or a change without its
//!   record) is recovered: the missing versions are replayed from the feed's
//!   [`History`] when it has one, in order; what the history cannot give is
//!   loaded from the store as one change to the latest version.
//! * After the transport lost its connection and got it back, it calls
//!   [`ChangeFeed::resync`]: every component compares the version it holds
//!   with the history and the store, and recovers as for a gap.
//!
//! Versions therefore reach a component's subscribers in order and each at
//! most once; each exactly once as long as the history (or the transport's
//! own replay) still has them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;

use super::{Record, StoreResult};

/// One change of a stored record, as a transport received it.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteChange {
    /// The record's URI: the component's.
    pub uri: String,
    /// The version the save wrote.
    pub version: u64,
    /// The stored record at `version`, when the transport carries it
    /// (encrypted fields as stored); `None` makes the receiver fetch it.
    pub record: Option<Record>,
}

/// Where the versions a transport missed can be read again: the saved
/// records of one URI after a version, oldest first.
pub trait History: Send + Sync + 'static {
    /// The records of `uri` with a version above `after`, in version order.
    /// A history keeps a bounded number of versions: the first one returned
    /// may be further ahead than `after + 1`, and the receiver then loads
    /// the latest record from the store instead.
    fn since<'a>(&'a self, uri: &'a str, after: u64) -> BoxFuture<'a, StoreResult<Vec<Record>>>;
}

/// What the feed hands a component.
#[derive(Debug)]
pub(crate) enum Incoming {
    /// A record changed elsewhere.
    Change(RemoteChange),
    /// The transport reconnected: compare versions and recover.
    Resync,
}

/// A running component that holds a URI; implemented by the cell.
pub(crate) trait Holder: Send + Sync + 'static {
    /// Queues `incoming` for the component; `false` once it is gone.
    fn deliver(&self, incoming: Incoming) -> bool;
}

/// Routes changes received from other processes to the components of this
/// process that hold their URIs. See the [module docs](self).
///
/// ```
/// use kinesis::persist::{ChangeFeed, RemoteChange};
///
/// let feed = ChangeFeed::new();
/// // Nothing holds /root/x in this process: the change is ignored.
/// assert!(!feed.holds("/root/x"));
/// feed.deliver(RemoteChange { uri: "/root/x".into(), version: 2, record: None });
/// ```
#[derive(Default)]
pub struct ChangeFeed {
    holders: Mutex<HashMap<String, Arc<dyn Holder>>>,
    history: Option<Arc<dyn History>>,
}

impl ChangeFeed {
    /// A feed without a history: gaps are recovered from the store.
    pub fn new() -> Self {
        ChangeFeed::default()
    }

    /// A feed whose gaps are replayed from `history` first.
    pub fn with_history(history: Arc<dyn History>) -> Self {
        ChangeFeed { holders: Mutex::default(), history: Some(history) }
    }

    fn holders(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<dyn Holder>>> {
        self.holders.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether a running component of this process holds `uri`.
    pub fn holds(&self, uri: &str) -> bool {
        self.holders().contains_key(uri)
    }

    /// How many URIs components of this process hold.
    pub fn held(&self) -> usize {
        self.holders().len()
    }

    /// Hands `change` to the component holding its URI, if any; it is
    /// applied there between two messages, in the order of the calls.
    pub fn deliver(&self, change: RemoteChange) {
        let holder = self.holders().get(&change.uri).cloned();
        let Some(holder) = holder else { return };
        let uri = change.uri.clone();
        if !holder.deliver(Incoming::Change(change)) {
            self.forget(&uri, &holder);
        }
    }

    /// Tells every component to compare the version it holds with the
    /// history and the store, and to catch up: what a transport calls after
    /// it reconnected, since notifications may have been lost meanwhile.
    pub fn resync(&self) {
        let holders: Vec<(String, Arc<dyn Holder>)> =
            self.holders().iter().map(|(u, h)| (u.clone(), Arc::clone(h))).collect();
        for (uri, holder) in holders {
            if !holder.deliver(Incoming::Resync) {
                self.forget(&uri, &holder);
            }
        }
    }

    /// Whether missed versions can be replayed from a history.
    pub(crate) fn has_history(&self) -> bool {
        self.history.is_some()
    }

    /// The records of `uri` after version `after`, if this feed has a
    /// history; an error of the history is logged and counts as none.
    pub(crate) async fn history(&self, uri: &str, after: u64) -> Option<Vec<Record>> {
        let history = self.history.as_ref()?;
        match history.since(uri, after).await {
            Ok(records) => Some(records),
            Err(e) => {
                tracing::warn!(%uri, error = %e, "reading the change history failed; loading the latest record instead");
                None
            }
        }
    }

    /// Registers the component holding `uri` (replacing an earlier one).
    pub(crate) fn hold(&self, uri: &str, holder: Arc<dyn Holder>) {
        self.holders().insert(uri.to_owned(), holder);
    }

    /// Forgets `holder` for `uri`, unless another took its place.
    fn forget(&self, uri: &str, holder: &Arc<dyn Holder>) {
        let mut holders = self.holders();
        if holders.get(uri).is_some_and(|h| Arc::ptr_eq(h, holder)) {
            holders.remove(uri);
        }
    }
}

impl std::fmt::Debug for ChangeFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChangeFeed")
            .field("held", &self.held())
            .field("history", &self.history.is_some())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;

    #[derive(Default)]
    struct Probe {
        got: Mutex<Vec<String>>,
        gone: AtomicBool,
    }

    impl Holder for Probe {
        fn deliver(&self, incoming: Incoming) -> bool {
            if self.gone.load(Ordering::SeqCst) {
                return false;
            }
            let what = match incoming {
                Incoming::Change(c) => format!("{}@{}", c.uri, c.version),
                Incoming::Resync => "resync".to_owned(),
            };
            self.got.lock().unwrap().push(what);
            true
        }
    }

    fn change(uri: &str, version: u64) -> RemoteChange {
        RemoteChange { uri: uri.into(), version, record: None }
    }

    #[test]
    fn changes_go_to_the_holder_of_their_uri_in_order_and_others_are_ignored() {
        let feed = ChangeFeed::new();
        let a = Arc::new(Probe::default());
        feed.hold("/root/a", a.clone());
        feed.deliver(change("/root/b", 1));
        feed.deliver(change("/root/a", 2));
        feed.deliver(change("/root/a", 3));
        feed.resync();
        assert_eq!(*a.got.lock().unwrap(), ["/root/a@2", "/root/a@3", "resync"]);
    }

    #[test]
    fn a_holder_that_is_gone_is_forgotten_but_not_its_successor() {
        let feed = ChangeFeed::new();
        let old = Arc::new(Probe::default());
        feed.hold("/root/a", old.clone());
        old.gone.store(true, Ordering::SeqCst);
        feed.deliver(change("/root/a", 2));
        assert!(!feed.holds("/root/a"));
        let new = Arc::new(Probe::default());
        feed.hold("/root/a", new.clone());
        let old_dyn: Arc<dyn Holder> = old;
        feed.forget("/root/a", &old_dyn);
        assert!(feed.holds("/root/a"), "a newer holder stays");
    }
}
