//! PostgreSQL tells every process about every save: a trigger keeps a
//! bounded history of records and sends `NOTIFY`; a listener in each
//! process hands the changes to the store's
//! [`ChangeFeed`](kinesis::persist::ChangeFeed).
//!
//! * The trigger runs in the saving transaction: a version is in the
//!   history and notified if and only if it was committed, and
//!   notifications arrive in commit order. It keeps the last
//!   [`HISTORY_VERSIONS`] versions of each URI in `kinesis_changes`.
//! * The notification on channel [`CHANNEL`] carries the whole record
//!   (fields as stored: encrypted ones stay encrypted) when it fits
//!   PostgreSQL's 8000-byte limit, else only the URI and version; the
//!   receiver then reads the record from the history.
//! * The listener holds a connection of its own, named
//!   [`LISTENER_APPLICATION_NAME`] (`application_name`, visible in
//!   `pg_stat_activity`). When it is lost, the listener connects again
//!   (retrying every [`RECONNECT_INTERVAL`]) and then resyncs the feed:
//!   every component reads the versions it missed from the history.

use std::sync::{Arc, Weak};
use std::time::Duration;

use futures::future::BoxFuture;
use kinesis::persist::{ChangeFeed, History, Record, RemoteChange, StoreError, StoreResult};
use serde_json::{Map, Value};
use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions};
use sqlx::Row;

use crate::url::ConnUrl;
use crate::OPERATION_TIMEOUT;

/// The channel saves are notified on.
pub const CHANNEL: &str = "kinesis_changes";

/// The `application_name` of the listener's connection.
pub const LISTENER_APPLICATION_NAME: &str = "kinesis-listener";

/// How many versions of each URI the history keeps.
pub const HISTORY_VERSIONS: u64 = 1000;

/// How long the listener waits between attempts to connect again.
pub const RECONNECT_INTERVAL: Duration = Duration::from_millis(500);

