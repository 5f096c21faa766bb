//! SQLite store: the conformance suite, compare-and-set across pools, a
//! database taken away by another process's lock, closing, corrupt rows.
#![cfg(feature = "sqlite")]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{prefix, race_two_pools, record};
use kinesis::persist::{conformance, SharedStore, Store, StoreError, StoreRegistry};
use kinesis_sql::SqlStore;
use sqlx::{Connection, Executor, SqliteConnection};

fn db_url(dir: &tempfile::TempDir) -> String {
    format!("sqlite://{}", dir.path().join("kinesis.db").display())
}

async fn open(url: &str) -> SharedStore {
    Arc::new(SqlStore::connect(url).await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conformance_suite_on_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&db_url(&dir)).await;
    assert_eq!(store.backend(), "sqlite");
    conformance::run_all(store, &prefix("sqlite")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conformance_suite_in_memory() {
    let store = open("sqlite://:memory:").await;
    conformance::run_all(store, &prefix("sqlite-memory")).await;
}

/// Two stores on one file are two pools, as two processes would have: the
/// compare-and-set still lets exactly one writer win each round.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_compare_and_set_across_two_pools() {
    let dir = tempfile::tempdir().unwrap();
    let url = db_url(&dir);
    let (a, b) = (open(&url).await, open(&url).await);
    race_two_pools(a, b, &prefix("sqlite-race"), 8, 25).await;
}

/// Another process holds SQLite's write lock for longer than the busy
/// timeout: writes fail with `Backend` (never `Conflict`, never a false
/// success) while reads keep working, as WAL promises; once the lock is
/// released the same store writes again and nothing was lost or changed.
///
/// (The conformance check `store_goes_away` needs reads to fail as well; a
/// local SQLite file has no real outage that does that and can be undone
/// while the store's connections stay open, so it runs on the server
/// back-ends only. `closed_store_fails_…` covers an SQLite store that is gone.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_fail_cleanly_while_another_process_holds_the_write_lock() {
    let dir = tempfile::tempdir().unwrap();
    let url = db_url(&dir);
    let store = open(&url).await;
    let p = prefix("sqlite-locked");
    let uri = format!("{p}/c");
    let first = record(&uri, 1, 1);
    store.save(&first, 0).await.unwrap();

    let mut holder = SqliteConnection::connect(&url).await.unwrap();
    holder.execute("BEGIN IMMEDIATE").await.unwrap();
    let started = Instant::now();
    let err = store.save(&record(&uri, 2, 2), 1).await.unwrap_err();
    assert!(matches!(err, StoreError::Backend(ref m) if m.contains("locked")), "{err}");
    assert!(started.elapsed() >= kinesis_sql::SQLITE_BUSY_TIMEOUT, "{:?}", started.elapsed());
    let err = store.delete(&uri).await.unwrap_err();
    assert!(matches!(err, StoreError::Backend(_)), "{err}");
    assert_eq!(store.load(&uri).await.unwrap().as_ref(), Some(&first));
    assert_eq!(store.list(&p).await.unwrap(), vec![uri.clone()]);
    holder.execute("ROLLBACK").await.unwrap();

    assert_eq!(store.load(&uri).await.unwrap().as_ref(), Some(&first));
    let second = record(&uri, 2, 3);
    store.save(&second, 1).await.unwrap();
    assert_eq!(store.load(&uri).await.unwrap(), Some(second));
}

/// After `close`, calls fail with `Backend` (never a conflict, never a
/// silent success); a new store on the same file sees everything saved.
#[tokio::test]
async fn closed_store_fails_and_the_data_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let url = db_url(&dir);
    let sql = SqlStore::connect(&url).await.unwrap();
    let p = prefix("sqlite-close");
    let uri = format!("{p}/c");
    let second = record(&uri, 2, 2);
    sql.save(&record(&uri, 1, 1), 0).await.unwrap();
    sql.save(&second, 1).await.unwrap();
    sql.close().await;

    let err = sql.save(&record(&uri, 3, 3), 2).await.unwrap_err();
    assert!(matches!(err, StoreError::Backend(ref m) if m.contains("closed")), "{err}");
    assert!(matches!(sql.load(&uri).await, Err(StoreError::Backend(_))));
    assert!(matches!(sql.list(&p).await, Err(StoreError::Backend(_))));
    assert!(matches!(sql.delete(&uri).await, Err(StoreError::Backend(_))));

    let reopened = SqlStore::connect(&url).await.unwrap();
    assert_eq!(reopened.load(&uri).await.unwrap(), Some(second));
    reopened.save(&record(&uri, 3, 3), 2).await.unwrap();
}

/// `sqlite://dir/that/does/not/exist/file.db` creates the directories and
/// the file, in WAL mode.
#[tokio::test]
async fn creates_missing_directories_and_uses_wal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a/b/c/kinesis.db");
    let store = SqlStore::connect(&format!("sqlite://{}", path.display())).await.unwrap();
    store.save(&record("/x", 1, 1), 0).await.unwrap();
    assert!(path.exists());
    let mut conn =
        SqliteConnection::connect(&format!("sqlite://{}", path.display())).await.unwrap();
    let mode: String =
        sqlx::query_scalar("PRAGMA journal_mode").fetch_one(&mut conn).await.unwrap();
    assert_eq!(mode, "wal");
}

