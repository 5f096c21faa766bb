//! The task manager: long work a component starts, run in a bounded pool of
//! workers, with progress an operator can watch and a way to cancel it.
//!
//! ```
//! use kinesis::{Component, Container, Context, Result};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Clone, Default, Serialize, Deserialize)]
//! struct Indexer;
//! impl Component for Indexer {}
//!
//! #[kinesis::handlers]
//! impl Indexer {
//!     /// Starts a re-index; answers the task's id at once.
//!     pub fn reindex(&mut self, ctx: &mut Context<Self>) -> u64 {
//!         let task = ctx.tasks().spawn("reindex", |progress| async move {
//!             for i in 0..10 {
//!                 progress.update(i, 10, format!("document {i}"));
//!                 if progress.is_cancelled() {
//!                     return Ok(());
//!                 }
//!             }
//!             progress.update(10, 10, "done");
//!             Ok(())
//!         });
//!         task.id()
//!     }
//! }
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let root = Container::root().await?;
//! let indexer = root.add("indexer", Indexer).await?;
//! let id = indexer.reindex().await?;
//! let task = kinesis::tasks::TaskManager::global().get(id).unwrap();
//! let status = task.wait().await;
//! assert_eq!(status.state, kinesis::tasks::TaskState::Succeeded);
//! assert_eq!((status.done, status.total), (10, 10));
//! root.shutdown().await?;
//! # Ok::<(), kinesis::Error>(()) }).unwrap();
//! ```
//!
//! * At most `KINESIS_TASK_WORKERS` tasks run at once (default: the number
//!   of CPUs); the others wait, `queued`, in the order they were spawned.
//! * A task reports progress with [`Progress::update`] (done, total and a
//!   message); [`TaskHandle::watch`] (and `GET /_kinesis/tasks/{id}/_watch`
//!   over HTTP) sees every change.
//! * [`TaskHandle::cancel`] (`DELETE /_kinesis/tasks/{id}`) cancels it: a
//!   queued task never runs, a running one is dropped at its next `.await`
//!   (it may also look at [`Progress::is_cancelled`]). A task is cancelled
//!   too when the run of the component that spawned it ends (stop or
//!   restart).
//! * A task that returns an error or panics is reported `failed` with the
//!   message; unlike [`Context::spawn`](crate::Context::spawn), it never
//!   fails its component.
//! * The manager keeps the last [`FINISHED_KEPT`] finished tasks.

use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use futures::FutureExt;
use serde::Serialize;
use tokio::sync::{watch, Semaphore};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::{Error, Result};

/// How many finished tasks the manager remembers.
pub const FINISHED_KEPT: usize = 256;

/// Where a task is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskState {
    /// Waiting for a worker.
    Queued,
    /// Running on a worker.
    Running,
    /// Finished without error.
    Succeeded,
    /// Returned an error or panicked.
    Failed,
    /// Cancelled before it finished.
    Cancelled,
}

impl TaskState {
    /// Whether the task is over.
    pub fn is_finished(self) -> bool {
        matches!(self, TaskState::Succeeded | TaskState::Failed | TaskState::Cancelled)
    }

    /// The state as a lowercase word.
    pub fn label(self) -> &'static str {
        match self {
            TaskState::Queued => "queued",
            TaskState::Running => "running",
            TaskState::Succeeded => "succeeded",
            TaskState::Failed => "failed",
            TaskState::Cancelled => "cancelled",
        }
    }

    const ALL: [TaskState; 5] = [
        TaskState::Queued,
        TaskState::Running,
        TaskState::Succeeded,
        TaskState::Failed,
        TaskState::Cancelled,
    ];
}

