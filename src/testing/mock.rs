//! [`Mock`]: a component whose methods are closures, one per method.
//!
//! A mock is reachable exactly like a component with `#[kinesis::handlers]`:
//! [`DynComponent::call_json`](crate::DynComponent::call_json) and
//! [`batch_json`](crate::DynComponent::batch_json) call its methods by name,
//! [`DynComponent::methods`](crate::DynComponent::methods) lists them (so
//! the HTTP add-on's `POST {uri}/{method}`, `GET {uri}/{method}` and
//! `meta.methods` serve them), and a component that calls another by name
//! cannot tell the mock from the real one.
//!
//! * A *mutating* method runs in the mailbox, one call at a time, after the
//!   `If-Match` check, like a `&mut self` method; a *read-only* one runs at
//!   once, like a `&self` method.
//! * Every call is recorded, before its closure runs (so failing calls are
//!   recorded too), with its method name and JSON arguments: [`Mock::calls`].
//!   The clones of a mock share its methods and its record, so a test keeps
//!   one clone and adds another to a container.
//! * The mock's state (its `data` over HTTP) is a JSON value set with
//!   [`Mock::state`] (default `{}`); `PUT` and `PATCH` change it. The
//!   closures do not see it.
//! * Each distinct list of method names and kinds makes one method table
//!   that lives as long as the process (the tables of the HTTP add-on are
//!   `'static`); mocks with the same methods share it.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::methods::{MethodInfo, MethodTable};
use crate::{Component, Error, Result};

/// One method of a mock: its closure, boxed to answer a future.
type MockFn = Arc<dyn Fn(Value) -> BoxFuture<'static, Result<Value>> + Send + Sync>;

/// One recorded call of a mock method.
#[derive(Debug, Clone, PartialEq)]
pub struct MockCall {
    /// The method called.
    pub method: String,
    /// The JSON arguments it was called with, as given.
    pub args: Value,
}

/// A component whose methods are closures; see the [module docs](self).
///
/// ```
/// use kinesis::testing::{Mock, TestRuntime};
/// use kinesis::{DynComponent, Precondition};
/// use serde_json::json;
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let rt = TestRuntime::memory().await;
/// let counter = Mock::new()
///     .mutating("increment", |args| Ok(json!(args["by"].as_u64().unwrap_or(1) + 41)))
///     .read_only("total", |_| Ok(json!(42)));
/// rt.root().add("counter", counter.clone()).await?;
///
/// // Called by name, as the HTTP add-on and other components do.
/// let dynamic = rt.root().get_dyn("counter")?;
/// assert_eq!(dynamic.call_json("increment", json!({"by": 1}), Precondition::Any).await?, json!(42));
/// assert_eq!(counter.calls("increment"), vec![json!({"by": 1})]);
/// assert!(counter.calls("total").is_empty());
/// rt.shutdown().await;
/// # Ok::<(), kinesis::Error>(()) }).unwrap();
/// ```
#[derive(Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Mock {
    state: Value,
    #[serde(skip)]
    inner: Arc<Inner>,
}

/// What the clones of a mock share.
#[derive(Default)]
struct Inner {
    /// In the order they were declared.
    methods: Vec<(String, bool, MockFn)>,
    calls: Mutex<Vec<MockCall>>,
    called: tokio::sync::Notify,
    table: OnceLock<&'static MethodTable>,
}

