//! Changes of kinesis components across processes through NATS JetStream,
//! for any store.
//!
//! Several processes share one store (a SQLite file, a filedb directory on
//! a shared disk, a database). With this crate, each save one of them makes
//! reaches the others, which reload the component and tell their own
//! subscribers, callbacks and watchers; see
//! [`ChangeFeed`](kinesis::persist::ChangeFeed) for what a receiving
//! component does with a change.
//!
//! [`layer`] wraps the store (it is what `kinesis` installs with
//! [`RuntimeBuilder::store_layer`](kinesis::runtime::RuntimeBuilder::store_layer)
//! when `KINESIS_EVENTS_URL` is set):
//!
//! * **Publishing.** After each successful save the stored record
//!   (encrypted fields as stored: no secret is sent) goes into an ordered
//!   in-memory outbox. One task publishes it to the JetStream subject
//!   `{prefix}.changes.{store id}` and waits for the server's acknowledgement, retrying
//!   (every 50 ms, backing off to 2 s) until it gets one, so a NATS restart
//!   delays the changes but loses none and keeps their order. A change
//!   published twice (an acknowledgement lost) is dropped by the receivers.
//! * **The stream.** `{prefix}_changes`, file storage, so it survives a
//!   server restart; it keeps [`STREAM_MAX_AGE`] and [`STREAM_MAX_MESSAGES`].
//! * **Receiving.** An ordered consumer delivers the stream from the moment
//!   [`layer`] returned (before any component loads) to the feed. It
//!   remembers the last stream sequence it handed over; when the connection
//!   comes back, or the consumer fails, it is recreated from the next
//!   sequence, so nothing published meanwhile is skipped. If the stream lost
//!   messages (it was deleted, or its limits discarded what this process had
//!   not read), every component compares its version with the store instead
//!   ([`ChangeFeed::resync`]).
//! * The prefix ([`PREFIX_ENV`]) lets several applications share a server.
//! * **Only processes on the same store meet.** Each store is named by an
//!   id kept in the store itself (the record [`STORE_ID_URI`], made by the
//!   first process that needs it, by compare-and-set), and changes travel
//!   on that store's subject. Processes on different stores (each its own
//!   SQLite file, say) can share a server and a prefix without applying
//!   each other's changes.
//!
//! | variable | accepts | default |
//! | --- | --- | --- |
//! | `KINESIS_EVENTS_URL` | `nats://host:port`, `tls://host:port` | off |
//! | `KINESIS_EVENTS_PREFIX` | 1–64 of `A-Z a-z 0-9 _ -` | `kinesis` |

mod config;

use std::sync::{Arc, Weak};
use std::time::Duration;

use async_nats::jetstream::consumer::pull::{Ordered, OrderedConfig};
use async_nats::jetstream::consumer::DeliverPolicy;
use async_nats::jetstream::stream::{Config as StreamConfig, DiscardPolicy, StorageType};
use async_nats::jetstream::Context;
use bytes::Bytes;
use futures::future::BoxFuture;
use futures::StreamExt;
use kinesis::persist::{
    ChangeFeed, Record, RemoteChange, SharedStore, Store, StoreError, StoreResult,
};
use kinesis::{Error, Result};
use tokio::sync::{mpsc, Notify};

pub use config::{EventsConfig, DEFAULT_PREFIX, PREFIX_ENV, URL_ENV, VARIABLES};

/// How long the stream keeps a change.
pub const STREAM_MAX_AGE: Duration = Duration::from_secs(24 * 3600);

/// The most changes the stream keeps (the oldest go first).
pub const STREAM_MAX_MESSAGES: i64 = 1_000_000;

/// The record that names a store: `{"id": "…"}`, the same for every process
/// that uses the store.
pub const STORE_ID_URI: &str = "/_kinesis/store-id";

/// The first wait before publishing again after a failure.
const RETRY_FIRST: Duration = Duration::from_millis(50);