/// A row that is not a kinesis record loads as `Corrupt` naming the uri.
#[tokio::test]
async fn foreign_rows_load_as_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let url = db_url(&dir);
    let store = SqlStore::connect(&url).await.unwrap();
    let mut conn = SqliteConnection::connect(&url).await.unwrap();
    for (uri, version, fields) in
        [("/bad-json", 1, "{not json"), ("/not-object", 1, "[1]"), ("/zero", 0, "{}")]
    {
        sqlx::query(
            "INSERT INTO kinesis_records (uri, type, version, updated_at, \"schema\", fields) \
             VALUES (?, 't', ?, 'now', 1, ?)",
        )
        .bind(uri)
        .bind(version)
        .bind(fields)
        .execute(&mut conn)
        .await
        .unwrap();
        match store.load(uri).await {
            Err(StoreError::Corrupt { uri: u, reason }) => {
                assert_eq!(u, uri);
                assert!(!reason.is_empty());
            }
            other => panic!("{uri}: {other:?}"),
        }
    }
}

/// A table of the same name with other columns is refused at connect.
#[tokio::test]
async fn a_foreign_table_is_refused_at_connect() {
    let dir = tempfile::tempdir().unwrap();
    let url = db_url(&dir);
    let mut conn = SqliteConnection::connect(&format!("{url}?mode=rwc")).await.unwrap();
    conn.execute("CREATE TABLE kinesis_records (id INTEGER PRIMARY KEY)").await.unwrap();
    let err = SqlStore::connect(&url).await.unwrap_err();
    assert!(matches!(err, kinesis::Error::Store(ref m) if m.contains("kinesis_records")), "{err}");
}

#[tokio::test]
async fn uris_too_long_or_with_nul_are_invalid_keys() {
    let store = SqlStore::connect("sqlite://:memory:").await.unwrap();
    let long = format!("/{}", "a".repeat(kinesis_sql::MAX_URI_LEN));
    for uri in [long.as_str(), "/a\0b", ""] {
        assert!(matches!(store.load(uri).await, Err(StoreError::InvalidKey(_))), "{uri:?}");
        let err = store.save(&record(uri, 1, 1), 0).await.unwrap_err();
        assert!(matches!(err, StoreError::InvalidKey(_)), "{err}");
        assert!(matches!(store.delete(uri).await, Err(StoreError::InvalidKey(_))));
    }
    let longest = format!("/{}", "a".repeat(kinesis_sql::MAX_URI_LEN - 1));
    store.save(&record(&longest, 1, 1), 0).await.unwrap();
    assert_eq!(store.list("/").await.unwrap(), vec![longest]);
}

/// GLOB and LIKE wildcards in a prefix match themselves only.
#[tokio::test]
async fn wildcards_in_a_prefix_are_literal() {
    let store = SqlStore::connect("sqlite://:memory:").await.unwrap();
    list_wildcards(&store).await;
}

pub(crate) async fn list_wildcards(store: &SqlStore) {
    let uris =
        ["/w/a*b", "/w/axb", "/w/a?c", "/w/ayc", "/w/[x]", "/w/x", "/w/%", "/w/_", "/w/!", "/w/Q"];
    for uri in uris {
        store.save(&record(uri, 1, 0), 0).await.unwrap();
    }
    for (p, want) in [
        ("/w/a*", vec!["/w/a*b"]),
        ("/w/a?", vec!["/w/a?c"]),
        ("/w/[", vec!["/w/[x]"]),
        ("/w/%", vec!["/w/%"]),
        ("/w/_", vec!["/w/_"]),
        ("/w/!", vec!["/w/!"]),
        ("/w/q", vec![]),
    ] {
        assert_eq!(store.list(p).await.unwrap(), want, "list({p})");
    }
}

#[tokio::test]
async fn pool_size_comes_from_the_url_and_bad_values_name_it() {
    let dir = tempfile::tempdir().unwrap();
    let url = db_url(&dir);
    let store = SqlStore::connect(&format!("{url}?pool_size=3")).await.unwrap();
    assert_eq!(store.pool_size(), 3);
    let err = SqlStore::connect(&format!("{url}?pool_size=lots")).await.unwrap_err();
    assert!(matches!(err, kinesis::Error::Config(ref m) if m.contains("pool_size")), "{err}");
    // In memory there is one connection whatever is asked.
    let memory = SqlStore::connect("sqlite://:memory:?pool_size=8").await.unwrap();
    assert_eq!(memory.pool_size(), 1);
}

#[tokio::test]
async fn registry_opens_sqlite_urls_by_scheme() {
    let mut registry = StoreRegistry::with_builtin();
    kinesis_sql::register(&mut registry);
    for scheme in kinesis_sql::schemes().into_iter().chain(["memory"]) {
        assert!(registry.schemes().contains(&scheme), "{scheme} in {:?}", registry.schemes());
    }
    assert_eq!(
        kinesis_sql::schemes().contains(&"postgresql"),
        cfg!(feature = "postgres"),
        "schemes follow the features"
    );
    let dir = tempfile::tempdir().unwrap();
    let store = registry.open(&db_url(&dir)).await.unwrap();
    assert_eq!(store.backend(), "sqlite");
    store.save(&record("/r", 1, 1), 0).await.unwrap();
}

/// The store is usable from many tasks while a writer holds SQLite's write
/// lock briefly: calls wait (busy timeout) instead of failing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writers_wait_for_a_short_lock_instead_of_failing() {
    let dir = tempfile::tempdir().unwrap();
    let url = db_url(&dir);
    let store = open(&url).await;
    let mut conn = SqliteConnection::connect(&url).await.unwrap();
    conn.execute("BEGIN IMMEDIATE").await.unwrap();
    let p = prefix("sqlite-wait");
    let writer = {
        let store = store.clone();
        let uri = format!("{p}/c");
        tokio::spawn(async move { store.save(&record(&uri, 1, 1), 0).await })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!writer.is_finished(), "the save did not wait for the lock");
    conn.execute("COMMIT").await.unwrap();
    writer.await.unwrap().unwrap();
}
