//! kinesis: a component with typed handlers, added to a container.
//!
//! [`Kinesis`] asks a mutating message: after each one the runtime
//! serialises the state, compares it, hashes it into a new ETag and
//! publishes a new snapshot — the real cost of a kinesis write — and the
//! handle arms its 30 s ask timeout. [`KinesisNoTimeout`] does the same on
//! a handle without a timeout; [`KinesisReadOnly`] asks a message declared
//! `MUTATES = false`, which skips the commit.

use std::future::Future;

use kinesis::{Component, Container, Context, Handle, Handler, Result};
use serde::{Deserialize, Serialize};

use super::{Counter, Framework};

/// The counter component.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Count {
    count: u64,
}

impl Component for Count {}

/// Adds one (mutating).
pub struct Inc;

impl Handler<Inc> for Count {
    type Reply = u64;

    async fn handle(&mut self, _: Inc, _: &mut Context<Self>) -> Result<u64> {
        self.count += 1;
        Ok(self.count)
    }
}

/// Answers the count plus one without changing the state (read-only).
pub struct Peek;

impl Handler<Peek> for Count {
    type Reply = u64;
    const MUTATES: bool = false;

    async fn handle(&mut self, _: Peek, _: &mut Context<Self>) -> Result<u64> {
        Ok(self.count + 1)
    }
}

/// How a [`KinesisRef`] asks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// The default handle (30 s ask timeout), asking [`Inc`].
    Default,
    /// A handle made with `without_timeout()`, asking [`Inc`].
    NoTimeout,
    /// The default handle, asking [`Peek`].
    ReadOnly,
}

impl Mode {
    const fn of(mode: u8) -> Mode {
        match mode {
            0 => Mode::Default,
            1 => Mode::NoTimeout,
            _ => Mode::ReadOnly,
        }
    }
}

/// A kinesis handle and how it asks.
#[derive(Clone)]
pub struct KinesisRef {
    handle: Handle<Count>,
    read_only: bool,
}

impl Counter for KinesisRef {
    async fn inc(&self) -> u64 {
        let reply =
            if self.read_only { self.handle.ask(Peek).await } else { self.handle.ask(Inc).await };
        reply.expect("kinesis ask")
    }

    async fn read(&self) -> u64 {
        self.handle.snapshot().state.count
    }
}

/// kinesis with a root container and a `pool` container the counters go
/// in; `MODE` picks how handles ask (see the aliases below).
pub struct KinesisWith<const MODE: u8> {
    root: Container,
    pool: Container,
}

/// kinesis as users get it: default handles, a mutating message.
pub type Kinesis = KinesisWith<0>;
/// kinesis with handles made by `Handle::without_timeout()`.
pub type KinesisNoTimeout = KinesisWith<1>;
/// kinesis asking a read-only message: the mailbox without the commit.
pub type KinesisReadOnly = KinesisWith<2>;

impl<const MODE: u8> Framework for KinesisWith<MODE> {
    const NAME: &'static str = match Mode::of(MODE) {
        Mode::Default => "kinesis",
        Mode::NoTimeout => "kinesis-nt",
        Mode::ReadOnly => "kinesis-ro",
    };
    type Ref = KinesisRef;

    fn block_on<F: Future>(fut: F) -> F::Output {
        crate::runtime().block_on(fut)
    }

    async fn setup() -> Self {
        let root = Container::root().await.expect("root container");
        let pool = root.add_container("pool").await.expect("pool container");
        KinesisWith { root, pool }
    }

    fn spawn<F>(&self, _worker: usize, fut: F) -> impl Future<Output = F::Output> + Send + 'static
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let task = tokio::spawn(fut);
        async move { task.await.expect("task") }
    }

    async fn start(&self, index: usize, _publish: bool) -> KinesisRef {
        let handle = self.pool.add(&format!("c{index}"), Count::default()).await.expect("add");
        let mode = Mode::of(MODE);
        let handle = if mode == Mode::NoTimeout { handle.without_timeout() } else { handle };
        KinesisRef { handle, read_only: mode == Mode::ReadOnly }
    }

    async fn stop_all(&self, refs: Vec<KinesisRef>) {
        drop(refs);
        // What a user does: stopping the container stops its children
        // (newest first) and waits for each.
        self.pool.shutdown().await.expect("pool stops");
        self.root.shutdown().await.expect("root stops");
    }
}
