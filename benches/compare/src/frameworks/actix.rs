//! actix: an actor with typed `Handler` impls; asks with `Addr::send`.
//!
//! actix runs each arbiter as a single-threaded runtime. [`Actix`] uses the
//! `System`'s own arbiter (the benchmark's thread) and one more `Arbiter`
//! thread, and places actor `i` and caller task `i` on arbiter `i % 2`.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use actix::{Actor, ActorContext, Addr, Context, Handler, Message};
use actix_rt::{Arbiter, ArbiterHandle, System};
use tokio::sync::{oneshot, Notify};

use super::{Counter, Framework};

/// How many actors are alive, and a wake-up for when none is.
#[derive(Default)]
struct Alive {
    count: AtomicUsize,
    none: Notify,
}

/// The counter actor.
pub struct CountActor {
    count: u64,
    alive: Arc<Alive>,
}

impl Actor for CountActor {
    type Context = Context<Self>;

    fn stopped(&mut self, _: &mut Context<Self>) {
        if self.alive.count.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.alive.none.notify_one();
        }
    }
}

/// Adds one.
pub struct Inc;

impl Message for Inc {
    type Result = u64;
}

/// Reads the count.
pub struct Get;

impl Message for Get {
    type Result = u64;
}

/// Stops the actor.
pub struct Stop;

impl Message for Stop {
    type Result = ();
}

impl Handler<Inc> for CountActor {
    type Result = u64;

    fn handle(&mut self, _: Inc, _: &mut Context<Self>) -> u64 {
        self.count += 1;
        self.count
    }
}

impl Handler<Get> for CountActor {
    type Result = u64;

    fn handle(&mut self, _: Get, _: &mut Context<Self>) -> u64 {
        self.count
    }
}

impl Handler<Stop> for CountActor {
    type Result = ();

    fn handle(&mut self, _: Stop, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

/// An actix address.
#[derive(Clone)]
pub struct ActixRef(Addr<CountActor>);

impl Counter for ActixRef {
    async fn inc(&self) -> u64 {
        self.0.send(Inc).await.expect("actix send")
    }

    async fn read(&self) -> u64 {
        self.0.send(Get).await.expect("actix send")
    }
}

/// actix on two arbiters.
pub struct Actix {
    arbiters: [ArbiterHandle; 2],
    /// The extra arbiter's thread; stopped when the benchmark ends.
    extra: Arbiter,
    alive: Arc<Alive>,
}

impl Drop for Actix {
    fn drop(&mut self) {
        self.extra.stop();
    }
}

impl Framework for Actix {
    const NAME: &'static str = "actix";
    type Ref = ActixRef;

    fn block_on<F: Future>(fut: F) -> F::Output {
        System::new().block_on(fut)
    }

    async fn setup() -> Self {
        let extra = Arbiter::new();
        Actix {
            arbiters: [Arbiter::current(), extra.handle()],
            extra,
            alive: Arc::new(Alive::default()),
        }
    }

    fn spawn<F>(&self, worker: usize, fut: F) -> impl Future<Output = F::Output> + Send + 'static
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let spawned = self.arbiters[worker % 2].spawn(async move {
            let _ = tx.send(fut.await);
        });
        assert!(spawned, "arbiter {} is running", worker % 2);
        async move { rx.await.expect("actix task") }
    }

    async fn start(&self, index: usize, _publish: bool) -> ActixRef {
        self.alive.count.fetch_add(1, Ordering::AcqRel);
        let alive = Arc::clone(&self.alive);
        let addr = CountActor::start_in_arbiter(&self.arbiters[index % 2], move |_| CountActor {
            count: 0,
            alive,
        });
        ActixRef(addr)
    }

    async fn stop_all(&self, refs: Vec<ActixRef>) {
        for r in &refs {
            r.0.do_send(Stop);
        }
        drop(refs);
        while self.alive.count.load(Ordering::Acquire) > 0 {
            self.alive.none.notified().await;
        }
    }
}
