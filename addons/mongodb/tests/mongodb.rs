//! MongoDB store against a real server named by `KINESIS_TEST_MONGODB_URL`
//! (MongoDB itself, or the wire-compatible test server `nx-27017` that
//! `scripts/test-services` starts). Unset: the tests print a notice and
//! pass, except under `CI=true`, where an unset URL or an unreachable server
//! fails them.

mod proxy;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kinesis::persist::{conformance, Record, SharedStore, Store, StoreError, StoreRegistry};
use kinesis_mongodb::MongoStore;
use mongodb::bson::doc;
use proxy::Proxy;
use serde_json::{json, Map, Value};

const VAR: &str = "KINESIS_TEST_MONGODB_URL";

fn ci() -> bool {
    std::env::var("CI").as_deref() == Ok("true")
}

/// The test server's URL, or `None` (after a notice) when it is not set
/// outside CI.
fn server_url() -> Option<String> {
    match std::env::var(VAR) {
        Ok(url) if !url.trim().is_empty() => Some(url.trim().to_owned()),
        _ if ci() => {
            panic!("CI=true but {VAR} is not set: run `eval \"$(scripts/test-services)\"`")
        }
        _ => {
            eprintln!("NOTICE: skipped, {VAR} is not set (eval \"$(scripts/test-services)\" starts a server)");
            None
        }
    }
}

/// `url` with its path (database) set to `db` and `params` added.
fn url_with(url: &str, db: &str, params: &str) -> String {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let start = base.find("://").expect("a URL") + 3;
    let end = base[start..].find('/').map_or(base.len(), |i| start + i);
    let query: Vec<&str> = [query, params].into_iter().filter(|q| !q.is_empty()).collect();
    format!("{}/{db}?{}", &base[..end], query.join("&"))
}

/// A store URL split into a URL the plain driver takes and the collection.
fn split_collection(url: &str) -> (String, String) {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let (collection, rest): (Vec<&str>, Vec<&str>) =
        query.split('&').partition(|p| p.starts_with("collection="));
    let collection =
        collection.first().expect("a collection parameter")["collection=".len()..].to_owned();
    (format!("{base}?{}", rest.join("&")), collection)
}

fn unique(tag: &str) -> String {
    let p = conformance::unique_prefix(tag);
    p.trim_start_matches("/conformance-").replace('-', "_")
}

/// Drops the collection of a store URL made by [`open`] or [`through_proxy`].
async fn drop_collection(url: &str) {
    let (driver_url, collection) = split_collection(url);
    let client = mongodb::Client::with_uri_str(&driver_url).await.unwrap();
    let database = url
        .split("://")
        .nth(1)
        .and_then(|r| r.split('/').nth(1))
        .unwrap()
        .split('?')
        .next()
        .unwrap();
    client
        .database(database)
        .collection::<mongodb::bson::Document>(&collection)
        .drop()
        .await
        .unwrap();
}

/// Opens a store on a collection of its own in the test database.
async fn open(tag: &str, params: &str) -> Option<(String, MongoStore)> {
    let base = server_url()?;
    let collection = unique(tag);
    let url = url_with(
        &base,
        "kinesis_test",
        format!("collection={collection}&{params}").trim_end_matches('&'),
    );
    match MongoStore::connect(&url).await {
        Ok(store) => Some((url, store)),
        Err(e) => panic!("{VAR}={base} is set but the server is unreachable: {e}"),
    }
}

fn record(uri: &str, version: u64, writer: u64) -> Record {
    let mut fields = Map::new();
    fields.insert("writer".into(), json!(writer));
    Record::new(uri, "kinesis_mongodb::tests::Probe", version, fields)
}

/// A proxy to the test server, and a store connecting through it.
async fn through_proxy(tag: &str, params: &str) -> Option<(Proxy, String, MongoStore)> {
    let base = server_url()?;
    let start = base.find("://").unwrap() + 3;
    let authority = &base[start..base[start..].find(['/', '?']).map_or(base.len(), |i| start + i)];
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h).split(',').next().unwrap();
    let upstream = tokio::net::lookup_host(host).await.unwrap().next().expect("an address");
    let proxy = Proxy::start(upstream).await;
    let via = format!("mongodb://127.0.0.1:{}", proxy.port);
    let params = format!("directConnection=true&serverSelectionTimeoutMS=1500&{params}");
    let url = url_with(
        &via,
        "kinesis_test",
        &format!("collection={}&{}", unique(tag), params.trim_end_matches('&')),
    );
    let store = MongoStore::connect(&url).await.unwrap();
    Some((proxy, url, store))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conformance_suite() {
    let Some((url, store)) = open("suite", "").await else {
        return;
    };
    let store: SharedStore = Arc::new(store);
    assert_eq!(store.backend(), "mongodb");
    conformance::run_all(store, &conformance::unique_prefix("mongodb")).await;
    drop_collection(&url).await;
}

