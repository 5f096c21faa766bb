//! kameo: an actor with typed `Message` impls; asks with `ActorRef::ask`.

use std::future::Future;

use kameo::actor::{ActorRef, Spawn};
use kameo::message::{Context, Message};
use kameo::Actor;

use super::{Counter, Framework};

/// The counter actor.
#[derive(Actor, Default)]
pub struct CountActor {
    count: u64,
}

/// Adds one.
pub struct Inc;

/// Reads the count.
pub struct Get;

impl Message<Inc> for CountActor {
    type Reply = u64;

    async fn handle(&mut self, _: Inc, _: &mut Context<Self, Self::Reply>) -> u64 {
        self.count += 1;
        self.count
    }
}

impl Message<Get> for CountActor {
    type Reply = u64;

    async fn handle(&mut self, _: Get, _: &mut Context<Self, Self::Reply>) -> u64 {
        self.count
    }
}

/// A kameo actor reference.
#[derive(Clone)]
pub struct KameoRef(ActorRef<CountActor>);

impl Counter for KameoRef {
    async fn inc(&self) -> u64 {
        self.0.ask(Inc).await.expect("kameo ask")
    }

    async fn read(&self) -> u64 {
        self.0.ask(Get).await.expect("kameo ask")
    }
}

/// kameo on tokio, default (bounded, 64) mailboxes.
pub struct Kameo;

impl Framework for Kameo {
    const NAME: &'static str = "kameo";
    type Ref = KameoRef;

    fn block_on<F: Future>(fut: F) -> F::Output {
        crate::runtime().block_on(fut)
    }

    async fn setup() -> Self {
        Kameo
    }

    fn spawn<F>(&self, _worker: usize, fut: F) -> impl Future<Output = F::Output> + Send + 'static
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let task = tokio::spawn(fut);
        async move { task.await.expect("task") }
    }

    async fn start(&self, _index: usize, _publish: bool) -> KameoRef {
        let actor = CountActor::spawn(CountActor::default());
        actor.wait_for_startup().await;
        KameoRef(actor)
    }

    async fn stop_all(&self, refs: Vec<KameoRef>) {
        for r in &refs {
            r.0.stop_gracefully().await.expect("kameo stop");
        }
        for r in &refs {
            r.0.wait_for_shutdown().await;
        }
    }
}