/// What is known of a task: the JSON of `GET /_kinesis/tasks/{id}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskStatus {
    /// Its id, unique in the process.
    pub id: u64,
    /// The name it was spawned with.
    pub name: String,
    /// The URI of the component that spawned it.
    pub owner: String,
    /// Where it is.
    pub state: TaskState,
    /// Units of work done.
    pub done: u64,
    /// Units of work in all (0: unknown).
    pub total: u64,
    /// `done / total` in percent, when `total` is known.
    pub percent: Option<f64>,
    /// What it is doing now.
    pub message: String,
    /// Why it failed.
    pub error: Option<String>,
    /// When it was spawned, RFC 3339.
    pub created_at: String,
    /// When a worker took it, RFC 3339.
    pub started_at: Option<String>,
    /// When it finished, RFC 3339.
    pub finished_at: Option<String>,
}

impl TaskStatus {
    fn set_progress(&mut self, done: u64, total: u64) {
        self.done = done;
        self.total = total;
        self.percent = (total > 0).then(|| (done.min(total) as f64) * 100.0 / total as f64);
    }
}

struct Entry {
    status: watch::Sender<TaskStatus>,
    cancel: CancellationToken,
}

impl Entry {
    fn update(&self, f: impl FnOnce(&mut TaskStatus)) {
        self.status.send_modify(f);
    }

    fn finish(&self, state: TaskState, error: Option<String>) {
        self.status.send_if_modified(|s| {
            if s.state.is_finished() {
                return false;
            }
            s.state = state;
            s.error = error;
            s.finished_at = Some(crate::persist::now_rfc3339());
            true
        });
    }
}

/// The process's tasks and the pool of workers that runs them.
pub struct TaskManager {
    workers: Arc<Semaphore>,
    size: AtomicUsize,
    next_id: AtomicU64,
    tasks: Mutex<Tasks>,
}

#[derive(Default)]
struct Tasks {
    by_id: BTreeMap<u64, Arc<Entry>>,
    finished: VecDeque<u64>,
}

impl std::fmt::Debug for TaskManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskManager").field("workers", &self.workers()).finish_non_exhaustive()
    }
}

/// The default size of the pool: the number of CPUs.
pub fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(2, usize::from)
}

impl TaskManager {
    /// A manager with a pool of `workers` (at least 1).
    pub fn new(workers: usize) -> TaskManager {
        let workers = workers.max(1);
        TaskManager {
            workers: Arc::new(Semaphore::new(workers)),
            size: AtomicUsize::new(workers),
            next_id: AtomicU64::new(1),
            tasks: Mutex::new(Tasks::default()),
        }
    }

