//! The [`Component`] trait and typed message [`Handler`]s.

use std::future::Future;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::{Context, RestartPolicy, Result};

/// A unit of state and behaviour run by kinesis.
///
/// A component is a plain struct. Its serialised form is its state: it is
/// hashed into the ETag, shown over HTTP and replaced by `PUT`. What cannot
/// be serialised (pools, clients) lives in `#[serde(skip)]` fields behind an
/// `Arc`, and never takes part in the ETag.
///
/// The runtime calls the hooks in this order, every one optional: persisted
/// fields are loaded, then [`init`](Component::init),
/// [`post_init`](Component::post_init), [`pre_start`](Component::pre_start),
/// [`start`](Component::start); later [`stop`](Component::stop). A hook that
/// returns an error (or panics) fails the stage it runs in: `init` and
/// `post_init` abort the component, `pre_start` and `start` are retried as
/// the [`restart_policy`](Component::restart_policy) allows.
///
/// ```
/// use kinesis::{Component, Context, Result};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Clone, Default, Serialize, Deserialize)]
/// struct Greeter { greeted: u64 }
///
/// impl Component for Greeter {
///     async fn start(&mut self, ctx: &mut Context<Self>) -> Result<()> {
///         tracing::info!(uri = ctx.uri(), "ready to greet");
///         Ok(())
///     }
/// }
/// ```
pub trait Component: Clone + Serialize + DeserializeOwned + Send + Sync + 'static {
    /// Runs once, after persisted fields were loaded. Failing aborts the component.
    fn init(&mut self, ctx: &mut Context<Self>) -> impl Future<Output = Result<()>> + Send {
        let _ = ctx;
        async { Ok(()) }
    }

    /// Runs once, after `init`. Failing aborts the component.
    fn post_init(&mut self, ctx: &mut Context<Self>) -> impl Future<Output = Result<()>> + Send {
        let _ = ctx;
        async { Ok(()) }
    }

    /// Runs before the first `start`; the place to add siblings this
    /// component depends on (`ctx.container().add(..)`), which are started
    /// before this one and stopped after it.
    fn pre_start(&mut self, ctx: &mut Context<Self>) -> impl Future<Output = Result<()>> + Send {
        let _ = ctx;
        async { Ok(()) }
    }

    /// Runs on every start, also after a restart. Returns once the component
    /// is running; long-running work goes into `ctx.spawn(..)`.
    fn start(&mut self, ctx: &mut Context<Self>) -> impl Future<Output = Result<()>> + Send {
        let _ = ctx;
        async { Ok(()) }
    }

    /// Runs on every stop, also before a restart. Errors are logged; the
    /// component stops anyway.
    fn stop(&mut self, ctx: &mut Context<Self>) -> impl Future<Output = Result<()>> + Send {
        let _ = ctx;
        async { Ok(()) }
    }

    /// What the runtime does when this component fails. Default: never
    /// restart; a failure stops the component and is reported to its container.
    fn restart_policy(&self) -> RestartPolicy {
        RestartPolicy::never()
    }

    /// Called after the runtime built a new state from JSON (a
    /// `replace_json`, HTTP `PUT`, or a `merge_patch_json`, HTTP `PATCH`) with
    /// the state it replaces. Fields that JSON does not carry
    /// (`#[serde(skip)]`: pools, clients, handles) start from their `Default`
    /// in the new state; copy them over from `previous` here. The default
    /// copies nothing. Persisted fields loaded before `init` are set one by
    /// one and never need this.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use kinesis::Component;
    /// use serde::{Deserialize, Serialize};
    ///
    /// #[derive(Clone, Default, Serialize, Deserialize)]
    /// struct Cache {
    ///     entries: Vec<String>,
    ///     #[serde(skip)]
    ///     client: Option<Arc<String>>,
    /// }
    ///
    /// impl Component for Cache {
    ///     fn restore_skipped(&mut self, previous: &Self) {
    ///         self.client = previous.client.clone();
    ///     }
    /// }
    /// ```
    fn restore_skipped(&mut self, previous: &Self) {
        let _ = previous;
    }

    /// A readiness check of the component's own, run on the latest
    /// snapshot (never through the mailbox) for `GET /_kinesis/ready`: an
    /// error makes the process not ready, with the error's message. Keep it
    /// quick (the HTTP add-on bounds it at 2 s). Default: passes.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use kinesis::{Component, Error, Result};
    /// use serde::{Deserialize, Serialize};
    ///
    /// #[derive(Clone, Default, Serialize, Deserialize)]
    /// struct Orders {
    ///     #[serde(skip)]
    ///     database: Option<Arc<std::net::SocketAddr>>,
    /// }
    ///
    /// impl Component for Orders {
    ///     async fn health(&self) -> Result<()> {
    ///         // "Can reach the database": connect to it.
    ///         let Some(addr) = self.database.as_deref() else { return Ok(()) };
    ///         tokio::net::TcpStream::connect(addr)
    ///             .await
    ///             .map(drop)
    ///             .map_err(|e| Error::Store(format!("cannot reach the database at {addr}: {e}")))
    ///     }
    /// }
    /// ```
    fn health(&self) -> impl Future<Output = Result<()>> + Send {
        async { Ok(()) }
    }

    /// Whether the HTTP add-on and other remote surfaces expose this
    /// component. Default `true`; add-ons themselves return `false`.
    fn exposed(&self) -> bool {
        true
    }

    /// The methods callable by name of this value, for a component type
    /// whose methods are only known at run time, such as the test kit's
    /// mocks (`kinesis::testing::Mock`). Consulted only when the type has no
    /// `#[kinesis::handlers]` table, on the latest snapshot; the table it
    /// returns must not change while the component runs. Default `None`.
    fn method_table(&self) -> Option<&'static crate::methods::MethodTable> {
        None
    }
}

/// A component that handles messages of type `M`.
///
/// The handler runs inside the component's mailbox, one message at a time, in
/// the order messages were accepted. It owns `&mut self` for its duration; no
/// lock is involved. If it returns an error (or panics) the state is rolled
/// back to what it was before the message, and nothing is published or
/// persisted.
///
/// ```
/// use kinesis::{Component, Context, Handler, Result};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Clone, Default, Serialize, Deserialize)]
/// struct Counter { count: u64 }
/// impl Component for Counter {}
///
/// struct Add(u64);
/// impl Handler<Add> for Counter {
///     type Reply = u64;
///     async fn handle(&mut self, msg: Add, _ctx: &mut Context<Self>) -> Result<u64> {
///         self.count += msg.0;
///         Ok(self.count)
///     }
/// }
/// ```
pub trait Handler<M: Send + 'static>: Component {
    /// What a successful `handle` answers.
    type Reply: Send + 'static;

    /// Handles one message.
    fn handle(
        &mut self,
        msg: M,
        ctx: &mut Context<Self>,
    ) -> impl Future<Output = Result<Self::Reply>> + Send;

    /// Whether handling `M` may change the state. When `false` the runtime
    /// skips serialising and hashing the state afterwards. Default `true`.
    const MUTATES: bool = true;
}
