//! Raw tokio: a task owning a counter, an `mpsc` channel of requests, a
//! `oneshot` per reply. The floor for kinesis's design, written as in
//! `benches/ask.rs` of the main workspace.

use std::future::Future;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::{Counter, Framework};

/// Mailbox capacity, as kinesis's.
const CAPACITY: usize = 1024;

type Request = (u64, oneshot::Sender<u64>);

/// Raw tokio tasks and channels.
pub struct Raw {
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

/// A raw actor: its request channel and, when it publishes, its count.
#[derive(Clone)]
pub struct RawRef {
    tx: mpsc::Sender<Request>,
    published: Option<Arc<ArcSwap<u64>>>,
}

impl Counter for RawRef {
    async fn inc(&self) -> u64 {
        let (tx, rx) = oneshot::channel();
        self.tx.send((1, tx)).await.expect("raw actor alive");
        rx.await.expect("raw actor replies")
    }

    async fn read(&self) -> u64 {
        match &self.published {
            Some(p) => **p.load(),
            None => panic!("raw actor started without publishing"),
        }
    }
}

impl Framework for Raw {
    const NAME: &'static str = "raw-tokio";
    type Ref = RawRef;

    fn block_on<F: Future>(fut: F) -> F::Output {
        crate::runtime().block_on(fut)
    }

    async fn setup() -> Self {
        Raw { tasks: Mutex::new(Vec::new()) }
    }

    fn spawn<F>(&self, _worker: usize, fut: F) -> impl Future<Output = F::Output> + Send + 'static
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let task = tokio::spawn(fut);
        async move { task.await.expect("task") }
    }

    async fn start(&self, _index: usize, publish: bool) -> RawRef {
        let (tx, mut rx) = mpsc::channel::<Request>(CAPACITY);
        let published = publish.then(|| Arc::new(ArcSwap::from_pointee(0u64)));
        let out = published.clone();
        let task = tokio::spawn(async move {
            let mut count = 0u64;
            while let Some((n, reply)) = rx.recv().await {
                count += n;
                if let Some(p) = &out {
                    p.store(Arc::new(count));
                }
                let _ = reply.send(count);
            }
        });
        self.tasks.lock().expect("tasks").push(task);
        RawRef { tx, published }
    }

    async fn stop_all(&self, refs: Vec<RawRef>) {
        // Closing every sender ends every task.
        drop(refs);
        let tasks = std::mem::take(&mut *self.tasks.lock().expect("tasks"));
        for task in tasks {
            task.await.expect("raw actor ended cleanly");
        }
    }
}
