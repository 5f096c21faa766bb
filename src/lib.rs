//! kinesis: event-driven services built from components.
#![doc = include_str!("../docs/overview.md")]

pub mod changes;
mod component;
pub mod config;
pub mod container;
mod context;
pub mod dynamic;
pub mod error;
pub mod etag;
mod handle;
mod mailbox;
pub mod methods;
mod naming;
pub mod persist;
pub mod runtime;
pub mod supervisor;

pub use changes::{CallbackId, Change, Lagged, Position, Subscription};
pub use component::{Component, Handler};
pub use config::Config;
pub use container::{Container, Failure, Prepared};
pub use context::Context;
pub use dynamic::{DynComponent, JsonChange, JsonSnapshot, Meta};
pub use error::{Error, ErrorKind, Result};
pub use etag::{ETag, Snapshot};
pub use handle::{Handle, DEFAULT_ASK_TIMEOUT};
pub use kinesis_fsm::{IllegalTransition, Stage, State};
pub use mailbox::Control;
pub use naming::{validate_name, MAX_NAME_LEN};
pub use runtime::{Runtime, ShutdownReport};
pub use supervisor::{Backoff, Intensity, Restart, RestartPolicy};

/// Re-exports the generated code of `kinesis-macros` refers to. Not a public API.
#[doc(hidden)]
pub mod __private {
    pub use futures;
    pub use inventory;
    pub use serde;
    pub use serde_json;
}
