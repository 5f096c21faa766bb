//! MySQL/MariaDB store against a real server (`KINESIS_TEST_MYSQL_URL`,
//! default `mysql://root@127.0.0.1:3306/test`). Without a server the tests
//! print a notice and pass, except under `CI=true`, where they fail.
//!
//! Tests that break connections do it to a user of their own, created for
//! the test, so tests running at the same time are not disturbed.
#![cfg(feature = "mysql")]

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{cleanup, connect_or_skip, prefix, race_two_pools, record};
use kinesis::persist::{conformance, SharedStore, Store, StoreError};
use kinesis_sql::SqlStore;
use sqlx::mysql::MySqlPoolOptions;
use sqlx::{Executor, MySqlPool};

const VAR: &str = "KINESIS_TEST_MYSQL_URL";

fn base_url() -> String {
    common::server_url(VAR, "mysql://root@127.0.0.1:3306/test")
}

/// A user of its own with a password and all rights on the test database;
/// dropped when the test ends.
struct TempUser {
    admin: MySqlPool,
    name: String,
    password: String,
}

impl TempUser {
    async fn create(tag: &str) -> TempUser {
        let admin = MySqlPoolOptions::new().max_connections(2).connect(&base_url()).await.unwrap();
        let database: String =
            sqlx::query_scalar("SELECT DATABASE()").fetch_one(&admin).await.unwrap();
        let name = format!("kt_{tag}_{}", &prefix("x")[15..23]);
        let password = format!("Pw-{}-s3cret", &prefix("x")[15..]);
        admin
            .execute(format!("CREATE USER '{name}'@'%' IDENTIFIED BY '{password}'").as_str())
            .await
            .unwrap();
        admin
            .execute(format!("GRANT ALL PRIVILEGES ON `{database}`.* TO '{name}'@'%'").as_str())
            .await
            .unwrap();
        TempUser { admin, name, password }
    }

    /// The test server's URL, logging in as this user.
    fn url(&self) -> String {
        let with_password = common::set_password(&base_url(), "root", &self.password);
        let start = with_password.find("://").unwrap() + 3;
        let colon = start + with_password[start..].find(':').unwrap();
        format!("{}{}{}", &with_password[..start], self.name, &with_password[colon..])
    }

    async fn kill_connections(&self) -> u64 {
        let ids: Vec<i64> = sqlx::query_scalar(
            "SELECT CAST(id AS SIGNED) FROM information_schema.processlist WHERE user = ?",
        )
        .bind(&self.name)
        .fetch_all(&self.admin)
        .await
        .unwrap();
        let mut killed = 0;
        for id in ids {
            // The connection may have ended meanwhile.
            if self.admin.execute(format!("KILL CONNECTION {id}").as_str()).await.is_ok() {
                killed += 1;
            }
        }
        killed
    }

    async fn lock(&self, locked: bool) {
        let what = if locked { "LOCK" } else { "UNLOCK" };
        self.admin
            .execute(format!("ALTER USER '{}'@'%' ACCOUNT {what}", self.name).as_str())
            .await
            .unwrap();
    }

    async fn drop_now(self) {
        self.kill_connections().await;
        self.admin.execute(format!("DROP USER '{}'@'%'", self.name).as_str()).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conformance_suite() {
    let Some(store) = connect_or_skip(VAR, &base_url()).await else {
        return;
    };
    let store: SharedStore = Arc::new(store);
    assert_eq!(store.backend(), "mysql");
    let p = prefix("mysql");
    conformance::run_all(store.clone(), &p).await;
    cleanup(&store, &p).await;
}

/// Two pools (two processes) on one database: exactly one winner per round.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_compare_and_set_across_two_pools() {
    let Some(a) = connect_or_skip(VAR, &base_url()).await else {
        return;
    };
    let b = SqlStore::connect(&base_url().replacen("mysql://", "mariadb://", 1)).await.unwrap();
    let (a, b): (SharedStore, SharedStore) = (Arc::new(a), Arc::new(b));
    let p = prefix("mysql-race");
    race_two_pools(a.clone(), b, &p, 8, 30).await;
    cleanup(&a, &p).await;
}

/// The conformance check for an outage: the store's account is locked and
/// its connections killed; every call fails (not with a conflict); then the
/// account is unlocked and the same store carries on without being reopened.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_goes_away_and_comes_back() {
    let Some(_probe) = connect_or_skip(VAR, &base_url()).await else {
        return;
    };
    let user = Arc::new(TempUser::create("away").await);
    let store: SharedStore = Arc::new(SqlStore::connect(&user.url()).await.unwrap());
    let p = prefix("mysql-away");
    let (down, up) = (user.clone(), user.clone());
    conformance::store_goes_away(
        &store,
        &p,
        || async move {
            down.lock(true).await;
            down.kill_connections().await;
        },
        || async move { up.lock(false).await },
    )
    .await;
    cleanup(&store, &p).await;
    drop(store);
    Arc::into_inner(user).expect("one owner left").drop_now().await;
}