/// Two clients (two processes) on one collection: exactly one winner per
/// round, every other writer gets `Conflict`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_compare_and_set_across_two_clients() {
    let Some((url, a)) = open("race", "").await else {
        return;
    };
    let b = MongoStore::connect(&url).await.unwrap();
    let (a, b): (SharedStore, SharedStore) = (Arc::new(a), Arc::new(b));
    let uri = format!("{}/contended", conformance::unique_prefix("mongodb-race"));
    for round in 0..20u64 {
        let barrier = Arc::new(tokio::sync::Barrier::new(16));
        let tasks: Vec<_> = (0..16u64)
            .map(|w| {
                let store = if w % 2 == 0 { a.clone() } else { b.clone() };
                let (barrier, record) = (barrier.clone(), record(&uri, round + 1, w));
                tokio::spawn(async move {
                    barrier.wait().await;
                    store.save(&record, round).await
                })
            })
            .collect();
        let mut winners = Vec::new();
        for (w, t) in tasks.into_iter().enumerate() {
            match t.await.unwrap() {
                Ok(()) => winners.push(w),
                Err(StoreError::Conflict { expected, found, .. }) => {
                    assert_eq!(expected, round);
                    assert!(found > Some(round), "found {found:?}");
                }
                Err(e) => panic!("round {round}, writer {w}: {e}"),
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: winners {winners:?}");
        let stored = b.load(&uri).await.unwrap().unwrap();
        assert_eq!((stored.version, &stored.fields["writer"]), (round + 1, &json!(winners[0])));
    }
    drop_collection(&url).await;
}

/// The conformance check for an outage: the network to the server is cut
/// (open connections reset, new ones refused); every call fails, not with a
/// conflict; the network comes back and the same store carries on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_goes_away_and_comes_back() {
    let Some((proxy, url, store)) = through_proxy("away", "").await else {
        return;
    };
    let proxy = Arc::new(proxy);
    let store: SharedStore = Arc::new(store);
    let (down, up) = (proxy.clone(), proxy.clone());
    conformance::store_goes_away(
        &store,
        &conformance::unique_prefix("mongodb-away"),
        || async move { down.cut() },
        || async move { up.restore().await },
    )
    .await;
    drop_collection(&url).await;
}

/// Writers stream saves while their connections are reset again and again:
/// every record ends at exactly its last acknowledged version and content,
/// and the driver reconnected by itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reset_connections_lose_nothing_acknowledged() {
    let Some((proxy, url, store)) = through_proxy("reset", "").await else {
        return;
    };
    let store: SharedStore = Arc::new(store);
    let proxy = Arc::new(proxy);
    let prefix = conformance::unique_prefix("mongodb-reset");
    let stop = Arc::new(AtomicBool::new(false));
    let resets = Arc::new(AtomicU64::new(0));
    let resetter = {
        let (proxy, stop, resets) = (proxy.clone(), stop.clone(), resets.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(40)).await;
                resets.fetch_add(proxy.reset_connections() as u64, Ordering::SeqCst);
            }
        })
    };
    let errors = Arc::new(AtomicU64::new(0));
    let writers: Vec<_> = (0..6u64)
        .map(|w| {
            let (store, errors) = (store.clone(), errors.clone());
            let uri = format!("{prefix}/w{w}");
            tokio::spawn(async move { write_through_outages(&*store, &uri, 30, &errors).await })
        })
        .collect();
    let mut acked = Vec::new();
    for w in writers {
        acked.push(w.await.unwrap());
    }
    stop.store(true, Ordering::SeqCst);
    resetter.await.unwrap();
    for last in acked {
        assert_eq!(
            store.load(&last.uri).await.unwrap().as_ref(),
            Some(&last),
            "{} lost a save",
            last.uri
        );
    }
    let (resets, errors) = (resets.load(Ordering::SeqCst), errors.load(Ordering::SeqCst));
    eprintln!("reset {resets} connections; {errors} calls failed and were recovered");
    assert!(resets > 0, "no connection was reset");
    drop_collection(&url).await;
}

