//! Mailbox: ordering, ask/tell/batch, rollback, panics, queued callers,
//! reads that never queue.
//!
//! No test waits on the wall clock to order events: tests that need a busy
//! mailbox hold it with a gate or run on paused time (where a handler's
//! `Sleep` is virtual and [`queued`] waits until spawned callers reached the mailbox).

mod common;
mod support;

use std::sync::Arc;
use std::time::Duration;

use common::{counter, Counter, Get, Inc, IncThenFail, IncThenPanic, Log, Sleep};
use kinesis::{
    Component, Container, Context, Control, Error, Handler, Precondition, RestartPolicy, Result,
    Stage,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use support::{within, Gate};

/// 1,000 concurrent asks from 50 tasks on 2 threads all get distinct replies
/// and are all counted; at most one new version per message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_concurrent_asks_all_answered_and_counted() {
    let root = Container::root().await.unwrap();
    let c = root.add("c", Counter::default()).await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let c = c.clone();
        tasks.push(tokio::spawn(async move {
            let mut replies = Vec::new();
            for _ in 0..20 {
                replies.push(c.ask(Inc(1)).await.unwrap());
            }
            replies
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all.sort_unstable();
    assert_eq!(all, (1..=1000).collect::<Vec<u64>>(), "every reply is a distinct count");
    assert_eq!(c.ask(Get).await.unwrap(), 1000);
    assert_eq!(c.snapshot().state.count, 1000);
    // Group commit: one version per committed group, at most one per message.
    let version = c.snapshot().version;
    assert!((2..=1001).contains(&version), "{version}");
    root.shutdown().await.unwrap();
}

/// Messages from one sender are handled in the order they were sent.
#[tokio::test]
async fn messages_from_one_sender_are_handled_in_order() {
    let root = Container::root().await.unwrap();
    let c = root.add("c", Counter::default()).await.unwrap();
    for i in 1..=100u64 {
        c.tell(Inc(i)).await.unwrap();
    }
    // The ask is queued behind all tells, so it sees all of them.
    assert_eq!(c.ask(Get).await.unwrap(), 5050);
    root.shutdown().await.unwrap();
}

/// A handler error leaves state, version and ETag as before the message.
#[tokio::test]
async fn a_failing_handler_rolls_back_and_publishes_nothing() {
    let root = Container::root().await.unwrap();
    let c = root.add("c", Counter::default()).await.unwrap();
    c.ask(Inc(2)).await.unwrap();
    let before = c.snapshot();
    let err = c.ask(IncThenFail(40)).await.unwrap_err();
    assert_eq!(err, Error::Handler("refused".into()));
    let after = c.snapshot();
    assert_eq!((after.state.count, after.version, after.etag), (2, before.version, before.etag));
    assert_eq!(c.ask(Inc(1)).await.unwrap(), 3, "the handler's change did not leak");
    root.shutdown().await.unwrap();
}

/// A batch is one unit: one new version on success; on failure nothing is
/// kept or published and the error names the failing message.
#[tokio::test]
async fn batch_is_all_or_nothing() {
    let root = Container::root().await.unwrap();
    let c = root.add("c", Counter::default()).await.unwrap();
    assert_eq!(c.batch(vec![Inc(1), Inc(2), Inc(3)]).await.unwrap(), [1, 3, 6]);
    assert_eq!(c.snapshot().version, 2, "one batch, one new version");
    let before = c.snapshot();
    let mut sub = c.subscribe();
    let err = c.batch(vec![IncThenFail(5)]).await.unwrap_err();
    assert!(err.to_string().contains("batch message 0"), "{err}");
    assert_eq!(c.snapshot().etag, before.etag);
    assert_eq!(c.snapshot().state.count, 6);
    assert!(matches!(sub.try_recv(), Ok(None)), "a failed batch publishes nothing");
    root.shutdown().await.unwrap();
}

/// A panic answers `Panicked`, restores the last committed state, and the
/// restart policy restarts the component (its backoff passes on paused time).
#[tokio::test(start_paused = true)]
async fn a_panicking_handler_is_contained_and_the_state_is_the_last_good_one() {
    let root = Container::root().await.unwrap();
    let log = Log::default();
    let policy = RestartPolicy::on_failure()
        .with_backoff(Duration::from_millis(1), Duration::from_millis(2));
    let c = root.add("c", Counter { policy: Some(policy), ..counter(&log) }).await.unwrap();
    let other = root.add("other", counter(&log)).await.unwrap();
    c.ask(Inc(7)).await.unwrap();
    let err = c.ask(IncThenPanic(100)).await.unwrap_err();
    assert!(matches!(&err, Error::Panicked(m) if m.contains("boom at 107")), "{err}");
    assert_eq!(c.snapshot().state.count, 7);
    // The component was restarted by its policy and keeps working.
    assert_eq!(c.ask(Inc(1)).await.unwrap(), 8);
    assert_eq!(c.stage(), Stage::Started);
    assert_eq!(other.ask(Inc(1)).await.unwrap(), 1, "other components are unaffected");
    assert!(log.get().contains(&"stop c".to_owned()), "restart ran stop: {:?}", log.get());
    root.shutdown().await.unwrap();
}

/// With the default policy a panic stops the component for good and reports
/// the failure to its container.
#[tokio::test]
async fn a_panic_with_the_default_policy_stops_the_component_and_escalates() {
    let root = Container::root().await.unwrap();
    let c = root.add("c", Counter::default()).await.unwrap();
    assert!(matches!(c.ask(IncThenPanic(1)).await, Err(Error::Panicked(_))));
    c.wait_for_stage(Stage::TornDown).await;
    assert!(root.names().is_empty());
    let failures = root.failures();
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0].uri, "/root/c");
    assert!(failures[0].error.contains("boom"));
    root.shutdown().await.unwrap();
}

/// Callers queued before a `Shutdown` are answered; those after it get
/// `Stopping`. On paused time: the `Sleep` holding the mailbox is virtual, and
/// [`support::queued`] makes sure each group of callers has reached the mailbox
/// before the next is sent.
#[tokio::test(start_paused = true)]
async fn queued_callers_get_stopping_when_the_component_stops_for_good() {
    let root = Container::root().await.unwrap();
    let c = root.add("c", Counter::default()).await.unwrap();
    // Occupy the mailbox, queue asks and a shutdown, then more asks.
    c.tell(Sleep(Duration::from_millis(600))).await.unwrap();
    support::queued(&c, 0).await;
    let before: Vec<_> = (0..5)
        .map(|_| {
            tokio::spawn({
                let c = c.clone();
                async move { c.ask(Inc(1)).await }
            })
        })
        .collect();
    support::queued(&c, 5).await;
    let stop = tokio::spawn({
        let c = c.clone();
        async move { c.control(Control::Shutdown).await }
    });
    support::queued(&c, 6).await;
    assert!(!stop.is_finished(), "the shutdown is queued behind the held mailbox");
    let after: Vec<_> = (0..5)
        .map(|_| {
            tokio::spawn({
                let c = c.clone();
                async move { c.ask(Inc(1)).await }
            })
        })
        .collect();
    for t in before {
        // Shutdown overtakes queued messages: accepted before it, still refused.
        assert!(
            matches!(t.await.unwrap(), Err(Error::Stopping(_))),
            "queued behind the running message: overtaken by the shutdown"
        );
    }
    stop.await.unwrap().unwrap();
    for t in after {
        assert!(
            matches!(t.await.unwrap(), Err(Error::Stopping(_))),
            "after the shutdown: Stopping"
        );
    }
    assert_eq!(c.snapshot().state.count, 0, "no queued message ran");
    root.shutdown().await.unwrap();
}

/// Messages sent while a component restarts wait for the restart and are
/// handled after it. On paused time: the restart's 500 ms wait is virtual,
/// and the test waits for the `Restarting` stage instead of sleeping.
#[tokio::test(start_paused = true)]
async fn messages_sent_during_a_restart_wait_and_are_handled_after_it() {
    let root = Container::root().await.unwrap();
    let log = Log::default();
    let c = root.add("c", counter(&log)).await.unwrap();
    let restart = tokio::spawn({
        let c = c.clone();
        async move { c.control(Control::RestartAfter(Duration::from_millis(500))).await }
    });
    within("the restart to begin", c.wait_for_stage(Stage::Restarting)).await;
    assert_eq!(c.stage(), Stage::Restarting);
    let reply = c.ask(Inc(1)).await.unwrap();
    assert_eq!(reply, 1);
    restart.await.unwrap().unwrap();
    assert_eq!(c.stage(), Stage::Started);
    assert_eq!(log.take(), ["start c", "stop c", "start c"]);
    root.shutdown().await.unwrap();
}

/// An ask behind a (virtual) 10 s handler answers `Timeout` after the
/// handle's 50 ms.
#[tokio::test(start_paused = true)]
async fn ask_times_out() {
    let root = Container::root().await.unwrap();
    let c = root.add("c", Counter::default()).await.unwrap();
    let short = c.clone().with_timeout(Duration::from_millis(50));
    c.tell(Sleep(Duration::from_secs(10))).await.unwrap();
    assert_eq!(short.ask(Get).await.unwrap_err(), Error::Timeout(Duration::from_millis(50)));
    root.shutdown().await.unwrap();
}

/// A handle taken before a restart still reaches the component, whose state
/// survives; a handle of the wrong type is refused.
#[tokio::test]
async fn handles_stay_valid_across_restarts() {
    let root = Container::root().await.unwrap();
    let c = root.add("c", Counter::default()).await.unwrap();
    let again = root.get::<Counter>("c").unwrap();
    assert!(again.same_component(&c));
    c.ask(Inc(3)).await.unwrap();
    c.restart().await.unwrap();
    assert_eq!(again.ask(Inc(1)).await.unwrap(), 4, "state and handle survive a restart");
    assert!(matches!(root.get::<kinesis::Container>("c"), Err(Error::Invalid(_))));
    let _ = Arc::new(());
    root.shutdown().await.unwrap();
}

/// Starts one queued call on a handle.
type QueuedCall<T> = Box<dyn FnOnce(kinesis::Handle<Counter>) -> tokio::task::JoinHandle<T>>;

/// Queues operations behind a mailbox held by a (virtual) 500 ms `Sleep`, in
/// order, and returns their join handles. Needs paused time: each operation
/// has reached the mailbox before the next is started.
async fn queued<T: Send + 'static>(
    c: &kinesis::Handle<Counter>,
    ops: Vec<QueuedCall<T>>,
) -> Vec<tokio::task::JoinHandle<T>> {
    c.tell(Sleep(Duration::from_millis(500))).await.unwrap();
    support::queued(c, 0).await;
    let mut out = Vec::new();
    for op in ops {
        out.push(op(c.clone()));
        support::queued(c, out.len()).await;
    }
    assert!(out.iter().all(|t| !t.is_finished()), "the operations wait behind the sleep");
    out
}

