//! The key-value store component: compare-and-set under concurrent writers,
//! expiry with paused time, bounds, key validation, persistence and prefix
//! watches.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use kinesis::kv::{watch_prefix, Kv, KvEvent, KvHandle, KvOptions, KvWatch, Sweep};
use kinesis::persist::{MemoryStore, Persistence};
use kinesis::{Container, Error, ErrorKind, Handle, Precondition};
use serde_json::{json, Value};

async fn store() -> (Container, Handle<Kv>) {
    store_with(KvOptions::default()).await
}

/// A root with a memory store: the store's fields are persisted.
async fn root() -> Container {
    let store = Arc::new(MemoryStore::new());
    Container::root_with(Some(Persistence { store, cipher: None })).await.unwrap()
}

async fn store_with(options: KvOptions) -> (Container, Handle<Kv>) {
    let root = root().await;
    let kv = root.add("kv", Kv::new(options)).await.unwrap();
    (root, kv)
}

/// One read-modify-write of the counter under `key`, retried until its
/// compare-and-set wins; answers how many times it lost.
async fn increment(kv: &Handle<Kv>, key: &str) -> u64 {
    let mut lost = 0;
    loop {
        let (count, version) = match kv.get(key.to_owned()).await.unwrap() {
            Some(item) => (item.value.as_u64().unwrap(), item.version),
            None => (0, 0),
        };
        match kv.put(key.to_owned(), json!(count + 1), Some(version), None).await {
            Ok(_) => return lost,
            Err(Error::Conflict { .. }) => lost += 1,
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
}

/// 32 writers increment 4 counters with read-modify-write and
/// compare-and-set, retrying on conflict: the counters add up to the number
/// of successful writes, so no write was lost, and the writers did collide.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compare_and_set_under_32_concurrent_writers_loses_nothing() {
    const WRITERS: u64 = 32;
    const ROUNDS: u64 = 50;
    let (root, kv) = store().await;
    let conflicts = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let (kv, conflicts) = (kv.clone(), conflicts.clone());
        tasks.push(tokio::spawn(async move {
            for round in 0..ROUNDS {
                let key = format!("counters/{}", (w + round) % 4);
                conflicts.fetch_add(increment(&kv, &key).await, Ordering::Relaxed);
                // Let the other writers interleave between a read and a write.
                tokio::task::yield_now().await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let items = kv.list(Some("counters/".into()), None).await.unwrap();
    assert_eq!(items.len(), 4);
    let total: u64 = items.iter().map(|i| i.value.as_u64().unwrap()).sum();
    assert_eq!(total, WRITERS * ROUNDS, "every successful write is counted");
    let conflicts = conflicts.load(Ordering::Relaxed);
    assert!(conflicts > 0, "the writers never collided: the test proves nothing");
    // Each put and only each successful one took a revision.
    assert_eq!(kv.snapshot().state.revision(), WRITERS * ROUNDS);
    eprintln!("{} writes, {conflicts} conflicts retried", WRITERS * ROUNDS);
    root.shutdown().await.unwrap();
}

/// `Some(0)` creates only; a stale version is refused; a key deleted and
/// created again never gets an old version back (no A-B-A).
#[tokio::test]
async fn versions_and_compare_and_set() {
    let (root, kv) = store().await;
    let v1 = kv.put("k".into(), json!(1), Some(0), None).await.unwrap();
    assert_eq!(v1, 1);
    let err = kv.put("k".into(), json!(2), Some(0), None).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "create-only on an existing key");
    let v2 = kv.put("k".into(), json!(2), Some(v1), None).await.unwrap();
    assert!(v2 > v1);
    assert_eq!(
        kv.put("k".into(), json!(3), Some(v1), None).await.unwrap_err().kind(),
        ErrorKind::Conflict
    );
    assert_eq!(
        kv.get("k".into()).await.unwrap().unwrap().value,
        json!(2),
        "the loser changed nothing"
    );

    assert_eq!(kv.delete("k".into(), Some(v1)).await.unwrap_err().kind(), ErrorKind::Conflict);
    assert!(kv.delete("k".into(), Some(v2)).await.unwrap());
    assert!(!kv.delete("k".into(), None).await.unwrap(), "already gone");
    let v3 = kv.put("k".into(), json!(1), Some(0), None).await.unwrap();
    assert!(v3 > v2, "a recreated key gets a new version");
    assert_eq!(
        kv.put("k".into(), json!(9), Some(v1), None).await.unwrap_err().kind(),
        ErrorKind::Conflict
    );
    // Unconditional writes always go through.
    kv.put("k".into(), json!(10), None, None).await.unwrap();
    root.shutdown().await.unwrap();
}

/// Calls by name with JSON, as the HTTP add-on makes them: optional
/// arguments may be left out, errors keep their kinds.
#[tokio::test]
async fn calls_by_name() {
    let (root, _kv) = store().await;
    let kv = root.get_dyn("kv").unwrap();
    let call = |method: &'static str, args: Value| {
        let kv = kv.clone();
        async move { kv.call_json(method, args, Precondition::Any).await }
    };
    let v = call("put", json!({"key": "a/1", "value": {"x": 1}})).await.unwrap();
    call("put", json!({"key": "a/2", "value": [1, 2]})).await.unwrap();
    call("put", json!({"key": "b/1", "value": "s"})).await.unwrap();
    let listed = call("list", json!({"prefix": "a/"})).await.unwrap();
    assert_eq!(
        listed,
        json!([{"key": "a/1", "value": {"x": 1}, "version": v}, {"key": "a/2", "value": [1, 2], "version": 2}])
    );
    assert_eq!(call("list", json!({"limit": 1})).await.unwrap().as_array().unwrap().len(), 1);
    assert_eq!(call("count", json!({})).await.unwrap(), json!(3));
    assert_eq!(call("get", json!({"key": "zzz"})).await.unwrap(), Value::Null);
    let err = call("put", json!({"key": "a/1", "value": 5, "version": 99})).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
    let err = call("put", json!({"key": "a/1"})).await.unwrap_err();
    assert!(err.to_string().contains("must not be null"), "{err}");
    root.shutdown().await.unwrap();
}

/// Keys are checked (length, characters), and so are prefixes.
#[tokio::test]
async fn keys_are_validated() {
    let (root, kv) = store_with(KvOptions { max_key_bytes: 8, ..KvOptions::default() }).await;
    for bad in ["", "a b", "tab\there", "nl\n", "é", "a?b", "123456789"] {
        let err = kv.put(bad.into(), json!(1), None, None).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Invalid, "{bad:?}: {err}");
        assert_eq!(kv.get(bad.into()).await.unwrap_err().kind(), ErrorKind::Invalid, "{bad:?}");
    }
    assert!(kv.put("12345678".into(), json!(1), None, None).await.is_ok());
    assert_eq!(kv.list(Some("a b".into()), None).await.unwrap_err().kind(), ErrorKind::Invalid);
    assert!(watch_prefix(&kv, "bad\u{0}").is_err());
    assert_eq!(kv.snapshot().state.entries().len(), 1);
    root.shutdown().await.unwrap();
}

/// The bounds: the size of a value, the number of keys and the bytes
/// altogether, each refused with a message naming it; expired keys make
/// room; overwriting a key needs no new room.
#[tokio::test(start_paused = true)]
async fn bounds_are_enforced_with_clear_messages() {
    let options =
        KvOptions { max_keys: 3, max_value_bytes: 10, max_total_bytes: 40, ..KvOptions::default() };
    let (root, kv) = store_with(options).await;
    let err = kv.put("big".into(), json!("0123456789"), None, None).await.unwrap_err();
    assert!(
        matches!(&err, Error::Invalid(m) if m.contains("12 bytes") && m.contains("10 allowed")),
        "{err}"
    );
    let err = kv.put("t".into(), json!(1), None, Some(0)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Invalid);
    let err =
        kv.put("t".into(), json!(1), None, Some(kinesis::kv::MAX_TTL_MS + 1)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Invalid);

    kv.put("a".into(), json!(1), None, None).await.unwrap();
    kv.put("b".into(), json!(2), None, None).await.unwrap();
    kv.put("c".into(), json!(3), None, Some(1_000)).await.unwrap();
    let err = kv.put("d".into(), json!(4), None, None).await.unwrap_err();
    assert!(matches!(&err, Error::Invalid(m) if m.contains("maximum of 3 keys")), "{err}");
    kv.put("a".into(), json!(11), None, None).await.unwrap(); // overwrite: no new key

    // Bytes: keys plus compact JSON values, "a": 11, "b": 2, "c": 3 hold
    // 3 + 2 + 2 = 7; a value of 9 bytes for "c" makes 15.
    kv.put("c".into(), json!("0123456"), None, Some(1_000)).await.unwrap();

    // Once "c" expired, its room is taken back for "d".
    tokio::time::advance(Duration::from_millis(1_000)).await;
    kv.put("d".into(), json!(4), None, None).await.unwrap();
    assert_eq!(kv.count(None).await.unwrap(), 3);
    root.shutdown().await.unwrap();

    // The byte bound alone.
    let (root, kv) = store_with(KvOptions { max_total_bytes: 20, ..KvOptions::default() }).await;
    kv.put("k1".into(), json!("12345678"), None, None).await.unwrap(); // 2 + 10
    let err = kv.put("k2".into(), json!("12345678"), None, None).await.unwrap_err();
    assert!(
        matches!(&err, Error::Invalid(m) if m.contains("24 bytes") && m.contains("20 allowed")),
        "{err}"
    );
    kv.delete("k1".into(), None).await.unwrap();
    kv.put("k2".into(), json!("12345678"), None, None).await.unwrap();
    root.shutdown().await.unwrap();
}

/// An expired key is invisible at once (reads, listing, compare-and-set),
/// and the store's timer removes it when it is due, in one revision.
#[tokio::test(start_paused = true)]
async fn expired_keys_are_invisible_at_once_and_removed_by_the_timer() {
    let (root, kv) = store().await;
    kv.put("session/a".into(), json!("x"), None, Some(10_000)).await.unwrap();
    kv.put("session/b".into(), json!("y"), None, Some(10_000)).await.unwrap();
    let v = kv.put("session/c".into(), json!("z"), None, Some(10_000)).await.unwrap();
    kv.put("session/c".into(), json!("z"), Some(v), None).await.unwrap(); // a put without ttl clears it
    kv.put("keep".into(), json!(1), None, None).await.unwrap();
    let item = kv.get("session/a".into()).await.unwrap().unwrap();
    assert!(item.expires_at_ms.is_some());
    let mut changes = kv.subscribe();
    let revision = kv.snapshot().state.revision();

    // The state as it is now, read without the timer: it still holds the
    // keys, and hides them once they are due.
    let state = kv.snapshot().state.clone();
    tokio::time::advance(Duration::from_millis(9_999)).await;
    assert!(state.entry("session/a").is_some(), "not due yet");
    assert!(kv.get("session/a".into()).await.unwrap().is_some(), "not due yet");
    tokio::time::advance(Duration::from_millis(1)).await;
    assert!(state.entries().contains_key("session/a"), "still stored");
    assert!(state.entry("session/a").is_none(), "expired: invisible at once");
    assert!(kv.get("session/a".into()).await.unwrap().is_none(), "expired: invisible at once");
    let listed: Vec<String> =
        kv.list(Some("session/".into()), None).await.unwrap().into_iter().map(|i| i.key).collect();
    assert_eq!(listed, ["session/c"]);
    assert_eq!(kv.count(None).await.unwrap(), 2);

    // The timer removes both in one write.
    let removed = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            match changes.recv().await {
                Ok(Some(kinesis::Change::Updated { curr, .. }))
                    if !curr.state.entries().contains_key("session/a") =>
                {
                    return curr
                }
                Ok(None) => panic!("the store stopped"),
                _ => {}
            }
        }
    })
    .await
    .expect("the timer removed the expired keys");
    assert!(!removed.state.entries().contains_key("session/b"));
    assert_eq!(removed.state.revision(), revision + 1);
    assert_eq!(removed.state.entries().len(), 2);
    // A create-only put on an expired-and-removed key works, and so does
    // one on an expired key not yet removed.
    kv.put("session/a".into(), json!("again"), Some(0), Some(5)).await.unwrap();
    tokio::time::advance(Duration::from_millis(5)).await;
    kv.put("session/a".into(), json!("third"), Some(0), None).await.unwrap();
    assert_eq!(kv.ask(Sweep).await.unwrap(), 0, "nothing left to remove");
    root.shutdown().await.unwrap();
}