/// Saves versions 1..=n of `uri`, reloading after each failure to learn
/// whether it landed. Returns the last acknowledged record.
async fn write_through_outages(store: &dyn Store, uri: &str, n: u64, errors: &AtomicU64) -> Record {
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
                        "{uri}: neither the acknowledged nor the failed save is stored"
                    );
                }
            }
            Err(e) => panic!("{uri}: save {} failed: {e}", expected + 1),
        }
    }
    acked.expect("n > 0")
}

/// A password in the URL appears in no error: not when the server cannot
/// be reached, not when the network goes away under an open store.
#[tokio::test]
async fn passwords_never_appear_in_errors() {
    let Some(_) = server_url() else { return };
    let secret = "Mongo-S3cret-pw";
    let started = Instant::now();
    let err = MongoStore::connect(&format!(
        "mongodb://kinesis:{secret}@127.0.0.1:1/db?serverSelectionTimeoutMS=500"
    ))
    .await
    .unwrap_err();
    let text = format!("{err} {err:?}");
    assert!(matches!(err, kinesis::Error::Store(_)), "{text}");
    assert!(!text.contains(secret), "password leaked: {text}");
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    eprintln!("{err}");

    let err =
        MongoStore::connect(&format!("mongodb://kinesis:{secret}@127.0.0.1:1/db?nosuchoption=1"))
            .await
            .unwrap_err();
    let text = format!("{err} {err:?}");
    assert!(matches!(err, kinesis::Error::Config(_)), "{text}");
    assert!(!text.contains(secret), "password leaked: {text}");
}

/// Database and collection come from the URL, with defaults.
#[tokio::test]
async fn database_and_collection_from_the_url() {
    let Some(base) = server_url() else { return };
    let collection = unique("named");
    let named_url = url_with(&base, "kinesis_named", &format!("collection={collection}"));
    let store = MongoStore::connect(&named_url).await.unwrap();
    assert_eq!(
        (store.database_name(), store.collection_name()),
        ("kinesis_named", collection.as_str())
    );
    let uri = format!("{}/x", conformance::unique_prefix("mongodb-named"));
    store.save(&record(&uri, 1, 1), 0).await.unwrap();

    let (base_only, _) = base.split_once('?').unwrap_or((&base, ""));
    let start = base_only.find("://").unwrap() + 3;
    let host_only =
        &base_only[..base_only[start..].find('/').map_or(base_only.len(), |i| start + i)];
    let store = MongoStore::connect(host_only).await.unwrap();
    assert_eq!((store.database_name(), store.collection_name()), ("kinesis", "components"));
    assert_eq!(store.load(&uri).await.unwrap(), None, "another collection");
    drop_collection(&named_url).await;
}

/// Regular-expression characters in a prefix match themselves only, and
/// listing is in byte order (case-sensitive).
#[tokio::test]
async fn prefixes_are_literal_and_order_is_bytewise() {
    let Some((url, store)) = open("literal", "").await else {
        return;
    };
    let names = ["a.c", "abc", "a*", "aaa", "^x", "$y", "(z)", "Q", "q", "é", "\u{10FFFF}"];
    for name in names {
        store.save(&record(&format!("/p/{name}"), 1, 0), 0).await.unwrap();
    }
    for (sub, want) in [
        ("a.", vec!["a.c"]),
        ("a*", vec!["a*"]),
        ("^", vec!["^x"]),
        ("$", vec!["$y"]),
        ("(", vec!["(z)"]),
        ("Q", vec!["Q"]),
    ] {
        let want: Vec<String> = want.iter().map(|n| format!("/p/{n}")).collect();
        assert_eq!(store.list(&format!("/p/{sub}")).await.unwrap(), want, "list({sub})");
    }
    let mut all: Vec<String> = names.iter().map(|n| format!("/p/{n}")).collect();
    all.sort();
    assert_eq!(store.list("/p/").await.unwrap(), all);
    assert_eq!(store.list("").await.unwrap(), all);
    drop_collection(&url).await;
}