/// Writers stream saves while their connections are killed again and again
/// (`KILL CONNECTION`): every record ends at exactly its last acknowledged
/// version and content, and the pool reconnected by itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killed_connections_lose_nothing_acknowledged() {
    let Some(_probe) = connect_or_skip(VAR, &base_url()).await else {
        return;
    };
    let user = Arc::new(TempUser::create("kill").await);
    let store: SharedStore = Arc::new(
        SqlStore::connect(&common::with_params(&user.url(), "pool_size=4")).await.unwrap(),
    );
    let p = prefix("mysql-kill");

    let stop = Arc::new(AtomicBool::new(false));
    let killed = Arc::new(AtomicU64::new(0));
    let killer = {
        let (user, stop, killed) = (user.clone(), stop.clone(), killed.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                killed.fetch_add(user.kill_connections().await, Ordering::SeqCst);
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
    eprintln!("killed {killed} connections; {errors} calls failed and were recovered");
    assert!(killed > 0, "the test killed no connection");
    cleanup(&store, &p).await;
    drop(store);
    Arc::into_inner(user).expect("one owner left").drop_now().await;
}

/// A password in the URL appears in no error message: wrong password,
/// refused connection, or an account locked while the store is in use.
#[tokio::test]
async fn passwords_never_appear_in_errors() {
    let Some(_probe) = connect_or_skip(VAR, &base_url()).await else {
        return;
    };
    let user = TempUser::create("pw").await;
    let secret = user.password.clone();

    let wrong = user.url().replace(&secret, &format!("{secret}-wrong"));
    let refused = format!("mysql://u:{secret}@127.0.0.1:1/test");
    for url in [&wrong, &refused] {
        let started = Instant::now();
        let err = SqlStore::connect(url).await.unwrap_err();
        let text = format!("{err} {err:?}");
        assert!(!text.contains(&secret), "password leaked: {text}");
        assert!(matches!(err, kinesis::Error::Store(_)), "{err}");
        assert!(started.elapsed() < Duration::from_secs(4), "took {:?}", started.elapsed());
        eprintln!("{err}");
    }

    let store = SqlStore::connect(&user.url()).await.unwrap();
    assert!(!format!("{store:?}").contains(&secret));
    user.lock(true).await;
    user.kill_connections().await;
    let err = store.save(&record(&format!("{}/x", prefix("mysql-pw")), 1, 1), 0).await.unwrap_err();
    let text = format!("{err} {err:?}");
    assert!(matches!(err, StoreError::Backend(_)), "{text}");
    assert!(!text.contains(&secret), "password leaked: {text}");
    eprintln!("{err}");
    store.close().await;
    user.drop_now().await;
}

/// `%`, `_` and `!` in a prefix match themselves only, and listing is in
/// byte order (case-sensitive), not the server's collation.
#[tokio::test]
async fn wildcards_in_a_prefix_are_literal_and_order_is_bytewise() {
    let Some(store) = connect_or_skip(VAR, &base_url()).await else {
        return;
    };
    let p = prefix("mysql-wild");
    let names = ["a%b", "axb", "a_c", "ayc", "!", "Q", "q", "é"];
    for name in names {
        store.save(&record(&format!("{p}/{name}"), 1, 0), 0).await.unwrap();
    }
    for (sub, want) in [
        ("a%", vec!["a%b"]),
        ("a_", vec!["a_c"]),
        ("!", vec!["!"]),
        ("q", vec!["q"]),
        ("Q", vec!["Q"]),
    ] {
        let want: Vec<String> = want.iter().map(|n| format!("{p}/{n}")).collect();
        assert_eq!(store.list(&format!("{p}/{sub}")).await.unwrap(), want, "list({sub})");
    }
    let all: Vec<String> = ["!", "Q", "a%b", "a_c", "axb", "ayc", "q", "é"]
        .iter()
        .map(|n| format!("{p}/{n}"))
        .collect();
    assert_eq!(store.list(&format!("{p}/")).await.unwrap(), all);
    // Case matters for keys too.
    assert_eq!(store.load(&format!("{p}/Q")).await.unwrap().unwrap().uri, format!("{p}/Q"));
    let shared: SharedStore = Arc::new(store);
    cleanup(&shared, &p).await;
}