/// In a group of queued mutations, a failing one is undone alone; the group
/// is committed once.
#[tokio::test(start_paused = true)]
async fn group_commit_undoes_only_the_failing_message_of_a_group() {
    let root = Container::root().await.unwrap();
    let c = root.add("c", Counter::default()).await.unwrap();
    let v0 = c.snapshot().version;
    let tasks = queued(
        &c,
        vec![
            Box::new(|c| tokio::spawn(async move { c.ask(Inc(1)).await.map(|_| ()) })),
            Box::new(|c| tokio::spawn(async move { c.ask(IncThenFail(100)).await })),
            Box::new(|c| tokio::spawn(async move { c.ask(Inc(2)).await.map(|_| ()) })),
        ],
    )
    .await;
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.unwrap());
    }
    assert!(results[0].is_ok() && results[2].is_ok(), "{results:?}");
    assert_eq!(results[1], Err(Error::Handler("refused".into())));
    let snap = c.snapshot();
    assert_eq!(snap.state.count, 3, "only the failing message was undone");
    assert_eq!(snap.version, v0 + 1, "the group was committed once");
    root.shutdown().await.unwrap();
}

/// Two queued replaces read at the same ETag: the first wins, the second
/// gets `Conflict`.
#[tokio::test(start_paused = true)]
async fn conditional_replaces_in_a_busy_mailbox_never_lose_an_update() {
    let root = Container::root().await.unwrap();
    let c = root.add("c", Counter::default()).await.unwrap();
    let etag = c.etag();
    let tasks = queued(
        &c,
        vec![
            Box::new(move |c| {
                tokio::spawn(async move {
                    c.replace(Counter { count: 10, ..Counter::default() }, &etag).await.map(|_| ())
                })
            }),
            Box::new(move |c| {
                tokio::spawn(async move {
                    c.replace(Counter { count: 20, ..Counter::default() }, &etag).await.map(|_| ())
                })
            }),
        ],
    )
    .await;
    let first = tasks.into_iter().map(|t| async { t.await.unwrap() });
    let results: Vec<_> = futures::future::join_all(first).await;
    assert!(results[0].is_ok());
    assert!(matches!(results[1], Err(Error::Conflict { .. })), "{results:?}");
    assert_eq!(c.snapshot().state.count, 10);
    root.shutdown().await.unwrap();
}

