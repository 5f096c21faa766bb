//! PostgreSQL store against a real server (`KINESIS_TEST_POSTGRES_URL`,
//! default `postgres://postgres@127.0.0.1:5432/test`). Without a server the
//! tests print a notice and pass, except under `CI=true`, where they fail.
#![cfg(feature = "postgres")]

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{cleanup, connect_or_skip, prefix, race_two_pools, record};
use kinesis::persist::{conformance, SharedStore, Store, StoreError};
use kinesis_sql::SqlStore;
use sqlx::postgres::PgPoolOptions;
use sqlx::{Executor, PgPool};

const VAR: &str = "KINESIS_TEST_POSTGRES_URL";

fn base_url() -> String {
    common::server_url(VAR, "postgres://postgres@127.0.0.1:5432/test")
}

/// `url` with its database replaced by `db` and `extra` query parameters.
fn with_database(url: &str, db: &str, extra: &str) -> String {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[authority_start..].find('/').map_or(base.len(), |i| authority_start + i);
    let params: Vec<&str> = [query, extra].into_iter().filter(|q| !q.is_empty()).collect();
    let mut out = format!("{}/{db}", &base[..path_start]);
    if !params.is_empty() {
        out.push('?');
        out.push_str(&params.join("&"));
    }
    out
}

fn unique_name(tag: &str) -> String {
    format!("kt_{tag}_{}", &prefix("x")[15..])
}

async fn admin(url: &str) -> PgPool {
    PgPoolOptions::new().max_connections(2).connect(url).await.unwrap()
}

/// A database of its own, dropped (with its connections) when the test ends.
struct TempDatabase {
    admin: PgPool,
    name: String,
}

impl TempDatabase {
    async fn create(admin: &PgPool, tag: &str) -> TempDatabase {
        let name = unique_name(tag);
        admin.execute(format!("CREATE DATABASE \"{name}\"").as_str()).await.unwrap();
        TempDatabase { admin: admin.clone(), name }
    }

    async fn drop_now(self) {
        let sql = format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name);
        self.admin.execute(sql.as_str()).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conformance_suite() {
    let Some(store) = connect_or_skip(VAR, &base_url()).await else {
        return;
    };
    let store: SharedStore = Arc::new(store);
    assert_eq!(store.backend(), "postgres");
    let p = prefix("postgres");
    conformance::run_all(store.clone(), &p).await;
    cleanup(&store, &p).await;
}

/// Two pools (two processes) on one database: exactly one winner per round.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_compare_and_set_across_two_pools() {
    let Some(a) = connect_or_skip(VAR, &base_url()).await else {
        return;
    };
    let b = SqlStore::connect(&base_url()).await.unwrap();
    let (a, b): (SharedStore, SharedStore) = (Arc::new(a), Arc::new(b));
    let p = prefix("postgres-race");
    race_two_pools(a.clone(), b, &p, 8, 30).await;
    cleanup(&a, &p).await;
}

/// Several processes starting at once on an empty database all create (or
/// find) the table; PostgreSQL's racy `CREATE TABLE IF NOT EXISTS` does not
/// fail any of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_first_connects_create_the_table_once() {
    let Some(_probe) = connect_or_skip(VAR, &base_url()).await else {
        return;
    };
    let admin = admin(&base_url()).await;
    let db = TempDatabase::create(&admin, "create").await;
    let url = with_database(&base_url(), &db.name, "");
    let connects: Vec<_> = (0..8)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move { SqlStore::connect(&url).await })
        })
        .collect();
    let mut stores = Vec::new();
    for c in connects {
        stores.push(c.await.unwrap().expect("a concurrent first connect failed"));
    }
    stores[0].save(&record("/a", 1, 1), 0).await.unwrap();
    assert_eq!(stores[7].list("/").await.unwrap(), vec!["/a".to_owned()]);
    for s in &stores {
        s.close().await;
    }
    db.drop_now().await;
}

/// The conformance check for an outage: the store's database stops taking
/// connections and its connections are terminated; every call fails (not
/// with a conflict); then it takes connections again and the same store
/// carries on without being reopened.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_goes_away_and_comes_back() {
    let Some(_probe) = connect_or_skip(VAR, &base_url()).await else {
        return;
    };
    let admin = admin(&base_url()).await;
    let db = TempDatabase::create(&admin, "away").await;
    let store: SharedStore =
        Arc::new(SqlStore::connect(&with_database(&base_url(), &db.name, "")).await.unwrap());
    let (down, up) = (admin.clone(), admin.clone());
    let (name_down, name_up) = (db.name.clone(), db.name.clone());
    conformance::store_goes_away(
        &store,
        &prefix("postgres-away"),
        || async move {
            down.execute(
                format!("ALTER DATABASE \"{name_down}\" WITH ALLOW_CONNECTIONS false").as_str(),
            )
            .await
            .unwrap();
            sqlx::query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1",
            )
            .bind(&name_down)
            .execute(&down)
            .await
            .unwrap();
        },
        || async move {
            up.execute(
                format!("ALTER DATABASE \"{name_up}\" WITH ALLOW_CONNECTIONS true").as_str(),
            )
            .await
            .unwrap();
        },
    )
    .await;
    drop(store);
    db.drop_now().await;
}