/// The longest wait between two attempts to publish or to subscribe.
const RETRY_MAX: Duration = Duration::from_secs(2);

/// Wraps `inner` so that its saves are published on NATS and the saves of
/// other processes come in through its feed. Returns once it is connected
/// and receiving.
///
/// A server without JetStream (`nats-server` without `-js`) may still serve
/// discovery on the same URL: then `inner` comes back as it is and a
/// warning says that the changes of other processes are not applied.
///
/// Errors: [`Error::Config`] if `config` has no URL; [`Error::Store`] if the
/// server cannot be reached or the stream cannot be made.
pub async fn layer(config: &EventsConfig, inner: SharedStore) -> Result<SharedStore> {
    let Some(url) = config.url.clone() else {
        return Err(Error::Config(format!("{URL_ENV} is not set")));
    };
    let shown = kinesis::persist::redact_url(&url);
    let failed = |what: &str, e: String| Error::Store(format!("{URL_ENV} {shown}: {what}: {e}"));
    let reconnected = Arc::new(Notify::new());
    let on_event = Arc::clone(&reconnected);
    let options = async_nats::ConnectOptions::new()
        .name("kinesis")
        .connection_timeout(Duration::from_secs(5))
        .reconnect_delay_callback(|attempts| {
            Duration::from_millis(100).saturating_mul(attempts as u32).min(RETRY_MAX)
        })
        .event_callback(move |event| {
            let on_event = Arc::clone(&on_event);
            async move {
                match event {
                    async_nats::Event::Connected => {
                        tracing::info!("NATS connected");
                        on_event.notify_one();
                    }
                    async_nats::Event::Disconnected => tracing::warn!("NATS disconnected"),
                    other => tracing::debug!(event = %other, "NATS"),
                }
            }
        });
    let client = async_nats::connect_with_options(url.as_str(), options)
        .await
        .map_err(|e| failed("cannot connect", e.to_string()))?;
    let mut js = async_nats::jetstream::new(client);
    js.set_timeout(Duration::from_secs(2));
    let stream =
        Scope { stream: config.stream(), subjects: config.subjects(), subject: String::new() };
    if let Err(e) = js.get_or_create_stream(stream_config(&stream)).await {
        use async_nats::jetstream::context::CreateStreamErrorKind;
        if matches!(e.kind(), CreateStreamErrorKind::JetStreamUnavailable) {
            // The same server may serve only discovery (KINESIS_INSTANCE).
            tracing::warn!(url = %shown, "{URL_ENV}: the NATS server has no JetStream (start nats-server with -js): the changes of other processes are NOT applied");
            return Ok(inner);
        }
        return Err(failed("cannot create the changes stream", e.to_string()));
    }
    let store = store_id(&inner).await.map_err(|e| failed("cannot read the store's id", e))?;
    let scope = Scope {
        stream: config.stream(),
        subjects: config.subjects(),
        subject: config.subject(&store),
    };
    let feed = inner.feed().unwrap_or_else(|| Arc::new(ChangeFeed::new()));
    let (messages, last) = open(&js, &scope, None, &feed)
        .await
        .map_err(|e| failed("cannot subscribe to the changes stream", e))?;
    // The first Connected event is the initial connection: not a reconnect.
    let _ = tokio::time::timeout(Duration::from_millis(50), reconnected.notified()).await;
    let (outbox, rx) = mpsc::unbounded_channel();
    let tasks = vec![
        tokio::spawn(publish(js.clone(), scope.clone(), rx)),
        tokio::spawn(receive(
            js,
            scope.clone(),
            Arc::downgrade(&feed),
            reconnected,
            messages,
            last,
        )),
    ];
    tracing::info!(url = %shown, subject = %scope.subject, "changes across processes through NATS");
    Ok(Arc::new(NatsStore { inner, feed, outbox, tasks }))
}