/// Entries and the revision are persisted fields: a new run over the same
/// store finds them, expiry included, and versions go on from there.
#[tokio::test]
async fn entries_survive_a_restart_of_the_process() {
    let store = Arc::new(MemoryStore::new());
    let persistence = || Some(Persistence { store: store.clone(), cipher: None });
    let root = Container::root_with(persistence()).await.unwrap();
    let kv = root.add("kv", Kv::new(KvOptions::default())).await.unwrap();
    kv.put("a".into(), json!({"n": 1}), None, None).await.unwrap();
    let v = kv.put("b".into(), json!([true]), None, Some(3_600_000)).await.unwrap();
    root.shutdown().await.unwrap();

    let root = Container::root_with(persistence()).await.unwrap();
    let kv = root.add("kv", Kv::new(KvOptions::default())).await.unwrap();
    let b = kv.get("b".into()).await.unwrap().unwrap();
    assert_eq!((b.value, b.version), (json!([true]), v));
    assert!(b.expires_at_ms.is_some());
    assert_eq!(kv.get("a".into()).await.unwrap().unwrap().value, json!({"n": 1}));
    assert!(kv.put("c".into(), json!(1), None, None).await.unwrap() > v, "versions go on");
    root.shutdown().await.unwrap();
}

async fn next(watch: &mut KvWatch) -> KvEvent {
    tokio::time::timeout(Duration::from_secs(10), watch.next())
        .await
        .expect("an event within 10 s")
        .expect("the watch goes on")
}

