//! Leases on PostgreSQL: a session advisory lock on a connection per lease.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use kinesis::lease::{Lease, LeaseBackend, LeaseError, LeaseResult};
use kinesis::persist::redact_url;
use kinesis::{Error, Result};
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{Connection, Row};
use tokio::sync::Mutex;

/// The table of fencing tokens.
const CREATE: &str =
    "CREATE TABLE IF NOT EXISTS kinesis_leases (name TEXT PRIMARY KEY, token BIGINT NOT NULL)";

/// The next token of `$1`.
const NEXT_TOKEN: &str = "INSERT INTO kinesis_leases (name, token) VALUES ($1, 1) \
     ON CONFLICT (name) DO UPDATE SET token = kinesis_leases.token + 1 RETURNING token";

/// How long one call to the server may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// Leases on a PostgreSQL server (14 or later: `idle_session_timeout`);
/// see the [crate docs](crate). Each held lease has a connection of its
/// own; the lock is the session's, so it ends with the connection.
pub struct PostgresLeases {
    options: PgConnectOptions,
    display: String,
    /// The connection of each held lease, by holder id.
    held: Mutex<HashMap<String, Arc<Mutex<PgConnection>>>>,
}

impl std::fmt::Debug for PostgresLeases {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresLeases").field("url", &self.display).finish()
    }
}

fn backend(e: impl std::fmt::Display) -> LeaseError {
    LeaseError::Backend(format!("postgres: {e}"))
}

/// `value` as the text `idle_session_timeout` takes: milliseconds.
fn millis(ttl: Duration) -> String {
    format!("{}ms", ttl.as_millis().max(1))
}

async fn timed<T, E: std::fmt::Display>(
    what: &str,
    f: impl std::future::Future<Output = std::result::Result<T, E>>,
) -> LeaseResult<T> {
    match tokio::time::timeout(CALL_TIMEOUT, f).await {
        Ok(r) => r.map_err(backend),
        Err(_) => Err(backend(format!("{what} took longer than {CALL_TIMEOUT:?}"))),
    }
}

impl PostgresLeases {
    /// Connects to `url` once to check it and create the token table.
    pub async fn connect(url: &str) -> Result<PostgresLeases> {
        let display = redact_url(url);
        let fail = |e: &dyn std::fmt::Display| {
            Error::Config(format!("KINESIS_LOCK_URL: cannot use {display}: {e}"))
        };
        let options = PgConnectOptions::from_str(url).map_err(|e| fail(&e))?;
        let mut conn = timed("connecting", PgConnection::connect_with(&options))
            .await
            .map_err(|e| fail(&e))?;
        if let Err(e) = sqlx::query(CREATE).execute(&mut conn).await {
            // Two processes creating the table at once: one loses, the
            // table is there.
            let exists: Option<String> =
                sqlx::query_scalar("SELECT to_regclass('kinesis_leases')::text")
                    .fetch_one(&mut conn)
                    .await
                    .map_err(|e| fail(&e))?;
            if exists.is_none() {
                return Err(fail(&e));
            }
        }
        let _ = conn.close().await;
        Ok(PostgresLeases { options, display, held: Mutex::new(HashMap::new()) })
    }

    async fn take(&self, name: &str, ttl: Duration) -> LeaseResult<Option<(PgConnection, u64)>> {
        let mut conn = timed("connecting", PgConnection::connect_with(&self.options)).await?;
        let locked: bool = timed(
            "pg_try_advisory_lock",
            sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtextextended($1, 0))")
                .bind(name)
                .fetch_one(&mut conn),
        )
        .await?;
        if !locked {
            let _ = conn.close().await;
            return Ok(None);
        }
        let row = timed("drawing a token", sqlx::query(NEXT_TOKEN).bind(name).fetch_one(&mut conn))
            .await?;
        let token: i64 = row.try_get(0).map_err(backend)?;
        // From now on the server ends the session (and frees the lock) if
        // the holder stays silent for the lease time.
        timed(
            "setting idle_session_timeout",
            sqlx::query("SELECT set_config('idle_session_timeout', $1, false)")
                .bind(millis(ttl))
                .execute(&mut conn),
        )
        .await?;
        Ok(Some((conn, u64::try_from(token).map_err(backend)?)))
    }
}

impl LeaseBackend for PostgresLeases {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    fn acquire<'a>(
        &'a self,
        name: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, LeaseResult<Option<Lease>>> {
        Box::pin(async move {
            let Some((conn, token)) = self.take(name, ttl).await? else { return Ok(None) };
            let holder = format!("{:032x}", rand::random::<u128>());
            self.held.lock().await.insert(holder.clone(), Arc::new(Mutex::new(conn)));
            Ok(Some(Lease { name: name.to_owned(), token, holder }))
        })
    }

    fn renew<'a>(&'a self, lease: &'a Lease, ttl: Duration) -> BoxFuture<'a, LeaseResult<bool>> {
        Box::pin(async move {
            let Some(conn) = self.held.lock().await.get(&lease.holder).cloned() else {
                return Ok(false);
            };
            let mut conn = conn.lock().await;
            // Any statement resets the server's idle timer; the session
            // still being there means the lock is still held.
            let renewed = tokio::time::timeout(
                CALL_TIMEOUT,
                sqlx::query("SELECT set_config('idle_session_timeout', $1, false)")
                    .bind(millis(ttl))
                    .execute(&mut *conn),
            )
            .await;
            match renewed {
                Ok(Ok(_)) => Ok(true),
                // The session is gone or unusable: so is the lock.
                Ok(Err(e)) => {
                    tracing::warn!(target: "kinesis::lease", lease = %lease.name, error = %e, "the lease's connection failed: lease lost");
                    drop(conn);
                    self.held.lock().await.remove(&lease.holder);
                    Ok(false)
                }
                Err(_) => Err(backend(format!("renewal took longer than {CALL_TIMEOUT:?}"))),
            }
        })
    }

    fn release<'a>(&'a self, lease: &'a Lease) -> BoxFuture<'a, LeaseResult<()>> {
        Box::pin(async move {
            let Some(conn) = self.held.lock().await.remove(&lease.holder) else { return Ok(()) };
            let mut conn = conn.lock().await;
            // Unlocked before the session ends, so the next holder can take
            // it as soon as this returns (ending a session frees its locks
            // too, but the server does it after the client has gone).
            let unlocked = timed(
                "pg_advisory_unlock",
                sqlx::query("SELECT pg_advisory_unlock(hashtextextended($1, 0))")
                    .bind(&lease.name)
                    .execute(&mut *conn),
            )
            .await;
            drop(conn);
            unlocked?;
            Ok(())
        })
    }
}
