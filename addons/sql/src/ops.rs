//! The store operations, written once over sqlx for every [`Dialect`].

use std::future::Future;
use std::time::Duration;

use kinesis::persist::{Record, StoreError, StoreResult};
use serde_json::{Map, Value};
use sqlx::pool::PoolOptions;
use sqlx::{
    ColumnIndex, ConnectOptions, Connection, Database, Decode, Encode, Executor, IntoArguments,
    Pool, Row, Type,
};

use crate::dialect::Dialect;
use crate::url::ConnUrl;
use crate::{ACQUIRE_TIMEOUT, MAX_URI_LEN, OPERATION_TIMEOUT};

/// One back-end's pool and the URL it was opened from.
pub(crate) struct Ops<DB: Database> {
    pub(crate) pool: Pool<DB>,
    pub(crate) url: ConnUrl,
    /// Held by every write when the database takes one writer at a time
    /// (SQLite): writers of this process queue here instead of contending
    /// for the database lock with sleep-and-retry.
    write_lock: Option<tokio::sync::Mutex<()>>,
}

impl<DB> Ops<DB>
where
    DB: Dialect,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> String: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> i32: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    usize: ColumnIndex<DB::Row>,
{
    /// Connects once directly (so a failure reports its cause at once),
    /// then opens the pool and creates the table if it is missing.
    pub(crate) async fn open(
        url: ConnUrl,
        options: <DB::Connection as Connection>::Options,
        pool: PoolOptions<DB>,
        one_writer: bool,
    ) -> kinesis::Result<Self> {
        let startup = |what: &str, cause: String| -> kinesis::Error {
            StoreError::Backend(format!(
                "{} {}: {what}: {}",
                DB::BACKEND,
                url.display,
                url.scrub(&cause)
            ))
            .into()
        };

        match tokio::time::timeout(ACQUIRE_TIMEOUT, options.connect()).await {
            Ok(Ok(conn)) => {
                let _ = conn.close().await;
            }
            Ok(Err(e)) => return Err(startup("cannot connect", e.to_string())),
            Err(_) => {
                return Err(startup(
                    "cannot connect",
                    format!("no answer within {ACQUIRE_TIMEOUT:?}"),
                ))
            }
        }

        let pool = pool.connect_lazy_with(options);
        let create = async {
            let mut conn = pool.acquire().await?;
            let mut tx = conn.begin().await?;
            for statement in DB::SQL.create {
                tx.execute(*statement).await?;
            }
            tx.commit().await?;
            conn.execute(DB::SQL.probe).await?;
            Ok::<_, sqlx::Error>(())
        };
        match tokio::time::timeout(OPERATION_TIMEOUT, create).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                pool.close().await;
                return Err(startup(
                    &format!("cannot create or use the table {}", crate::TABLE),
                    e.to_string(),
                ));
            }
            Err(_) => {
                pool.close().await;
                return Err(startup(
                    &format!("cannot create the table {}", crate::TABLE),
                    format!("no answer within {OPERATION_TIMEOUT:?}"),
                ));
            }
        }
        tracing::info!(
            backend = DB::BACKEND,
            url = %url.display,
            pool_size = pool.options().get_max_connections(),
            "SQL store connected"
        );
        let write_lock = one_writer.then(|| tokio::sync::Mutex::new(()));
        Ok(Ops { pool, url, write_lock })
    }

    pub(crate) async fn load(&self, uri: &str) -> StoreResult<Option<Record>> {
        check_uri(uri)?;
        let row = self
            .run("load", uri, async {
                sqlx::query::<DB>(DB::SQL.load).bind(uri).fetch_optional(&self.pool).await
            })
            .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let corrupt = |reason: String| StoreError::Corrupt { uri: uri.to_owned(), reason };
        let get_err = |e: sqlx::Error| corrupt(format!("unreadable column: {e}"));
        let type_name: String = row.try_get(0).map_err(get_err)?;
        let version: i64 = row.try_get(1).map_err(get_err)?;
        let updated_at: String = row.try_get(2).map_err(get_err)?;
        let schema: i32 = row.try_get(3).map_err(get_err)?;
        let fields: String = row.try_get(4).map_err(get_err)?;
        let version = u64::try_from(version)
            .ok()
            .filter(|v| *v >= 1)
            .ok_or_else(|| corrupt(format!("version {version} is not a positive number")))?;
        let schema =
            u32::try_from(schema).map_err(|_| corrupt(format!("schema {schema} is negative")))?;
        let fields: Map<String, Value> = serde_json::from_str(&fields)
            .map_err(|e| corrupt(format!("fields are not a JSON object: {e}")))?;
        Ok(Some(Record { schema, uri: uri.to_owned(), type_name, version, updated_at, fields }))
    }

    pub(crate) async fn save(&self, record: &Record, expected: u64) -> StoreResult<()> {
        let uri = record.uri.as_str();
        check_uri(uri)?;
        let invalid = |reason: String| StoreError::Corrupt { uri: uri.to_owned(), reason };
        if expected.checked_add(1) != Some(record.version) {
            return Err(invalid(format!(
                "refusing to save version {} over expected version {expected}: \
                 a save must write version expected + 1",
                record.version
            )));
        }
        let version = i64::try_from(record.version)
            .map_err(|_| invalid(format!("version {} is too large to store", record.version)))?;
        let schema = i32::try_from(record.schema)
            .map_err(|_| invalid(format!("schema {} is too large to store", record.schema)))?;
        let fields = serde_json::to_string(&record.fields)
            .map_err(|e| invalid(format!("fields cannot be written as JSON: {e}")))?;
        let _writing = self.writing().await;

        if expected == 0 {
            let inserted = self
                .run("save", uri, async {
                    let result = sqlx::query::<DB>(DB::SQL.insert)
                        .bind(uri)
                        .bind(record.type_name.as_str())
                        .bind(version)
                        .bind(record.updated_at.as_str())
                        .bind(schema)
                        .bind(fields.as_str())
                        .execute(&self.pool)
                        .await;
                    match result {
                        Ok(_) => Ok(true),
                        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Ok(false),
                        Err(e) => Err(e),
                    }
                })
                .await?;
            if inserted {
                return Ok(());
            }
        } else {
            let expected_i64 = i64::try_from(expected).unwrap_or(i64::MAX);
            let rows = self
                .run("save", uri, async {
                    sqlx::query::<DB>(DB::SQL.update)
                        .bind(record.type_name.as_str())
                        .bind(version)
                        .bind(record.updated_at.as_str())
                        .bind(schema)
                        .bind(fields.as_str())
                        .bind(uri)
                        .bind(expected_i64)
                        .execute(&self.pool)
                        .await
                        .map(|r| DB::rows_affected(&r))
                })
                .await?;
            if rows == 1 {
                return Ok(());
            }
        }
        let found = self.version_of(uri).await?;
        Err(StoreError::Conflict { uri: uri.to_owned(), expected, found })
    }

    async fn version_of(&self, uri: &str) -> StoreResult<Option<u64>> {
        let version: Option<i64> = self
            .run("save", uri, async {
                sqlx::query_scalar::<DB, i64>(DB::SQL.version)
                    .bind(uri)
                    .fetch_optional(&self.pool)
                    .await
            })
            .await?;
        Ok(version.map(|v| u64::try_from(v).unwrap_or(0)))
    }

    pub(crate) async fn delete(&self, uri: &str) -> StoreResult<bool> {
        check_uri(uri)?;
        let _writing = self.writing().await;
        let rows = self
            .run("delete", uri, async {
                sqlx::query::<DB>(DB::SQL.delete)
                    .bind(uri)
                    .execute(&self.pool)
                    .await
                    .map(|r| DB::rows_affected(&r))
            })
            .await?;
        Ok(rows > 0)
    }

    pub(crate) async fn list(&self, prefix: &str) -> StoreResult<Vec<String>> {
        let pattern = DB::prefix_pattern(prefix);
        let mut uris = self
            .run("list", prefix, async {
                sqlx::query_scalar::<DB, String>(DB::SQL.list)
                    .bind(pattern.as_str())
                    .fetch_all(&self.pool)
                    .await
            })
            .await?;
        // The SQL already filters and orders byte-wise; this keeps the promise
        // even on a table whose collation was changed by hand.
        uris.retain(|u| u.starts_with(prefix));
        uris.sort_unstable();
        Ok(uris)
    }

    /// Waits for this process's turn to write, where writes are serialised.
    async fn writing(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        match &self.write_lock {
            Some(lock) => Some(lock.lock().await),
            None => None,
        }
    }

    /// Runs one database call under [`OPERATION_TIMEOUT`], turning its
    /// failure into [`StoreError::Backend`] with the cause and no secret.
    async fn run<T>(
        &self,
        op: &str,
        key: &str,
        call: impl Future<Output = Result<T, sqlx::Error>>,
    ) -> StoreResult<T> {
        let cause = match tokio::time::timeout(OPERATION_TIMEOUT, call).await {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(sqlx::Error::PoolTimedOut)) => self.diagnose_pool_timeout().await,
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!(
                "no answer within {OPERATION_TIMEOUT:?} (the outcome of a save is unknown: reload to find out)"
            ),
        };
        let message =
            format!("{} {}: {op} {key}: {}", DB::BACKEND, self.url.display, self.url.scrub(&cause));
        tracing::warn!(backend = DB::BACKEND, %message, "store operation failed");
        Err(StoreError::Backend(message))
    }

    /// sqlx reports only "pool timed out"; a direct connection attempt tells
    /// a server that is down from a pool whose connections are all busy.
    async fn diagnose_pool_timeout(&self) -> String {
        let waited = format!("no database connection within {ACQUIRE_TIMEOUT:?}");
        if self.pool.is_closed() {
            return "the store was closed".to_owned();
        }
        let options = self.pool.connect_options();
        match tokio::time::timeout(Duration::from_secs(2), options.connect()).await {
            Ok(Ok(conn)) => {
                let _ = conn.close().await;
                format!(
                    "{waited}: all {} connections are busy",
                    self.pool.options().get_max_connections()
                )
            }
            Ok(Err(e)) => format!("{waited}: cannot connect: {e}"),
            Err(_) => format!("{waited}: the server does not answer"),
        }
    }
}

/// URIs the SQL stores refuse: empty, longer than [`MAX_URI_LEN`] bytes, or
/// holding a NUL character (PostgreSQL text cannot).
fn check_uri(uri: &str) -> StoreResult<()> {
    if uri.is_empty() {
        return Err(StoreError::InvalidKey("(empty)".to_owned()));
    }
    if uri.len() > MAX_URI_LEN {
        let cut = (0..=64).rev().find(|i| uri.is_char_boundary(*i)).unwrap_or(0);
        return Err(StoreError::InvalidKey(format!(
            "{}… is {} bytes long, the most is {MAX_URI_LEN}",
            &uri[..cut],
            uri.len()
        )));
    }
    if uri.contains('\0') {
        return Err(StoreError::InvalidKey(format!("{:?} contains a NUL character", uri)));
    }
    Ok(())
}
