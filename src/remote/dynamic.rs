//! [`RemoteDyn`]: a remote component by name, without its type.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::stream::{BoxStream, StreamExt};
use serde_json::Value;

use super::{Fetched, RemoteMeta, RemoteSnapshot, Resume, Transport, WatchEvent};
use crate::{Control, ETag, Error, ErrorKind, Precondition, Result};

/// A component of another runtime, by URI: calls by method name with JSON
/// arguments, reads, writes with ETags, controls and watches. Cheap to
/// clone; clones share the snapshot cache.
///
/// Built from a transport, usually by `kinesis_client::Client::dyn_remote`.
#[derive(Clone)]
pub struct RemoteDyn {
    transport: Arc<dyn Transport>,
    uri: Arc<str>,
    /// The last snapshot read or written, for `If-None-Match`.
    cache: Arc<Mutex<Option<RemoteSnapshot>>>,
}

impl std::fmt::Debug for RemoteDyn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteDyn").field("uri", &self.uri).finish_non_exhaustive()
    }
}

/// How [`RemoteDyn::watch`] resumes after the connection drops.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchOptions {
    /// Start after this version (the updates after it first, if the runtime
    /// still has them); `None` starts with a snapshot.
    pub since: Option<Resume>,
    /// The first wait before reconnecting; doubled after each failed
    /// attempt, up to `retry_max`.
    pub retry_min: Duration,
    /// The longest wait between attempts.
    pub retry_max: Duration,
    /// Give up (the stream yields [`Error::Unreachable`] and ends) when no
    /// connection succeeded for this long; `None` keeps trying.
    pub give_up_after: Option<Duration>,
}

impl Default for WatchOptions {
    fn default() -> Self {
        WatchOptions {
            since: None,
            retry_min: Duration::from_millis(50),
            retry_max: Duration::from_secs(2),
            give_up_after: None,
        }
    }
}

impl RemoteDyn {
    /// The component at `uri` (a path from the root, `/root/counter`) of the
    /// runtime `transport` reaches.
    pub fn new(transport: Arc<dyn Transport>, uri: impl Into<String>) -> RemoteDyn {
        RemoteDyn { transport, uri: uri.into().into(), cache: Arc::default() }
    }

    /// The component's URI.
    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// The transport this handle calls through.
    pub fn transport(&self) -> &Arc<dyn Transport> {
        &self.transport
    }

    /// The current state and meta. Asks with `If-None-Match` when a snapshot
    /// is cached, so an unchanged component costs no state transfer.
    pub async fn snapshot(&self) -> Result<RemoteSnapshot> {
        let cached = self.cached();
        let tag = cached.as_ref().map(|s| s.etag);
        match self.transport.get(&self.uri, tag).await? {
            Fetched::Snapshot(snapshot) => {
                self.store((*snapshot).clone());
                Ok(*snapshot)
            }
            Fetched::NotModified => match cached {
                Some(snapshot) => Ok(snapshot),
                None => Err(Error::Invalid(format!(
                    "{} answered \"not modified\" to an unconditional read",
                    self.uri
                ))),
            },
        }
    }

    /// The component's name, type, stage, ETag, version and methods.
    pub async fn meta(&self) -> Result<RemoteMeta> {
        let snapshot = self.snapshot().await?;
        match snapshot.meta {
            Some(meta) => Ok(meta),
            None => {
                // The cached snapshot came from a write, which carries no meta.
                self.cache.lock().unwrap_or_else(|e| e.into_inner()).take();
                let fresh = self.snapshot().await?;
                fresh.meta.ok_or_else(|| {
                    Error::Invalid(format!("the runtime sent no meta for {}", self.uri))
                })
            }
        }
    }

    /// The current ETag (one conditional read).
    pub async fn etag(&self) -> Result<ETag> {
        Ok(self.snapshot().await?.etag)
    }

    /// Calls `method` with a JSON object of named arguments (`null` for
    /// none) and answers its JSON reply.
    pub async fn call(&self, method: &str, args: Value) -> Result<Value> {
        self.transport.call(&self.uri, method, args, Precondition::Any).await
    }

    /// As [`call`](Self::call), only if the state is still at `if_match`
    /// ([`Error::Conflict`] with the current ETag otherwise).
    pub async fn call_if_match(&self, method: &str, args: Value, if_match: &ETag) -> Result<Value> {
        self.transport.call(&self.uri, method, args, Precondition::Tags(vec![*if_match])).await
    }

    /// Replaces the state if it is still at `if_match`.
    pub async fn replace(&self, data: Value, if_match: &ETag) -> Result<RemoteSnapshot> {
        let written =
            self.transport.replace(&self.uri, data, Precondition::Tags(vec![*if_match])).await?;
        Ok(self.store(written))
    }

    /// Applies an RFC 7396 merge patch, if the state is still at `if_match`
    /// when one is given.
    pub async fn patch(&self, patch: Value, if_match: Option<&ETag>) -> Result<RemoteSnapshot> {
        let condition = if_match.map_or(Precondition::Any, |tag| Precondition::Tags(vec![*tag]));
        let written = self.transport.patch(&self.uri, patch, condition).await?;
        Ok(self.store(written))
    }

    /// Sends a control and waits until it was carried out.
    pub async fn control(&self, control: Control) -> Result<()> {
        self.transport.control(&self.uri, control).await
    }

    /// Stops the component for good.
    pub async fn shutdown(&self) -> Result<()> {
        self.control(Control::Shutdown).await
    }

