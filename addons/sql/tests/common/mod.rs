//! Helpers shared by the kinesis-sql integration tests.
#![allow(dead_code, unreachable_pub)] // each test binary uses a part

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use kinesis::persist::{conformance, Record, SharedStore, Store, StoreError};
use kinesis_sql::SqlStore;
use serde_json::{json, Map};
use tokio::sync::Barrier;

/// Whether this is a CI run, where a missing server fails the test.
pub fn ci() -> bool {
    std::env::var("CI").as_deref() == Ok("true")
}

/// The URL of a test server: `$var`, else `default`.
pub fn server_url(var: &str, default: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| default.to_owned())
}

/// Connects to the test server at `url`. When it cannot be reached: under
/// `CI=true` the test fails; otherwise it prints a notice and the test
/// returns early (`None`).
pub async fn connect_or_skip(var: &str, url: &str) -> Option<SqlStore> {
    match SqlStore::connect(url).await {
        Ok(store) => Some(store),
        Err(e) if ci() => panic!("CI=true and the test server of {var} is unreachable: {e}"),
        Err(e) => {
            eprintln!("NOTICE: skipped, the test server of {var} is unreachable ({e}); set {var}");
            None
        }
    }
}

/// `url` with the query parameters `extra` (`a=1&b=2`) added.
pub fn with_params(url: &str, extra: &str) -> String {
    if url.contains('?') {
        format!("{url}&{extra}")
    } else {
        format!("{url}?{extra}")
    }
}

/// `url` with the password `password` (and `default_user` if it names none).
pub fn set_password(url: &str, default_user: &str, password: &str) -> String {
    let start = url.find("://").expect("a URL") + 3;
    let end = url[start..].find(['/', '?']).map_or(url.len(), |i| start + i);
    let authority = &url[start..end];
    let (user, host) = match authority.rsplit_once('@') {
        Some((userinfo, host)) => (userinfo.split(':').next().unwrap_or(default_user), host),
        None => (default_user, authority),
    };
    format!("{}{user}:{password}@{host}{}", &url[..start], &url[end..])
}

/// A prefix no other test or run uses.
pub fn prefix(tag: &str) -> String {
    conformance::unique_prefix(tag)
}

/// A record of the tests: one field `writer`.
pub fn record(uri: &str, version: u64, writer: u64) -> Record {
    let mut fields = Map::new();
    fields.insert("writer".into(), json!(writer));
    Record::new(uri, "kinesis_sql::tests::Probe", version, fields)
}

/// Removes every record under `prefix`.
pub async fn cleanup(store: &SharedStore, prefix: &str) {
    for uri in store.list(prefix).await.expect("list for cleanup") {
        store.delete(&uri).await.expect("delete for cleanup");
    }
}

/// Writers on two stores (two pools, as two processes would have) race for
/// `rounds` rounds on one record, all released together each round: exactly
/// one wins per round, all others get `Conflict`, and both stores then read
/// the winner's record.
pub async fn race_two_pools(
    a: SharedStore,
    b: SharedStore,
    prefix: &str,
    per_store: usize,
    rounds: u64,
) {
    let uri = format!("{prefix}/contended");
    let writers = per_store * 2;
    let mut wins_per_store = [0u64; 2];
    for round in 0..rounds {
        let barrier = Arc::new(Barrier::new(writers));
        let mut tasks = Vec::new();
        for writer in 0..writers {
            let store = if writer % 2 == 0 { a.clone() } else { b.clone() };
            let barrier = barrier.clone();
            let record = record(&uri, round + 1, writer as u64);
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                store.save(&record, round).await
            }));
        }
        let mut winners = Vec::new();
        for (writer, task) in tasks.into_iter().enumerate() {
            match task.await.expect("writer task") {
                Ok(()) => winners.push(writer),
                Err(StoreError::Conflict { uri: u, expected, found }) => {
                    assert_eq!((u.as_str(), expected), (uri.as_str(), round));
                    assert!(found > Some(round), "found {found:?} in round {round}");
                }
                Err(e) => panic!("writer {writer}, round {round}: {e}"),
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: winners {winners:?}");
        wins_per_store[winners[0] % 2] += 1;
        for store in [&a, &b] {
            let stored = store.load(&uri).await.unwrap().expect("record after the round");
            assert_eq!(stored.version, round + 1);
            assert_eq!(stored.fields["writer"], json!(winners[0] as u64));
        }
    }
    eprintln!("race over {rounds} rounds: wins per pool {wins_per_store:?}");
}

/// Saves versions 1..=n of `uri`, riding out failures: after a failed save
/// it reloads (retrying until the store answers) and continues from what is
/// stored. Returns the last acknowledged record.
pub async fn write_through_outages(
    store: &dyn Store,
    uri: &str,
    n: u64,
    errors: &AtomicU64,
) -> Record {
    let mut acked: Option<Record> = None;
    let mut attempt = 0;
    while acked.as_ref().map_or(0, |r| r.version) < n {
        let expected = acked.as_ref().map_or(0, |r| r.version);
        attempt += 1;
        let next = record(uri, expected + 1, attempt);
        match store.save(&next, expected).await {
            Ok(()) => acked = Some(next),
            Err(StoreError::Backend(_)) => {
                errors.fetch_add(1, Ordering::SeqCst);
                // The save may or may not have landed: ask the store.
                let stored = loop {
                    match store.load(uri).await {
                        Ok(r) => break r,
                        Err(StoreError::Backend(_)) => {
                            tokio::time::sleep(Duration::from_millis(20)).await
                        }
                        Err(e) => panic!("{uri}: reload failed: {e}"),
                    }
                };
                if stored.as_ref() == Some(&next) {
                    acked = stored;
                } else {
                    assert_eq!(
                        stored, acked,
                        "{uri}: the store holds neither the acknowledged nor the failed save"
                    );
                }
            }
            Err(e) => panic!("{uri}: save {} failed: {e}", expected + 1),
        }
    }
    acked.expect("n > 0")
}