/// A store whose saves are published on NATS; see [`layer`].
pub struct NatsStore {
    inner: SharedStore,
    feed: Arc<ChangeFeed>,
    outbox: mpsc::UnboundedSender<Record>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for NatsStore {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl std::fmt::Debug for NatsStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsStore").field("inner", &self.inner.backend()).finish()
    }
}

impl Store for NatsStore {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }

    fn load<'a>(&'a self, uri: &'a str) -> BoxFuture<'a, StoreResult<Option<Record>>> {
        self.inner.load(uri)
    }

    fn save<'a>(&'a self, record: &'a Record, expected: u64) -> BoxFuture<'a, StoreResult<()>> {
        Box::pin(async move {
            self.inner.save(record, expected).await?;
            // The receiver lives as long as the store: it cannot be gone.
            let _ = self.outbox.send(record.clone());
            Ok(())
        })
    }

    fn delete<'a>(&'a self, uri: &'a str) -> BoxFuture<'a, StoreResult<bool>> {
        self.inner.delete(uri)
    }

    fn list<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, StoreResult<Vec<String>>> {
        self.inner.list(prefix)
    }

    fn ping(&self) -> BoxFuture<'_, StoreResult<()>> {
        self.inner.ping()
    }

    fn feed(&self) -> Option<Arc<ChangeFeed>> {
        Some(Arc::clone(&self.feed))
    }
}

/// Where the changes of this process's store travel.
#[derive(Clone)]
struct Scope {
    /// The stream's name.
    stream: String,
    /// The stream's subjects (every store's).
    subjects: String,
    /// This store's subject.
    subject: String,
}