/// Values with no obvious BSON twin round-trip exactly: keys starting with
/// `$` (encrypted fields) or holding dots, NUL inside strings, `i64::MIN`,
/// fractions and whole floats.
#[tokio::test]
async fn dollar_keys_dots_and_edge_numbers_round_trip() {
    let Some((url, store)) = open("edges", "").await else {
        return;
    };
    let Value::Object(fields) = json!({
        "min_i64": i64::MIN, "max_i64": i64::MAX, "float": 0.1, "whole_float": 2.0, "tiny": 5e-324,
        "secret": {"$enc": "v1:00000000:AAAA"}, "dotted.key": {"a.b": {"$x": [1]}}, "nul": "a\u{0}b",
    }) else {
        unreachable!()
    };
    let record = Record::new("/edges", "T", 1, fields);
    store.save(&record, 0).await.unwrap();
    assert_eq!(store.load("/edges").await.unwrap(), Some(record));
    drop_collection(&url).await;
}

/// An integer above `i64::MAX` is stored as `Decimal128` and comes back as
/// the same integer. nx-27017 cannot store `Decimal128`: there the save must
/// fail with an error, never store a different number.
#[tokio::test]
async fn integers_above_i64_round_trip_or_fail_loudly() {
    let Some((url, store)) = open("u64", "").await else {
        return;
    };
    let Value::Object(fields) = json!({ "max_u64": u64::MAX, "just_above": (i64::MAX as u64) + 1 })
    else {
        unreachable!()
    };
    let record = Record::new("/u64", "T", 1, fields);
    match store.save(&record, 0).await {
        Ok(()) => assert_eq!(store.load("/u64").await.unwrap(), Some(record)),
        Err(StoreError::Backend(message)) if server_process(&url).await == "nx_27017" => {
            eprintln!("nx-27017 has no Decimal128: {message}");
            assert_eq!(store.load("/u64").await.unwrap(), None);
        }
        Err(e) => panic!("{e}"),
    }
    drop_collection(&url).await;
}

/// The `process` the server reports in `buildInfo` (`mongod`, `nx_27017`…).
async fn server_process(url: &str) -> String {
    let (driver_url, _) = split_collection(url);
    let client = mongodb::Client::with_uri_str(&driver_url).await.unwrap();
    let info = client.database("admin").run_command(doc! { "buildInfo": 1 }).await.unwrap();
    info.get_str("process").unwrap_or("mongod").to_owned()
}

/// A document that is not a record loads as `Corrupt`, naming the uri.
#[tokio::test]
async fn foreign_documents_load_as_corrupt() {
    let Some((url, store)) = open("foreign", "").await else {
        return;
    };
    let (driver_url, collection) = split_collection(&url);
    let client = mongodb::Client::with_uri_str(&driver_url).await.unwrap();
    let raw = client.database("kinesis_test").collection::<mongodb::bson::Document>(&collection);
    raw.insert_one(doc! { "_id": "/foreign", "version": "seven", "fields": {} }).await.unwrap();
    match store.load("/foreign").await {
        Err(StoreError::Corrupt { uri, reason }) => assert_eq!(uri, "/foreign", "{reason}"),
        other => panic!("{other:?}"),
    }
    drop_collection(&url).await;
}

#[tokio::test]
async fn registry_opens_mongodb_urls() {
    let Some((url, _)) = open("registry", "").await else {
        return;
    };
    let mut registry = StoreRegistry::with_builtin();
    kinesis_mongodb::register(&mut registry);
    assert!(registry.schemes().contains(&"mongodb"));
    let store = registry.open(&url).await.unwrap();
    assert_eq!(store.backend(), "mongodb");
    store.save(&record("/via-registry", 1, 1), 0).await.unwrap();
    drop_collection(&url).await;
}

/// After `close`, calls fail with `Backend` (never a conflict or a silent
/// success); a new store on the same URL sees everything saved.
#[tokio::test]
async fn closed_store_fails_and_the_data_survives_reopening() {
    let Some((url, store)) = open("closed", "").await else {
        return;
    };
    let first = record("/c", 1, 1);
    store.save(&first, 0).await.unwrap();
    store.close().await;
    let err = store.save(&record("/c", 2, 2), 1).await.unwrap_err();
    assert!(matches!(err, StoreError::Backend(_)), "{err}");
    assert!(matches!(store.load("/c").await, Err(StoreError::Backend(_))));
    assert!(matches!(store.list("/").await, Err(StoreError::Backend(_))));
    assert!(matches!(store.delete("/c").await, Err(StoreError::Backend(_))));
    let reopened = MongoStore::connect(&url).await.unwrap();
    assert_eq!(reopened.load("/c").await.unwrap(), Some(first));
    drop_collection(&url).await;
}
