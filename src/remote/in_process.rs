//! [`InProcess`]: the remote surface of a container in this process.

use std::sync::Arc;

use futures::future::BoxFuture;
use futures::stream::{BoxStream, StreamExt};
use serde_json::Value;

use super::{Fetched, RemoteMeta, RemoteNode, RemoteSnapshot, Resume, Transport, WatchEvent};
use crate::dynamic::{ready, DynComponent, JsonChange, JsonSnapshot, WatchStart};
use crate::runtime::run_id;
use crate::{Container, Control, ETag, Error, Precondition, Result};

/// A [`Transport`] that serves a [`Container`] of this process through the
/// same JSON path the HTTP add-on takes (calls by name, the same stage
/// checks, the same errors), without a network. A `Remote<C>` on it
/// behaves as one over HTTP would, which makes it the fast half of a test
/// that runs once in process and once across a transport.
#[derive(Debug, Clone)]
pub struct InProcess {
    root: Container,
    /// What one watcher may hold queued, in bytes.
    watch_budget: usize,
}

impl InProcess {
    /// Serves `root` and everything below it.
    pub fn new(root: Container) -> InProcess {
        InProcess { root, watch_budget: 1 << 20 }
    }

    /// The component at `uri`, if remote surfaces may show it.
    fn find(&self, uri: &str) -> Result<Arc<dyn DynComponent>> {
        let c = self.root.lookup(uri)?;
        if !c.exposed() {
            return Err(Error::NotFound(format!("component {uri}")));
        }
        Ok(c)
    }

    /// The component at `uri`, started.
    fn started(&self, uri: &str) -> Result<Arc<dyn DynComponent>> {
        let c = self.find(uri)?;
        ready(&*c)?;
        Ok(c)
    }
}

fn remote_snapshot(meta: Option<RemoteMeta>, s: &JsonSnapshot) -> RemoteSnapshot {
    RemoteSnapshot { meta, data: s.data.to_value(), etag: s.etag, version: s.version }
}

fn run() -> Option<String> {
    Some(run_id().to_owned())
}

fn event_of(change: JsonChange) -> WatchEvent {
    match change {
        JsonChange::Stage { prev, curr } => WatchEvent::Stage { prev, curr },
        JsonChange::State { prev, curr } => WatchEvent::State { prev, curr },
        JsonChange::Updated { prev_version, version, etag, data } => {
            WatchEvent::Updated { prev_version, version, etag, data: data.to_value(), run: run() }
        }
    }
}

impl Transport for InProcess {
    fn get(&self, uri: &str, if_none_match: Option<ETag>) -> BoxFuture<'static, Result<Fetched>> {
        let answer = self.started(uri).and_then(|c| {
            let snapshot = c.snapshot_json()?;
            if if_none_match == Some(snapshot.etag) {
                return Ok(Fetched::NotModified);
            }
            Ok(Fetched::Snapshot(Box::new(remote_snapshot(
                Some(RemoteMeta::from(c.meta())),
                &snapshot,
            ))))
        });
        Box::pin(async move { answer })
    }

    fn replace(
        &self,
        uri: &str,
        data: Value,
        if_match: Precondition,
    ) -> BoxFuture<'static, Result<RemoteSnapshot>> {
        let c = self.started(uri);
        Box::pin(async move {
            let written = c?.replace_json(data, if_match).await?;
            Ok(remote_snapshot(None, &written))
        })
    }

    fn patch(
        &self,
        uri: &str,
        patch: Value,
        if_match: Precondition,
    ) -> BoxFuture<'static, Result<RemoteSnapshot>> {
        let c = self.started(uri);
        Box::pin(async move {
            let written = c?.merge_patch_json(patch, if_match).await?;
            Ok(remote_snapshot(None, &written))
        })
    }

    fn call(
        &self,
        uri: &str,
        method: &str,
        args: Value,
        if_match: Precondition,
    ) -> BoxFuture<'static, Result<Value>> {
        match self.started(uri) {
            Ok(c) => c.call_json(method, args, if_match),
            Err(e) => Box::pin(async move { Err(e) }),
        }
    }

    fn control(&self, uri: &str, control: Control) -> BoxFuture<'static, Result<()>> {
        match self.started(uri) {
            Ok(c) => c.control(control),
            Err(e) => Box::pin(async move { Err(e) }),
        }
    }

    fn tree(&self) -> BoxFuture<'static, Result<Vec<RemoteNode>>> {
        let mut nodes = Vec::new();
        let everything = self.root.handle().map(|h| Arc::new(h) as Arc<dyn DynComponent>);
        for c in everything.into_iter().chain(self.root.walk()) {
            if !c.exposed() {
                continue;
            }
            let meta = c.meta();
            nodes.push(RemoteNode {
                uri: meta.uri,
                type_name: meta.type_name.to_owned(),
                stage: meta.stage,
                state: meta.state,
                etag: meta.etag,
                version: meta.version,
                restarts: c.diagnostics().restarts,
            });
        }
        Box::pin(async move { Ok(nodes) })
    }

    fn watch(&self, uri: &str, since: Option<Resume>) -> BoxStream<'static, Result<WatchEvent>> {
        // A version of another run is no place to resume from.
        let since = since.filter(|r| r.run.as_deref().is_none_or(|run| run == run_id()));
        let since = since.map(|r| r.version);
        let watch = self.started(uri).and_then(|c| c.watch_json(since, self.watch_budget));
        let watch = match watch {
            Ok(watch) => watch,
            Err(e) => return futures::stream::once(async move { Err(e) }).boxed(),
        };
        let first: Vec<Result<WatchEvent>> = match watch.start {
            WatchStart::Snapshot(s) => vec![Ok(WatchEvent::Snapshot {
                version: s.version,
                etag: s.etag,
                data: s.data.to_value(),
                run: run(),
            })],
            WatchStart::Replay(changes) => changes.into_iter().map(|c| Ok(event_of(c))).collect(),
        };
        // After `Lagged` the stream ends: the resuming watch reconnects from
        // the last version it delivered, as it does over HTTP.
        let rest = watch.changes.scan(false, |lagged, item| {
            let event = match item {
                _ if *lagged => None,
                Ok(change) => Some(Ok(event_of(change))),
                Err(missed) => {
                    *lagged = true;
                    Some(Ok(WatchEvent::Lagged { missed: missed.missed }))
                }
            };
            futures::future::ready(event)
        });
        futures::stream::iter(first).chain(rest).boxed()
    }
}