/// Writers stream saves while every connection of their pool is terminated
/// again and again (`pg_terminate_backend`). Each call either succeeds or
/// fails with `Backend`; after a failure the writer reloads to learn whether
/// the save landed. At the end every record holds exactly its last
/// acknowledged version and content: nothing acknowledged was lost, and the
/// pool reconnected by itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn terminated_connections_lose_nothing_acknowledged() {
    let Some(_probe) = connect_or_skip(VAR, &base_url()).await else {
        return;
    };
    let app = unique_name("kill");
    let url = common::with_params(&base_url(), &format!("application_name={app}&pool_size=4"));
    let store: SharedStore = Arc::new(SqlStore::connect(&url).await.unwrap());
    let admin = admin(&base_url()).await;
    let p = prefix("postgres-kill");

    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let killed = Arc::new(AtomicU64::new(0));
    let killer = {
        let (admin, stop, killed, app) = (admin.clone(), stop.clone(), killed.clone(), app.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                let n: i64 = sqlx::query_scalar(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
                     WHERE application_name = $1 AND pid <> pg_backend_pid()",
                )
                .bind(&app)
                .fetch_one(&admin)
                .await
                .unwrap();
                killed.fetch_add(n as u64, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(15)).await;
            }
        })
    };

    let errors = Arc::new(AtomicU64::new(0));
    let writers: Vec<_> = (0..8u64)
        .map(|w| {
            let (store, errors) = (store.clone(), errors.clone());
            let uri = format!("{p}/w{w}");
            tokio::spawn(
                async move { common::write_through_outages(&*store, &uri, 40, &errors).await },
            )
        })
        .collect();
    let mut acked = Vec::new();
    for w in writers {
        acked.push(w.await.unwrap());
    }
    stop.store(true, Ordering::SeqCst);
    killer.await.unwrap();

    for last in acked {
        let stored = store.load(&last.uri).await.unwrap();
        assert_eq!(
            stored.as_ref(),
            Some(&last),
            "the last acknowledged save of {} was lost",
            last.uri
        );
    }
    let (killed, errors) = (killed.load(Ordering::SeqCst), errors.load(Ordering::SeqCst));
    eprintln!("terminated {killed} connections; {errors} calls failed and were recovered");
    assert!(killed > 0, "the test terminated no connection");
    cleanup(&store, &p).await;
}

/// A password in the URL appears in no error message, whether the server
/// cannot be reached, the database does not exist, or a call fails later.
#[tokio::test]
async fn passwords_never_appear_in_errors() {
    let Some(_probe) = connect_or_skip(VAR, &base_url()).await else {
        return;
    };
    let secret = "Sup3r-S3cret-pw";
    let base = base_url();
    let with_password = common::set_password(&base, "postgres", secret);
    let refused = format!("postgres://u:{secret}@127.0.0.1:1/test");
    let missing_db = with_database(&with_password, "kt_no_such_database", "");
    let query_password = format!("postgres://127.0.0.1:1/test?password={secret}");
    for url in [&refused, &missing_db, &query_password] {
        let started = Instant::now();
        let err = SqlStore::connect(url).await.unwrap_err();
        let text = format!("{err} {err:?}");
        assert!(!text.contains(secret), "password leaked: {text}");
        assert!(matches!(err, kinesis::Error::Store(_)), "{err}");
        assert!(started.elapsed() < Duration::from_secs(4), "took {:?}", started.elapsed());
        eprintln!("{err}");
    }

    // A store opened with a password (trust authentication ignores it), then
    // its database goes away: call errors carry no password either.
    let admin = admin(&base).await;
    let db = TempDatabase::create(&admin, "pw").await;
    let store = SqlStore::connect(&with_database(&with_password, &db.name, "")).await.unwrap();
    assert!(!format!("{store:?}").contains(secret));
    admin
        .execute(format!("ALTER DATABASE \"{}\" WITH ALLOW_CONNECTIONS false", db.name).as_str())
        .await
        .unwrap();
    sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1")
        .bind(&db.name)
        .execute(&admin)
        .await
        .unwrap();
    let err = store.save(&record("/x", 1, 1), 0).await.unwrap_err();
    let text = format!("{err} {err:?}");
    assert!(matches!(err, StoreError::Backend(_)), "{text}");
    assert!(!text.contains(secret), "password leaked: {text}");
    eprintln!("{err}");
    store.close().await;
    db.drop_now().await;
}

#[tokio::test]
async fn wildcards_in_a_prefix_are_literal() {
    let Some(_probe) = connect_or_skip(VAR, &base_url()).await else {
        return;
    };
    let admin = admin(&base_url()).await;
    let db = TempDatabase::create(&admin, "wild").await;
    let store = SqlStore::connect(&with_database(&base_url(), &db.name, "")).await.unwrap();
    let uris = ["/w/a%b", "/w/axb", "/w/a_c", "/w/ayc", "/w/!", "/w/Q", "/w/q"];
    for uri in uris {
        store.save(&record(uri, 1, 0), 0).await.unwrap();
    }
    for (p, want) in [
        ("/w/a%", vec!["/w/a%b"]),
        ("/w/a_", vec!["/w/a_c"]),
        ("/w/!", vec!["/w/!"]),
        ("/w/q", vec!["/w/q"]),
    ] {
        assert_eq!(store.list(p).await.unwrap(), want, "list({p})");
    }
    // Byte order, not the database's locale: upper case first.
    assert_eq!(
        store.list("/w/").await.unwrap(),
        ["/w/!", "/w/Q", "/w/a%b", "/w/a_c", "/w/axb", "/w/ayc", "/w/q"]
    );
    store.close().await;
    db.drop_now().await;
}