impl std::fmt::Debug for Mock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mock")
            .field("state", &self.state)
            .field(
                "methods",
                &self.inner.methods.iter().map(|(n, m, _)| (n, *m)).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Default for Mock {
    fn default() -> Self {
        Mock::new()
    }
}

impl Mock {
    /// A mock without methods whose state is `{}`.
    pub fn new() -> Mock {
        Mock { state: Value::Object(Default::default()), inner: Arc::default() }
    }

    /// Sets the state (the `data` of `GET {uri}`).
    pub fn state(mut self, state: Value) -> Mock {
        self.state = state;
        self
    }

    /// Adds a mutating method: called in the mailbox, one call at a time.
    ///
    /// # Panics
    ///
    /// If the name is empty, starts with `_` (the runtime's names), is taken,
    /// or the mock was cloned already (declare every method first).
    pub fn mutating<F>(self, name: &str, f: F) -> Mock
    where
        F: Fn(Value) -> Result<Value> + Send + Sync + 'static,
    {
        self.method(name, true, Arc::new(move |args| Box::pin(std::future::ready(f(args)))))
    }

    /// Adds a read-only method: called at once, outside the mailbox.
    ///
    /// # Panics
    ///
    /// As [`mutating`](Mock::mutating).
    pub fn read_only<F>(self, name: &str, f: F) -> Mock
    where
        F: Fn(Value) -> Result<Value> + Send + Sync + 'static,
    {
        self.method(name, false, Arc::new(move |args| Box::pin(std::future::ready(f(args)))))
    }

    /// Adds a mutating method whose closure answers a future; the mailbox
    /// waits for it, as for an `async fn` handler.
    ///
    /// # Panics
    ///
    /// As [`mutating`](Mock::mutating).
    pub fn mutating_async<F, Fut>(self, name: &str, f: F) -> Mock
    where
        F: Fn(Value) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Value>> + Send + 'static,
    {
        self.method(name, true, Arc::new(move |args| Box::pin(f(args))))
    }

    /// Adds a read-only method whose closure answers a future.
    ///
    /// # Panics
    ///
    /// As [`mutating`](Mock::mutating).
    pub fn read_only_async<F, Fut>(self, name: &str, f: F) -> Mock
    where
        F: Fn(Value) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Value>> + Send + 'static,
    {
        self.method(name, false, Arc::new(move |args| Box::pin(f(args))))
    }

    fn method(mut self, name: &str, mutating: bool, f: MockFn) -> Mock {
        assert!(
            !name.is_empty() && !name.starts_with('_'),
            "mock method name `{name}`: names are not empty and do not start with `_`"
        );
        let inner = Arc::get_mut(&mut self.inner)
            .expect("declare a mock's methods before cloning it or adding it to a container");
        assert!(
            !inner.methods.iter().any(|(n, _, _)| n == name),
            "mock method `{name}` is declared twice"
        );
        inner.methods.push((name.to_owned(), mutating, f));
        inner.table = OnceLock::new();
        self
    }

    /// The arguments of every call of `method` so far, oldest first.
    pub fn calls(&self, method: &str) -> Vec<Value> {
        self.all_calls().into_iter().filter(|c| c.method == method).map(|c| c.args).collect()
    }

    /// Every call so far, oldest first.
    pub fn all_calls(&self) -> Vec<MockCall> {
        self.inner.calls.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Waits until `method` was called at least `count` times, at most
    /// `within` (tokio time: virtual under paused time); answers the
    /// arguments of its calls.
    ///
    /// # Panics
    ///
    /// When the deadline passes, naming the method and the calls seen.
    pub async fn wait_for_calls(&self, method: &str, count: usize, within: Duration) -> Vec<Value> {
        let wait = async {
            loop {
                let called = self.inner.called.notified();
                let mut called = std::pin::pin!(called);
                called.as_mut().enable();
                let calls = self.calls(method);
                if calls.len() >= count {
                    return calls;
                }
                called.await;
            }
        };
        match tokio::time::timeout(within, wait).await {
            Ok(calls) => calls,
            Err(_) => panic!(
                "mock method `{method}` was not called {count} times within {within:?}; calls: {:?}",
                self.all_calls()
            ),
        }
    }

    /// Records the call and starts the closure of `method`.
    fn invoke(&self, method: &str, args: Value) -> BoxFuture<'static, Result<Value>> {
        let Some((_, _, f)) = self.inner.methods.iter().find(|(n, _, _)| n == method) else {
            let method = method.to_owned();
            return Box::pin(
                async move { Err(Error::NotFound(format!("mock method `{method}`"))) },
            );
        };
        self.inner
            .calls
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(MockCall { method: method.to_owned(), args: args.clone() });
        self.inner.called.notify_waiters();
        f(args)
    }
}

impl Component for Mock {
    fn restore_skipped(&mut self, previous: &Self) {
        self.inner = Arc::clone(&previous.inner);
    }

    fn method_table(&self) -> Option<&'static MethodTable> {
        Some(*self.inner.table.get_or_init(|| {
            table_for(self.inner.methods.iter().map(|(n, m, _)| (n.clone(), *m)).collect())
        }))
    }
}

/// A mock's methods as a table key: names and whether they mutate.
type Signature = Vec<(String, bool)>;

/// The shared table for a list of method names and kinds.
fn table_for(methods: Signature) -> &'static MethodTable {
    static TABLES: OnceLock<Mutex<HashMap<Signature, &'static MethodTable>>> = OnceLock::new();
    let mut tables = TABLES.get_or_init(Default::default).lock().unwrap_or_else(|p| p.into_inner());
    tables.entry(methods).or_insert_with_key(|methods| {
        let infos: Vec<MethodInfo> = methods
            .iter()
            .map(|(name, mutating)| MethodInfo {
                name: Box::leak(name.clone().into_boxed_str()),
                mutating: *mutating,
                args: &[],
                returns: "serde_json::Value",
                doc: "A method of a mock (kinesis::testing::Mock).",
                args_schema: |_| schemars::Schema::from(true),
                reply_schema: |_| schemars::Schema::from(true),
            })
            .collect();
        Box::leak(Box::new(MethodTable {
            type_id: TypeId::of::<Mock>,
            methods: Box::leak(infos.into_boxed_slice()),
            call_mut,
            call_ref,
            state_schema: |_| None,
        }))
    })
}

fn call_mut<'a>(
    state: &'a mut (dyn Any + Send),
    _ctx: &'a mut (dyn Any + Send),
    method: &'a str,
    args: Value,
) -> BoxFuture<'a, Result<Value>> {
    match state.downcast_ref::<Mock>() {
        Some(mock) => mock.invoke(method, args),
        None => {
            Box::pin(async { Err(Error::Invalid("a mock's method table on another type".into())) })
        }
    }
}

fn call_ref<'a>(
    state: &'a (dyn Any + Send + Sync),
    method: &'a str,
    args: Value,
) -> BoxFuture<'a, Result<Value>> {
    match state.downcast_ref::<Mock>() {
        Some(mock) => mock.invoke(method, args),
        None => {
            Box::pin(async { Err(Error::Invalid("a mock's method table on another type".into())) })
        }
    }
}
