//! `KINESIS_DB_POOL_SIZE` sizes the pool when the URL does not. One test in
//! its own binary, since it changes the process environment.
#![cfg(feature = "sqlite")]

use kinesis_sql::{SqlStore, DEFAULT_POOL_SIZE, POOL_SIZE_ENV};

#[tokio::test]
async fn pool_size_from_the_environment_unless_the_url_sets_it() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("k.db").display());

    std::env::remove_var(POOL_SIZE_ENV);
    assert_eq!(SqlStore::connect(&url).await.unwrap().pool_size(), DEFAULT_POOL_SIZE);

    std::env::set_var(POOL_SIZE_ENV, "5");
    assert_eq!(SqlStore::connect(&url).await.unwrap().pool_size(), 5);
    assert_eq!(SqlStore::connect(&format!("{url}?pool_size=2")).await.unwrap().pool_size(), 2);

    for bad in ["0", "five", "-3", ""] {
        std::env::set_var(POOL_SIZE_ENV, bad);
        let err = SqlStore::connect(&url).await.unwrap_err();
        assert!(
            matches!(err, kinesis::Error::Config(ref m) if m.contains(POOL_SIZE_ENV)),
            "{bad:?}: {err}"
        );
        // The URL's value wins, so a bad variable is not even read.
        assert!(SqlStore::connect(&format!("{url}?pool_size=1")).await.is_ok());
    }
    std::env::remove_var(POOL_SIZE_ENV);
}