fn put_of(event: &KvEvent) -> (&str, &Value) {
    match event {
        KvEvent::Put(item) => (&item.key, &item.value),
        other => panic!("expected a put, got {other:?}"),
    }
}

/// A prefix watch starts with the keys there, then reports puts and
/// deletes under the prefix only, expiry included.
#[tokio::test(start_paused = true)]
async fn a_prefix_watch_sees_puts_deletes_and_expiry_under_its_prefix() {
    let (root, kv) = store().await;
    kv.put("app/a".into(), json!(1), None, None).await.unwrap();
    kv.put("app/b".into(), json!(2), None, None).await.unwrap();
    kv.put("apple".into(), json!(0), None, None).await.unwrap();
    let mut watch = watch_prefix(&kv, "app/").unwrap();
    assert_eq!(put_of(&next(&mut watch).await), ("app/a", &json!(1)));
    assert_eq!(put_of(&next(&mut watch).await), ("app/b", &json!(2)));

    kv.put("apple".into(), json!(1), None, None).await.unwrap();
    kv.put("app/c".into(), json!(3), None, Some(1_000)).await.unwrap();
    assert_eq!(put_of(&next(&mut watch).await), ("app/c", &json!(3)));
    kv.delete("app/a".into(), None).await.unwrap();
    let deleted = next(&mut watch).await;
    assert!(matches!(&deleted, KvEvent::Delete { key, .. } if key == "app/a"), "{deleted:?}");
    // Expiry: the timer's removal is a delete.
    let expired = next(&mut watch).await;
    assert!(matches!(&expired, KvEvent::Delete { key, .. } if key == "app/c"), "{expired:?}");
    let json = serde_json::to_value(&expired).unwrap();
    assert_eq!(json["type"], "delete");
    root.shutdown().await.unwrap();
    assert!(watch.next().await.is_none(), "the watch ends with the store");
}

