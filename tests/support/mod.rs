//! Synchronisation and a counting store shared by the integration tests.
//!
//! Nothing here sleeps on the wall clock: a test holds a component's mailbox
//! with a [`Gate`], waits until spawned callers reached the mailbox with
//! [`queued`] (it reads `Handle::queued`), and counts store writes with a
//! [`CountingStore`].
#![allow(dead_code, missing_docs, unreachable_pub)]

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use kinesis::persist::{MemoryStore, Persistence, Record, Store, StoreError, StoreResult};
use tokio::sync::Notify;

/// Lets a test hold a component's mailbox inside a handler: the handler
/// calls [`Gate::hold`], the test waits for [`Gate::entered`] and later calls
/// [`Gate::release`]. Clones share the gate; it is never part of a state's
/// JSON (keep it in a `#[serde(skip)]` field) and every gate equals every other.
#[derive(Clone, Default)]
pub struct Gate {
    entered: Arc<Notify>,
    release: Arc<Notify>,
}

impl Gate {
    /// Inside a handler: tells the test the handler runs, then waits until
    /// the test releases it.
    pub async fn hold(&self) {
        self.entered.notify_one();
        self.release.notified().await;
    }

    /// Resolves once a handler is inside [`Gate::hold`]; fails the test if
    /// none gets there within 5 s.
    pub async fn entered(&self) {
        within("a handler to enter the gate", self.entered.notified()).await;
    }

    /// Lets the held handler go on.
    pub fn release(&self) {
        self.release.notify_one();
    }
}

impl fmt::Debug for Gate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Gate")
    }
}

impl PartialEq for Gate {
    fn eq(&self, _: &Gate) -> bool {
        true
    }
}

/// Awaits `f`, failing the test (naming `what`) if it takes over 5 s. A bound
/// against hangs only: nothing is expected to take anywhere near that long.
pub async fn within<T>(what: &str, f: impl Future<Output = T>) -> T {
    match tokio::time::timeout(Duration::from_secs(5), f).await {
        Ok(t) => t,
        Err(_) => panic!("waited over 5 s for {what}"),
    }
}

/// Waits until exactly `n` messages wait in `handle`'s mailbox (the one
/// being handled does not count), yielding to the tasks that send them.
/// Bounded by a number of yields, not by time: it also works on paused time,
/// where a busy loop never lets the clock move.
pub async fn queued<C: kinesis::Component>(handle: &kinesis::Handle<C>, n: usize) {
    for _ in 0..100_000 {
        if handle.queued() == n {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("{} messages queued, expected {n}", handle.queued());
}

/// A [`MemoryStore`] that counts its writes (each `save` is one
/// compare-and-set) and can be told to fail them.
#[derive(Debug, Default)]
pub struct CountingStore {
    inner: MemoryStore,
    saves: AtomicUsize,
    failed_saves: AtomicUsize,
    failing: AtomicBool,
}

impl CountingStore {
    /// Every `save` attempted so far, failed or not.
    pub fn saves(&self) -> usize {
        self.saves.load(Ordering::SeqCst)
    }

    /// The `save`s that failed because of [`CountingStore::set_failing`].
    pub fn failed_saves(&self) -> usize {
        self.failed_saves.load(Ordering::SeqCst)
    }

    /// While `true`, every `save` fails with [`StoreError::Backend`] and
    /// writes nothing; loads still work.
    pub fn set_failing(&self, failing: bool) {
        self.failing.store(failing, Ordering::SeqCst);
    }

    /// The record stored under `uri`.
    pub async fn record(&self, uri: &str) -> Option<Record> {
        self.inner.load(uri).await.unwrap()
    }
}

impl Store for CountingStore {
    fn backend(&self) -> &'static str {
        "counting"
    }

    fn load<'a>(&'a self, uri: &'a str) -> BoxFuture<'a, StoreResult<Option<Record>>> {
        self.inner.load(uri)
    }

    fn save<'a>(&'a self, record: &'a Record, expected: u64) -> BoxFuture<'a, StoreResult<()>> {
        Box::pin(async move {
            self.saves.fetch_add(1, Ordering::SeqCst);
            if self.failing.load(Ordering::SeqCst) {
                self.failed_saves.fetch_add(1, Ordering::SeqCst);
                return Err(StoreError::Backend("counting store is set to fail".into()));
            }
            self.inner.save(record, expected).await
        })
    }

    fn delete<'a>(&'a self, uri: &'a str) -> BoxFuture<'a, StoreResult<bool>> {
        self.inner.delete(uri)
    }

    fn list<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, StoreResult<Vec<String>>> {
        self.inner.list(prefix)
    }
}

/// Persistence on `store`, without a cipher.
pub fn counting(store: &Arc<CountingStore>) -> Option<Persistence> {
    Some(Persistence { store: store.clone(), cipher: None })
}
