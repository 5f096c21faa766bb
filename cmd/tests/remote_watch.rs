//! A `Remote<Counter>` watch across a restart of the real binary: every
//! change arrives once, in order, and none is repeated, although the new
//! process numbers versions from 1 again.

mod common;

use std::time::{Duration, Instant};

use futures::StreamExt;
use kinesis::remote::RemoteChange;
use kinesis_client::Client;
use kinesis_cmd::demo::{Counter, CounterHandle};

/// The count a change leaves, if it is a snapshot or an update.
fn count_of(change: &RemoteChange<Counter>) -> Option<u64> {
    match change {
        RemoteChange::Snapshot(s) => Some(s.state.count),
        RemoteChange::Updated { snapshot, .. } => Some(snapshot.state.count),
        _ => None,
    }
}

/// Polls `/_kinesis/diagnostics` until `/root/counter` has a subscriber
/// (the watch reconnected), within 20 s.
async fn wait_for_watcher(client: &Client) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(diagnostics) = client.runtime_resource("diagnostics").await {
            let text = diagnostics.to_string();
            let counter = diagnostics["components"]
                .as_array()
                .and_then(|all| all.iter().find(|c| c["uri"] == "/root/counter"))
                .cloned();
            if counter.is_some_and(|c| c["subscribers"].as_u64() >= Some(1)) {
                return;
            }
            assert!(Instant::now() < deadline, "the watch did not come back: {text}");
        }
        assert!(Instant::now() < deadline, "the runtime did not answer");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_watch_resumes_across_a_restart_without_missing_or_repeating() {
    let dir = tempfile::tempdir().unwrap();
    let addr = common::free_addr();
    let mut first = common::spawn_at(dir.path(), &addr, &[], &[]);
    let client = Client::new(format!("http://{addr}")).unwrap();
    let counter = client.remote::<Counter>("/root/counter");
    // The watch is driven by a task of its own, so it reconnects while the
    // test does other things.
    let mut watch = counter.watch();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(change) = watch.next().await {
            if tx.send(change).is_err() {
                return;
            }
        }
    });
    let mut seen: Vec<(String, u64)> = Vec::new();
    let mut next = async || {
        tokio::time::timeout(Duration::from_secs(20), rx.recv())
            .await
            .expect("a change within 20 s")
            .expect("the watch goes on")
            .expect("no error")
    };

    // The first process: a snapshot, then three updates.
    let start_snapshot = next().await;
    wait_for_watcher(&client).await;
    let first_run = match client.dyn_remote("/root/counter").watch().next().await {
        Some(Ok(event)) => event.run().expect("the HTTP add-on names its run").to_owned(),
        other => panic!("a snapshot event, got {other:?}"),
    };
    let mut first_versions = Vec::new();
    assert!(matches!(start_snapshot, RemoteChange::Snapshot(_)), "{start_snapshot:?}");
    seen.push(("snapshot".into(), count_of(&start_snapshot).unwrap()));
    for expected in 1..=3 {
        assert_eq!(counter.increment(None).await.unwrap(), expected);
        let change = next().await;
        let RemoteChange::Updated { prev_version, snapshot } = &change else {
            panic!("expected an update, got {change:?}");
        };
        assert_eq!(snapshot.version, prev_version + 1);
        seen.push(("updated".into(), snapshot.state.count));
        first_versions.push((snapshot.version, snapshot.state.count));
    }

    // Restart: stop the first process (its store keeps the count), start a
    // second one on the same address and data.
    first.signal(15);
    assert!(first.wait().success());
    let _second = common::spawn_at(dir.path(), &addr, &[], &[]);
    wait_for_watcher(&client).await;

    // The second process: three more updates. The state the watch found on
    // reconnecting is the one it had (same ETag), so it is not repeated.
    for expected in 4..=6 {
        assert_eq!(counter.increment(None).await.unwrap(), expected);
        let change = next().await;
        seen.push((
            match change {
                RemoteChange::Snapshot(_) => "snapshot".into(),
                _ => "updated".into(),
            },
            count_of(&change).unwrap_or_else(|| panic!("a state change, got {change:?}")),
        ));
    }
    let counts: Vec<u64> = seen.iter().map(|(_, c)| *c).collect();
    assert_eq!(counts, [0, 1, 2, 3, 4, 5, 6], "every change once, in order: {seen:?}");
    assert!(seen[1..].iter().all(|(kind, _)| kind == "updated"), "{seen:?}");

    // The second process numbers from 1 again, so the last version the
    // first process sent is one the second also had, for another state. A
    // watch resuming from it, naming the first run, starts with the state
    // as it is now (a snapshot: the versions in between are of another
    // run), not with the second run's updates after that number as if they
    // followed the first run's state.
    let now = counter.snapshot().await.unwrap();
    let (version, old_count) = *first_versions.last().unwrap();
    assert!(version < now.version, "{first_versions:?} against {}", now.version);
    assert_ne!(old_count, now.state.count);
    let resume = kinesis::remote::Resume { version, run: Some(first_run) };
    let mut resumed = counter
        .watch_with(kinesis::remote::WatchOptions { since: Some(resume), ..Default::default() });
    let first = tokio::time::timeout(Duration::from_secs(10), resumed.next())
        .await
        .expect("the resumed watch starts with the state now")
        .unwrap()
        .unwrap();
    assert!(matches!(&first, RemoteChange::Snapshot(s) if s.state.count == 6), "{first:?}");
}