    /// Restarts the component (`stop`, then `start`), keeping its state.
    pub async fn restart(&self) -> Result<()> {
        self.control(Control::Restart).await
    }

    /// The component's changes, starting with a snapshot; see
    /// [`watch_with`](Self::watch_with).
    pub fn watch(&self) -> BoxStream<'static, Result<WatchEvent>> {
        self.watch_with(WatchOptions::default())
    }

    /// The component's changes, across dropped connections.
    ///
    /// When the connection ends or fails with a retryable error (the
    /// runtime restarting, say), the watch reconnects, waiting
    /// `retry_min`, then twice as long each time up to `retry_max`, and
    /// resumes after the last version it delivered: the runtime sends the
    /// updates missed meanwhile, or a snapshot when it no longer has them
    /// or is another run of the process (it restarted: versions count
    /// again from 1, see [`run_id`](crate::runtime::run_id)). Updates are
    /// delivered once each, in increasing order of version: an update at or
    /// below the last version delivered is dropped. A snapshot is delivered
    /// unless its ETag is that of the state delivered last (the same state:
    /// nothing to tell); either way the updates after it count from its
    /// version. A non-retryable error (the component is gone, the token refused) is
    /// yielded and ends the stream, as does `give_up_after`.
    pub fn watch_with(&self, options: WatchOptions) -> BoxStream<'static, Result<WatchEvent>> {
        let state = Resuming {
            transport: Arc::clone(&self.transport),
            uri: Arc::clone(&self.uri),
            last: options.since.as_ref().map(|r| r.version),
            last_etag: None,
            run: options.since.as_ref().and_then(|r| r.run.clone()),
            retry: options.retry_min,
            failing_since: None,
            options,
            inner: None,
            done: false,
        };
        futures::stream::unfold(state, |mut state| async move {
            let item = state.next().await?;
            Some((item, state))
        })
        .boxed()
    }

    fn cached(&self) -> Option<RemoteSnapshot> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Caches `snapshot`; a write's answer keeps the meta read before,
    /// brought up to the new version.
    fn store(&self, mut snapshot: RemoteSnapshot) -> RemoteSnapshot {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if snapshot.meta.is_none() {
            if let Some(mut meta) = cache.take().and_then(|c| c.meta) {
                meta.etag = snapshot.etag;
                meta.version = snapshot.version;
                snapshot.meta = Some(meta);
            }
        }
        *cache = Some(snapshot.clone());
        snapshot
    }
}

/// The state of a resuming watch.
struct Resuming {
    transport: Arc<dyn Transport>,
    uri: Arc<str>,
    options: WatchOptions,
    /// The last version delivered, and its ETag.
    last: Option<u64>,
    last_etag: Option<ETag>,
    /// The run that numbered `last`.
    run: Option<String>,
    /// The next wait before reconnecting.
    retry: Duration,
    /// When the current run of failed attempts began.
    failing_since: Option<Instant>,
    inner: Option<BoxStream<'static, Result<WatchEvent>>>,
    done: bool,
}

impl Resuming {
    /// Whether `event` brings something the watcher has not had: a
    /// snapshot of another state than the last one delivered (same ETag,
    /// same state), an update above the last version, any other event.
    fn is_new(&self, event: &WatchEvent) -> bool {
        match event {
            WatchEvent::Snapshot { etag, .. } => self.last_etag != Some(*etag),
            WatchEvent::Updated { version, .. } => self.last.is_none_or(|last| *version > last),
            _ => true,
        }
    }

    async fn next(&mut self) -> Option<Result<WatchEvent>> {
        loop {
            if self.done {
                return None;
            }
            let resume = self.last.map(|version| Resume { version, run: self.run.clone() });
            let inner = self.inner.get_or_insert_with(|| self.transport.watch(&self.uri, resume));
            match inner.next().await {
                Some(Ok(event)) => {
                    self.retry = self.options.retry_min;
                    self.failing_since = None;
                    if let Some(run) = event.run() {
                        if self.run.as_deref() != Some(run) {
                            self.run = Some(run.to_owned());
                        }
                    }
                    let fresh = self.is_new(&event);
                    if let WatchEvent::Snapshot { version, etag, .. }
                    | WatchEvent::Updated { version, etag, .. } = &event
                    {
                        if fresh || matches!(event, WatchEvent::Snapshot { .. }) {
                            self.last = Some(*version);
                            self.last_etag = Some(*etag);
                        }
                    }
                    if !fresh {
                        continue;
                    }
                    return Some(Ok(event));
                }
                Some(Err(e)) if !resumable(&e) => {
                    self.done = true;
                    return Some(Err(e));
                }
                // The connection ended or broke: wait, then resume.
                Some(Err(_)) | None => {
                    self.inner = None;
                    let since = *self.failing_since.get_or_insert_with(Instant::now);
                    if let Some(limit) = self.options.give_up_after {
                        if since.elapsed() >= limit {
                            self.done = true;
                            return Some(Err(Error::Unreachable(format!(
                                "the watch of {} could not reconnect for {limit:?}",
                                self.uri
                            ))));
                        }
                    }
                    tokio::time::sleep(self.retry).await;
                    self.retry = (self.retry * 2).min(self.options.retry_max);
                }
            }
        }
    }
}

/// Whether a watch that failed with `e` should reconnect: the runtime is
/// away or busy, not refusing.
fn resumable(e: &Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::Unreachable
            | ErrorKind::Stopping
            | ErrorKind::Overloaded
            | ErrorKind::Timeout
            | ErrorKind::NotStarted
            | ErrorKind::Store
    )
}
