//! ETags, snapshots, callbacks and subscriptions.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Counter, Get, Inc};
use kinesis::{Change, Container, Error, Position, Precondition, Stage};

#[tokio::test]
async fn stale_etag_replace_is_refused_and_current_one_bumps_version_and_etag() {
    let root = Container::root().await.unwrap();
    let c = root.add("c", Counter::default()).await.unwrap();
    let first = c.snapshot();
    c.ask(Inc(1)).await.unwrap();
    let current = c.snapshot();
    assert_ne!(first.etag, current.etag);

    let err =
        c.replace(Counter { count: 99, ..Counter::default() }, &first.etag).await.unwrap_err();
    assert_eq!(err, Error::Conflict { current: current.etag });
    assert_eq!(c.snapshot().state.count, 1);

    let replaced =
        c.replace(Counter { count: 99, ..Counter::default() }, &current.etag).await.unwrap();
    assert_eq!(replaced.state.count, 99);
    assert_eq!(replaced.version, current.version + 1);
    assert_ne!(replaced.etag, current.etag);
    root.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_same_state_gives_the_same_etag_and_no_new_version() {
    let root = Container::root().await.unwrap();
    let a = root.add("a", Counter { count: 5, ..Counter::default() }).await.unwrap();
    let b = root.add("b", Counter::default()).await.unwrap();
    b.ask(Inc(5)).await.unwrap();
    assert_eq!(a.etag(), b.etag(), "same state, same etag");
    let v = b.snapshot().version;
    b.ask(Inc(0)).await.unwrap();
    assert_eq!(b.snapshot().version, v, "no change, no new version");
    // A known value: the etag depends only on the serialised state.
    assert_eq!(a.etag(), kinesis::ETag::of(br#"{"count":5}"#, None));
    root.shutdown().await.unwrap();
}

#[tokio::test]
async fn callbacks_run_head_before_tail_and_are_removed_by_id() {
    let root = Container::root().await.unwrap();
    let c = root.add("c", Counter::default()).await.unwrap();
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let cb = |name: &'static str| {
        let seen = seen.clone();
        move |change: Change<Counter>| {
            let seen = seen.clone();
            async move {
                if let Change::Updated { curr, .. } = change {
                    seen.lock().unwrap().push(format!("{name}:{}", curr.state.count));
                }
            }
        }
    };
    let t1 = c.on_change(Position::Tail, cb("t1"));
    let _t2 = c.on_change(Position::Tail, cb("t2"));
    let h1 = c.on_change(Position::Head, cb("h1"));
    let _h2 = c.on_change(Position::Head, cb("h2"));
    c.ask(Inc(1)).await.unwrap();
    c.ask(Get).await.unwrap(); // callbacks of the previous change ran before this
    assert_eq!(*seen.lock().unwrap(), ["h2:1", "h1:1", "t1:1", "t2:1"]);
    seen.lock().unwrap().clear();
    assert!(c.remove_callback(t1));
    assert!(c.remove_callback(h1));
    assert!(!c.remove_callback(h1), "removing twice says so");
    c.ask(Inc(1)).await.unwrap();
    c.ask(Get).await.unwrap();
    assert_eq!(*seen.lock().unwrap(), ["h2:2", "t2:2"]);
    root.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_slow_callback_is_cut_off_by_its_timeout() {
    let root = Container::root().await.unwrap();
    let c = root.add("c", Counter::default()).await.unwrap();
    let finished = Arc::new(Mutex::new(0));
    let f = finished.clone();
    c.on_change(Position::Tail, move |_change: Change<Counter>| {
        let f = f.clone();
        async move {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            *f.lock().unwrap() += 1;
        }
    });
    let start = tokio::time::Instant::now();
    c.ask(Inc(1)).await.unwrap();
    assert_eq!(c.ask(Inc(1)).await.unwrap(), 2);
    let waited = start.elapsed();
    assert!(waited >= Duration::from_secs(4) && waited < Duration::from_secs(10), "{waited:?}");
    assert_eq!(*finished.lock().unwrap(), 0, "the slow callback never completed");
    root.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_subscriber_that_never_reads_does_not_slow_the_component_and_then_lags() {
    let root = Container::root().await.unwrap();
    let c = root.add("c", Counter::default()).await.unwrap();
    let mut lazy = c.subscribe();
    let t = Instant::now();
    for _ in 0..2000 {
        c.ask(Inc(1)).await.unwrap();
    }
    assert!(t.elapsed() < Duration::from_secs(5));
    match lazy.recv().await {
        Err(lagged) => assert!(lagged.missed >= 2000 - 256, "{lagged:?}"),
        Ok(other) => panic!("expected Lagged, got {other:?}"),
    }
    // After the lag it continues with the changes still queued, ending at the newest.
    let mut last = 0;
    while let Ok(Some(change)) = lazy.try_recv() {
        if let Change::Updated { curr, .. } = change {
            assert!(curr.state.count > last);
            last = curr.state.count;
        }
    }
    assert_eq!(last, 2000);
    root.shutdown().await.unwrap();
}

#[tokio::test]
async fn subscribers_see_updates_and_the_stop_then_the_end() {
    let root = Container::root().await.unwrap();
    let c = root.add("c", Counter::default()).await.unwrap();
    let mut sub = c.subscribe();
    c.ask(Inc(2)).await.unwrap();
    match sub.recv().await.unwrap().unwrap() {
        Change::Updated { prev, curr } => {
            assert_eq!((prev.state.count, curr.state.count), (0, 2));
            assert_eq!(curr.version, prev.version + 1);
        }
        other => panic!("{other:?}"),
    }
    c.shutdown().await.unwrap();
    let mut stages = Vec::new();
    while let Some(change) = sub.recv().await.unwrap() {
        if let Change::Stage { curr, .. } = change {
            stages.push(curr);
        }
    }
    assert_eq!(stages, [Stage::Stopping, Stage::Stopped, Stage::TearingDown, Stage::TornDown]);
    root.shutdown().await.unwrap();
}

#[derive(Clone, Default, Debug, serde::Serialize, serde::Deserialize)]
struct WithClient {
    value: u64,
    #[serde(skip)]
    client: Option<Arc<String>>,
}

impl kinesis::Component for WithClient {
    fn restore_skipped(&mut self, previous: &Self) {
        self.client = previous.client.clone();
    }
}

#[tokio::test]
async fn json_replace_and_patch_keep_skipped_fields_through_restore_skipped() {
    let root = Container::root().await.unwrap();
    let h = root
        .add("w", WithClient { value: 1, client: Some(Arc::new("pool".into())) })
        .await
        .unwrap();
    let dynamic = root.get_dyn("w").unwrap();
    let etag = h.etag().into();
    dynamic.replace_json(serde_json::json!({"value": 2}), etag).await.unwrap();
    dynamic.merge_patch_json(serde_json::json!({"value": 3}), Precondition::Any).await.unwrap();
    let snap = h.snapshot();
    assert_eq!(snap.state.value, 3);
    assert_eq!(snap.state.client.as_deref().map(String::as_str), Some("pool"));
    root.shutdown().await.unwrap();
}

/// The versions of the updates in `replay`.
fn versions(replay: &kinesis::Replay<Counter>) -> Vec<u64> {
    match replay {
        kinesis::Replay::Updates(updates) => updates.iter().map(|s| s.version).collect(),
        kinesis::Replay::TooOld => panic!("expected a replay, got TooOld"),
    }
}

/// The version of the next update on `sub` (a lag fails the test: the
/// tests keep fewer updates in flight than a subscription holds).
async fn next_version(sub: &mut kinesis::Subscription<Counter>) -> u64 {
    tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match sub.recv().await {
                Ok(Some(Change::Updated { curr, .. })) => return curr.version,
                Ok(_) => continue,
                Err(lagged) => panic!("the subscription lagged: {lagged}"),
            }
        }
    })
    .await
    .expect("an update within 5 s")
}

#[tokio::test]
async fn a_resumed_watcher_gets_exactly_the_updates_it_missed_then_the_live_ones() {
    let root = Container::root().await.unwrap();
    let c = root.add("c", Counter::default()).await.unwrap();
    // A watcher sees version 1, then goes away; three updates follow.
    drop(c.subscribe());
    for _ in 0..3 {
        c.ask(Inc(1)).await.unwrap();
    }
    assert_eq!(c.snapshot().version, 4);
    let (replay, mut live) = c.resume(1);
    assert_eq!(versions(&replay), [2, 3, 4]);
    let kinesis::Replay::Updates(updates) = &replay else { unreachable!() };
    assert_eq!(updates.iter().map(|s| s.state.count).collect::<Vec<_>>(), [1, 2, 3]);
    // Nothing missed: an empty replay, and the subscription goes on after it.
    assert_eq!(versions(&c.resume(4).0), Vec::<u64>::new());
    c.ask(Inc(1)).await.unwrap();
    assert_eq!(next_version(&mut live).await, 5);
    root.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_version_older_than_the_history_or_from_the_future_is_too_old() {
    let root = Container::root().await.unwrap();
    let c = root.add("c", Counter::default()).await.unwrap();
    drop(c.subscribe());
    for _ in 0..70 {
        c.ask(Inc(1)).await.unwrap();
    }
    // 70 updates, 64 kept: versions 8 to 71.
    assert!(matches!(c.resume(6).0, kinesis::Replay::TooOld));
    assert_eq!(versions(&c.resume(7).0), (8..=71).collect::<Vec<_>>());
    assert!(matches!(c.resume(72).0, kinesis::Replay::TooOld), "not a version of this run");
    root.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resuming_while_updates_land_misses_and_repeats_nothing() {
    let root = Container::root().await.unwrap();
    let c = root.add("c", Counter::default()).await.unwrap();
    drop(c.subscribe());
    // 250 updates in all, resumed from about version 95: fewer than the
    // 256 a subscription holds arrive live, so none can be lost to lag.
    let writer = {
        let c = c.clone();
        tokio::spawn(async move {
            for _ in 0..250 {
                c.ask(Inc(1)).await.unwrap();
            }
        })
    };
    // Resume from a few versions back while the writer runs.
    while c.snapshot().version < 100 {
        tokio::task::yield_now().await;
    }
    let since = c.snapshot().version - 5;
    let (replay, mut live) = c.resume(since);
    let mut seen = versions(&replay);
    let last = 251;
    while seen.last().copied().unwrap_or(since) < last {
        seen.push(next_version(&mut live).await);
    }
    writer.await.unwrap();
    assert_eq!(seen, (since + 1..=last).collect::<Vec<_>>(), "every version once, in order");
    root.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_reaches_subscribers_and_the_history_before_its_ask_returns() {
    let root = Container::root().await.unwrap();
    let c = root.add("c", Counter::default()).await.unwrap();
    let mut sub = c.subscribe();
    for _ in 0..2000 {
        c.ask(Inc(1)).await.unwrap();
        let version = c.snapshot().version;
        // Already queued for the subscriber: no waiting.
        match sub.try_recv() {
            Ok(Some(Change::Updated { curr, .. })) => assert_eq!(curr.version, version),
            other => panic!("version {version} not yet sent to subscribers: {other:?}"),
        }
        // Already in the history.
        assert_eq!(versions(&c.resume(version - 1).0), [version]);
    }
    root.shutdown().await.unwrap();
}
