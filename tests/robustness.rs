//! Regressions of issue 11: each test failed on the runtime before its fix.
//!
//! * a panicking change callback must not kill its component;
//! * a container cannot be added to itself (or anywhere a second time);
//! * equal states get equal ETags, whatever the map iteration order;
//! * a callback one component registers on another ends with that
//!   component's run, so restarts do not pile registrations up;
//! * `Shutdown` overtakes queued messages, which are answered `Stopping`.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{Counter, Inc};
use kinesis::{Component, Container, Context, Error, Handle, Handler, Position, Result, Stage};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

/// Bounds every wait of these tests, so a regression fails instead of hanging.
const BOUND: Duration = Duration::from_secs(10);

async fn bounded<F: std::future::Future>(what: &str, fut: F) -> F::Output {
    tokio::time::timeout(BOUND, fut).await.unwrap_or_else(|_| panic!("{what} hung"))
}

#[tokio::test]
async fn a_panicking_callback_is_removed_and_the_component_lives_on() {
    let root = Container::root().await.unwrap();
    let c = root.add("c", Counter::default()).await.unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&calls);
    c.on_change(Position::Tail, move |_| {
        seen.fetch_add(1, Ordering::SeqCst);
        async { panic!("callback bug") }
    });
    let after = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&after);
    c.on_change(Position::Tail, move |_| {
        counted.fetch_add(1, Ordering::SeqCst);
        async {}
    });

    assert_eq!(bounded("first ask", c.ask(Inc(1))).await.unwrap(), 1);
    assert_eq!(bounded("second ask", c.ask(Inc(1))).await.unwrap(), 2, "the component died");
    assert_eq!(c.stage(), Stage::Started);
    assert_eq!(calls.load(Ordering::SeqCst), 1, "a callback that panicked is removed");
    assert_eq!(after.load(Ordering::SeqCst), 2, "the callbacks after it still run");
    bounded("shutdown", root.shutdown()).await.unwrap();
}

#[tokio::test]
async fn a_callback_that_panics_before_returning_its_future_is_contained() {
    let root = Container::root().await.unwrap();
    let c = root.add("c", Counter::default()).await.unwrap();
    c.on_change(Position::Head, |_| -> std::future::Ready<()> { panic!("sync callback bug") });
    assert_eq!(bounded("first ask", c.ask(Inc(1))).await.unwrap(), 1);
    assert_eq!(bounded("second ask", c.ask(Inc(1))).await.unwrap(), 2);
    bounded("shutdown", root.shutdown()).await.unwrap();
}

#[tokio::test]
async fn a_container_cannot_be_added_to_itself_or_twice() {
    let root = Container::root().await.unwrap();
    let err = root.add("me", root.clone()).await.unwrap_err();
    assert!(matches!(err, Error::Invalid(ref m) if m.contains("/root")), "{err}");

    let app = root.add_container("app").await.unwrap();
    let err = app.add("up", root.clone()).await.unwrap_err();
    assert!(matches!(err, Error::Invalid(_)), "an ancestor is refused: {err}");
    let err = root.add("again", app.clone()).await.unwrap_err();
    assert!(matches!(err, Error::Invalid(_)), "a second place is refused: {err}");
    assert_eq!(root.names(), vec!["app".to_owned()]);
    bounded("shutdown", root.shutdown()).await.unwrap();
}

/// State with a map: serde_json writes a `HashMap` in iteration order.
#[derive(Clone, Default, Serialize, Deserialize)]
struct Tags {
    tags: HashMap<String, u64>,
    nested: Vec<HashMap<String, HashMap<String, u64>>>,
}
impl Component for Tags {}

#[tokio::test]
async fn equal_states_with_maps_have_equal_etags() {
    let root = Container::root().await.unwrap();
    let mut first = None;
    for i in 0..16 {
        // Different insertion orders and different hash seeds per map.
        let mut tags = HashMap::new();
        let mut inner = HashMap::new();
        for k in 0..32u64 {
            let k = if i % 2 == 0 { k } else { 31 - k };
            tags.insert(format!("key-{k}"), k);
            inner.insert(format!("k{k}"), HashMap::from([(format!("x{k}"), k)]));
        }
        let c = root.add(&format!("t{i}"), Tags { tags, nested: vec![inner] }).await.unwrap();
        let etag = c.etag();
        assert_eq!(*first.get_or_insert(etag), etag, "component t{i}");
    }
    bounded("shutdown", root.shutdown()).await.unwrap();
}

/// Registers a callback on `target` every time it starts.
#[derive(Clone, Default, Serialize, Deserialize)]
struct Watcher {
    #[serde(skip)]
    target: Option<Handle<Counter>>,
    #[serde(skip)]
    heard: Arc<AtomicUsize>,
}

impl Component for Watcher {
    async fn start(&mut self, _ctx: &mut Context<Self>) -> Result<()> {
        if let Some(target) = &self.target {
            let heard = Arc::clone(&self.heard);
            target.on_change(Position::Tail, move |change| {
                if matches!(change, kinesis::Change::Updated { .. }) {
                    heard.fetch_add(1, Ordering::SeqCst);
                }
                async {}
            });
        }
        Ok(())
    }
}

#[tokio::test]
async fn callbacks_registered_by_a_component_end_with_its_run() {
    let root = Container::root().await.unwrap();
    let target = root.add("target", Counter::default()).await.unwrap();
    let heard = Arc::new(AtomicUsize::new(0));
    let watcher = Watcher { target: Some(target.clone()), heard: Arc::clone(&heard) };
    let watcher = root.add("watcher", watcher).await.unwrap();

    target.ask(Inc(1)).await.unwrap();
    assert_eq!(heard.load(Ordering::SeqCst), 1);

    // Two restarts: each run registers once, and the previous run's
    // registration is gone, so one change is heard once.
    watcher.restart().await.unwrap();
    watcher.restart().await.unwrap();
    target.ask(Inc(1)).await.unwrap();
    assert_eq!(heard.load(Ordering::SeqCst), 2, "registered again on every restart");

    // Once the watcher stopped, nothing of it runs any more.
    watcher.shutdown().await.unwrap();
    target.ask(Inc(1)).await.unwrap();
    assert_eq!(heard.load(Ordering::SeqCst), 2, "outlived the component that registered it");
    bounded("shutdown", root.shutdown()).await.unwrap();
}

