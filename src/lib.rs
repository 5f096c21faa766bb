//! kinesis: event-driven services built from components.
#![doc = include_str!("../docs/overview.md")]

// The `::kinesis::…` paths of the macros, used inside this crate (`kv`).
extern crate self as kinesis;

pub mod app;
mod caller;
mod canonical;
mod cell;
pub mod changes;
mod component;
pub mod config;
pub mod container;
mod context;
mod control;
pub mod diagnostics;
pub mod dynamic;
pub mod error;
pub mod etag;
mod handle;
mod json;
pub mod kv;
pub mod lease;
pub mod methods;
pub mod metrics;
mod naming;
pub mod persist;
pub mod remote;
pub mod runtime;
#[cfg(feature = "settings")]
pub mod settings;
pub mod supervisor;
pub mod tasks;
#[cfg(feature = "testing")]
pub mod testing;

pub use app::App;
pub use caller::Caller;
pub use changes::{CallbackId, Change, Lagged, Position, Replay, Subscription};
pub use component::{Component, Handler};
pub use config::Config;
pub use container::{Container, Failure, Prepared};
pub use context::Context;
pub use control::Control;
pub use diagnostics::{Activity, ComponentDiagnostics};
pub use dynamic::{DynComponent, JsonChange, JsonSnapshot, JsonText, JsonWatch, Meta, WatchStart};
pub use error::{Error, ErrorKind, Result};
pub use etag::{ETag, Precondition, Snapshot};
pub use handle::{Handle, DEFAULT_ASK_TIMEOUT};
pub use kinesis_fsm::{IllegalTransition, Stage, State};
/// Turns the `pub` methods of an inherent `impl` block of a component into
/// messages, typed methods on [`Handle`] and a JSON method table.
///
/// `&mut self` methods become messages handled through the mailbox, one at a
/// time; `&self` methods are read-only and run on the latest snapshot without
/// entering the mailbox. Arguments are named, owned serde types; a mutating
/// method may take `&mut Context<Self>` as its last parameter; methods may be
/// `async`; the return type is `()`, a `T: Serialize` or a `Result<T, E>` whose
/// `E` is `Into<Error>` (converted with `into`) or `Display` (becomes
/// [`Error::Handler`]).
///
/// For `impl Counter` it generates the trait `CounterHandle`, implemented for
/// `Handle<Counter>` with one async method per `pub` method (mutating ones
/// use [`Handle::ask`]), a hidden message struct per mutating method
/// (`__CounterIncrement` for `increment`) with its [`Handler`] impl, and the
/// [`MethodTable`](methods::MethodTable) that [`DynComponent::call_json`] and
/// the HTTP add-on call by name with a JSON object of named arguments.
/// Unsupported signatures (generic methods, `self` by value, references,
/// `impl Trait`, names starting with `_`, duplicate names, …) are compile
/// errors pointing at the offending code.
///
/// ```
/// use kinesis::{Component, Container, Context, DynComponent, Precondition, Result};
/// use serde::{Deserialize, Serialize};
/// use serde_json::json;
///
/// #[derive(Clone, Default, Serialize, Deserialize)]
/// pub struct Counter {
///     count: u64,
/// }
/// impl Component for Counter {}
///
/// #[kinesis::handlers]
/// impl Counter {
///     /// Adds `by` and returns the new count.
///     pub async fn increment(&mut self, by: u64) -> Result<u64> {
///         self.count += by;
///         Ok(self.count)
///     }
///
///     /// Sets the count back to zero; the context is optional.
///     pub fn reset(&mut self, ctx: &mut Context<Self>) {
///         tracing::info!(uri = ctx.uri(), "reset");
///         self.count = 0;
///     }
///
///     /// The current count, read from the latest snapshot.
///     pub fn total(&self) -> u64 {
///         self.count
///     }
///
///     /// Not `pub`: not a message, left alone.
///     fn helper(&self) -> u64 {
///         self.count * 2
///     }
/// }
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let root = Container::root().await?;
/// let counter = root.add("counter", Counter::default()).await?;
///
/// // Typed: `CounterHandle` is in scope.
/// assert_eq!(counter.increment(3).await?, 3);
/// assert_eq!(counter.total().await?, 3);
///
/// // By name, with JSON, as the HTTP add-on does.
/// let dynamic = root.get_dyn("counter")?;
/// assert_eq!(dynamic.call_json("increment", json!({"by": 2}), Precondition::Any).await?, json!(5));
/// assert_eq!(dynamic.call_json("total", json!({}), Precondition::Any).await?, json!(5));
/// dynamic.call_json("reset", json!(null), Precondition::Any).await?;
/// assert_eq!(counter.snapshot().state.count, 0);
/// assert!(dynamic.call_json("helper", json!({}), Precondition::Any).await.is_err());
/// root.shutdown().await?;
/// # Ok::<(), kinesis::Error>(()) }).unwrap();
/// ```
pub use kinesis_macros::handlers;
/// Derives the persisted-field schema of a component: `#[persist]` fields are
/// stored as they are, `#[persist(encrypt)]` fields AES-256-GCM encrypted.
///
/// The runtime loads persisted fields before `init` and writes them through
/// after every change that touched them (see [`persist`]). Field names are
/// the serde names (`#[serde(rename)]` and `#[serde(rename_all)]` are
/// honoured). Encrypted fields are shown as `"***"` in every JSON snapshot.
/// Generic types, enums, tuple structs, unknown `#[persist(..)]` options and
/// `#[persist]` on `#[serde(skip)]` fields are compile errors. The schema is
/// found with [`persist::schema_of`].
///
/// ```
/// use std::sync::Arc;
///
/// use kinesis::persist::{schema_of, Cipher, MemoryStore, PersistField, Persistence};
/// use kinesis::{Component, Container, DynComponent, Persist};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Clone, Default, Serialize, Deserialize, Persist)]
/// struct Account {
///     #[persist]
///     owner: String,
///     #[persist(encrypt)]
///     #[serde(rename = "apiKey")]
///     api_key: String,
///     /// Not persisted: starts from its default on every start.
///     cache: u64,
/// }
/// impl Component for Account {}
///
/// let schema = schema_of::<Account>().unwrap();
/// assert_eq!(
///     schema.fields,
///     &[
///         PersistField { name: "owner", encrypt: false },
///         PersistField { name: "apiKey", encrypt: true },
///     ]
/// );
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let root = Container::root_with(Some(Persistence {
///     store: Arc::new(MemoryStore::new()),
///     cipher: Some(Arc::new(Cipher::new(&Cipher::generate_key(), &[])?)),
/// }))
/// .await?;
/// let account = Account { owner: "ada".into(), api_key: "s3cret".into(), cache: 0 };
/// root.add("account", account).await?;
/// let json = root.get_dyn("account")?.snapshot_json()?;
/// assert_eq!(json.data.to_value()["owner"], "ada");
/// assert_eq!(json.data.to_value()["apiKey"], "***");
/// root.shutdown().await?;
/// # Ok::<(), kinesis::Error>(()) }).unwrap();
/// ```
pub use kinesis_macros::Persist;
pub use naming::{validate_name, MAX_NAME_LEN};
pub use runtime::{Runtime, ShutdownReport};
pub use supervisor::{Backoff, Intensity, Restart, RestartPolicy};

/// Re-exports the generated code of `kinesis-macros` refers to. Not a public API.
#[doc(hidden)]
pub mod __private {
    pub use futures;
    pub use inventory;
    pub use schemars;
    pub use serde;
    pub use serde_json;
}
