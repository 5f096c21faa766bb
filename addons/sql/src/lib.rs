//! SQL stores of kinesis through sqlx: SQLite, PostgreSQL, MySQL/MariaDB.
//!
//! [`SqlStore`] implements [`Store`] on one table, `kinesis_records`, which
//! [`SqlStore::connect`] creates if it is missing:
//!
//! | column | SQLite | PostgreSQL | MySQL / MariaDB |
//! | --- | --- | --- | --- |
//! | `uri` (primary key) | `TEXT` | `TEXT COLLATE "C"` | `VARBINARY(1024)` |
//! | `type` | `TEXT` | `TEXT` | `TEXT` |
//! | `version` | `INTEGER` | `BIGINT` | `BIGINT` |
//! | `updated_at` (RFC 3339) | `TEXT` | `TEXT` | `VARCHAR(64)` |
//! | `schema` | `INTEGER` | `INTEGER` | `INT` |
//! | `fields` | `TEXT` (JSON) | `JSONB` | `JSON` |
//!
//! # Guarantees
//!
//! * **Compare-and-set across processes.** [`Store::save`] with `expected > 0`
//!   is one `UPDATE … WHERE uri = ? AND version = ?`; it wrote if and only if
//!   it matched one row. With `expected == 0` it is one `INSERT`, and the
//!   primary key makes a second insert of the same uri fail; that unique
//!   violation becomes [`StoreError::Conflict`]. Any number of processes and
//!   pools sharing one database therefore see exactly one winner per version.
//!   On a conflict the found version is read afterwards, so it is the version
//!   at that moment, which may already be newer than the one that won.
//! * **Durable on success.** Every statement runs in autocommit; `save`
//!   returns `Ok` only after the database committed. SQLite runs in WAL mode
//!   with `synchronous = FULL`.
//! * **SQLite writers queue.** SQLite takes one writer at a time: writes of
//!   one store wait for each other in order, and a write blocked by another
//!   process waits up to [`SQLITE_BUSY_TIMEOUT`] before failing with
//!   [`StoreError::Backend`]. Reads never wait for writers (WAL).
//! * **`list` is byte-ordered** (the order of Rust's `str`), whatever the
//!   database's collation settings, and a prefix containing `%`, `_`, `*`,
//!   `?` or `[` matches literally.
//! * **Failures.** A lost connection, a server restart or a server that is
//!   down gives [`StoreError::Backend`] (at connect: [`kinesis::Error::Store`])
//!   with the driver's cause. Waiting for a connection gives up after
//!   [`ACQUIRE_TIMEOUT`], any database call after [`OPERATION_TIMEOUT`]. The
//!   pool drops broken connections and opens new ones by itself: once the
//!   server is back, the next operations succeed without reconnecting by
//!   hand. A `save` that failed this way may or may not have been committed;
//!   the next `save` with the same `expected` then gets a `Conflict`, and a
//!   `load` tells which.
//! * **Changes across processes (PostgreSQL).** A trigger keeps the last
//!   versions of each record in `kinesis_changes` and sends `NOTIFY` in the
//!   saving transaction; a listener on a connection of its own hands them to
//!   the store's [`ChangeFeed`](kinesis::persist::ChangeFeed), and after a
//!   lost connection replays what it missed from that table. See [`notify`]
//!   (feature `postgres`).
//! * **No secrets in messages.** Errors and logs name the URL with its
//!   password replaced by `***` and its query string left out, and any
//!   password of the URL is masked in driver messages too.
//!
//! # URLs
//!
//! * `sqlite://path/to/file.db` (relative to the working directory),
//!   `sqlite:///absolute/path.db`: the file and its directory are created if
//!   missing. `sqlite://:memory:` keeps records in memory with one connection.
//! * `postgres://user:password@host:5432/database` (also `postgresql://`).
//! * `mysql://user:password@host:3306/database` (also `mariadb://`).
//!
//! Driver parameters (`sslmode`, `application_name`…) pass through to sqlx.
//! The pool size is the URL's `pool_size` parameter, else
//! [`POOL_SIZE_ENV`] (read by [`SqlConfig`], the one place that parses it),
//! else [`DEFAULT_POOL_SIZE`]; a value that is not a whole number from 1 to
//! 10000 is a [`kinesis::Error::Config`] naming its source.
//!
//! # Environment
//!
//! | variable | accepts | default |
//! | --- | --- | --- |
//! | `KINESIS_DB_POOL_SIZE` | connections per pool, 1–10000; the URL's `pool_size` wins | 10 |
//!
//! [`VARIABLES`] lists it for `kinesis --help`.
//!
//! # Limits
//!
//! * URIs are at most [`MAX_URI_LEN`] bytes and hold no NUL character;
//!   others give [`StoreError::InvalidKey`].
//! * PostgreSQL's `jsonb` cannot hold the character U+0000 in a string, so a
//!   field value containing it fails to save there (as `Backend`). `jsonb`
//!   and MySQL's `JSON` also do not keep the order of object keys.
//!
//! ```no_run
//! # async fn demo() -> kinesis::Result<()> {
//! use kinesis::persist::{Record, Store, StoreRegistry};
//!
//! let store = kinesis_sql::SqlStore::connect("sqlite://data/kinesis.db").await?;
//! let record = Record::new("/root/counter", "app::Counter", 1, Default::default());
//! store.save(&record, 0).await?;
//!
//! // Or by scheme, as the runtime does with KINESIS_DB_CONNECTION:
//! let mut registry = StoreRegistry::with_builtin();
//! kinesis_sql::register(&mut registry);
//! let store = registry.open("sqlite://data/kinesis.db").await?;
//! # Ok(()) }
//! ```
//!
//! [`StoreError::Conflict`]: kinesis::persist::StoreError::Conflict
//! [`StoreError::Backend`]: kinesis::persist::StoreError::Backend
//! [`StoreError::InvalidKey`]: kinesis::persist::StoreError::InvalidKey