/// A watch that fell behind (the store's change queue overflowed while it
/// did not read) still ends up with every key's latest value.
#[tokio::test]
async fn a_lagging_watch_catches_up_with_the_latest_values() {
    let (root, kv) = store().await;
    let mut watch = watch_prefix(&kv, "").unwrap();
    for i in 0..600u64 {
        kv.put(format!("k/{}", i % 7), json!(i), None, None).await.unwrap();
    }
    kv.delete("k/0".into(), None).await.unwrap();
    // It lagged: it catches up with the latest value of each key it has
    // not seen, and k/0, created and deleted meanwhile, never shows.
    let mut got = Vec::new();
    for _ in 1..7 {
        let event = next(&mut watch).await;
        let (key, value) = put_of(&event);
        got.push((key.to_owned(), value.clone()));
    }
    let expected: Vec<(String, Value)> = (1..7u64)
        .map(|k| (format!("k/{k}"), json!((0..600u64).filter(|i| i % 7 == k).max().unwrap())))
        .collect();
    assert_eq!(got, expected);
    kv.put("k/1".into(), json!("new"), None, None).await.unwrap();
    assert_eq!(put_of(&next(&mut watch).await), ("k/1", &json!("new")), "and goes on live");
    root.shutdown().await.unwrap();
}