    /// The process's manager, which [`Context::tasks`](crate::Context::tasks)
    /// spawns into and the HTTP add-on serves. Its pool has
    /// [`default_workers`] until [`Runtime`](crate::Runtime) sets it from
    /// `KINESIS_TASK_WORKERS`.
    pub fn global() -> &'static TaskManager {
        static GLOBAL: OnceLock<TaskManager> = OnceLock::new();
        GLOBAL.get_or_init(|| TaskManager::new(default_workers()))
    }

    /// The size of the pool.
    pub fn workers(&self) -> usize {
        self.size.load(Ordering::Relaxed)
    }

    /// Resizes the pool (at least 1). Running tasks keep their worker; a
    /// smaller pool takes effect as they finish.
    pub fn set_workers(&self, workers: usize) {
        let workers = workers.max(1);
        let before = self.size.swap(workers, Ordering::AcqRel);
        if workers > before {
            self.workers.add_permits(workers - before);
        } else if before > workers {
            let mut owed = before - workers;
            owed -= self.workers.forget_permits(owed);
            if owed > 0 {
                let semaphore = Arc::clone(&self.workers);
                tokio::spawn(async move {
                    if let Ok(permits) = semaphore.acquire_many(owed as u32).await {
                        permits.forget();
                    }
                });
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Tasks> {
        self.tasks.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Spawns `work` as a task called `name` on behalf of `owner` (a
    /// component URI); `parent` cancels it too when cancelled. `work` gets
    /// the task's [`Progress`]. Must be called within a tokio runtime.
    pub fn spawn<F, Fut>(
        &self,
        name: &str,
        owner: &str,
        parent: Option<&CancellationToken>,
        work: F,
    ) -> TaskHandle
    where
        F: FnOnce(Progress) -> Fut + Send + 'static,
        Fut: Future<Output = Result<()>> + Send + 'static,
    {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let cancel = parent.map_or_else(CancellationToken::new, CancellationToken::child_token);
        let status = TaskStatus {
            id,
            name: name.to_owned(),
            owner: owner.to_owned(),
            state: TaskState::Queued,
            done: 0,
            total: 0,
            percent: None,
            message: String::new(),
            error: None,
            created_at: crate::persist::now_rfc3339(),
            started_at: None,
            finished_at: None,
        };
        let entry = Arc::new(Entry { status: watch::channel(status).0, cancel });
        self.lock().by_id.insert(id, Arc::clone(&entry));
        let workers = Arc::clone(&self.workers);
        let progress = Progress { entry: Arc::clone(&entry) };
        let span = tracing::info_span!("task", id, name, owner);
        let run = Arc::clone(&entry);
        tokio::spawn(
            async move {
                let permit = tokio::select! {
                    biased;
                    () = run.cancel.cancelled() => None,
                    permit = workers.acquire_owned() => permit.ok(),
                };
                let Some(_permit) = permit else {
                    run.finish(TaskState::Cancelled, None);
                    return;
                };
                run.update(|s| {
                    if !s.state.is_finished() {
                        s.state = TaskState::Running;
                        s.started_at = Some(crate::persist::now_rfc3339());
                    }
                });
                let work = AssertUnwindSafe(async move { work(progress).await }).catch_unwind();
                let outcome = tokio::select! {
                    biased;
                    () = run.cancel.cancelled() => None,
                    outcome = work => Some(outcome),
                };
                match outcome {
                    None => run.finish(TaskState::Cancelled, None),
                    Some(Ok(Ok(()))) if run.cancel.is_cancelled() => {
                        run.finish(TaskState::Cancelled, None)
                    }
                    Some(Ok(Ok(()))) => run.finish(TaskState::Succeeded, None),
                    Some(Ok(Err(e))) => {
                        tracing::warn!(error = %e, "task failed");
                        run.finish(TaskState::Failed, Some(e.to_string()));
                    }
                    Some(Err(panic)) => {
                        let message = format!("panicked: {}", crate::cell::panic_message(&*panic));
                        tracing::error!(error = %message, "task panicked");
                        run.finish(TaskState::Failed, Some(message));
                    }
                }
            }
            .instrument(span),
        );
        self.forget_old(id, &entry);
        TaskHandle { entry }
    }

    /// Once `entry` finishes, remembers it among the finished ones and
    /// forgets the oldest beyond [`FINISHED_KEPT`].
    fn forget_old(&self, id: u64, entry: &Arc<Entry>) {
        let mut rx = entry.status.subscribe();
        let manager: &'static TaskManager = if std::ptr::eq(self, TaskManager::global()) {
            TaskManager::global()
        } else {
            // A private manager (tests) keeps everything.
            return;
        };
        tokio::spawn(async move {
            let _ = rx.wait_for(|s| s.state.is_finished()).await;
            let mut tasks = manager.lock();
            tasks.finished.push_back(id);
            while tasks.finished.len() > FINISHED_KEPT {
                if let Some(old) = tasks.finished.pop_front() {
                    tasks.by_id.remove(&old);
                }
            }
        });
    }

    /// The task with `id`, if it is known.
    pub fn get(&self, id: u64) -> Option<TaskHandle> {
        self.lock().by_id.get(&id).map(|entry| TaskHandle { entry: Arc::clone(entry) })
    }

    /// Every known task, oldest first.
    pub fn list(&self) -> Vec<TaskStatus> {
        self.lock().by_id.values().map(|e| e.status.borrow().clone()).collect()
    }

    /// How many known tasks are in each state.
    pub fn counts(&self) -> Vec<(TaskState, usize)> {
        let tasks = self.lock();
        TaskState::ALL
            .iter()
            .map(|state| {
                (*state, tasks.by_id.values().filter(|e| e.status.borrow().state == *state).count())
            })
            .collect()
    }

    /// Cancels the task with `id`; [`Error::NotFound`] if it is not known.
    /// Cancelling a finished task changes nothing.
    pub fn cancel(&self, id: u64) -> Result<TaskStatus> {
        let handle = self.get(id).ok_or_else(|| Error::NotFound(format!("task {id}")))?;
        handle.cancel();
        Ok(handle.status())
    }
}

/// A task's side of its status: how it reports progress and learns it was
/// cancelled.
#[derive(Clone)]
pub struct Progress {
    entry: Arc<Entry>,
}

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Progress").field("id", &self.entry.status.borrow().id).finish()
    }
}

impl Progress {
    /// Reports `done` of `total` units of work (`total` 0: unknown).
    pub fn set(&self, done: u64, total: u64) {
        self.entry.update(|s| s.set_progress(done, total));
    }

    /// Says what the task is doing now.
    pub fn message(&self, message: impl Into<String>) {
        let message = message.into();
        self.entry.update(|s| s.message = message);
    }

    /// [`set`](Progress::set) and [`message`](Progress::message) in one
    /// change.
    pub fn update(&self, done: u64, total: u64, message: impl Into<String>) {
        let message = message.into();
        self.entry.update(|s| {
            s.set_progress(done, total);
            s.message = message;
        });
    }

    /// Whether the task was cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.entry.cancel.is_cancelled()
    }

    /// Resolves when the task is cancelled.
    pub async fn cancelled(&self) {
        self.entry.cancel.cancelled().await;
    }
}