// Built without any back-end feature the crate still compiles (every URL is
// then a configuration error), leaving the shared parts unused.
#![cfg_attr(
    not(any(feature = "sqlite", feature = "postgres", feature = "mysql")),
    allow(dead_code, unused_variables, unused_imports)
)]

mod dialect;
#[cfg(feature = "postgres")]
pub mod notify;
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
mod ops;
mod url;

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
#[cfg(feature = "sqlite")]
use kinesis::persist::StoreError;
use kinesis::persist::{Record, SharedStore, Store, StoreRegistry, StoreResult};
use kinesis::{Error, Result};

#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
use ops::Ops;
use url::ConnUrl;

/// The table records live in.
pub const TABLE: &str = dialect::TABLE;

/// The environment variable that sets the pool size when the URL has no
/// `pool_size` parameter.
pub const POOL_SIZE_ENV: &str = "KINESIS_DB_POOL_SIZE";

/// The pool size when neither the URL nor [`POOL_SIZE_ENV`] sets one.
pub const DEFAULT_POOL_SIZE: u32 = 10;

/// The variables the SQL stores read, with what each accepts (for
/// `kinesis --help`).
pub const VARIABLES: &[(&str, &str)] =
    &[(POOL_SIZE_ENV, "SQL connections per pool, 1-10000 (default: the URL's pool_size, else 10)")];

/// The SQL stores' settings from the environment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SqlConfig {
    /// [`POOL_SIZE_ENV`], if set: the pool size for URLs without a
    /// `pool_size` parameter.
    pub pool_size: Option<u32>,
}

impl SqlConfig {
    /// Reads and validates the process environment.
    pub fn from_env() -> Result<SqlConfig> {
        SqlConfig::from_lookup(kinesis::config::env_var)
    }

