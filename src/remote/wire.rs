//! What a transport answers, in the shapes the HTTP API writes.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{ETag, Stage, State};

/// A component as `GET {uri}` describes it in `meta`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RemoteMeta {
    /// Name within its container.
    pub name: String,
    /// Path from the root.
    pub uri: String,
    /// Rust type name.
    #[serde(rename = "type")]
    pub type_name: String,
    /// Lifecycle stage.
    pub stage: Stage,
    /// Coarse state.
    pub state: State,
    /// ETag of the state.
    pub etag: ETag,
    /// Version of the state.
    pub version: u64,
    /// The methods callable by name.
    #[serde(default)]
    pub methods: Vec<RemoteMethod>,
}

impl From<crate::Meta> for RemoteMeta {
    /// The meta of a component of this process, as a transport carries it.
    fn from(meta: crate::Meta) -> Self {
        RemoteMeta {
            name: meta.name,
            uri: meta.uri,
            type_name: meta.type_name.to_owned(),
            stage: meta.stage,
            state: meta.state,
            etag: meta.etag,
            version: meta.version,
            methods: meta
                .methods
                .iter()
                .map(|m| RemoteMethod {
                    name: m.name.to_owned(),
                    mutating: m.mutating,
                    args: m
                        .args
                        .iter()
                        .map(|a| RemoteArg { name: a.name.to_owned(), ty: a.ty.to_owned() })
                        .collect(),
                    returns: m.returns.to_owned(),
                    doc: m.doc.to_owned(),
                })
                .collect(),
        }
    }
}

impl RemoteMeta {
    /// The method called `name`, if the component has one.
    pub fn method(&self, name: &str) -> Option<&RemoteMethod> {
        self.methods.iter().find(|m| m.name == name)
    }
}

/// A method of a remote component, from its method table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RemoteMethod {
    /// Its name.
    pub name: String,
    /// Whether it changes the state (goes through the mailbox).
    pub mutating: bool,
    /// Its arguments, in order.
    #[serde(default)]
    pub args: Vec<RemoteArg>,
    /// The return type as written in Rust.
    #[serde(default)]
    pub returns: String,
    /// Its doc comment.
    #[serde(default)]
    pub doc: String,
}

/// An argument of a [`RemoteMethod`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RemoteArg {
    /// The key in the JSON object of arguments.
    pub name: String,
    /// The Rust type as written (`u64`, `Option<String>`).
    #[serde(rename = "type")]
    pub ty: String,
}

/// One component of a runtime's tree (`GET /`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RemoteNode {
    /// Path from the root.
    pub uri: String,
    /// Rust type name.
    #[serde(rename = "type")]
    pub type_name: String,
    /// Lifecycle stage.
    pub stage: Stage,
    /// Coarse state.
    pub state: State,
    /// ETag of the state.
    pub etag: ETag,
    /// Version of the state.
    pub version: u64,
    /// How often it was restarted after a failure (0 from runtimes that do
    /// not say).
    #[serde(default)]
    pub restarts: u32,
}

/// The state of a remote component at one version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RemoteSnapshot {
    /// The component, when the transport said (reads do; writes may not).
    pub meta: Option<RemoteMeta>,
    /// The state, encrypted fields redacted.
    pub data: Value,
    /// Its ETag.
    pub etag: ETag,
    /// Its version.
    pub version: u64,
}

/// The answer to a conditional read.
#[derive(Debug, Clone, PartialEq)]
pub enum Fetched {
    /// The state changed (or no ETag was given): here it is.
    Snapshot(Box<RemoteSnapshot>),
    /// The ETag given is still current.
    NotModified,
}

/// One event of a watch stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum WatchEvent {
    /// The state when the watch (re)started.
    Snapshot {
        /// Its version.
        version: u64,
        /// Its ETag.
        etag: ETag,
        /// The state.
        data: Value,
        /// The run of the runtime that numbered the version
        /// ([`run_id`](crate::runtime::run_id)), when the transport says.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        run: Option<String>,
    },
    /// The state changed.
    Updated {
        /// The version before.
        prev_version: u64,
        /// The version now.
        version: u64,
        /// The ETag now.
        etag: ETag,
        /// The state now.
        data: Value,
        /// The run of the runtime that numbered the version, when the
        /// transport says.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        run: Option<String>,
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
    /// The watcher fell behind and missed this many changes; a fresh
    /// snapshot follows.
    Lagged {
        /// How many.
        missed: u64,
    },
}

/// Where a watch resumes: after a version of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resume {
    /// The last version the watcher has.
    pub version: u64,
    /// The run that numbered it, if known: a runtime of another run answers
    /// with a fresh snapshot rather than the versions after `version`.
    pub run: Option<String>,
}

impl WatchEvent {
    /// The run of the runtime that numbered this event's version, if said.
    pub fn run(&self) -> Option<&str> {
        match self {
            WatchEvent::Snapshot { run, .. } | WatchEvent::Updated { run, .. } => run.as_deref(),
            _ => None,
        }
    }

    /// The version a snapshot or update leaves the component at.
    pub fn version(&self) -> Option<u64> {
        match self {
            WatchEvent::Snapshot { version, .. } | WatchEvent::Updated { version, .. } => {
                Some(*version)
            }
            _ => None,
        }
    }
}
