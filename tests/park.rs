//! Idle components without a task: a started component that has nothing to
//! do waits without a tokio task until its first message, and stopping it
//! runs its `stop` hook in the task that asked.

mod common;
mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Counter, Get, Inc};
use kinesis::{Component, Container, Context, Handler, Result, Stage};
use serde::{Deserialize, Serialize};
use support::within;

/// Tasks alive on the current runtime.
fn alive_tasks() -> usize {
    tokio::runtime::Handle::current().metrics().num_alive_tasks()
}

/// Polls until `alive_tasks()` is `n`, for at most 5 s.
async fn until_alive_tasks(n: usize) {
    within(&format!("{n} alive tasks"), async {
        while alive_tasks() != n {
            tokio::task::yield_now().await;
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_components_have_no_task_until_their_first_message() {
    let root = Container::root().await.unwrap();
    let before = alive_tasks();
    let mut handles = Vec::new();
    for i in 0..100 {
        handles.push(root.add(&format!("c{i}"), Counter::default()).await.unwrap());
    }
    assert_eq!(alive_tasks(), before, "100 idle components, no task among them");
    assert_eq!(handles[7].ask(Inc(2)).await.unwrap(), 2);
    assert_eq!(alive_tasks(), before + 1, "the component that got a message has its task");
    assert_eq!(handles[7].ask(Get).await.unwrap(), 2);
    assert_eq!(alive_tasks(), before + 1, "and only one");
    root.shutdown().await.unwrap();
    for h in &handles {
        assert_eq!(h.stage(), Stage::TornDown);
    }
    until_alive_tasks(before).await;
}

/// Tells itself a message from its `start` hook: the mailbox is not empty
/// when the cell would park.
#[derive(Clone, Default, Serialize, Deserialize)]
struct SelfStarter {
    count: u64,
}

struct Bump;

impl Component for SelfStarter {
    async fn start(&mut self, ctx: &mut Context<Self>) -> Result<()> {
        ctx.handle().clone().tell(Bump).await
    }
}

impl Handler<Bump> for SelfStarter {
    type Reply = u64;
    async fn handle(&mut self, _: Bump, _: &mut Context<Self>) -> Result<u64> {
        self.count += 1;
        Ok(self.count)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_queued_before_the_component_parks_is_handled() {
    let root = Container::root().await.unwrap();
    let c = root.add("c", SelfStarter::default()).await.unwrap();
    // Nothing else is sent: the message told during `start` is handled on
    // its own.
    within("the told message", async {
        while c.snapshot().state.count != 1 {
            tokio::task::yield_now().await;
        }
    })
    .await;
    root.shutdown().await.unwrap();
}

/// Where a [`Racer`] sends its handle, once.
type HandleOut = Arc<Mutex<Option<tokio::sync::oneshot::Sender<kinesis::Handle<Racer>>>>>;

/// Hands its own handle out from `start`, so another task asks while the
/// cell is being parked.
#[derive(Clone, Default, Serialize, Deserialize)]
struct Racer {
    #[serde(skip)]
    out: Option<HandleOut>,
}

impl Component for Racer {
    async fn start(&mut self, ctx: &mut Context<Self>) -> Result<()> {
        if let Some(tx) = self.out.as_ref().and_then(|o| o.lock().unwrap().take()) {
            let _ = tx.send(ctx.handle().clone());
        }
        Ok(())
    }
}

impl Handler<Bump> for Racer {
    type Reply = ();
    async fn handle(&mut self, _: Bump, _: &mut Context<Self>) -> Result<()> {
        Ok(())
    }
}

/// Messages sent while a component parks are never left without a task:
/// each of 300 components gets an ask from another thread at the moment
/// its `start` hook returns, and every ask is answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asks_racing_the_parking_of_a_component_are_answered() {
    let root = Container::root().await.unwrap();
    for i in 0..300 {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let asker = tokio::spawn(async move {
            let handle: kinesis::Handle<Racer> = rx.await.expect("the component sends its handle");
            handle.ask(Bump).await
        });
        let racer = Racer { out: Some(Arc::new(Mutex::new(Some(tx)))) };
        root.add(&format!("r{i}"), racer).await.unwrap();
        within("an ask racing the parking", asker).await.unwrap().unwrap();
    }
    root.shutdown().await.unwrap();
}

/// Records the task its `stop` hook ran in.
#[derive(Clone, Default, Serialize, Deserialize)]
struct StopWitness {
    #[serde(skip)]
    stopped_in: Arc<Mutex<Option<tokio::task::Id>>>,
}

impl Component for StopWitness {
    async fn stop(&mut self, _: &mut Context<Self>) -> Result<()> {
        *self.stopped_in.lock().unwrap() = tokio::task::try_id();
        Ok(())
    }
}

impl Handler<Bump> for StopWitness {
    type Reply = ();
    async fn handle(&mut self, _: Bump, _: &mut Context<Self>) -> Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_component_stops_in_the_callers_task_and_a_busy_one_in_its_own() {
    // In a task of its own: a test's body is not one.
    tokio::spawn(stops_in_the_callers_task_when_idle()).await.unwrap();
}

async fn stops_in_the_callers_task_when_idle() {
    let root = Container::root().await.unwrap();
    let here = tokio::task::try_id().expect("runs in a task");

    let idle = StopWitness::default();
    let idle_stopped_in = Arc::clone(&idle.stopped_in);
    let idle = root.add("idle", idle).await.unwrap();
    idle.shutdown().await.unwrap();
    assert_eq!(idle.stage(), Stage::TornDown);
    assert_eq!(*idle_stopped_in.lock().unwrap(), Some(here), "no hand-off for an idle component");
    assert!(root.get::<StopWitness>("idle").is_err(), "and its container forgot it");

    let busy = StopWitness::default();
    let busy_stopped_in = Arc::clone(&busy.stopped_in);
    let busy = root.add("busy", busy).await.unwrap();
    busy.ask(Bump).await.unwrap();
    busy.shutdown().await.unwrap();
    let stopped_in = busy_stopped_in.lock().unwrap().expect("the stop hook ran");
    assert_ne!(stopped_in, here, "a component with a task stops in it");

    // Messages to a stopped component are refused, parked or not.
    assert!(matches!(idle.ask(Bump).await, Err(kinesis::Error::Stopping(_))));
    assert!(matches!(
        tokio::time::timeout(Duration::from_secs(5), busy.ask(Bump)).await,
        Ok(Err(kinesis::Error::Stopping(_)))
    ));
    root.shutdown().await.unwrap();
}

/// Asks racing a `Shutdown` of idle components: every ask is answered
/// (with its reply or `Stopping`), never left waiting, and every component
/// ends torn down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asks_racing_the_shutdown_of_idle_components_are_all_answered() {
    let root = Container::root().await.unwrap();
    for i in 0..200 {
        let c = root.add(&format!("c{i}"), Counter::default()).await.unwrap();
        let asker = {
            let c = c.clone();
            tokio::spawn(async move { c.ask(Inc(1)).await })
        };
        let stopper = {
            let c = c.clone();
            tokio::spawn(async move { c.shutdown().await })
        };
        match within("an ask racing a shutdown", asker).await.unwrap() {
            Ok(1) | Err(kinesis::Error::Stopping(_)) => {}
            other => panic!("unexpected answer {other:?}"),
        }
        within("the shutdown", stopper).await.unwrap().unwrap();
        assert_eq!(c.stage(), Stage::TornDown);
    }
    assert!(root.names().is_empty(), "every child left its container");
    root.shutdown().await.unwrap();
}