    /// Reads and validates variables from `lookup` (for tests); the shape of
    /// [`kinesis::Config::from_lookup`]. A set but blank [`POOL_SIZE_ENV`]
    /// is an error, as is any value that is not a whole number from 1 to 10000.
    ///
    /// ```
    /// use kinesis::config::from_pairs;
    /// use kinesis_sql::SqlConfig;
    ///
    /// let cfg = SqlConfig::from_lookup(from_pairs(&[("KINESIS_DB_POOL_SIZE", "4")])).unwrap();
    /// assert_eq!(cfg.pool_size, Some(4));
    /// assert_eq!(SqlConfig::from_lookup(from_pairs(&[])).unwrap().pool_size, None);
    /// let err = SqlConfig::from_lookup(from_pairs(&[("KINESIS_DB_POOL_SIZE", "0")])).unwrap_err();
    /// assert!(err.to_string().contains("KINESIS_DB_POOL_SIZE"));
    /// ```
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<Result<String>>) -> Result<SqlConfig> {
        let pool_size = match lookup(POOL_SIZE_ENV) {
            None => None,
            Some(value) => Some(url::parse_pool_size(&value?, POOL_SIZE_ENV)?),
        };
        Ok(SqlConfig { pool_size })
    }
}

/// How long an operation waits for a pooled connection (which includes
/// connecting, and retrying while the server refuses connections) before it
/// fails with [`StoreError::Backend`](kinesis::persist::StoreError::Backend).
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// How long one database call may take before the operation fails with
/// [`StoreError::Backend`](kinesis::persist::StoreError::Backend). Bounds the
/// wait on a server that stopped answering without closing the connection.
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(30);

/// How long an SQLite connection waits for another writer's lock.
pub const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The longest URI, in bytes, the SQL stores accept.
pub const MAX_URI_LEN: usize = 1024;

/// A [`Store`] on an SQL database: a connection pool and the SQL of its
/// back-end. Share it as a [`SharedStore`] (`Arc<dyn Store>`); every method
/// takes `&self` and may be called from many tasks at once.
pub struct SqlStore {
    inner: Inner,
    display: String,
    /// PostgreSQL: the listener that brings other processes' saves.
    listening: Listening,
}

/// The change listener of a PostgreSQL store ([`notify`]).
#[cfg(feature = "postgres")]
type Listening = Option<notify::Listening>;
/// No other back-end has a change listener.
#[cfg(not(feature = "postgres"))]
type Listening = Option<std::convert::Infallible>;

enum Inner {
    #[cfg(feature = "sqlite")]
    Sqlite(Ops<sqlx::Sqlite>),
    #[cfg(feature = "postgres")]
    Postgres(Ops<sqlx::Postgres>),
    #[cfg(feature = "mysql")]
    MySql(Ops<sqlx::MySql>),
}

/// Calls the same method on whichever back-end `$inner` holds.
macro_rules! dispatch {
    ($inner:expr, $ops:ident => $call:expr) => {
        match $inner {
            #[cfg(feature = "sqlite")]
            Inner::Sqlite(ref $ops) => $call,
            #[cfg(feature = "postgres")]
            Inner::Postgres(ref $ops) => $call,
            #[cfg(feature = "mysql")]
            Inner::MySql(ref $ops) => $call,
        }
    };
}

/// The URL schemes this build can open, following its Cargo features.
pub fn schemes() -> Vec<&'static str> {
    let mut schemes = Vec::new();
    if cfg!(feature = "sqlite") {
        schemes.push("sqlite");
    }
    if cfg!(feature = "postgres") {
        schemes.extend(["postgres", "postgresql"]);
    }
    if cfg!(feature = "mysql") {
        schemes.extend(["mysql", "mariadb"]);
    }
    schemes
}