/// A task, as the one who spawned it or an operator sees it.
#[derive(Clone)]
pub struct TaskHandle {
    entry: Arc<Entry>,
}

impl std::fmt::Debug for TaskHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("TaskHandle").field(&*self.entry.status.borrow()).finish()
    }
}

impl TaskHandle {
    /// Its id.
    pub fn id(&self) -> u64 {
        self.entry.status.borrow().id
    }

    /// Its status now.
    pub fn status(&self) -> TaskStatus {
        self.entry.status.borrow().clone()
    }

    /// Cancels it (see the [module docs](self)).
    pub fn cancel(&self) {
        self.entry.cancel.cancel();
    }

    /// Every change of its status, starting with the current one.
    pub fn watch(&self) -> watch::Receiver<TaskStatus> {
        let mut rx = self.entry.status.subscribe();
        rx.mark_changed();
        rx
    }

    /// Waits until it finished; its final status.
    pub async fn wait(&self) -> TaskStatus {
        let mut rx = self.entry.status.subscribe();
        let result = rx.wait_for(|s| s.state.is_finished()).await.map(|s| s.clone());
        result.unwrap_or_else(|_| self.status())
    }
}

/// What [`Context::tasks`](crate::Context::tasks) gives: the global
/// [`TaskManager`], spawning on behalf of one component's current run.
#[derive(Debug)]
pub struct ComponentTasks {
    owner: String,
    run: CancellationToken,
}

impl ComponentTasks {
    pub(crate) fn new(owner: String, run: CancellationToken) -> Self {
        ComponentTasks { owner, run }
    }

    /// Spawns `work` as a task called `name` (see the [module docs](self)).
    pub fn spawn<F, Fut>(&self, name: &str, work: F) -> TaskHandle
    where
        F: FnOnce(Progress) -> Fut + Send + 'static,
        Fut: Future<Output = Result<()>> + Send + 'static,
    {
        TaskManager::global().spawn(name, &self.owner, Some(&self.run), work)
    }
}