/// A message that blocks the mailbox until the test releases it.
struct Block(Arc<Notify>, Arc<Notify>);
impl Handler<Block> for Counter {
    type Reply = ();
    async fn handle(
        &mut self,
        Block(entered, release): Block,
        _: &mut Context<Self>,
    ) -> Result<()> {
        entered.notify_one();
        release.notified().await;
        Ok(())
    }
}

#[tokio::test]
async fn shutdown_overtakes_queued_messages() {
    let root = Container::root().await.unwrap();
    let c = root.add("c", Counter::default()).await.unwrap();
    let (entered, release) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    c.tell(Block(Arc::clone(&entered), Arc::clone(&release))).await.unwrap();
    bounded("block", entered.notified()).await;

    // 1,000 messages queue behind the blocked one, then a shutdown.
    let queued: Vec<_> = (0..1000)
        .map(|_| {
            let c = c.clone();
            tokio::spawn(async move { c.ask(Inc(1)).await })
        })
        .collect();
    // Every ask is queued (the mailbox holds them all) before the shutdown.
    bounded("queueing", async {
        while c.queued() < 1000 {
            tokio::task::yield_now().await;
        }
    })
    .await;
    let shutdown = tokio::spawn({
        let c = c.clone();
        async move { c.shutdown().await }
    });
    bounded("shutdown queued", async {
        while c.queued() < 1001 {
            tokio::task::yield_now().await;
        }
    })
    .await;
    release.notify_one();
    bounded("shutdown", shutdown).await.unwrap().unwrap();
    for ask in queued {
        let reply = bounded("ask", ask).await.unwrap();
        assert!(matches!(reply, Err(Error::Stopping(_))), "{reply:?}");
    }
    assert_eq!(c.snapshot().state.count, 0, "no queued message ran");
    bounded("root", root.shutdown()).await.unwrap();
}

/// Counts how often it ran.
struct Counted(Arc<AtomicUsize>);
impl Handler<Counted> for Counter {
    type Reply = ();
    async fn handle(&mut self, Counted(n): Counted, _: &mut Context<Self>) -> Result<()> {
        n.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn ask_deadlines_fire_while_the_component_waits_and_overdue_messages_never_run() {
    let root = Container::root().await.unwrap();
    let c = root.add("c", Counter::default()).await.unwrap();
    let (entered, release) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    let blocked = c.clone().with_timeout(Duration::from_millis(100));
    let running = tokio::spawn({
        let (entered, release) = (Arc::clone(&entered), Arc::clone(&release));
        async move { blocked.ask(Block(entered, release)).await }
    });
    bounded("block", entered.notified()).await;

    // Queued behind the blocked handler, with a later and an earlier deadline.
    let ran = Arc::new(AtomicUsize::new(0));
    let late = tokio::spawn({
        let c = c.clone().with_timeout(Duration::from_secs(60));
        let ran = Arc::clone(&ran);
        async move { c.ask(Counted(ran)).await }
    });
    let early = tokio::spawn({
        let c = c.clone().with_timeout(Duration::from_millis(50));
        let ran = Arc::clone(&ran);
        async move { c.ask(Counted(ran)).await }
    });
    let started = tokio::time::Instant::now();
    let reply = bounded("early ask", early).await.unwrap();
    assert!(matches!(reply, Err(Error::Timeout(d)) if d == Duration::from_millis(50)), "{reply:?}");
    assert!(started.elapsed() < Duration::from_millis(100), "answered at its own deadline");
    let reply = bounded("running ask", running).await.unwrap();
    assert!(matches!(reply, Err(Error::Timeout(_))), "the running ask times out too: {reply:?}");
    assert!(!late.is_finished(), "a later deadline is not due yet");

    release.notify_one();
    bounded("late ask", late).await.unwrap().unwrap();
    assert_eq!(ran.load(Ordering::SeqCst), 1, "the overdue message never ran");
    bounded("shutdown", root.shutdown()).await.unwrap();
}

#[tokio::test]
async fn a_full_mailbox_makes_senders_wait_and_loses_nothing() {
    let root = Container::root().await.unwrap();
    let c = root.add("c", Counter::default()).await.unwrap();
    let (entered, release) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    c.tell(Block(Arc::clone(&entered), Arc::clone(&release))).await.unwrap();
    bounded("block", entered.notified()).await;

    // The blocked handler's watchdog takes nothing (no deadlines): the lane
    // fills up to its capacity of 1,024.
    for _ in 0..1024 {
        bounded("tell with room", c.tell(Inc(1))).await.unwrap();
    }
    let waiting = tokio::spawn({
        let c = c.clone();
        async move { c.tell(Inc(1)).await }
    });
    // The 1,025th waits for room while the handler is blocked: on this
    // single-threaded runtime, yielding lets the sender run until it waits.
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
    assert!(!waiting.is_finished(), "a full mailbox took one more message");
    assert_eq!(c.queued(), 1024);

    release.notify_one();
    bounded("tell after room", waiting).await.unwrap().unwrap();
    assert_eq!(bounded("ask", c.ask(Inc(0))).await.unwrap(), 1025, "every message ran once");
    bounded("shutdown", root.shutdown()).await.unwrap();
}