/// Registers [`SqlStore`] in `registry` for each scheme of [`schemes`].
pub fn register(registry: &mut StoreRegistry) {
    for scheme in schemes() {
        registry.register(scheme, |url| {
            Box::pin(async move { Ok(Arc::new(SqlStore::connect(&url).await?) as SharedStore) })
        });
    }
}

impl SqlStore {
    /// Connects to the database `url` names, checks it can be reached (the
    /// error says why not, at once), and creates the table if it is missing.
    ///
    /// The pool size is the URL's `pool_size`, else [`SqlConfig::from_env`],
    /// else [`DEFAULT_POOL_SIZE`].
    ///
    /// Errors: [`Error::Config`] for a URL this build cannot open or a bad
    /// pool size; [`Error::Store`] when the database cannot be reached or the
    /// table cannot be created or has other columns.
    pub async fn connect(url: &str) -> Result<SqlStore> {
        let url = ConnUrl::parse(url)?;
        // The URL's value wins, so the variable is read only without one.
        let pool_size = match url.pool_size {
            Some(n) => n,
            None => SqlConfig::from_env()?.pool_size.unwrap_or(DEFAULT_POOL_SIZE),
        };
        let display = url.display.clone();
        let (inner, listening) = open_inner(url, pool_size).await?;
        Ok(SqlStore { inner, display, listening })
    }

    /// The most connections the pool opens at once.
    pub fn pool_size(&self) -> u32 {
        dispatch!(self.inner, ops => ops.pool.options().get_max_connections())
    }

    /// Closes every connection, waiting for the ones in use to be returned.
    /// Operations afterwards fail with
    /// [`StoreError::Backend`](kinesis::persist::StoreError::Backend).
    pub async fn close(&self) {
        dispatch!(self.inner, ops => ops.pool.close().await)
    }
}

/// Opens the back-end of `url`'s scheme, if this build has it.
/// A PostgreSQL store also starts listening for changes ([`notify`]).
async fn open_inner(url: ConnUrl, pool_size: u32) -> Result<(Inner, Listening)> {
    match url.scheme.as_str() {
        #[cfg(feature = "sqlite")]
        "sqlite" => Ok((Inner::Sqlite(connect_sqlite(url, pool_size).await?), None)),
        #[cfg(feature = "postgres")]
        "postgres" | "postgresql" => {
            let options = parse_options::<sqlx::postgres::PgConnectOptions>(&url)?;
            let ops = Ops::open(url, options.clone(), pool_options(pool_size), false).await?;
            let listening = notify::start(&ops.url, options, ops.pool.clone()).await?;
            Ok((Inner::Postgres(ops), Some(listening)))
        }
        #[cfg(feature = "mysql")]
        "mysql" | "mariadb" => {
            let options = parse_options::<sqlx::mysql::MySqlConnectOptions>(&url)?;
            Ok((Inner::MySql(Ops::open(url, options, pool_options(pool_size), false).await?), None))
        }
        other => Err(Error::Config(format!(
            "kinesis-sql cannot open `{other}://` URLs; this build opens: {}",
            schemes().iter().map(|s| format!("{s}://")).collect::<Vec<_>>().join(", ")
        ))),
    }
}

#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
fn pool_options<DB: sqlx::Database>(size: u32) -> sqlx::pool::PoolOptions<DB> {
    sqlx::pool::PoolOptions::new()
        .max_connections(size)
        .min_connections(0)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .idle_timeout(Duration::from_secs(600))
        .max_lifetime(Duration::from_secs(1800))
        .test_before_acquire(true)
}

#[cfg(any(feature = "postgres", feature = "mysql"))]
fn parse_options<O>(url: &ConnUrl) -> Result<O>
where
    O: std::str::FromStr<Err = sqlx::Error>,
{
    url.driver_url.parse::<O>().map_err(|e| {
        Error::Config(format!(
            "KINESIS_DB_CONNECTION: cannot read {}: {}",
            url.display,
            url.scrub(&e.to_string())
        ))
    })
}

