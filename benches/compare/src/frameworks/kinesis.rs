//! kinesis: a component with typed handlers, added to a container.
//!
//! [`Kinesis`] asks a mutating message: after each one the runtime
//! serialises the state, compares it, hashes it into a new ETag and
//! publishes a new snapshot — the real cost of a kinesis write.
//! [`KinesisReadOnly`] asks a message declared `MUTATES = false`, which
//! skips that commit: the cost of the mailbox round trip alone.

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

/// A kinesis handle; `read_only` handles ask [`Peek`] instead of [`Inc`].
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

/// kinesis with a root container and a `pool` container the counters go in.
pub struct Kinesis {
    root: Container,
    pool: Container,
}

impl Kinesis {
    async fn new() -> Kinesis {
        let root = Container::root().await.expect("root container");
        let pool = root.add_container("pool").await.expect("pool container");
        Kinesis { root, pool }
    }

    async fn add(&self, index: usize, read_only: bool) -> KinesisRef {
        let handle = self.pool.add(&format!("c{index}"), Count::default()).await.expect("add");
        KinesisRef { handle, read_only }
    }

    async fn stop(&self, refs: Vec<KinesisRef>) {
        drop(refs);
        // What a user does: stopping the container stops its children
        // (newest first) and waits for each.
        self.pool.shutdown().await.expect("pool stops");
        self.root.shutdown().await.expect("root stops");
    }
}

fn spawn_tokio<F>(fut: F) -> impl Future<Output = F::Output> + Send + 'static
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let task = tokio::spawn(fut);
    async move { task.await.expect("task") }
}

impl Framework for Kinesis {
    const NAME: &'static str = "kinesis";
    type Ref = KinesisRef;

    fn block_on<F: Future>(fut: F) -> F::Output {
        crate::runtime().block_on(fut)
    }

    async fn setup() -> Self {
        Kinesis::new().await
    }

    fn spawn<F>(&self, _worker: usize, fut: F) -> impl Future<Output = F::Output> + Send + 'static
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        spawn_tokio(fut)
    }

    async fn start(&self, index: usize, _publish: bool) -> KinesisRef {
        self.add(index, false).await
    }

    async fn stop_all(&self, refs: Vec<KinesisRef>) {
        self.stop(refs).await
    }
}

/// kinesis asking a read-only message: the mailbox without the commit.
pub struct KinesisReadOnly(Kinesis);

impl Framework for KinesisReadOnly {
    const NAME: &'static str = "kinesis-ro";
    type Ref = KinesisRef;

    fn block_on<F: Future>(fut: F) -> F::Output {
        crate::runtime().block_on(fut)
    }

    async fn setup() -> Self {
        KinesisReadOnly(Kinesis::new().await)
    }

    fn spawn<F>(&self, _worker: usize, fut: F) -> impl Future<Output = F::Output> + Send + 'static
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        spawn_tokio(fut)
    }

    async fn start(&self, index: usize, _publish: bool) -> KinesisRef {
        self.0.add(index, true).await
    }

    async fn stop_all(&self, refs: Vec<KinesisRef>) {
        self.0.stop(refs).await
    }
}