/// A component whose handler can hold the mailbox, with a read-only method.
#[derive(Clone, Default, Serialize, Deserialize)]
struct Board {
    entries: Vec<u64>,
    #[serde(skip)]
    gate: Gate,
}

impl Component for Board {}

#[kinesis::handlers]
impl Board {
    /// The entries (read-only: runs on the latest snapshot).
    pub fn entries(&self) -> Vec<u64> {
        self.entries.clone()
    }

    /// Appends a number (mutating: goes through the mailbox).
    pub fn append(&mut self, n: u64) -> usize {
        self.entries.push(n);
        self.entries.len()
    }
}

/// Appends a number; answers the number of entries.
struct Push(u64);
impl Handler<Push> for Board {
    type Reply = usize;
    async fn handle(&mut self, Push(n): Push, _: &mut Context<Self>) -> Result<usize> {
        self.entries.push(n);
        Ok(self.entries.len())
    }
}

/// Holds the mailbox until the test opens the gate.
struct Hold;
impl Handler<Hold> for Board {
    type Reply = ();
    async fn handle(&mut self, _: Hold, _: &mut Context<Self>) -> Result<()> {
        self.gate.hold().await;
        Ok(())
    }
}

/// Reads never queue behind messages: while a handler holds the mailbox and
/// more messages wait behind it, `snapshot()`, a read-only `&self` method and
/// the same method called as JSON through `DynComponent` all answer, with
/// the last committed state, before the handler is let go.
#[tokio::test]
async fn snapshot_reads_do_not_queue_behind_messages() {
    let root = Container::root().await.unwrap();
    let gate = Gate::default();
    let b = root.add("board", Board { gate: gate.clone(), ..Board::default() }).await.unwrap();
    assert_eq!(b.ask(Push(1)).await.unwrap(), 1);
    let committed = b.snapshot();

    // Hold the mailbox, then queue messages behind the held handler.
    b.tell(Hold).await.unwrap();
    gate.entered().await;
    for n in 2..=5 {
        b.tell(Push(n)).await.unwrap();
    }

    // Each read must answer while the handler is held: the gate opens only
    // after all of them, so a read that waited for the mailbox times out.
    // `snapshot()` is synchronous, so it runs on a blocking thread: a
    // snapshot that waited for the mailbox fails the bound instead of
    // hanging the runtime.
    let reader = b.clone();
    let snap =
        within("snapshot()", tokio::task::spawn_blocking(move || reader.snapshot())).await.unwrap();
    assert_eq!(snap.state.entries, [1]);
    assert_eq!((snap.version, snap.etag), (committed.version, committed.etag));
    let typed = within("the read-only method", b.entries()).await.unwrap();
    assert_eq!(typed, [1]);
    let d = root.get_dyn("board").unwrap();
    let json = within(
        "the read-only method as JSON",
        d.call_json("entries", json!({}), Precondition::Any),
    )
    .await
    .unwrap();
    assert_eq!(json, json!([1]));

    // Let go: the queued messages run, in order, after the held handler.
    gate.release();
    assert_eq!(b.ask(Push(6)).await.unwrap(), 6);
    assert_eq!(b.snapshot().state.entries, [1, 2, 3, 4, 5, 6]);
    root.shutdown().await.unwrap();
}