#[cfg(feature = "sqlite")]
async fn connect_sqlite(url: ConnUrl, pool_size: u32) -> Result<Ops<sqlx::Sqlite>> {
    use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};

    // sqlx reads `sqlite:` URLs without the `//`, and with it.
    let mut options: SqliteConnectOptions = url.driver_url.parse().map_err(|e: sqlx::Error| {
        Error::Config(format!(
            "KINESIS_DB_CONNECTION: cannot read {}: {}",
            url.display,
            url.scrub(&e.to_string())
        ))
    })?;
    let memory = url.is_sqlite_memory();
    if !url.has_param("mode") {
        options = options.create_if_missing(true);
    }
    if !memory {
        if let Some(dir) = options.get_filename().parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                Error::from(StoreError::Backend(format!(
                    "sqlite {}: cannot create the directory {}: {e}",
                    url.display,
                    dir.display()
                )))
            })?;
        }
    }
    let options = options
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(SQLITE_BUSY_TIMEOUT);

    let pool = if memory {
        // Every connection to `:memory:` would see its own database; one
        // connection kept open for the life of the pool keeps them together.
        pool_options(1).min_connections(1).idle_timeout(None).max_lifetime(None)
    } else {
        pool_options(pool_size)
    };
    Ops::open(url, options, pool, true).await
}

impl Store for SqlStore {
    fn backend(&self) -> &'static str {
        dispatch!(self.inner, _ops => dialect_name(_ops))
    }

    fn load<'a>(&'a self, uri: &'a str) -> BoxFuture<'a, StoreResult<Option<Record>>> {
        dispatch!(self.inner, ops => Box::pin(ops.load(uri)))
    }

    fn save<'a>(&'a self, record: &'a Record, expected: u64) -> BoxFuture<'a, StoreResult<()>> {
        dispatch!(self.inner, ops => Box::pin(ops.save(record, expected)))
    }

    fn delete<'a>(&'a self, uri: &'a str) -> BoxFuture<'a, StoreResult<bool>> {
        dispatch!(self.inner, ops => Box::pin(ops.delete(uri)))
    }

    fn list<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, StoreResult<Vec<String>>> {
        dispatch!(self.inner, ops => Box::pin(ops.list(prefix)))
    }

    fn feed(&self) -> Option<Arc<kinesis::persist::ChangeFeed>> {
        #[cfg(feature = "postgres")]
        return self.listening.as_ref().map(|l| Arc::clone(&l.feed));
        #[cfg(not(feature = "postgres"))]
        return self.listening.map(|never| match never {});
    }
}

#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
fn dialect_name<DB: dialect::Dialect>(_: &Ops<DB>) -> &'static str {
    DB::BACKEND
}

impl std::fmt::Debug for SqlStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlStore")
            .field("backend", &self.backend())
            .field("url", &self.display)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use kinesis::config::from_pairs;

    use super::*;

    #[test]
    fn pool_size_from_a_lookup() {
        assert_eq!(SqlConfig::from_lookup(from_pairs(&[])).unwrap(), SqlConfig::default());
        let cfg = SqlConfig::from_lookup(from_pairs(&[(POOL_SIZE_ENV, " 25 ")])).unwrap();
        assert_eq!(cfg.pool_size, Some(25));
        for bad in ["0", "10001", "five", "-3", ""] {
            let err = SqlConfig::from_lookup(from_pairs(&[(POOL_SIZE_ENV, bad)])).unwrap_err();
            assert!(
                matches!(err, Error::Config(ref m) if m.contains(POOL_SIZE_ENV) && m.contains("10000")),
                "{bad:?}: {err}"
            );
        }
    }

    #[test]
    fn the_table_lists_the_pool_size() {
        assert_eq!(VARIABLES.iter().map(|(n, _)| *n).collect::<Vec<_>>(), [POOL_SIZE_ENV]);
    }
}
