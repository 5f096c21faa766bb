//! Changes across processes, in one process: two root containers ("A" and
//! "B") share one store, each with its own `ChangeFeed`; the test plays the
//! transport and hands B's feed the records A saved, in chosen orders.
//! B must reach A's state and tell its subscribers every version once, in
//! order: echoes and duplicates dropped, gaps replayed from the history or
//! loaded from the store.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use kinesis::persist::{
    ChangeFeed, Cipher, History, MemoryStore, Persistence, Record, RemoteChange, SharedStore,
    Store, StoreResult,
};
use kinesis::{Change, Component, Container, Context, Handle, Handler, Persist, Result};
use serde::{Deserialize, Serialize};

#[derive(Clone, Default, Debug, Serialize, Deserialize, Persist)]
struct Tally {
    #[persist]
    count: u64,
    #[persist(encrypt)]
    secret: String,
    /// Not persisted: a remote change leaves it alone.
    local: u64,
}

impl Component for Tally {}

struct Bump;
impl Handler<Bump> for Tally {
    type Reply = u64;
    async fn handle(&mut self, _: Bump, _: &mut Context<Self>) -> Result<u64> {
        self.count += 1;
        self.secret = format!("secret {}", self.count);
        Ok(self.count)
    }
}

struct SetLocal(u64);
impl Handler<SetLocal> for Tally {
    type Reply = ();
    async fn handle(&mut self, SetLocal(n): SetLocal, _: &mut Context<Self>) -> Result<()> {
        self.local = n;
        Ok(())
    }
}

/// Every record saved through it, in order, as a history of all versions.
#[derive(Default)]
struct Saved(Mutex<Vec<Record>>);

impl Saved {
    fn all(&self) -> Vec<Record> {
        self.0.lock().unwrap().clone()
    }
}

impl History for Saved {
    fn since<'a>(&'a self, uri: &'a str, after: u64) -> BoxFuture<'a, StoreResult<Vec<Record>>> {
        let out = self.all().into_iter().filter(|r| r.uri == uri && r.version > after).collect();
        Box::pin(async move { Ok(out) })
    }
}

/// A process's view of the shared store: saves are recorded; `feed` is
/// what this process's transport delivers into.
struct Shared {
    inner: Arc<MemoryStore>,
    saved: Arc<Saved>,
    feed: Arc<ChangeFeed>,
}

impl Store for Shared {
    fn backend(&self) -> &'static str {
        "memory"
    }
    fn load<'a>(&'a self, uri: &'a str) -> BoxFuture<'a, StoreResult<Option<Record>>> {
        self.inner.load(uri)
    }
    fn save<'a>(&'a self, record: &'a Record, expected: u64) -> BoxFuture<'a, StoreResult<()>> {
        Box::pin(async move {
            self.inner.save(record, expected).await?;
            self.saved.0.lock().unwrap().push(record.clone());
            Ok(())
        })
    }
    fn delete<'a>(&'a self, uri: &'a str) -> BoxFuture<'a, StoreResult<bool>> {
        self.inner.delete(uri)
    }
    fn list<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, StoreResult<Vec<String>>> {
        self.inner.list(prefix)
    }
    fn feed(&self) -> Option<Arc<ChangeFeed>> {
        Some(self.feed.clone())
    }
}

struct Pair {
    a: Handle<Tally>,
    b: Handle<Tally>,
    b_feed: Arc<ChangeFeed>,
    saved: Arc<Saved>,
    roots: [Container; 2],
}

const URI: &str = "/root/tally";

/// A and B on one store; B's feed has the history of every save when
/// `history` is set.
async fn pair(history: bool) -> Pair {
    let inner = Arc::new(MemoryStore::new());
    let saved = Arc::new(Saved::default());
    let cipher = Arc::new(Cipher::new(&Cipher::generate_key(), &[]).unwrap());
    let b_feed = Arc::new(match history {
        true => ChangeFeed::with_history(saved.clone()),
        false => ChangeFeed::new(),
    });
    let store = |feed: Arc<ChangeFeed>| -> SharedStore {
        Arc::new(Shared { inner: inner.clone(), saved: saved.clone(), feed })
    };
    let persistence = |store: SharedStore| Persistence { store, cipher: Some(cipher.clone()) };
    let root_a =
        Container::root_with(Some(persistence(store(Arc::new(ChangeFeed::new()))))).await.unwrap();
    let root_b = Container::root_with(Some(persistence(store(b_feed.clone())))).await.unwrap();
    let a = root_a.add("tally", Tally::default()).await.unwrap();
    let b = root_b.add("tally", Tally::default()).await.unwrap();
    assert!(b_feed.holds(URI), "B's component registered with its feed");
    Pair { a, b, b_feed, saved, roots: [root_a, root_b] }
}

fn change(record: &Record, with_record: bool) -> RemoteChange {
    RemoteChange {
        uri: record.uri.clone(),
        version: record.version,
        record: with_record.then(|| record.clone()),
    }
}

