//! Components of another runtime, reached over a transport.
//!
//! A [`Remote<C>`] stands for a component of type `C` that runs in another
//! process (or the same one, through [`InProcess`]). `#[kinesis::handlers]`
//! implements the component's generated handle trait (`CounterHandle` for
//! `Counter`) for `Remote<Counter>` as it does for `Handle<Counter>`, so code
//! written against the trait runs unchanged on either:
//!
//! ```ignore
//! async fn bump(counter: &impl CounterHandle) -> kinesis::Result<u64> {
//!     counter.increment(1).await
//! }
//! bump(&runtime.root().get::<Counter>("counter")?).await?;          // in process
//! bump(&client.remote::<Counter>("/root/counter")).await?;          // over HTTP
//! ```
//!
//! [`RemoteDyn`] is the same without the type: calls by method name with
//! JSON arguments, for components whose type the caller does not know (the
//! command line uses it).
//!
//! # Transports
//!
//! A [`Transport`] carries the REST surface of a runtime: read a component
//! (with `If-None-Match`), replace and patch it (with `If-Match`), call a
//! method by name, send a control, list the tree, and open one watch
//! stream. The HTTP transport is the `kinesis-client` crate's;
//! [`InProcess`] serves a [`Container`](crate::Container) of this process
//! through the same JSON path, for tests. What the handles add on top is
//! transport-independent: the snapshot cache, typed (de)serialisation, and
//! watches that resume after a dropped connection (see [`RemoteDyn::watch`]).
//!
//! # Errors
//!
//! A remote call fails with the same [`Error`](crate::Error) an in-process
//! call would: the transport carries the error's kind and text, and
//! [`Error::from_remote`](crate::Error::from_remote) rebuilds it (a stale
//! `If-Match` is [`Error::Conflict`](crate::Error::Conflict) with the current
//! ETag, an unknown component [`Error::NotFound`](crate::Error::NotFound), and
//! so on). What only a transport can do wrong has kinds of its own:
//! [`Error::Unreachable`](crate::Error::Unreachable) (no connection, or it
//! broke before the answer), [`Error::Unauthenticated`](crate::Error::Unauthenticated)
//! and [`Error::Forbidden`](crate::Error::Forbidden).

mod dynamic;
mod in_process;
mod state;
pub mod trace;
mod typed;
mod wire;

pub use dynamic::{RemoteDyn, WatchOptions};
pub use in_process::InProcess;
pub use state::StateHandle;
pub use typed::{Remote, RemoteChange};
pub use wire::{
    Fetched, RemoteArg, RemoteMeta, RemoteMethod, RemoteNode, RemoteSnapshot, Resume, WatchEvent,
};

use futures::future::BoxFuture;
use futures::stream::BoxStream;
use serde_json::Value;

use crate::{Control, ETag, Precondition, Result};

/// The REST surface of a runtime, as a remote handle uses it. Implemented
/// by the HTTP client of `kinesis-client` and by [`InProcess`]; a new
/// transport (gRPC, say) implements these seven calls and gets typed
/// handles, caching and resuming watches for free.
///
/// `uri` is a component's path from the root (`/root/counter`). Errors are
/// [`Error`](crate::Error)s of the kind the runtime answered (see the
/// [module docs](self#errors)).
pub trait Transport: Send + Sync + 'static {
    /// Reads a component: its meta and state. With `if_none_match`, answers
    /// [`Fetched::NotModified`] when the component's ETag is still that one.
    fn get(&self, uri: &str, if_none_match: Option<ETag>) -> BoxFuture<'static, Result<Fetched>>;

    /// Replaces the state of a component if `if_match` passes.
    fn replace(
        &self,
        uri: &str,
        data: Value,
        if_match: Precondition,
    ) -> BoxFuture<'static, Result<RemoteSnapshot>>;

    /// Applies an RFC 7396 merge patch to the state if `if_match` passes.
    fn patch(
        &self,
        uri: &str,
        patch: Value,
        if_match: Precondition,
    ) -> BoxFuture<'static, Result<RemoteSnapshot>>;

    /// Calls a method by name with a JSON object of named arguments (`null`
    /// for none), checked against `if_match` when it changes the state.
    fn call(
        &self,
        uri: &str,
        method: &str,
        args: Value,
        if_match: Precondition,
    ) -> BoxFuture<'static, Result<Value>>;

    /// Sends a control (stop, restart, persist, notify) and waits until it
    /// was carried out.
    fn control(&self, uri: &str, control: Control) -> BoxFuture<'static, Result<()>>;

    /// Every component the runtime exposes, depth first.
    fn tree(&self) -> BoxFuture<'static, Result<Vec<RemoteNode>>>;

    /// One watch of a component: a [`WatchEvent::Snapshot`] first, or, with
    /// `since`, the updates after that version (or a snapshot when the
    /// runtime no longer has them, or is another run), then the changes as
    /// they come. The stream ends, or yields an error, when the connection
    /// does; resuming is the caller's job ([`RemoteDyn::watch`] does it).
    fn watch(&self, uri: &str, since: Option<Resume>) -> BoxStream<'static, Result<WatchEvent>>;
}