/// The id of the store: read from [`STORE_ID_URI`], or made and saved there
/// if none is (the first writer wins; the others read its id).
async fn store_id(store: &SharedStore) -> Result<String, String> {
    loop {
        if let Some(record) = store.load(STORE_ID_URI).await.map_err(|e| e.to_string())? {
            return match record.fields.get("id").and_then(|v| v.as_str()) {
                Some(id) if !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric()) => {
                    Ok(id.to_owned())
                }
                _ => Err(format!("the record {STORE_ID_URI} holds no valid id")),
            };
        }
        let id = uuid::Uuid::new_v4().simple().to_string();
        let fields = serde_json::Map::from_iter([("id".to_owned(), id.clone().into())]);
        match store.save(&Record::new(STORE_ID_URI, "kinesis::StoreId", 1, fields), 0).await {
            Ok(()) => return Ok(id),
            // Another process made it first: read theirs.
            Err(StoreError::Conflict { .. }) => continue,
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// Creates the stream if it is missing, and gives an existing one the
/// subjects it needs (a stream made by an older version had one subject).
async fn ensure_stream(js: &Context, config: &Scope) -> Result<(), String> {
    let mut stream =
        js.get_or_create_stream(stream_config(config)).await.map_err(|e| e.to_string())?;
    let info = stream.info().await.map_err(|e| e.to_string())?;
    if info.config.subjects != [config.subjects.clone()] {
        let mut updated = info.config.clone();
        updated.subjects = vec![config.subjects.clone()];
        js.update_stream(updated).await.map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// The stream of the changes.
fn stream_config(config: &Scope) -> StreamConfig {
    StreamConfig {
        name: config.stream.clone(),
        subjects: vec![config.subjects.clone()],
        storage: StorageType::File,
        max_age: STREAM_MAX_AGE,
        max_messages: STREAM_MAX_MESSAGES,
        discard: DiscardPolicy::Old,
        ..Default::default()
    }
}

/// Publishes the outbox in order, each change until it is acknowledged.
async fn publish(js: Context, config: Scope, mut outbox: mpsc::UnboundedReceiver<Record>) {
    let subject = config.subject.clone();
    while let Some(record) = outbox.recv().await {
        let payload = match serde_json::to_vec(&record) {
            Ok(p) => Bytes::from(p),
            Err(e) => {
                tracing::error!(uri = %record.uri, error = %e, "a record does not serialise; not published");
                continue;
            }
        };
        let mut delay = RETRY_FIRST;
        let mut failures = 0u32;
        loop {
            let sent = match js.publish(subject.clone(), payload.clone()).await {
                Ok(ack) => ack.await.map(drop).map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            match sent {
                Ok(()) => break,
                Err(e) => {
                    failures += 1;
                    if failures == 1 {
                        tracing::warn!(uri = %record.uri, version = record.version, error = %e, "publishing a change failed; retrying until NATS takes it");
                    }
                    if failures.is_multiple_of(4) {
                        // The stream may be gone (a server without its storage).
                        let _ = ensure_stream(&js, &config).await;
                    }
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(RETRY_MAX);
                }
            }
        }
        if failures > 0 {
            tracing::info!(uri = %record.uri, version = record.version, failures, "change published after retrying");
        }
    }
}

/// Opens an ordered consumer from after stream sequence `after` (`None`:
/// from now). Returns it and the sequence it starts after. Tells `feed` to
/// resync when the stream no longer has what comes after `after`.
async fn open(
    js: &Context,
    config: &Scope,
    after: Option<u64>,
    feed: &ChangeFeed,
) -> Result<(Ordered, u64), String> {
    ensure_stream(js, config).await?;
    let mut stream = js.get_stream(config.stream.clone()).await.map_err(|e| e.to_string())?;
    let state = stream.info().await.map_err(|e| e.to_string())?.state.clone();
    let start = match after {
        None => state.last_sequence,
        Some(after) if state.last_sequence < after || state.first_sequence > after + 1 => {
            tracing::warn!(
                after,
                first = state.first_sequence,
                last = state.last_sequence,
                "the changes stream lost messages; comparing versions with the store"
            );
            feed.resync();
            state.last_sequence
        }
        Some(after) => after,
    };
    let consumer = stream
        .create_consumer(OrderedConfig {
            filter_subject: config.subject.clone(),
            deliver_policy: DeliverPolicy::ByStartSequence { start_sequence: start + 1 },
            ..Default::default()
        })
        .await
        .map_err(|e| e.to_string())?;
    let messages = consumer.messages().await.map_err(|e| e.to_string())?;
    Ok((messages, start))
}

/// Hands what the stream brings to the feed, in order; opens the consumer
/// again after a reconnect or a failure, from the last sequence handed over.
async fn receive(
    js: Context,
    config: Scope,
    feed: Weak<ChangeFeed>,
    reconnected: Arc<Notify>,
    mut messages: Ordered,
    mut last: u64,
) {
    loop {
        let reopen = tokio::select! {
            next = messages.next() => match next {
                Some(Ok(message)) => {
                    let Some(feed) = feed.upgrade() else { return };
                    if let Ok(info) = message.info() {
                        last = info.stream_sequence;
                    }
                    match serde_json::from_slice::<Record>(&message.payload) {
                        Ok(record) => feed.deliver(RemoteChange {
                            uri: record.uri.clone(),
                            version: record.version,
                            record: Some(record),
                        }),
                        Err(e) => tracing::warn!(error = %e, "ignoring a message that is not a record"),
                    }
                    false
                }
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "the changes consumer failed; opening it again");
                    true
                }
                None => true,
            },
            () = reconnected.notified() => true,
        };
        if !reopen {
            continue;
        }
        let mut delay = RETRY_FIRST;
        loop {
            let Some(strong) = feed.upgrade() else { return };
            match open(&js, &config, Some(last), &strong).await {
                Ok((m, start)) => {
                    tracing::info!(after = start, "receiving changes again");
                    messages = m;
                    last = start;
                    break;
                }
                Err(e) => {
                    tracing::debug!(error = %e, "cannot open the changes consumer yet");
                    drop(strong);
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(RETRY_MAX);
                }
            }
        }
    }
}
