//! ractor: an Erlang `gen_server`-style actor; asks are `call`s with an
//! `RpcReplyPort`.

use std::future::Future;
use std::sync::Mutex;

use ractor::rpc::CallResult;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use tokio::task::JoinHandle;

use super::{Counter, Framework};

/// The counter's messages.
pub enum Msg {
    /// Add one, reply with the new count.
    Inc(RpcReplyPort<u64>),
    /// Reply with the count.
    Get(RpcReplyPort<u64>),
}

/// The counter actor; its state is the count.
pub struct CountActor;

impl Actor for CountActor {
    type Msg = Msg;
    type State = u64;
    type Arguments = ();

    async fn pre_start(&self, _: ActorRef<Msg>, _: ()) -> Result<u64, ActorProcessingErr> {
        Ok(0)
    }

    async fn handle(
        &self,
        _: ActorRef<Msg>,
        msg: Msg,
        count: &mut u64,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            Msg::Inc(reply) => {
                *count += 1;
                let _ = reply.send(*count);
            }
            Msg::Get(reply) => {
                let _ = reply.send(*count);
            }
        }
        Ok(())
    }
}

/// A ractor actor reference.
#[derive(Clone)]
pub struct RactorRef(ActorRef<Msg>);

fn success(result: CallResult<u64>) -> u64 {
    match result {
        CallResult::Success(v) => v,
        CallResult::Timeout => panic!("ractor call timed out"),
        CallResult::SenderError => panic!("ractor actor dropped the reply"),
    }
}

impl Counter for RactorRef {
    async fn inc(&self) -> u64 {
        success(self.0.call(Msg::Inc, None).await.expect("ractor call"))
    }

    async fn read(&self) -> u64 {
        success(self.0.call(Msg::Get, None).await.expect("ractor call"))
    }
}

/// ractor on tokio.
pub struct Ractor {
    joins: Mutex<Vec<JoinHandle<()>>>,
}

impl Framework for Ractor {
    const NAME: &'static str = "ractor";
    type Ref = RactorRef;

    fn block_on<F: Future>(fut: F) -> F::Output {
        crate::runtime().block_on(fut)
    }

    async fn setup() -> Self {
        Ractor { joins: Mutex::new(Vec::new()) }
    }

    fn spawn<F>(&self, _worker: usize, fut: F) -> impl Future<Output = F::Output> + Send + 'static
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let task = tokio::spawn(fut);
        async move { task.await.expect("task") }
    }

    async fn start(&self, _index: usize, _publish: bool) -> RactorRef {
        let (actor, join) = Actor::spawn(None, CountActor, ()).await.expect("ractor spawn");
        self.joins.lock().expect("joins").push(join);
        RactorRef(actor)
    }

    async fn stop_all(&self, refs: Vec<RactorRef>) {
        for r in &refs {
            r.0.stop(None);
        }
        drop(refs);
        let joins = std::mem::take(&mut *self.joins.lock().expect("joins"));
        for join in joins {
            join.await.expect("ractor actor ended cleanly");
        }
    }
}