/// The counts B's subscriber is told about, until B's count reaches `last`.
async fn counts_until(sub: &mut kinesis::Subscription<Tally>, last: u64) -> Vec<u64> {
    let mut seen = Vec::new();
    let collect = async {
        while seen.last() != Some(&last) {
            if let Some(Change::Updated { curr, .. }) = sub.recv().await.unwrap() {
                seen.push(curr.state.count);
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), collect).await.expect("B caught up in time");
    seen
}

/// Changing nothing; asked to know that every delivery before it was handled.
struct Peek;
impl Handler<Peek> for Tally {
    type Reply = u64;
    async fn handle(&mut self, _: Peek, _: &mut Context<Self>) -> Result<u64> {
        Ok(self.count)
    }
}

/// Deliveries take the control lane, served before messages: once a
/// message sent after them is answered, they were all handled.
async fn settle(handle: &Handle<Tally>) {
    handle.ask(Peek).await.unwrap();
}

#[tokio::test]
async fn each_next_version_is_applied_from_its_record_and_published_once_in_order() {
    let p = pair(false).await;
    let mut sub = p.b.subscribe();
    p.b.ask(SetLocal(7)).await.unwrap();
    for _ in 0..5 {
        p.a.ask(Bump).await.unwrap();
    }
    let records = p.saved.all();
    assert_eq!(records.iter().map(|r| r.version).collect::<Vec<_>>(), [1, 2, 3, 4, 5]);
    for r in &records {
        p.b_feed.deliver(change(r, true));
        // A duplicate (a second transport, a replay) is dropped.
        p.b_feed.deliver(change(r, true));
    }
    assert_eq!(counts_until(&mut sub, 5).await[1..], [1, 2, 3, 4, 5]);
    settle(&p.b).await;
    assert!(matches!(sub.try_recv(), Ok(None)), "no version twice");
    let snap = p.b.snapshot();
    assert_eq!(snap.state.count, 5);
    assert_eq!(snap.state.secret, "secret 5", "the encrypted field was decrypted");
    assert_eq!(snap.state.local, 7, "fields that are not persisted stay");
    // B writes next: its version follows A's, no conflict.
    assert_eq!(p.b.ask(Bump).await.unwrap(), 6);
    assert_eq!(p.saved.all().last().unwrap().version, 6);
    // The echo of B's own save is dropped.
    let mut sub = p.b.subscribe();
    p.b_feed.deliver(change(p.saved.all().last().unwrap(), true));
    settle(&p.b).await;
    assert!(matches!(sub.try_recv(), Ok(None)), "an echo publishes nothing");
    for r in &p.roots {
        r.shutdown().await.unwrap();
    }
}

#[tokio::test]
async fn a_gap_is_replayed_from_the_history_version_by_version() {
    let p = pair(true).await;
    let mut sub = p.b.subscribe();
    for _ in 0..6 {
        p.a.ask(Bump).await.unwrap();
    }
    let records = p.saved.all();
    // Versions 1-4 were lost by the transport; 5 arrives without its record.
    p.b_feed.deliver(change(&records[4], false));
    p.b_feed.deliver(change(&records[5], true));
    assert_eq!(counts_until(&mut sub, 6).await, [1, 2, 3, 4, 5, 6]);
    for r in &p.roots {
        r.shutdown().await.unwrap();
    }
}

#[tokio::test]
async fn without_a_history_a_gap_loads_the_latest_record_as_one_change() {
    let p = pair(false).await;
    let mut sub = p.b.subscribe();
    for _ in 0..4 {
        p.a.ask(Bump).await.unwrap();
    }
    let records = p.saved.all();
    p.b_feed.deliver(change(&records[2], true));
    p.b_feed.deliver(change(&records[3], true));
    // Versions 1 and 2 were lost: version 3 loads the latest (4), and the
    // delivery of 4 is then a duplicate.
    assert_eq!(counts_until(&mut sub, 4).await, [4]);
    settle(&p.b).await;
    assert!(matches!(sub.try_recv(), Ok(None)));
    for r in &p.roots {
        r.shutdown().await.unwrap();
    }
}

#[tokio::test]
async fn a_resync_after_a_reconnect_catches_up_on_everything_missed() {
    for history in [true, false] {
        let p = pair(history).await;
        let mut sub = p.b.subscribe();
        for _ in 0..3 {
            p.a.ask(Bump).await.unwrap();
        }
        // Nothing was delivered (the transport was down); it reconnects.
        p.b_feed.resync();
        let expected: &[u64] = if history { &[1, 2, 3] } else { &[3] };
        assert_eq!(counts_until(&mut sub, 3).await, expected, "history: {history}");
        // A second resync finds nothing new.
        p.b_feed.resync();
        settle(&p.b).await;
        assert!(matches!(sub.try_recv(), Ok(None)));
        for r in &p.roots {
            r.shutdown().await.unwrap();
        }
    }
}

#[tokio::test]
async fn a_stopped_component_leaves_the_feed() {
    let p = pair(false).await;
    p.roots[1].shutdown().await.unwrap();
    p.a.ask(Bump).await.unwrap();
    p.b_feed.deliver(change(&p.saved.all()[0], true));
    assert!(!p.b_feed.holds(URI), "the torn-down component is forgotten");
    p.roots[0].shutdown().await.unwrap();
}

#[tokio::test]
async fn a_write_on_a_stale_version_conflicts_and_replays_what_it_missed_in_order() {
    for history in [true, false] {
        let p = pair(history).await;
        let mut sub = p.b.subscribe();
        for _ in 0..3 {
            p.a.ask(Bump).await.unwrap();
        }
        // Nothing delivered: B writes on version 0 and loses.
        let err = p.b.ask(Bump).await.unwrap_err();
        assert!(matches!(err, kinesis::Error::Conflict { .. }), "{err}");
        let expected: &[u64] = if history { &[1, 2, 3] } else { &[3] };
        assert_eq!(counts_until(&mut sub, 3).await, expected, "history: {history}");
        // Late deliveries of what the reload brought are duplicates.
        for r in p.saved.all() {
            p.b_feed.deliver(change(&r, true));
        }
        settle(&p.b).await;
        assert!(matches!(sub.try_recv(), Ok(None)));
        assert_eq!(p.b.ask(Bump).await.unwrap(), 4, "the retry builds on A's writes");
        for r in &p.roots {
            r.shutdown().await.unwrap();
        }
    }
}
