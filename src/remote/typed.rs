//! [`Remote<C>`]: a remote component with its type.

use std::future::Future;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex};

use futures::stream::{BoxStream, StreamExt};
use serde_json::Value;

use super::{RemoteDyn, RemoteSnapshot, Transport, WatchEvent, WatchOptions};
use crate::{Component, Control, ETag, Error, Result, Snapshot, Stage, State};

/// A component of type `C` in another runtime (or reached through a
/// transport in this one). `#[kinesis::handlers]` implements `C`'s
/// generated handle trait for it, so the typed methods are called as on a
/// [`Handle<C>`](crate::Handle):
///
/// ```ignore
/// use my_app::CounterHandle;
/// let counter: Remote<Counter> = client.remote("/root/counter");
/// counter.increment(2).await?;          // POST /root/counter/increment {"by":2}
/// let now = counter.snapshot().await?;  // GET with If-None-Match
/// ```
///
/// Arguments travel as JSON and replies come back as JSON, so argument
/// types must implement `Serialize` and reply types `Deserialize` (a call
/// whose types do not fails with [`Error::Invalid`] naming them). Encrypted
/// persisted fields arrive redacted, as over HTTP.
///
/// Cheap to clone; clones share the snapshot cache.
pub struct Remote<C> {
    inner: RemoteDyn,
    /// The last typed snapshot, reused while the ETag stays the same.
    typed: Arc<Mutex<Option<Arc<Snapshot<C>>>>>,
    _type: PhantomData<fn() -> C>,
}

impl<C> Clone for Remote<C> {
    fn clone(&self) -> Self {
        Remote { inner: self.inner.clone(), typed: Arc::clone(&self.typed), _type: PhantomData }
    }
}

impl<C> std::fmt::Debug for Remote<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote")
            .field("type", &std::any::type_name::<C>())
            .field("uri", &self.inner.uri())
            .finish_non_exhaustive()
    }
}

/// One change of a watched remote component, typed.
#[derive(Debug)]
pub enum RemoteChange<C> {
    /// The state when the watch started, or after a gap the runtime could
    /// not replay (a restart of the runtime, a lagging watcher): the
    /// versions in between were not seen one by one.
    Snapshot(Arc<Snapshot<C>>),
    /// The state changed from `prev_version` to the snapshot's version.
    Updated {
        /// The version before.
        prev_version: u64,
        /// The state now.
        snapshot: Arc<Snapshot<C>>,
    },
    /// The stage moved.
    Stage {
        /// Before.
        prev: Stage,
        /// Now.
        curr: Stage,
    },
    /// The coarse state flipped.
    State {
        /// Before.
        prev: State,
        /// Now.
        curr: State,
    },
    /// The watcher fell behind and missed this many changes; a
    /// [`RemoteChange::Snapshot`] follows.
    Lagged {
        /// How many.
        missed: u64,
    },
}

impl<C: Component> Remote<C> {
    /// The component at `uri` of the runtime `transport` reaches.
    pub fn new(transport: Arc<dyn Transport>, uri: impl Into<String>) -> Remote<C> {
        Remote::from_dyn(RemoteDyn::new(transport, uri))
    }

    /// A typed view of a by-name handle.
    pub fn from_dyn(inner: RemoteDyn) -> Remote<C> {
        Remote { inner, typed: Arc::default(), _type: PhantomData }
    }

    /// The by-name handle underneath.
    pub fn as_dyn(&self) -> &RemoteDyn {
        &self.inner
    }

    /// The component's URI.
    pub fn uri(&self) -> &str {
        self.inner.uri()
    }

    /// The current state, read with `If-None-Match` when one is cached (an
    /// unchanged component is neither sent nor parsed again).
    pub async fn snapshot(&self) -> Result<Arc<Snapshot<C>>> {
        let snapshot = self.inner.snapshot().await?;
        self.typed_of(snapshot)
    }

    /// The current ETag (one conditional read).
    pub async fn etag(&self) -> Result<ETag> {
        self.inner.etag().await
    }

    /// Replaces the state if it is still at `if_match`.
    pub async fn replace(&self, state: C, if_match: &ETag) -> Result<Arc<Snapshot<C>>> {
        let data = serde_json::to_value(&state)
            .map_err(|e| Error::Invalid(format!("the state does not serialise: {e}")))?;
        let written = self.inner.replace(data, if_match).await?;
        self.typed_of(written)
    }

    /// Applies an RFC 7396 merge patch, if the state is still at `if_match`
    /// when one is given.
    pub async fn patch(&self, patch: Value, if_match: Option<&ETag>) -> Result<Arc<Snapshot<C>>> {
        let written = self.inner.patch(patch, if_match).await?;
        self.typed_of(written)
    }

    /// Sends a control and waits until it was carried out.
    pub async fn control(&self, control: Control) -> Result<()> {
        self.inner.control(control).await
    }

    /// Stops the component for good.
    pub async fn shutdown(&self) -> Result<()> {
        self.inner.shutdown().await
    }

    /// Restarts the component, keeping its state.
    pub async fn restart(&self) -> Result<()> {
        self.inner.restart().await
    }

    /// The component's changes, typed, resuming across dropped connections
    /// as [`RemoteDyn::watch_with`] does.
    pub fn watch(&self) -> BoxStream<'static, Result<RemoteChange<C>>> {
        self.watch_with(WatchOptions::default())
    }

    /// [`watch`](Self::watch) with options.
    pub fn watch_with(&self, options: WatchOptions) -> BoxStream<'static, Result<RemoteChange<C>>> {
        self.inner
            .watch_with(options)
            .map(|event| {
                Ok(match event? {
                    WatchEvent::Snapshot { version, etag, data, .. } => {
                        RemoteChange::Snapshot(Arc::new(Snapshot::new(parse(data)?, etag, version)))
                    }
                    WatchEvent::Updated { prev_version, version, etag, data, .. } => {
                        RemoteChange::Updated {
                            prev_version,
                            snapshot: Arc::new(Snapshot::new(parse(data)?, etag, version)),
                        }
                    }
                    WatchEvent::Stage { prev, curr } => RemoteChange::Stage { prev, curr },
                    WatchEvent::State { prev, curr } => RemoteChange::State { prev, curr },
                    WatchEvent::Lagged { missed } => RemoteChange::Lagged { missed },
                })
            })
            .boxed()
    }

    /// Calls a method by name; what the generated handle traits call.
    /// `args` is the JSON object of named arguments, or the error from
    /// making it.
    #[doc(hidden)]
    pub fn __call(
        &self,
        method: &'static str,
        args: Result<Value>,
    ) -> impl Future<Output = Result<Value>> + Send + 'static {
        let inner = self.inner.clone();
        async move { inner.call(method, args?).await }
    }

    fn typed_of(&self, snapshot: RemoteSnapshot) -> Result<Arc<Snapshot<C>>> {
        let mut typed = self.typed.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(current) = typed.as_ref().filter(|t| t.etag == snapshot.etag) {
            return Ok(Arc::clone(current));
        }
        let fresh = Arc::new(Snapshot::new(parse(snapshot.data)?, snapshot.etag, snapshot.version));
        *typed = Some(Arc::clone(&fresh));
        Ok(fresh)
    }
}

fn parse<C: Component>(data: Value) -> Result<C> {
    serde_json::from_value(data).map_err(|e| {
        Error::Invalid(format!(
            "the remote state does not fit `{}`: {e}",
            std::any::type_name::<C>()
        ))
    })
}