/// Calls by name (the remote surfaces' path) do not wait for room in a full
/// mailbox: each is refused at once with `Error::Overloaded`, which is
/// retryable, and nothing of it is handled; the messages already queued are.
#[tokio::test]
async fn calls_by_name_are_refused_when_the_mailbox_is_full() {
    let root = Container::root().await.unwrap();
    let gate = Gate::default();
    let b = root.add("board", Board { gate: gate.clone(), ..Board::default() }).await.unwrap();
    b.tell(Hold).await.unwrap();
    gate.entered().await;
    // Fill the mailbox behind the held handler: `tell` waits only when full,
    // so every one of these is queued before the next starts.
    let capacity = 1024;
    for n in 0..capacity {
        b.tell(Push(n)).await.unwrap();
    }
    assert_eq!(b.queued(), 1024);

    let d = root.get_dyn("board").unwrap();
    let refused = [
        within("a call by name", d.call_json("append", json!({"n": 7}), Precondition::Any)).await,
        within("a batch by name", d.batch_json(vec![], Precondition::Any))
            .await
            .map(|_| json!(null)),
        within("a JSON replace", d.replace_json(json!({"entries": []}), Precondition::Any))
            .await
            .map(|_| json!(null)),
        within("a JSON merge patch", d.merge_patch_json(json!({"entries": []}), Precondition::Any))
            .await
            .map(|_| json!(null)),
    ];
    for r in &refused {
        let err = r.as_ref().unwrap_err();
        assert!(matches!(err, Error::Overloaded(uri) if uri == "/root/board"), "{err:?}");
        assert!(err.is_retryable());
    }

    gate.release();
    assert_eq!(b.ask(Push(9)).await.unwrap(), 1025, "the queued messages ran, the refused did not");
    root.shutdown().await.unwrap();
}