/// The statements that create the history table, the trigger function and
/// the trigger; run with the table's creation, under its advisory lock.
pub(crate) const CREATE: [&str; 3] = [
    "CREATE TABLE IF NOT EXISTS kinesis_changes (
        uri TEXT COLLATE \"C\" NOT NULL,
        version BIGINT NOT NULL,
        type TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        \"schema\" INTEGER NOT NULL,
        fields JSONB NOT NULL,
        PRIMARY KEY (uri, version)
    )",
    // 1000 = HISTORY_VERSIONS; 7900 keeps the payload under the 8000-byte limit.
    "CREATE OR REPLACE FUNCTION kinesis_record_changed() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE payload TEXT;
    BEGIN
        IF TG_OP = 'DELETE' THEN
            DELETE FROM kinesis_changes WHERE uri = OLD.uri;
            RETURN NULL;
        END IF;
        INSERT INTO kinesis_changes (uri, version, type, updated_at, \"schema\", fields)
            VALUES (NEW.uri, NEW.version, NEW.type, NEW.updated_at, NEW.\"schema\", NEW.fields)
            ON CONFLICT (uri, version) DO UPDATE SET type = EXCLUDED.type,
                updated_at = EXCLUDED.updated_at, \"schema\" = EXCLUDED.\"schema\", fields = EXCLUDED.fields;
        DELETE FROM kinesis_changes WHERE uri = NEW.uri AND version <= NEW.version - 1000;
        payload := json_build_object('uri', NEW.uri, 'version', NEW.version, 'type', NEW.type,
            'updated_at', NEW.updated_at, 'schema', NEW.\"schema\", 'fields', NEW.fields)::text;
        IF octet_length(payload) > 7900 THEN
            payload := json_build_object('uri', NEW.uri, 'version', NEW.version)::text;
        END IF;
        PERFORM pg_notify('kinesis_changes', payload);
        RETURN NULL;
    END $$",
    // Created once: replacing it would lock the records table at every start.
    "DO $$ BEGIN
        IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'kinesis_record_changed'
                       AND tgrelid = 'kinesis_records'::regclass) THEN
            CREATE TRIGGER kinesis_record_changed AFTER INSERT OR UPDATE OR DELETE ON kinesis_records
                FOR EACH ROW EXECUTE FUNCTION kinesis_record_changed();
        END IF;
    END $$",
];

const SINCE: &str =
    "SELECT type, version, updated_at, \"schema\", fields::text FROM kinesis_changes \
                     WHERE uri = $1 AND version > $2 ORDER BY version LIMIT 1000";

/// The history table, read through the store's pool.
struct PgHistory {
    pool: PgPool,
}

impl History for PgHistory {
    fn since<'a>(&'a self, uri: &'a str, after: u64) -> BoxFuture<'a, StoreResult<Vec<Record>>> {
        Box::pin(async move {
            let after = i64::try_from(after).unwrap_or(i64::MAX);
            let query = sqlx::query(SINCE).bind(uri).bind(after).fetch_all(&self.pool);
            let rows = match tokio::time::timeout(OPERATION_TIMEOUT, query).await {
                Ok(Ok(rows)) => rows,
                Ok(Err(e)) => return Err(StoreError::Backend(format!("postgres history: {e}"))),
                Err(_) => return Err(StoreError::Backend("postgres history: no answer".into())),
            };
            rows.iter().map(|row| record_of(uri, row)).collect()
        })
    }
}

fn record_of(uri: &str, row: &sqlx::postgres::PgRow) -> StoreResult<Record> {
    let corrupt = |reason: String| StoreError::Corrupt { uri: uri.to_owned(), reason };
    let get = |e: sqlx::Error| corrupt(format!("unreadable history column: {e}"));
    let version: i64 = row.try_get(1).map_err(get)?;
    let schema: i32 = row.try_get(3).map_err(get)?;
    let fields: String = row.try_get(4).map_err(get)?;
    Ok(Record {
        schema: u32::try_from(schema).map_err(|_| corrupt(format!("schema {schema}")))?,
        uri: uri.to_owned(),
        type_name: row.try_get(0).map_err(get)?,
        version: u64::try_from(version).map_err(|_| corrupt(format!("version {version}")))?,
        updated_at: row.try_get(2).map_err(get)?,
        fields: serde_json::from_str::<Map<String, Value>>(&fields)
            .map_err(|e| corrupt(format!("history fields: {e}")))?,
    })
}

/// What a notification says: the change, with its record when it fit.
fn parse(payload: &str) -> Option<RemoteChange> {
    let value: Value = serde_json::from_str(payload).ok()?;
    let uri = value.get("uri")?.as_str()?.to_owned();
    let version = value.get("version")?.as_u64()?;
    let record = match value.get("fields") {
        Some(_) => Some(serde_json::from_value::<Record>(value).ok()?),
        None => None,
    };
    Some(RemoteChange { uri, version, record })
}

/// Stops the listener task when the store is dropped.
pub(crate) struct Listening {
    pub(crate) feed: Arc<ChangeFeed>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Listening {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A listener connection, listening on [`CHANNEL`].
async fn listen(options: &PgConnectOptions) -> Result<PgListener, sqlx::Error> {
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(crate::ACQUIRE_TIMEOUT)
        .connect_lazy_with(options.clone().application_name(LISTENER_APPLICATION_NAME));
    let mut listener = PgListener::connect_with(&pool).await?;
    listener.listen(CHANNEL).await?;
    Ok(listener)
}

/// Starts listening (before returning, so no save after it is missed) and
/// returns the feed the notifications go to.
pub(crate) async fn start(
    url: &ConnUrl,
    options: PgConnectOptions,
    pool: PgPool,
) -> kinesis::Result<Listening> {
    let listener = listen(&options).await.map_err(|e| {
        kinesis::Error::from(StoreError::Backend(format!(
            "postgres {}: cannot listen for changes: {}",
            url.display,
            url.scrub(&e.to_string())
        )))
    })?;
    let feed = Arc::new(ChangeFeed::with_history(Arc::new(PgHistory { pool })));
    let task = tokio::spawn(run(listener, options, Arc::downgrade(&feed), url.display.clone()));
    Ok(Listening { feed, task })
}

/// Hands notifications to the feed; connects again when the connection is
/// lost, then resyncs.
async fn run(
    mut listener: PgListener,
    options: PgConnectOptions,
    feed: Weak<ChangeFeed>,
    shown: String,
) {
    loop {
        loop {
            match listener.try_recv().await {
                Ok(Some(n)) => {
                    let Some(feed) = feed.upgrade() else { return };
                    match parse(n.payload()) {
                        Some(change) => feed.deliver(change),
                        None => tracing::warn!(
                            channel = CHANNEL,
                            "ignoring a notification that is not a change"
                        ),
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(url = %shown, error = %e, "the change listener lost its connection");
                    break;
                }
            }
        }
        drop(listener);
        listener = loop {
            if feed.strong_count() == 0 {
                return;
            }
            match listen(&options).await {
                Ok(l) => break l,
                Err(e) => {
                    tracing::warn!(url = %shown, error = %e, "the change listener cannot connect; retrying");
                    tokio::time::sleep(RECONNECT_INTERVAL).await;
                }
            }
        };
        tracing::info!(url = %shown, "the change listener is back; catching up");
        let Some(feed) = feed.upgrade() else { return };
        feed.resync();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notifications_with_and_without_their_record() {
        let full = r#"{"uri":"/root/a","version":3,"type":"T","updated_at":"x","schema":1,"fields":{"n":3}}"#;
        let c = parse(full).unwrap();
        assert_eq!((c.uri.as_str(), c.version), ("/root/a", 3));
        assert_eq!(c.record.unwrap().fields["n"], 3);
        let short = parse(r#"{"uri":"/root/a","version":4}"#).unwrap();
        assert_eq!((short.version, short.record), (4, None));
        assert!(parse("nonsense").is_none());
    }
}
